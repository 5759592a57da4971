import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import { isFinalState, type FlowKind, type FlowStateName } from '@handoff/protocol';
import type { FlowCap, FlowPatch, FlowRecord, FlowRef, TransitionRequest, TransitionResult } from './flow-record.js';
import type { FlowStore } from './flow-store.js';
import { FLOW_SHARDS, RedisKeys, flowShard, groupShard } from '../store/keys.js';
import { defineScripts, luaScript } from '../store/lua-scripts.js';
import { DURABLE_STATES, NO_WAIT, waitForReplicas, type RedisDurability } from '../store/redis-durability.js';
import { execPipeline } from '../store/redis-connection.js';

/** Return codes of server/lua/flow-transition.lua (and flow-create.lua's 0). */
export enum FlowScriptCode {
  Ok = 0,
  NotFound = -1,
  ExpiredDue = -2,
  InvalidTransition = -3,
  NotUser = -4,
}

export interface RedisFlowStoreOptions {
  /** Where the keys live; default `new RedisKeys(prefix)`. */
  keys?: RedisKeys;
  /** Key prefix when `keys` is not given; default `handoff:`. */
  prefix?: string;
  /** WAIT for replicas after a transition to a DURABLE_STATES state; default none (NO_WAIT). */
  durability?: RedisDurability;
  /** Told when that WAIT timed out or failed (`acked` < wanted replicas); default: nothing. */
  onUnreplicated?: (acked: number, wanted: number) => void;
}

/** After a WAIT that timed out, durable transitions skip the WAIT this long, ms. */
export const UNREPLICATED_SKIP_MS = 1000;
/** Timeout of the WAIT that probes whether a replica is back, ms. */
export const WAIT_PROBE_MS = 50;

/** Most stale due-set members (hash already purged) one sweep call removes. */
const MAX_STALE_PER_SWEEP = 1000;

/** Record fields stored as JSON strings in the flow hash. */
const JSON_FIELDS = ['requester', 'context', 'scannedBy', 'account', 'error', 'choices'] as const;

type Arg = string | number;
type TransitionArgs = [flowKey: string, dueKey: string, takenKey: string, ...argv: string[]];
type TransitionReply = [number, string[]?];

/** Errors with which Redis answers a command it did not run (the pipelined EVALSHA falls back on them). */
const NOT_RUN = /^(NOSCRIPT|MOVED|ASK|TRYAGAIN|CLUSTERDOWN)\b/;

/** SHA1 of flow-transition.lua as Redis sees it, for the EVALSHA pipelined with a WAIT. */
const TRANSITION_SHA = createHash('sha1').update(luaScript('flow-transition')).digest('hex');
interface FlowCommands {
  handoffFlowCreate(flowKey: string, dueKey: string, takenKey: string, ...argv: Arg[]): Promise<number>;
  handoffFlowTransition(...args: TransitionArgs): Promise<TransitionReply>;
  handoffFlowDue(dueKey: string, ...argv: Arg[]): Promise<string[]>;
  handoffFlowCreateCapped(flowKey: string, dueKey: string, takenKey: string, groupKey: string, ...argv: Arg[]): Promise<number>;
}

/**
 * Flows in Redis, one Lua script per atomic operation (server/lua/flow-*.lua), with exactly the
 * behaviour of MemoryFlowStore (both run through test/integration/flow-store.contract.test.ts).
 *
 * Keys (store/keys.ts): the flow hash `keys.flow(kind, id)`; non-final flows by expiresAt in their
 * shard's sorted set `keys.dueSetOf(id)` (FLOW_SHARDS of them, each in the slot of its flows); a login's taken marker `keys.flowTaken(kind, id)` (login-counters.ts),
 * which these scripts expire and delete with the hash. A flow hash carries kind, id, state, version,
 * expiresAt, createdAt, watchTokenHash, optional userId and seq, and requester / context / scannedBy / error as JSON.
 *
 * The Redis connection is shared and owned by the caller: do not give it an ioredis `keyPrefix`
 * (use `keys` / `prefix`), and close it yourself — `close()` leaves it open.
 *
 * Time: `create` purges at the absolute expiresAt + tombstoneMs (PEXPIREAT), and a final transition
 * keeps the tombstone for tombstoneMs from Redis's clock (PEXPIRE); the memory store uses `req.now`.
 * The two agree as long as the callers' clock and Redis's agree.
 */
