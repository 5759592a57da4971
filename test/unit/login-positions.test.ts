import { afterEach, describe, expect, it } from 'vitest';
import type { FlowState } from '@handoff/protocol';
import type { FlowRecord } from '../../server/src/flows/flow-record.js';
import { toFlowState } from '../../server/src/flows/flow-state.js';
import { MemoryLoginCounters } from '../../server/src/login/login-counters.js';
import { LOGIN_TAKEN_SIGNAL, LoginPositions } from '../../server/src/login/login-positions.js';
import { TopicHub } from '../../server/src/realtime/topic-hub.js';

function queued(seq: number): FlowRecord {
  const now = Date.now();
  return { kind: 'login', id: `l${seq}`, state: 'queued', version: 1, expiresAt: now + 60_000, createdAt: now, watchTokenHash: 'x', seq };
}

/** N queued logins read once on this node (as a subscribe snapshot would), and the positions pushed to each. */
async function setUp(intervalMs: number, n: number) {
  const hub = new TopicHub();
  const counters = new MemoryLoginCounters();
  const positions = new LoginPositions(hub, counters, intervalMs);
  const pushed = new Map<string, number[]>();
  hub.addSink((s: FlowState) => {
    if (s.state === 'queued') pushed.get(s.topic)?.push(s.position!);
  });
  const records: FlowRecord[] = [];
  for (let i = 0; i < n; i++) {
    const record = queued(await counters.nextTicket());
    records.push(record);
    const snapshot = await positions.decorate(record, toFlowState(record));
    pushed.set(snapshot.topic, [snapshot.position!]);
  }
  /** A worker takes the next job: count it and signal, as LoginService.process does. */
  const take = async (record: FlowRecord) => {
    const taken = await counters.markTaken(record.id);
    hub.signal(LOGIN_TAKEN_SIGNAL, { taken: taken! });
    hub.deliver({ ...toFlowState(record), state: 'processing', version: 2 });
  };
  return { positions, pushed, records, take };
}

describe('queue positions', () => {
  const open: LoginPositions[] = [];
  afterEach(() => open.splice(0).forEach((p) => p.close()));

  it('with no interval, pushes every step of every queued login', async () => {
    const { positions, pushed, records, take } = await setUp(0, 20);
    open.push(positions);
    for (const record of records.slice(0, 10)) await take(record);
    // The 11th login was 10th in line: it saw 10, 9, …, 0.
    expect(pushed.get('login:l11')).toEqual([10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0]);
    expect(pushed.get('login:l20')).toEqual([19, 18, 17, 16, 15, 14, 13, 12, 11, 10, 9]);
    // Logins taken stop receiving positions: the first got its snapshot only.
    expect(pushed.get('login:l1')).toEqual([0]);
  });

  it('coalesces a burst of takes into one push per interval, exact and never rising', async () => {
    const { positions, pushed, records, take } = await setUp(100, 200);
    open.push(positions);
    // 150 jobs taken at once: the first take is pushed at once, the rest in one trailing sweep.
    for (const record of records.slice(0, 150)) await take(record);
    // Ticket 200 was 199th in line: the first take moved it to 198 at once…
    expect(pushed.get('login:l200')).toEqual([199, 198]);
    // …and the other 149 arrive as one push when the interval ends, with the newest count.
    await expect.poll(() => pushed.get('login:l200')!.length, { timeout: 2000, interval: 10 }).toBe(3);
    expect(pushed.get('login:l200')).toEqual([199, 198, 49]);
    // In all: at most two sweeps over the 50 still queued plus the first, instead of 150 x 200 / 2.
    const total = [...pushed.values()].reduce((n, p) => n + p.length - 1, 0);
    expect(total).toBeLessThanOrEqual(2 * 200);
    for (const seen of pushed.values()) for (let i = 1; i < seen.length; i++) expect(seen[i]).toBeLessThan(seen[i - 1]);
  });
});
