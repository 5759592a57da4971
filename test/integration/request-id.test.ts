/**
 * Request ids: every HTTP answer carries `X-Request-Id`, the same id its access log line carries
 * as `reqId`: a fresh random UUID, or the caller's own id when it is a safe value (a bounded
 * length and charset), so one id follows a request through proxies; anything else is replaced.
 */
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { http } from '../harness/clients.js';
import { STORE_MODES, startInProcess, testConfig, type InProcessServer } from '../harness/in-process.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

let out = '';
let app: InProcessServer;
beforeAll(async () => {
  const stream = new Writable({ write: (chunk, _enc, cb) => ((out += chunk.toString()), cb()) });
  app = await startInProcess(testConfig(STORE_MODES[0], { url: '' }, 'request-id', { LOG_LEVEL: 'info' }), pino({ level: 'info' }, stream));
});
afterAll(() => app?.close());

/** The `request completed` line of the request whose id is `id` (the line is written after the answer: poll). */
async function accessLine(id: string): Promise<Record<string, any>> {
  let line: Record<string, any> | undefined;
  await expect
    .poll(() => {
      const lines = out.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, any>);
      line = lines.find((l) => l.msg === 'request completed' && l.reqId === id);
      return line !== undefined;
    })
    .toBe(true);
  return line!;
}

it('a request without X-Request-Id gets a fresh UUID, in the response header and in its access log line', async () => {
  const first = await http(app.base, 'POST', '/v1/qr');
  const second = await http(app.base, 'POST', '/v1/qr');
  const id = first.headers.get('x-request-id');
  expect(id).toMatch(UUID);
  expect(second.headers.get('x-request-id')).toMatch(UUID);
  expect(second.headers.get('x-request-id')).not.toBe(id);
  expect(await accessLine(id!)).toMatchObject({ req: { method: 'POST', url: '/v1/qr' }, res: { statusCode: 201 } });
});

it('a safe incoming X-Request-Id is kept: echoed in the answer and logged', async () => {
  const given = 'edge-7f3a9c1e:42.B/x+y=';
  const res = await http(app.base, 'GET', '/v1/flows/qr:nope', { headers: { 'x-request-id': given, 'watch-token': 'x' } });
  expect(res.status).toBe(404);
  expect(res.headers.get('x-request-id')).toBe(given);
  expect(await accessLine(given)).toMatchObject({ req: { url: '/v1/flows/qr:nope' }, res: { statusCode: 404 } });
});

it('a route that does not exist answers with a request id too', async () => {
  const res = await http(app.base, 'GET', '/no/such/route', { headers: { 'x-request-id': 'abc-123' } });
  expect(res.status).toBe(404);
  expect(res.headers.get('x-request-id')).toBe('abc-123');
});

it('an oversized or unsafe X-Request-Id is replaced by a UUID and never logged', async () => {
  const huge = 'A'.repeat(10 * 1024);
  const unsafe = 'id with spaces"}{';
  for (const given of [huge, 'B'.repeat(129), unsafe, '']) {
    const res = await http(app.base, 'POST', '/v1/qr', { headers: { 'x-request-id': given } });
    const id = res.headers.get('x-request-id');
    expect(id).toMatch(UUID);
    await accessLine(id!);
  }
  expect(out).not.toContain('A'.repeat(200));
  expect(out).not.toContain('B'.repeat(129));
  expect(out).not.toContain(unsafe);
});
