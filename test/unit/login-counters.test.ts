import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { MemoryLoginCounters } from '../../server/src/login/login-counters.js';

describe('MemoryLoginCounters', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('a job run again within the window is counted once', async () => {
    const counters = new MemoryLoginCounters({ rememberMs: 60_000 });
    expect(await counters.markTaken('a')).toBe(1);
    vi.advanceTimersByTime(59_000);
    expect(await counters.markTaken('a')).toBeNull();
    expect(await counters.markTaken('b')).toBe(2);
    expect(await counters.taken()).toBe(2);
  });

  it('forgets the taken markers of 10,000 logins after the window, with no further take', async () => {
    const counters = new MemoryLoginCounters({ rememberMs: 60_000 });
    for (let i = 0; i < 10_000; i++) await counters.markTaken(`login-${i}`);
    expect(counters.size()).toBe(10_000);
    vi.advanceTimersByTime(60_000);
    expect(counters.size()).toBe(0);
    expect(await counters.taken()).toBe(10_000);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('keeps the markers still inside the window when older ones go', async () => {
    const counters = new MemoryLoginCounters({ rememberMs: 60_000 });
    await counters.markTaken('old');
    vi.advanceTimersByTime(30_000);
    await counters.markTaken('new');
    vi.advanceTimersByTime(30_000);
    expect(counters.size()).toBe(1);
    expect(await counters.markTaken('new')).toBeNull();
    vi.advanceTimersByTime(30_000);
    expect(counters.size()).toBe(0);
  });
});
