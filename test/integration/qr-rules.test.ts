/**
 * The rules around the QR flow, on every entry point: races have one winner, the watch token
 * guards every path, only the scanner acts, and bad input gets its contract error while the
 * server keeps serving. Embedded and Redis mode, real processes.
 */
import { SignJWT } from 'jose';
import { io as ioClient } from 'socket.io-client';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ANA, BOB, MODES, createQr, login, startCluster, type Cluster } from '../harness/cluster.js';
import { WsClient, connectSocketIo, emitAck, http, recordSocketIo } from '../harness/clients.js';
import { TEST_JWT_SECRET } from '../harness/server-process.js';

const SINGLE_NODE_MODES = MODES.filter((m) => m.nodes === 1);

function b64(obj: object): string {
  return Buffer.from(JSON.stringify(obj)).toString('base64url');
}

/** Tokens that must all be refused: forged, expired, alg none, wrong audience, garbage. */
async function badTokens(userId: string): Promise<Record<string, string>> {
  const now = Math.floor(Date.now() / 1000);
  const sign = (secret: string, claims: { aud?: string; exp?: number }) =>
    new SignJWT({})
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject(userId)
      .setIssuer('handoff')
      .setAudience(claims.aud ?? 'handoff')
      .setIssuedAt(now - 7200)
      .setExpirationTime(claims.exp ?? now + 3600)
      .sign(new TextEncoder().encode(secret));
  return {
    forged: await sign('another-secret-another-secret-another-secret', {}),
    expired: await sign(TEST_JWT_SECRET, { exp: now - 60 }),
    wrongAudience: await sign(TEST_JWT_SECRET, { aud: 'someone-else' }),
    algNone: `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ sub: userId, iss: 'handoff', aud: 'handoff', exp: now + 3600 })}.`,
    garbage: 'not-a-jwt',
  };
}

