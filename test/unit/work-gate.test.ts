import { describe, expect, it } from 'vitest';
import { WorkGate } from '../../server/src/http/work-gate.js';

const nextTurn = () => new Promise<void>((r) => setImmediate(r));
const full = () => new Error('full');

describe('WorkGate', () => {
  it('starts at most perTurn jobs per event-loop turn, in order, and lets other work run between', async () => {
    const gate = new WorkGate(2, 100, Infinity, full);
    const started: string[] = [];
    const jobs = ['a', 'b', 'c', 'd', 'e'].map((name) => gate.run(async () => void started.push(name)));
    // Two start in this turn; something else queued now runs before the next two.
    setImmediate(() => started.push('other'));
    await Promise.resolve();
    expect(started).toEqual(['a', 'b']);
    await Promise.all(jobs);
    expect(started).toEqual(['a', 'b', 'c', 'd', 'other', 'e']);
  });

  it('runs at most `concurrent` at once; a finished job lets the next one start', async () => {
    const gate = new WorkGate(10, 2, Infinity, full);
    let running = 0;
    let most = 0;
    const release: Array<() => void> = [];
    const jobs = Array.from({ length: 5 }, () =>
      gate.run(async () => {
        running++;
        most = Math.max(most, running);
        await new Promise<void>((r) => release.push(r));
        running--;
      }),
    );
    for (let finished = 0; finished < 5; finished++) {
      await expect.poll(() => release.length).toBeGreaterThan(finished);
      expect(running).toBeLessThanOrEqual(2);
      release[finished]();
    }
    await Promise.all(jobs);
    expect(most).toBe(2);
  });

  it('passes results and errors through, and frees its place on an error', async () => {
    const gate = new WorkGate(1, 1, Infinity, full);
    await expect(gate.run(async () => 42)).resolves.toBe(42);
    await expect(gate.run(async () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    await nextTurn();
    await expect(gate.run(async () => 'after')).resolves.toBe('after');
  });

  it('refuses at once past maxWaiting, and takes callers again once there is room', async () => {
    const gate = new WorkGate(1, 1, 2, full);
    const release: Array<() => void> = [];
    const job = () => gate.run(() => new Promise<void>((r) => release.push(r)));
    const running = job(); // runs
    const waiting = [job(), job()]; // wait: the list is now full
    await expect(job()).rejects.toThrow('full');
    await expect.poll(() => release.length).toBe(1);
    release[0]();
    await running;
    await expect.poll(() => release.length).toBe(2); // the first waiter runs: one place free again
    const third = job();
    release[1]();
    await expect.poll(() => release.length).toBe(3);
    release[2]();
    await expect.poll(() => release.length).toBe(4);
    release[3]();
    await Promise.all([...waiting, third]);
  });

  it('refuses bounds below 1', () => {
    expect(() => new WorkGate(0, 1, 1, full)).toThrow(RangeError);
    expect(() => new WorkGate(1, 0, 1, full)).toThrow(RangeError);
  });
});
