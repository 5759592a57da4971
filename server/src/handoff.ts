import type { FlowState } from '@handoff/protocol';
import type { Core } from './core.js';
import type { Access } from './flows/flow-service.js';
import type { QrService } from './qr/qr-service.js';
import type { UserRecord } from './users/user-store.js';

/** Checks login codes (built by the verification-codes capability, #4). */
export interface LoginCodes {
  /**
   * The user whose valid login code this is; the code is used up. Any failure (unknown email,
   * wrong, expired or burned code) throws `invalid_credentials`, the same answer for all.
   */
  verifyLogin(email: string, code: string): Promise<UserRecord>;
}

/**
 * Everything a route or gateway of an API node needs, built once per server by
 * `createHandoffServer`. Capabilities receive this, not globals.
 */
export interface Handoff extends Core {
  qr: QrService;
  /** Login by emailed/SMS code; null until the codes capability is attached. */
  loginCodes: LoginCodes | null;
  /** True once SIGTERM (or close()) began: readiness fails, new sockets are refused. */
  shuttingDown: boolean;
  /** Long-poll a flow; answers at once (current state) when the server starts draining. */
  longPoll(topic: unknown, access: Access, after: number, waitMs: number, signal: AbortSignal): Promise<FlowState>;
}