export class RedisFlowStore implements FlowStore {
  private readonly keys: RedisKeys;
  private readonly cmd: Redis & FlowCommands;
  private readonly durability: RedisDurability;
  /** While Date.now() is below this, durable transitions do not WAIT (the last WAIT timed out). */
  private skipWaitUntil = 0;

  constructor(
    private readonly redis: Redis,
    private readonly opts: RedisFlowStoreOptions = {},
  ) {
    this.keys = opts.keys ?? new RedisKeys(opts.prefix);
    this.durability = opts.durability ?? NO_WAIT;
    // defineCommand runs the script with EVALSHA and falls back to EVAL when Redis lacks it
    // (first use, or after a restart / SCRIPT FLUSH). Redefining on a shared connection is harmless.
    this.cmd = defineScripts<FlowCommands>(redis, {
      handoffFlowCreate: ['flow-create', 3],
      handoffFlowTransition: ['flow-transition', 3],
      handoffFlowDue: ['flow-due', 1],
      handoffFlowCreateCapped: ['flow-create-capped', 4],
    });
  }

  async create(record: FlowRecord, tombstoneMs: number): Promise<void> {
    await this.cmd.handoffFlowCreate(
      this.keys.flow(record.kind, record.id),
      this.keys.dueSetOf(record.id),
      this.keys.flowTaken(record.kind, record.id),
      this.keys.dueMember(record.kind, record.id),
      String(record.expiresAt),
      String(Math.ceil(record.expiresAt + tombstoneMs)),
      isFinalState(record.state) ? '1' : '0',
      ...encodeRecord(record),
    );
  }

  async createCapped(record: FlowRecord, tombstoneMs: number, cap: FlowCap): Promise<boolean> {
    const shard = groupShard(cap.group);
    if (flowShard(record.id) !== shard) throw new Error(`a flow of group ${cap.group} must be minted into shard ${shard} (mintFlowIdInShard)`);
    const [before, after] = RedisKeys.forScript(this.keys.flowOfKindTemplate(record.kind, shard), this.redis.options.keyPrefix);
    const code = await this.cmd.handoffFlowCreateCapped(
      this.keys.flow(record.kind, record.id),
      this.keys.dueSetOf(record.id),
      this.keys.flowTaken(record.kind, record.id),
      this.keys.flowGroup(cap.group),
      this.keys.dueMember(record.kind, record.id),
      String(record.expiresAt),
      String(Math.ceil(record.expiresAt + tombstoneMs)),
      String(cap.max),
      String(record.createdAt),
      record.id,
      before,
      after,
      ...encodeRecord(record),
    );
    return code === 0;
  }

  async liveInGroup(group: string, now: number): Promise<string[]> {
    // A member past its expiry drops out by score; one that ended early (final, or forgotten) by its state.
    const members = await this.redis.zrangebyscore(this.keys.flowGroup(group), `(${now}`, '+inf');
    if (members.length === 0) return [];
    const kind = group.slice(0, group.indexOf(':')) as FlowKind;
    const pipeline = this.redis.pipeline();
    for (const id of members) pipeline.hget(this.keys.flow(kind, id), 'state');
    const states = await execPipeline(pipeline);
    return members.filter((_, i) => {
      const [err, state] = states[i] ?? [null, null];
      if (err) throw err;
      return typeof state === 'string' && !isFinalState(state as FlowStateName);
    });
  }

  async get(kind: FlowKind, id: string): Promise<FlowRecord | null> {
    const hash = await this.redis.hgetall(this.keys.flow(kind, id));
    return decodeRecord(hash);
  }

