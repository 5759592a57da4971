/** A job as its processor sees it. */
export interface Job<T> {
  id: string;
  data: T;
  /** Attempts made before this one (0 on the first run). */
  attemptsMade: number;
  /** Attempts it was queued with, the first included: `attemptsMade + 1 === attempts` is the last. */
  attempts: number;
}

export interface JobOptions {
  /** Deduplicates: a job with an id already queued is not added twice. Default: generated. */
  jobId?: string;
  /** Total attempts including the first (default 1: no retry). */
  attempts?: number;
  /** Base delay of the exponential, full-jitter backoff between attempts, ms (default 1000). */
  backoffMs?: number;
}

export type Processor<T> = (job: Job<T>) => Promise<void>;

/**
 * Thrown by a processor when another attempt cannot succeed (an SMTP 5xx, an SMS gateway's 400):
 * the job fails at once, its remaining attempts unused, and `onFailed` hears it with this error.
 */
export class PermanentJobError extends Error {
  override readonly name = 'PermanentJobError';
}

export interface WorkOptions<T> {
  /** Jobs run at once in this process (default 1). */
  concurrency?: number;
  /** Called once when a job failed its last attempt, or an attempt threw a PermanentJobError. */
  onFailed?: (job: Job<T>, err: Error) => void;
}

/**
 * A named job queue: BullMQ on Redis (any number of producer and worker processes) or the
 * in-process queue (embedded mode) with the same behaviour: FIFO, bounded concurrency, retries
 * with exponential full-jitter backoff, graceful close that lets active jobs finish.
 */
export interface JobQueue<T> {
  readonly name: string;
  /** Enqueue a job; resolves with its id. */
  add(data: T, opts?: JobOptions): Promise<string>;
  /** Start processing this queue in this process. Call at most once. */
  work(processor: Processor<T>, opts?: WorkOptions<T>): void;
  /** Jobs waiting (not yet started) and running. */
  counts(): Promise<{ waiting: number; active: number; delayed: number }>;
  /** Stop taking jobs, let active ones finish, release connections. */
  close(): Promise<void>;
}

export interface QueueOptions {
  /** Job data holds secrets (credentials, codes): remove every job the moment it completes or fails. */
  sensitive?: boolean;
}

/** How one run (attempt) of a job ended. */
export type JobOutcome = 'completed' | 'failed';

/** Told about every job attempt this factory's workers run (metrics). */
export type JobObserver = (queue: string, outcome: JobOutcome, seconds: number) => void;

/** Creates the queues of one backend. */
export interface QueueFactory {
  create<T>(name: string, opts?: QueueOptions): JobQueue<T>;
  /** Every queue this factory created (e.g. to report their depth). */
  list(): readonly JobQueue<unknown>[];
  /** Observe the job attempts run by this factory's workers; returns the off-function. */
  observe(observer: JobObserver): () => void;
  /** Close every queue this factory created (idempotent): workers stop taking jobs, active ones finish. */
  close(): Promise<void>;
}

/**
 * What both factories share: the queues they made, their observers, and closing them all once.
 * A subclass only says how to make a queue.
 */
export abstract class BaseQueueFactory<Q extends JobQueue<unknown>> implements QueueFactory {
  protected readonly queues: Q[] = [];
  protected readonly observers = new JobObservers();
  private closed: Promise<void> | null = null;

  abstract create<T>(name: string, opts?: QueueOptions): JobQueue<T>;

  protected track<T>(queue: Q): JobQueue<T> {
    this.queues.push(queue);
    return queue as unknown as JobQueue<T>;
  }

  list(): readonly JobQueue<unknown>[] {
    return this.queues;
  }

  observe(observer: JobObserver): () => void {
    return this.observers.add(observer);
  }

  close(): Promise<void> {
    this.closed ??= Promise.all(this.queues.map((q) => q.close())).then(() => {});
    return this.closed;
  }
}

/** The observers of one factory, and a processor wrapper that times every attempt. */
export class JobObservers {
  private readonly observers = new Set<JobObserver>();

  add(observer: JobObserver): () => void {
    this.observers.add(observer);
    return () => this.observers.delete(observer);
  }

  /** Wrap `processor` so each attempt is timed and reported under `queue`. */
  wrap<T>(queue: string, processor: Processor<T>): Processor<T> {
    return async (job) => {
      const started = performance.now();
      let outcome: JobOutcome = 'failed';
      try {
        await processor(job);
        outcome = 'completed';
      } finally {
        const seconds = (performance.now() - started) / 1000;
        for (const observer of this.observers) {
          try {
            observer(queue, outcome, seconds);
          } catch {
            // an observer never changes a job's outcome
          }
        }
      }
    };
  }
}

/**
 * Delay before attempt `attemptsMade + 1`: full jitter over an exponential, capped at 5 minutes.
 * Below the cap this is BullMQ's own `{ type: 'exponential', delay: baseMs, jitter: 1 }`, draw for
 * draw (test/integration/job-queue.contract.test.ts); it is not that built-in because BullMQ's has
 * no ceiling (WEBHOOK_ATTEMPTS may be 50). BullMQ runs it as the workers' `backoffStrategy`, the
 * memory queue calls it directly: one function, the same delays in both modes.
 */
export function backoffDelay(attemptsMade: number, baseMs: number, random: () => number = Math.random): number {
  const ceiling = Math.min(baseMs * 2 ** Math.max(0, attemptsMade - 1), 5 * 60_000);
  return Math.floor(random() * ceiling);
}
