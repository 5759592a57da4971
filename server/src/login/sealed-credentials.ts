import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';

/** What an async login job must verify: a password or a code. */
export type Credentials = { password: string } | { code: string };

/**
 * Credentials ride the job queue sealed with AES-256-GCM under a key derived from JWT_SECRET
 * (every node and worker shares it), so a password never rests in Redis in clear text; the job
 * is deleted the moment it ends (a `sensitive` queue).
 */
export class CredentialSealer {
  private readonly key: Buffer;

  constructor(secret: string) {
    this.key = Buffer.from(hkdfSync('sha256', secret, 'handoff', 'login-credentials-v1', 32));
  }

  seal(credentials: Credentials): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv);
    const body = Buffer.concat([cipher.update(JSON.stringify(credentials), 'utf8'), cipher.final()]);
    return Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64url');
  }

  /** The credentials, or throws when the box was tampered with or sealed under another secret. */
  open(sealed: string): Credentials {
    const raw = Buffer.from(sealed, 'base64url');
    const decipher = createDecipheriv('aes-256-gcm', this.key, raw.subarray(0, 12));
    decipher.setAuthTag(raw.subarray(12, 28));
    const text = Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString('utf8');
    return JSON.parse(text) as Credentials;
  }
}
