/**
 * The access log of a real server process: one `request completed` line per request (none for the
 * health endpoints), with method, URL, client address, status and time, and never a token.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { http } from '../harness/clients.js';
import { startServerProcess, type ServerProcess } from '../harness/server-process.js';

let server: ServerProcess;
beforeAll(async () => {
  server = await startServerProcess();
});
afterAll(() => server?.kill());

/** The server's JSON log lines with this message (stdout is written asynchronously: poll). */
const linesWith = (msg: string) =>
  server
    .output()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, any>)
    .filter((l) => l.msg === msg);

it('writes one line per request with its method, URL, client, status and time, and no secret', async () => {
  const jwt = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJub2JvZHkifQ.not-a-real-signature';
  const before = linesWith('request completed').length;
  expect((await http(server.url, 'GET', '/healthz')).status).toBe(200);
  const flow = (await http(server.url, 'POST', '/v1/qr')).body as { topic: string; watchToken: string };
  expect((await http(server.url, 'GET', `/v1/flows/${flow.topic}`, { headers: { 'watch-token': flow.watchToken } })).status).toBe(200);
  expect((await http(server.url, 'GET', '/v1/me', { headers: { authorization: `Bearer ${jwt}` } })).status).toBe(401);

  await expect.poll(() => linesWith('request completed').length - before, { timeout: 5000 }).toBe(3);
  const lines = linesWith('request completed').slice(before);
  expect(lines.map((l) => [l.req.method, l.req.url, l.res.statusCode])).toEqual([
    ['POST', '/v1/qr', 201],
    ['GET', `/v1/flows/${flow.topic}`, 200],
    ['GET', '/v1/me', 401],
  ]);
  for (const line of lines) {
    expect(line).toMatchObject({ level: 30, reqId: expect.any(String), req: { remoteAddress: '127.0.0.1' } });
    expect(line.responseTime).toBeGreaterThan(0);
  }
  // Fastify's own "incoming request" line is not written any more: one line per request.
  expect(linesWith('incoming request')).toEqual([]);
  expect(server.output()).not.toContain(flow.watchToken);
  expect(server.output()).not.toContain(jwt);
});
