import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { Handoff } from '../handoff.js';
import { requireUser } from '../http/request-context.js';
import { BearerHeaders, Security, UserSchema, errorResponses } from '../http/schemas.js';
import { publicUser } from './user-service.js';

/** The current user. */
export const userRoutes: FastifyPluginAsyncTypebox<{ handoff: Handoff }> = async (app, { handoff }) => {
  app.get(
    '/v1/me',
    {
      schema: {
        summary: 'The user of the bearer JWT',
        operationId: 'getCurrentUser',
        tags: ['sessions'],
        security: Security.bearer,
        headers: BearerHeaders,
        response: { 200: UserSchema, ...errorResponses(401, 503) },
      },
    },
    async (request, reply) => {
      return publicUser(await requireUser(request, handoff.users));
    },
  );
};
