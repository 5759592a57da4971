import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { Handoff } from '../handoff.js';
import { HandoffError } from '../errors.js';
import { requireUser } from '../http/request-context.js';
import { BearerHeaders, SessionSchema, UserSchema, errorResponses } from '../http/schemas.js';
import { publicUser } from './user-service.js';

const Email = Type.String({ minLength: 3, maxLength: 254 });

/** Credentials for `POST /v1/sessions`: a password, or a verification code. */
export const LoginBody = Type.Union([
  Type.Object({ email: Email, password: Type.String({ minLength: 1, maxLength: 1024 }) }, { additionalProperties: false }),
  Type.Object({ email: Email, code: Type.String({ pattern: '^[0-9]{6}$' }) }, { additionalProperties: false }),
]);

/** Password login (sync) and the current user. */
export const userRoutes: FastifyPluginAsyncTypebox<{ handoff: Handoff }> = async (app, { handoff }) => {
  app.post(
    '/v1/sessions',
    {
      schema: {
        summary: 'Log in with email and password (or code); Prefer: respond-async for a queued login',
        tags: ['sessions'],
        body: LoginBody,
        response: { 200: SessionSchema, ...errorResponses(400, 401, 429, 503) },
      },
    },
    async (request, reply) => {
      reply.header('cache-control', 'no-store');
      const body = request.body;
      if (!('password' in body)) {
        throw new HandoffError('bad_request', 'Login by code is not available yet: send {email, password}.');
      }
      const user = await handoff.users.checkPassword(body.email, body.password);
      return handoff.users.issueSession(user.id);
    },
  );

  app.get(
    '/v1/me',
    {
      schema: {
        summary: 'The user of the bearer JWT',
        tags: ['sessions'],
        headers: BearerHeaders,
        response: { 200: UserSchema, ...errorResponses(401, 503) },
      },
    },
    async (request, reply) => {
      reply.header('cache-control', 'no-store');
      return publicUser(await requireUser(request, handoff.users));
    },
  );
};
