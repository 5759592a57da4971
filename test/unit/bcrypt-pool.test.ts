import { readdirSync, readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { BcryptPool } from '../../server/src/users/bcrypt-pool.js';
import { Passwords } from '../../server/src/users/passwords.js';

/** Nice values of this process's threads (Linux), by thread id. */
function threadNices(): number[] {
  return readdirSync('/proc/self/task').map((tid) => {
    try {
      // Field 19 of /proc/<pid>/task/<tid>/stat is the nice value; field 2 (the name) may hold spaces.
      return Number(readFileSync(`/proc/self/task/${tid}/stat`, 'utf8').split(') ')[1].split(' ')[16]);
    } catch {
      return 0; // the thread ended between readdir and read
    }
  });
}

describe('BcryptPool', () => {
  const pools: BcryptPool[] = [];
  const open = (size: number) => {
    const pool = new BcryptPool(size);
    pools.push(pool);
    return pool;
  };
  afterEach(async () => {
    await Promise.all(pools.splice(0).map((p) => p.close()));
  });

  it('hashes and compares like bcrypt', async () => {
    const pool = open(2);
    const hash = await pool.hash('correct horse', 4);
    expect(hash).toMatch(/^\$2b\$04\$/);
    await expect(pool.compare('correct horse', hash)).resolves.toBe(true);
    await expect(pool.compare('wrong horse', hash)).resolves.toBe(false);
  });

  it('answers every call when more are in flight than it has threads', async () => {
    const pool = open(2);
    const hash = await pool.hash('pw', 4);
    const results = await Promise.all(Array.from({ length: 12 }, (_, i) => pool.compare(i % 2 ? 'pw' : 'nope', hash)));
    expect(results).toEqual(Array.from({ length: 12 }, (_, i) => i % 2 === 1));
  });

  it('turns a bcrypt error into a rejection and keeps working', async () => {
    const pool = open(1);
    await expect(pool.hash('pw', 99)).rejects.toThrow();
    await expect(pool.compare('pw', await pool.hash('pw', 4))).resolves.toBe(true);
  });

  it.runIf(process.platform === 'linux')('runs its threads below the event loop priority', async () => {
    const before = threadNices().filter((n) => n === 10).length;
    const pool = open(2);
    await Promise.all([pool.hash('a', 4), pool.hash('b', 4)]);
    expect(threadNices().filter((n) => n === 10).length).toBe(before + 2);
    await pool.close();
    expect(threadNices().filter((n) => n === 10).length).toBe(before);
  });

  it('rejects calls waiting at close, and starts again when used after it', async () => {
    const pool = open(1);
    const hash = await pool.hash('pw', 4);
    const slow = Array.from({ length: 4 }, () => pool.hash('pw', 8));
    const settled = Promise.allSettled(slow);
    await pool.close();
    const outcomes = await settled;
    expect(outcomes.some((o) => o.status === 'rejected')).toBe(true);
    await expect(pool.compare('pw', hash)).resolves.toBe(true);
  });
});

describe('Passwords', () => {
  it('verifies a known hash, refuses a wrong password and an unknown user alike', async () => {
    const passwords = new Passwords(4, 1);
    try {
      const hash = await passwords.hash('s3cret-pass');
      await expect(passwords.verify('s3cret-pass', hash)).resolves.toBe(true);
      await expect(passwords.verify('other', hash)).resolves.toBe(false);
      await expect(passwords.verify('s3cret-pass', null)).resolves.toBe(false);
    } finally {
      await passwords.close();
    }
  });
});

describe('Passwords at close', () => {
  it('a dummy hash still being made when the pool closes is no unhandled rejection, and is made again later', async () => {
    const rejections: unknown[] = [];
    const onRejection = (reason: unknown) => rejections.push(reason);
    process.on('unhandledRejection', onRejection);
    const passwords = new Passwords(4, 1);
    try {
      const hash = await passwords.hash('s3cret-pass');
      // The first verify queues the dummy hash behind its own compare; closing now drops it.
      await expect(passwords.verify('s3cret-pass', hash)).resolves.toBe(true);
      await passwords.close();
      await new Promise((r) => setImmediate(r));
      expect(rejections).toEqual([]);
      await expect(passwords.verify('s3cret-pass', null)).resolves.toBe(false);
    } finally {
      process.off('unhandledRejection', onRejection);
      await passwords.close();
    }
  });
});
