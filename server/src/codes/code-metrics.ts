import { Counter, type Registry } from 'prom-client';

/** The verification-code metrics (CodeService owns them; its worker counts deliveries on them). */
export interface CodeMetrics {
  /** POST /v1/verification-codes outcomes: created | resent | cooldown. */
  requests: Counter<'channel' | 'purpose' | 'outcome'>;
  /** Messages by final result: sent | failed (every retry used up) | skipped (nothing to send). */
  deliveries: Counter<'channel' | 'result'>;
  /** Code checks: ok | wrong | burned | expired | missing. */
  verifications: Counter<'purpose' | 'result'>;
}

/** Register the verification-code metrics on `registry` (once per process: CodeService does it). */
export function createCodeMetrics(registry: Registry): CodeMetrics {
  return {
    requests: new Counter({
      name: 'handoff_code_requests_total',
      help: 'Verification code requests by channel, purpose and outcome (created, resent, cooldown)',
      labelNames: ['channel', 'purpose', 'outcome'] as const,
      registers: [registry],
    }),
    deliveries: new Counter({
      name: 'handoff_code_deliveries_total',
      help: 'Verification messages by channel and final result (sent, failed after every retry, skipped)',
      labelNames: ['channel', 'result'] as const,
      registers: [registry],
    }),
    verifications: new Counter({
      name: 'handoff_code_verifications_total',
      help: 'Verification code checks by purpose and result (ok, wrong, burned, expired, missing)',
      labelNames: ['purpose', 'result'] as const,
      registers: [registry],
    }),
  };
}
