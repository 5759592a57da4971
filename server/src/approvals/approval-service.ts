import { createHash, randomInt } from 'node:crypto';
import type { ApprovalRequest, CreatedApproval, FlowState, Requester, UserChannelSnapshot } from '@handoff/protocol';
import { HandoffError } from '../errors.js';
import type { FlowRecord } from '../flows/flow-record.js';
import type { FlowService } from '../flows/flow-service.js';
import { principalKey, type Principal } from '../identity/principal.js';
import type { Fanout } from '../realtime/fanout.js';
import type { ApprovalConfig } from './approval-config.js';
import { USER_CHANNEL, nearby, principalKeyOfUserTopic, userTopic } from './user-channel.js';

/** Who an approval is for: a principal key (`principalKey(user)`), or nobody (an unknown login). */
export type ApprovalOwner = { userKey: string } | { unknownLogin: string };

/**
 * Push-to-approve (contract §9). The browser creates an approval for a user and shows its
 * `number`; the user's phone, subscribed to `user:me`, is pushed the request with three `choices`
 * and approves with the right one (pending → approved; the browser then redeems as for any flow)
 * or denies. A wrong number denies the request and answers 403 `wrong_number`.
 *
 * Every approval created or changed for a user is published, through the one fan-out, to the
 * internal topic `user:<principalKey>` on every node: on creation here, on each transition by the
 * commit listener (so expiries committed by any node's sweeper are pushed too).
 */
export class ApprovalService {
  constructor(
    private readonly flows: FlowService,
    private readonly fanout: Fanout,
    private readonly config: ApprovalConfig,
  ) {
    flows.onCommit((record) => {
      if (record.kind === 'approval' && record.userId) this.pushToUser(record);
    });
  }

  /**
   * Create an approval for `owner`, with a fresh number and choices. An unknown login gets an
   * approval like any other (same work, same answer), owned by nobody: it just expires. At most
   * APPROVALS_PER_USER live approvals per owner (counted atomically in the store): 429 beyond.
   */
  async create(owner: ApprovalOwner, requester: Requester, context?: Record<string, unknown>): Promise<CreatedApproval> {
    const number = randomInt(10, 100);
    const choices = choicesFor(number);
    const userKey = 'userKey' in owner ? owner.userKey : undefined;
    // An unknown login is capped under its own (hashed) name, so the cap answers alike for both.
    const capKey = 'userKey' in owner ? owner.userKey : `nobody:${createHash('sha256').update(owner.unknownLogin).digest('base64url')}`;
    const group = `approval:${capKey}`;
    const fields: Partial<FlowRecord> = { requester, number, choices };
    if (userKey !== undefined) fields.userId = userKey;
    if (context !== undefined) fields.context = context;
    const created = await this.flows.createCapped('approval', this.config.ttlSeconds * 1000, fields, { group, max: this.config.perUser });
    if (!created) {
      throw new HandoffError('rate_limited', `At most ${this.config.perUser} pending approvals per user.`, { retryAfterSeconds: this.config.ttlSeconds });
    }
    const { record, watchToken } = created;
    // The same work for both: an unknown login's request is published too, on a user topic nobody
    // can subscribe to (`user:nobody:<hash>`), so the answer's timing does not tell them apart
    // (measured: docs/benchmarks.md section 5). Its webhook is raised after the answer (webhooks.ts).
    this.pushToUser(record, capKey);
    return { ...(await this.flows.stateOf(record)), watchToken, number };
  }

  /** The phone approves with the number it was shown: right → approved; wrong → denied and 403 `wrong_number`. */
  async approve(id: string, principal: Principal, number: number): Promise<FlowState> {
    const record = await this.owned(id, principal);
    const requireUserId = principalKey(principal);
    if (number !== record.number) {
      await this.flows.transition('approval', record.id, 'denied', { requireUserId });
      throw new HandoffError('wrong_number');
    }
    return this.flows.stateOf(await this.flows.transition('approval', record.id, 'approved', { requireUserId }));
  }

  /** The phone refuses: pending → denied. */
  async deny(id: string, principal: Principal): Promise<FlowState> {
    const record = await this.owned(id, principal);
    return this.flows.stateOf(await this.flows.transition('approval', record.id, 'denied', { requireUserId: principalKey(principal) }));
  }

