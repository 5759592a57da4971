import { CodeCrypto } from './code-crypto.js';
import {
  purgeAt,
  type CodeRecord,
  type CodeStore,
  type Delivery,
  type IssueRequest,
  type IssueResult,
  type VerifyRequest,
  type VerifyResult,
  type WithdrawRequest,
} from './code-store.js';

interface Entry {
  record: CodeRecord;
  purgeAt: number;
}

/** Sweep purged entries every this many issues (keeps memory bounded without a timer). */
const SWEEP_EVERY = 256;

/** Codes in process memory (embedded mode); the behaviour of RedisCodeStore. */
export class MemoryCodeStore implements CodeStore {
  private readonly entries = new Map<string, Entry>();
  private issues = 0;

  async issue(key: string, req: IssueRequest): Promise<IssueResult> {
    if (++this.issues % SWEEP_EVERY === 0) this.sweep();
    const entry = this.live(key);
    if (entry) {
      const r = entry.record;
      const cooldownEnds = r.lastSentAt + req.resendMs;
      if (req.now < cooldownEnds) return { outcome: 'cooldown', retryAfterMs: cooldownEnds - req.now };
      if (req.now < r.expiresAt && r.attempts < req.maxAttempts && r.sealed !== null) {
        const previousSentAt = r.lastSentAt;
        r.lastSentAt = req.now;
        r.sends += 1;
        r.delivery = 'queued';
        entry.purgeAt = purgeAt(r.expiresAt, r.lastSentAt, req.resendMs);
        return { outcome: 'resent', generation: r.generation, expiresAt: r.expiresAt, previousSentAt };
      }
    }
    const record: CodeRecord = {
      generation: req.generation,
      hash: req.hash,
      sealed: req.sealed,
      attempts: 0,
      createdAt: req.now,
      expiresAt: req.now + req.ttlMs,
      lastSentAt: req.now,
      sends: 1,
      delivery: 'queued',
    };
    this.entries.set(key, { record, purgeAt: purgeAt(record.expiresAt, req.now, req.resendMs) });
    return { outcome: 'created', generation: record.generation, expiresAt: record.expiresAt };
  }

  async verify(key: string, req: VerifyRequest): Promise<VerifyResult> {
    const entry = this.live(key);
    if (!entry) return 'missing';
    const r = entry.record;
    if (req.now >= r.expiresAt) return 'expired';
    if (r.attempts >= req.maxAttempts) return 'burned';
    r.attempts += 1;
    if (CodeCrypto.matches(req.hash, r.hash)) {
      this.entries.delete(key);
      return 'ok';
    }
    if (r.attempts >= req.maxAttempts) r.sealed = null;
    return 'wrong';
  }

  async get(key: string): Promise<CodeRecord | null> {
    const entry = this.live(key);
    return entry ? { ...entry.record } : null;
  }

  async withdraw(key: string, req: WithdrawRequest): Promise<boolean> {
    const entry = this.live(key);
    if (!entry || entry.record.generation !== req.generation || entry.record.lastSentAt !== req.sentAt) return false;
    if (req.previousSentAt === undefined) {
      this.entries.delete(key);
      return true;
    }
    const r = entry.record;
    r.lastSentAt = req.previousSentAt;
    r.sends -= 1;
    r.delivery = 'failed';
    entry.purgeAt = purgeAt(r.expiresAt, r.lastSentAt, req.resendMs);
    return true;
  }

  async setDelivery(key: string, generation: string, delivery: Delivery): Promise<boolean> {
    const entry = this.live(key);
    if (!entry || entry.record.generation !== generation) return false;
    entry.record.delivery = delivery;
    return true;
  }

  /** The entry unless purged. Like Redis's PEXPIREAT, purging follows the real clock, not `now`. */
  private live(key: string): Entry | undefined {
    const entry = this.entries.get(key);
    if (entry && Date.now() >= entry.purgeAt) {
      this.entries.delete(key);
      return undefined;
    }
    return entry;
  }

  private sweep(): void {
    const now = Date.now();
    for (const [key, entry] of this.entries) if (now >= entry.purgeAt) this.entries.delete(key);
  }
}
