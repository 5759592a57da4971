/**
 * Embedded mode gives memory back: 100,000 flows created and cancelled in the MemoryFlowStore
 * (as FlowService does: create, then a final transition with the tombstone) are dropped by the
 * store's own sweep once their tombstone has passed, with no read, and the heap returns near its
 * baseline. (The store, not the service, is driven: the service's token hashing would make the
 * test slow without exercising anything more of the store.)
 *
 * Time is a fake clock handed to the service and the store; the test waits for the store's sweep
 * event, never for a duration. The heap is measured after a forced full GC (`gc`, exposed at run
 * time through v8 flags so no special vitest config is needed).
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { allowedFrom } from '@handoff/protocol';
import { MemoryFlowStore } from '../../server/src/flows/memory-flow-store.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const FLOWS = 100_000;
const TOMBSTONE_MS = 60_000;
const MB = 1024 * 1024;
const WATCH_HASH = 'ab'.repeat(32);

function heapUsed(): number {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

describe('embedded mode memory', () => {
  it('100,000 cancelled flows are gone from the store and the heap after their tombstone, without any read', async () => {
    let now = Date.now();
    const clock = () => now;
    let onSweep: (() => void) | null = null;
    const store = new MemoryFlowStore({ clock, sweepIntervalMs: 5, onSweep: () => onSweep?.() });
    try {
      const baseline = heapUsed();

      for (let i = 0; i < FLOWS; i++) {
        const id = randomBytes(32).toString('base64url');
        const record = { kind: 'qr', id, state: 'pending', version: 1, createdAt: now, expiresAt: now + 120_000, watchTokenHash: WATCH_HASH } as const;
        await store.create(record, TOMBSTONE_MS);
        const done = await store.transition({ kind: 'qr', id, to: 'cancelled', from: allowedFrom('qr', 'cancelled'), now, tombstoneMs: TOMBSTONE_MS });
        if (!done.ok) throw new Error(`flow ${i} not cancelled: ${done.reason}`);
      }
      expect(store.size()).toBe(FLOWS);
      const grown = heapUsed() - baseline;
      // The measure sees the flows (else the bound below proves nothing).
      expect(grown).toBeGreaterThan(20 * MB);

      // The first timed sweep after the tombstone has passed (it drops everything due, in batches).
      now += TOMBSTONE_MS;
      await new Promise<void>((resolve) => {
        onSweep = resolve;
      });
      onSweep = null;

      const left = heapUsed() - baseline;
      expect(store.size()).toBe(0);
      expect(left, `grew ${(grown / MB).toFixed(1)} MB, ${(left / MB).toFixed(1)} MB left`).toBeLessThan(Math.max(2 * MB, grown / 10));
    } finally {
      await store.close();
    }
  });
});
