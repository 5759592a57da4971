import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { Handoff } from '../handoff.js';
import { HandoffError } from '../errors.js';
import { baseUrlOf, requesterOf, requireUser, watchTokenOf } from '../http/request-context.js';
import { BearerHeaders, FlowStateSchema, RequesterSchema, Security, WatchTokenHeaders, errorResponses } from '../http/schemas.js';

const IdParams = Type.Object({ id: Type.String({ maxLength: 64 }) });

/** What creating a QR flow answers (POST /v1/qr, POST /v1/server/qr). */
export const CreatedQrSchema = Type.Intersect([
  FlowStateSchema,
  Type.Object({
    watchToken: Type.String({ description: 'Secret; returned once. Send it as the Watch-Token header.' }),
    qrPayload: Type.String({ description: 'What the QR code encodes: a link the app opens.' }),
    imageUrl: Type.String({ description: 'The QR code as SVG (absolute URL).' }),
  }),
], { description: 'The new flow (state `pending`) with its watch token and QR code.' });

/** The flow's `context` (a JSON object of at most 1 KiB that the app's backend attached with the server API). */
export const ContextSchema = Type.Unsafe<Record<string, unknown>>({
  type: 'object',
  additionalProperties: true,
  description: 'What the app’s backend attached when it created the flow (POST /v1/server/qr): any JSON object of at most 1 KiB.',
});

/** What a scan answers: the state, who is asking and, if the flow has one, its context. */
export const ScanResultSchema = Type.Intersect([FlowStateSchema, Type.Object({ requester: RequesterSchema, context: Type.Optional(ContextSchema) })], {
  description: 'The flow (state `scanned`), who is asking and the flow’s context, to show before confirming.',
});

/** The QR login routes (contract §2). */
export const qrRoutes: FastifyPluginAsyncTypebox<{ handoff: Handoff }> = async (app, { handoff }) => {
  // Anyone may create a flow and each one is stored until it ends: QR_IP_PER_MINUTE per client IP (0: no limit).
  const perIp = qrIpLimit(handoff);

  app.post(
    '/v1/qr',
    {
      schema: {
        summary: 'Create a QR login flow (browser, anonymous)',
        operationId: 'createQrFlow',
        tags: ['qr'],
        security: Security.none,
        response: { 201: CreatedQrSchema, ...errorResponses(400, 429, 503) },
      },
    },
    async (request, reply) => {
      await perIp?.(request.ip);
      const created = await handoff.qr.create(requesterOf(request), baseUrlOf(request, handoff.config));
      return reply.code(201).send(created);
    },
  );

  app.get(
    '/v1/qr/:id/image.svg',
    {
      schema: {
        summary: 'The QR code as SVG',
        operationId: 'getQrImage',
        tags: ['qr'],
        security: Security.none,
        params: IdParams,
        response: {
          200: { description: 'The QR code encoding `qrPayload`.', content: { 'image/svg+xml': { schema: Type.String() } } },
          ...errorResponses(400, 404, 503),
        },
      },
      config: { cacheControl: 'private, max-age=300' },
    },
    async (request, reply) => {
      const svg = await handoff.qr.svg(request.params.id, baseUrlOf(request, handoff.config));
      return reply.type('image/svg+xml').send(svg);
    },
  );

  app.delete(
    '/v1/qr/:id',
    {
      schema: {
        summary: 'Cancel from the browser (watch-token holder)',
        operationId: 'cancelQrFlowFromBrowser',
        tags: ['qr'],
        security: Security.watchToken,
        params: IdParams,
        headers: WatchTokenHeaders,
        response: { 200: FlowStateSchema, ...errorResponses(403, 404, 409, 503) },
      },
    },
    async (request, reply) => {
      return handoff.qr.cancelByBrowser(request.params.id, watchTokenOf(request));
    },
  );

  app.post(
    '/v1/qr/:id/scan',
    {
      schema: {
        summary: 'The logged-in app scans: answers who is asking',
        operationId: 'scanQrFlow',
        tags: ['qr'],
        security: Security.bearer,
        params: IdParams,
        headers: BearerHeaders,
        response: { 200: ScanResultSchema, ...errorResponses(401, 404, 409, 503) },
      },
    },
    async (request, reply) => {
      const user = await requireUser(request, handoff.identity);
      const { state, ...shown } = await handoff.qr.scan(request.params.id, user);
      return { ...state, ...shown };
    },
  );

  for (const action of ['confirm', 'cancel'] as const) {
    app.post(
      `/v1/qr/:id/${action}`,
      {
        schema: {
          summary: action === 'confirm' ? 'The user who scanned confirms' : 'The user who scanned declines',
          operationId: action === 'confirm' ? 'confirmQrFlow' : 'declineQrFlow',
          tags: ['qr'],
          security: Security.bearer,
          params: IdParams,
          headers: BearerHeaders,
          response: { 200: FlowStateSchema, ...errorResponses(401, 403, 404, 409, 503) },
        },
      },
      async (request, reply) => {
        const user = await requireUser(request, handoff.identity);
        return action === 'confirm'
          ? handoff.qr.confirm(request.params.id, user)
          : handoff.qr.cancelByApp(request.params.id, user);
      },
    );
  }
};

/**
 * The per-IP limit on `POST /v1/qr` (QR_IP_PER_MINUTE; null when 0): spends one point for the IP,
 * or throws 429 `rate_limited` with Retry-After and counts the refusal in
 * `handoff_rate_limited_total{limit="qr-ip"}`. On the backend's store: shared by every node in Redis mode.
 */
function qrIpLimit(handoff: Handoff): ((ip: string) => Promise<void>) | null {
  const { qrIpPerMinute } = handoff.config;
  if (qrIpPerMinute === 0) return null;
  const limiter = handoff.backend.limits.create('qr-ip', { points: qrIpPerMinute, durationSeconds: 60 });
  return async (ip) => {
    try {
      await limiter.consume(ip);
    } catch (err) {
      if (err instanceof HandoffError && err.code === 'rate_limited') handoff.metrics.rateLimited.inc({ limit: 'qr-ip' });
      throw err;
    }
  };
}
