/**
 * Baseline: a bare `ws` server with the minimum the Handoff /v1/ws endpoint does for an idle
 * subscriber: JSON frames, `{type:'subscribe', ref, topic}` puts the socket in a per-topic set
 * and gets `{type:'reply', ref, ok:true}`; the idiomatic ws heartbeat (ping every 25 s, drop a
 * peer that did not pong). No auth, no validation, no flows.
 */
import { createServer } from 'node:http';
import { WebSocketServer, type WebSocket } from 'ws';
import { ready } from './ipc.js';

const port = Number(process.env.PORT ?? 0);
const httpServer = createServer();
const wss = new WebSocketServer({ server: httpServer, path: '/v1/ws', maxPayload: 16 * 1024, perMessageDeflate: false });
const topics = new Map<string, Set<WebSocket>>();
const alive = new WeakSet<WebSocket>();

wss.on('connection', (ws) => {
  alive.add(ws);
  const mine = new Set<string>();
  ws.on('pong', () => alive.add(ws));
  ws.on('message', (data) => {
    let frame: { type?: unknown; ref?: unknown; topic?: unknown };
    try {
      frame = JSON.parse(data.toString());
    } catch {
      return;
    }
    if (frame.type === 'subscribe' && typeof frame.topic === 'string') {
      let set = topics.get(frame.topic);
      if (!set) topics.set(frame.topic, (set = new Set()));
      set.add(ws);
      mine.add(frame.topic);
    }
    ws.send(JSON.stringify({ type: 'reply', ref: frame.ref ?? null, ok: true }));
  });
  ws.on('close', () => {
    for (const t of mine) {
      const set = topics.get(t);
      set?.delete(ws);
      if (set?.size === 0) topics.delete(t);
    }
  });
});

const heartbeat = setInterval(() => {
  for (const ws of wss.clients) {
    if (!alive.has(ws)) {
      ws.terminate();
      continue;
    }
    alive.delete(ws);
    ws.ping();
  }
}, 25_000);
heartbeat.unref();

httpServer.listen(port, '127.0.0.1', () => {
  const addr = httpServer.address();
  ready(`http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : port}`);
});
