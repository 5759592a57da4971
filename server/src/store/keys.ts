import { randomToken } from '../lib/random-token.js';
import type { FlowKind } from '@handoff/protocol';
import { randomBytes } from 'node:crypto';
import { ConfigError, type Env } from '../lib/env.js';
import { crc16 } from './key-slot.js';

/** Prefix of every key when none is configured (REDIS_PREFIX). */
export const DEFAULT_REDIS_PREFIX = 'handoff:';

/**
 * A key a Lua script makes from a value only the script learns (a due-set member, a user id read
 * from the email index): `before .. value .. after`. The script gets both halves in ARGV from here,
 * so the layout stays in this file.
 */
export interface KeyTemplate {
  readonly before: string;
  readonly after: string;
}

/**
 * Flows are spread over this many shards, each one Redis Cluster hash slot (`{s0}` … `{s15}`):
 * a flow's keys and its due set share its shard's slot, so every flow script touches one slot.
 * Part of the key layout: changing it moves every flow (and the sweep reads each shard per tick).
 */
export const FLOW_SHARDS = 16;

/**
 * Users are spread over this many shards (`{u0}` … `{u255}`): an account's hash lives in the
 * shard of its id, the email index in the shard of its email; ids Handoff mints (mintUserId) share
 * their email's shard, so user-create.lua writes both in one slot. Part of the key layout.
 */
export const USER_SHARDS = 256;

/**
 * Every Redis key, channel and queue prefix of Handoff, built from one prefix (model: BullMQ's
 * `queue-keys.ts`). Nothing else builds a key: stores take their keys from here and Lua scripts
 * receive them (KEYS[], or a KeyTemplate in ARGV), never assemble them from a prefix of their own.
 *
 * Layout (p = prefix, default `handoff:`; s = flowShard(id), 0–15; u = userShard(…), 0–255),
 * documented in docs/operations.md "Redis keys":
 *
 *   p flow:{s<s>}:<kind>:<id>          hash    one flow; PEXPIREAT expiresAt + tombstone
 *   p flow:{s<s>}:<kind>:<id>:taken    string  a login's job was counted as taken; expires with the flow
 *   p flows:due:{s<s>}                 zset    live flows of shard s by expiresAt, member `<kind>:<id>`
 *   p flow-group:{s<s>}:<kind>:<owner> zset  an owner's live flows by expiresAt (approvals per user), member id
 *   p login:tickets                    string  login queue tickets drawn
 *   p login:taken:{s<s>}               string  login jobs taken off the queue, of shard s's flows
 *   p login:taken                      string  the same, counted before the shards (read, never written)
 *   p user:{u<u>}:<id>                 hash    one account (u = userShard(id))
 *   p user-email:{u<u>}:<email>        string  → user id (u = userShard(email))
 *   p code:<key>                       hash    one verification code
 *   p rl:<name>:<key>                  (rate-limiter-flexible's own keys)
 *   p webhooks:disabled                set     endpoints that answered 410
 *   p identity:assertion-dev-key       string  the shared development assertion key
 *   {p bull}:<queue>:…                 (BullMQ's own keys; the braces keep a queue in one slot)
 *   p socket.io…                       Pub/Sub channels of the Socket.IO adapter (not keys)
 *
 * Redis Cluster: every script and multi-key command touches keys of one hash slot. The `{…}` hash
 * tags above make it so: a flow script's keys all carry the flow's shard tag, a user script's the
 * user's; every other script takes one key. The prefix itself may hold no braces (it would move
 * the hash tag).
 */
export class RedisKeys {
  /** Prepended to every key; default DEFAULT_REDIS_PREFIX. No `{` or `}` (they would change the hash tags). */
  readonly prefix: string;

  constructor(prefix: string = DEFAULT_REDIS_PREFIX) {
    const problem = prefixProblem(prefix);
    if (problem) throw new Error(`Redis key prefix ${JSON.stringify(prefix)}: ${problem}`);
    this.prefix = prefix;
  }

  /** The hash of one flow (`flowTemplate` of its shard, filled with the flow's due-set member). */
  flow(kind: FlowKind, id: string): string {
    return fill(this.flowTemplate(flowShard(id)), this.dueMember(kind, id));
  }

