import { afterEach, describe, expect, it } from 'vitest';
import type { FlowState } from '@handoff/protocol';
import type { FlowRecord } from '../../server/src/flows/flow-record.js';
import { toFlowState } from '../../server/src/flows/flow-state.js';
import { MemoryLoginCounters, type LoginCounters } from '../../server/src/login/login-counters.js';
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

/** Position pushes made after each login's first snapshot, over all logins. */
const pushesAfterSnapshots = (pushed: Map<string, number[]>) => [...pushed.values()].reduce((n, p) => n + p.length - 1, 0);

/** Every login saw its position strictly fall, push after push. */
function expectFalling(pushed: Map<string, number[]>): void {
  for (const [topic, seen] of pushed) for (let i = 1; i < seen.length; i++) expect(seen[i], topic).toBeLessThan(seen[i - 1]);
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
    const { positions, pushed, records, take } = await setUp(100, 60);
    open.push(positions);
    // 45 jobs taken at once: the first take is pushed at once, the rest in one trailing sweep.
    for (const record of records.slice(0, 45)) await take(record);
    // Ticket 60 was 59th in line: the first take moved it to 58 at once…
    expect(pushed.get('login:l60')).toEqual([59, 58]);
    // …and the other 44 arrive as one push when the interval ends, with the newest count.
    await expect.poll(() => pushed.get('login:l60')!.length, { timeout: 2000, interval: 10 }).toBe(3);
    expect(pushed.get('login:l60')).toEqual([59, 58, 14]);
    // In all: at most two sweeps over the 15 still queued plus the first, instead of 45 x 60 / 2.
    const total = pushesAfterSnapshots(pushed);
    expect(total).toBeLessThanOrEqual(2 * 60);
    expectFalling(pushed);
  });

  it('coalesces takes over a queue longer than one sweep chunk: later chunks carry the newest count', async () => {
    const { positions, pushed, records, take } = await setUp(100, 200);
    open.push(positions);
    // 150 jobs taken at once: the first take starts a sweep; its first 64 logins move at once…
    for (const record of records.slice(0, 150)) await take(record);
    expect(pushed.get('login:l10')).toEqual([9, 8]);
    // …and its later chunks, in the next turns, push the newest count directly.
    await expect.poll(() => pushed.get('login:l200')!.length, { timeout: 2000, interval: 10 }).toBe(2);
    expect(pushed.get('login:l200')).toEqual([199, 49]);
    expect(pushed.get('login:l160')).toEqual([159, 9]);
    const total = pushesAfterSnapshots(pushed);
    expect(total).toBeLessThanOrEqual(2 * 200);
    expectFalling(pushed);
  });

  it('spreads a sweep over event-loop turns, 64 logins per turn, each chunk with the newest count', async () => {
    const { positions, pushed, records, take } = await setUp(0, 200);
    open.push(positions);
    const moved = () => [...pushed.values()].filter((p) => p.length > 1).length;
    await take(records[0]);
    // The first chunk (l1…l64; l1 itself, being taken, stays at 0) goes at once; the loop is free
    // again before the next.
    expect(moved()).toBe(63);
    await new Promise((r) => setImmediate(r));
    expect(moved()).toBe(127);
    // A take between chunks: the chunks still to come push the newest position directly.
    await take(records[1]);
    await expect.poll(moved, { timeout: 2000, interval: 5 }).toBe(199);
    expect(pushed.get('login:l200')).toEqual([199, 197]);
    expect(pushed.get('login:l10')).toEqual([9, 8, 7]);
    expectFalling(pushed);
  });

  it('forgets a login whose later states never reached this node once it is past its expiry', async () => {
    const hub = new TopicHub();
    const counters = new MemoryLoginCounters();
    const positions = new LoginPositions(hub, counters, 0);
    open.push(positions);
    const missed = { ...queued(await counters.nextTicket()), expiresAt: Date.now() - 1 };
    const waiting = queued(await counters.nextTicket());
    await positions.decorate(missed, toFlowState(missed));
    await positions.decorate(waiting, toFlowState(waiting));
    expect(positions.size()).toBe(2);
    hub.signal(LOGIN_TAKEN_SIGNAL, { taken: (await counters.markTaken('another'))! });
    expect(positions.size()).toBe(1);
  });

  it('reads the taken count from the store at most every 100 ms; take signals keep it current between', async () => {
    const hub = new TopicHub();
    const counters = new MemoryLoginCounters();
    let reads = 0;
    const counting: LoginCounters = {
      nextTicket: () => counters.nextTicket(),
      markTaken: (flowId) => counters.markTaken(flowId),
      taken: () => (reads++, counters.taken()),
    };
    let now = 0;
    const positions = new LoginPositions(hub, counting, 0, () => now);
    open.push(positions);
    const records = [queued(await counters.nextTicket()), queued(await counters.nextTicket()), queued(await counters.nextTicket())];
    const positionOf = async (r: FlowRecord) => (await positions.decorate(r, toFlowState(r))).position;
    // Concurrent reads share one store read.
    expect(await Promise.all(records.map(positionOf))).toEqual([0, 1, 2]);
    expect(reads).toBe(1);
    // A take this node hears of moves the positions at once, without a store read.
    hub.signal(LOGIN_TAKEN_SIGNAL, { taken: (await counters.markTaken(records[0].id))! });
    expect(await positionOf(records[2])).toBe(1);
    // A take whose signal this node missed shows once the count is 100 ms old, not before.
    await counters.markTaken(records[1].id);
    now = 99;
    expect(await positionOf(records[2])).toBe(1);
    expect(reads).toBe(1);
    now = 100;
    expect(await positionOf(records[2])).toBe(0);
    expect(reads).toBe(2);
  });
});
