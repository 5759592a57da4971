import { Queue, Worker, type Job as BullJob, type MinimalJob } from 'bullmq';
import { Redis } from 'ioredis';
import { backoffDelay, type JobOptions, type QueueOptions, type JobQueue, type Processor, type QueueFactory, type WorkOptions } from './job-queue.js';

export interface BullQueueOptions {
  /** Redis URL. */
  url: string;
  /** BullMQ key prefix (default `handoff:bull`). */
  prefix: string;
  /** How long a worker's lock on a job lasts before another worker may take it over, ms (default 30000). */
  lockDurationMs?: number;
}

/**
 * A BullMQ queue: jobs in Redis, workers in any process. A worker that dies mid-job loses its
 * lock; after `lockDurationMs` the job is stalled and another worker runs it again.
 */
export class BullJobQueue<T> implements JobQueue<T> {
  private readonly queue: Queue;
  private worker: Worker | null = null;
  private readonly connections: Redis[] = [];

  constructor(
    readonly name: string,
    private readonly opts: BullQueueOptions,
    private readonly queueOpts: QueueOptions = {},
  ) {
    this.queue = new Queue(name, { connection: this.connection(), prefix: opts.prefix });
    this.queue.on('error', () => {}); // connection errors surface as failed calls
  }

  async add(data: T, opts: JobOptions = {}): Promise<string> {
    const job = await this.queue.add(this.name, data, {
      jobId: opts.jobId,
      attempts: opts.attempts ?? 1,
      backoff: { type: 'handoff', delay: opts.backoffMs ?? 1000 },
      removeOnComplete: this.queueOpts.sensitive ? true : { count: 1000 },
      removeOnFail: this.queueOpts.sensitive ? true : { count: 5000 },
    });
    return job.id!;
  }

  work(processor: Processor<T>, opts: WorkOptions<T> = {}): void {
    if (this.worker) throw new Error(`queue ${this.name} already has a worker`);
    const lockDuration = this.opts.lockDurationMs ?? 30_000;
    this.worker = new Worker(
      this.name,
      async (job: BullJob) => processor({ id: job.id!, data: job.data as T, attemptsMade: job.attemptsMade }),
      {
        connection: this.connection(),
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
      if (job && job.attemptsMade >= (job.opts.attempts ?? 1)) {
        opts.onFailed?.({ id: job.id!, data: job.data as T, attemptsMade: job.attemptsMade }, err);
      }
    });
  }

  async counts(): Promise<{ waiting: number; active: number; delayed: number }> {
    const c = await this.queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized');
    return { waiting: (c.waiting ?? 0) + (c.prioritized ?? 0), active: c.active ?? 0, delayed: c.delayed ?? 0 };
  }

  async close(): Promise<void> {
    await this.worker?.close();
    await this.queue.close();
    await Promise.allSettled(this.connections.map((c) => c.quit()));
  }

  private connection(): Redis {
    const c = new Redis(this.opts.url, { maxRetriesPerRequest: null, enableReadyCheck: false });
    c.on('error', () => {});
    this.connections.push(c);
    return c;
  }
}

/** Factory for Redis mode. */
export class BullQueueFactory implements QueueFactory {
  private readonly queues: BullJobQueue<unknown>[] = [];

  constructor(private readonly opts: BullQueueOptions) {}

  create<T>(name: string, queueOpts?: QueueOptions): JobQueue<T> {
    const queue = new BullJobQueue<T>(name, this.opts, queueOpts);
    this.queues.push(queue as BullJobQueue<unknown>);
    return queue;
  }

  async close(): Promise<void> {
    await Promise.all(this.queues.map((q) => q.close()));
  }
}
