import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes, randomInt, timingSafeEqual } from 'node:crypto';
import type { CodeChannel, CodePurpose } from './recipients.js';

/** Digits in a verification code. */
export const CODE_DIGITS = 6;
const CODE_SPACE = 10 ** CODE_DIGITS;

/** A fresh code: 6 decimal digits, uniform, from the CSPRNG (`crypto.randomInt`). */
export function generateCode(): string {
  return String(randomInt(0, CODE_SPACE)).padStart(CODE_DIGITS, '0');
}

/** True for a string shaped like a code (6 ASCII digits). */
export function isCodeShaped(code: unknown): code is string {
  return typeof code === 'string' && /^[0-9]{6}$/.test(code);
}

function subkey(secret: string, info: string): Buffer {
  return Buffer.from(hkdfSync('sha256', Buffer.from(secret, 'utf8'), 'handoff/verification-codes/v1', info, 32));
}

/**
 * The secrets of verification codes, all derived with HKDF-SHA256 from the server secret
 * (JWT_SECRET), one subkey per use:
 *
 * - `recipientId`: HMAC of channel + normalised recipient, so Redis keys and rate-limit keys do
 *   not carry email addresses or phone numbers in clear.
 * - `hash`: HMAC-SHA256 of the code bound to its record key (purpose, channel, recipient). The
 *   code space is 10^6, so an unkeyed hash would fall to a brute force in a second; without the
 *   key a dump of the store says nothing about the code.
 * - `seal`/`open`: AES-256-GCM of the code, kept next to the hash only so that a resend within the
 *   validity window can send the SAME code. The GCM associated data binds it to its record key
 *   and generation. It is removed as soon as the code is used or burned.
 *
 * Anyone holding JWT_SECRET can forge sessions anyway, so keying everything on it adds no new
 * secret to manage; every node must share it (as for JWTs).
 */
export class CodeCrypto {
  private readonly idKey: Buffer;
  private readonly hashKey: Buffer;
  private readonly sealKey: Buffer;

  constructor(secret: string) {
    this.idKey = subkey(secret, 'recipient-id');
    this.hashKey = subkey(secret, 'code-hash');
    this.sealKey = subkey(secret, 'code-seal');
  }

  /** The store key of the code for (purpose, channel, normalised recipient), without the Redis prefix. */
  recordKey(purpose: CodePurpose, channel: CodeChannel, recipient: string): string {
    return `${purpose}:${channel}:${this.recipientId(channel, recipient)}`;
  }

  /** A stable pseudonym of a recipient (base64url HMAC), for keys and logs. */
  recipientId(channel: CodeChannel, recipient: string): string {
    return createHmac('sha256', this.idKey).update(`${channel}\0${recipient}`, 'utf8').digest('base64url');
  }

  /** hex HMAC-SHA256 of `code` under the record key; only this is compared. */
  hash(recordKey: string, code: string): string {
    return createHmac('sha256', this.hashKey).update(`${recordKey}\0${code}`, 'utf8').digest('hex');
  }

  /** Constant-time equality of two hex hashes. */
  static matches(presentedHex: string, storedHex: string): boolean {
    const a = Buffer.from(presentedHex, 'hex');
    const b = Buffer.from(storedHex, 'hex');
    return a.length === b.length && a.length > 0 && timingSafeEqual(a, b);
  }

  /** The code encrypted for the store: base64url(iv ‖ tag ‖ ciphertext). */
  seal(code: string, recordKey: string, generation: string): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.sealKey, iv);
    cipher.setAAD(Buffer.from(`${recordKey}\0${generation}`, 'utf8'));
    const ct = Buffer.concat([cipher.update(code, 'utf8'), cipher.final()]);
    return Buffer.concat([iv, cipher.getAuthTag(), ct]).toString('base64url');
  }

  /** The code back from `seal`; throws when it was tampered with or belongs to another record. */
  open(sealed: string, recordKey: string, generation: string): string {
    const raw = Buffer.from(sealed, 'base64url');
    if (raw.length < 29) throw new Error('sealed code too short');
    const decipher = createDecipheriv('aes-256-gcm', this.sealKey, raw.subarray(0, 12));
    decipher.setAAD(Buffer.from(`${recordKey}\0${generation}`, 'utf8'));
    decipher.setAuthTag(raw.subarray(12, 28));
    return Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString('utf8');
  }
}
