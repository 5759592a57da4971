import type { JobQueue, QueueFactory } from '../queue/job-queue.js';
import type { CodeChannel, CodePurpose } from './recipients.js';

/** Name of the queue that delivers code messages. */
export const CODES_QUEUE = 'codes';

/**
 * What a delivery job carries. NOT the code: the worker reads the code, encrypted, from the code
 * record named by (purpose, channel, to) and checks it is still `generation`. So BullMQ's job
 * hashes in Redis (kept after completion, see BullJobQueue.add) never hold a code.
 */
export interface CodeJob {
  purpose: CodePurpose;
  channel: CodeChannel;
  /** Normalised recipient. */
  to: string;
  generation: string;
}

const byFactory = new WeakMap<QueueFactory, JobQueue<CodeJob>>();

/**
 * The `codes` queue of a backend, one instance per factory: in embedded mode the producer (API)
 * and the worker must share the very same in-memory queue.
 */
export function codesQueue(factory: QueueFactory): JobQueue<CodeJob> {
  let queue = byFactory.get(factory);
  if (!queue) {
    queue = factory.create<CodeJob>(CODES_QUEUE, { sensitive: true });
    byFactory.set(factory, queue);
  }
  return queue;
}
