/** Verification codes (issue #4): POST /v1/verification-codes, login by code, the delivery worker. */
export { CodeService, DEFAULT_CODE_OPTIONS, type CodeServiceDeps, type CodeServiceOptions, type CodeSent } from './code-service.js';
export { startCodeWorker, type CodeWorkerOptions } from './code-worker.js';
export { codeRoutes } from './code-routes.js';
export { CODES_QUEUE, type CodeJob } from './code-queue.js';
export type { CodeRecord, CodeStore, Delivery } from './code-store.js';
export type { CodeSender, OutgoingMessage, SmsProvider } from './senders.js';
