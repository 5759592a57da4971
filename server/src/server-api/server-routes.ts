import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import { isIP } from 'node:net';
import { Counter, type Registry } from 'prom-client';
import { Type } from 'typebox';
import type { Requester } from '@handoff/protocol';
import { HandoffError } from '../errors.js';
import type { Handoff } from '../handoff.js';
import { baseUrlOf, requesterOf } from '../http/request-context.js';
import { FlowStateSchema, Security, errorResponses } from '../http/schemas.js';
import type { Principal } from '../identity/principal.js';
import { ContextSchema, CreatedQrSchema, ScanResultSchema } from '../qr/qr-routes.js';
import type { ApiKeys } from './api-keys.js';
import { serverApprovalRoutes } from '../approvals/approval-routes.js';

/** Largest `context`, in bytes of its JSON (contract §7: 1 KiB). */
export const MAX_CONTEXT_BYTES = 1024;
/** The `key` label of requests that presented no valid key (a key name never has parentheses). */
export const UNAUTHENTICATED = '(none)';

/** Options of the `serverApiRoutes` plugin. */
export interface ServerApiOptions {
  handoff: Handoff;
  /** The keys of API_KEYS (config.apiKeys); register the plugin only when it is set. */
  keys: ApiKeys;
}

const IdParams = Type.Object({ id: Type.String({ maxLength: 64 }) });
const TopicParams = Type.Object({ topic: Type.String({ maxLength: 100, description: '`qr:<id>` or `login:<id>`' }) });

export const CreateBody = Type.Object(
  {
    requester: Type.Optional(
      Type.Object(
        {
          ip: Type.String({ maxLength: 64, description: 'The browser’s IP address (IPv4 or IPv6), as the app’s backend saw it.' }),
          userAgent: Type.String({ maxLength: 512, description: 'The browser’s User-Agent.' }),
        },
        { additionalProperties: false, description: 'Who is asking, shown on the phone. Default: the caller’s own IP and User-Agent.' },
      ),
    ),
    context: Type.Optional(ContextSchema),
  },
  { additionalProperties: false },
);

export const UserBody = Type.Object(
  {
    user: Type.Object(
      {
        id: Type.String({ minLength: 1, maxLength: 255, description: 'The app’s own user id (what its tokens carry as `sub`).' }),
        displayName: Type.Optional(Type.String({ minLength: 1, maxLength: 100, description: 'Default: `id`.' })),
        avatarUrl: Type.Optional(Type.String({ maxLength: 2048, description: 'An http(s) URL. Default: none.' })),
      },
      { additionalProperties: false },
    ),
  },
  { additionalProperties: false, description: 'The app user this call acts for.' },
);

/** The server API's request counter, once per registry. */
function requestCounter(registry: Registry): Counter<'key' | 'route' | 'status'> {
  const name = 'handoff_server_api_requests_total';
  const existing = registry.getSingleMetric(name);
  if (existing) return existing as Counter<'key' | 'route' | 'status'>;
  return new Counter({
    name,
    help: `Server API requests by key name (${UNAUTHENTICATED}: no valid X-Api-Key), route template and status`,
    labelNames: ['key', 'route', 'status'] as const,
    registers: [registry],
  });
}

/** `requester` of a create request, checked, with the time of the request; default: the caller's own. */
export function requesterFrom(request: FastifyRequest, given: { ip: string; userAgent: string } | undefined): Requester {
  if (!given) return requesterOf(request);
  if (isIP(given.ip) === 0) throw new HandoffError('bad_request', 'requester.ip: must be an IPv4 or IPv6 address');
  return { ip: given.ip, userAgent: given.userAgent, createdAt: new Date().toISOString() };
}

/** `context` of a create request, checked: at most MAX_CONTEXT_BYTES of JSON. */
export function contextFrom(given: Record<string, unknown> | undefined): Record<string, unknown> | undefined {
  if (given === undefined) return undefined;
  if (Buffer.byteLength(JSON.stringify(given), 'utf8') > MAX_CONTEXT_BYTES) {
    throw new HandoffError('bad_request', `context: must be at most ${MAX_CONTEXT_BYTES} bytes of JSON`);
  }
  return given;
}

/** The app user a scan/confirm/cancel acts for. */
export function principalFrom(user: { id: string; displayName?: string; avatarUrl?: string }): Principal {
  if (user.avatarUrl !== undefined && !isHttpUrl(user.avatarUrl)) {
    throw new HandoffError('bad_request', 'user.avatarUrl: must be an http(s) URL');
  }
  return { kind: 'app', id: user.id, displayName: user.displayName ?? user.id, avatarUrl: user.avatarUrl ?? null };
}

function isHttpUrl(value: string): boolean {
  try {
    const url = new URL(value);
    return url.protocol === 'http:' || url.protocol === 'https:';
  } catch {
    return false;
  }
}

