import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { MAX_LONG_POLL_SECONDS } from '@handoff/protocol';
import type { Handoff } from '../handoff.js';
import { HandoffError } from '../errors.js';
import { optionalUser, watchTokenOf } from '../http/request-context.js';
import { principalKey } from '../identity/principal.js';
import { FlowStateSchema, Security, SessionSchema, WatchTokenHeaders, errorResponses } from '../http/schemas.js';

const TopicParams = Type.Object({ topic: Type.String({ maxLength: 100, description: '`qr:<id>` or `login:<id>`' }) });

/** GET /v1/flows/{topic} (read + long-poll) and POST /v1/flows/{topic}/session (redeem). */
export const flowRoutes: FastifyPluginAsyncTypebox<{ handoff: Handoff }> = async (app, { handoff }) => {
  app.get(
    '/v1/flows/:topic',
    {
      schema: {
        summary: 'Read a flow; long-poll with ?after=<version>&wait=<seconds>',
        operationId: 'readFlow',
        tags: ['flows'],
        security: Security.watchTokenOrBearer,
        params: TopicParams,
        headers: WatchTokenHeaders,
        querystring: Type.Object(
          {
            after: Type.Optional(Type.String({ pattern: '^[0-9]{1,9}$', description: 'Answer once version > after' })),
            wait: Type.Optional(Type.String({ pattern: '^[0-9]{1,2}$', description: `Seconds to wait, at most ${MAX_LONG_POLL_SECONDS}` })),
          },
          { additionalProperties: false },
        ),
        response: { 200: FlowStateSchema, ...errorResponses(400, 401, 403, 404, 503) },
      },
    },
    async (request, reply) => {
      // A presented Authorization header is always checked (a bad one is 401 unauthorized, even next
      // to a valid watch token: a credential is never silently ignored). Who may read is then decided
      // by the watch token when one is sent, else by the scanner's JWT (FlowService.authorize).
      const watchToken = watchTokenOf(request);
      const user = await optionalUser(request, handoff.identity);
      const access = { watchToken, userId: user && principalKey(user) };
      const { after, wait } = request.query;
      if (after === undefined) return handoff.flows.read(request.params.topic, access);
      const waitSeconds = wait === undefined ? 0 : Number(wait);
      if (waitSeconds > MAX_LONG_POLL_SECONDS) {
        throw new HandoffError('bad_request', `wait must be at most ${MAX_LONG_POLL_SECONDS} seconds.`);
      }
      const aborted = new AbortController();
      request.raw.once('close', () => aborted.abort());
      return handoff.longPoll(request.params.topic, access, Number(after), waitSeconds * 1000, aborted.signal);
    },
  );

  app.post(
    '/v1/flows/:topic/session',
    {
      schema: {
        summary: 'Redeem the session of a confirmed/succeeded flow, once',
        operationId: 'redeemFlowSession',
        tags: ['flows'],
        security: Security.watchToken,
        params: TopicParams,
        headers: WatchTokenHeaders,
        response: { 200: SessionSchema, ...errorResponses(403, 404, 409, 410, 503) },
      },
    },
    async (request, reply) => {
      return handoff.flows.redeem(request.params.topic, watchTokenOf(request), (record) => handoff.identity.issue(record));
    },
  );
};
