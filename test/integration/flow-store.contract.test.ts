/**
 * One behaviour, two implementations: every test in the `describe.each` block runs against
 * MemoryFlowStore (embedded mode) and RedisFlowStore (a private redis-server from the harness).
 *
 * Time is passed explicitly (`now`), never slept. The only real waiting is for Redis to purge a
 * tombstone (real PEXPIRE), polled with vi.waitFor; the memory store's clock is advanced instead.
 */
import { groupShard, mintFlowIdInShard } from '../../server/src/store/keys.js';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  FINAL_STATES,
  INITIAL_STATE,
  LOGIN_STATES,
  QR_STATES,
  APPROVAL_STATES,
  TRANSITIONS,
  allowedFrom,
  isFinalState,
  type FlowKind,
  type FlowStateName,
} from '@handoff/protocol';
import type { FlowPatch, FlowRecord, TransitionRequest } from '../../server/src/flows/flow-record.js';
import type { FlowStore } from '../../server/src/flows/flow-store.js';
import { MemoryFlowStore } from '../../server/src/flows/memory-flow-store.js';
import { RedisFlowStore } from '../../server/src/flows/redis-flow-store.js';
import { FLOW_SHARDS, flowShard, RedisKeys } from '../../server/src/store/keys.js';
import { LUA_PRELUDE, luaScript } from '../../server/src/store/lua-scripts.js';
import { uniquePrefix } from '../harness/redis-server.js';
import { countByPrefix, deleteByPrefix, memoryStoreFixture, redisStoreFixture, useContractRedis, CLUSTER_SAFE, CLUSTER_SKIP_REASON, type ContractRedis, type StoreFixture } from '../harness/store-contract.js';

const TTL_MS = 60_000;
const LONG_TOMBSTONE_MS = 60_000;
const SHORT_TOMBSTONE_MS = 300;

const ctx = useContractRedis();
const sentinel = useContractRedis('sentinel');

interface Fixture extends StoreFixture<FlowStore> {
  /** "Now" for this store: a frozen fake clock (memory) or the real clock (ctx.redis). */
  now(): number;
  /** Let `ms` of store time pass: advances the fake clock (memory); real time passes by itself (ctx.redis). */
  elapse(ms: number): void;
  /**
   * Flows the store holds, without reading any of them (a read purges lazily): memory counts its
   * map after its own timed sweep has run; Redis counts the flow hashes under the prefix (SCAN).
   */
  heldFlows(): Promise<number>;
}

const memoryFixture = (): Fixture => {
  let fakeNow = Date.now();
  const sweeps: Array<() => void> = [];
  const store = new MemoryFlowStore({
    clock: () => fakeNow,
    sweepIntervalMs: 5,
    onSweep: () => sweeps.splice(0).forEach((resolve) => resolve()),
  });
  return {
    ...memoryStoreFixture<FlowStore>(store, () => store.close()),
    now: () => fakeNow,
    elapse: (ms) => {
      fakeNow += ms;
    },
    heldFlows: async () => {
      // The store's own timer sweeps; wait for the next sweep (an event, not a sleep).
      if (store.size() > 0) await new Promise<void>((resolve) => sweeps.push(resolve));
      return store.size();
    },
  };
};

const redisFixture = (c: ContractRedis): Fixture => {
  const prefix = uniquePrefix('flow');
  return {
    ...redisStoreFixture<FlowStore>(c, 'flow', (conn, p) => new RedisFlowStore(conn, { prefix: p }), (store) => store.close(), prefix),
    now: () => Date.now(),
    elapse: () => {},
    heldFlows: () => countByPrefix(c.redis, `${prefix}flow:`),
  };
};

const STATES: Record<FlowKind, readonly FlowStateName[]> = { qr: QR_STATES, login: LOGIN_STATES, approval: APPROVAL_STATES };

function newId(): string {
  return randomBytes(16).toString('base64url');
}

/** Every allowed (kind, from, to) edge of the protocol's state machines. */
const ALLOWED_EDGES: Array<{ kind: FlowKind; from: FlowStateName; to: FlowStateName }> = (['qr', 'login', 'approval'] as const).flatMap(
  (kind) =>
    Object.entries(TRANSITIONS[kind]).flatMap(([to, froms]) =>
      (froms as readonly FlowStateName[]).map((from) => ({ kind, from, to: to as FlowStateName })),
    ),
);

