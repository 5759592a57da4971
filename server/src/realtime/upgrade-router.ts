import type { IncomingMessage, Server as HttpServer } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Config } from '../config.js';
import { originAllowed } from './origin.js';

type UpgradeHandler = (req: IncomingMessage, socket: Duplex, head: Buffer) => void;

/**
 * One owner for the HTTP server's `upgrade` event. Engine.IO answers a refused upgrade with 400,
 * but the contract says 403, so the Origin check happens here for both socket endpoints, before
 * Socket.IO's own upgrade listener (taken over from the server) or the plain WebSocket gateway runs.
 */
export function routeUpgrades(
  httpServer: HttpServer,
  config: Config,
  routes: { ws: { path: string; handle: UpgradeHandler }; closing?: () => boolean },
): void {
  const socketIo = httpServer.listeners('upgrade') as UpgradeHandler[];
  httpServer.removeAllListeners('upgrade');
  httpServer.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => socket.destroy());
    const path = (req.url ?? '').split('?')[0];
    const isSocketIo = path.startsWith('/socket.io/');
    if (path !== routes.ws.path && !isSocketIo) return refuseUpgrade(socket, 404, 'Not Found');
    if (!originAllowed(req, config.allowedOrigins, config.publicUrl)) return refuseUpgrade(socket, 403, 'Forbidden');
    // A draining node takes no new socket: the client goes to another node.
    if (isSocketIo && routes.closing?.()) return refuseUpgrade(socket, 503, 'Service Unavailable');
    if (isSocketIo) for (const listener of socketIo) listener.call(httpServer, req, socket, head);
    else routes.ws.handle(req, socket, head);
  });
}

/** Answer an upgrade request with a plain HTTP error and close. */
export function refuseUpgrade(socket: Duplex, status: number, text: string): void {
  if (!socket.writable) return void socket.destroy();
  socket.end(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
}
