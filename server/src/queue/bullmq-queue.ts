import { Queue, UnrecoverableError, Worker, type Job as BullJob, type MinimalJob } from 'bullmq';
import { createRedisConnection, quitOrDrop, type RedisClient } from '../store/redis-connection.js';
import { singleRedis, type RedisConfig } from '../store/redis-config.js';
import { withDeadline } from '../lib/deadline.js';
import {
  BaseQueueFactory,
  JobObservers,
  PermanentJobError,
  backoffDelay,
  type JobOptions,
  type QueueOptions,
  type JobQueue,
  type Processor,
  type WorkOptions,
} from './job-queue.js';

/** A PermanentJobError as BullMQ knows it: not retried. Its own class, so BullMQ's own UnrecoverableErrors are told apart. */
class Refused extends UnrecoverableError {}

/** Longest wait for Redis when adding a job or counting jobs; then `unavailable` (503). */
export const QUEUE_CALL_TIMEOUT_MS = 2_000;

export interface BullQueueOptions {
  /** The Redis deployment (Config.redis: one Redis, Sentinel or Cluster), or a plain URL of one Redis. */
  redis: RedisConfig | string;
  /** BullMQ key prefix (default `handoff:bull`). */
  prefix: string;
  /** How long a worker's lock on a job lasts before another worker may take it over, ms (default 30000). */
  lockDurationMs?: number;
  /** Longest wait of `add` / `counts` for Redis, ms (default QUEUE_CALL_TIMEOUT_MS); then `unavailable`. */
  callTimeoutMs?: number;
  /** Told about every Redis connection a queue opens (metrics count their errors). */
  onConnection?: (client: RedisClient, role: 'producer' | 'worker') => void;
}

/**
 * A BullMQ queue: jobs in Redis, workers in any process. A worker that dies mid-job loses its
 * lock; after `lockDurationMs` the job is stalled and another worker runs it again.
 *
 * While Redis is unreachable: the producer connection has no offline queue (a call fails at once)
 * and every producer call is bounded by `callTimeoutMs` (a frozen Redis), both answering
 * `unavailable`; the worker connections (BullMQ needs `maxRetriesPerRequest: null` there) wait and
 * reconnect by themselves, so workers resume taking jobs when Redis is back.
 */
export class BullJobQueue<T> implements JobQueue<T> {
  private readonly queue: Queue;
  private worker: Worker | null = null;
  private readonly connections: RedisClient[] = [];
  private closed: Promise<void> | null = null;

  constructor(
    readonly name: string,
    private readonly opts: BullQueueOptions,
    private readonly queueOpts: QueueOptions = {},
    private readonly observers: JobObservers = new JobObservers(),
  ) {
    this.queue = new Queue(name, { connection: this.connection('producer'), prefix: opts.prefix });
    this.queue.on('error', () => {}); // connection errors surface as failed calls
  }

  async add(data: T, opts: JobOptions = {}): Promise<string> {
    const job = await this.bounded(this.queue.add(this.name, data, {
      jobId: opts.jobId,
      attempts: opts.attempts ?? 1,
      backoff: { type: 'handoff', delay: opts.backoffMs ?? 1000 },
      removeOnComplete: this.queueOpts.sensitive ? true : { count: 1000 },
      removeOnFail: this.queueOpts.sensitive ? true : { count: 5000 },
    }));
    return job.id!;
  }

  work(processor: Processor<T>, opts: WorkOptions<T> = {}): void {
    if (this.worker) throw new Error(`queue ${this.name} already has a worker`);
    const lockDuration = this.opts.lockDurationMs ?? 30_000;
    const timed = this.observers.wrap(this.name, processor);
    this.worker = new Worker(
      this.name,
      async (job: BullJob) => {
        try {
          await timed({ id: job.id!, data: job.data as T, attemptsMade: job.attemptsMade, attempts: job.opts.attempts ?? 1 });
        } catch (err) {
          // BullMQ's word for "do not retry"; turned back into ours for onFailed below.
          if (err instanceof PermanentJobError) throw new Refused(err.message);
          throw err;
        }
      },
      {
        connection: this.connection('worker'),
        prefix: this.opts.prefix,
        concurrency: opts.concurrency ?? 1,
        lockDuration,
        stalledInterval: Math.max(500, Math.floor(lockDuration / 2)),
        maxStalledCount: 2,
        settings: {
          backoffStrategy: (attemptsMade: number, _type?: string, _err?: Error, job?: MinimalJob) => {
            const backoff = job?.opts.backoff;
            return backoffDelay(attemptsMade, typeof backoff === 'object' && backoff.delay !== undefined ? backoff.delay : 1000);
          },
        },
      },
    );
    this.worker.on('error', () => {});
    this.worker.on('failed', (job, err) => {
      // BullMQ's own UnrecoverableError (a job stalled too often) ends the job too, but was no refusal.
      if (job && (err instanceof UnrecoverableError || job.attemptsMade >= (job.opts.attempts ?? 1))) {
        opts.onFailed?.({ id: job.id!, data: job.data as T, attemptsMade: job.attemptsMade, attempts: job.opts.attempts ?? 1 }, err instanceof Refused ? new PermanentJobError(err.message) : err);
      }
    });
  }

  async counts(): Promise<{ waiting: number; active: number; delayed: number }> {
    const c = await this.bounded(this.queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized'));
    return { waiting: (c.waiting ?? 0) + (c.prioritized ?? 0), active: c.active ?? 0, delayed: c.delayed ?? 0 };
  }

  /**
   * Idempotent: the worker stops taking jobs and lets its active ones finish, then the producer
   * and the connections close. Each step runs whatever the others did; their errors are thrown
   * together at the end, never swallowed.
   */
  close(): Promise<void> {
    this.closed ??= (async () => {
      const errors: unknown[] = [];
      await this.worker?.close().catch((err: unknown) => errors.push(err));
      await this.queue.close().catch((err: unknown) => errors.push(err));
      await Promise.allSettled(this.connections.map((c) => quitOrDrop(c)));
      if (errors.length > 0) throw new AggregateError(errors, `closing the ${this.name} queue failed`);
    })();
    return this.closed;
  }

  private bounded<R>(p: Promise<R>): Promise<R> {
    return withDeadline(p, this.opts.callTimeoutMs ?? QUEUE_CALL_TIMEOUT_MS, `The ${this.name} queue`);
  }

  private connection(role: 'producer' | 'worker'): RedisClient {
    const redis = typeof this.opts.redis === 'string' ? singleRedis(this.opts.redis) : this.opts.redis;
    // The producer fails fast while Redis is down (no offline queue): a request answers 503 instead
    // of waiting. BullMQ's workers block on Redis and need an unbounded retry; they resume by
    // themselves. On Redis Cluster both are ioredis Cluster instances, which BullMQ accepts.
    const c = createRedisConnection(redis, role === 'producer' ? 'queue' : 'queue-worker');
    c.on('error', () => {});
    this.opts.onConnection?.(c, role);
    this.connections.push(c);
    return c;
  }
}

/** Factory for Redis mode. */
export class BullQueueFactory extends BaseQueueFactory<BullJobQueue<unknown>> {
  constructor(private readonly opts: BullQueueOptions) {
    super();
  }

  create<T>(name: string, queueOpts?: QueueOptions): JobQueue<T> {
    return this.track(new BullJobQueue<unknown>(name, this.opts, queueOpts, this.observers));
  }
}