describe.each(SINGLE_NODE_MODES)('QR rules ($name)', (mode) => {
  let cluster: Cluster;
  let base: string;
  let ana: string;
  let bob: string;
  const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

  beforeAll(async () => {
    cluster = await startCluster(mode, { TOMBSTONE_SECONDS: '60' });
    base = cluster.browser;
    ana = await login(base, ANA);
    bob = await login(base, BOB);
  });
  afterAll(() => cluster?.stop());

  async function scanned(): Promise<Awaited<ReturnType<typeof createQr>>> {
    const qr = await createQr(base);
    expect((await http(base, 'POST', `/v1/qr/${qr.id}/scan`, { headers: bearer(ana) })).status).toBe(200);
    return qr;
  }

  describe('races', () => {
    it('two confirms at once: exactly one 200, the other 409 invalid_transition with the current state', async () => {
      const qr = await scanned();
      const results = await Promise.all([1, 2].map(() => http(base, 'POST', `/v1/qr/${qr.id}/confirm`, { headers: bearer(ana) })));
      expect(results.map((r) => r.status).sort()).toEqual([200, 409]);
      const loser = results.find((r) => r.status === 409)!;
      expect(loser.body).toMatchObject({ error: { code: 'invalid_transition' }, state: { state: 'confirmed', version: 3 } });
    });

    it('ten scans at once from two users: one scanner wins', async () => {
      const qr = await createQr(base);
      const results = await Promise.all(
        Array.from({ length: 10 }, (_, i) => http(base, 'POST', `/v1/qr/${qr.id}/scan`, { headers: bearer(i % 2 ? ana : bob) })),
      );
      expect(results.filter((r) => r.status === 200)).toHaveLength(1);
      expect(results.filter((r) => r.status === 409)).toHaveLength(9);
    });

    it('confirm and browser cancel at once: exactly one wins, and every watcher sees that one', async () => {
      const qr = await scanned();
      const watcher = await connectSocketIo(base);
      try {
        const pushes = recordSocketIo(watcher);
        await emitAck(watcher, 'subscribe', { topic: qr.topic, watchToken: qr.watchToken });
        const [confirm, cancel] = await Promise.all([
          http(base, 'POST', `/v1/qr/${qr.id}/confirm`, { headers: bearer(ana) }),
          http(base, 'DELETE', `/v1/qr/${qr.id}`, { headers: { 'watch-token': qr.watchToken } }),
        ]);
        expect([confirm.status, cancel.status].sort()).toEqual([200, 409]);
        const winner = confirm.status === 200 ? 'confirmed' : 'cancelled';
        expect((await pushes.waitFor((s) => s.version === 3)).state).toBe(winner);
      } finally {
        watcher.close();
      }
    });

    it('two redeems at once: one session, one 410 already_redeemed', async () => {
      const qr = await scanned();
      await http(base, 'POST', `/v1/qr/${qr.id}/confirm`, { headers: bearer(ana) });
      const results = await Promise.all(
        [1, 2].map(() => http(base, 'POST', `/v1/flows/${qr.topic}/session`, { headers: { 'watch-token': qr.watchToken } })),
      );
      expect(results.map((r) => r.status).sort()).toEqual([200, 410]);
    });
  });

  describe('who may act', () => {
    it('a user who did not scan cannot confirm or cancel: 403 not_scanner', async () => {
      const qr = await scanned();
      for (const action of ['confirm', 'cancel']) {
        const res = await http(base, 'POST', `/v1/qr/${qr.id}/${action}`, { headers: bearer(bob) });
        expect(res).toMatchObject({ status: 403, body: { error: { code: 'not_scanner' } } });
      }
      const phone = await connectSocketIo(base, { token: bob });
      try {
        expect(await emitAck(phone, 'qr:confirm', { id: qr.id })).toMatchObject({ ok: false, error: { code: 'not_scanner' } });
      } finally {
        phone.close();
      }
    });

    it('an anonymous socket may not act on QR flows', async () => {
      const qr = await createQr(base);
      const anon = await connectSocketIo(base);
      try {
        expect(await emitAck(anon, 'qr:scan', { id: qr.id })).toMatchObject({ ok: false, error: { code: 'unauthorized' } });
      } finally {
        anon.close();
      }
    });

    it('confirming before a scan is 409 with the current state', async () => {
      const qr = await createQr(base);
      const res = await http(base, 'POST', `/v1/qr/${qr.id}/confirm`, { headers: bearer(ana) });
      expect(res).toMatchObject({ status: 409, body: { error: { code: 'invalid_transition' }, state: { state: 'pending', version: 1 } } });
      const scan = await http(base, 'POST', `/v1/qr/${qr.id}/scan`, { headers: bearer(ana) });
      expect(scan.status).toBe(200);
      const rescan = await http(base, 'POST', `/v1/qr/${qr.id}/scan`, { headers: bearer(ana) });
      expect(rescan).toMatchObject({ status: 409, body: { error: { code: 'invalid_transition' }, state: { state: 'scanned' } } });
    });

    it('redeeming before confirm is 409 invalid_transition', async () => {
      const qr = await scanned();
      const res = await http(base, 'POST', `/v1/flows/${qr.topic}/session`, { headers: { 'watch-token': qr.watchToken } });
      expect(res).toMatchObject({ status: 409, body: { error: { code: 'invalid_transition' }, state: { state: 'scanned' } } });
    });
  });

  describe('the watch token guards every path', () => {
    const wrong = { 'watch-token': 'x'.repeat(32) };

    it('HTTP: read, long-poll, browser cancel and redeem answer 403 without it or with a wrong one', async () => {
      const qr = await scanned();
      for (const headers of [{}, wrong]) {
        for (const [method, path] of [
          ['GET', `/v1/flows/${qr.topic}`],
          ['GET', `/v1/flows/${qr.topic}?after=1&wait=1`],
          ['DELETE', `/v1/qr/${qr.id}`],
          ['POST', `/v1/flows/${qr.topic}/session`],
        ]) {
          const res = await http(base, method, path, { headers });
          expect(res, `${method} ${path}`).toMatchObject({ status: 403, body: { error: { code: 'invalid_watch_token' } } });
        }
      }
      // A bearer JWT of a user who did not scan is no substitute.
      expect((await http(base, 'GET', `/v1/flows/${qr.topic}`, { headers: bearer(bob) })).status).toBe(403);
      // The scanner may read with her JWT alone.
      expect(await http(base, 'GET', `/v1/flows/${qr.topic}`, { headers: bearer(ana) })).toMatchObject({ status: 200, body: { state: 'scanned' } });
    });

    it('Socket.IO and WebSocket: subscribe and redeem answer invalid_watch_token', async () => {
      const qr = await createQr(base);
      const sio = await connectSocketIo(base);
      const ws = await WsClient.connect(base);
      try {
        for (const watchToken of [undefined, 'x'.repeat(32)]) {
          expect(await emitAck(sio, 'subscribe', { topic: qr.topic, watchToken })).toMatchObject({ ok: false, error: { code: 'invalid_watch_token' } });
          expect(await ws.request('subscribe', { topic: qr.topic, watchToken })).toMatchObject({ ok: false, error: { code: 'invalid_watch_token' } });
        }
        expect(await emitAck(sio, 'redeem', { topic: qr.topic, watchToken: 'x'.repeat(32) })).toMatchObject({ ok: false, error: { code: 'invalid_watch_token' } });
        expect(await ws.request('redeem', { topic: qr.topic, watchToken: 'x'.repeat(32) })).toMatchObject({ ok: false, error: { code: 'invalid_watch_token' } });
      } finally {
        sio.close();
        ws.close();
      }
    });

    it('the watch token is stored hashed: no response but creation ever returns it', async () => {
      const qr = await createQr(base);
      const read = await http(base, 'GET', `/v1/flows/${qr.topic}`, { headers: { 'watch-token': qr.watchToken } });
      expect(JSON.stringify(read.body)).not.toContain(qr.watchToken);
      expect(qr.id.length).toBeGreaterThanOrEqual(22); // >= 128 bits in base64url
      expect(qr.watchToken.length).toBeGreaterThanOrEqual(22);
    });
  });

  describe('tombstones and unknown flows', () => {
    it('subscribing after the final state answers the tombstone snapshot', async () => {
      const qr = await createQr(base);
      await http(base, 'DELETE', `/v1/qr/${qr.id}`, { headers: { 'watch-token': qr.watchToken } });
      const sio = await connectSocketIo(base);
      const ws = await WsClient.connect(base);
      try {
        expect(await emitAck(sio, 'subscribe', { topic: qr.topic, watchToken: qr.watchToken })).toMatchObject({
          ok: true,
          state: { state: 'cancelled', version: 2 },
        });
        expect(await ws.request('subscribe', { topic: qr.topic, watchToken: qr.watchToken })).toMatchObject({
          ok: true,
          state: { state: 'cancelled', version: 2 },
        });
        // A long-poll for a later version answers at once with the final state.
        const poll = await http(base, 'GET', `/v1/flows/${qr.topic}?after=2&wait=30`, { headers: { 'watch-token': qr.watchToken } });
        expect(poll).toMatchObject({ status: 200, body: { state: 'cancelled' } });
      } finally {
        sio.close();
        ws.close();
      }
    });

    it('unknown flows and malformed topics are 404 not_found everywhere', async () => {
      const ghost = 'A'.repeat(32);
      expect(await http(base, 'GET', `/v1/flows/qr:${ghost}`, { headers: { 'watch-token': 'x' } })).toMatchObject({ status: 404, body: { error: { code: 'not_found' } } });
      expect((await http(base, 'GET', `/v1/flows/nonsense`, { headers: { 'watch-token': 'x' } })).status).toBe(404);
      expect((await http(base, 'POST', `/v1/qr/${ghost}/scan`, { headers: bearer(ana) })).status).toBe(404);
      expect((await http(base, 'GET', `/v1/qr/${ghost}/image.svg`)).status).toBe(404);
      expect((await http(base, 'GET', `/v1/nothing-here`)).body).toEqual({ error: { code: 'not_found', message: expect.any(String) } });
    });
  });

  describe('bad input gets its contract error and the server keeps serving', () => {
    it('HTTP: malformed JSON, wrong types, unknown fields, oversized bodies, bad query', async () => {
      const cases: Array<[string, Parameters<typeof http>[3], number, string]> = [
        ['malformed JSON', { raw: '{"email": ' }, 400, 'bad_request'],
        ['wrong type', { body: { email: 42, password: 'x' } }, 400, 'bad_request'],
        ['string where object', { raw: '"hello"' }, 400, 'bad_request'],
        ['unknown field', { body: { email: 'a@b.c', password: 'x', admin: true } }, 400, 'bad_request'],
        ['empty body', { raw: '' }, 400, 'bad_request'],
        ['wrong content type', { raw: 'email=a', headers: { 'content-type': 'application/x-www-form-urlencoded' } }, 400, 'bad_request'],
        ['oversized body', { body: { email: 'a@b.c', password: 'x'.repeat(40_000) } }, 413, 'payload_too_large'],
      ];
      for (const [name, opts, status, code] of cases) {
        const res = await http(base, 'POST', '/v1/sessions', opts);
        expect(res, name).toMatchObject({ status, body: { error: { code } } });
      }
      const qr = await createQr(base);
      const watch = { 'watch-token': qr.watchToken };
      for (const query of ['after=abc&wait=1', 'after=1&wait=31', 'after=-1', 'after=1&wait=1&extra=1']) {
        const res = await http(base, 'GET', `/v1/flows/${qr.topic}?${query}`, { headers: watch });
        expect(res, query).toMatchObject({ status: 400, body: { error: { code: 'bad_request' } } });
      }
      expect((await http(base, 'GET', '/healthz')).status).toBe(200);
    });

    it('JWTs: missing, forged, expired, wrong audience, alg none and garbage are all 401 unauthorized', async () => {
      const qr = await createQr(base);
      const me = await http(base, 'GET', '/v1/me', { headers: bearer(ana) });
      const tokens = await badTokens(me.body.id);
      expect((await http(base, 'GET', '/v1/me')).body).toMatchObject({ error: { code: 'unauthorized' } });
      expect((await http(base, 'POST', `/v1/qr/${qr.id}/scan`)).status).toBe(401);
      for (const [name, token] of Object.entries(tokens)) {
        expect(await http(base, 'GET', '/v1/me', { headers: bearer(token) }), name).toMatchObject({ status: 401, body: { error: { code: 'unauthorized' } } });
        expect((await http(base, 'POST', `/v1/qr/${qr.id}/scan`, { headers: bearer(token) })).status, name).toBe(401);
        await expect(connectSocketIo(base, { token }), name).rejects.toThrow('unauthorized');
        const upgrade = WsClient.connect(base, bearer(token));
        await expect(upgrade, name).rejects.toMatchObject({ status: 401 });
        const ws = await WsClient.connect(base);
        expect(await ws.request('auth', { token }), name).toMatchObject({ ok: false, error: { code: 'unauthorized' } });
        ws.close();
      }
      // Wrong password and unknown email: the same 401 and the same body.
      const wrongPassword = await http(base, 'POST', '/v1/sessions', { body: { email: ANA.email, password: 'nope-nope-nope' } });
      const unknown = await http(base, 'POST', '/v1/sessions', { body: { email: 'nobody@example.com', password: 'nope-nope-nope' } });
      expect(wrongPassword).toMatchObject({ status: 401, body: { error: { code: 'invalid_credentials' } } });
      expect(unknown.body).toEqual(wrongPassword.body);
    });

    it('Socket.IO: malformed payloads get bad_request acks; unknown events and ack-less emits change nothing', async () => {
      const sio = await connectSocketIo(base, { token: ana });
      try {
        for (const payload of [null, 42, 'qr:abc', { topic: 42 }, { topic: 'x'.repeat(500) }, [{}]]) {
          expect(await emitAck(sio, 'subscribe', payload), JSON.stringify(payload)).toMatchObject({ ok: false, error: { code: 'bad_request' } });
        }
        expect(await emitAck(sio, 'qr:scan', { id: { $gt: '' } })).toMatchObject({ ok: false, error: { code: 'bad_request' } });
        sio.emit('no-such-event' as never, { hello: 1 } as never);
        sio.emit('subscribe', { topic: 'qr:zzz' } as never, undefined as never);
        // Still connected and answering.
        const qr = await createQr(base);
        expect(await emitAck(sio, 'subscribe', { topic: qr.topic, watchToken: qr.watchToken })).toMatchObject({ ok: true });
        expect(sio.connected).toBe(true);
      } finally {
        sio.close();
      }
    });

    it('Socket.IO: a message over the size limit closes that connection, not the server', async () => {
      const sio = await connectSocketIo(base);
      const closed = new Promise<string>((resolve) => sio.on('disconnect', (reason) => resolve(reason)));
      sio.emit('subscribe', { topic: 'x'.repeat(40_000) } as never, () => {});
      expect(await closed).toMatch(/transport (close|error)/);
      expect((await http(base, 'GET', '/healthz')).status).toBe(200);
    });

    it('WebSocket: malformed JSON and unknown types get bad_request and the connection stays open', async () => {
      const ws = await WsClient.connect(base);
      try {
        expect(await ws.sendRaw('{not json')).toMatchObject({ type: 'reply', ref: null, ok: false, error: { code: 'bad_request' } });
        expect(await ws.sendRaw('[1,2]')).toMatchObject({ ok: false, error: { code: 'bad_request' } });
        expect(await ws.sendRaw(Buffer.from([1, 2, 3]))).toMatchObject({ ok: false, error: { code: 'bad_request' } });
        expect(await ws.request('launch-missiles')).toMatchObject({ ref: 'r1', ok: false, error: { code: 'bad_request' } });
        expect(await ws.request('subscribe', { topic: 42 })).toMatchObject({ ok: false, error: { code: 'bad_request' } });
        const qr = await createQr(base);
        expect(await ws.request('subscribe', { topic: qr.topic, watchToken: qr.watchToken })).toMatchObject({ ok: true, state: { state: 'pending' } });
      } finally {
        ws.close();
      }
    });

    it('WebSocket: a frame over 16 KiB closes with 1009', async () => {
      const ws = await WsClient.connect(base);
      ws.socket.send(JSON.stringify({ type: 'subscribe', ref: 'big', topic: 'x'.repeat(17 * 1024) }));
      expect((await ws.closed).code).toBe(1009);
      expect((await http(base, 'GET', '/healthz')).status).toBe(200);
    });

    it('a disallowed Origin is refused with 403 on both socket endpoints; no Origin is allowed', async () => {
      const evil = { origin: 'https://evil.example' };
      await expect(WsClient.connect(base, evil)).rejects.toMatchObject({ status: 403 });
      const polling = await fetch(`${base}/socket.io/?EIO=4&transport=polling`, { headers: evil });
      expect(polling.status).toBe(403);
      const upgrade = await new Promise<number>((resolve) => {
        const raw = new WebSocket(`${base.replace('http', 'ws')}/socket.io/?EIO=4&transport=websocket`, { headers: evil });
        raw.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
        raw.on('open', () => resolve(101));
        raw.on('error', () => {});
      });
      expect(upgrade).toBe(403);
      // The server's own origin and no Origin at all are fine.
      const own = await WsClient.connect(base, { origin: base });
      own.close();
      const sio = ioClient(base, { transports: ['polling'], reconnection: false, forceNew: true });
      await new Promise<void>((resolve, reject) => (sio.once('connect', resolve), sio.once('connect_error', reject)));
      sio.close();
    });
  });
});
