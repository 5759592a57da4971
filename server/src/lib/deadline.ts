import { HandoffError } from '../errors.js';

/**
 * Bound a store call: resolve or reject as `p` does, or reject with `unavailable` (503) after
 * `ms`. For calls whose connection may queue commands while Redis is unreachable (BullMQ's own
 * connections retry forever by design), so no request waits on Redis longer than `ms`.
 * The call itself is not cancelled: if Redis comes back it may still complete.
 */
export function withDeadline<T>(p: Promise<T>, ms: number, what = 'The store'): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new HandoffError('unavailable', `${what} did not answer within ${ms} ms.`)), ms);
    timer.unref?.();
  });
  return Promise.race([p, deadline]).finally(() => clearTimeout(timer));
}
