/**
 * A small HTTP proxy for tests: forwards every plain HTTP request to the target and, while
 * `refuseUpgrades` is set, answers every WebSocket upgrade with 403 (like a corporate proxy that
 * strips upgrades); otherwise it pipes the upgrade through as raw TCP.
 */
import { createServer, request, type IncomingMessage, type Server } from 'node:http';
import { connect, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { AddressInfo } from 'node:net';

export interface UpgradeProxy {
  url: string;
  /** While true, upgrades are refused with 403. */
  refuseUpgrades: boolean;
  /** Upgrades refused / passed through so far. */
  refused: number;
  passed: number;
  close(): Promise<void>;
}

export async function startUpgradeProxy(target: string, opts: { refuseUpgrades: boolean }): Promise<UpgradeProxy> {
  const upstream = new URL(target);
  const tunnels = new Set<Socket | Duplex>();
  const server: Server = createServer((req, res) => {
    const forward = request(
      { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      },
    );
    forward.on('error', () => res.destroy());
    res.on('close', () => forward.destroy());
    req.pipe(forward);
  });

  const proxy: UpgradeProxy = {
    url: '',
    refuseUpgrades: opts.refuseUpgrades,
    refused: 0,
    passed: 0,
    async close() {
      for (const s of tunnels) s.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };

  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => socket.destroy());
    if (proxy.refuseUpgrades) {
      proxy.refused++;
      socket.end('HTTP/1.1 403 Forbidden\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    proxy.passed++;
    const out = connect(Number(upstream.port), upstream.hostname, () => {
      const lines = [`${req.method} ${req.url} HTTP/${req.httpVersion}`];
      for (let i = 0; i < req.rawHeaders.length; i += 2) lines.push(`${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}`);
      out.write(lines.join('\r\n') + '\r\n\r\n');
      if (head.length) out.write(head);
      out.pipe(socket);
      socket.pipe(out);
    });
    tunnels.add(out);
    tunnels.add(socket);
    const done = () => {
      out.destroy();
      socket.destroy();
      tunnels.delete(out);
      tunnels.delete(socket);
    };
    out.on('error', done);
    out.on('close', done);
    socket.on('close', done);
  });

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  proxy.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return proxy;
}
