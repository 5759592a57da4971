/**
 * API_KEYS: parsed and validated at start (a bad value names the variable and never shows a key),
 * keys held as digests and compared in constant time against every configured key.
 */
import * as crypto from 'node:crypto';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import { ConfigError, loadConfig } from '../../server/src/config.js';
import { ApiKeys, apiKeysFromEnv } from '../../server/src/server-api/api-keys.js';

vi.mock('node:crypto', async (importOriginal) => {
  const original = await importOriginal<typeof import('node:crypto')>();
  return { ...original, timingSafeEqual: vi.fn(original.timingSafeEqual) };
});

const A = 'a'.repeat(31) + 'A';
const B = 'b'.repeat(40);
const C = 'c'.repeat(512);

/** The ConfigError `env` gives (fails the test if none). */
function refusal(env: Record<string, string>): ConfigError {
  try {
    apiKeysFromEnv(env);
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

describe('apiKeysFromEnv', () => {
  it('is null when API_KEYS is unset or blank (the server API is off)', () => {
    expect(apiKeysFromEnv({})).toBeNull();
    expect(apiKeysFromEnv({ API_KEYS: '  ' })).toBeNull();
    expect(loadConfig({}).apiKeys).toBeNull();
  });

  it('reads name:key entries, spaces around them ignored, and the per-key limit (default 600)', () => {
    const keys = apiKeysFromEnv({ API_KEYS: ` acme:${A} , ops_2:${B}` })!;
    expect(keys.names).toEqual(['acme', 'ops_2']);
    expect(keys.perMinute).toBe(600);
    expect(apiKeysFromEnv({ API_KEYS: `acme:${A}`, API_KEY_PER_MINUTE: '0' })!.perMinute).toBe(0);
    expect(loadConfig({ API_KEYS: `acme:${A}` }).apiKeys?.names).toEqual(['acme']);
  });

  it('keeps a colon inside the key', () => {
    const keys = apiKeysFromEnv({ API_KEYS: `acme:${A}:more` })!;
    expect(keys.authenticate(`${A}:more`)).toEqual({ name: 'acme' });
  });

  it('refuses bad entries, naming API_KEYS and the problem, never the key', () => {
    const cases: Array<[string, RegExp]> = [
      [`${A}`, /entry 1 of 1 is not name:key/],
      [`acme:${A},${B}`, /entry 2 of 2 is not name:key/],
      [`Acme:${A}`, /entry 1 of 1: the name must be/],
      [`:${A}`, /the name must be/],
      [`${'n'.repeat(33)}:${A}`, /the name must be/],
      [`${B}x:${A}`, /the name must be/],
      [`acme:${A},acme:${B}`, /"acme" is given twice/],
      [`acme:${A.slice(1)}`, /the key of "acme" is shorter than 32 characters/],
      [`acme:${C}x`, /the key of "acme" is longer than 512 characters/],
      [`acme:${A} ${A}`, /printable ASCII without spaces/],
      [`acme:${A},ops:${A}`, /"acme" and "ops" have the same key/],
    ];
    for (const [value, message] of cases) {
      const err = refusal({ API_KEYS: value });
      expect(err.variable, value).toBe('API_KEYS');
      expect(err.message, value).toMatch(message);
      for (const key of [A, A.slice(1), B, C]) expect(err.message).not.toContain(key);
    }
  });

  it('refuses a bad API_KEY_PER_MINUTE, even without API_KEYS', () => {
    expect(refusal({ API_KEY_PER_MINUTE: 'many' }).variable).toBe('API_KEY_PER_MINUTE');
    expect(refusal({ API_KEYS: `acme:${A}`, API_KEY_PER_MINUTE: '-1' }).variable).toBe('API_KEY_PER_MINUTE');
  });
});

describe('ApiKeys.authenticate', () => {
  const keys = new ApiKeys([
    { name: 'acme', key: A },
    { name: 'ops', key: B },
    { name: 'long', key: C },
  ]);
  const compare = vi.mocked(crypto.timingSafeEqual);
  beforeEach(() => {
    compare.mockClear();
  });

  it('names the key presented', () => {
    expect(keys.authenticate(A)).toEqual({ name: 'acme' });
    expect(keys.authenticate(B)).toEqual({ name: 'ops' });
    expect(keys.authenticate(C)).toEqual({ name: 'long' });
  });

  it('is null for anything else: missing, not a string, empty, short, over-long, a prefix or an extension of a key', () => {
    for (const presented of [undefined, null, 42, [A], '', A.slice(0, 31), `${A}x`, A.slice(0, -1) + 'B', `${C}c`, 'z'.repeat(10_000)]) {
      expect(keys.authenticate(presented)).toBeNull();
    }
  });

  it('compares the digest against every stored key, whether the first one matched or none did', () => {
    keys.authenticate(A);
    expect(compare).toHaveBeenCalledTimes(3);
    compare.mockClear();
    keys.authenticate('w'.repeat(40));
    expect(compare).toHaveBeenCalledTimes(3);
    // Digests, not keys: every comparison is of two 32-byte SHA-256 values.
    for (const [x, y] of compare.mock.calls) expect([(x as Buffer).length, (y as Buffer).length]).toEqual([32, 32]);
  });

  it('never shows a key or a digest when printed', () => {
    const printed = JSON.stringify({ apiKeys: keys });
    expect(printed).toBe(JSON.stringify({ apiKeys: { names: ['acme', 'ops', 'long'], perMinute: 600 } }));
  });
});
