/**
 * `@handoff/client-sdk/server` (Node only): what the app's backend needs when Handoff runs in front
 * of it (`ACCOUNTS=app|both`, contract §7). The browser's `session()` gives an assertion
 * (`tokenType: 'assertion'`), a short-lived JWT signed by Handoff; the browser posts it to the
 * backend, which verifies it here and then mints its own session:
 *
 *   const user = await verifyAssertion(body.assertion, { jwksUrl, issuer, audience });
 *   setYourSessionCookie(user.sub);
 */
import {
  createRemoteJWKSet,
  errors as joseErrors,
  jwtVerify,
  type JWTHeaderParameters,
  type FlattenedJWSInput,
  type JWTVerifyGetKey,
} from 'jose';

/** Where to find Handoff's keys and what the assertion must say. */
export interface VerifyAssertionOptions {
  /** Handoff's JWKS: `https://handoff.example.com/.well-known/jwks.json`. Fetched once and cached per URL; refetched on an unknown `kid` (30 s cooldown). */
  jwksUrl: string | URL;
  /** ASSERTION_ISSUER of the Handoff deployment (the `iss` claim must equal it). */
  issuer: string;
  /** Your app's ASSERTION_AUDIENCE (the `aud` claim must contain it). */
  audience: string;
  /**
   * Called with each valid assertion's `jti` and the time (epoch s) until which it could still be
   * accepted (its `exp` plus the clock tolerance): return true if you have seen it (a replay), else
   * remember it until then. Default: an in-memory set per process (`createMemoryJtiStore()`), fine for
   * one backend process; with several, use a shared store (e.g. Redis `SET jti 1 EXAT exp NX`).
   */
  seen?: (jti: string, exp: number) => boolean | Promise<boolean>;
  /** Clock tolerance for `exp`, `nbf` and `iat`, seconds (default 30). */
  clockToleranceSeconds?: number;
}

/** A verified assertion: who Handoff vouches for, and how they logged in. */
export interface HandoffAssertion {
  /** Your app's user id (the `sub` of the app token the user confirmed with, or `user.id` from your credentials endpoint). */
  sub: string;
  /** Display name (the `sub` when the app gave none). */
  name: string;
  /** Avatar URL, or null. */
  picture: string | null;
  /** How the user logged in: `['qr']` or `['pwd']`. */
  amr: string[];
  /** The Handoff flow (topic, e.g. `qr:…`) that ended in this assertion. */
  flow: string;
  /** The assertion's unique id (refused the second time). */
  jti: string;
  /** Expiry, epoch seconds. */
  exp: number;
  /** Issue time, epoch seconds. */
  iat: number;
}

/** Why an assertion was refused: `invalid` (signature, algorithm, kid, iss, aud, claims), `expired`, `replayed` (its jti was seen). */
export type AssertionErrorCode = 'invalid' | 'expired' | 'replayed';

/** A refused assertion: answer 401 and let the browser start over. */
export class AssertionError extends Error {
  /** Why it was refused. */
  readonly code: AssertionErrorCode;

  constructor(code: AssertionErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'AssertionError';
    this.code = code;
  }
}

/** The algorithms Handoff signs assertions with (contract §7); anything else (RS256, HS256, `none`, …) is refused. */
const ALGORITHMS = ['ES256', 'EdDSA'];
/** A longer token is no assertion of Handoff's (they are well under 2 KiB); refused before any parsing. */
const MAX_TOKEN_LENGTH = 8 * 1024;
const DEFAULT_CLOCK_TOLERANCE_SECONDS = 30;

/** One remote key set per JWKS URL, for the life of the process (jose caches the keys inside it). */
const keySets = new Map<string, JWTVerifyGetKey>();

/** Handoff's keys at `jwksUrl`: a key set that needs a `kid` and tells an unreachable JWKS apart from a bad token. */
function keySetFor(jwksUrl: string | URL): JWTVerifyGetKey {
  const url = new URL(jwksUrl);
  const href = url.href;
  let keySet = keySets.get(href);
  if (!keySet) {
    const remote = createRemoteJWKSet(url);
    keySet = async (header: JWTHeaderParameters, token: FlattenedJWSInput) => {
      if (typeof header.kid !== 'string' || header.kid === '') throw new AssertionError('invalid', 'The assertion names no key (kid).');
      try {
        return await remote(header, token);
      } catch (err) {
        // No key with that kid (after a refetch past the cooldown): the token's fault.
        if (err instanceof joseErrors.JWKSNoMatchingKey || err instanceof joseErrors.JWKSMultipleMatchingKeys) throw err;
        // The JWKS could not be fetched or read: not the token's fault, so no AssertionError.
        throw new Error(`Handoff's JWKS (${href}) could not be fetched or read.`, { cause: err });
      }
    };
    keySets.set(href, keySet);
  }
  return keySet;
}

/** The per-process default `seen`, made on first use. */
let defaultSeen: ((jti: string, exp: number) => boolean) | undefined;

/**
 * Verify an assertion (ES256 or EdDSA only, kid from the JWKS, iss, aud, exp, iat, one-time jti).
 * Throws an `AssertionError` with a `code` ('invalid' | 'expired' | 'replayed') for a refused
 * assertion (answer 401); any other error (Handoff's JWKS unreachable, your `seen` failing) is
 * passed on (answer 503).
 */