  /** How flow-due.lua makes the hash key of a flow of `shard` from a due-set member. */
  flowTemplate(shard: number): KeyTemplate {
    return { before: `${this.prefix}flow:${flowTag(shard)}:`, after: '' };
  }

  /** How flow-create-capped.lua makes the hash key of a flow of `kind` and `shard` from its id (a group member). */
  flowOfKindTemplate(kind: FlowKind, shard: number): KeyTemplate {
    const { before, after } = this.flowTemplate(shard);
    return { before: before + this.dueMember(kind, ''), after };
  }

  /** Marker set once a flow's job was counted as taken (login-take.lua); lives exactly as long as the flow's hash. */
  flowTaken(kind: FlowKind, id: string): string {
    return `${this.flow(kind, id)}:taken`;
  }

  /** The sorted set of non-final flows of `shard` (0 … FLOW_SHARDS - 1) by expiresAt. */
  dueSet(shard: number): string {
    return `${this.prefix}flows:due:${flowTag(shard)}`;
  }

  /** The due set a flow belongs to (the one its create and transition scripts touch). */
  dueSetOf(id: string): string {
    return this.dueSet(flowShard(id));
  }

  /** A flow's member in the due set (not a key). */
  dueMember(kind: FlowKind, id: string): string {
    return `${kind}:${id}`;
  }

  /** The flow a due-set member names. */
  parseDueMember(member: string): { kind: FlowKind; id: string } {
    const sep = member.indexOf(':');
    return { kind: member.slice(0, sep) as FlowKind, id: member.slice(sep + 1) };
  }

  /**
   * The live flows of one owner (push-to-approve: a user's pending approvals), scored by expiresAt;
   * `group` is `<kind>:<principalKey>`. Cleaned and counted by flow-create-capped.lua.
   */
  flowGroup(group: string): string {
    return `${this.prefix}flow-group:${flowTag(groupShard(group))}:${group}`;
  }

  /** Counter of tickets drawn by queued logins. */
  loginTickets(): string {
    return `${this.prefix}login:tickets`;
  }

  /** Counter of the login jobs taken off the queue whose flow is in `shard` (login-take.lua counts it with the marker). */
  loginTakenCount(shard: number): string {
    return `${this.prefix}login:taken:${flowTag(shard)}`;
  }

  /** The shard counter login-take.lua increments for this flow (same slot as its hash). */
  loginTakenCountOf(flowId: string): string {
    return this.loginTakenCount(flowShard(flowId));
  }

  /** The single counter of jobs taken before the counters were sharded: still added in, never written. */
  legacyLoginTakenCount(): string {
    return `${this.prefix}login:taken`;
  }

  /** The hash of one user, in the shard of its id. */
  user(id: string): string {
    return `${this.prefix}user:${userTag(userShard(id))}:${id}`;
  }

  /** The email index: email → user id, in the shard of the email. */
  userByEmail(email: string): string {
    return `${this.prefix}user-email:${userTag(userShard(email))}:${email}`;
  }

  /** How user-by-email.lua makes a user's hash key from the id the email index holds, when that id shares the email's shard. */
  userTemplate(email: string): KeyTemplate {
    return { before: `${this.prefix}user:${userTag(userShard(email))}:`, after: '' };
  }

  /** A user's hash as stored before the shards (read through, never written). */
  legacyUser(id: string): string {
    return `${this.prefix}user:${id}`;
  }

  /** The email index as stored before the shards (read through, never written). */
  legacyUserByEmail(email: string): string {
    return `${this.prefix}user-email:${email}`;
  }

  /** The hash of one verification code (`key`: CodeCrypto.recordKey, purpose, channel and hashed recipient). */
  code(key: string): string {
    return `${this.prefix}code:${key}`;
  }

  /** rate-limiter-flexible's `keyPrefix` for the limit `name` (it appends `:<key>`). */
  rateLimit(name: string): string {
    return `${this.prefix}rl:${name}`;
  }

  /** The set of webhook endpoints that answered 410 Gone. */
  webhookDisabled(): string {
    return `${this.prefix}webhooks:disabled`;
  }

