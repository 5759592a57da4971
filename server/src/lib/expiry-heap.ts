/**
 * A binary min-heap of (time, item): the memory stores' index of what expires next, so a sweep
 * touches only what is due (O(log n) each), never every record.
 *
 * Entries are never removed from the middle: when an item's time changes the store pushes it
 * again, and the old entry goes stale. The store says which entries are current (`isCurrent`):
 * stale ones are dropped when they surface, and `compact` rebuilds the heap without them once
 * they outnumber the current ones, so stale entries never hold more than half the heap.
 */
export class ExpiryHeap<T> {
  private times: number[] = [];
  private items: T[] = [];

  /** @param isCurrent Whether an entry still stands for its item (false: the item moved or is gone). */
  constructor(private readonly isCurrent: (item: T, at: number) => boolean) {}

  /** Entries held, stale ones included. */
  get size(): number {
    return this.times.length;
  }

  /** Index `item` at time `at`. */
  push(at: number, item: T): void {
    this.times.push(at);
    this.items.push(item);
    this.up(this.times.length - 1);
  }

  /** The current entry that comes first, or undefined; stale entries met on the way are dropped. */
  peek(): { at: number; item: T } | undefined {
    while (this.times.length > 0) {
      const at = this.times[0];
      const item = this.items[0];
      if (this.isCurrent(item, at)) return { at, item };
      this.removeTop();
    }
    return undefined;
  }

  /** Remove and return the first current entry if its time is <= `now`. */
  popDue(now: number): { at: number; item: T } | undefined {
    const top = this.peek();
    if (!top || top.at > now) return undefined;
    this.removeTop();
    return top;
  }

  /**
   * Drop every stale entry when they are more than half of the heap (and at least `slack`):
   * O(n), paid once per n/2 stale pushes, so O(1) amortised. Returns whether it compacted.
   */
  compact(current: number, slack = 1024): boolean {
    const stale = this.times.length - current;
    if (stale <= current || stale < slack) return false;
    const times: number[] = [];
    const items: T[] = [];
    for (let i = 0; i < this.times.length; i++) {
      if (!this.isCurrent(this.items[i], this.times[i])) continue;
      times.push(this.times[i]);
      items.push(this.items[i]);
    }
    this.times = times;
    this.items = items;
    for (let i = (times.length >> 1) - 1; i >= 0; i--) this.down(i);
    return true;
  }

  /** Forget everything. */
  clear(): void {
    this.times = [];
    this.items = [];
  }

  private removeTop(): void {
    const lastTime = this.times.pop()!;
    const lastItem = this.items.pop()!;
    if (this.times.length === 0) return;
    this.times[0] = lastTime;
    this.items[0] = lastItem;
    this.down(0);
  }

  private up(i: number): void {
    const { times, items } = this;
    const at = times[i];
    const item = items[i];
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (times[parent] <= at) break;
      times[i] = times[parent];
      items[i] = items[parent];
      i = parent;
    }
    times[i] = at;
    items[i] = item;
  }

  private down(i: number): void {
    const { times, items } = this;
    const n = times.length;
    const at = times[i];
    const item = items[i];
    for (;;) {
      let child = 2 * i + 1;
      if (child >= n) break;
      if (child + 1 < n && times[child + 1] < times[child]) child++;
      if (times[child] >= at) break;
      times[i] = times[child];
      items[i] = items[child];
      i = child;
    }
    times[i] = at;
    items[i] = item;
  }
}
