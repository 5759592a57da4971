import type { IncomingMessage, Server as HttpServer } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, WebSocket, type RawData } from 'ws';
import { type FlowState, type WsServerFrame } from '@handoff/protocol';
import { HandoffError, toHandoffError } from '../errors.js';
import type { Handoff } from '../handoff.js';
import { bearerToken } from '../users/jwt.js';
import type { Principal } from '../identity/principal.js';
import { RealtimeCommands, type QrAction } from './commands.js';
import { clientView } from '../approvals/user-channel.js';
import { refuseUpgrade, routeUpgrades } from './upgrade-router.js';
import { Inflight, until } from './inflight.js';
import { SpreadHeartbeat } from './ws-heartbeat.js';

/** Close code of a graceful shutdown: 1012 "service restart" — reconnect (to another node) and subscribe again. */
export const WS_CLOSE_RESTART = 1012;

/** The plain WebSocket endpoint path (contract §4). */
export const WS_PATH = '/v1/ws';
/** Do not queue more than this many unsent bytes to a slow peer; it is dropped instead. */
const MAX_BUFFERED_BYTES = 1024 * 1024;

/** One /v1/ws connection: its user, its subscriptions (topic → off-function), its heartbeat. */
class WsConnection {
  user: Principal | undefined;
  readonly subscriptions = new Map<string, () => void>();
  missedPings = 0;

  constructor(
    readonly socket: WebSocket,
    /** The peer's address (the proximity hint of the user channel's snapshot). */
    readonly ip?: string,
  ) {}

  ping(): void {
    this.socket.ping();
  }

  terminate(): void {
    this.socket.terminate();
  }

  send(frame: WsServerFrame): void {
    if (this.socket.readyState !== WebSocket.OPEN) return;
    if (this.socket.bufferedAmount > MAX_BUFFERED_BYTES) {
      this.socket.terminate();
      return;
    }
    this.socket.send(JSON.stringify(frame));
  }

  pushState(state: FlowState): void {
    this.send({ type: 'state', ...clientView(state, this.ip) });
  }
}

export interface WsGateway {
  /** Stop the heartbeat and close every connection with `code` (default 1012 "service restart"). */
  close(code?: number, reason?: string): void;
  /**
   * Graceful close: let in-flight frames get their replies, then close every connection with
   * 1012 "service restart"; resolves when all are closed, or after `waitMs` (the rest are dropped).
   */
  drain(waitMs: number): Promise<void>;
  readonly server: WebSocketServer;
}

/**
 * The plain WebSocket endpoint for native clients: JSON text frames, the same commands as
 * Socket.IO, per-topic listeners on the hub. Frames over the size limit close with 1009 (ws does
 * that for us via maxPayload); malformed frames get a `bad_request` reply and the connection stays.
 */
