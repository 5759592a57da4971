import { envInt, type Env } from '../lib/env.js';

/** Push-to-approve settings (contract §9), read and checked at start; a bad value names its variable. */
export interface ApprovalConfig {
  /** Pending approvals one user may have at once (APPROVALS_PER_USER, default 3, 1–100). */
  perUser: number;
  /** Lifetime of an approval request in seconds (APPROVAL_TTL_SECONDS, default 120, at most 600). */
  ttlSeconds: number;
  /** Approvals one client IP may request per minute (APPROVAL_IP_PER_MINUTE, default 20; 0 = no limit). */
  ipPerMinute: number;
  /** Approvals that may be requested for one user per minute (APPROVAL_USER_PER_MINUTE, default 10; 0 = no limit). */
  userPerMinute: number;
}

/** Read the APPROVAL_* variables. */
export function approvalConfig(env: Env): ApprovalConfig {
  return {
    perUser: envInt(env, 'APPROVALS_PER_USER', 3, 1, 100),
    ttlSeconds: envInt(env, 'APPROVAL_TTL_SECONDS', 120, 1, 600),
    ipPerMinute: envInt(env, 'APPROVAL_IP_PER_MINUTE', 20, 0, 1_000_000),
    userPerMinute: envInt(env, 'APPROVAL_USER_PER_MINUTE', 10, 0, 1_000_000),
  };
}
