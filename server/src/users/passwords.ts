import bcrypt from 'bcrypt';

/** bcrypt hashing; native bcrypt runs on libuv's thread pool, off the event loop. */
export class Passwords {
  /** A hash of a random password, compared against when the email is unknown so both paths cost the same. */
  private readonly dummyHash: Promise<string>;

  constructor(private readonly cost: number) {
    this.dummyHash = bcrypt.hash('handoff-timing-equaliser', cost);
  }

  hash(password: string): Promise<string> {
    return bcrypt.hash(password, this.cost);
  }

  /** Compare against `hash`, or against a dummy hash when the user does not exist (same time either way). */
  async verify(password: string, hash: string | null): Promise<boolean> {
    const ok = await bcrypt.compare(password, hash ?? (await this.dummyHash));
    return ok && hash !== null;
  }
}
