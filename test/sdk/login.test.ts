/**
 * Password logins through the SDK against a real embedded server: sync `login()`, and
 * `asyncLogin()` on both of its answers: 200 with the session (a login decided at once, here with
 * `Prefer: respond-async, wait=N`) and 202 with a queued `login` flow (issue #3).
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { HandoffError, type FlowState } from '@handoff/client-sdk';
import { ANA, MODES, startCluster, type Cluster } from '../harness/cluster.js';
import { http } from '../harness/clients.js';
import { Clients, rejectionOf } from './helpers.js';

let cluster: Cluster;
const clients = new Clients();

beforeAll(async () => {
  cluster = await startCluster(MODES[0]);
});
afterEach(() => clients.closeAll());
afterAll(() => cluster?.stop());

/** Does this server queue async logins (202), or answer them at once (200)? */
async function serverQueuesAsyncLogins(): Promise<boolean> {
  const res = await http(cluster.browser, 'POST', '/v1/sessions', {
    body: { email: ANA.email, password: ANA.password },
    headers: { prefer: 'respond-async' },
  });
  return res.status === 202;
}

describe('login()', () => {
  it('returns the session for good credentials', async () => {
    const handoff = clients.make({ url: cluster.browser });
    const session = await handoff.login({ email: ANA.email, password: ANA.password });
    expect(session).toMatchObject({ token: expect.any(String), tokenType: 'session', expiresAt: expect.any(String), user: { email: ANA.email } });
  });

  it('a built-in user\'s session says tokenType session on the wire (sent by the server, not filled in by the SDK)', async () => {
    const res = await http(cluster.browser, 'POST', '/v1/sessions', { body: { email: ANA.email, password: ANA.password } });
    expect(res).toMatchObject({ status: 200, body: { tokenType: 'session', user: { email: ANA.email } } });
  });

  it('rejects wrong credentials with invalid_credentials (401)', async () => {
    const handoff = clients.make({ url: cluster.browser });
    const err = await rejectionOf(handoff.login({ email: ANA.email, password: 'wrong-password' }));
    expect(err).toBeInstanceOf(HandoffError);
    expect(err).toMatchObject({ code: 'invalid_credentials', status: 401 });
  });
});

describe('asyncLogin()', () => {
  it('resolves a session against the running server, 200 or 202 alike', async () => {
    const handoff = clients.make({ url: cluster.browser });
    const login = await handoff.asyncLogin({ email: ANA.email, password: ANA.password });
    const { token, user } = await login.session({ timeout: 15_000 });
    expect(token).toEqual(expect.any(String));
    expect(user.email).toBe(ANA.email);
  });

  it('a 200 answer (the login decided within `wait`): queued is false, no state, no socket, session at once', async () => {
    const handoff = clients.make({ url: cluster.browser });
    const login = await handoff.asyncLogin({ email: ANA.email, password: ANA.password }, { wait: 10 });
    expect(login.queued).toBe(false);
    expect(login.state).toBeNull();
    expect(login.topic).toBeNull();
    expect(login.subscriptionState).toBe('unsubscribed');
    expect((await login.session()).user.email).toBe(ANA.email);
    expect(handoff.state).toBe('disconnected'); // nothing to watch: no socket was opened
  });

  it('a 200-path login with wrong credentials rejects asyncLogin() itself with invalid_credentials', async () => {
    const handoff = clients.make({ url: cluster.browser });
    const err = await rejectionOf(handoff.asyncLogin({ email: ANA.email, password: 'wrong-password' }, { wait: 10 }));
    expect(err).toMatchObject({ code: 'invalid_credentials', status: 401 });
  });

  // Issue #3 (202 + a `login` flow): runs by itself as soon as the server answers 202.
  it('async login (202 path, issue #3): follows queued (position) → processing → succeeded, then redeems', async (ctx) => {
    if (!(await serverQueuesAsyncLogins())) ctx.skip();
    const handoff = clients.make({ url: cluster.browser });
    const login = await handoff.asyncLogin({ email: ANA.email, password: ANA.password });
    expect(login.queued).toBe(true);
    expect(login.state).toMatchObject({ kind: 'login', state: 'queued', version: 1, position: expect.any(Number) });
    expect(login.topic).toBe(`login:${login.id}`);
    const states: FlowState[] = [];
    login.on('state', (s) => states.push(s));
    const { token, user } = await login.session({ timeout: 20_000 });
    expect(token).toEqual(expect.any(String));
    expect(user.email).toBe(ANA.email);
    const names = states.map((s) => s.state);
    expect(names[0]).toBe('queued');
    expect(names).toContain('succeeded');
    expect(states.filter((s) => s.state === 'queued').every((s) => typeof s.position === 'number')).toBe(true);
  });

  it('async login (202 path, issue #3): wrong credentials end the flow as `failed`', async (ctx) => {
    if (!(await serverQueuesAsyncLogins())) ctx.skip();
    const handoff = clients.make({ url: cluster.browser });
    const login = await handoff.asyncLogin({ email: ANA.email, password: 'wrong-password' });
    const err = await rejectionOf(login.session({ timeout: 20_000 }));
    expect(err).toMatchObject({ code: 'failed', state: { state: 'failed', error: { code: 'invalid_credentials' } } });
  });
});