/** A patch to exercise on an edge (what the services set there). */
function patchFor(kind: FlowKind, to: FlowStateName): FlowPatch | undefined {
  if (kind === 'qr' && to === 'scanned') {
    return { userId: 'user-1', scannedBy: { userId: 'user-1', displayName: 'Ana Ñuñez 🚀', avatarUrl: null } };
  }
  if (kind === 'login' && to === 'failed') return { error: { code: 'invalid_credentials', message: 'nope' } };
  if (kind === 'login' && to === 'succeeded') return { userId: 'user-2' };
  return undefined;
}

/** The contract, on one store: memory, or Redis on each topology (the describe blocks below). */
function contract(_name: string, makeFixture: () => Fixture): void {
  let fx: Fixture;
  let store: FlowStore;

  beforeEach(() => {
    fx = makeFixture();
    store = fx.store;
  });

  afterEach(async () => {
    await fx.cleanup();
  });

  function record(overrides: Partial<FlowRecord> = {}): FlowRecord {
    const kind = overrides.kind ?? 'qr';
    const now = fx.now();
    return {
      kind,
      id: newId(),
      state: INITIAL_STATE[kind],
      version: 1,
      createdAt: now,
      expiresAt: now + TTL_MS,
      watchTokenHash: 'ab'.repeat(32),
      ...overrides,
    };
  }

  async function created(overrides: Partial<FlowRecord> = {}, tombstoneMs = LONG_TOMBSTONE_MS): Promise<FlowRecord> {
    const r = record(overrides);
    await store.create(r, tombstoneMs);
    return r;
  }

  function req(r: FlowRecord, to: FlowStateName, extra: Partial<TransitionRequest> = {}): TransitionRequest {
    return {
      kind: r.kind,
      id: r.id,
      to,
      from: allowedFrom(r.kind, to),
      now: fx.now(),
      tombstoneMs: LONG_TOMBSTONE_MS,
      ...extra,
    };
  }

  describe('create / get', () => {
    it('round-trips a record with nested fields, at version 1', async () => {
      const qr = await created({
        userId: 'user-9',
        requester: { ip: '203.0.113.7', userAgent: 'Mozilla/5.0 "quoted" \\ back', createdAt: '2026-01-02T03:04:05.000Z' },
        scannedBy: { userId: 'user-9', displayName: 'Zoë 🚀 <b>', avatarUrl: 'https://example.com/a.png?x=1&y=2' },
      });
      const login = await created({
        kind: 'login',
        state: 'queued',
        error: { code: 'invalid_credentials', message: 'línea 1\nlínea 2' },
      });
      const gotQr = await store.get('qr', qr.id);
      expect(gotQr).toEqual(qr);
      expect(gotQr!.version).toBe(1);
      expect(typeof gotQr!.expiresAt).toBe('number');
      expect(await store.get('login', login.id)).toEqual(login);
    });

    it('keeps optional fields absent and null values null', async () => {
      const r = await created({ scannedBy: { userId: 'u', displayName: 'U', avatarUrl: null } });
      const got = await store.get('qr', r.id);
      expect(got).toEqual(r);
      expect(got!.scannedBy!.avatarUrl).toBeNull();
      expect(got).not.toHaveProperty('userId');
      expect(got).not.toHaveProperty('requester');
      expect(got).not.toHaveProperty('error');
    });

    it('returns copies: mutating a result does not change the stored record', async () => {
      const r = await created({ scannedBy: { userId: 'u', displayName: 'Before', avatarUrl: null } });
      const got = (await store.get('qr', r.id))!;
      got.scannedBy!.displayName = 'After';
      got.state = 'redeemed';
      expect(await store.get('qr', r.id)).toEqual(r);
    });

    it('answers null for an unknown id, and for the same id under the other kind', async () => {
      const r = await created();
      expect(await store.get('qr', newId())).toBeNull();
      expect(await store.get('login', r.id)).toBeNull();
    });

    it('create replaces a record with the same kind and id', async () => {
      const first = await created({ userId: 'user-1' });
      const second = record({ id: first.id, watchTokenHash: 'cd'.repeat(32) });
      await store.create(second, LONG_TOMBSTONE_MS);
      const got = await store.get('qr', first.id);
      expect(got).toEqual(second);
      expect(got).not.toHaveProperty('userId');
    });

    it('a flow created already past expiresAt + tombstoneMs is not readable nor due', async () => {
      const now = fx.now();
      const r = await created({ expiresAt: now - 2_000 }, 1_000);
      expect(await store.get('qr', r.id)).toBeNull();
      expect(await store.dueForExpiry(now, 10)).toEqual([]);
    });
  });

  describe('transition', () => {
    it.each(ALLOWED_EDGES)('$kind: $from → $to applies, version 1 → 2', async ({ kind, from, to }) => {
      const r = await created({ kind, state: from });
      const patch = patchFor(kind, to);
      // `expired` is only accepted once expiresAt has passed; every other edge before it.
      const now = to === 'expired' ? r.expiresAt : r.expiresAt - 1;
      const res = await store.transition(req(r, to, { now, patch }));
      const expected: FlowRecord = { ...r, ...patch, state: to, version: 2 };
      expect(res).toEqual({ ok: true, record: expected });
      expect(await store.get(kind, r.id)).toEqual(expected);
    });

    it('walks qr pending → scanned → confirmed → redeemed, +1 version per step', async () => {
      const r = await created();
      const steps: FlowStateName[] = ['scanned', 'confirmed', 'redeemed'];
      let version = 1;
      for (const to of steps) {
        const res = await store.transition(req(r, to, { patch: patchFor('qr', to) }));
        expect(res.ok).toBe(true);
        if (!res.ok) continue;
        expect(res.record.state).toBe(to);
        expect(res.record.version).toBe(++version);
        expect((await store.get('qr', r.id))!.version).toBe(version);
      }
      const final = (await store.get('qr', r.id))!;
      expect(final).toMatchObject({ state: 'redeemed', version: 4, userId: 'user-1' });
      expect(final.scannedBy).toEqual({ userId: 'user-1', displayName: 'Ana Ñuñez 🚀', avatarUrl: null });
    });

    it('walks login queued → processing → failed, keeping the error', async () => {
      const r = await created({ kind: 'login', state: 'queued' });
      expect(await store.transition(req(r, 'processing'))).toMatchObject({ ok: true, record: { version: 2 } });
      const failed = await store.transition(req(r, 'failed', { patch: patchFor('login', 'failed') }));
      expect(failed).toEqual({
        ok: true,
        record: { ...r, state: 'failed', version: 3, error: { code: 'invalid_credentials', message: 'nope' } },
      });
    });

    it.each(['qr', 'login', 'approval'] as const)('%s: every disallowed transition → invalid_transition with the current record', async (kind) => {
      const checked: string[] = [];
      for (const state of STATES[kind]) {
        for (const to of STATES[kind]) {
          if (allowedFrom(kind, to).includes(state)) continue;
          const r = await created({ kind, state });
          // Before expiresAt, except `expired`, which is tried after it (only `from` can refuse it then).
          const now = to === 'expired' ? r.expiresAt + 1 : r.expiresAt - 1;
          const res = await store.transition(req(r, to, { now }));
          expect(res, `${kind}: ${state} → ${to}`).toEqual({ ok: false, reason: 'invalid_transition', record: r });
          expect(await store.get(kind, r.id), `${kind}: ${state} → ${to} left it unchanged`).toEqual(r);
          checked.push(`${state}→${to}`);
        }
      }
      expect(checked.length).toBe(STATES[kind].length ** 2 - ALLOWED_EDGES.filter((e) => e.kind === kind).length);
    });

    it('unknown flow → not_found (no record)', async () => {
      const r = record();
      expect(await store.transition(req(r, 'scanned'))).toEqual({ ok: false, reason: 'not_found' });
    });

    it('of 20 racing pending → scanned attempts exactly one wins; the losers see its result', async () => {
      const r = await created();
      const stores = [store, ...fx.peers(3)];
      const results = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          stores[i % stores.length].transition(
            req(r, 'scanned', {
              patch: { userId: `user-${i}`, scannedBy: { userId: `user-${i}`, displayName: `U${i}`, avatarUrl: null } },
            }),
          ),
        ),
      );
      const winners = results.filter((x) => x.ok);
      expect(winners).toHaveLength(1);
      const winner = winners[0].record;
      expect(winner).toMatchObject({ state: 'scanned', version: 2 });
      for (const loser of results.filter((x) => !x.ok)) {
        expect(loser).toEqual({ ok: false, reason: 'invalid_transition', record: winner });
      }
      expect(await store.get('qr', r.id)).toEqual(winner);
    });

    it('of 20 racing redeems exactly one wins', async () => {
      const r = await created({ state: 'confirmed', userId: 'user-1' });
      const stores = [store, ...fx.peers(3)];
      const results = await Promise.all(
        Array.from({ length: 20 }, (_, i) => stores[i % stores.length].transition(req(r, 'redeemed'))),
      );
      expect(results.filter((x) => x.ok)).toHaveLength(1);
      expect(results.filter((x) => !x.ok && x.reason === 'invalid_transition')).toHaveLength(19);
      expect(await store.get('qr', r.id)).toMatchObject({ state: 'redeemed', version: 2 });
    });

    describe('requireUserId', () => {
      it('mismatch → not_user with the current record; match → ok', async () => {
        const r = await created({ state: 'scanned', userId: 'user-1' });
        expect(await store.transition(req(r, 'confirmed', { requireUserId: 'user-2' }))).toEqual({
          ok: false,
          reason: 'not_user',
          record: r,
        });
        expect(await store.get('qr', r.id)).toEqual(r);
        expect(await store.transition(req(r, 'confirmed', { requireUserId: 'user-1' }))).toEqual({
          ok: true,
          record: { ...r, state: 'confirmed', version: 2 },
        });
      });

      it('a flow without userId fails any requireUserId, even the empty string', async () => {
        const r = await created({ state: 'scanned' });
        expect(await store.transition(req(r, 'confirmed', { requireUserId: 'user-1' }))).toMatchObject({
          ok: false,
          reason: 'not_user',
        });
        expect(await store.transition(req(r, 'confirmed', { requireUserId: '' }))).toMatchObject({
          ok: false,
          reason: 'not_user',
        });
      });

      it('is checked after the state: wrong state and wrong user → invalid_transition', async () => {
        const r = await created({ state: 'pending', userId: 'user-1' });
        expect(await store.transition(req(r, 'confirmed', { requireUserId: 'user-2' }))).toMatchObject({
          ok: false,
          reason: 'invalid_transition',
        });
      });
    });

    describe('expiry', () => {
      it('expired_due once expiresAt <= now, for any target but expired, with the current record', async () => {
        const r = await created({ state: 'scanned', userId: 'user-1' });
        for (const to of ['confirmed', 'cancelled', 'scanned'] as const) {
          // expired_due comes first: before the state check and the user check.
          const res = await store.transition(req(r, to, { now: r.expiresAt, requireUserId: 'someone-else' }));
          expect(res, to).toEqual({ ok: false, reason: 'expired_due', record: r });
        }
        expect(await store.transition(req(r, 'confirmed', { now: r.expiresAt - 1 }))).toMatchObject({ ok: true });
      });

      it('a final flow past expiresAt is not expired_due (invalid_transition instead)', async () => {
        const r = await created({ state: 'cancelled' });
        expect(await store.transition(req(r, 'confirmed', { now: r.expiresAt + 1 }))).toEqual({
          ok: false,
          reason: 'invalid_transition',
          record: r,
        });
      });

      it('expired is refused before expiresAt and accepted from it', async () => {
        const r = await created();
        expect(await store.transition(req(r, 'expired', { now: r.expiresAt - 1 }))).toEqual({
          ok: false,
          reason: 'invalid_transition',
          record: r,
        });
        expect(await store.transition(req(r, 'expired', { now: r.expiresAt }))).toEqual({
          ok: true,
          record: { ...r, state: 'expired', version: 2 },
        });
        // Final now: a second expiry is refused by the state check.
        expect(await store.transition(req(r, 'expired', { now: r.expiresAt + 1 }))).toMatchObject({
          ok: false,
          reason: 'invalid_transition',
          record: { state: 'expired', version: 2 },
        });
      });
    });

    it('a patch with quotes, backslashes, control characters and non-BMP text round-trips', async () => {
      const r = await created();
      const userId = 'ü-🚀-"\\-{"a":[1]}';
      const scannedBy = { userId, displayName: 'Ana "A\\" \n\t\u0000 Ñ 🚀 \ud800 {"json":[1]}', avatarUrl: 'https://x/?a="b"&c=\\' };
      const res = await store.transition(req(r, 'scanned', { patch: { userId, scannedBy } }));
      const expected: FlowRecord = { ...r, userId, scannedBy, state: 'scanned', version: 2 };
      expect(res).toEqual({ ok: true, record: expected });
      expect(await store.get('qr', r.id)).toEqual(expected);
    });

    it('a patch key present with value undefined clears the field', async () => {
      const r = await created({ state: 'scanned', userId: 'user-1', scannedBy: { userId: 'user-1', displayName: 'A', avatarUrl: null } });
      const res = await store.transition(req(r, 'cancelled', { patch: { userId: undefined, scannedBy: undefined } }));
      expect(res.ok).toBe(true);
      const got = (await store.get('qr', r.id))!;
      expect(got.userId).toBeUndefined();
      expect(got.scannedBy).toBeUndefined();
      expect(got).toMatchObject({ state: 'cancelled', version: 2 });
    });
  });

  describe('dueForExpiry', () => {
    it('returns due non-final flows oldest first, up to limit, and not final or future ones', async () => {
      const now = fx.now();
      const a = await created({ expiresAt: now - 3_000 });
      const b = await created({ expiresAt: now - 1_000, state: 'confirmed' });
      const c = await created({ kind: 'login', state: 'processing', expiresAt: now - 2_000 });
      const atNow = await created({ kind: 'login', state: 'queued', expiresAt: now });
      const future = await created({ expiresAt: now + 1 });
      const cancelled = await created({ expiresAt: now - 4_000 });
      expect(await store.transition(req(cancelled, 'cancelled', { now: now - 5_000 }))).toMatchObject({ ok: true });
      const finalAtCreate = await created({ expiresAt: now - 5_000, state: 'redeemed' });

      const ref = (r: FlowRecord) => ({ kind: r.kind, id: r.id });
      expect(await store.dueForExpiry(now, 10)).toEqual([ref(a), ref(c), ref(b), ref(atNow)]);
      expect(await store.dueForExpiry(now, 2)).toEqual([ref(a), ref(c)]);
      expect(await store.dueForExpiry(now, 0)).toEqual([]);
      expect(await store.dueForExpiry(now - 10_000, 10)).toEqual([]);
      expect(await store.dueForExpiry(now + 1, 10)).toContainEqual(ref(future));
      expect(await store.dueForExpiry(now + 1, 10)).not.toContainEqual(ref(finalAtCreate));

      // Once expired, a flow is no longer due.
      expect(await store.transition(req(a, 'expired', { now }))).toMatchObject({ ok: true });
      expect(await store.dueForExpiry(now, 10)).toEqual([ref(c), ref(b), ref(atNow)]);
    });
  });

  describe('tombstones', () => {
    it('a final flow stays readable, then is gone after tombstoneMs', async () => {
      const r = await created({ state: 'confirmed', userId: 'user-1' });
      const res = await store.transition(req(r, 'redeemed', { tombstoneMs: SHORT_TOMBSTONE_MS }));
      expect(res).toMatchObject({ ok: true, record: { state: 'redeemed', version: 2 } });
      expect(await store.get('qr', r.id)).toMatchObject({ state: 'redeemed', version: 2 });

      fx.elapse(SHORT_TOMBSTONE_MS);
      await vi.waitFor(async () => expect(await store.get('qr', r.id)).toBeNull(), { timeout: 5_000, interval: 25 });
      expect(await store.transition(req(r, 'redeemed', { from: ['redeemed'] }))).toEqual({
        ok: false,
        reason: 'not_found',
      });
    });

    it('finished and never-moved flows leave the store after their tombstone without any read', async () => {
      // Longer than SHORT_TOMBSTONE_MS: on Redis the tombstones run on the real clock, and all 41
      // must still be there when counted after the 20 transitions and 21 creates.
      const tombstoneMs = 1_500;
      const now = fx.now();
      const cancelled = await Promise.all(Array.from({ length: 20 }, () => created({}, tombstoneMs)));
      for (const r of cancelled) {
        expect(await store.transition(req(r, 'cancelled', { tombstoneMs }))).toMatchObject({ ok: true });
      }
      await Promise.all(Array.from({ length: 20 }, () => created({ expiresAt: now + 100 }, tombstoneMs)));
      const kept = await created();
      expect(await fx.heldFlows()).toBe(41);

      fx.elapse(100 + tombstoneMs);
      await vi.waitFor(async () => expect(await fx.heldFlows()).toBe(1), { timeout: 5_000, interval: 25 });
      expect(await store.get('qr', kept.id)).toEqual(kept);
    });

    it('a flow nobody moves is forgotten at expiresAt + tombstoneMs', async () => {
      const r = await created({ expiresAt: fx.now() + 100 }, SHORT_TOMBSTONE_MS);
      expect(await store.get('qr', r.id)).toEqual(r);
      fx.elapse(100 + SHORT_TOMBSTONE_MS);
      await vi.waitFor(async () => expect(await store.get('qr', r.id)).toBeNull(), { timeout: 5_000, interval: 25 });
      expect(await store.dueForExpiry(fx.now() + TTL_MS, 10)).toEqual([]);
    });
  });

  describe('createCapped (approvals per user)', () => {
    const cap = (group: string, max = 2) => ({ group: `approval:${group}`, max });
    /** An approval record of `group`, its id minted into the group's shard (as FlowService does). */
    const member = (group: string, overrides: Partial<FlowRecord> = {}) =>
      record({ kind: 'approval', id: mintFlowIdInShard(groupShard(`approval:${group}`)), ...overrides });

    it('creates up to max live flows in a group, then refuses without writing', async () => {
      const group = newId();
      const a = member(group, { userId: 'u', number: 42, choices: [17, 42, 88] });
      const b = member(group);
      const c = member(group);
      expect(await store.createCapped(a, LONG_TOMBSTONE_MS, cap(group))).toBe(true);
      expect(await store.createCapped(b, LONG_TOMBSTONE_MS, cap(group))).toBe(true);
      expect(await store.createCapped(c, LONG_TOMBSTONE_MS, cap(group))).toBe(false);
      expect(await store.get('approval', a.id)).toEqual(a);
      expect(await store.get('approval', c.id)).toBeNull();
      expect((await store.liveInGroup(`approval:${group}`, fx.now())).sort()).toEqual([a.id, b.id].sort());
      // Another group is not affected.
      const other = newId();
      expect(await store.createCapped(member(other), LONG_TOMBSTONE_MS, cap(other))).toBe(true);
    });

    it('a flow that reached a final state frees its place', async () => {
      const group = newId();
      const a = member(group);
      await store.createCapped(a, LONG_TOMBSTONE_MS, cap(group, 1));
      expect(await store.createCapped(member(group), LONG_TOMBSTONE_MS, cap(group, 1))).toBe(false);
      expect((await store.transition(req(a, 'denied'))).ok).toBe(true);
      expect(await store.liveInGroup(`approval:${group}`, fx.now())).toEqual([]);
      expect(await store.createCapped(member(group), LONG_TOMBSTONE_MS, cap(group, 1))).toBe(true);
    });

    it('a flow past its expiresAt frees its place, even before anything expires it', async () => {
      const group = newId();
      const a = member(group, { expiresAt: fx.now() + 50 });
      await store.createCapped(a, LONG_TOMBSTONE_MS, cap(group, 1));
      const later = member(group, { createdAt: a.expiresAt, expiresAt: a.expiresAt + TTL_MS });
      expect(await store.liveInGroup(`approval:${group}`, a.expiresAt)).toEqual([]);
      expect(await store.createCapped(later, LONG_TOMBSTONE_MS, cap(group, 1))).toBe(true);
    });

    it('of 10 racing creates with room for 3, exactly 3 win', async () => {
      const group = newId();
      const results = await Promise.all(
        Array.from({ length: 10 }, () => store.createCapped(member(group), LONG_TOMBSTONE_MS, cap(group, 3))),
      );
      expect(results.filter(Boolean)).toHaveLength(3);
      expect(await store.liveInGroup(`approval:${group}`, fx.now())).toHaveLength(3);
    });
  });

  it('ping resolves', async () => {
    await expect(store.ping()).resolves.toBeUndefined();
  });
}

