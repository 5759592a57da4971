/**
 * Client process for the memory, scale and waiting benchmarks: opens many idle subscribed
 * connections (or HTTP watchers) to a server and holds them until told to close (so the server
 * and the clients never share a process or an fd limit). Several `connect` messages add up (to
 * several servers if need be). Driven over IPC:
 *   → {type:'connect', transport:'sio'|'ws'|'longpoll'|'poll', url, event, subs:[payload...], concurrency, timeoutMs}
 *   ← {type:'progress', done}   ← {type:'connected', ok, failed, errors, ms}
 *   → {type:'close'}            ← {type:'closed', requests, errors} (then exits)
 * `sio`: Socket.IO client (websocket transport), emits `event` with the payload and waits for {ok:true}.
 * `ws`:  plain WebSocket to <url>/v1/ws, sends {type:'subscribe', ref, ...payload}, waits for the reply.
 * `longpoll`: payload {topic, watchToken}: a plain read of GET <url>/v1/flows/<topic> (must be 200),
 *   then for ever `GET …?after=<version>&wait=30` (the first one `wait=<1..30>` at random, so the
 *   clients' 30 s cycles are spread evenly at once), each on its own keep-alive connection.
 * `poll`: payload {topic, watchToken}: GET <url>/v1/flows/<topic> once a second (first 200 answer =
 *   connected), each client at its own random phase of the second.
 * `requests`/`errors` on `closed`: HTTP requests answered / failed by the longpoll and poll clients.
 */
import { Agent, request } from 'node:http';
import { io as ioClient, type Socket } from 'socket.io-client';
import WebSocket from 'ws';

interface ConnectMsg {
  type: 'connect';
  transport: 'sio' | 'ws' | 'longpoll' | 'poll';
  url: string;
  event: string;
  subs: Record<string, unknown>[];
  concurrency: number;
  timeoutMs: number;
}

const held: Array<Socket | WebSocket> = [];
/** HTTP watchers (longpoll, poll): one keep-alive socket each, no pool limit. */
const agent = new Agent({ keepAlive: true, maxSockets: Infinity, maxFreeSockets: Infinity });
let httpRunning = true;
let httpRequests = 0;
let httpErrors = 0;
const timers = new Set<NodeJS.Timeout>();

/** GET a flow with its watch token; resolves with the status and the parsed body. */
function getFlow(url: string, payload: Record<string, unknown>, query: string, timeoutMs: number): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const req = request(
      `${url}/v1/flows/${encodeURIComponent(String(payload.topic))}${query}`,
      { agent, headers: { 'watch-token': String(payload.watchToken) }, timeout: timeoutMs },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.once('end', () => {
          try {
            resolve({ status: res.statusCode ?? 0, body: body ? JSON.parse(body) : undefined });
          } catch (err) {
            reject(err);
          }
        });
        res.once('error', reject);
      },
    );
    req.once('timeout', () => req.destroy(new Error('timeout')));
    req.once('error', reject);
    req.end();
  });
}

const later = (ms: number, fn: () => void) => {
  const t = setTimeout(() => {
    timers.delete(t);
    fn();
  }, ms);
  timers.add(t);
};

async function longpoll(url: string, payload: Record<string, unknown>, timeoutMs: number): Promise<void> {
  const first = await getFlow(url, payload, '', timeoutMs);
  if (first.status !== 200) throw new Error(`read ${first.status} ${JSON.stringify(first.body).slice(0, 200)}`);
  let version = Number(first.body?.version ?? 1);
  let wait = 1 + Math.floor(Math.random() * 30);
  const loop = () => {
    if (!httpRunning) return;
    getFlow(url, payload, `?after=${version}&wait=${wait}`, (wait + 10) * 1000).then(
      (r) => {
        httpRequests++;
        if (r.status === 200) version = Math.max(version, Number(r.body?.version ?? version));
        else httpErrors++;
        wait = 30;
        loop();
      },
      () => {
        httpErrors++;
        if (httpRunning) later(1000, loop);
      },
    );
  };
  loop();
}

async function poll(url: string, payload: Record<string, unknown>, timeoutMs: number): Promise<void> {
  const first = await getFlow(url, payload, '', timeoutMs);
  if (first.status !== 200) throw new Error(`read ${first.status} ${JSON.stringify(first.body).slice(0, 200)}`);
  const start = performance.now() + Math.random() * 1000;
  let tick = 0;
  const loop = () => {
    if (!httpRunning) return;
    getFlow(url, payload, '', timeoutMs).then(
      (r) => {
        httpRequests++;
        if (r.status !== 200) httpErrors++;
      },
      () => void httpErrors++,
    );
    tick++;
    later(Math.max(0, start + tick * 1000 - performance.now()), loop);
  };
  later(Math.max(0, start - performance.now()), loop);
}

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
        else if (msg.transport === 'ws') await ws(msg.url, msg.subs[i], msg.timeoutMs);
        else if (msg.transport === 'longpoll') await longpoll(msg.url, msg.subs[i], msg.timeoutMs);
        else await poll(msg.url, msg.subs[i], msg.timeoutMs);
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
  httpRunning = false;
  for (const t of timers) clearTimeout(t);
  agent.destroy();
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
    process.send?.({ type: 'closed', requests: httpRequests, errors: httpErrors }, () => process.exit(0));
  }
});
process.on('disconnect', () => process.exit(0));
process.send?.({ type: 'ready' });
