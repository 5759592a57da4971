import fp from 'fastify-plugin';
import type { Handoff } from '../handoff.js';
import type { ShutdownSteps } from '../lib/shutdown.js';
import { attachSocketIoGateway, type HandoffIo } from './socketio-gateway.js';
import { createWsGateway } from './ws-gateway.js';

/** Longest a graceful shutdown waits for socket clients to go, ms (a third of the shutdown bound, at most 5 s). */
export function socketDrainMs(shutdownTimeoutSeconds: number): number {
  return Math.min(5_000, Math.floor((shutdownTimeoutSeconds * 1000) / 3));
}

/**
 * The socket transports of an API node on its HTTP server: Socket.IO (contract §3) and the plain
 * WebSocket (§4). At shutdown (preClose) every socket client gets the reconnect hint (Socket.IO)
 * or close 1012 (WebSocket) once its in-flight commands answered, and goes to another node; once
 * HTTP is closed (onClose), Socket.IO's adapter unsubscribes.
 */
export const realtimePlugin = fp<{ handoff: Handoff; io: HandoffIo; steps: ShutdownSteps }>(
  async (app, { handoff, io, steps }) => {
    const socketIo = attachSocketIoGateway(io, handoff);
    const ws = createWsGateway(app.server, handoff);
    const waitMs = socketDrainMs(handoff.config.shutdownTimeoutSeconds);
    app.addHook('preClose', () => steps.run('drain socket clients', () => Promise.all([socketIo.drain(waitMs), ws.drain(waitMs)])));
    app.addHook('onClose', () => steps.run('close Socket.IO and its adapter', () => io.close()));
  },
  { name: 'handoff-realtime' },
);
