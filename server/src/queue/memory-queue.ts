import { randomUUID } from 'node:crypto';
import { BaseQueueFactory, JobObservers, PermanentJobError, backoffDelay, type Job, type JobOptions, type JobQueue, type Processor, type WorkOptions } from './job-queue.js';

interface Entry<T> {
  job: Job<T>;
  backoffMs: number;
}

/** The embedded queue: one process, jobs in memory, same semantics as the BullMQ queue. */
export class MemoryJobQueue<T> implements JobQueue<T> {
  private readonly waiting: Entry<T>[] = [];
  private readonly delayed = new Set<NodeJS.Timeout>();
  private readonly ids = new Set<string>();
  private active = 0;
  private processor: Processor<T> | null = null;
  private opts: WorkOptions<T> = {};
  private closing = false;
  private idle: Array<() => void> = [];

  constructor(
    readonly name: string,
    private readonly observers: JobObservers = new JobObservers(),
  ) {}

  async add(data: T, opts: JobOptions = {}): Promise<string> {
    const id = opts.jobId ?? randomUUID();
    if (this.ids.has(id)) return id;
    this.ids.add(id);
    this.waiting.push({ job: { id, data, attemptsMade: 0, attempts: opts.attempts ?? 1 }, backoffMs: opts.backoffMs ?? 1000 });
    queueMicrotask(() => this.pump());
    return id;
  }

  work(processor: Processor<T>, opts: WorkOptions<T> = {}): void {
    if (this.processor) throw new Error(`queue ${this.name} already has a worker`);
    this.processor = this.observers.wrap(this.name, processor);
    this.opts = opts;
    this.pump();
  }

  async counts(): Promise<{ waiting: number; active: number; delayed: number }> {
    return { waiting: this.waiting.length, active: this.active, delayed: this.delayed.size };
  }

  async close(): Promise<void> {
    this.closing = true;
    for (const t of this.delayed) clearTimeout(t);
    this.delayed.clear();
    if (this.active > 0) await new Promise<void>((resolve) => this.idle.push(resolve));
  }

  private pump(): void {
    const concurrency = this.opts.concurrency ?? 1;
    while (this.processor && !this.closing && this.active < concurrency && this.waiting.length > 0) {
      void this.run(this.waiting.shift()!);
    }
  }

  private async run(entry: Entry<T>): Promise<void> {
    this.active++;
    try {
      await this.processor!({ ...entry.job });
      this.ids.delete(entry.job.id);
    } catch (err) {
      const error = err instanceof Error ? err : new Error(String(err));
      entry.job.attemptsMade++;
      if (!(error instanceof PermanentJobError) && entry.job.attemptsMade < entry.job.attempts && !this.closing) {
        const timer = setTimeout(() => {
          this.delayed.delete(timer);
          this.waiting.push(entry);
          this.pump();
        }, backoffDelay(entry.job.attemptsMade, entry.backoffMs));
        this.delayed.add(timer);
      } else {
        this.ids.delete(entry.job.id);
        this.opts.onFailed?.({ ...entry.job }, error);
      }
    } finally {
      this.active--;
      if (this.active === 0) for (const resolve of this.idle.splice(0)) resolve();
      this.pump();
    }
  }
}

/** Factory for embedded mode. */
export class MemoryQueueFactory extends BaseQueueFactory<MemoryJobQueue<unknown>> {
  create<T>(name: string): JobQueue<T> {
    return this.track(new MemoryJobQueue<unknown>(name, this.observers));
  }
}