  /** The development assertion signing key (PKCS8 PEM) every node shares when ASSERTION_SIGNING_KEY is unset. */
  assertionDevKey(): string {
    return `${this.prefix}identity:assertion-dev-key`;
  }

  /** Channel prefix of the Socket.IO Redis adapter and emitter; API nodes and workers must share it. */
  adapterChannel(): string {
    return `${this.prefix}socket.io`;
  }

  /**
   * The sharded pub/sub channel of one topic (FANOUT=sharded): every publisher SPUBLISHes the
   * topic's committed states here, and only nodes with a local subscriber of the topic SSUBSCRIBE.
   * The whole name is the hash tag, so Redis Cluster routes it to one shard.
   */
  topicChannel(topic: string): string {
    return `{${this.prefix}fan:${topic}}`;
  }

  /** The broadcast channel of signals (FANOUT=sharded): every API node subscribes; they are rare. */
  signalChannel(): string {
    return `${this.prefix}fan-signals`;
  }

  /**
   * BullMQ's `prefix` option (it appends `:<queue>:…`), in braces: BullMQ's scripts touch many keys
   * of a queue at once, so on Redis Cluster they must share one hash tag (BullMQ's docs).
   */
  bullPrefix(): string {
    return `{${this.prefix}bull}`;
  }

  /**
   * A template as a script receives it, in ARGV: ioredis adds a connection's `keyPrefix` to KEYS
   * only, so it is added here to keys made inside the script.
   */
  static forScript(template: KeyTemplate, connectionKeyPrefix = ''): [before: string, after: string] {
    return [connectionKeyPrefix + template.before, template.after];
  }
}

/** Why `prefix` cannot be a key prefix, or null when it can (REDIS_PREFIX is checked with this at start). */
export function prefixProblem(prefix: string): string | null {
  return /[{}]/.test(prefix) ? 'must not contain { or } (Handoff puts the Redis Cluster hash tags in the keys itself)' : null;
}

/** REDIS_PREFIX (default DEFAULT_REDIS_PREFIX), checked: a ConfigError naming the variable when it holds a brace. */
export function redisPrefixFromEnv(env: Env): string {
  const prefix = env.REDIS_PREFIX?.trim() || DEFAULT_REDIS_PREFIX;
  const problem = prefixProblem(prefix);
  if (problem) throw new ConfigError('REDIS_PREFIX', problem);
  return prefix;
}

/**
 * The flow shard of a group (push-to-approve: a user's approvals). Every flow of the group is
 * minted into it (mintFlowIdInShard), so the group's set, its flows and their due set share one
 * hash slot and flow-create-capped.lua stays in one slot on Redis Cluster.
 */
export function groupShard(group: string): number {
  return flowShard(group);
}

/** A new flow id (randomToken) whose flow shard is `shard`: about FLOW_SHARDS draws. */
export function mintFlowIdInShard(shard: number): string {
  for (;;) {
    const id = randomToken();
    if (flowShard(id) === shard) return id;
  }
}

/** The flow shard of a flow id, 0 … FLOW_SHARDS - 1. */
export function flowShard(id: string): number {
  return crc16(id) % FLOW_SHARDS;
}

/** The user shard of a user id or a (normalised) email, 0 … USER_SHARDS - 1. */
export function userShard(idOrEmail: string): number {
  return crc16(idOrEmail) % USER_SHARDS;
}

/**
 * A new user id (24 random bytes, base64url, as randomToken) drawn until it falls in the shard
 * of `email`, so that the account's hash and its email index share a slot and user-create.lua
 * writes them at once. USER_SHARDS draws on average, from one block of random bytes per round.
 */
export function mintUserId(email: string): string {
  const want = userShard(email);
  for (;;) {
    const block = randomBytes(ID_BYTES * USER_SHARDS);
    for (let at = 0; at < block.length; at += ID_BYTES) {
      const id = block.subarray(at, at + ID_BYTES).toString('base64url');
      if (userShard(id) === want) return id;
    }
  }
}

/** Bytes of a minted user id (as randomToken). */
const ID_BYTES = 24;

function flowTag(shard: number): string {
  return `{s${shard}}`;
}

function userTag(shard: number): string {
  return `{u${shard}}`;
}

function fill(template: KeyTemplate, value: string): string {
  return template.before + value + template.after;
}
