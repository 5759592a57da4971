/**
 * Client holder processes (bench/clients/holder.ts): each opens and keeps many idle subscribed
 * connections or HTTP watchers, in a process of its own and under its own open-files limit.
 */
import { log } from './util.js';
import { spawnNode, type NodeChild } from './proc.js';

export type Holder = NodeChild;
export type HolderTransport = 'sio' | 'ws' | 'longpoll' | 'poll';

export interface HolderConnected {
  ok: number;
  failed: number;
  errors: string[];
  ms: number;
}

/** A fresh client process (4 GiB heap; with `nofile`, at most that many open files). */
export async function startHolder(name: string, opts: { nofile?: number } = {}): Promise<Holder> {
  const holder = spawnNode(name, 'bench/clients/holder.ts', {}, ['--max-old-space-size=4096'], opts);
  await holder.next('ready', 30_000);
  return holder;
}

/** Open (and keep open) one more batch of subscribed connections / watchers from `holder`. */
export async function holderConnect(
  holder: Holder,
  req: { transport: HolderTransport; url: string; event?: string; subs: Record<string, unknown>[]; concurrency: number; timeoutMs?: number },
  label = holder.name,
): Promise<HolderConnected> {
  const onProgress = (m: any) => m?.type === 'progress' && m.done % 5000 === 0 && log(`  ${label}: ${m.done}/${req.subs.length} connected`);
  holder.child.on('message', onProgress);
  try {
    const res = await holder.request<HolderConnected>(
      { type: 'connect', event: 'subscribe', timeoutMs: 30_000, ...req },
      'connected',
      Math.max(120_000, req.subs.length * 30),
    );
    if (res.failed > 0) log(`  ${label}: ${res.failed} connections failed, e.g. ${res.errors.join('; ')}`);
    return res;
  } finally {
    holder.child.off('message', onProgress);
  }
}

/** Close everything the holder holds and stop it; resolves with its HTTP watchers' counts. */
export async function closeHolder(holder: Holder): Promise<{ requests: number; errors: number }> {
  const res = await holder.request<{ requests: number; errors: number }>({ type: 'close' }, 'closed', 30_000).catch(() => ({ requests: NaN, errors: NaN }));
  await holder.stop(2000);
  return { requests: res.requests, errors: res.errors };
}
