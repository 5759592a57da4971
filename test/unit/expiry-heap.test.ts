import { describe, expect, it } from 'vitest';
import { ExpiryHeap } from '../../server/src/lib/expiry-heap.js';

/** Items with a current time each, as a store keeps them; a heap entry is current when its time matches. */
function setUp() {
  const current = new Map<string, number>();
  const heap = new ExpiryHeap<string>((item, at) => current.get(item) === at);
  const set = (item: string, at: number) => {
    current.set(item, at);
    heap.push(at, item);
  };
  const drain = (now: number) => {
    const out: string[] = [];
    for (let top = heap.popDue(now); top; top = heap.popDue(now)) out.push(top.item);
    return out;
  };
  return { current, heap, set, drain };
}

describe('ExpiryHeap', () => {
  it('pops due items in time order, and nothing that is not due yet', () => {
    const { set, drain } = setUp();
    const times = Array.from({ length: 500 }, (_, i) => (i * 7919) % 1000);
    times.forEach((at, i) => set(`i${i}`, at));
    const due = drain(499);
    expect(due).toHaveLength(times.filter((t) => t <= 499).length);
    const popped = due.map((item) => times[Number(item.slice(1))]);
    expect(popped).toEqual([...popped].sort((a, b) => a - b));
    expect(drain(499)).toEqual([]);
  });

  it('skips an entry whose item moved to another time, and finds it at the new one', () => {
    const { set, drain } = setUp();
    set('a', 10);
    set('b', 20);
    set('a', 30);
    expect(drain(25)).toEqual(['b']);
    expect(drain(30)).toEqual(['a']);
  });

  it('compaction keeps stale entries to at most half the heap', () => {
    const { current, heap, set } = setUp();
    for (let i = 0; i < 10_000; i++) set(`i${i}`, 1_000_000 + i);
    for (let i = 0; i < 9_000; i++) current.delete(`i${i}`); // gone without being popped
    expect(heap.compact(current.size)).toBe(true);
    expect(heap.size).toBe(1_000);
    expect(heap.peek()).toEqual({ at: 1_009_000, item: 'i9000' });
  });
});
