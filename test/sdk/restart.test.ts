/**
 * The server is killed (SIGKILL) mid-flow and started again on the same port, state kept in a
 * private Redis: the SDK reconnects its socket, resubscribes, takes the snapshot and still
 * resolves session(). Real processes throughout.
 */
import { afterEach, expect, it } from 'vitest';
import { Handoff, type SubscriptionEvent } from '@handoff/client-sdk';
import { ANA, SEED_USERS, login } from '../harness/cluster.js';
import { http } from '../harness/clients.js';
import { startRedis, uniquePrefix, type RedisHandle } from '../harness/redis-server.js';
import { startServerProcess, type ServerProcess } from '../harness/server-process.js';
import { Clients, recordStates, recordTransport, stateReached, subscribed, transportReached } from './helpers.js';

const clients = new Clients();
let redis: RedisHandle | null = null;
const servers: ServerProcess[] = [];

afterEach(async () => {
  clients.closeAll();
  await Promise.all(servers.splice(0).map((s) => s.kill()));
  await redis?.stop();
  redis = null;
});

it('after a kill -9 and a restart on the same port, the SDK resubscribes and session() still resolves', { timeout: 60_000 }, async () => {
  redis = await startRedis();
  const env = { REDIS_URL: redis.url, REDIS_PREFIX: uniquePrefix('sdk-restart'), SEED_USERS };
  const first = await startServerProcess(env);
  servers.push(first);
  const appToken = await login(first.url, ANA);

  // Socket only (no long-poll), quick retries: the recovery must come from reconnecting the socket.
  const handoff = clients.make({ url: first.url, longPoll: false, minReconnectDelay: 100, maxReconnectDelay: 1_000 });
  const app = clients.make({ url: first.url, token: appToken });
  const transport = recordTransport(handoff);
  const qr = await handoff.qrLogin();
  const states = recordStates(qr);
  const subscriptions: SubscriptionEvent[] = [];
  qr.on('subscription', (e) => subscriptions.push(e));
  const outcome = qr.session({ timeout: 45_000 });
  await subscribed(qr);

  await app.scan(qr.id);
  await stateReached(qr, 'scanned');

  await first.kill();
  await transportReached(handoff, (state) => state === 'connecting');
  expect(qr.subscriptionState).toBe('subscribing');

  const second = await startServerProcess({ ...env, PORT: String(first.port) });
  servers.push(second);
  expect(second.url).toBe(first.url);
  // Confirm on the new process, over HTTP, whether or not the SDK is back yet.
  const confirmed = await http(second.url, 'POST', `/v1/qr/${qr.id}/confirm`, { headers: { authorization: `Bearer ${appToken}` } });
  expect(confirmed).toMatchObject({ status: 200, body: { state: 'confirmed', version: 3 } });

  const session = await outcome;
  expect(session.user.email).toBe(ANA.email);
  await stateReached(qr, 'redeemed');
  expect(states.map((s) => `${s.state}@${s.version}`)).toEqual(['pending@1', 'scanned@2', 'confirmed@3', 'redeemed@4']);

  // The path back: the socket dropped, came back, and the flow was subscribed again (snapshot).
  const codes = transport.map((e) => `${e.newState}/${e.code}`);
  expect(codes.slice(0, 3)).toEqual(['connecting/connect', 'connected/connected', 'connecting/socket_closed']);
  expect(codes).toContain('connected/connected');
  expect(codes.lastIndexOf('connected/connected')).toBeGreaterThan(2);
  const subs = subscriptions.map((e) => `${e.newState}/${e.code}`);
  expect(subs).toEqual(expect.arrayContaining(['subscribing/transport_changed']));
  expect(subs.filter((s) => s === 'subscribed/subscribed').length).toBe(2);
  expect(subs.at(-1)).toBe('unsubscribed/final');
});
