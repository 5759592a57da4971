import Fastify, { LogController, type FastifyBaseLogger, type FastifyReply, type FastifyRequest } from 'fastify';
import cors from '@fastify/cors';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { HandoffApp } from './http/app-type.js';
import { createAdapter } from '@socket.io/redis-adapter';
import type { Logger } from 'pino';
import type { AddressInfo } from 'node:net';
import type { Config } from './config.js';
import { createCore, createLogger } from './core.js';
import type { Backend } from './store/backend.js';
import { ExpirySweeper } from './flows/expiry-sweeper.js';
import { flowRoutes } from './flows/flow-routes.js';
import type { Handoff } from './handoff.js';
import { installErrorHandling } from './http/error-handler.js';
import { healthRoutes } from './http/health-routes.js';
import { noStore } from './http/no-store.js';
import { openapi } from './http/openapi.js';
import { QrService } from './qr/qr-service.js';
import { qrRoutes } from './qr/qr-routes.js';
import { AdapterFanout, FANOUT_EVENT, LocalFanout, SIGNAL_EVENT, adapterChannel } from './realtime/fanout.js';
import { Resync } from './realtime/resync.js';
import { attachSocketIoGateway, createIoServer, type HandoffIo } from './realtime/socketio-gateway.js';
import { createWsGateway, type WsGateway } from './realtime/ws-gateway.js';
import { HandoffError } from './errors.js';
import { sendError } from './http/error-handler.js';
import { userRoutes } from './users/user-routes.js';
import { CodeService, codeRoutes } from './codes/index.js';
import { demoPages } from './demo/index.js';
import { registrationRoutes } from './users/registration-routes.js';
import { startWebhookProducer } from './webhooks/index.js';
import { LoginPositions } from './login/login-positions.js';
import { loginRoutes } from './login/login-routes.js';
import { LoginService } from './login/login-service.js';
import { startWorkers } from './workers.js';

