import type { Logger } from 'pino';

/** One step of a shutdown that failed: its name and its error. */
export interface FailedStep {
  step: string;
  err: Error;
}

/**
 * The steps of a graceful shutdown, run in their declared order where each one must run whatever
 * the others did (BullMQ's `Worker.close()` is the model): a step's error is logged with its name
 * and kept, never swallowed and never allowed to skip the steps after it. Once every step ran,
 * `assertClean()` throws if any failed, so the process exits non-zero.
 */
export class ShutdownSteps {
  readonly failures: FailedStep[] = [];

  constructor(private readonly log: Pick<Logger, 'error'>) {}

  /** Run one step; resolves when it ended, whether or not it failed. */
  async run(step: string, fn: () => unknown): Promise<void> {
    try {
      await fn();
    } catch (err) {
      const error = err instanceof Error ? err : new Error(String(err));
      this.failures.push({ step, err: error });
      this.log.error({ step, err: error }, `shutdown step failed: ${step}`);
    }
  }

  /** Throw an AggregateError naming every failed step, if any failed. */
  assertClean(): void {
    if (this.failures.length === 0) return;
    throw new AggregateError(
      this.failures.map((f) => f.err),
      `shutdown steps failed: ${this.failures.map((f) => f.step).join(', ')}`,
    );
  }
}
