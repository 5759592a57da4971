/**
 * Runs bulk work in small portions so that cheap requests are not held up behind a burst of it:
 * at most `perTurn` jobs start per event-loop turn, and at most `concurrent` run at once. The
 * others wait, in order.
 *
 * Why both bounds: a burst of async logins (each creates a flow, seals the credentials, queues a
 * job and answers) otherwise runs back to back, and a read that arrives behind it waits for all
 * of it: 50 logins in flight ≈ 50 × their cost.
 *  - In embedded mode a login runs to its end in one go (the store answers without I/O), so
 *    `perTurn` is what interleaves: each turn runs at most that many after the turn's I/O, and
 *    the loop serves reads and socket messages before the next ones.
 *  - In Redis mode a login waits on Redis several times, so many would be in progress at once and
 *    every read's Redis command would queue behind all of theirs on the shared connection;
 *    `concurrent` bounds that queue.
 * The burst as a whole does not take longer while the loop is busy anyway; it is interleaved.
 * Turns are setImmediate turns. At most `maxWaiting` callers wait; past that `run` rejects at once
 * with `full()`, so a flood cannot pile up requests (and what they hold) without bound.
 */
export class WorkGate {
  private readonly waiting: Array<() => void> = [];
  private active = 0;
  private startedThisTurn = 0;
  private scheduled = false;

  constructor(
    private readonly perTurn: number,
    private readonly concurrent: number,
    private readonly maxWaiting: number,
    private readonly full: () => Error,
  ) {
    if (!(perTurn >= 1) || !(concurrent >= 1) || !(maxWaiting >= 0)) throw new RangeError('WorkGate bounds must be at least 1 (maxWaiting: 0)');
  }

  /** Run `fn` once the gate lets it start; resolves or rejects with it. */
  async run<T>(fn: () => Promise<T>): Promise<T> {
    const mustWait = this.waiting.length > 0 || !this.hasRoom();
    if (mustWait && this.waiting.length >= this.maxWaiting) throw this.full();
    await this.enter();
    try {
      return await fn();
    } finally {
      this.active--;
      if (this.waiting.length > 0) this.schedule();
    }
  }

  private hasRoom(): boolean {
    return this.startedThisTurn < this.perTurn && this.active < this.concurrent;
  }

  private enter(): Promise<void> {
    this.schedule(); // the per-turn count starts afresh next turn
    if (this.waiting.length === 0 && this.hasRoom()) {
      this.startedThisTurn++;
      this.active++;
      return Promise.resolve();
    }
    return new Promise<void>((resolve) => this.waiting.push(resolve));
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => this.turn());
  }

  private turn(): void {
    this.scheduled = false;
    this.startedThisTurn = 0;
    while (this.waiting.length > 0 && this.hasRoom()) {
      this.startedThisTurn++;
      this.active++;
      this.waiting.shift()!();
    }
    // Reset the count next turn; waiters left either get room then or when a job ends (run()).
    if (this.startedThisTurn > 0) this.schedule();
  }
}