/**
 * The server API for the app's backend (contract §7): QR flows created with the real requester
 * and a small `context`, scanned/confirmed/cancelled on behalf of the app's users, cancelled, and
 * read, without watch tokens. Register it only when API_KEYS is set: without it the routes do not
 * exist and answer 404.
 *
 * Every route of this plugin (and only those: it is encapsulated) first authenticates the
 * `X-Api-Key` header in constant time (ApiKeys; the logger redacts the header), 401 `unauthorized`
 * alike for a missing, short, over-long or wrong key, before the body is even parsed; then spends
 * one point of the key's API_KEY_PER_MINUTE (by key name, on the backend's store: shared by every
 * node; 429 `rate_limited` with Retry-After, counted in `handoff_rate_limited_total{limit="api-key"}`).
 * Each answer is counted in `handoff_server_api_requests_total{key, route, status}` by key name.
 */
export const serverApiRoutes: FastifyPluginAsyncTypebox<ServerApiOptions> = async (app, { handoff, keys }) => {
  const limiter = keys.perMinute > 0 ? handoff.backend.limits.create('api-key', { points: keys.perMinute, durationSeconds: 60 }) : null;
  const requests = requestCounter(handoff.metrics.registry);
  const callers = new WeakMap<FastifyRequest, string>();

  app.addHook('onRequest', async (request) => {
    const caller = keys.authenticate(request.headers['x-api-key']);
    if (!caller) throw new HandoffError('unauthorized', 'A valid X-Api-Key header is required.');
    callers.set(request, caller.name);
    try {
      await limiter?.consume(caller.name);
    } catch (err) {
      if (err instanceof HandoffError && err.code === 'rate_limited') handoff.metrics.rateLimited.inc({ limit: 'api-key' });
      throw err;
    }
  });
  app.addHook('onResponse', async (request, reply) => {
    requests.inc({ key: callers.get(request) ?? UNAUTHENTICATED, route: request.routeOptions.url ?? '', status: reply.statusCode });
  });

  app.post(
    '/v1/server/qr',
    {
      schema: {
        summary: 'Create a QR login flow for a browser (the app’s backend)',
        description: 'Answers as POST /v1/qr. `requester` and `context` are what the phone’s scan answer shows.',
        operationId: 'serverCreateQrFlow',
        tags: ['server'],
        security: Security.apiKey,
        body: CreateBody,
        response: { 201: CreatedQrSchema, ...errorResponses(400, 401, 413, 429, 503) },
      },
      // No body at all is an empty one: a flow for the caller itself, as POST /v1/qr.
      preValidation: async (request) => {
        if (request.body === undefined) request.body = {};
      },
    },
    async (request, reply) => {
      const { requester, context } = request.body;
      const created = await handoff.qr.create(requesterFrom(request, requester), baseUrlOf(request, handoff.config), contextFrom(context));
      return reply.code(201).send(created);
    },
  );

  await serverApprovalRoutes(app, handoff);

  app.post(
    '/v1/server/qr/:id/scan',
    {
      schema: {
        summary: 'Scan as an app user: answers who is asking and the flow’s context',
        operationId: 'serverScanQrFlow',
        tags: ['server'],
        security: Security.apiKey,
        params: IdParams,
        body: UserBody,
        response: { 200: ScanResultSchema, ...errorResponses(400, 401, 404, 409, 429, 503) },
      },
    },
    async (request) => {
      const { state, ...shown } = await handoff.qr.scan(request.params.id, principalFrom(request.body.user));
      return { ...state, ...shown };
    },
  );

  for (const action of ['confirm', 'cancel'] as const) {
    app.post(
      `/v1/server/qr/:id/${action}`,
      {
        schema: {
          summary: action === 'confirm' ? 'Confirm as the app user who scanned' : 'Decline as the app user who scanned',
          operationId: action === 'confirm' ? 'serverConfirmQrFlow' : 'serverDeclineQrFlow',
          tags: ['server'],
          security: Security.apiKey,
          params: IdParams,
          body: UserBody,
          response: { 200: FlowStateSchema, ...errorResponses(400, 401, 403, 404, 409, 429, 503) },
        },
      },
      async (request) => {
        const principal = principalFrom(request.body.user);
        return action === 'confirm' ? handoff.qr.confirm(request.params.id, principal) : handoff.qr.cancelByApp(request.params.id, principal);
      },
    );
  }

  app.delete(
    '/v1/server/qr/:id',
    {
      schema: {
        summary: 'Cancel a QR flow, as the browser’s DELETE does (no watch token)',
        operationId: 'serverCancelQrFlow',
        tags: ['server'],
        security: Security.apiKey,
        params: IdParams,
        response: { 200: FlowStateSchema, ...errorResponses(400, 401, 404, 409, 429, 503) },
      },
    },
    async (request) => handoff.qr.cancelByServer(request.params.id),
  );

  app.get(
    '/v1/server/flows/:topic',
    {
      schema: {
        summary: 'Read any flow (no watch token)',
        operationId: 'serverReadFlow',
        tags: ['server'],
        security: Security.apiKey,
        params: TopicParams,
        response: { 200: FlowStateSchema, ...errorResponses(400, 401, 404, 429, 503) },
      },
    },
    async (request) => {
      const state = await handoff.flows.readState(request.params.topic);
      if (!state) throw new HandoffError('not_found');
      return state;
    },
  );
};