  async transition(req: TransitionRequest): Promise<TransitionResult> {
    const flowKey = this.keys.flow(req.kind, req.id);
    const args: TransitionArgs = [
      flowKey,
      this.keys.dueSetOf(req.id),
      this.keys.flowTaken(req.kind, req.id),
      req.to,
      String(req.now),
      String(Math.ceil(req.tombstoneMs)),
      req.requireUserId !== undefined ? '1' : '0',
      req.requireUserId ?? '',
      this.keys.dueMember(req.kind, req.id),
      JSON.stringify({ from: req.from, ...encodePatch(req.patch) }),
    ];
    const durable = this.durability.replicas > 0 && DURABLE_STATES.has(req.to);
    let reply: TransitionReply;
    let acked: number | 'pending' = 'pending';
    if (durable) ({ reply, acked } = await this.transitionAndWait(args));
    else reply = await this.cmd.handoffFlowTransition(...args);
    const [code, flat] = reply;
    if (code === FlowScriptCode.NotFound) return { ok: false, reason: 'not_found' };
    const record = decodeRecord(pairsToObject(flat ?? []));
    if (!record) throw new Error(`flow-transition.lua returned code ${code} without a record`);
    switch (code) {
      case FlowScriptCode.Ok:
        if (durable) this.replicated(acked === 'pending' ? await this.waitAfter(flowKey) : acked);
        return { ok: true, record };
      case FlowScriptCode.ExpiredDue:
        return { ok: false, reason: 'expired_due', record };
      case FlowScriptCode.InvalidTransition:
        return { ok: false, reason: 'invalid_transition', record };
      case FlowScriptCode.NotUser:
        return { ok: false, reason: 'not_user', record };
      default:
        throw new Error(`flow-transition.lua returned unknown code ${String(code)}`);
    }
  }

  /**
   * One flow-due.lua call per due shard (FLOW_SHARDS, sent at once; on Redis Cluster each goes to
   * its shard's node), merged by expiresAt — ties by member, as one sorted set would order them.
   */
  async dueForExpiry(now: number, limit: number): Promise<FlowRef[]> {
    // Same as Array.prototype.slice(0, limit) in the memory store.
    const n = Number.isFinite(limit) ? Math.trunc(limit) : limit > 0 ? Number.MAX_SAFE_INTEGER : 0;
    if (n <= 0) return [];
    const shards = await Promise.all(
      Array.from({ length: FLOW_SHARDS }, (_, shard) =>
        this.cmd.handoffFlowDue(
          this.keys.dueSet(shard),
          String(now),
          String(n),
          ...RedisKeys.forScript(this.keys.flowTemplate(shard), this.redis.options.keyPrefix),
          String(MAX_STALE_PER_SWEEP),
        ),
      ),
    );
    const due: Array<{ member: string; at: number }> = [];
    for (const flat of shards) {
      for (let i = 0; i + 1 < flat.length; i += 2) due.push({ member: flat[i], at: Number(flat[i + 1]) });
    }
    due.sort((a, b) => a.at - b.at || (a.member < b.member ? -1 : a.member > b.member ? 1 : 0));
    return due.slice(0, n).map((d) => this.keys.parseDueMember(d.member));
  }

  /**
   * The WAIT of a durable transition now, or 'skip' (store/redis-durability.ts).
   *
   * WAIT blocks the connection it runs on (shared by every command of this process) until it
   * returns: so after a WAIT that timed out (no live replica: the one left after a failover, a
   * replica down), waiting is skipped for UNREPLICATED_SKIP_MS, then tried again with a short
   * WAIT_PROBE_MS timeout; a probe that is acked resumes normal waits.
   */
  private nextWait(): RedisDurability | 'skip' {
    if (Date.now() < this.skipWaitUntil) return 'skip';
    if (this.skipWaitUntil === 0) return this.durability;
    return { ...this.durability, timeoutMs: Math.min(this.durability.timeoutMs, WAIT_PROBE_MS) };
  }

  /** The back-off after a WAIT answered `acked`, whatever the transition's outcome: too few open the skip window, enough close it. */
  private waited(acked: number): void {
    if (acked >= this.durability.replicas) this.skipWaitUntil = 0;
    else if (Date.now() >= this.skipWaitUntil) this.skipWaitUntil = Date.now() + UNREPLICATED_SKIP_MS;
  }

