/**
 * Nothing fails silently: a socket command that fails inside the server is logged with its stack
 * (as HTTP does), a bad frame type is bad input (not `internal`), an outage is known by the error's
 * class and not its message, and a shutdown step that fails is reported without skipping the rest.
 */
import { Writable } from 'node:stream';
import { Cluster, Command, Redis } from 'ioredis';
import { pino, type Logger } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HandoffError, StoreUnavailableError, isStoreDown, toHandoffError } from '../../server/src/errors.js';
import { ShutdownSteps } from '../../server/src/lib/shutdown.js';
import { RedisWatch } from '../../server/src/store/backend.js';
import { execPipeline } from '../../server/src/store/redis-connection.js';
import { connectSocketIo, emitAck, WsClient } from '../harness/clients.js';
import { STORE_MODES, startInProcess, testConfig, useRedisServer, type InProcessServer } from '../harness/in-process.js';
import { startRedis, type RedisHandle } from '../harness/redis-server.js';

const redis = useRedisServer();

/** A pino logger whose JSON lines the test can read. */
function capture(): { log: Logger; lines: Array<Record<string, any>> } {
  const lines: Array<Record<string, any>> = [];
  const stream = new Writable({
    write: (chunk, _enc, cb) => {
      for (const line of chunk.toString().split('\n')) if (line) lines.push(JSON.parse(line));
      cb();
    },
  });
  return { log: pino({ level: 'debug' }, stream), lines };
}

describe.each(STORE_MODES)('socket commands that fail inside the server ($name)', (mode) => {
  let app: InProcessServer;
  let logs: ReturnType<typeof capture>;
  beforeAll(async () => {
    logs = capture();
    app = await startInProcess(testConfig(mode, redis, 'silent'), logs.log);
    // A bug inside a capability: what the transports must not swallow.
    app.server.handoff.flows.redeem = async () => {
      throw new TypeError('boom: a bug in redeem');
    };
  });
  afterAll(() => app?.close());

  it('Socket.IO: the ack says internal, and the log has the error with its stack', async () => {
    const socket = await connectSocketIo(app.base);
    try {
      const ack = await emitAck(socket, 'redeem', { topic: 'qr:abc', watchToken: 'x'.repeat(32) });
      expect(ack).toMatchObject({ ok: false, error: { code: 'internal' } });
      expect(JSON.stringify(ack)).not.toContain('boom');
      const line = logs.lines.find((l) => l.msg === 'socket command failed' && l.transport === 'socket.io');
      expect(line).toMatchObject({ level: 50, command: 'redeem', err: { type: 'TypeError', message: 'boom: a bug in redeem' } });
      expect(line!.err.stack).toContain('no-silent-failures.test.ts');
    } finally {
      socket.close();
    }
  });

  it('/v1/ws: the reply says internal, and the log has the error with its stack', async () => {
    const ws = await WsClient.connect(app.base);
    try {
      const reply = await ws.request('redeem', { topic: 'qr:abc', watchToken: 'x'.repeat(32) });
      expect(reply).toMatchObject({ ok: false, error: { code: 'internal' } });
      const line = logs.lines.find((l) => l.msg === 'socket command failed' && l.transport === 'websocket');
      expect(line).toMatchObject({ level: 50, command: 'redeem', err: { type: 'TypeError' } });
      expect(line!.err.stack).toContain('no-silent-failures.test.ts');
    } finally {
      ws.close();
    }
  });

  it('/v1/ws: a frame whose type is an object (even with a toString) is bad_request, and the connection stays', async () => {
    const ws = await WsClient.connect(app.base);
    try {
      const reply = await new Promise<any>((resolve) => {
        ws.socket.once('message', (data) => resolve(JSON.parse(data.toString())));
        ws.socket.send('{"type":{"toString":"x"},"ref":"a"}');
      });
      expect(reply).toMatchObject({ type: 'reply', ref: 'a', ok: false, error: { code: 'bad_request' } });
      // Still open: the next frame is answered.
      expect(await ws.request('nonsense')).toMatchObject({ type: 'reply', ok: false, error: { code: 'bad_request' } });
    } finally {
      ws.close();
    }
  });
});

