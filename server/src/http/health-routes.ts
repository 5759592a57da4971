import type { FastifyPluginAsync } from 'fastify';
import { Type } from 'typebox';
import type { Handoff } from '../handoff.js';
import { HandoffError } from '../errors.js';
import { withDeadline } from '../lib/deadline.js';
import { sendError } from './error-handler.js';
import { Security, errorResponses } from './schemas.js';

const Health = Type.Object({ status: Type.Unsafe<'ok'>({ type: 'string', enum: ['ok'] }) }, { description: 'The process serves HTTP.' });
const Ready = Type.Object({
  status: Type.Unsafe<'ready'>({ type: 'string', enum: ['ready'] }),
  mode: Type.Unsafe<'embedded' | 'redis'>({ type: 'string', enum: ['embedded', 'redis'] }),
}, { description: 'The store answers; the node takes traffic.' });

/** Liveness, readiness (store reachable) and Prometheus metrics. */
export const healthRoutes: FastifyPluginAsync<{ handoff: Handoff }> = async (app, { handoff }) => {
  app.get(
    '/healthz',
    { schema: { summary: 'Liveness', operationId: 'getLiveness', tags: ['operations'], security: Security.none, response: { 200: Health } } },
    async () => {
      return { status: 'ok' };
    },
  );

  app.get(
    '/readyz',
    {
      schema: {
        summary: 'Readiness: the store answers',
        operationId: 'getReadiness',
        tags: ['operations'],
        security: Security.none,
        response: { 200: Ready, ...errorResponses(503) },
      },
    },
    async (_request, reply) => {
      if (handoff.shuttingDown) return sendError(reply, new HandoffError('unavailable', 'The server is shutting down.'));
      try {
        await withDeadline(handoff.backend.flows.ping(), 1000);
      } catch {
        return sendError(reply, new HandoffError('unavailable'));
      }
      return { status: 'ready', mode: handoff.config.redisUrl ? 'redis' : 'embedded' };
    },
  );

  app.get(
    '/metrics',
    {
      schema: {
        summary: 'Prometheus metrics',
        operationId: 'getMetrics',
        tags: ['operations'],
        security: Security.none,
        response: { 200: { description: 'Prometheus text exposition format.', content: { 'text/plain': { schema: Type.String() } } } },
      },
    },
    async (_request, reply) => {
      reply.type(handoff.metrics.registry.contentType);
      return handoff.metrics.registry.metrics();
    },
  );
};
