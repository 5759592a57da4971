import type { Logger } from 'pino';
import type { FlowState } from '@handoff/protocol';
import type { Config } from './config.js';
import type { Access, FlowService } from './flows/flow-service.js';
import type { FlowStore } from './flows/flow-store.js';
import type { Metrics } from './http/metrics.js';
import type { QrService } from './qr/qr-service.js';
import type { TopicHub } from './realtime/topic-hub.js';
import type { UserService } from './users/user-service.js';

/**
 * Everything a route or gateway needs, built once per server by `createHandoffServer`.
 * Capabilities receive this, not globals.
 */
export interface Handoff {
  config: Config;
  log: Logger;
  store: FlowStore;
  flows: FlowService;
  qr: QrService;
  users: UserService;
  hub: TopicHub;
  metrics: Metrics;
  /** True once SIGTERM (or close()) began: readiness fails, new sockets are refused. */
  shuttingDown: boolean;
  /** Long-poll a flow; answers at once (current state) when the server starts draining. */
  longPoll(topic: unknown, access: Access, after: number, waitMs: number, signal: AbortSignal): Promise<FlowState>;
}