describe('a down store is known by the error class, not its message', () => {
  it('maps StoreUnavailableError and socket error codes to unavailable, and a look-alike message to internal', () => {
    expect(toHandoffError(new StoreUnavailableError(new Error('anything')))).toMatchObject({ code: 'unavailable' });
    expect(toHandoffError(Object.assign(new Error('x'), { code: 'ECONNREFUSED' }))).toMatchObject({ code: 'unavailable' });
    // A bug whose message happens to read like an outage is still a bug.
    expect(isStoreDown(new Error('Connection is closed.'))).toBe(false);
    expect(toHandoffError(new Error('Command timed out'))).toMatchObject({ code: 'internal' });
    expect(toHandoffError(new HandoffError('not_found'))).toMatchObject({ code: 'not_found' });
  });

  /** A redis-server of the test's own, and a connection to it watched as the store's is. */
  async function watchedRedis(): Promise<{ own: RedisHandle; client: Redis }> {
    const own = await startRedis();
    const client = new Redis(own.url, { lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 1, retryStrategy: () => 50 });
    client.on('error', () => {});
    new RedisWatch().watch(client, 'command', { translate: true });
    return { own, client };
  }

  it('a watched store connection rejects with StoreUnavailableError when Redis is gone, and passes Redis replies through', async () => {
    const { own, client } = await watchedRedis();
    try {
      await client.connect();
      // Redis's own error reply is not an outage.
      await expect(client.incr('not-a-number-key-' + Date.now()).then(() => client.hset('h', 'f', 'v')).then(() => client.incr('h'))).rejects.toSatisfy(
        (err: Error) => !isStoreDown(err) && /WRONGTYPE/.test(err.message),
      );
      await own.stop();
      await expect(client.get('k')).rejects.toBeInstanceOf(StoreUnavailableError);
    } finally {
      client.disconnect();
      await own.stop();
    }
  });

  it('a command sent again with a new promise, as a Cluster pipeline retries one, still rejects with StoreUnavailableError', async () => {
    const { own, client } = await watchedRedis();
    try {
      await client.connect();
      const command = new Command('get', ['k']);
      client.sendCommand(command);
      expect(await command.promise).toBeNull();
      await own.stop();
      // What ioredis's Pipeline does to each command before it sends them again after a MOVED or a
      // closed connection (Pipeline.js fillResult): a new promise, and with it a new, plain reject.
      (command as unknown as { initPromise(): void }).initPromise();
      client.sendCommand(command);
      await expect(command.promise).rejects.toBeInstanceOf(StoreUnavailableError);
    } finally {
      client.disconnect();
      await own.stop();
    }
  });

  it("a failover's replies are an outage: READONLY from a replica is StoreUnavailableError, a MULTI it aborted is unavailable", async () => {
    const master = await startRedis();
    const { own: replica, client } = await watchedRedis();
    try {
      await client.connect();
      await client.replicaof('127.0.0.1', String(master.port));
      // A demoted master answers writes READONLY: a failover under way, not a bug.
      await expect(client.set('k', 'v')).rejects.toSatisfy((err: Error) => err instanceof StoreUnavailableError && /^READONLY/.test(err.message));
      // A MULTI run by a library (rate-limiter-flexible does) ends as EXECABORT after the watch saw
      // each reply; the error mapping knows it by the replies it carries.
      const aborted = await client.multi().set('a', '1').incr('b').exec().then(
        () => null,
        (err: Error) => err,
      );
      expect(aborted?.message).toMatch(/^EXECABORT/);
      expect(isStoreDown(aborted)).toBe(true);
      expect(toHandoffError(aborted)).toMatchObject({ code: 'unavailable' });
      await expect(execPipeline(client.multi().set('a', '1'))).rejects.toBeInstanceOf(StoreUnavailableError);
      // Redis's other replies stay what they are: a bug is still a 500.
      const unknown = await client.call('NOSUCHCOMMAND').then(
        () => null,
        (err: Error) => err,
      );
      expect(isStoreDown(unknown)).toBe(false);
    } finally {
      client.disconnect();
      await replica.stop();
      await master.stop();
    }
  });

  it("a pipeline's own rejection (a Cluster that reaches no node) is StoreUnavailableError through execPipeline", async () => {
    // A fresh client each: after its failed first connect a client stays ended.
    const unreachable = () => {
      const cluster = new Cluster([{ host: '127.0.0.1', port: 1 }], { lazyConnect: true, clusterRetryStrategy: () => null, enableOfflineQueue: false });
      cluster.on('error', () => {});
      return cluster;
    };
    const [a, b] = [unreachable(), unreachable()];
    try {
      // ioredis rejects the pipeline itself, with a plain Error no watched command carried.
      await expect(a.pipeline().get('k').exec()).rejects.toSatisfy((err: Error) => !isStoreDown(err));
      await expect(execPipeline(b.pipeline().get('k'))).rejects.toBeInstanceOf(StoreUnavailableError);
    } finally {
      a.disconnect();
      b.disconnect();
    }
  });
});

describe('shutdown steps', () => {
  it('run every step in order, report a failed one with its name, and throw once all ran', async () => {
    const logs = capture();
    const steps = new ShutdownSteps(logs.log);
    const ran: string[] = [];
    await steps.run('first', () => void ran.push('first'));
    await steps.run('second', async () => {
      ran.push('second');
      throw new Error('second broke');
    });
    await steps.run('third', () => void ran.push('third'));
    expect(ran).toEqual(['first', 'second', 'third']);
    expect(() => steps.assertClean()).toThrow(/shutdown steps failed: second/);
    expect(logs.lines.find((l) => l.step === 'second')).toMatchObject({ level: 50, err: { message: 'second broke' } });
  });

  it('a server whose backend fails to close still runs every later step, and close() rejects naming it', async () => {
    const logs = capture();
    const app = await startInProcess(testConfig(STORE_MODES[0], redis, 'silent-close'), logs.log);
    const users = app.server.handoff.users;
    let passwordsClosed = false;
    const closeUsers = users.close.bind(users);
    users.close = async () => {
      passwordsClosed = true;
      await closeUsers();
    };
    app.server.handoff.backend.close = async () => {
      throw new Error('backend would not close');
    };
    await expect(app.close()).rejects.toThrow(/close the backend/);
    expect(passwordsClosed).toBe(true);
    expect(logs.lines.find((l) => l.step === 'close the backend')).toMatchObject({ level: 50, err: { message: 'backend would not close' } });
  });
});