/** A running (or ready to listen) Handoff server. */
export interface HandoffServer {
  app: HandoffApp;
  io: HandoffIo;
  ws: WsGateway;
  handoff: Handoff;
  backend: Backend;
  /** Password/code logins (its queue workers start on listen() when ROLE=all). */
  logins: LoginService;
  /** Listen on config.port/host; resolves with the base URL. */
  listen(): Promise<string>;
  /**
   * Graceful shutdown (idempotent): readiness fails, held long-polls answer with the current state,
   * socket clients get the reconnect hint (Socket.IO) or close 1012 (WebSocket) once their
   * in-flight commands answered, HTTP stops accepting and finishes in-flight requests, queue
   * workers finish their active jobs, then the Redis connections close. The caller bounds it
   * (main.ts: SHUTDOWN_TIMEOUT_SECONDS).
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

/** Build a Handoff server from a validated config. Nothing listens until `listen()`. */
export async function createHandoffServer(config: Config, opts: { logger?: Logger } = {}): Promise<HandoffServer> {
  const log = opts.logger ?? createLogger(config);

  const app: HandoffApp = Fastify({
    loggerInstance: log as FastifyBaseLogger,
    logController: new AccessLogController({ disableRequestLogging: (req) => QUIET_ROUTES.has((req.url ?? '').split('?')[0]) }),
    bodyLimit: config.bodyLimitBytes,
    trustProxy: config.trustProxy,
    // While closing, Fastify's own 503 body is not the catalogue's: the onRequest hook below answers instead.
    return503OnClosing: false,
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, useDefaults: true, allErrors: false } },
  }).withTypeProvider<TypeBoxTypeProvider>();

  let io!: HandoffIo;
  const core = await createCore(config, log, (hub, backend) => {
    const adapter = backend.redis
      ? createAdapter(backend.redis.pub, backend.redis.sub, { key: adapterChannel(config.redisPrefix) })
      : undefined;
    io = createIoServer(app.server, config, adapter);
    if (!backend.redis) return new LocalFanout(hub);
    const fanout = new AdapterFanout(hub, io);
    io.on(FANOUT_EVENT, (state, committedAt) => fanout.receive(state, committedAt));
    io.on(SIGNAL_EVENT, (name, payload) => hub.signal(name, payload));
    return fanout;
  });
  const { backend, flows, hub, metrics } = core;
  core.fanout.onDelivered((origin, ms) => metrics.pushLatency.observe({ origin }, ms / 1000));
  startWebhookProducer(core); // this node commits transitions: it raises their webhooks
  const logins = new LoginService(core, () => handoff.loginCodes);
  const drain = new AbortController();
  const positions = new LoginPositions(hub, logins.counters, config.loginPositionIntervalMs);
  flows.setStateDecorator((record, state) => positions.decorate(record, state));

  const handoff: Handoff = {
    ...core,
    qr: new QrService(flows, config.qrTtlSeconds * 1000),
    loginCodes: null,
    shuttingDown: false,
    longPoll: async (topic, access, after, waitMs, signal) => {
      metrics.connections.inc({ transport: 'long-poll' });
      try {
        return await flows.waitForChange(topic, access, after, waitMs, AbortSignal.any([signal, drain.signal]));
      } finally {
        metrics.connections.dec({ transport: 'long-poll' });
      }
    },
  };

  hub.addSink(() => metrics.pushes.inc({ transport: 'node' }));
  const socketIo = attachSocketIoGateway(io, handoff);
  const ws = createWsGateway(app.server, handoff);

  // Redis pub/sub stores nothing: when this node's subscriber was disconnected, transitions
  // committed elsewhere meanwhile reached none of its subscribers. Once it is back (autoResubscribe
  // re-subscribed it; a PING on the same connection answers after the SUBSCRIBEs), re-push the
  // current state of every topic subscribed here.
  const resync = new Resync(flows, hub, () => [...socketIo.topics(), ...hub.listenedTopics()], log, (outcome) =>
    metrics.resyncs.inc({ outcome }),
  );
  if (backend.redis) {
    const sub = backend.redis.sub;
    let lost = false;
    sub.on('close', () => (lost = true));
    sub.on('ready', () => {
      if (!lost || handoff.shuttingDown) return;
      lost = false;
      void sub.ping().catch(() => {}).then(() => resync.run());
    });
  }

  installErrorHandling(app);
  await app.register(noStore); // Cache-Control on every answer: no-store unless the route declares otherwise
  // Once HTTP is closing (the last step of a graceful shutdown), requests that still arrive on open
  // keep-alive connections answer 503 `unavailable` (with Connection: close) instead of running.
  let httpClosing = false;
  app.addHook('onRequest', (_request, reply, done) => {
    if (!httpClosing) return done();
    sendError(reply, new HandoffError('unavailable', 'The server is shutting down.'));
  });
  // Browser apps on ALLOWED_ORIGINS may call the HTTP API too (same origins as the sockets).
  await app.register(cors, {
    origin: config.allowedOrigins.includes('*') ? true : config.allowedOrigins,
    methods: ['GET', 'POST', 'DELETE'],
    allowedHeaders: ['content-type', 'authorization', 'watch-token', 'prefer'],
    exposedHeaders: ['location', 'preference-applied', 'retry-after'],
    maxAge: 600,
  });
  app.addHook('onResponse', (request, reply, done) => {
    metrics.httpRequests.inc({ method: request.method, route: request.routeOptions.url ?? 'unmatched', status: reply.statusCode });
    done();
  });
  await app.register(openapi, { publicUrl: config.publicUrl }); // before the routes: it documents them
  await app.register(healthRoutes, { handoff });
  await app.register(qrRoutes, { handoff });
  await app.register(flowRoutes, { handoff });
  await app.register(userRoutes, { handoff });
  // Verification codes (#4): the service and login by code; delivery runs in startWorkers.
  const codes = new CodeService(core);
  handoff.loginCodes = codes;
  await app.register(codeRoutes, { codes });
  await app.register(registrationRoutes, { handoff, codes });
  await app.register(demoPages, { enabled: config.demoPages }); // the demo pages: / and /app
  await app.register(loginRoutes, { handoff, logins });

  const sweeper = new ExpirySweeper(flows, config.expirySweepMs, log);

  let closed: Promise<void> | null = null;
  return {
    app,
    io,
    ws,
    handoff,
    backend,
    logins,
    async listen() {
      await app.listen({ port: config.port, host: config.host });
      sweeper.start();
      if (config.role === 'all') startWorkers(core, logins); // ROLE=api leaves the queues to worker processes
      const addr = app.server.address() as AddressInfo;
      const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
      return `http://${host === '0.0.0.0' || host === '[::]' ? '127.0.0.1' : host}:${addr.port}`;
    },
    close() {
      closed ??= (async () => {
        const started = Date.now();
        // 1. Readiness fails (/readyz 503), new sockets are refused, the sweeper stops (other nodes sweep).
        handoff.shuttingDown = true;
        metrics.draining.set(1);
        sweeper.stop();
        resync.stop();
        // 2. Held long-polls answer now, with the current state.
        drain.abort();
        // 3. Socket clients: the reconnect hint (Socket.IO) / close 1012 (WebSocket), after their
        //    in-flight commands answered; they reconnect to another node and subscribe again.
        const socketWaitMs = Math.min(5_000, Math.floor((config.shutdownTimeoutSeconds * 1000) / 3));
        await Promise.all([socketIo.drain(socketWaitMs), ws.drain(socketWaitMs)]);
        // 4. HTTP: stop accepting, finish in-flight requests (long-polls are answering), close idle connections.
        httpClosing = true;
        await app.close().catch(() => {});
        // 5. Queue workers stop taking jobs and finish their active ones (which may still publish).
        await backend.queues.close().catch(() => {});
        // 6. Socket.IO's adapter unsubscribes; then the Redis connections close.
        await io.close().catch(() => {});
        positions.close();
        await backend.close();
        await core.users.close();
        log.info({ ms: Date.now() - started }, 'shutdown complete');
      })();
      return closed;
    },
  };
}
