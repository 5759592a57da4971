/** Push-to-approve pieces without a server: choices, the proximity hint, the user-channel view, the webhook payload. */
import { describe, expect, it } from 'vitest';
import type { FlowState } from '@handoff/protocol';
import { choicesFor } from '../../server/src/approvals/approval-service.js';
import { clientView, nearby, userTopic } from '../../server/src/approvals/user-channel.js';
import type { FlowRecord } from '../../server/src/flows/flow-record.js';
import { webhookPayload } from '../../server/src/webhooks/events.js';
import { loadConfig } from '../../server/src/config.js';
import { TEST_SERVER_ENV } from '../harness/server-process.js';

describe('choices', () => {
  it('are three distinct 2-digit numbers with the right one, each position taken by it over many draws', () => {
    const positions = new Set<number>();
    for (let i = 0; i < 300; i++) {
      const number = 10 + (i % 90);
      const choices = choicesFor(number);
      expect(choices).toHaveLength(3);
      expect(new Set(choices).size).toBe(3);
      for (const c of choices) expect(c >= 10 && c <= 99 && Number.isInteger(c)).toBe(true);
      positions.add(choices.indexOf(number));
    }
    expect([...positions].sort()).toEqual([0, 1, 2]);
  });
});

describe('the proximity hint', () => {
  it.each([
    ['203.0.113.7', '203.0.113.7', 'same-ip'],
    ['::ffff:203.0.113.7', '203.0.113.7', 'same-ip'],
    ['203.0.113.7', '203.0.113.200', 'same-network'],
    ['203.0.113.7', '203.0.114.7', null],
    ['2001:db8:1:2::1', '2001:db8:1:2:ffff::9', 'same-network'],
    ['2001:db8:1:2::1', '2001:0db8:0001:0002:0:0:0:1', 'same-ip'],
    ['2001:db8:1:3::1', '2001:db8:1:2::1', null],
    ['203.0.113.7', '2001:db8::1', null],
    [undefined, '203.0.113.7', null],
    ['203.0.113.7', 'unknown', null],
  ] as const)('%s vs %s → %s', (phone, requester, expected) => {
    expect(nearby(phone, requester)).toBe(expected);
  });
});

describe('the user channel', () => {
  it('shows a push on a user topic as user:me, and any other state as it is', () => {
    const pushed = { topic: userTopic('app:acme-42'), kind: 'approval', id: 'x', state: 'pending', version: 1, expiresAt: '' } as unknown as FlowState;
    expect(clientView(pushed).topic).toBe('user:me');
    const withRequester = { ...pushed, requester: { ip: '198.51.100.4', userAgent: 'x', createdAt: '' } } as unknown as FlowState;
    expect(clientView(withRequester, '198.51.100.77')).toMatchObject({ requester: { nearby: 'same-network' } });
    expect(clientView(withRequester)).toMatchObject({ requester: { nearby: null } });
    const qr = { topic: 'qr:abcdefghijklmnop', kind: 'qr', id: 'abcdefghijklmnop', state: 'pending', version: 1, expiresAt: '' } as FlowState;
    expect(clientView(qr)).toBe(qr);
  });
});

describe('approval webhooks', () => {
  const record: FlowRecord = {
    kind: 'approval',
    id: 'abcdefghijklmnopqrstuv',
    state: 'pending',
    version: 1,
    createdAt: 0,
    expiresAt: 120_000,
    watchTokenHash: 'ab',
    userId: 'app:acme-42',
    requester: { ip: '203.0.113.7', userAgent: 'Chrome', createdAt: '1970-01-01T00:00:00.000Z' },
    context: { orderId: 'A-1' },
    number: 42,
    choices: [17, 42, 88],
  };

  it('approval.requested carries the user, requester and context, never the number or the choices', () => {
    const payload = webhookPayload(record)!;
    expect(payload.type).toBe('approval.requested');
    expect(payload.data).toMatchObject({ userId: 'acme-42', account: 'app', requester: record.requester, context: record.context });
    expect(JSON.stringify(payload)).not.toMatch(/42,|"number"|choices/);
  });

  it('an unknown login (no owner) raises nothing; approved and denied raise their events', () => {
    expect(webhookPayload({ ...record, userId: undefined })).toBeNull();
    expect(webhookPayload({ ...record, state: 'approved', version: 2 })?.type).toBe('approval.approved');
    expect(webhookPayload({ ...record, state: 'denied', version: 2 })?.type).toBe('approval.denied');
    expect(webhookPayload({ ...record, state: 'expired', version: 2 })).toBeNull();
  });
});

describe('approval settings', () => {
  it('default to 3 per user, 120 s, 20 per IP and 10 per user a minute', () => {
    expect(loadConfig({ ...TEST_SERVER_ENV }).approvals).toEqual({ perUser: 3, ttlSeconds: 120, ipPerMinute: 20, userPerMinute: 10 });
  });

  it.each([
    ['APPROVAL_TTL_SECONDS', '601'],
    ['APPROVAL_TTL_SECONDS', '0'],
    ['APPROVALS_PER_USER', '0'],
    ['APPROVALS_PER_USER', 'three'],
    ['APPROVAL_IP_PER_MINUTE', '-1'],
    ['APPROVAL_USER_PER_MINUTE', '1.5'],
  ])('refuse %s=%s at start, naming the variable', (name, value) => {
    expect(() => loadConfig({ ...TEST_SERVER_ENV, [name]: value })).toThrow(name);
  });
});
