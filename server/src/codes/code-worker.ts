import type { Logger } from 'pino';
import type { Config } from '../config.js';
import { PermanentJobError, type Job } from '../queue/job-queue.js';
import type { CodeJob } from './code-queue.js';
import type { CodeService } from './code-service.js';
import { accountExistsMessage, codeMessage } from './messages.js';
import { createChannelSenders, RoutingSender, type CodeSender, type OutgoingMessage } from './senders.js';

export interface CodeWorkerOptions {
  /** Default: the senders the config asks for (createChannelSenders). */
  sender?: CodeSender;
  /** Messages sent at once by this process (default 4). */
  concurrency?: number;
}

/**
 * Process the `codes` queue in this process: read the code record the job names, decide what to
 * send, send it, record `delivery`. Works the queue of `codes` (the one CodeService adds to), so an API node (ROLE=all)
 * and a worker process (ROLE=worker) start it the same way. Stops when the backend's queues close.
 *
 * What is sent:
 * - email, register: the code; if the address already has an account, a notice instead.
 * - email, login: the code if the address has an account; otherwise nothing (`skipped`).
 * - sms, register: the code. sms, login: nothing (accounts have no phone numbers yet).
 * A job whose code was used, replaced, burned or expired since it was queued sends nothing.
 *
 * A send that throws is retried (attempts/backoff from the job), unless it throws a PermanentJobError
 * (refused for good: SMTP 5xx, an SMS provider's 4xx); after the last attempt, or that one, the
 * record says `failed`, the failure is logged (without the code or the text) and counted in
 * handoff_code_deliveries_total{result="failed"}.
 */
export function startCodeWorker(codes: CodeService, ctx: { config: Config; log: Logger }, opts: CodeWorkerOptions = {}): void {
  const sender = opts.sender ?? new RoutingSender(createChannelSenders(ctx.config, ctx.log));
  const { crypto, store, metrics, users } = codes;
  const log = ctx.log.child({ component: 'codes' });
  const keyOf = (job: Job<CodeJob>) => crypto.recordKey(job.data.purpose, job.data.channel, job.data.to);

  async function messageFor(job: Job<CodeJob>, code: string, validForMs: number): Promise<OutgoingMessage | null> {
    const { purpose, channel, to } = job.data;
    if (channel === 'sms') return purpose === 'register' ? codeMessage(channel, to, purpose, code, validForMs) : null;
    const account = await users.store.byEmail(to);
    if (purpose === 'register') return account ? accountExistsMessage(to) : codeMessage(channel, to, purpose, code, validForMs);
    return account ? codeMessage(channel, to, purpose, code, validForMs) : null;
  }

  codes.queue.work(
    async (job) => {
      const { channel, purpose, generation } = job.data;
      const key = keyOf(job);
      const record = await store.get(key);
      const now = Date.now();
      if (!record || record.generation !== generation || record.sealed === null || now >= record.expiresAt) {
        log.debug({ jobId: job.id, channel, purpose }, 'code no longer valid; nothing to send');
        return;
      }
      const message = await messageFor(job, crypto.open(record.sealed, key, generation), record.expiresAt - now);
      if (!message) {
        await store.setDelivery(key, generation, 'skipped');
        metrics.deliveries.inc({ channel, result: 'skipped' });
        return;
      }
      await sender.send(message);
      await store.setDelivery(key, generation, 'sent');
      metrics.deliveries.inc({ channel, result: 'sent' });
      log.debug({ jobId: job.id, channel, purpose, attempt: job.attemptsMade + 1 }, 'verification message sent');
    },
    {
      concurrency: opts.concurrency ?? 4,
      onFailed: (job, err) => {
        const { channel, purpose, generation } = job.data;
        metrics.deliveries.inc({ channel, result: 'failed' });
        log.warn(
          { jobId: job.id, channel, purpose, attempts: job.attemptsMade, err: err.message },
          err instanceof PermanentJobError ? 'verification message not sent: refused for good, not retried' : 'verification message not sent: every attempt failed',
        );
        store.setDelivery(keyOf(job), generation, 'failed').catch((e: Error) => log.warn({ err: e.message }, 'could not record a failed delivery'));
      },
    },
  );
}
