import Fastify, { LogController, type FastifyBaseLogger, type FastifyReply, type FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import cors from '@fastify/cors';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { createAdapter } from '@socket.io/redis-adapter';
import type { Logger } from 'pino';
import type { AddressInfo } from 'node:net';
import { codeRoutes } from './codes/index.js';
import type { Config } from './config.js';
import { createCore, createLogger, startWorkers } from './core.js';
import { demoPages } from './demo/index.js';
import { HandoffError } from './errors.js';
import { ExpirySweeper, expirySweeperPlugin } from './flows/expiry-sweeper.js';
import { flowRoutes } from './flows/flow-routes.js';
import type { Handoff } from './handoff.js';
import type { HandoffApp } from './http/app-type.js';
import { installErrorHandling, sendError } from './http/error-handler.js';
import { edgeOptions } from './http/fastify-options.js';
import { healthRoutes } from './http/health-routes.js';
import { openIdentity } from './identity/index.js';
import { jwksRoutes } from './identity/jwks-routes.js';
import { ShutdownSteps } from './lib/shutdown.js';
import { noStore } from './http/no-store.js';
import { openapi } from './http/openapi.js';
import { loginRoutes } from './login/login-routes.js';
import { Metrics } from './observability/metrics.js';
import { qrRoutes } from './qr/qr-routes.js';
import { approvalRoutes } from './approvals/approval-routes.js';
import { AdapterFanout, FANOUT_EVENT, SIGNAL_EVENT } from './realtime/fanout.js';
import { createFanout } from './realtime/fanout-factory.js';
import { realtimePlugin } from './realtime/realtime-plugin.js';
import { isUserTopic } from './approvals/user-channel.js';
import { resyncPlugin, type StateReader } from './realtime/resync.js';
import { createIoServer, socketIoTopics, type HandoffIo } from './realtime/socketio-gateway.js';
import { TopicHub } from './realtime/topic-hub.js';
import { openBackend } from './store/backend.js';
import { registrationRoutes } from './users/registration-routes.js';
import { serverApiRoutes } from './server-api/server-routes.js';
import { userRoutes } from './users/user-routes.js';
import { httpObservability } from './observability/http-observability.js';
import { requestIdOptions } from './observability/request-id.js';

/** A running (or ready to listen) Handoff server. */
export interface HandoffServer {
  app: HandoffApp;
  io: HandoffIo;
  /** Every capability of this node, as its routes and gateways see them. */
  handoff: Handoff;
  /** Listen on config.port/host; resolves with the base URL. */
  listen(): Promise<string>;
  /**
   * Graceful shutdown (idempotent): `app.close()`, which runs the lifecycle hooks in their declared
   * order — readiness fails, the sweeper and the resync watcher stop, held long-polls answer with
   * the current state, socket clients get the reconnect hint (Socket.IO) or close 1012 (WebSocket)
   * once their in-flight commands answered, HTTP stops accepting and finishes in-flight requests
   * (later ones answer 503), queue workers finish their active jobs, Socket.IO's adapter
   * unsubscribes, then the Redis connections close. Every step runs; a failed one is logged and
   * makes close() reject once all ran. The caller bounds it (main.ts: SHUTDOWN_TIMEOUT_SECONDS).
   */
  close(): Promise<void>;
}

/** Paths whose request lines are not logged (health probes would drown the log). */
const QUIET_ROUTES = new Set(['/healthz', '/readyz', '/metrics']);

/**
 * Fastify's request logging with one access line per request instead of two: no `incoming
 * request` line, and a `request completed` line that carries the request too (Fastify's
 * serializers write method, url, host, remoteAddress, remotePort and statusCode). Every log line
 * is work on the event loop. QUIET_ROUTES are not logged; everything else Fastify logs about a
 * request (a response that errored, stream and serializer failures) still is.
 */
class AccessLogController extends LogController {
  override incomingRequest(): void {}

  override requestCompleted(error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply, metadata?: Record<string, unknown>): void {
    if (error || this.isLogDisabled(request)) return super.requestCompleted(error, request, reply, metadata);
    request.log.info({ req: request, res: reply, responseTime: reply.elapsedTime }, 'request completed');
  }
}

/**
 * Build a Handoff API node from a validated config. The backend (stores, queues, connections)
 * first; then the HTTP app and the Socket.IO server on it; the fan-out (the Socket.IO adapter in
 * Redis mode); every capability once (createCore, as the worker process does); then each part is
 * plugged into the app's lifecycle as a plugin. Nothing listens until `listen()`.
 */
export async function createHandoffServer(config: Config, opts: { logger?: Logger } = {}): Promise<HandoffServer> {
  const log = opts.logger ?? createLogger(config);
  const backend = await openBackend(config, log);

  const app: HandoffApp = Fastify({
    loggerInstance: log as FastifyBaseLogger,
    logController: new AccessLogController({ disableRequestLogging: (req) => QUIET_ROUTES.has((req.url ?? '').split('?')[0]) }),
    ...requestIdOptions(), // UUIDs, or a safe incoming X-Request-Id
    bodyLimit: config.bodyLimitBytes,
    trustProxy: config.trustProxy,
    // While closing, Fastify's own 503 body is not the catalogue's: the httpClosing hook below answers instead.
    return503OnClosing: false,
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, useDefaults: true, allErrors: false } },
    ...edgeOptions(),
  }).withTypeProvider<TypeBoxTypeProvider>();

  const hub = new TopicHub(log);
  const metrics = new Metrics();
  const broadcast = backend.redis && config.fanout === 'broadcast';
  const io = createIoServer(
    app.server,
    config,
    broadcast ? createAdapter(backend.redis!.pub, backend.redis!.sub, { key: backend.keys.adapterChannel() }) : undefined,
  );
  const fanout = createFanout(config, backend, hub, log, metrics, broadcast ? io : undefined);
  if (fanout instanceof AdapterFanout) {
    io.on(FANOUT_EVENT, (state, committedAt) => fanout.receive(state, committedAt));
    io.on(SIGNAL_EVENT, (name, payload) => hub.signal(name, payload));
  }
  fanout.onDelivered((origin, ms) => metrics.pushLatency.observe({ origin }, ms / 1000));
  hub.addSink(() => metrics.pushes.inc({ transport: 'node' }));
  const core = createCore({ config, log, backend, hub, fanout, metrics }, await openIdentity(config, backend, log));

  const longPolls = new AbortController();
  const handoff: Handoff = {
    ...core,
    shuttingDown: false,
    longPoll: async (topic, access, after, waitMs, signal) => {
      metrics.connections.inc({ transport: 'long-poll' });
      try {
        return await core.flows.waitForChange(topic, access, after, waitMs, AbortSignal.any([signal, longPolls.signal]));
      } finally {
        metrics.connections.dec({ transport: 'long-poll' });
      }
    },
  };

  // The lifecycle, in the order of a graceful shutdown: preClose hooks run in registration order,
  // then Fastify closes HTTP (in-flight requests finish), then onClose hooks run in reverse
  // registration order. Each step is run by `steps`: its error is logged, never skips the next.
  const steps = new ShutdownSteps(log);
  await app.register(
    fp(async (app) => {
      app.addHook('preClose', () =>
        steps.run('readiness fails', () => {
          handoff.shuttingDown = true;
          metrics.draining.set(1);
        }),
      );
      app.addHook('onClose', async () => {
        await steps.run('stop queue-position pushes', () => core.positions.close());
        await steps.run('close the backend', () => backend.close());
        await steps.run('stop the password threads', () => core.users.close());
      });
    }),
  );
  await app.register(expirySweeperPlugin, { sweeper: new ExpirySweeper(core.flows, config.expirySweepMs, log), steps });
  // What a resync re-delivers: a flow topic's state; a user channel's live approvals.
  const states: StateReader = {
    readStates: async (topic) => {
      if (isUserTopic(topic)) return core.approvals.resyncStates(topic);
      const state = await core.flows.readState(topic);
      return state ? [state] : [];
    },
  };
  await app.register(resyncPlugin, { handoff, states, topics: () => [...socketIoTopics(io), ...hub.listenedTopics()], steps });
  await app.register(
    fp(async (app) => {
      app.addHook('preClose', () => steps.run('answer held long-polls', () => longPolls.abort()));
    }),
  );
  await app.register(realtimePlugin, { handoff, io, steps });
  // Once the sockets are drained, requests that still arrive on open keep-alive connections answer
  // 503 `unavailable` (with Connection: close) instead of running.
  await app.register(
    fp(async (app) => {
      let httpClosing = false;
      app.addHook('preClose', () => steps.run('refuse new requests', () => (httpClosing = true)));
      app.addHook('onRequest', (_request, reply, done) => {
        if (!httpClosing) return done();
        sendError(reply, new HandoffError('unavailable', 'The server is shutting down.'));
      });
    }),
  );
  await app.register(
    fp(async (app) => {
      // ROLE=api leaves the queues to worker processes.
      if (config.role === 'all') app.addHook('onListen', async () => startWorkers(core));
      // Workers stop taking jobs and finish their active ones (which may still publish).
      app.addHook('onClose', () => steps.run('close the job queues', () => backend.queues.close()));
    }),
  );

  installErrorHandling(app);
  await app.register(noStore); // Cache-Control on every answer: no-store unless the route declares otherwise
  // Browser apps on ALLOWED_ORIGINS may call the HTTP API too (same origins as the sockets).
  await app.register(cors, {
    origin: config.allowedOrigins.includes('*') ? true : config.allowedOrigins,
    methods: ['GET', 'POST', 'DELETE'],
    allowedHeaders: ['content-type', 'authorization', 'watch-token', 'prefer', 'x-request-id'],
    exposedHeaders: ['location', 'preference-applied', 'retry-after', 'x-request-id'],
    maxAge: 600,
  });
  await app.register(httpObservability, { metrics }); // X-Request-Id on every answer; HTTP request metrics
  await app.register(openapi, { publicUrl: config.publicUrl }); // before the routes: it documents them
  await app.register(healthRoutes, { handoff });
  await app.register(qrRoutes, { handoff });
  await app.register(approvalRoutes, { handoff });
  await app.register(flowRoutes, { handoff });
  await app.register(userRoutes, { handoff });
  await app.register(jwksRoutes, { handoff });
  await app.register(codeRoutes, { codes: core.codes });
  await app.register(registrationRoutes, { handoff, codes: core.codes });
  await app.register(demoPages, { enabled: config.demoPages }); // the demo pages: / and /app
  await app.register(loginRoutes, { handoff, logins: core.logins });
  // The server API for the app's backend exists only with API_KEYS (else its routes answer 404).
  if (config.apiKeys) await app.register(serverApiRoutes, { handoff, keys: config.apiKeys });

  let closed: Promise<void> | null = null;
  return {
    app,
    io,
    handoff,
    async listen() {
      await app.listen({ port: config.port, host: config.host });
      const addr = app.server.address() as AddressInfo;
      const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
      return `http://${host === '0.0.0.0' || host === '[::]' ? '127.0.0.1' : host}:${addr.port}`;
    },
    close() {
      closed ??= (async () => {
        const started = Date.now();
        await steps.run('close the HTTP app', () => app.close());
        log.info({ ms: Date.now() - started, failedSteps: steps.failures.length }, 'shutdown complete');
        steps.assertClean();
      })();
      return closed;
    },
  };
}
