import type { FastifyPluginAsyncTypebox, TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance, FastifyBaseLogger, RawReplyDefaultExpression, RawRequestDefaultExpression, RawServerDefault } from 'fastify';
import { Type } from 'typebox';
import { HandoffError } from '../errors.js';
import type { Handoff } from '../handoff.js';
import { requesterOf, requireUser, watchTokenOf } from '../http/request-context.js';
import { BearerHeaders, FlowStateSchema, Security, WatchTokenHeaders, errorResponses } from '../http/schemas.js';
import { principalKey } from '../identity/principal.js';
import { ContextSchema } from '../qr/qr-routes.js';
import { CreateBody, UserBody, contextFrom, principalFrom, requesterFrom } from '../server-api/server-routes.js';
import { normaliseEmail } from '../users/user-store.js';

const IdParams = Type.Object({ id: Type.String({ maxLength: 64 }) });

/** What creating an approval answers (POST /v1/approvals, POST /v1/server/approvals). */
export const CreatedApprovalSchema = Type.Intersect(
  [
    FlowStateSchema,
    Type.Object({
      watchToken: Type.String({ description: 'Secret; returned once. Send it as the Watch-Token header.' }),
      number: Type.Integer({ minimum: 10, maximum: 99, description: 'The 2-digit number the browser shows; the phone must pick it.' }),
    }),
  ],
  { description: 'The new approval (state `pending`) with its watch token and number.' },
);

const LoginBody = Type.Object(
  { login: Type.String({ minLength: 1, maxLength: 254, description: 'The email of a built-in account.' }) },
  { additionalProperties: false },
);
const ApproveBody = Type.Object(
  { number: Type.Integer({ minimum: 0, maximum: 99, description: 'The number the user picked among the choices.' }) },
  { additionalProperties: false },
);
/** Built on first use: server-routes.ts imports this file, so its schemas are not ready when this module loads. */
const serverCreateBody = () =>
  Type.Object(
    {
      user: UserBody.properties.user,
      requester: CreateBody.properties.requester,
      context: Type.Optional(ContextSchema),
    },
    { additionalProperties: false },
  );

type App = FastifyInstance<RawServerDefault, RawRequestDefaultExpression, RawReplyDefaultExpression, FastifyBaseLogger, TypeBoxTypeProvider>;

/** A limit spending one point per key, or null when `perMinute` is 0; a refusal is counted in handoff_rate_limited_total{limit}. */
function limit(handoff: Handoff, name: string, perMinute: number): ((key: string) => Promise<void>) | null {
  if (perMinute === 0) return null;
  const limiter = handoff.backend.limits.create(name, { points: perMinute, durationSeconds: 60 });
  return async (key) => {
    try {
      await limiter.consume(key);
    } catch (err) {
      if (err instanceof HandoffError && err.code === 'rate_limited') handoff.metrics.rateLimited.inc({ limit: name });
      throw err;
    }
  };
}

/** Push-to-approve routes for browsers and phones (contract §9). */
export const approvalRoutes: FastifyPluginAsyncTypebox<{ handoff: Handoff }> = async (app, { handoff }) => {
  const { approvals: settings } = handoff.config;
  const perIp = limit(handoff, 'approval-ip', settings.ipPerMinute);
  const perUser = limit(handoff, 'approval-user', settings.userPerMinute);

  app.post(
    '/v1/approvals',
    {
      schema: {
        summary: 'Ask to sign in as a built-in account; its phone is pushed the request (browser, anonymous)',
        description: 'An unknown login answers exactly as a known one (same status, body shape and work); its approval just expires.',
        operationId: 'createApproval',
        tags: ['approvals'],
        security: Security.none,
        body: LoginBody,
        response: { 201: CreatedApprovalSchema, ...errorResponses(400, 429, 503) },
      },
    },
    async (request, reply) => {
      await perIp?.(request.ip);
      const login = normaliseEmail(request.body.login);
      // Limited by the login as typed, known or not: the limit cannot tell them apart either.
      await perUser?.(`login:${login}`);
      const user = await handoff.users.store.byEmail(login);
      const owner = user ? { userKey: principalKey({ kind: 'builtin', id: user.id }) } : { unknownLogin: login };
      const created = await handoff.approvals.create(owner, requesterOf(request));
      return reply.code(201).send(created);
    },
  );

  app.delete(
    '/v1/approvals/:id',
    {
      schema: {
        summary: 'Cancel from the browser (watch-token holder)',
        operationId: 'cancelApprovalFromBrowser',
        tags: ['approvals'],
        security: Security.watchToken,
        params: IdParams,
        headers: WatchTokenHeaders,
        response: { 200: FlowStateSchema, ...errorResponses(403, 404, 409, 503) },
      },
    },
    async (request) => handoff.approvals.cancelByBrowser(request.params.id, watchTokenOf(request)),
  );

  app.post(
    '/v1/approvals/:id/approve',
    {
      schema: {
        summary: 'The user approves with the number the browser shows (a wrong number denies)',
        operationId: 'approveApproval',
        tags: ['approvals'],
        security: Security.bearer,
        params: IdParams,
        headers: BearerHeaders,
        body: ApproveBody,
        response: { 200: FlowStateSchema, ...errorResponses(400, 401, 403, 404, 409, 503) },
      },
    },
    async (request) => {
      const user = await requireUser(request, handoff.identity);
      return handoff.approvals.approve(request.params.id, user, request.body.number);
    },
  );

  app.post(
    '/v1/approvals/:id/deny',
    {
      schema: {
        summary: 'The user denies the request',
        operationId: 'denyApproval',
        tags: ['approvals'],
        security: Security.bearer,
        params: IdParams,
        headers: BearerHeaders,
        response: { 200: FlowStateSchema, ...errorResponses(401, 404, 409, 503) },
      },
    },
    async (request) => {
      const user = await requireUser(request, handoff.identity);
      return handoff.approvals.deny(request.params.id, user);
    },
  );
};

/** POST /v1/server/approvals, registered inside the server API plugin (X-Api-Key, its limits and metrics). */
export async function serverApprovalRoutes(app: App, handoff: Handoff): Promise<void> {
  const perUser = limit(handoff, 'approval-user', handoff.config.approvals.userPerMinute);
  app.post(
    '/v1/server/approvals',
    {
      schema: {
        summary: 'Ask an app user’s phone to approve a sign-in',
        description: 'Answers as POST /v1/approvals. `requester` and `context` are shown on the phone.',
        operationId: 'serverCreateApproval',
        tags: ['server'],
        security: Security.apiKey,
        body: serverCreateBody(),
        response: { 201: CreatedApprovalSchema, ...errorResponses(400, 401, 429, 503) },
      },
    },
    async (request, reply) => {
      const { user, requester, context } = request.body;
      const principal = principalFrom(user);
      const key = principalKey(principal);
      await perUser?.(key);
      const created = await handoff.approvals.create({ userKey: key }, requesterFrom(request, requester), contextFrom(context));
      return reply.code(201).send(created);
    },
  );
}
