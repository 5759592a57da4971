import type { FastifyPluginAsync } from 'fastify';
import type { Handoff } from '../handoff.js';
import { HandoffError } from '../errors.js';
import { withDeadline } from '../lib/deadline.js';
import { sendError } from './error-handler.js';

/** Liveness, readiness (store reachable) and Prometheus metrics. */
export const healthRoutes: FastifyPluginAsync<{ handoff: Handoff }> = async (app, { handoff }) => {
  app.get('/healthz', { schema: { summary: 'Liveness', tags: ['operations'] } }, async (_request, reply) => {
    return { status: 'ok' };
  });

  app.get('/readyz', { schema: { summary: 'Readiness: the store answers', tags: ['operations'] } }, async (_request, reply) => {
    if (handoff.shuttingDown) return sendError(reply, new HandoffError('unavailable', 'The server is shutting down.'));
    try {
      await withDeadline(handoff.store.ping(), 1000);
    } catch {
      return sendError(reply, new HandoffError('unavailable'));
    }
    return { status: 'ready', mode: handoff.config.redisUrl ? 'redis' : 'embedded' };
  });

  app.get('/metrics', { schema: { summary: 'Prometheus metrics', tags: ['operations'] } }, async (_request, reply) => {
    reply.type(handoff.metrics.registry.contentType);
    return handoff.metrics.registry.metrics();
  });
};
