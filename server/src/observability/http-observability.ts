import type { FastifyPluginCallback } from 'fastify';
import fp from 'fastify-plugin';
import type { Metrics } from './metrics.js';
import { REQUEST_ID_HEADER } from './request-id.js';

/** Route label of a request that matched no route (answered by the not-found handler). */
export const UNMATCHED_ROUTE = 'unmatched';

/** Options of the `httpObservability` plugin. */
export interface HttpObservabilityOptions {
  /** Where requests are counted and timed. */
  metrics: Metrics;
}

const plugin: FastifyPluginCallback<HttpObservabilityOptions> = (app, { metrics }, done) => {
  // onSend, not onRequest: it also runs for answers that an error handler or an earlier hook sent.
  app.addHook('onSend', (request, reply, payload, next) => {
    reply.header(REQUEST_ID_HEADER, request.id);
    next(null, payload);
  });
  app.addHook('onResponse', (request, reply, next) => {
    const route = request.routeOptions.url ?? UNMATCHED_ROUTE;
    const status = reply.statusCode;
    metrics.httpRequests.inc({ method: request.method, route, status });
    metrics.httpRequestDuration.observe({ method: request.method, route, status_code: status }, reply.elapsedTime / 1000);
    next();
  });
  done();
};

/**
 * The HTTP side of observability, as one Fastify plugin: every answer carries its request's id in
 * `X-Request-Id` (see request-id.ts), and every request is counted (`handoff_http_requests_total`)
 * and timed (`http_request_duration_seconds`) in one `onResponse` hook, labelled with the route
 * template (`/v1/flows/:topic`, `unmatched` for a 404 without a route), never the URL, so ids and
 * tokens in paths never become label values. Not encapsulated: register it before the routes.
 */
export const httpObservability = fp(plugin, { name: 'handoff-http-observability', fastify: '5.x' });
