/**
 * The /v1/ws heartbeat on a real server with 1,000 open connections (realtime/ws-heartbeat.ts):
 * the pings of one interval arrive spread over it, not in one burst, and a peer that answers no
 * ping is still dropped after exactly two.
 */
import { once } from 'node:events';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { loadConfig } from '../../server/src/config.js';
import { startInProcess, type InProcessServer } from '../harness/in-process.js';
import { TEST_SERVER_ENV } from '../harness/server-process.js';

const CONNECTIONS = 1000;
const INTERVAL_MS = 2000;

let node: InProcessServer;
const sockets: WebSocket[] = [];

beforeAll(async () => {
  node = await startInProcess(loadConfig({ ...TEST_SERVER_ENV, WS_PING_INTERVAL_MS: String(INTERVAL_MS) }));
});

afterAll(async () => {
  for (const s of sockets) s.terminate();
  await node?.close();
});

it('pings 1,000 connections spread over the interval, not all in one tick', { timeout: 60_000 }, async () => {
  const url = node.base.replace('http', 'ws') + '/v1/ws';
  const firstPing: number[] = [];
  for (let i = 0; i < CONNECTIONS; i += 100) {
    const batch = Array.from({ length: 100 }, () => new WebSocket(url));
    await Promise.all(batch.map((s) => once(s, 'open')));
    sockets.push(...batch);
  }
  // Every connection's first ping after all are open: one full interval of the heartbeat.
  const start = performance.now();
  await Promise.all(
    sockets.map(
      (s) =>
        new Promise<void>((resolve) => {
          const onPing = () => {
            if (performance.now() - start < 1) return; // a ping already on its way when we started
            firstPing.push(performance.now() - start);
            s.off('ping', onPing);
            resolve();
          };
          s.on('ping', onPing);
        }),
    ),
  );
  firstPing.sort((a, b) => a - b);
  // The most pings that arrived within any 100 ms: a burst of all of them before, about
  // CONNECTIONS * 100 / INTERVAL_MS = 50 now (a loaded machine may bunch a few sub-ticks).
  let burst = 0;
  for (let i = 0, j = 0; i < firstPing.length; i++) {
    while (firstPing[i]! - firstPing[j]! > 100) j++;
    burst = Math.max(burst, i - j + 1);
  }
  console.log(`first pings of ${CONNECTIONS} connections spread over ${(firstPing.at(-1)! - firstPing[0]!).toFixed(0)} ms; most within 100 ms: ${burst}`);
  expect(burst).toBeLessThan(CONNECTIONS / 4);
  expect(firstPing.at(-1)! - firstPing[0]!).toBeGreaterThan(INTERVAL_MS / 2);
});

it('drops a peer that answers no ping after exactly two pings', { timeout: 30_000 }, async () => {
  const silent = new WebSocket(node.base.replace('http', 'ws') + '/v1/ws', { autoPong: false });
  let pings = 0;
  silent.on('ping', () => pings++);
  await once(silent, 'open');
  const [code] = (await once(silent, 'close')) as [number];
  expect(code).toBe(1006); // terminated, no close frame
  expect(pings).toBe(2);
});
