/** One behaviour for both queues: the in-process one (embedded) and BullMQ on a real redis-server, a Sentinel group and a Redis Cluster. */
import { Backoffs } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { MemoryQueueFactory } from '../../server/src/queue/memory-queue.js';
import { BullQueueFactory } from '../../server/src/queue/bullmq-queue.js';
import { backoffDelay, PermanentJobError, type QueueFactory } from '../../server/src/queue/job-queue.js';
import { startRedis, uniquePrefix, type RedisHandle } from '../harness/redis-server.js';
import { useContractRedis } from '../harness/store-contract.js';

let redis: RedisHandle;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(() => redis?.stop());
const sentinel = useContractRedis('sentinel');
const cluster = useContractRedis('cluster');

const backends: Array<[string, () => QueueFactory]> = [
  ['memory', () => new MemoryQueueFactory()],
  ['bullmq', () => new BullQueueFactory({ redis: redis.url, prefix: uniquePrefix('bull').slice(0, -1) })],
  ['bullmq on redis sentinel', () => new BullQueueFactory({ redis: sentinel.config, prefix: uniquePrefix('bull').slice(0, -1) })],
  // BullMQ on Cluster: its prefix in braces, so every key of a queue is in one hash slot.
  ['bullmq on redis cluster', () => new BullQueueFactory({ redis: cluster.config, prefix: `{${uniquePrefix('bull').slice(0, -1)}}` })],
];

/** Resolves when `n` calls of the returned `done` happened. */
function countdown(n: number): { done: () => void; all: Promise<void> } {
  let resolve!: () => void;
  const all = new Promise<void>((r) => (resolve = r));
  let left = n;
  return { done: () => --left === 0 && resolve(), all };
}

describe.each(backends)('job queue (%s)', (_name, makeFactory) => {
  it('runs jobs in FIFO order with concurrency 1', async () => {
    const factory = makeFactory();
    const queue = factory.create<{ n: number }>('fifo');
    const seen: number[] = [];
    const { done, all } = countdown(20);
    for (let n = 0; n < 20; n++) await queue.add({ n });
    queue.work(async (job) => {
      seen.push(job.data.n);
      done();
    });
    await all;
    expect(seen).toEqual(Array.from({ length: 20 }, (_, i) => i));
    await factory.close();
  });

  it('never runs more than `concurrency` jobs at once', async () => {
    const factory = makeFactory();
    const queue = factory.create<number>('concurrency');
    let running = 0;
    let peak = 0;
    const { done, all } = countdown(12);
    queue.work(
      async () => {
        running++;
        peak = Math.max(peak, running);
        await new Promise((r) => setTimeout(r, 20));
        running--;
        done();
      },
      { concurrency: 3 },
    );
    for (let i = 0; i < 12; i++) await queue.add(i);
    await all;
    expect(peak).toBe(3);
    await factory.close();
  });

  it('retries a failing job with backoff until it succeeds, and reports nothing as failed', async () => {
    const factory = makeFactory();
    const queue = factory.create<string>('retry');
    const attempts: number[] = [];
    const failed: string[] = [];
    const succeeded = new Promise<void>((resolve) =>
      queue.work(
        async (job) => {
          attempts.push(job.attemptsMade);
          if (job.attemptsMade < 2) throw new Error('flaky');
          resolve();
        },
        { onFailed: (job) => failed.push(job.id) },
      ),
    );
    await queue.add('x', { attempts: 5, backoffMs: 10 });
    await succeeded;
    expect(attempts).toEqual([0, 1, 2]);
    expect(failed).toEqual([]);
    await factory.close();
  });

  it('reports a job that failed its last attempt exactly once', async () => {
    const factory = makeFactory();
    const queue = factory.create<string>('fail');
    let runs = 0;
    const seen: Array<[number, number]> = [];
    const failedOnce = new Promise<{ id: string; attemptsMade: number; attempts: number; message: string }>((resolve) =>
      queue.work(
        async (job) => {
          runs++;
          seen.push([job.attemptsMade, job.attempts]);
          throw new Error('always');
        },
        { onFailed: (job, err) => resolve({ id: job.id, attemptsMade: job.attemptsMade, attempts: job.attempts, message: err.message }) },
      ),
    );
    const id = await queue.add('y', { attempts: 3, backoffMs: 10 });
    expect(await failedOnce).toEqual({ id, attemptsMade: 3, attempts: 3, message: 'always' });
    expect(runs).toBe(3);
    // Every attempt knows how many it may have, so a processor can tell the last one.
    expect(seen).toEqual([
      [0, 3],
      [1, 3],
      [2, 3],
    ]);
    await factory.close();
  });

  it('a PermanentJobError fails the job at once: its other attempts unused, reported once with that error', async () => {
    const factory = makeFactory();
    const queue = factory.create<string>('permanent');
    let runs = 0;
    const failed: Array<{ id: string; attemptsMade: number; error: Error }> = [];
    const reported = new Promise<void>((resolve) =>
      queue.work(
        async () => {
          runs++;
          throw new PermanentJobError('550 no such mailbox');
        },
        {
          onFailed: (job, error) => {
            failed.push({ id: job.id, attemptsMade: job.attemptsMade, error });
            resolve();
          },
        },
      ),
    );
    const id = await queue.add('z', { attempts: 5, backoffMs: 10 });
    await reported;
    // Nothing retries it: the queue is empty, with nothing delayed, once the failure is reported.
    await vi.waitFor(async () => expect(await queue.counts()).toEqual({ waiting: 0, active: 0, delayed: 0 }));
    expect(runs).toBe(1);
    expect(failed).toHaveLength(1);
    expect(failed[0]).toMatchObject({ id, attemptsMade: 1 });
    expect(failed[0]!.error).toBeInstanceOf(PermanentJobError);
    expect(failed[0]!.error.message).toBe('550 no such mailbox');
    await factory.close();
  });

  it('does not add a job twice under the same id, and counts waiting jobs', async () => {
    const factory = makeFactory();
    const queue = factory.create<string>('dedupe');
    await queue.add('a', { jobId: 'same' });
    await queue.add('b', { jobId: 'same' });
    await queue.add('c');
    expect((await queue.counts()).waiting).toBe(2);
    await factory.close();
  });

  it('close() lets the active job finish', async () => {
    const factory = makeFactory();
    const queue = factory.create<string>('close');
    let finished = false;
    let release!: () => void;
    const started = new Promise<void>((resolve) =>
      queue.work(async () => {
        resolve();
        await new Promise<void>((r) => (release = r));
        finished = true;
      }),
    );
    await queue.add('z');
    await started;
    const closing = factory.close();
    release();
    await closing;
    expect(finished).toBe(true);
  });
});

