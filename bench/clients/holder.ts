/**
 * Client process for the memory benchmark: opens many idle subscribed connections to one server
 * and holds them until told to close (so the server and the clients never share a process or an
 * fd limit). Driven over IPC:
 *   → {type:'connect', transport:'sio'|'ws', url, event, subs:[payload...], concurrency, timeoutMs}
 *   ← {type:'progress', done}   ← {type:'connected', ok, failed, errors, ms}
 *   → {type:'close'}            ← {type:'closed'} (then exits)
 * `sio`: Socket.IO client (websocket transport), emits `event` with the payload and waits for {ok:true}.
 * `ws`:  plain WebSocket to <url>/v1/ws, sends {type:'subscribe', ref, ...payload}, waits for the reply.
 */
import { io as ioClient, type Socket } from 'socket.io-client';
import WebSocket from 'ws';

interface ConnectMsg {
  type: 'connect';
  transport: 'sio' | 'ws';
  url: string;
  event: string;
  subs: Record<string, unknown>[];
  concurrency: number;
  timeoutMs: number;
}

const held: Array<Socket | WebSocket> = [];

function sio(url: string, event: string, payload: unknown, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = ioClient(url, { transports: ['websocket'], reconnection: false, forceNew: true, timeout: timeoutMs });
    held.push(socket);
    const timer = setTimeout(() => reject(new Error('timeout')), timeoutMs);
    socket.once('connect_error', (err) => (clearTimeout(timer), reject(err)));
    socket.once('connect', () => {
      socket.timeout(timeoutMs).emit(event, payload, (err: Error | null, res: any) => {
        clearTimeout(timer);
        if (err) return reject(err);
        if (!res?.ok) return reject(new Error(`nack ${JSON.stringify(res).slice(0, 200)}`));
        resolve();
      });
    });
  });
}

function ws(url: string, payload: Record<string, unknown>, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url.replace(/^http/, 'ws') + '/v1/ws', { perMessageDeflate: false });
    held.push(socket);
    const timer = setTimeout(() => reject(new Error('timeout')), timeoutMs);
    socket.once('error', (err) => (clearTimeout(timer), reject(err)));
    socket.once('open', () => socket.send(JSON.stringify({ type: 'subscribe', ref: 's', ...payload })));
    const onMessage = (data: WebSocket.RawData) => {
      const frame = JSON.parse(data.toString());
      if (frame.type !== 'reply') return;
      socket.off('message', onMessage);
      clearTimeout(timer);
      if (!frame.ok) return reject(new Error(`nack ${JSON.stringify(frame).slice(0, 200)}`));
      resolve();
    };
    socket.on('message', onMessage);
  });
}

async function connectAll(msg: ConnectMsg): Promise<void> {
  const started = Date.now();
  let next = 0;
  let ok = 0;
  let failed = 0;
  const errors: string[] = [];
  let lastReport = 0;
  const worker = async () => {
    for (;;) {
      const i = next++;
      if (i >= msg.subs.length) return;
      try {
        if (msg.transport === 'sio') await sio(msg.url, msg.event, msg.subs[i], msg.timeoutMs);
        else await ws(msg.url, msg.subs[i], msg.timeoutMs);
        ok++;
      } catch (err) {
        failed++;
        if (errors.length < 5) errors.push(String((err as Error).message ?? err));
      }
      if (ok + failed - lastReport >= 1000) {
        lastReport = ok + failed;
        process.send?.({ type: 'progress', done: lastReport });
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(msg.concurrency, msg.subs.length) }, worker));
  process.send?.({ type: 'connected', ok, failed, errors, ms: Date.now() - started });
}

function closeAll(): void {
  for (const s of held) {
    try {
      if (s instanceof WebSocket) s.terminate();
      else s.close();
    } catch {
      // best effort
    }
  }
  held.length = 0;
}

process.on('message', (msg: { type?: string }) => {
  if (msg?.type === 'connect') void connectAll(msg as ConnectMsg);
  if (msg?.type === 'close') {
    closeAll();
    process.send?.({ type: 'closed' }, () => process.exit(0));
  }
});
process.on('disconnect', () => process.exit(0));
process.send?.({ type: 'ready' });