export function createWsGateway(httpServer: HttpServer, handoff: Handoff): WsGateway {
  const { config, metrics, log } = handoff;
  const wss = new WebSocketServer({ noServer: true, maxPayload: config.wsMaxFrameBytes, perMessageDeflate: false });
  const commands = new RealtimeCommands(handoff, 'websocket');
  const connections = new Set<WsConnection>();
  const inflight = new Inflight();
  const closed = new Set<() => void>();

  routeUpgrades(httpServer, config, {
    ws: { path: WS_PATH, handle: (req, socket, head) => void handleUpgrade(req, socket, head) },
    closing: () => handoff.shuttingDown,
  });

  async function handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    let user: Principal | undefined;
    if (req.headers.authorization !== undefined) {
      try {
        user = await handoff.identity.authenticate(bearerToken(req.headers.authorization));
      } catch (err) {
        // A store outage (the user lookup failed) is a 503, not the client's bad token.
        if (toHandoffError(err).code === 'unavailable') return refuseUpgrade(socket, 503, 'Service Unavailable');
        return refuseUpgrade(socket, 401, 'Unauthorized');
      }
    }
    if (handoff.shuttingDown) return refuseUpgrade(socket, 503, 'Service Unavailable');
    wss.handleUpgrade(req, socket, head, (ws) => onConnection(ws, user, req.socket.remoteAddress));
  }

  function onConnection(ws: WebSocket, user: Principal | undefined, ip?: string): void {
    const conn = new WsConnection(ws, ip);
    conn.user = user;
    connections.add(conn);
    heartbeat.add(conn);
    metrics.connections.inc({ transport: 'websocket' });
    ws.on('pong', () => (conn.missedPings = 0));
    ws.on('message', (data, isBinary) => void onFrame(conn, data, isBinary));
    ws.on('error', (err) => log.debug({ err: err.message }, 'websocket error'));
    ws.on('close', () => {
      connections.delete(conn);
      heartbeat.delete(conn);
      for (const poke of closed) poke();
      metrics.connections.dec({ transport: 'websocket' });
      metrics.subscriptions.dec({ transport: 'websocket' }, conn.subscriptions.size);
      for (const off of conn.subscriptions.values()) off();
      conn.subscriptions.clear();
    });
  }

  async function onFrame(conn: WsConnection, data: RawData, isBinary: boolean): Promise<void> {
    let frame: Record<string, unknown>;
    try {
      if (isBinary) throw new Error('binary');
      const parsed: unknown = JSON.parse(data.toString());
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not an object');
      frame = parsed as Record<string, unknown>;
    } catch {
      return conn.send({ type: 'reply', ref: null, ok: false, error: new HandoffError('bad_request', 'Frames are JSON objects.').toBody() });
    }
    const ref = typeof frame.ref === 'string' || typeof frame.ref === 'number' ? String(frame.ref) : null;
    const command = typeof frame.type === 'string' ? frame.type.slice(0, 40) : typeof frame.type;
    const res = await inflight.track(() => commands.ack(command, () => dispatch(conn, frame)));
    conn.send({ type: 'reply', ref, ...res } as WsServerFrame);
  }

  async function dispatch(conn: WsConnection, frame: Record<string, unknown>): Promise<object> {
    // Only a string names a frame type: an object (even one with a `toString`) is bad input.
    if (typeof frame.type !== 'string') throw new HandoffError('bad_request', 'A frame needs a string `type`.');
    switch (frame.type) {
      case 'auth':
        conn.user = await handoff.identity.authenticate(frame.token);
        return {};
      case 'subscribe':
        return commands.subscribe(frame, conn.user, conn.subscriptions.size, (topic) => {
          if (conn.subscriptions.has(topic)) return;
          conn.subscriptions.set(topic, handoff.hub.listen(topic, (state) => conn.pushState(state)));
          metrics.subscriptions.inc({ transport: 'websocket' });
        }, conn.ip);
      case 'unsubscribe': {
        const topic = commands.unsubscribe(frame, conn.user);
        const off = conn.subscriptions.get(topic);
        if (off) {
          off();
          conn.subscriptions.delete(topic);
          metrics.subscriptions.dec({ transport: 'websocket' });
        }
        return {};
      }
      case 'qr.scan':
      case 'qr.confirm':
      case 'qr.cancel':
        return commands.qrAction(frame.type.slice(3) as QrAction, frame, conn.user);
      case 'redeem':
        return commands.redeem(frame);
      case 'approval.approve':
      case 'approval.deny':
        return commands.approvalAction(frame.type === 'approval.approve' ? 'approve' : 'deny', frame, conn.user);
      default:
        throw new HandoffError('bad_request', `Unknown frame type ${JSON.stringify(frame.type.slice(0, 40))}.`);
    }
  }

  // Heartbeat: every peer pinged once per interval, a peer that missed two pings in a row dropped;
  // the peers are spread over the interval's sub-ticks, not pinged all in one (ws-heartbeat.ts).
  const heartbeat = new SpreadHeartbeat<WsConnection>(config.wsPingIntervalMs);
  heartbeat.start();

  const close = (code = WS_CLOSE_RESTART, reason = 'service restart') => {
    heartbeat.stop();
    for (const conn of connections) conn.socket.close(code, reason);
  };
  return {
    server: wss,
    close,
    async drain(waitMs) {
      const deadline = Date.now() + waitMs;
      await inflight.idle(waitMs);
      close();
      await until(
        () => connections.size === 0,
        (poke) => {
          closed.add(poke);
          return () => closed.delete(poke);
        },
        Math.max(0, deadline - Date.now()),
      );
      for (const conn of connections) conn.socket.terminate();
    },
  };
}
