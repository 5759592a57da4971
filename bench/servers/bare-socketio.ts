/**
 * Baseline: a bare Socket.IO server, the same options Handoff uses for its socket endpoint, with
 * the @socket.io/redis-adapter when REDIS_URL is set (key ADAPTER_KEY). Events:
 *   join    {room}          → socket.join(room), ack {ok:true}
 *   trigger {room, state}   → io.to(room).emit('state', state) (every node, via the adapter), ack {ok:true}
 */
import { createServer } from 'node:http';
import { Server } from 'socket.io';
import { ready } from './ipc.js';

const port = Number(process.env.PORT ?? 0);
const httpServer = createServer();
let adapter: unknown;
if (process.env.REDIS_URL) {
  const { Redis } = await import('ioredis');
  const { createAdapter } = await import('@socket.io/redis-adapter');
  const pub = new Redis(process.env.REDIS_URL);
  const sub = pub.duplicate();
  adapter = createAdapter(pub, sub, { key: process.env.ADAPTER_KEY ?? 'bench-bare:socket.io' });
}

const io = new Server(httpServer, {
  serveClient: false,
  maxHttpBufferSize: 16 * 1024,
  pingInterval: 25_000,
  pingTimeout: 20_000,
  ...(adapter ? { adapter: adapter as never } : {}),
});

io.on('connection', (socket) => {
  socket.on('join', (payload: { room?: unknown }, ack?: (r: unknown) => void) => {
    if (typeof payload?.room === 'string') socket.join(payload.room);
    if (typeof ack === 'function') ack({ ok: true });
  });
  socket.on('trigger', (payload: { room?: unknown; state?: unknown }, ack?: (r: unknown) => void) => {
    if (typeof payload?.room === 'string') io.to(payload.room).emit('state', payload.state);
    if (typeof ack === 'function') ack({ ok: true });
  });
});

httpServer.listen(port, '127.0.0.1', () => {
  const addr = httpServer.address();
  ready(`http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : port}`);
});
