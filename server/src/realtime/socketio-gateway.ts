import type { Server as HttpServer } from 'node:http';
import { Server, type ServerOptions, type Socket } from 'socket.io';
import { RECONNECT_HINT_EVENT, type ClientToServerEvents, type ConnectErrorData, type FlowState, type HandshakeAuth, type ServerToClientEvents } from '@handoff/protocol';
import type { Config } from '../config.js';
import { HandoffError, toHandoffError } from '../errors.js';
import type { Handoff } from '../handoff.js';
import type { Principal } from '../identity/principal.js';
import { RealtimeCommands, type QrAction } from './commands.js';
import { clientView, isUserTopic } from '../approvals/user-channel.js';
import { FANOUT_EVENT, SIGNAL_EVENT } from './fanout.js';
import type { SignalPayload } from './topic-hub.js';
import { originAllowed } from './origin.js';
import { Inflight, until } from './inflight.js';

interface SocketData {
  user?: Principal;
}

/** Events between nodes on the adapter's server-side channel: the fan-out. */
export interface InterServerEvents {
  /** The state and, beside it (never inside the public object), its commit time in epoch ms. */
  [FANOUT_EVENT]: (state: FlowState, committedAt?: number) => void;
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

/** The Socket.IO side of a node, as the server's shutdown sees it. */
export interface SocketIoGateway {
  /** Topics this node's sockets are subscribed to (rooms other than the sockets' own). */
  topics(): string[];
  /**
   * Graceful close: emit the reconnect hint to every socket of this node, let in-flight commands
   * answer, then close each connection's transport (after its buffered packets are sent). Stock
   * socket.io-client reconnects by itself on such a `transport close` (it would not after a
   * server-side `disconnect`); the Handoff SDK always does. Resolves when every socket is gone,
   * or after `waitMs`.
   */
  drain(waitMs: number): Promise<void>;
}

/**
 * Socket.IO on the default namespace (contract §3). Subscriptions are rooms named by topic;
 * the hub's sink emits each state to its room on this node only (`io.local`): states from other
 * nodes arrive through the fan-out, never through a second broadcast.
 */
export function attachSocketIoGateway(io: HandoffIo, handoff: Handoff): SocketIoGateway {
  const { metrics } = handoff;
  const commands = new RealtimeCommands(handoff, 'socket.io');
  const inflight = new Inflight();

  io.use(async (socket, next) => {
    // Draining: go to another node (the SDK rotates its URL list on a failed connect).
    if (handoff.shuttingDown) return next(refusal(new HandoffError('unavailable', 'The server is shutting down; connect to another node.')));
    const auth = (socket.handshake.auth ?? {}) as HandshakeAuth;
    if (auth.token === undefined || auth.token === null) return next();
    try {
      socket.data.user = await handoff.identity.authenticate(auth.token);
      next();
    } catch (err) {
      // A store outage is not the client's fault: say so, so it retries instead of re-authenticating.
      const known = toHandoffError(err);
      next(refusal(known.code === 'unavailable' || known.code === 'unauthorized' ? known : new HandoffError('unauthorized')));
    }
  });

  handoff.hub.addSink((state) => {
    if (isUserTopic(state.topic)) {
      // The user channel: each of this node's sockets of that user, with its own proximity hint.
      const nsp = io.of('/');
      for (const id of nsp.adapter.rooms.get(state.topic) ?? []) {
        const socket = nsp.sockets.get(id);
        socket?.emit('state', clientView(state, socket.handshake.address));
      }
      return;
    }
    io.local.to(state.topic).emit('state', state);
  });
  // A topic room's first socket makes this node watch the topic, its last one ends it (the sharded
  // fan-out subscribes the topic's channel meanwhile). A socket's own room is no topic.
  const rooms = io.of('/').adapter;
  rooms.on('create-room', (room: unknown) => {
    if (typeof room === 'string' && !rooms.sids.has(room)) handoff.hub.retain(room);
  });
  rooms.on('delete-room', (room: unknown) => {
    if (typeof room === 'string' && !rooms.sids.has(room)) handoff.hub.release(room);
  });

  io.on('connection', (socket: HandoffSocket) => {
    metrics.connections.inc({ transport: 'socket.io' });
    // `disconnecting`, not `disconnect`: by `disconnect` the socket has already left its rooms.
    socket.on('disconnecting', () => {
      metrics.connections.dec({ transport: 'socket.io' });
      metrics.subscriptions.dec({ transport: 'socket.io' }, topicsOf(socket).length);
    });

    socket.on('subscribe', async (payload, ack) => {
      const res = await toAckTracked('subscribe', async () => {
        return commands.subscribe(payload, socket.data.user, topicsOf(socket).length, (topic) => {
          if (socket.rooms.has(topic)) return;
          socket.join(topic);
          metrics.subscriptions.inc({ transport: 'socket.io' });
        }, socket.handshake.address);
      });
      reply(ack, res);
    });

    socket.on('unsubscribe', async (payload, ack) => {
      const res = await toAckTracked('unsubscribe', async () => {
        const topic = commands.unsubscribe(payload, socket.data.user);
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
        reply(ack, await toAckTracked(`qr:${action}`, () => commands.qrAction(action, payload, socket.data.user)));
      });
    }

    for (const action of ['approve', 'deny'] as const) {
      socket.on(`approval:${action}`, async (payload: unknown, ack: unknown) => {
        reply(ack, await toAckTracked(`approval:${action}`, () => commands.approvalAction(action, payload, socket.data.user)));
      });
    }

    socket.on('redeem', async (payload, ack) => {
      reply(ack, await toAckTracked('redeem', () => commands.redeem(payload)));
    });
  });

  function toAckTracked<T extends object>(command: string, run: () => Promise<T>) {
    return inflight.track(() => commands.ack(command, run));
  }

  const nsp = io.of('/');
  return {
    topics: () => socketIoTopics(io),
    async drain(waitMs) {
      const deadline = Date.now() + waitMs;
      for (const socket of nsp.sockets.values()) socket.emit(RECONNECT_HINT_EVENT, { reason: 'shutdown' });
      await inflight.idle(Math.max(0, deadline - Date.now()));
      // conn.close() (not socket.disconnect()): flushes the hint, then closes the transport.
      for (const socket of nsp.sockets.values()) socket.conn.close();
      await until(
        () => nsp.sockets.size === 0,
        (poke) => {
          const onDisconnect = () => setImmediate(poke);
          for (const socket of nsp.sockets.values()) socket.once('disconnect', onDisconnect);
          return () => {
            for (const socket of nsp.sockets.values()) socket.off('disconnect', onDisconnect);
          };
        },
        Math.max(0, deadline - Date.now()),
      );
    },
  };
}

/** Topics this node's Socket.IO sockets are subscribed to (rooms other than the sockets' own). */
export function socketIoTopics(io: HandoffIo): string[] {
  const adapter = io.of('/').adapter;
  return [...adapter.rooms.keys()].filter((room): room is string => typeof room === 'string' && !adapter.sids.has(room));
}

/** A refused connection's error: the client's `connect_error` has message `code` and `data` `{code, message}`. */
function refusal(error: HandoffError): Error & { data: ConnectErrorData } {
  return Object.assign(new Error(error.code), { data: error.toBody() });
}

/** Topics a socket is subscribed to (its rooms, minus its own id room). */
function topicsOf(socket: HandoffSocket): string[] {
  return [...socket.rooms].filter((room) => room !== socket.id);
}

/** Call the ack if the client sent one (events without an ack are answered with silence, not a crash). */
function reply<T>(ack: unknown, res: T): void {
  if (typeof ack === 'function') (ack as (r: T) => void)(res);
}
