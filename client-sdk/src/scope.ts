/**
 * One dispose list (socket.io-client `on.ts` style): every listener, timer and child scope the
 * SDK registers returns its own off-function and sits in exactly one scope; disposing a scope runs
 * them all. A module-wide counter of live registrations lets tests prove that `close()` leaves
 * nothing behind.
 */

let live = 0;

/** Registrations (listeners, timers, child scopes) not yet disposed, across every scope. Internal; for tests. */
export function liveResources(): number {
  return live;
}

/** A list of off-functions, disposed together. */
export class Scope {
  private readonly offs = new Set<() => void>();
  private closed = false;
  private detach: (() => void) | null = null;

  /** True once `dispose()` ran: nothing registered on this scope will run any more. */
  get disposed(): boolean {
    return this.closed;
  }

  /** Register an off-function; returns it wrapped so it runs once and leaves the list. */
  add(off: () => void): () => void {
    if (this.closed) {
      off();
      return () => {};
    }
    live++;
    let done = false;
    const once = (): void => {
      if (done) return;
      done = true;
      live--;
      this.offs.delete(once);
      off();
    };
    this.offs.add(once);
    return once;
  }

  /** `setTimeout` owned by this scope; returns its cancel function. Never fires after `dispose()`. */
  timeout(fn: () => void, ms: number): () => void {
    if (this.closed) return () => {};
    const id = setTimeout(() => {
      cancel();
      fn();
    }, Math.max(0, ms));
    const cancel = this.add(() => clearTimeout(id));
    return cancel;
  }

  /** Resolve after `ms`, or at once when the scope is disposed (check `disposed` after awaiting). */
  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      let wake = (): void => {};
      const cancel = this.timeout(() => wake(), ms);
      wake = this.add(() => {
        cancel();
        resolve();
      });
    });
  }

  /** Listen to an AbortSignal's `abort` for as long as this scope lives. */
  onAbort(signal: AbortSignal | undefined, fn: () => void): () => void {
    if (!signal) return () => {};
    const handler = (): void => fn();
    signal.addEventListener('abort', handler, { once: true });
    return this.add(() => signal.removeEventListener('abort', handler));
  }

  /** A scope disposed with this one (or on its own, whichever comes first). */
  child(): Scope {
    const child = new Scope();
    if (this.closed) {
      child.dispose();
      return child;
    }
    child.detach = this.add(() => child.dispose());
    return child;
  }

  /** Run every off-function (newest first) and refuse new ones. Idempotent. */
  dispose(): void {
    if (this.closed) return;
    this.closed = true;
    for (const off of [...this.offs].reverse()) off();
    const detach = this.detach;
    this.detach = null;
    detach?.();
  }
}
