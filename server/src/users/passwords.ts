import { BcryptPool } from './bcrypt-pool.js';

/** bcrypt hashing on its own low-priority threads (bcrypt-pool.ts), off the event loop. */
export class Passwords {
  private readonly pool: BcryptPool;
  /** A hash of a fixed password, compared against when the email is unknown so both paths cost the same. */
  private dummyHash: Promise<string> | null = null;

  constructor(
    private readonly cost: number,
    threads = 1,
  ) {
    this.pool = new BcryptPool(threads);
  }

  hash(password: string): Promise<string> {
    return this.pool.hash(password, this.cost);
  }

  /** Compare against `hash`, or against a dummy hash when the user does not exist (same time either way). */
  async verify(password: string, hash: string | null): Promise<boolean> {
    if (hash !== null) {
      const ok = this.pool.compare(password, hash);
      void this.dummy(); // made at the first login of any kind, so it is ready for unknown emails
      return ok;
    }
    await this.pool.compare(password, await this.dummy());
    return false;
  }

  private dummy(): Promise<string> {
    if (!this.dummyHash) {
      const made = this.pool.hash('handoff-timing-equaliser', this.cost);
      // Nobody may be waiting for it (a known user's login started it): a failure, e.g. the pool
      // closing at shutdown, must not be an unhandled rejection; the next login makes it again.
      made.catch(() => {
        if (this.dummyHash === made) this.dummyHash = null;
      });
      this.dummyHash = made;
    }
    return this.dummyHash;
  }

  /** End the hashing threads (they start again if used). */
  close(): Promise<void> {
    return this.pool.close();
  }
}
