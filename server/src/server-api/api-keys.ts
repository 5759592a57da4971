import { createHash, timingSafeEqual } from 'node:crypto';
import { ConfigError, envInt } from '../lib/env.js';

/** Shortest key API_KEYS accepts (contract §7). */
export const MIN_API_KEY_LENGTH = 32;
/** Longest key API_KEYS accepts; a longer `X-Api-Key` header is refused before it is hashed. */
export const MAX_API_KEY_LENGTH = 512;
/** What a key's name may be: it labels metrics and log lines, so short and plain. */
const NAME = /^[a-z0-9_-]{1,32}$/;
/** What a key may be made of: printable ASCII without spaces or commas (HTTP headers trim spaces; commas separate entries). */
const KEY_CHARS = /^[\x21-\x2b\x2d-\x7e]+$/;
/** Default of API_KEY_PER_MINUTE. */
const DEFAULT_PER_MINUTE = 600;

type Env = Record<string, string | undefined>;

/** One configured key: its name and the SHA-256 digest of the key (the key itself is not kept). */
interface StoredKey {
  name: string;
  digest: Buffer;
}

function sha256(value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest();
}

/**
 * The server API's keys (API_KEYS): each a name (`[a-z0-9_-]{1,32}`, labels metrics and logs) and
 * the SHA-256 digest of its key. Only digests are held, so a heap dump shows no key; comparing
 * digests of equal length with `timingSafeEqual`, against every stored key whatever matched,
 * takes the same time for any presented key of an accepted length.
 */
export class ApiKeys {
  private readonly stored: readonly StoredKey[];

  constructor(
    keys: ReadonlyArray<{ name: string; key: string }>,
    /** Requests one key may make per minute (API_KEY_PER_MINUTE, default 600; 0: no limit). */
    readonly perMinute: number = DEFAULT_PER_MINUTE,
  ) {
    this.stored = keys.map(({ name, key }) => ({ name, digest: sha256(key) }));
  }

  /** The names of the configured keys, in the order given. */
  get names(): string[] {
    return this.stored.map((k) => k.name);
  }

  /**
   * The key `presented` (an `X-Api-Key` header value) names, or null: for anything that is not a
   * string of MIN_API_KEY_LENGTH–MAX_API_KEY_LENGTH characters, and for a key nobody configured.
   * Every stored digest is compared, in constant time, whether or not an earlier one matched.
   */
  authenticate(presented: unknown): { name: string } | null {
    if (typeof presented !== 'string' || presented.length < MIN_API_KEY_LENGTH || presented.length > MAX_API_KEY_LENGTH) return null;
    const digest = sha256(presented);
    let found: string | null = null;
    for (const key of this.stored) {
      const equal = timingSafeEqual(digest, key.digest);
      found = equal && found === null ? key.name : found;
    }
    return found === null ? null : { name: found };
  }

  /** Never shows the digests (e.g. when a config is printed). */
  toJSON(): { names: string[]; perMinute: number } {
    return { names: this.names, perMinute: this.perMinute };
  }
}

/**
 * API_KEYS (comma-separated `name:key`; names `[a-z0-9_-]{1,32}`, unique; keys of at least 32
 * printable characters, no two alike) and API_KEY_PER_MINUTE (default 600, 0: no limit), or null
 * when API_KEYS is unset or blank (the server API is then off and its routes answer 404). A bad
 * value throws ConfigError naming the variable and the entry; its message never contains a key.
 */
export function apiKeysFromEnv(env: Env): ApiKeys | null {
  const perMinute = envInt(env, 'API_KEY_PER_MINUTE', DEFAULT_PER_MINUTE, 0, 1_000_000);
  const raw = env.API_KEYS?.trim();
  if (!raw) return null;
  const keys: Array<{ name: string; key: string }> = [];
  const entries = raw.split(',').map((s) => s.trim());
  entries.forEach((entry, i) => {
    const where = `entry ${i + 1} of ${entries.length}`;
    const sep = entry.indexOf(':');
    // Nothing of an entry is quoted until its name is known to be a name: a misplaced key must not reach a log.
    if (sep < 0) throw new ConfigError('API_KEYS', `${where} is not name:key`);
    const name = entry.slice(0, sep).trim();
    const key = entry.slice(sep + 1).trim();
    if (!NAME.test(name)) throw new ConfigError('API_KEYS', `${where}: the name must be 1 to 32 characters of a-z, 0-9, _ and -`);
    if (keys.some((k) => k.name === name)) throw new ConfigError('API_KEYS', `the name "${name}" is given twice`);
    if (key.length < MIN_API_KEY_LENGTH) {
      throw new ConfigError('API_KEYS', `the key of "${name}" is shorter than ${MIN_API_KEY_LENGTH} characters`);
    }
    if (key.length > MAX_API_KEY_LENGTH) {
      throw new ConfigError('API_KEYS', `the key of "${name}" is longer than ${MAX_API_KEY_LENGTH} characters`);
    }
    if (!KEY_CHARS.test(key)) {
      throw new ConfigError('API_KEYS', `the key of "${name}" must be printable ASCII without spaces or commas`);
    }
    const twin = keys.find((k) => k.key === key);
    if (twin) throw new ConfigError('API_KEYS', `"${twin.name}" and "${name}" have the same key`);
    keys.push({ name, key });
  });
  return new ApiKeys(keys, perMinute);
}