  /**
   * A durable transition: the script and its WAIT in one pipeline, one round trip instead of two
   * (the WAIT no longer waits for the script's answer to reach this process first). WAIT covers the
   * writes made earlier on its connection: the pipeline runs on the connection of the flow's keys
   * (on a Cluster, ioredis routes a pipeline by its keys, all in the flow's slot), right behind the
   * script. `acked` is the replicas that acked the write, 0 when skipped, or 'pending' when the
   * WAIT is still to be made.
   *
   * The script goes as EVALSHA. When Redis did not run it — NOSCRIPT (a server that never ran it:
   * a newly promoted master, a restarted one, a SCRIPT FLUSH), or a Cluster redirect or refusal
   * (MOVED, ASK, TRYAGAIN, CLUSTERDOWN: ioredis follows redirects for single commands, not inside
   * a pipeline whose other command succeeded) — the transition is made the plain way (the custom
   * command, which loads the script and follows redirects) and its WAIT is made after it.
   */
  private async transitionAndWait(args: TransitionArgs): Promise<{ reply: TransitionReply; acked: number | 'pending' }> {
    const wait = this.nextWait();
    if (wait === 'skip') return { reply: await this.cmd.handoffFlowTransition(...args), acked: 0 };
    const replies = await execPipeline(this.redis.pipeline().evalsha(TRANSITION_SHA, 3, ...args).wait(wait.replicas, wait.timeoutMs));
    const [scriptErr, reply] = replies[0] ?? [new Error('flow-transition: no reply')];
    const [waitErr, waitReply] = replies[1] ?? [new Error('WAIT: no reply')];
    const acked = waitErr ? 0 : Number(waitReply);
    // A WAIT that timed out tells the back-off even when the script did not run here (a new master without its replica yet).
    this.waited(acked);
    if (scriptErr) {
      if (!NOT_RUN.test(scriptErr.message)) throw scriptErr;
      return { reply: await this.cmd.handoffFlowTransition(...args), acked: 'pending' };
    }
    return { reply: reply as TransitionReply, acked };
  }

  /** WAIT on its own after a committed durable transition that the pipelined WAIT did not cover; 0 when skipped or failed. */
  private async waitAfter(flowKey: string): Promise<number> {
    const wait = this.nextWait();
    if (wait === 'skip') return 0;
    const acked = await waitForReplicas(this.redis, flowKey, wait).catch(() => 0);
    this.waited(acked);
    return acked;
  }

  /** A committed durable transition that fewer replicas acked than wanted (or whose WAIT was skipped) is reported. */
  private replicated(acked: number): void {
    if (acked < this.durability.replicas) this.opts.onUnreplicated?.(acked, this.durability.replicas);
  }

  /** Resolves when Redis answers PING (how fast it rejects when down depends on the connection's retry options). */
  async ping(): Promise<void> {
    await this.redis.ping();
  }

  /** Does NOT quit the shared connection: whoever created the Redis client closes it. */
  async close(): Promise<void> {}
}

/** Field/value pairs for HSET; undefined optional fields are left out. */
function encodeRecord(r: FlowRecord): string[] {
  const out = [
    'kind', r.kind,
    'id', r.id,
    'state', r.state,
    'version', String(r.version),
    'expiresAt', String(r.expiresAt),
    'createdAt', String(r.createdAt),
    'watchTokenHash', r.watchTokenHash,
  ];
  if (r.userId !== undefined) out.push('userId', r.userId);
  if (r.seq !== undefined) out.push('seq', String(r.seq));
  if (r.number !== undefined) out.push('number', String(r.number));
  for (const field of JSON_FIELDS) {
    if (r[field] !== undefined) out.push(field, JSON.stringify(r[field]));
  }
  return out;
}

/**
 * The patch as fields to set (already serialised) and fields to delete, for flow-transition.lua's
 * JSON argument. Like Object.assign in the memory store, a key present with the value `undefined`
 * clears that field.
 */
function encodePatch(patch: FlowPatch | undefined): { set: Record<string, string>; del: string[] } {
  const set: Record<string, string> = {};
  const del: string[] = [];
  if (!patch) return { set, del };
  if ('userId' in patch) {
    if (patch.userId === undefined) del.push('userId');
    else set.userId = patch.userId;
  }
  for (const field of ['scannedBy', 'account', 'error'] as const) {
    if (!(field in patch)) continue;
    if (patch[field] === undefined) del.push(field);
    else set[field] = JSON.stringify(patch[field]);
  }
  return { set, del };
}

function pairsToObject(flat: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) out[flat[i]] = flat[i + 1];
  return out;
}

function decodeRecord(h: Record<string, string>): FlowRecord | null {
  if (h.state === undefined) return null;
  const record: FlowRecord = {
    kind: h.kind as FlowKind,
    id: h.id,
    state: h.state as FlowStateName,
    version: Number(h.version),
    expiresAt: Number(h.expiresAt),
    createdAt: Number(h.createdAt),
    watchTokenHash: h.watchTokenHash,
  };
  if (h.userId !== undefined) record.userId = h.userId;
  if (h.seq !== undefined) record.seq = Number(h.seq);
  if (h.number !== undefined) record.number = Number(h.number);
  for (const field of JSON_FIELDS) {
    if (h[field] !== undefined) record[field] = JSON.parse(h[field]);
  }
  return record;
}
