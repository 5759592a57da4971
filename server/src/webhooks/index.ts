/** Webhooks to backends (issue #3): Standard Webhooks events raised from flow commits. */
export { createWebhooks, Webhooks, WEBHOOK_QUEUE, type WebhookDeps, type WebhookOutcome } from './webhooks.js';
export { verifyWebhook, signWebhook, webhookKey, WebhookVerificationError, WEBHOOK_TOLERANCE_SECONDS, type WebhookHeaders } from './signature.js';
export { WEBHOOK_EVENT_TYPES, webhookEventType, webhookPayload, webhookMessageId, type WebhookEventType, type WebhookPayload, type WebhookEventData } from './events.js';
export { webhookSettings, type WebhookSettings } from './settings.js';
export { attemptDelivery, type WebhookJob, type AttemptResult } from './delivery.js';
export { MemoryDisabledEndpoints, RedisDisabledEndpoints, type DisabledEndpoints } from './disabled-endpoints.js';