describe('backoff', () => {
  it('is full jitter over an exponential, capped', () => {
    expect(backoffDelay(1, 1000, () => 0.999)).toBe(999);
    expect(backoffDelay(3, 1000, () => 0.999)).toBe(3996);
    expect(backoffDelay(3, 1000, () => 0)).toBe(0);
    expect(backoffDelay(40, 1000, () => 0.5)).toBe(150_000);
  });

  it("below its 5-minute ceiling is BullMQ's own exponential backoff with jitter 1, draw for draw; above it BullMQ's has no ceiling", () => {
    const random = vi.spyOn(Math, 'random');
    try {
      for (const base of [5, 200, 500, 1000, 7_777]) {
        for (let attemptsMade = 1; base * 2 ** (attemptsMade - 1) <= 5 * 60_000; attemptsMade++) {
          for (const r of [0, 0.25, 0.5, 0.999999]) {
            random.mockReturnValue(r);
            const bullmq = Backoffs.calculate({ type: 'exponential', delay: base, jitter: 1 }, attemptsMade, new Error('x'), undefined as never);
            expect(backoffDelay(attemptsMade, base, () => r)).toBe(bullmq);
          }
        }
      }
      // WEBHOOK_ATTEMPTS goes to 50: BullMQ's built-in would wait up to 2^19 s (6 days) before the 21st attempt.
      random.mockReturnValue(0.999999);
      expect(Backoffs.calculate({ type: 'exponential', delay: 1000, jitter: 1 }, 20, new Error('x'), undefined as never)).toBeGreaterThan(500_000_000);
      expect(backoffDelay(20, 1000, () => 0.999999)).toBeLessThan(5 * 60_000);
    } finally {
      random.mockRestore();
    }
  });
});
