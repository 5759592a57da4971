import type { Redis } from 'ioredis';
import { withDeadline } from '../lib/deadline.js';

/** Reconnect backoff of every Redis connection (store, adapter, queues): 50 ms doubling to 1 s. */
export function redisRetryStrategy(attempt: number): number {
  return Math.min(50 * 2 ** Math.min(attempt, 5), 1000);
}

/** QUIT, or drop the connection when Redis does not answer within a second (it may be down). */
export async function quitOrDrop(c: Redis): Promise<void> {
  if (c.status === 'end') return;
  try {
    await withDeadline(c.quit(), 1000);
  } catch {
    c.disconnect();
  }
}