describe.each([
  ['memory', memoryFixture],
  ['redis', () => redisFixture(ctx)],
  ['redis sentinel', () => redisFixture(sentinel)],
] as const)('FlowStore contract: %s', contract);

describe.skipIf(!CLUSTER_SAFE)(`FlowStore contract: redis cluster${CLUSTER_SKIP_REASON}`, () => {
  const cluster = useContractRedis('cluster');
  contract('redis cluster', () => redisFixture(cluster));
});

describe('RedisFlowStore specifics', () => {
  const prefix = uniquePrefix('flow-layout');
  let store: RedisFlowStore;

  beforeAll(() => {
    store = new RedisFlowStore(ctx.redis, { prefix });
  });

  afterAll(async () => {
    await deleteByPrefix(ctx.redis, prefix);
    await deleteByPrefix(ctx.redis, 'handoff:');
  });

  function rec(overrides: Partial<FlowRecord> = {}): FlowRecord {
    const now = Date.now();
    return {
      kind: 'qr',
      id: newId(),
      state: 'pending',
      version: 1,
      createdAt: now,
      expiresAt: now + TTL_MS,
      watchTokenHash: 'ef'.repeat(32),
      ...overrides,
    };
  }

  it('uses the documented key layout and TTLs', async () => {
    const r = rec({ userId: 'user-1' });
    await store.create(r, LONG_TOMBSTONE_MS);
    const shard = flowShard(r.id);
    const key = `${prefix}flow:{s${shard}}:qr:${r.id}`;
    const due = `${prefix}flows:due:{s${shard}}`;
    const hash = await ctx.redis.hgetall(key);
    expect(hash).toMatchObject({
      kind: 'qr',
      id: r.id,
      state: 'pending',
      version: '1',
      expiresAt: String(r.expiresAt),
      createdAt: String(r.createdAt),
      watchTokenHash: r.watchTokenHash,
      userId: 'user-1',
    });
    expect(Number(await ctx.redis.zscore(due, `qr:${r.id}`))).toBe(r.expiresAt);
    const pttl = await ctx.redis.pttl(key);
    expect(pttl).toBeGreaterThan(TTL_MS);
    expect(pttl).toBeLessThanOrEqual(TTL_MS + LONG_TOMBSTONE_MS);

    const res = await store.transition({
      kind: 'qr', id: r.id, to: 'cancelled', from: ['pending'], now: Date.now(), tombstoneMs: 5_000,
    });
    expect(res.ok).toBe(true);
    expect(await ctx.redis.zscore(due, `qr:${r.id}`)).toBeNull();
    const after = await ctx.redis.pttl(key);
    expect(after).toBeGreaterThan(0);
    expect(after).toBeLessThanOrEqual(5_000);
  });

  it('defaults the prefix to handoff:', async () => {
    const r = rec();
    await new RedisFlowStore(ctx.redis).create(r, LONG_TOMBSTONE_MS);
    expect(await ctx.redis.exists(`handoff:flow:{s${flowShard(r.id)}}:qr:${r.id}`)).toBe(1);
  });

  it('spreads flows over the due shards and merges them oldest first, ties by member', async () => {
    const now = Date.now();
    const flows = Array.from({ length: 64 }, (_, i) => rec({ expiresAt: now - 1_000 - (i % 8) * 100 }));
    for (const r of flows) await store.create(r, LONG_TOMBSTONE_MS);
    expect(new Set(flows.map((r) => flowShard(r.id))).size).toBeGreaterThan(FLOW_SHARDS / 2);
    const order = [...flows].sort((a, b) => a.expiresAt - b.expiresAt || (`qr:${a.id}` < `qr:${b.id}` ? -1 : 1));
    expect(await store.dueForExpiry(now, 64)).toEqual(order.map((r) => ({ kind: 'qr', id: r.id })));
    expect(await store.dueForExpiry(now, 5)).toEqual(order.slice(0, 5).map((r) => ({ kind: 'qr', id: r.id })));
    for (const r of flows) await store.transition({ kind: 'qr', id: r.id, to: 'expired', from: ['pending'], now, tombstoneMs: 1_000 });
  });

  it('drops due-set members whose flow hash is gone', async () => {
    const now = Date.now();
    const live = rec({ expiresAt: now - 1_000 });
    await store.create(live, LONG_TOMBSTONE_MS);
    const due = `${prefix}flows:due:{s${flowShard(live.id)}}`;
    await ctx.redis.zadd(due, now - 2_000, `qr:${newId()}`);
    expect(await store.dueForExpiry(now, 10)).toEqual([{ kind: 'qr', id: live.id }]);
    expect(await ctx.redis.zcard(due)).toBe(1);
  });

  /**
   * Run flow-transition.lua by hand on the qr flow `id`, with the arguments its header lists: to
   * `to`, now, a long tombstone, no requireUserId, and `json` as the one JSON argument.
   */
  function evalTransition(id: string, to: FlowStateName, json: { from: FlowStateName[]; set: Record<string, string>; del: string[] }): Promise<unknown> {
    const keys = new RedisKeys(prefix);
    return ctx.redis.eval(
      luaScript('flow-transition'),
      3,
      keys.flow('qr', id),
      keys.dueSetOf(id),
      keys.flowTaken('qr', id),
      to,
      String(Date.now()),
      String(LONG_TOMBSTONE_MS),
      '0',
      '',
      keys.dueMember('qr', id),
      JSON.stringify(json),
    );
  }

  it('flow-transition.lua takes the from list and the patch as one JSON argument, as its header says', async () => {
    const r = rec();
    await store.create(r, LONG_TOMBSTONE_MS);
    const reply = await evalTransition(r.id, 'scanned', { from: ['pending'], set: { userId: 'user-7' }, del: [] });
    expect((reply as [number])[0]).toBe(0);
    expect(await store.get('qr', r.id)).toEqual({ ...r, userId: 'user-7', state: 'scanned', version: 2 });
  });

  it('flow-transition.lua deletes the JSON argument\'s del fields, with an empty set', async () => {
    const r = rec({ userId: 'user-1' });
    await store.create(r, LONG_TOMBSTONE_MS);
    const reply = await evalTransition(r.id, 'cancelled', { from: ['pending', 'scanned'], set: {}, del: ['userId'] });
    expect((reply as [number])[0]).toBe(0);
    const { userId: _dropped, ...rest } = r;
    expect(await store.get('qr', r.id)).toEqual({ ...rest, state: 'cancelled', version: 2 });
  });

  it('survives SCRIPT FLUSH (EVALSHA falls back to EVAL)', async () => {
    await ctx.redis.script('FLUSH');
    const r = rec();
    await store.create(r, LONG_TOMBSTONE_MS);
    expect(await store.get('qr', r.id)).toEqual(r);
  });

  it('the scripts get the final states from FINAL_STATES; no Lua file lists its own', async () => {
    const dir = new URL('../../server/lua/', import.meta.url);
    for (const file of readdirSync(dir)) {
      const src = readFileSync(new URL(file, dir), 'utf8');
      expect(src, file).not.toMatch(/local\s+FINAL\b/);
      for (const state of FINAL_STATES) expect(src, `${file} names ${state} as final`).not.toMatch(new RegExp(`\\b${state}\\s*=\\s*true`));
      expect(luaScript(file.replace(/\.lua$/, '')).startsWith(LUA_PRELUDE), file).toBe(true);
    }
    // The prelude keeps the file's line numbers (no newline) and defines exactly FINAL_STATES.
    expect(LUA_PRELUDE).not.toContain('\n');
    const listed = await ctx.redis.eval(`${LUA_PRELUDE}local out = {} for s in pairs(FINAL) do out[#out + 1] = s end table.sort(out) return out`, 0);
    expect(listed).toEqual([...FINAL_STATES].sort());
    expect(isFinalState('expired')).toBe(true);
  });
});
