import { HandoffError } from '../errors.js';
import { normaliseEmail } from '../users/user-store.js';

/** How a code travels. */
export type CodeChannel = 'email' | 'sms';
/** What a code is for. */
export type CodePurpose = 'register' | 'login';

export const CODE_CHANNELS: readonly CodeChannel[] = ['email', 'sms'];

/** Longest email address accepted (RFC 5321 path limit minus the angle brackets). */
export const EMAIL_MAX_LENGTH = 254;

/**
 * A sane email check, not RFC 5322: an ASCII local part of the usual atom characters (dots
 * allowed between them, at most 64 characters), `@`, and a DNS name of at least two labels whose
 * last label (the TLD) is letters or punycode. Quoted local parts, IP literals and non-ASCII
 * addresses are refused.
 */
const EMAIL_RE =
  /^(?=[^@]{1,64}@)[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+(?:[A-Za-z]{2,63}|xn--[A-Za-z0-9-]{1,59})$/;

/** True for an address that passes the check above (before normalisation: surrounding spaces fail). */
export function isValidEmail(email: string): boolean {
  return email.length <= EMAIL_MAX_LENGTH && EMAIL_RE.test(email);
}

/** E.164: `+`, a country code not starting with 0, 8 to 15 digits in all. */
const PHONE_RE = /^\+[1-9][0-9]{7,14}$/;

/** Separators people type inside phone numbers; removed before the E.164 check. */
const PHONE_SEPARATORS = /[\s().-]/g;

/**
 * The recipient as codes are keyed and sent: an email trimmed and lower-cased (as accounts
 * store it), a phone number with separators removed (`+44 20 7946-0958` → `+442079460958`).
 * Throws 400 `bad_request` when it is not an address of that channel.
 */
export function normaliseRecipient(channel: CodeChannel, to: string): string {
  if (channel === 'email') {
    const email = normaliseEmail(to);
    if (!isValidEmail(email)) throw new HandoffError('bad_request', '`to` is not a valid email address.');
    return email;
  }
  const phone = to.trim().replace(PHONE_SEPARATORS, '');
  if (!PHONE_RE.test(phone)) {
    throw new HandoffError('bad_request', '`to` is not a phone number in international format (e.g. +447700900123).');
  }
  return phone;
}

/** The local part of a (valid) email address. */
export function emailLocalPart(email: string): string {
  return email.slice(0, email.lastIndexOf('@'));
}
