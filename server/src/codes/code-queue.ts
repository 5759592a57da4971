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
