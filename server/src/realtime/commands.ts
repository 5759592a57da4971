import { Compile } from 'typebox/compile';
import { Type, type Static, type TSchema } from 'typebox';
import { topicOf, type Ack, type FlowState, type Requester, type Session, type UserChannelSnapshot } from '@handoff/protocol';
import { USER_CHANNEL } from '../approvals/user-channel.js';
import { HandoffError, toHandoffError } from '../errors.js';
import type { Handoff } from '../handoff.js';
import { principalKey, type Principal } from '../identity/principal.js';

const Topic = Type.String({ minLength: 1, maxLength: 100 });
const Token = Type.String({ minLength: 1, maxLength: 256 });

const SubscribeSchema = Type.Object({ topic: Topic, watchToken: Type.Optional(Token) });
const TopicSchema = Type.Object({ topic: Topic });
const QrActionSchema = Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }) });
const RedeemSchema = Type.Object({ topic: Topic, watchToken: Token });
const ApproveSchema = Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }), number: Type.Integer({ minimum: 0, maximum: 99 }) });

function validator<T extends TSchema>(schema: T): (value: unknown) => Static<T> {
  const compiled = Compile(schema);
  return (value) => {
    if (!compiled.Check(value)) throw new HandoffError('bad_request', 'The payload does not match the schema.');
    return value as Static<T>;
  };
}

const parseSubscribe = validator(SubscribeSchema);
const parseTopic = validator(TopicSchema);
const parseQrAction = validator(QrActionSchema);
const parseRedeem = validator(RedeemSchema);
const parseApprove = validator(ApproveSchema);

/** Most topics one connection may watch at once. */
export const MAX_SUBSCRIPTIONS_PER_CONNECTION = 50;

export type QrAction = 'scan' | 'confirm' | 'cancel';

/**
 * The realtime commands, shared by Socket.IO and plain WebSocket so both answer alike: they
 * validate the payload, check access and call the same services as HTTP.
 */
export class RealtimeCommands {
  constructor(
    private readonly handoff: Handoff,
    /** Which transport runs these commands, for the log. */
    private readonly transport: 'socket.io' | 'websocket',
  ) {}

  /**
   * Run a command and shape its outcome as an ack. Nothing fails silently: an `internal` error is
   * logged with its stack, as HTTP does; a store outage with one short line (the backend logs its cause).
   */
  ack<T extends object>(command: string, run: () => Promise<T> | T): Promise<Ack<T>> {
    return toAck(run, (mapped, cause) => {
      const bindings = { transport: this.transport, command };
      if (mapped.code === 'unavailable') this.handoff.log.warn({ ...bindings, err: (cause as Error)?.message }, 'store unavailable');
      else if (mapped.code === 'internal') this.handoff.log.error({ ...bindings, err: cause }, 'socket command failed');
    });
  }

  /**
   * Subscribe: check access (load the record, no state built), `join` the topic, wait until this
   * node receives the topic's transitions (hub.ready: its channel subscribed), then take the
   * snapshot (a full read). A push that lands between the two is either in the snapshot or newer
   * than it, so the subscriber never misses a transition; and nothing is joined before access is
   * proven.
   * `subscribed`: how many topics the connection watches already (at most
   * MAX_SUBSCRIPTIONS_PER_CONNECTION).
   */
  async subscribe(
    payload: unknown,
    user: Principal | undefined,
    subscribed: number,
    join: (topic: string) => void,
    peerIp?: string,
  ): Promise<{ state: FlowState | UserChannelSnapshot }> {
    if (subscribed >= MAX_SUBSCRIPTIONS_PER_CONNECTION) {
      throw new HandoffError('rate_limited', `At most ${MAX_SUBSCRIPTIONS_PER_CONNECTION} subscriptions per connection.`);
    }
    const req = parseSubscribe(payload);
    if (req.topic === USER_CHANNEL) {
      // The user channel (contract §9): an authenticated app socket, no watch token. Join first,
      // then read the snapshot, so an approval created in between is in one or the other.
      if (!user) throw new HandoffError('unauthorized');
      join(this.handoff.approvals.topicOf(user));
      return { state: await this.handoff.approvals.snapshot(user, peerIp) };
    }
    const access = { watchToken: req.watchToken, userId: user && principalKey(user) };
    const { flows } = this.handoff;
    const { kind, id } = flows.parseTopic(req.topic);
    flows.authorize(await flows.load(kind, id), access);
    const topic = topicOf(kind, id);
    join(topic);
    // With per-topic channels (FANOUT=sharded) the join counts only once Redis acknowledged the
    // topic's SSUBSCRIBE: a transition published before that would reach nobody here.
    await this.handoff.hub.ready(topic);
    return { state: await flows.read(topic, access) };
  }

  /** Canonical topic of an unsubscribe request (`user:me`: the user's internal topic). */
  unsubscribe(payload: unknown, user?: Principal): string {
    const requested = parseTopic(payload).topic;
    if (requested === USER_CHANNEL) {
      if (!user) throw new HandoffError('unauthorized');
      return this.handoff.approvals.topicOf(user);
    }
    const { kind, id } = this.handoff.flows.parseTopic(requested);
    return topicOf(kind, id);
  }

  /** qr:scan / qr:confirm / qr:cancel for an authenticated app. */
  async qrAction(action: QrAction, payload: unknown, user: Principal | undefined): Promise<{ state: FlowState; requester?: Requester }> {
    const { id } = parseQrAction(payload);
    if (!user) throw new HandoffError('unauthorized');
    const qr = this.handoff.qr;
    // The connection's principal as it is: an app user stays `app` (bound as app:<sub>), never a built-in id.
    if (action === 'scan') return qr.scan(id, user);
    return { state: action === 'confirm' ? await qr.confirm(id, user) : await qr.cancelByApp(id, user) };
  }

  /** approval:approve `{id, number}` / approval:deny `{id}` for the approval's user. */
  async approvalAction(action: 'approve' | 'deny', payload: unknown, user: Principal | undefined): Promise<{ state: FlowState }> {
    if (action === 'approve') {
      const { id, number } = parseApprove(payload);
      if (!user) throw new HandoffError('unauthorized');
      return { state: await this.handoff.approvals.approve(id, user, number) };
    }
    const { id } = parseQrAction(payload);
    if (!user) throw new HandoffError('unauthorized');
    return { state: await this.handoff.approvals.deny(id, user) };
  }

  /** Redeem the session of a flow with its watch token. */
  async redeem(payload: unknown): Promise<{ session: Session }> {
    const { topic, watchToken } = parseRedeem(payload);
    const session = await this.handoff.flows.redeem(topic, watchToken, (record) => this.handoff.identity.issue(record));
    return { session };
  }
}

/**
 * Run a command and shape its outcome as an ack: `{ok:true,...}` or `{ok:false,error}`. `onError`
 * sees the catalogue error and what was thrown (its stack, for an `internal` one).
 */
export async function toAck<T extends object>(
  run: () => Promise<T> | T,
  onError?: (mapped: HandoffError, cause: unknown) => void,
): Promise<Ack<T>> {
  try {
    return { ok: true, ...(await run()) };
  } catch (err) {
    const mapped = toHandoffError(err);
    onError?.(mapped, err);
    return mapped.extra.state
      ? { ok: false, error: mapped.toBody(), state: mapped.extra.state }
      : { ok: false, error: mapped.toBody() };
  }
}