  /** The browser gives up (watch-token holder): pending → cancelled. */
  async cancelByBrowser(id: string, watchToken: string | undefined): Promise<FlowState> {
    const { id: flowId } = this.flows.parseTopic(`approval:${id}`);
    const record = await this.flows.load('approval', flowId);
    this.flows.authorize(record, { watchToken: watchToken ?? '' });
    return this.flows.stateOf(await this.flows.transition('approval', flowId, 'cancelled'));
  }

  /** The user channel's snapshot: the user's pending approvals, with the proximity hint for `phoneIp`. */
  async snapshot(principal: Principal, phoneIp?: string): Promise<UserChannelSnapshot> {
    const pending = (await this.liveRequests(principalKey(principal))).filter(({ record }) => record.state === 'pending');
    const approvals = pending.map(({ request }) => ({ ...request, requester: { ...request.requester, nearby: nearby(phoneIp, request.requester.ip) } }));
    return { topic: USER_CHANNEL, approvals };
  }

  /**
   * For a resync of the internal user topic `topic` (`user:<principalKey>`): the user's live
   * approvals (pending, or approved and not yet redeemed), each as it is pushed on that topic.
   * One that ended meanwhile is not among them: its request carries `expiresAt`, and acting on it
   * answers 409 with its state.
   */
  async resyncStates(topic: string): Promise<FlowState[]> {
    return (await this.liveRequests(principalKeyOfUserTopic(topic))).map(({ request }) => ({ ...request, topic }) as unknown as FlowState);
  }

  /** The live approvals (pending, or approved and not yet redeemed) of the user `key`, as the phone sees them. */
  private async liveRequests(key: string): Promise<Array<{ record: FlowRecord; request: ApprovalRequest }>> {
    const live: Array<{ record: FlowRecord; request: ApprovalRequest }> = [];
    for (const id of await this.flows.liveInGroup(`approval:${key}`)) {
      // Gone since the group was read: left out. Anything else (the store is down) fails the snapshot.
      const record = await this.flows.load('approval', id).catch((err: unknown) => {
        if (err instanceof HandoffError && err.code === 'not_found') return null;
        throw err;
      });
      if (record?.userId === key) live.push({ record, request: await this.requestOf(record) });
    }
    return live;
  }

  /** The internal topic a socket of `principal` joins for `user:me`. */
  topicOf(principal: Principal): string {
    return userTopic(principalKey(principal));
  }

  /** The approval of `id` if `principal` owns it; another user's (or nobody's) is `not_found`, as an unknown id. */
  private async owned(id: string, principal: Principal): Promise<FlowRecord> {
    const { id: flowId } = this.flows.parseTopic(`approval:${id}`);
    const record = await this.flows.load('approval', flowId);
    if (!record.userId || record.userId !== principalKey(principal)) throw new HandoffError('not_found');
    return record;
  }

  /** The request as the phone sees it: the state, who asks, the context, the choices; never the number. */
  private async requestOf(record: FlowRecord): Promise<ApprovalRequest> {
    const state = await this.flows.stateOf(record);
    const request: ApprovalRequest = {
      ...state,
      kind: 'approval',
      requester: record.requester ?? { ip: 'unknown', userAgent: 'unknown', createdAt: new Date(record.createdAt).toISOString() },
      choices: record.choices ?? [],
    };
    if (record.context !== undefined) request.context = record.context;
    return request;
  }

  /** Publish the approval to its user's topic on every node (the same fan-out as every state). */
  private pushToUser(record: FlowRecord, userId: string | undefined = record.userId): void {
    if (!userId) return;
    void this.requestOf(record).then((request) => {
      // Routed by `topic` like every state; gateways show it as `user:me` (user-channel.ts clientView).
      this.fanout.publish({ ...request, topic: userTopic(userId) } as unknown as FlowState);
    });
  }
}

/** Three distinct 2-digit numbers, `number` among them, in a uniformly random order (crypto RNG). */
export function choicesFor(number: number): number[] {
  const set = new Set<number>([number]);
  while (set.size < 3) set.add(randomInt(10, 100));
  const out = [...set];
  for (let i = out.length - 1; i > 0; i--) {
    const j = randomInt(0, i + 1);
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}
