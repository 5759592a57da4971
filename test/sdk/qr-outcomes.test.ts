/**
 * How a QR login ends when it does not end well, and the per-call bounds of waiting, through the
 * SDK against a real embedded server (QR flows live 2 s here, so expiry comes quickly).
 */
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { HandoffError, type TransportState } from '@handoff/client-sdk';
import { ANA, BOB, MODES, login, startCluster, type Cluster } from '../harness/cluster.js';
import { Clients, recordStates, rejectionOf, stateReached } from './helpers.js';

let cluster: Cluster;
let anaToken: string;
let bobToken: string;
const clients = new Clients();

beforeAll(async () => {
  cluster = await startCluster(MODES[0], { QR_TTL_SECONDS: '2' });
  [anaToken, bobToken] = await Promise.all([login(cluster.phone, ANA), login(cluster.phone, BOB)]);
});
afterEach(() => clients.closeAll());
afterAll(() => cluster?.stop());

it('session() rejects with `expired` when nobody confirms in time', async () => {
  const handoff = clients.make({ url: cluster.browser });
  const qr = await handoff.qrLogin();
  const states = recordStates(qr);
  const err = await rejectionOf(qr.session({ timeout: 15_000 }));
  expect(err).toBeInstanceOf(HandoffError);
  expect(err).toMatchObject({ code: 'expired', state: { state: 'expired', version: 2 } });
  expect(states.map((s) => s.state)).toEqual(['pending', 'expired']);
  expect(qr.subscriptionState).toBe('unsubscribed');
});

it('cancel() resolves even when the cancelled push arrives before its own HTTP answer', async () => {
  let pushed!: () => void;
  const pushArrived = new Promise<void>((resolve) => (pushed = resolve));
  // Hold the DELETE's answer back until the socket has delivered the `cancelled` push.
  const slowDelete: typeof fetch = async (input, init) => {
    const res = await fetch(input, init);
    if (init?.method === 'DELETE') await pushArrived;
    return res;
  };
  const handoff = clients.make({ url: cluster.browser, fetch: slowDelete });
  const qr = await handoff.qrLogin();
  qr.on('state', (s) => s.state === 'cancelled' && pushed());
  if (qr.subscriptionState !== 'subscribed') {
    await new Promise<void>((resolve) => qr.on('subscription', (e) => e.newState === 'subscribed' && resolve()));
  }
  const outcome = rejectionOf(qr.session());
  expect(await qr.cancel()).toMatchObject({ state: 'cancelled', version: 2 });
  expect(await outcome).toMatchObject({ code: 'cancelled' });
});

it('the browser cancels: cancel() answers the cancelled state and session() rejects with `cancelled`', async () => {
  const handoff = clients.make({ url: cluster.browser });
  const qr = await handoff.qrLogin();
  const outcome = rejectionOf(qr.session());
  const cancelled = await qr.cancel();
  expect(cancelled).toMatchObject({ state: 'cancelled', version: 2 });
  expect(await outcome).toMatchObject({ code: 'cancelled' });
  await expect(qr.cancel()).rejects.toMatchObject({ code: 'invalid_transition', status: 409, state: { state: 'cancelled' } });
});

it('a flow already confirmed when session() is first called is redeemed then', async () => {
  const handoff = clients.make({ url: cluster.browser });
  const app = clients.make({ url: cluster.phone, token: anaToken });
  const qr = await handoff.qrLogin();
  await app.scan(qr.id);
  await app.confirm(qr.id);
  await stateReached(qr, 'confirmed');
  expect((await qr.session()).user.email).toBe(ANA.email);
});

it('session({timeout}) and session({signal}) give up alone: the flow goes on and a later call gets the session', async () => {
  const handoff = clients.make({ url: cluster.browser });
  const app = clients.make({ url: cluster.phone, token: anaToken });
  const qr = await handoff.qrLogin();
  expect(await rejectionOf(qr.session({ timeout: 1 }))).toMatchObject({ code: 'timeout' });
  const controller = new AbortController();
  const aborted = rejectionOf(qr.session({ signal: controller.signal }));
  controller.abort();
  expect(await aborted).toMatchObject({ code: 'aborted' });
  await app.scan(qr.id);
  await app.confirm(qr.id);
  expect((await qr.session()).user.email).toBe(ANA.email);
});

it('app actions carry the server codes: not_scanner, invalid_transition, not_found, and unauthorized without a token', async () => {
  const handoff = clients.make({ url: cluster.browser });
  const ana = clients.make({ url: cluster.phone, token: anaToken });
  const bob = clients.make({ url: cluster.phone, token: bobToken });
  const anonymous = clients.make({ url: cluster.phone });
  const qr = await handoff.qrLogin();

  await expect(ana.confirm(qr.id)).rejects.toMatchObject({ code: 'invalid_transition', status: 409, state: { state: 'pending' } });
  await ana.scan(qr.id);
  const err = await rejectionOf(bob.confirm(qr.id));
  expect(err).toBeInstanceOf(HandoffError);
  expect(err).toMatchObject({ name: 'HandoffError', code: 'not_scanner', status: 403 });
  await expect(ana.scan('AAAAAAAAAAAAAAAAAAAAAA')).rejects.toMatchObject({ code: 'not_found', status: 404 });
  await expect(anonymous.scan(qr.id)).rejects.toMatchObject({ code: 'unauthorized' });
  qr.close();
  await expect(qr.session()).rejects.toMatchObject({ code: 'closed' });
});

it('the same codes come back over socket acks', async () => {
  const handoff = clients.make({ url: cluster.browser });
  const bob = clients.make({ url: cluster.phone, token: bobToken });
  const ana = clients.make({ url: cluster.phone, token: anaToken });
  await Promise.all([bob.connect(), ana.connect()]);
  const qr = await handoff.qrLogin();
  await ana.scan(qr.id);
  await expect(bob.confirm(qr.id)).rejects.toMatchObject({ code: 'not_scanner' });
  await expect(ana.scan(qr.id)).rejects.toMatchObject({ code: 'invalid_transition', state: { state: 'scanned' } });
});

it('with longPoll: false a refused token never turns into long-poll, also when connecting again', async () => {
  const app = clients.make({ url: cluster.phone, token: 'not-a-jwt', longPoll: false });
  const states: TransportState[] = [];
  const refused = new Promise<void>((resolve) =>
    app.on('transport', (e) => {
      states.push(e.newState);
      if (e.oldState === 'connecting' && e.newState === 'disconnected') resolve();
    }),
  );
  void app.connect({ timeout: 10_000 }).catch(() => {});
  await refused;
  app.disconnect();
  // Connecting again knows the token was refused: it must stay down, not switch to long-poll.
  const again = app.connect({ timeout: 200 });
  expect(app.state).toBe('disconnected');
  await expect(again).rejects.toMatchObject({ code: 'timeout' });
  expect(states).not.toContain('fallback');
});

it('a socket refused for a bad token falls back to HTTP, where the server answers unauthorized', async () => {
  const app = clients.make({ url: cluster.phone, token: 'not-a-jwt' });
  await expect(app.connect({ timeout: 10_000 })).resolves.toBe('fallback');
  await expect(app.scan('AAAAAAAAAAAAAAAAAAAAAA')).rejects.toMatchObject({ code: 'unauthorized', status: 401 });
});
