/**
 * Bench-only control channel for server processes started by the bench (never part of the
 * product): over the Node IPC channel the bench can ask for a forced GC and `process.memoryUsage()`.
 * The process must be started with `--expose-gc` for the GC to happen.
 */
import { readFileSync } from 'node:fs';

export interface MemReport {
  type: 'mem';
  gc: boolean;
  rss: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
  arrayBuffers: number;
  /** VmRSS from /proc/self/status, bytes. */
  vmRss: number;
}

function vmRss(): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

const gc = (globalThis as { gc?: () => void }).gc;

process.on('message', (msg: { type?: string }) => {
  if (msg?.type !== 'mem') return;
  // Two full GCs, a tick apart, so weak callbacks and finalizers run in between.
  gc?.();
  setTimeout(() => {
    gc?.();
    const m = process.memoryUsage();
    const report: MemReport = { type: 'mem', gc: !!gc, rss: m.rss, heapUsed: m.heapUsed, heapTotal: m.heapTotal, external: m.external, arrayBuffers: m.arrayBuffers, vmRss: vmRss() };
    process.send?.(report);
  }, 50);
});

/** Tell the bench this server listens at `url`. */
export function ready(url: string): void {
  process.send?.({ type: 'ready', url });
}

// Die with the bench: if the IPC channel closes (bench exited or crashed), exit too.
process.on('disconnect', () => process.exit(0));
// Exit cleanly on SIGTERM so exit-time diagnostics (--cpu-prof) are written. Handoff's main.ts
// installs its own graceful handler; this one only acts when no other handler is there.
process.once('SIGTERM', () => {
  if (process.listenerCount('SIGTERM') === 0) process.exit(0);
});
