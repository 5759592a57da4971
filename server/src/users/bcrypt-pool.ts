import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

/**
 * bcrypt on a few dedicated worker threads that run at a lower CPU priority than the event loop.
 *
 * Why not `bcrypt.compare`, which already runs on libuv's thread pool? One compare is 50–250 ms
 * of CPU (cost 10–12). With several in flight, (1) libuv's four threads are all busy hashing, so
 * `dns.lookup`, `fs` and async crypto wait behind them; and (2) where the machine has fewer cores
 * than busy threads, the OS shares the CPU evenly between the hashing threads and the event loop,
 * and every HTTP answer and push waits its turn (measured: event-loop p99 42–50 ms and
 * `GET /v1/flows` p99 100–140 ms during an async login flood on 2 cores; docs/benchmarks.md).
 * Here hashing has its own threads, niced to +10 on Linux (the kernel schedules threads, and a
 * thread may lower its own priority without privileges), so the event loop is served first and
 * hashing takes the CPU that is left. Elsewhere the threads run at normal priority.
 *
 * Threads start on first use and are unref'd: an idle pool neither costs a thread nor keeps the
 * process alive. `close()` ends them; later calls start them again.
 */
export class BcryptPool {
  private readonly workers: PoolWorker[] = [];
  private readonly waiting: Task[] = [];

  constructor(
    private readonly size: number,
    private readonly nice = 10,
  ) {}

  hash(password: string, cost: number): Promise<string> {
    return this.run({ op: 'hash', password, arg: cost }) as Promise<string>;
  }

  compare(password: string, hash: string): Promise<boolean> {
    return this.run({ op: 'compare', password, arg: hash }) as Promise<boolean>;
  }

  /**
   * Stop every thread; pending calls reject at once. A thread is never terminated from outside:
   * `Worker.terminate()` during a native bcrypt call aborts the whole process (node-addon-api
   * throws into a terminating thread: "terminate called after throwing an instance of
   * 'Napi::Error'", exit 134). Each thread is asked to exit instead, and does so once its current
   * hash (at most one, a few hundred ms) is done.
   */
  async close(): Promise<void> {
    const workers = this.workers.splice(0);
    const closed = new Error('bcrypt pool closed');
    for (const task of this.waiting.splice(0)) task.reject(closed);
    for (const worker of workers) {
      worker.task?.reject(closed);
      worker.task = null;
    }
    await Promise.all(
      workers.map(
        (w) =>
          new Promise<void>((resolve) => {
            w.thread.once('exit', () => resolve());
            w.thread.ref(); // the process waits for the thread's current hash
            w.thread.postMessage(EXIT);
          }),
      ),
    );
  }

  private run(request: Request): Promise<string | boolean> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ request, resolve, reject });
      this.dispatch();
    });
  }

  private dispatch(): void {
    while (this.waiting.length > 0) {
      const worker = this.workers.find((w) => w.task === null) ?? (this.workers.length < this.size ? this.spawn() : undefined);
      if (!worker) return;
      const task = this.waiting.shift()!;
      worker.task = task;
      worker.thread.ref(); // a hash in flight keeps the process alive until it answers
      worker.thread.postMessage(task.request);
    }
  }

  private spawn(): PoolWorker {
    const thread = new Worker(WORKER_SOURCE, {
      eval: true,
      execArgv: [],
      workerData: { bcrypt: BCRYPT_PATH, nice: this.nice },
    });
    const worker: PoolWorker = { thread, task: null };
    thread.unref();
    thread.on('message', (reply: Reply) => {
      if (!this.workers.includes(worker)) return; // closed meanwhile
      const task = worker.task;
      worker.task = null;
      thread.unref();
      if (reply.error !== undefined) task?.reject(new Error(reply.error));
      else task?.resolve(reply.result!);
      this.dispatch();
    });
    thread.on('error', (err) => this.lose(worker, err));
    thread.on('exit', (code) => this.lose(worker, new Error(`bcrypt thread exited (${code})`)));
    this.workers.push(worker);
    return worker;
  }

  /** A thread died: fail its task, forget it; the next call starts a new one. */
  private lose(worker: PoolWorker, err: Error): void {
    const at = this.workers.indexOf(worker);
    if (at === -1) return;
    this.workers.splice(at, 1);
    worker.task?.reject(err);
    worker.task = null;
    this.dispatch();
  }
}

interface Request {
  op: 'hash' | 'compare';
  password: string;
  /** The cost for `hash`, the stored hash for `compare`. */
  arg: number | string;
}
interface Task {
  request: Request;
  resolve: (value: string | boolean) => void;
  reject: (err: Error) => void;
}
/** The answer to the one request a thread is working on. */
interface Reply {
  result?: string | boolean;
  error?: string;
}
interface PoolWorker {
  thread: Worker;
  task: Task | null;
}

/** The message that asks a thread to end, after the request it is working on. */
const EXIT = { op: 'exit' } as const;

/** Resolved here so the thread loads the same native bcrypt whatever its working directory. */
const BCRYPT_PATH = createRequire(import.meta.url).resolve('bcrypt');

/** The thread: lower its own priority (Linux: per thread), then hash one request at a time. */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const bcrypt = require(workerData.bcrypt);
try {
  const tid = Number(require('node:fs').readlinkSync('/proc/thread-self').split('/').pop());
  require('node:os').setPriority(tid, workerData.nice);
} catch {}
parentPort.on('message', ({ op, password, arg }) => {
  if (op === 'exit') return void parentPort.close();
  try {
    const result = op === 'hash' ? bcrypt.hashSync(password, arg) : bcrypt.compareSync(password, arg);
    parentPort.postMessage({ result });
  } catch (err) {
    parentPort.postMessage({ error: String((err && err.message) || err) });
  }
});
`;
