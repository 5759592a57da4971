import type { ApprovalRequest, FlowState, Nearby } from '@handoff/protocol';
import { isIP } from 'node:net';

/** The topic an app socket subscribes to for its own user's approvals (contract §9). */
export const USER_CHANNEL = 'user:me';

/** Prefix of the internal per-user topics (`user:<principalKey>`), the rooms the fan-out routes on (a topic, not a Redis key). */
const USER_TOPIC_PREFIX = `${USER_CHANNEL.slice(0, USER_CHANNEL.indexOf(':'))}:`;

/** The internal topic of one user's channel: `user:<principalKey>`; every node routes pushes on it. */
export function userTopic(principalKey: string): string {
  return `${USER_TOPIC_PREFIX}${principalKey}`;
}

/** The principal key of an internal user topic (the inverse of userTopic). */
export function principalKeyOfUserTopic(topic: string): string {
  return topic.slice(USER_TOPIC_PREFIX.length);
}

/** True for an internal user topic (what a gateway shows as `user:me`). */
export function isUserTopic(topic: string): boolean {
  return topic.startsWith(USER_TOPIC_PREFIX);
}

/**
 * What a client is sent for a state delivered to this node: a push on a user's internal topic is
 * shown as `topic: 'user:me'` (the client never sees its principal key), with the proximity hint
 * for the receiving peer's IP (`peerIp`, default none: no hint); any other state as it is.
 */
export function clientView(state: FlowState, peerIp?: string): FlowState | ApprovalRequest {
  if (!isUserTopic(state.topic)) return state;
  const request = state as unknown as ApprovalRequest;
  const shown: ApprovalRequest = { ...request, topic: USER_CHANNEL };
  if (request.requester) shown.requester = { ...request.requester, nearby: nearby(peerIp, request.requester.ip) };
  return shown;
}

/**
 * Proximity hint between the phone's IP and the requester's: the same address, the same /24
 * (IPv4) or /64 (IPv6) network, or null. A hint shown as such, never a proof: NAT, VPNs and
 * proxies make unrelated people share addresses, and the same person appear from different ones.
 */
export function nearby(phoneIp: string | undefined, requesterIp: string): Nearby {
  if (!phoneIp) return null;
  const a = normalise(phoneIp);
  const b = normalise(requesterIp);
  if (!a || !b || a.family !== b.family) return null;
  if (a.parts.join(':') === b.parts.join(':')) return 'same-ip';
  const prefixParts = a.family === 4 ? 3 : 4; // /24 = 3 octets, /64 = 4 hextets
  return a.parts.slice(0, prefixParts).join(':') === b.parts.slice(0, prefixParts).join(':') ? 'same-network' : null;
}

/** An address as its IPv4 octets or its 8 expanded IPv6 hextets (IPv4-mapped IPv6 as IPv4). */
function normalise(ip: string): { family: 4 | 6; parts: string[] } | null {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  const addr = mapped ? mapped[1] : ip;
  const family = isIP(addr);
  if (family === 4) return { family: 4, parts: addr.split('.').map((p) => String(Number(p))) };
  if (family !== 6) return null;
  const [head, tail = ''] = addr.toLowerCase().split('%')[0].split('::');
  const h = head ? head.split(':') : [];
  const t = addr.includes('::') ? (tail ? tail.split(':') : []) : [];
  if (h.some((x) => x.includes('.')) || t.some((x) => x.includes('.'))) return null; // embedded IPv4 forms: no hint
  const fill = addr.includes('::') ? Array(8 - h.length - t.length).fill('0') : [];
  return { family: 6, parts: [...h, ...fill, ...t].map((x) => parseInt(x, 16).toString(16)) };
}
