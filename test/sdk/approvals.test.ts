/**
 * Push-to-approve in the SDK, with the fake socket and fetch (no server involved): the browser's
 * `approvalLogin` (number, states, redeem once approved, denied, cancel) and the phone's
 * `approvals` (user channel subscribe, once per version, resubscribe after a reconnect, approve /
 * deny over the socket ack or HTTP).
 */
import { describe, expect, it } from 'vitest';
import { Handoff, HandoffError, type ApprovalRequest, type FlowState, type HandoffOptions, type Session } from '@handoff/client-sdk';
import { liveResources } from '../../client-sdk/src/scope.js';
import { FakeFetch, FakeIo, json, type Emitted } from './fake-socket.js';
import { rejectionOf } from './helpers.js';

const ID = 'CCCCCCCCCCCCCCCCCCCCCC';
const OTHER = 'DDDDDDDDDDDDDDDDDDDDDD';
const SESSION: Session = { token: 'jwt', tokenType: 'session', expiresAt: '2099-01-01T00:00:00.000Z', user: { id: 'u1', email: 'ana@example.com', displayName: 'Ana' } };
const REQUESTER = { ip: '203.0.113.7', userAgent: 'Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0', createdAt: '2099-01-01T00:00:00.000Z' };

function approvalState(state: string, version: number, id = ID): FlowState {
  return { topic: `approval:${id}`, kind: 'approval', id, state, version, expiresAt: '2099-01-01T00:00:00.000Z' } as unknown as FlowState;
}
function request(state: string, version: number, id = ID, extra: Record<string, unknown> = {}): ApprovalRequest {
  return { ...approvalState(state, version, id), requester: REQUESTER, choices: [17, 42, 93], ...extra } as ApprovalRequest;
}

function setup(route: ConstructorParameters<typeof FakeFetch>[0], options: Partial<HandoffOptions> = {}) {
  const io = new FakeIo();
  const fetch = new FakeFetch(route);
  const handoff = new Handoff({ url: 'http://handoff.test', io: io.factory, fetch: fetch.fetch, minReconnectDelay: 1, maxReconnectDelay: 5, ...options });
  return { io, fetch, handoff };
}

/** The "server" answers each emit with `answer(e)` (undefined: no ack). */
function serve(io: FakeIo, answer: (e: Emitted) => unknown): void {
  io.onEmit = (_socket, e) => {
    const res = answer(e);
    if (res !== undefined) e.ack?.(res);
  };
}

/** Resolves with the next payload of `event`. */
function next<T>(on: (fn: (v: T) => void) => () => void): Promise<T> {
  return new Promise((resolve) => {
    const off = on((v) => {
      off();
      resolve(v);
    });
  });
}

describe('approvalLogin (browser side)', () => {
  const created = { ...approvalState('pending', 1), watchToken: 'wt-secret', number: 42 };

  it('shows the number, follows pending → approved, redeems once and resolves the session', async () => {
    const { io, fetch, handoff } = setup((method, path) =>
      method === 'POST' && path === '/v1/approvals' ? json(201, created) : json(404, { error: { code: 'not_found', message: 'no' } }),
    );
    serve(io, (e) => {
      if (e.event === 'subscribe') return { ok: true, state: approvalState('pending', 1) };
      if (e.event === 'redeem') return { ok: true, session: SESSION };
    });
    const flow = await handoff.approvalLogin({ login: 'ana@example.com' });
    expect(fetch.calls[0].body).toEqual({ login: 'ana@example.com' });
    expect(flow).toMatchObject({ id: ID, topic: `approval:${ID}`, number: 42 });
    expect(JSON.stringify(flow)).not.toContain('wt-secret');
    const seen: string[] = [];
    flow.on('state', (s) => seen.push(`${s.state}@${s.version}`));
    const session = flow.session({ timeout: 5000 });
    const subscribe = await io.nextEmit('subscribe');
    expect(subscribe.payload).toEqual({ topic: `approval:${ID}`, watchToken: 'wt-secret' });

    io.last.push(approvalState('approved', 2));
    await expect(session).resolves.toEqual(SESSION);
    const redeems = io.sockets.flatMap((s) => s.emitted).filter((e) => e.event === 'redeem');
    expect(redeems.map((e) => e.payload)).toEqual([{ topic: `approval:${ID}`, watchToken: 'wt-secret' }]);
    expect(seen).toEqual(['pending@1', 'approved@2']);
    handoff.close();
  });

  it('session() rejects with `denied` when the phone denies (or picks a wrong number)', async () => {
    const { io, handoff } = setup(() => json(201, created));
    serve(io, (e) => (e.event === 'subscribe' ? { ok: true, state: approvalState('pending', 1) } : undefined));
    const flow = await handoff.approvalLogin({ login: 'ana@example.com' });
    const session = flow.session();
    await io.nextEmit('subscribe');
    io.last.push(approvalState('denied', 2));
    const err = await rejectionOf(session);
    expect(err).toBeInstanceOf(HandoffError);
    expect(err).toMatchObject({ code: 'denied', state: { state: 'denied', version: 2 } });
    expect(flow.subscriptionState).toBe('unsubscribed');
    handoff.close();
  });

  it('cancel() sends DELETE /v1/approvals/{id} with the watch token in a header, and session() rejects with `cancelled`', async () => {
    const { io, fetch, handoff } = setup((method, path) => {
      if (method === 'POST') return json(201, created);
      if (method === 'DELETE' && path === `/v1/approvals/${ID}`) return json(200, approvalState('cancelled', 2));
      return json(404, { error: { code: 'not_found', message: 'no' } });
    });
    serve(io, (e) => (e.event === 'subscribe' ? { ok: true, state: approvalState('pending', 1) } : undefined));
    const flow = await handoff.approvalLogin({ login: 'ana@example.com' });
    const session = flow.session();
    await expect(flow.cancel()).resolves.toMatchObject({ state: 'cancelled', version: 2 });
    const del = fetch.calls.find((c) => c.method === 'DELETE');
    expect(del?.headers['watch-token']).toBe('wt-secret');
    expect(del?.url).toBe(`http://handoff.test/v1/approvals/${ID}`);
    expect(await rejectionOf(session)).toMatchObject({ code: 'cancelled' });
    handoff.close();
  });

  it('refuses a missing login before asking the server', async () => {
    const { fetch, handoff } = setup(() => json(201, created));
    await expect(handoff.approvalLogin({ login: '' })).rejects.toThrow(TypeError);
    expect(fetch.calls).toEqual([]);
    handoff.close();
  });

  it('an answer without a number is a `bad_response`', async () => {
    const { handoff } = setup(() => json(201, { ...approvalState('pending', 1), watchToken: 'wt' }));
    expect(await rejectionOf(handoff.approvalLogin({ login: 'ana@example.com' }))).toMatchObject({ code: 'bad_response' });
    handoff.close();
  });
});

