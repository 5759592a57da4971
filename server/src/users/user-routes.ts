import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { HandoffError } from '../errors.js';
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
        summary: 'The user of the bearer token (a built-in session, or an app token with ACCOUNTS=app|both)',
        operationId: 'getCurrentUser',
        tags: ['sessions'],
        security: Security.bearer,
        headers: BearerHeaders,
        response: { 200: UserSchema, ...errorResponses(401, 503) },
      },
    },
    async (request, reply) => {
      const principal = await requireUser(request, handoff.identity);
      if (principal.kind === 'app') return { id: principal.id, displayName: principal.displayName, avatarUrl: principal.avatarUrl };
      const user = await handoff.users.store.byId(principal.id);
      if (!user) throw new HandoffError('unauthorized');
      return publicUser(user);
    },
  );
};
