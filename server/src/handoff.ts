import type { FlowState } from '@handoff/protocol';
import type { Core } from './core.js';
import type { Access } from './flows/flow-service.js';

/**
 * Everything a route or gateway of an API node needs, built once per server by
 * `createHandoffServer`: every capability (Core), plus what only a serving node has.
 * Capabilities receive this, not globals.
 */
export interface Handoff extends Core {
  /** True once a graceful shutdown began (the first preClose hook): readiness fails, new sockets are refused. */
  shuttingDown: boolean;
  /** Long-poll a flow; answers at once (current state) when the server starts draining. */
  longPoll(topic: unknown, access: Access, after: number, waitMs: number, signal: AbortSignal): Promise<FlowState>;
}
