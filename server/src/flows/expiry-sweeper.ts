import fp from 'fastify-plugin';
import type { Logger } from 'pino';
import type { ShutdownSteps } from '../lib/shutdown.js';
import type { FlowService } from './flow-service.js';

/**
 * Pushes `expired` at expiresAt without any request: every `intervalMs` it expires the due flows.
 * Every node sweeps; the compare-and-set makes exactly one node win each flow and publish it.
 */
export class ExpirySweeper {
  private timer: NodeJS.Timeout | null = null;
  private running = false;
  /** Set while sweeps fail, so an outage is logged once, not on every tick. */
  private failing = false;

  constructor(
    private readonly flows: FlowService,
    private readonly intervalMs: number,
    private readonly log: Logger,
  ) {}

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.tick(), this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** One sweep; overlapping ticks are skipped. */
  async tick(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      await this.flows.expireDue();
      if (this.failing) this.log.info('expiry sweeps work again');
      this.failing = false;
    } catch (err) {
      if (!this.failing) this.log.warn({ err: (err as Error).message }, 'expiry sweep failed; retrying every tick until it works');
      this.failing = true;
    } finally {
      this.running = false;
    }
  }
}

/**
 * The sweeper as a part of the server's lifecycle: sweeps start once the server listens and stop
 * in the first steps of a graceful shutdown (other nodes go on sweeping).
 */
export const expirySweeperPlugin = fp<{ sweeper: ExpirySweeper; steps: ShutdownSteps }>(
  async (app, { sweeper, steps }) => {
    app.addHook('onListen', async () => sweeper.start());
    app.addHook('preClose', () => steps.run('stop expiry sweeps', () => sweeper.stop()));
  },
  { name: 'handoff-expiry-sweeper' },
);
