/**
 * The resync after a node's Redis subscriber connection came back (realtime/resync.ts): what was
 * committed elsewhere meanwhile reached nobody on this node, so the node re-delivers the current
 * state of every topic it has subscribers for: a flow's state, and a phone's user channel
 * (`user:me`) its live approvals. Two in-process nodes on one Redis; the commits are made on B
 * directly in the store (no publish at all: the worst case of a missed message), then A's
 * subscriber connection is dropped and reconnects by itself.
 */
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ANA } from '../harness/cluster.js';
import { WsClient, http } from '../harness/clients.js';
import { startInProcess, testConfig, useRedisServer, type InProcessServer } from '../harness/in-process.js';
import { parseSeedUsers, seedUsers } from '../../server/src/users/seed-users.js';

const redis = useRedisServer();

describe('resync after the subscriber connection came back', () => {
  let a: InProcessServer;
  let b: InProcessServer;
  let phone: WsClient;
  let browser: WsClient;
  let anaId: string;
  let anaToken: string;

  beforeAll(async () => {
    const config = testConfig({ name: 'redis', redis: true }, redis, 'resync');
    a = await startInProcess(config);
    b = await startInProcess(config);
    await seedUsers(a.server.handoff.users, parseSeedUsers(`${ANA.email}:${ANA.password}:${ANA.displayName}`));
    const res = await http(b.base, 'POST', '/v1/sessions', { body: { email: ANA.email, password: ANA.password } });
    anaToken = res.body.token;
    anaId = decodeJwt(anaToken).sub!;
    phone = await WsClient.connect(a.base, { authorization: `Bearer ${anaToken}` });
    browser = await WsClient.connect(a.base);
  });
  afterAll(async () => {
    phone?.socket.close();
    browser?.socket.close();
    await b?.close();
    await a?.close();
  });

  it('re-pushes a flow state and a user channel approval committed while it was away', async () => {
    expect(await phone.request('subscribe', { topic: 'user:me' })).toMatchObject({ ok: true, state: { topic: 'user:me', approvals: [] } });
    const created = await http(a.base, 'POST', '/v1/qr', { headers: { 'user-agent': 'TestBrowser/1.0' } });
    const qr = created.body as { id: string; topic: string; watchToken: string };
    expect((await browser.request('subscribe', { topic: qr.topic, watchToken: qr.watchToken })).ok).toBe(true);

    // Committed on B without any publish: A's subscribers cannot have heard of them.
    const flows = b.server.handoff.flows;
    const approval = await flows.createCapped(
      'approval',
      60_000,
      { userId: anaId, requester: { ip: '203.0.113.7', userAgent: 'TestBrowser/1.0', createdAt: new Date().toISOString() }, number: 42, choices: [17, 42, 88] },
      { group: `approval:${anaId}`, max: 5 },
    );
    expect(approval).not.toBeNull();
    const scanned = await b.server.handoff.backend.flows.transition({ kind: 'qr', id: qr.id, to: 'scanned', from: ['pending'], patch: { userId: anaId }, now: Date.now(), tombstoneMs: 60_000 });
    expect(scanned.ok).toBe(true);

    a.server.handoff.backend.redis!.sub.disconnect(true); // dropped; ioredis reconnects by itself

    const pushed = (await phone.states.waitFor((s) => s.id === approval!.record.id)) as any;
    expect(pushed).toMatchObject({ topic: 'user:me', kind: 'approval', state: 'pending', choices: [17, 42, 88] });
    expect(pushed).not.toHaveProperty('number');
    expect(pushed).not.toHaveProperty('userId');
    await browser.states.waitFor((s) => s.topic === qr.topic && s.state === 'scanned');
  });
});
