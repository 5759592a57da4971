/** Counts commands being handled, so a graceful shutdown can let them answer before closing. */
export class Inflight {
  private count = 0;
  private waiters: Array<() => void> = [];

  get size(): number {
    return this.count;
  }

  /** Run `fn` counted as in flight. */
  async track<T>(fn: () => Promise<T>): Promise<T> {
    this.count++;
    try {
      return await fn();
    } finally {
      this.count--;
      if (this.count === 0) for (const resolve of this.waiters.splice(0)) resolve();
    }
  }

  /** Resolves once nothing is in flight, or after `timeoutMs`. */
  idle(timeoutMs: number): Promise<void> {
    if (this.count === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(done, timeoutMs);
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.waiters.push(done);
    });
  }
}

/** Resolves when `check()` is true (re-checked on each `poke`), or after `timeoutMs`. */
export function until(check: () => boolean, subscribe: (poke: () => void) => () => void, timeoutMs: number): Promise<void> {
  if (check()) return Promise.resolve();
  return new Promise((resolve) => {
    let off: () => void = () => {};
    const finish = () => {
      clearTimeout(timer);
      off();
      resolve();
    };
    const timer = setTimeout(finish, timeoutMs);
    off = subscribe(() => {
      if (check()) finish();
    });
  });
}
