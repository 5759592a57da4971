import type { Server as HttpServer } from 'node:http';
import { Server, type ServerOptions, type Socket } from 'socket.io';
import type { ClientToServerEvents, FlowState, HandshakeAuth, ServerToClientEvents } from '@handoff/protocol';
import type { Config } from '../config.js';
import { HandoffError, toHandoffError } from '../errors.js';
import type { Handoff } from '../handoff.js';
import type { UserRecord } from '../users/user-store.js';
import { MAX_SUBSCRIPTIONS_PER_CONNECTION, RealtimeCommands, toAck, type QrAction } from './commands.js';
import { FANOUT_EVENT, SIGNAL_EVENT } from './fanout.js';
import type { SignalPayload } from './topic-hub.js';
import { originAllowed } from './origin.js';

interface SocketData {
  user?: UserRecord;
}

/** Events between nodes on the adapter's server-side channel: the fan-out. */
export interface InterServerEvents {
  [FANOUT_EVENT]: (state: FlowState) => void;
  [SIGNAL_EVENT]: (name: string, payload: SignalPayload) => void;
}

type HandoffSocket = Socket<ClientToServerEvents, ServerToClientEvents, InterServerEvents, SocketData>;
export type HandoffIo = Server<ClientToServerEvents, ServerToClientEvents, InterServerEvents, SocketData>;

/** The Socket.IO server, with the origin check, limits and (in Redis mode) the Redis adapter. */
export function createIoServer(httpServer: HttpServer, config: Config, adapter?: ServerOptions['adapter']): HandoffIo {
  return new Server(httpServer, {
    path: '/socket.io/',
    serveClient: false,
    maxHttpBufferSize: config.wsMaxFrameBytes,
    destroyUpgrade: false, // /v1/ws upgrades are handled by the plain WebSocket gateway
    pingInterval: 25_000,
    pingTimeout: 20_000,
    cors: { origin: true, credentials: false },
    allowRequest: (req, callback) => callback(null, originAllowed(req, config.allowedOrigins, config.publicUrl)),
    ...(adapter ? { adapter } : {}),
  });
}

/**
 * Socket.IO on the default namespace (contract §3). Subscriptions are rooms named by topic;
 * the hub's sink emits each state to its room on this node only (`io.local`): states from other
 * nodes arrive through the fan-out, never through a second broadcast.
 */
export function attachSocketIoGateway(io: HandoffIo, handoff: Handoff): void {
  const { metrics } = handoff;
  const commands = new RealtimeCommands(handoff);

  io.use(async (socket, next) => {
    const auth = (socket.handshake.auth ?? {}) as HandshakeAuth;
    if (auth.token === undefined || auth.token === null) return next();
    try {
      socket.data.user = await handoff.users.authenticate(auth.token);
      next();
    } catch (err) {
      // A store outage is not the client's fault: say so, so it retries instead of re-authenticating.
      next(new Error(toHandoffError(err).code === 'unavailable' ? 'unavailable' : 'unauthorized'));
    }
  });

  handoff.hub.addSink((state) => {
    io.local.to(state.topic).emit('state', state);
  });

  io.on('connection', (socket: HandoffSocket) => {
    metrics.connections.inc({ transport: 'socket.io' });
    socket.on('disconnect', () => {
      metrics.connections.dec({ transport: 'socket.io' });
      metrics.subscriptions.dec({ transport: 'socket.io' }, topicsOf(socket).length);
    });

    socket.on('subscribe', async (payload, ack) => {
      const res = await toAck(async () => {
        if (topicsOf(socket).length >= MAX_SUBSCRIPTIONS_PER_CONNECTION) {
          throw new HandoffError('rate_limited', `At most ${MAX_SUBSCRIPTIONS_PER_CONNECTION} subscriptions per connection.`);
        }
        return commands.subscribe(payload, socket.data.user, (topic) => {
          if (socket.rooms.has(topic)) return;
          socket.join(topic);
          metrics.subscriptions.inc({ transport: 'socket.io' });
        });
      });
      reply(ack, res);
    });

    socket.on('unsubscribe', async (payload, ack) => {
      const res = await toAck(() => {
        const topic = commands.unsubscribe(payload);
        if (socket.rooms.has(topic)) {
          socket.leave(topic);
          metrics.subscriptions.dec({ transport: 'socket.io' });
        }
        return {};
      });
      reply(ack, res);
    });

    for (const action of ['scan', 'confirm', 'cancel'] as const satisfies readonly QrAction[]) {
      socket.on(`qr:${action}`, async (payload, ack) => {
        reply(ack, await toAck(() => commands.qrAction(action, payload, socket.data.user)));
      });
    }

    socket.on('redeem', async (payload, ack) => {
      reply(ack, await toAck(() => commands.redeem(payload)));
    });
  });
}

/** Topics a socket is subscribed to (its rooms, minus its own id room). */
function topicsOf(socket: HandoffSocket): string[] {
  return [...socket.rooms].filter((room) => room !== socket.id);
}

/** Call the ack if the client sent one (events without an ack are answered with silence, not a crash). */
function reply<T>(ack: unknown, res: T): void {
  if (typeof ack === 'function') (ack as (r: T) => void)(res);
}
