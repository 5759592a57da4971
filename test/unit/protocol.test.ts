import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  ERRORS,
  FINAL_STATES,
  LOGIN_STATES,
  QR_STATES,
  APPROVAL_STATES,
  TRANSITIONS,
  allowedFrom,
  isFinalState,
  parseTopic,
  type FlowKind,
} from '@handoff/protocol';
import { HandoffError } from '../../server/src/errors.js';
import { hashWatchToken, watchTokenMatches } from '../../server/src/flows/watch-token.js';
import { randomToken } from '../../server/src/lib/random-token.js';

describe('state machines', () => {
  it('match the contract arrows exactly', () => {
    expect(TRANSITIONS.qr).toEqual({
      pending: [],
      scanned: ['pending'],
      confirmed: ['scanned'],
      redeemed: ['confirmed'],
      cancelled: ['pending', 'scanned'],
      expired: ['pending', 'scanned', 'confirmed'],
    });
    expect(TRANSITIONS.login).toEqual({
      queued: [],
      processing: ['queued'],
      succeeded: ['processing'],
      redeemed: ['succeeded'],
      failed: ['processing'],
      expired: ['queued', 'processing', 'succeeded'],
    });
    expect(TRANSITIONS.approval).toEqual({
      pending: [],
      approved: ['pending'],
      redeemed: ['approved'],
      denied: ['pending'],
      cancelled: ['pending'],
      expired: ['pending', 'approved'],
    });
  });

  it('never leave a final state', () => {
    for (const kind of ['qr', 'login', 'approval'] as FlowKind[]) {
      const states = kind === 'qr' ? QR_STATES : kind === 'login' ? LOGIN_STATES : APPROVAL_STATES;
      for (const to of states) for (const from of allowedFrom(kind, to)) expect(isFinalState(from), `${kind}: ${from} → ${to}`).toBe(false);
    }
    expect([...FINAL_STATES].sort()).toEqual(['cancelled', 'denied', 'expired', 'failed', 'redeemed']);
  });

  it('parses topics strictly', () => {
    expect(parseTopic('qr:abcdefghijklmnopqrstuv')).toEqual({ kind: 'qr', id: 'abcdefghijklmnopqrstuv' });
    expect(parseTopic('login:abcdefghijklmnop_-12')).toEqual({ kind: 'login', id: 'abcdefghijklmnop_-12' });
    expect(parseTopic('approval:abcdefghijklmnop_-12')).toEqual({ kind: 'approval', id: 'abcdefghijklmnop_-12' });
    for (const bad of ['qr:short', 'sms:abcdefghijklmnopqrstuv', 'qr:abc/def/ghijklmnopqrstu', 'qrabcdefghijklmnopqrstuv', 'user:me', 'approval:short', 42, null]) {
      expect(parseTopic(bad), String(bad)).toBeNull();
    }
  });
});

describe('the error catalogue', () => {
  it('has every code the contract names, with its status', () => {
    expect(ERRORS).toMatchObject({
      bad_request: { status: 400 },
      unauthorized: { status: 401 },
      invalid_credentials: { status: 401 },
      invalid_watch_token: { status: 403 },
      not_scanner: { status: 403 },
      not_found: { status: 404 },
      invalid_transition: { status: 409 },
      already_redeemed: { status: 410 },
      payload_too_large: { status: 413 },
      rate_limited: { status: 429 },
      unavailable: { status: 503 },
    });
  });

  it('documents every code in docs/protocol.md', () => {
    const doc = readFileSync(new URL('../../docs/protocol.md', import.meta.url), 'utf8');
    for (const code of Object.keys(ERRORS)) expect(doc, code).toContain(`\`${code}\``);
  });

  it('HandoffError carries code, status and default message, and survives instanceof', () => {
    const err = new HandoffError('not_scanner');
    expect(err).toBeInstanceOf(HandoffError);
    expect(err).toBeInstanceOf(Error);
    expect(err.status).toBe(403);
    expect(err.toBody()).toEqual({ code: 'not_scanner', message: ERRORS.not_scanner.message });
  });
});

describe('watch tokens', () => {
  it('are >= 128 random bits, URL-safe, and never equal', () => {
    const a = randomToken();
    expect(a).toMatch(/^[A-Za-z0-9_-]{32}$/); // 24 bytes = 192 bits
    expect(randomToken()).not.toBe(a);
  });

  it('are matched against their hash only', () => {
    const token = randomToken();
    const hash = hashWatchToken(token);
    expect(hash).not.toContain(token);
    expect(watchTokenMatches(token, hash)).toBe(true);
    expect(watchTokenMatches(token + 'x', hash)).toBe(false);
    expect(watchTokenMatches('', hash)).toBe(false);
    expect(watchTokenMatches(undefined, hash)).toBe(false);
  });
});
