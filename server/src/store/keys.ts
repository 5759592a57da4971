import type { FlowKind } from '@handoff/protocol';

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
 * Every Redis key, channel and queue prefix of Handoff, built from one prefix (model: BullMQ's
 * `queue-keys.ts`). Nothing else builds a key: stores take their keys from here and Lua scripts
 * receive them (KEYS[], or a KeyTemplate in ARGV), never assemble them from a prefix of their own.
 *
 * Layout (p = prefix, default `handoff:`), documented in docs/operations.md "Redis keys":
 *
 *   p flow:<kind>:<id>          hash    one flow; PEXPIREAT expiresAt + tombstone
 *   p flow:<kind>:<id>:taken    string  a login's job was counted as taken; expires with the flow
 *   p flows:due                 zset    live flows by expiresAt, member `<kind>:<id>`
 *   p flow-group:<kind>:<owner> zset    an owner's live flows by expiresAt (approvals per user), member id
 *   p login:tickets             string  login queue tickets drawn
 *   p login:taken               string  login jobs taken off the queue
 *   p user:<id>                 hash    one account
 *   p user-email:<email>        string  → user id
 *   p code:<key>                hash    one verification code
 *   p rl:<name>:<key>           (rate-limiter-flexible's own keys)
 *   p webhooks:disabled         set     endpoints that answered 410
 *   p bull:<queue>:…            (BullMQ's own keys)
 *   p socket.io…                Pub/Sub channels of the Socket.IO adapter (not keys)
 *
 * Redis Cluster (later): every script's keys must share one hash slot. Put the hash tag in the
 * builders below (e.g. `flow:{<kind>:<id>}` in `flowTemplate` / `flowTaken`); no caller changes.
 */
export class RedisKeys {
  constructor(
    /** Prepended to every key; default DEFAULT_REDIS_PREFIX. */
    readonly prefix: string = DEFAULT_REDIS_PREFIX,
  ) {}

  /** The hash of one flow (`flowTemplate` filled with the flow's due-set member). */
  flow(kind: FlowKind, id: string): string {
    return fill(this.flowTemplate(), this.dueMember(kind, id));
  }

  /** How flow-due.lua makes a flow's hash key from a due-set member. */
  flowTemplate(): KeyTemplate {
    return { before: `${this.prefix}flow:`, after: '' };
  }

  /** How flow-create-capped.lua makes the hash key of a flow of `kind` from its id (a group member). */
  flowOfKindTemplate(kind: FlowKind): KeyTemplate {
    const { before, after } = this.flowTemplate();
    return { before: before + this.dueMember(kind, ''), after };
  }

  /** Marker set once a flow's job was counted as taken (login-take.lua); lives exactly as long as the flow's hash. */
  flowTaken(kind: FlowKind, id: string): string {
    return `${this.flow(kind, id)}:taken`;
  }

  /** The sorted set of non-final flows by expiresAt. */
  dueSet(): string {
    return `${this.prefix}flows:due`;
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
    return `${this.prefix}flow-group:${group}`;
  }

  /** Counter of tickets drawn by queued logins. */
  loginTickets(): string {
    return `${this.prefix}login:tickets`;
  }

  /** Counter of login jobs taken off the queue. */
  loginTakenCount(): string {
    return `${this.prefix}login:taken`;
  }

  /** The hash of one user. */
  user(id: string): string {
    return fill(this.userTemplate(), id);
  }

  /** How user-by-email.lua makes a user's hash key from the id the email index holds. */
  userTemplate(): KeyTemplate {
    return { before: `${this.prefix}user:`, after: '' };
  }

  /** The email index: email → user id. */
  userByEmail(email: string): string {
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

  /** BullMQ's `prefix` option (it appends `:<queue>:…`). */
  bullPrefix(): string {
    return `${this.prefix}bull`;
  }

  /**
   * A template as a script receives it, in ARGV: ioredis adds a connection's `keyPrefix` to KEYS
   * only, so it is added here to keys made inside the script.
   */
  static forScript(template: KeyTemplate, connectionKeyPrefix = ''): [before: string, after: string] {
    return [connectionKeyPrefix + template.before, template.after];
  }
}

function fill(template: KeyTemplate, value: string): string {
  return template.before + value + template.after;
}