describe('approvals (phone side)', () => {
  const noHttp = () => json(404, { error: { code: 'not_found', message: 'no' } });

  it('subscribes to user:me once a request listener is added; the snapshot and each push are emitted once per version', async () => {
    const { io, handoff } = setup(noHttp, { token: 'app-jwt' });
    serve(io, (e) => (e.event === 'subscribe' ? { ok: true, state: { topic: 'user:me', approvals: [request('pending', 1)] } } : undefined));
    expect(io.sockets).toHaveLength(0);
    const requests: string[] = [];
    const states: string[] = [];
    handoff.approvals.on('state', (r) => states.push(`${r.id.slice(0, 1)}:${r.state}@${r.version}`));
    const first = next<ApprovalRequest>((fn) => handoff.approvals.on('request', fn));
    handoff.approvals.on('request', (r) => requests.push(`${r.id.slice(0, 1)}@${r.version}`));

    const subscribe = await io.nextEmit('subscribe');
    expect(subscribe.payload).toEqual({ topic: 'user:me' }); // no watch token on the user channel
    expect(subscribe.socket.options.auth).toBeTypeOf('function');
    const req = await first;
    expect(req).toMatchObject({ id: ID, state: 'pending', choices: [17, 42, 93], requester: REQUESTER });
    expect(req).not.toHaveProperty('number');
    expect(handoff.approvals.subscriptionState).toBe('subscribed');

    io.last.push(request('pending', 1)); // a duplicate: same version
    io.last.push(request('pending', 1, OTHER, { context: { location: 'Berlin' } })); // a new request
    io.last.push(request('approved', 2)); // answered on another phone
    io.last.push(request('pending', 1)); // late, older
    expect(requests).toEqual(['C@1', 'D@1']);
    expect(states).toEqual(['C:pending@1', 'D:pending@1', 'C:approved@2']);
    expect(handoff.approvals.pending.map((r) => r.id)).toEqual([OTHER]);
    expect(handoff.approvals.pending[0].context).toEqual({ location: 'Berlin' });
    handoff.close();
  });

  it('subscribes again after a reconnect; a request made meanwhile arrives, one that ended meanwhile is `gone`', async () => {
    const { io, handoff } = setup(noHttp, { token: 'app-jwt' });
    let snapshot = [request('pending', 1)];
    serve(io, (e) => (e.event === 'subscribe' ? { ok: true, state: { topic: 'user:me', approvals: snapshot } } : undefined));
    const requests: string[] = [];
    handoff.approvals.on('request', (r) => requests.push(r.id));
    const gone: string[] = [];
    handoff.approvals.on('gone', (g) => gone.push(g.id));
    await io.nextEmit('subscribe');
    await next((fn) => handoff.approvals.on('subscription', (e) => e.newState === 'subscribed' && fn(e)));
    expect(requests).toEqual([ID]);

    snapshot = [request('pending', 1, OTHER)];
    const resubscribed = next((fn) => handoff.approvals.on('subscription', (e) => e.newState === 'subscribed' && fn(e)));
    io.last.fire('disconnect', 'transport close');
    expect(handoff.approvals.subscriptionState).toBe('subscribing');
    await resubscribed;
    expect(io.sockets).toHaveLength(2);
    expect(requests).toEqual([ID, OTHER]);
    expect(gone).toEqual([ID]);
    expect(handoff.approvals.pending.map((r) => r.id)).toEqual([OTHER]);
    handoff.close();
  });

  it('approve(id, number) goes over the socket ack when connected, and HTTP with the bearer token otherwise', async () => {
    const { io, fetch, handoff } = setup(
      (method, path) => (method === 'POST' && path === `/v1/approvals/${ID}/approve` ? json(200, approvalState('approved', 2)) : noHttp()),
      { token: 'app-jwt' },
    );
    // Not connected: HTTP.
    await expect(handoff.approvals.approve(ID, 42)).resolves.toMatchObject({ state: 'approved', version: 2 });
    expect(fetch.calls[0]).toMatchObject({ method: 'POST', body: { number: 42 }, headers: { authorization: 'Bearer app-jwt' } });

    serve(io, (e) => {
      if (e.event === 'subscribe') return { ok: true, state: { topic: 'user:me', approvals: [] } };
      if (e.event === 'approval:deny') return { ok: true, state: approvalState('denied', 2, OTHER) };
    });
    await handoff.connect({ timeout: 5000 });
    await expect(handoff.approvals.deny(OTHER)).resolves.toMatchObject({ state: 'denied' });
    expect((await io.nextEmit('approval:deny')).payload).toEqual({ id: OTHER });
    expect(fetch.calls).toHaveLength(1);
    handoff.close();
  });

  it('a refused approve rejects with the catalogue error and the state it carries', async () => {
    const { io, handoff } = setup(noHttp, { token: 'app-jwt' });
    serve(io, (e) =>
      e.event === 'approval:approve'
        ? { ok: false, error: { code: 'invalid_transition', message: 'no' }, state: approvalState('cancelled', 2) }
        : undefined,
    );
    await handoff.connect({ timeout: 5000 });
    const err = await rejectionOf(handoff.approvals.approve(ID, 17));
    expect(err).toMatchObject({ code: 'invalid_transition', state: { state: 'cancelled' } });
    expect((await io.nextEmit('approval:approve')).payload).toEqual({ id: ID, number: 17 });
    handoff.close();
  });

  it('without a token, approve and deny reject with `unauthorized` and ask nobody', async () => {
    const { io, fetch, handoff } = setup(noHttp);
    expect(await rejectionOf(handoff.approvals.approve(ID, 42))).toMatchObject({ code: 'unauthorized' });
    expect(await rejectionOf(handoff.approvals.deny(ID))).toMatchObject({ code: 'unauthorized' });
    expect(fetch.calls).toEqual([]);
    expect(io.sockets).toEqual([]);
    handoff.close();
  });

  it('removing the last listener unsubscribes and lets the link go idle; close() leaves nothing behind', async () => {
    const before = liveResources();
    const { io, handoff } = setup(noHttp, { token: 'app-jwt' });
    serve(io, (e) => (e.event === 'subscribe' ? { ok: true, state: { topic: 'user:me', approvals: [] } } : undefined));
    const off = handoff.approvals.on('request', () => {});
    await next((fn) => handoff.approvals.on('subscription', (e) => e.newState === 'subscribed' && fn(e)));
    expect(handoff.state).toBe('connected');
    off();
    expect(handoff.approvals.subscriptionState).toBe('unsubscribed');
    expect(io.last.emitted.map((e) => e.event)).toContain('unsubscribe');
    expect(handoff.state).toBe('disconnected');
    handoff.approvals.on('state', () => {});
    handoff.close();
    expect(handoff.approvals.subscriptionState).toBe('unsubscribed');
    expect(liveResources()).toBe(before);
  });

  it("a push shown under the channel's topic (user:me, as the server sends it) keeps the approval's own topic", async () => {
    const { io, handoff } = setup(() => ({ status: 404, body: {} }));
    serve(io, (e) => (e.event === 'subscribe' ? { ok: true, state: { topic: 'user:me', approvals: [{ ...request('pending', 1), topic: 'user:me' }] } } : undefined));
    const seen: ApprovalRequest[] = [];
    handoff.approvals.on('request', (req) => seen.push(req));
    await expect.poll(() => seen.length).toBe(1);
    expect(seen[0]).toMatchObject({ topic: `approval:${ID}`, id: ID, choices: [17, 42, 93] });
    // A later push on the channel, shown under user:me as the server sends it, is taken too.
    const states: string[] = [];
    handoff.approvals.on('state', (r) => states.push(`${r.topic}:${r.state}@${r.version}`));
    io.last.push({ ...request('approved', 2), topic: 'user:me' });
    await expect.poll(() => states).toContain(`approval:${ID}:approved@2`);
    handoff.close();
  });
});