export async function verifyAssertion(token: string, options: VerifyAssertionOptions): Promise<HandoffAssertion> {
  const tolerance = options.clockToleranceSeconds ?? DEFAULT_CLOCK_TOLERANCE_SECONDS;
  if (typeof token !== 'string' || token.length === 0 || token.length > MAX_TOKEN_LENGTH) {
    throw new AssertionError('invalid', 'The assertion is missing or too long.');
  }
  let payload: Record<string, unknown>;
  try {
    ({ payload } = await jwtVerify(token, keySetFor(options.jwksUrl), {
      algorithms: ALGORITHMS,
      issuer: options.issuer,
      audience: options.audience,
      clockTolerance: tolerance,
      requiredClaims: ['sub', 'jti', 'iat', 'exp'],
    }));
  } catch (err) {
    if (err instanceof AssertionError) throw err;
    if (err instanceof joseErrors.JWTExpired) throw new AssertionError('expired', 'The assertion has expired.', { cause: err });
    if (err instanceof joseErrors.JOSEError) throw new AssertionError('invalid', `The assertion is not valid: ${err.message}`, { cause: err });
    // jose answers a malformed token (not three base64url parts, bad JSON) with JOSE errors above;
    // what is left is the JWKS wrapper's error or a programming error: passed on.
    throw err;
  }
  const assertion = claims(payload, tolerance);
  const seen = options.seen ?? (defaultSeen ??= createMemoryJtiStore());
  if (await seen(assertion.jti, assertion.exp + tolerance)) {
    throw new AssertionError('replayed', 'The assertion was used already.');
  }
  return assertion;
}

/** The assertion's claims, checked beyond what jose checks: types, `iat` not in the future, `amr` and `flow`. */
function claims(p: Record<string, unknown>, tolerance: number): HandoffAssertion {
  const invalid = (what: string) => new AssertionError('invalid', `The assertion's ${what} claim is missing or wrong.`);
  const { sub, jti, iat, exp, amr, flow, name, picture } = p;
  if (typeof sub !== 'string' || sub === '') throw invalid('sub');
  if (typeof jti !== 'string' || jti === '') throw invalid('jti');
  if (typeof exp !== 'number') throw invalid('exp');
  if (typeof iat !== 'number' || iat > Date.now() / 1000 + tolerance || iat > exp) throw invalid('iat');
  if (!Array.isArray(amr) || !amr.every((m) => typeof m === 'string')) throw invalid('amr');
  if (typeof flow !== 'string') throw invalid('flow');
  if (name !== undefined && typeof name !== 'string') throw invalid('name');
  if (picture !== undefined && picture !== null && typeof picture !== 'string') throw invalid('picture');
  return { sub, name: name ?? sub, picture: picture ?? null, amr, flow, jti, exp, iat };
}

/** Options of `createMemoryJtiStore`. */
export interface MemoryJtiStoreOptions {
  /** The clock, epoch ms (default `Date.now`); for tests. */
  now?: () => number;
}

/** A jti store in process memory (see `createMemoryJtiStore`); `size` is the number of jtis it holds. */
export type MemoryJtiStore = ((jti: string, exp: number) => boolean) & { readonly size: number };

/**
 * A jti store in process memory, entries forgotten after their exp (bounded, no leak): it holds only
 * the jtis of verified assertions still within their lifetime, and drops the expired ones as it goes
 * (a min-heap on exp, so each call costs O(log n)). One process only: several backend processes
 * need a shared store.
 */
export function createMemoryJtiStore(options: MemoryJtiStoreOptions = {}): MemoryJtiStore {
  const now = options.now ?? Date.now;
  const held = new Map<string, number>();
  const heap: Array<{ jti: string; exp: number }> = [];

  const forgetExpired = (nowSeconds: number): void => {
    while (heap.length > 0 && heap[0].exp <= nowSeconds) {
      const { jti, exp } = pop(heap);
      if (held.get(jti) === exp) held.delete(jti);
    }
  };

  const seen = (jti: string, exp: number): boolean => {
    const nowSeconds = now() / 1000;
    forgetExpired(nowSeconds);
    if (held.has(jti)) return true;
    if (exp > nowSeconds) {
      held.set(jti, exp);
      push(heap, { jti, exp });
    }
    return false;
  };
  return Object.defineProperty(seen, 'size', { get: () => held.size, enumerable: true }) as MemoryJtiStore;
}

/** Min-heap on `exp`: add. */
function push(heap: Array<{ jti: string; exp: number }>, item: { jti: string; exp: number }): void {
  heap.push(item);
  let i = heap.length - 1;
  while (i > 0) {
    const parent = (i - 1) >> 1;
    if (heap[parent].exp <= heap[i].exp) break;
    [heap[parent], heap[i]] = [heap[i], heap[parent]];
    i = parent;
  }
}

/** Min-heap on `exp`: take the smallest (the heap is not empty). */
function pop(heap: Array<{ jti: string; exp: number }>): { jti: string; exp: number } {
  const top = heap[0];
  const last = heap.pop() as { jti: string; exp: number };
  if (heap.length > 0) {
    heap[0] = last;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let min = i;
      if (l < heap.length && heap[l].exp < heap[min].exp) min = l;
      if (r < heap.length && heap[r].exp < heap[min].exp) min = r;
      if (min === i) break;
      [heap[min], heap[i]] = [heap[i], heap[min]];
      i = min;
    }
  }
  return top;
}
