import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { SignJWT, exportJWK, exportSPKI, generateKeyPair, type CryptoKey, type JWK, type JWTPayload } from 'jose';
import { ConfigError } from '../../server/src/config.js';
import { HandoffError } from '../../server/src/errors.js';
import {
  AppTokenVerifier,
  appTokenOptionsFromEnv,
  type AppTokenOptions,
} from '../../server/src/identity/app-tokens.js';

const ISSUER = 'https://acme.example';
const AUDIENCE = 'handoff';
const CLAIMS = { sub: 'sub', name: 'name', picture: 'picture' };
const SECRET = 'acme-shared-secret-0123456789-abcdefghijkl';

type Alg = 'RS256' | 'PS256' | 'ES256' | 'EdDSA';

interface Signer {
  alg: Alg;
  kid: string;
  privateKey: CryptoKey;
  publicKey: CryptoKey;
  jwk: JWK;
}

async function signer(alg: Alg, kid = `${alg}-${randomBytes(4).toString('hex')}`): Promise<Signer> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const jwk = { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' };
  return { alg, kid, privateKey, publicKey, jwk };
}

/** A token signed by `s`; `claims` override the defaults (set one to undefined to leave it out). */
async function token(
  s: { alg: string; kid?: string; privateKey: CryptoKey | Uint8Array },
  claims: Record<string, unknown> = {},
): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const body: JWTPayload = { iss: ISSUER, aud: AUDIENCE, sub: 'user-42', name: 'Ana', iat: now, exp: now + 3600, ...claims };
  for (const [k, v] of Object.entries(body)) if (v === undefined) delete body[k];
  return new SignJWT(body).setProtectedHeader({ alg: s.alg, ...(s.kid ? { kid: s.kid } : {}) }).sign(s.privateKey);
}

const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');

/** A real JWKS endpoint on 127.0.0.1 that counts its requests and can misbehave on demand. */
class JwksServer {
  keys: JWK[] = [];
  mode: 'ok' | '500' | 'garbage' | 'not-jwks' | 'slow' | 'huge' | 'redirect' = 'ok';
  fetches = 0;
  url = '';
  private server: Server = createServer((req, res) => this.answer(req, res));

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/.well-known/jwks.json`;
    return this;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private answer(_req: IncomingMessage, res: ServerResponse): void {
    this.fetches++;
    switch (this.mode) {
      case 'ok':
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: this.keys }));
        return;
      case '500':
        res.writeHead(500).end('oops');
        return;
      case 'garbage':
        res.writeHead(200, { 'content-type': 'application/json' }).end('<html>not json');
        return;
      case 'not-jwks':
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"keys":"nope"}');
        return;
      case 'huge':
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: this.keys, pad: 'x'.repeat(300_000) }));
        return;
      case 'redirect':
        res.writeHead(302, { location: 'https://evil.example/jwks.json' }).end();
        return;
      case 'slow':
        return; // never answers; the verifier's timeout must end the wait
    }
  }
}

function options(over: Partial<AppTokenOptions>): AppTokenOptions {
  return { issuer: ISSUER, audience: AUDIENCE, claims: CLAIMS, ...over };
}

async function expectUnauthorized(p: Promise<unknown>): Promise<HandoffError> {
  const err = await p.then(
    () => expect.unreachable('the token was accepted'),
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(HandoffError);
  expect((err as HandoffError).code).toBe('unauthorized');
  expect((err as HandoffError).status).toBe(401);
  return err as HandoffError;
}

/** Moves jose's clock (Date) forward; timers and sockets stay real. */
function advance(ms: number): void {
  vi.setSystemTime(Date.now() + ms);
}

describe('app tokens: configuration from the environment', () => {
  const base = { APP_JWT_ISSUER: ISSUER, APP_JWT_AUDIENCE: AUDIENCE };

  it('is off (null) when no key variable is set', () => {
    expect(appTokenOptionsFromEnv({})).toBeNull();
    expect(appTokenOptionsFromEnv({ APP_JWT_ISSUER: ISSUER, APP_JWKS_URL: '  ' })).toBeNull();
  });

  it('reads a JWKS URL with the documented defaults', () => {
    expect(appTokenOptionsFromEnv({ ...base, APP_JWKS_URL: 'https://acme.example/.well-known/jwks.json' })).toEqual({
      jwksUrl: 'https://acme.example/.well-known/jwks.json',
      issuer: ISSUER,
      audience: AUDIENCE,
      claims: { sub: 'sub', name: 'name', picture: 'picture' },
      jwksCooldownMs: 30_000,
      jwksTimeoutMs: 5_000,
      jwksCacheMaxAgeMs: 600_000,
    });
  });

  it('reads the claim names and the JWKS timings', () => {
    const o = appTokenOptionsFromEnv({
      ...base,
      APP_JWT_SECRET: SECRET,
      APP_JWT_SUB_CLAIM: 'uid',
      APP_JWT_NAME_CLAIM: 'https://acme.example/display_name',
      APP_JWT_PICTURE_CLAIM: 'avatar',
      APP_JWKS_COOLDOWN_MS: '5000',
      APP_JWKS_TIMEOUT_MS: '2000',
      APP_JWKS_CACHE_MAX_AGE_MS: '60000',
    });
    expect(o).toMatchObject({
      secret: SECRET,
      claims: { sub: 'uid', name: 'https://acme.example/display_name', picture: 'avatar' },
      jwksCooldownMs: 5000,
      jwksTimeoutMs: 2000,
      jwksCacheMaxAgeMs: 60000,
    });
  });

  it('reads a PEM public key, also written on one line with \\n escapes', async () => {
    const { publicKey } = await generateKeyPair('ES256', { extractable: true });
    const pem = await exportSPKI(publicKey);
    expect(appTokenOptionsFromEnv({ ...base, APP_JWT_PUBLIC_KEY: pem })?.publicKeyPem).toBe(pem.trim());
    const oneLine = pem.trim().replace(/\n/g, '\\n');
    expect(appTokenOptionsFromEnv({ ...base, APP_JWT_PUBLIC_KEY: oneLine })?.publicKeyPem).toBe(pem.trim());
  });

  const jwks = 'https://acme.example/jwks.json';
  const ecPem = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'pem' }).toString();
  const p384Pem = generateKeyPairSync('ec', { namedCurve: 'P-384' }).publicKey.export({ type: 'spki', format: 'pem' }).toString();
  const rsa1024Pem = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ type: 'spki', format: 'pem' }).toString();
  const privatePem = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();

  it.each([
    ['APP_JWT_PUBLIC_KEY', { APP_JWKS_URL: jwks, APP_JWT_PUBLIC_KEY: ecPem }],
    ['APP_JWT_SECRET', { APP_JWKS_URL: jwks, APP_JWT_SECRET: SECRET }],
    ['APP_JWT_SECRET', { APP_JWT_PUBLIC_KEY: ecPem, APP_JWT_SECRET: SECRET }],
    ['APP_JWT_SECRET', { APP_JWT_SECRET: 'x'.repeat(31) }],
    ['APP_JWT_SECRET', { APP_JWT_SECRET: 'é'.repeat(15) }], // 30 bytes, 15 characters
    ['APP_JWT_PUBLIC_KEY', { APP_JWT_PUBLIC_KEY: 'not a pem' }],
    ['APP_JWT_PUBLIC_KEY', { APP_JWT_PUBLIC_KEY: '-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----' }],
    ['APP_JWT_PUBLIC_KEY', { APP_JWT_PUBLIC_KEY: privatePem }],
    ['APP_JWT_PUBLIC_KEY', { APP_JWT_PUBLIC_KEY: p384Pem }],
    ['APP_JWT_PUBLIC_KEY', { APP_JWT_PUBLIC_KEY: rsa1024Pem }],
    ['APP_JWKS_URL', { APP_JWKS_URL: 'not a url' }],
    ['APP_JWKS_URL', { APP_JWKS_URL: 'ftp://acme.example/jwks.json' }],
    ['APP_JWKS_URL', { APP_JWKS_URL: 'http://acme.example/jwks.json', NODE_ENV: 'production' }],
    ['APP_JWKS_URL', { APP_JWKS_URL: 'https://user:pw@acme.example/jwks.json' }],
    ['APP_JWKS_URL', { APP_JWKS_URL: 'https://acme.example/jwks.json#keys' }],
    ['APP_JWT_SUB_CLAIM', { APP_JWKS_URL: jwks, APP_JWT_SUB_CLAIM: 'exp' }],
    ['APP_JWT_NAME_CLAIM', { APP_JWKS_URL: jwks, APP_JWT_NAME_CLAIM: 'display name' }],
    ['APP_JWT_PICTURE_CLAIM', { APP_JWKS_URL: jwks, APP_JWT_PICTURE_CLAIM: 'iss' }],
    ['APP_JWKS_COOLDOWN_MS', { APP_JWKS_URL: jwks, APP_JWKS_COOLDOWN_MS: '10' }],
    ['APP_JWKS_TIMEOUT_MS', { APP_JWKS_URL: jwks, APP_JWKS_TIMEOUT_MS: 'soon' }],
    ['APP_JWKS_CACHE_MAX_AGE_MS', { APP_JWKS_URL: jwks, APP_JWKS_CACHE_MAX_AGE_MS: '0' }],
  ])('refuses a bad %s, naming it', (name, env) => {
    const run = () => appTokenOptionsFromEnv({ ...base, ...env });
    expect(run).toThrow(ConfigError);
    expect(run).toThrow(new RegExp(`^${name}:`));
  });

  it.each(['APP_JWT_ISSUER', 'APP_JWT_AUDIENCE'])('requires %s with a key source', (name) => {
    const env: Record<string, string> = { ...base, APP_JWKS_URL: jwks };
    delete env[name];
    expect(() => appTokenOptionsFromEnv(env)).toThrow(new RegExp(`^${name}: is required when APP_JWKS_URL is set`));
  });

  it('allows http to a loopback host in production, and to any host outside it', () => {
    for (const url of ['http://localhost:4000/jwks.json', 'http://127.0.0.1:4000/jwks.json', 'http://[::1]:4000/jwks.json']) {
      expect(appTokenOptionsFromEnv({ ...base, NODE_ENV: 'production', APP_JWKS_URL: url })?.jwksUrl).toBe(url);
    }
    expect(appTokenOptionsFromEnv({ ...base, APP_JWKS_URL: 'http://acme:4000/jwks.json' })?.jwksUrl).toBe('http://acme:4000/jwks.json');
  });

  it('never puts the secret or the key in its error messages', () => {
    const short = 'short-secret-value-1234';
    const messages: string[] = [];
    for (const env of [
      { APP_JWT_SECRET: short },
      { APP_JWT_PUBLIC_KEY: privatePem },
      { APP_JWT_SECRET: SECRET, APP_JWKS_URL: jwks },
      { APP_JWKS_URL: 'https://user:hunter2hunter2@acme.example/jwks.json' },
    ]) {
      try {
        appTokenOptionsFromEnv({ ...base, ...env });
      } catch (err) {
        messages.push((err as Error).message);
      }
    }
    expect(messages).toHaveLength(4);
    for (const m of messages) {
      expect(m).not.toContain(short);
      expect(m).not.toContain(SECRET);
      expect(m).not.toContain('hunter2');
      expect(m).not.toMatch(/MII|BEGIN/);
    }
  });
});

describe('app tokens: verification with the app JWKS', () => {
  let jwks: JwksServer;
  const signers = {} as Record<Alg, Signer>;

  beforeAll(async () => {
    for (const alg of ['RS256', 'PS256', 'ES256', 'EdDSA'] as const) signers[alg] = await signer(alg);
  });

  beforeEach(async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    jwks = await new JwksServer().start();
    jwks.keys = Object.values(signers).map((s) => s.jwk);
  });

  afterEach(async () => {
    vi.useRealTimers();
    await jwks.stop();
  });

  const verifier = (over: Partial<AppTokenOptions> = {}) => new AppTokenVerifier(options({ jwksUrl: jwks.url, ...over }));

  it.each(['RS256', 'PS256', 'ES256', 'EdDSA'] as const)('accepts a %s token and gives the app principal', async (alg) => {
    const v = verifier();
    const t = await token(signers[alg], { sub: 'u-1', name: 'Ana Lima', picture: 'https://cdn.acme.example/a.png' });
    await expect(v.verify(t)).resolves.toEqual({ kind: 'app', id: 'u-1', displayName: 'Ana Lima', avatarUrl: 'https://cdn.acme.example/a.png' });
    expect(jwks.fetches).toBe(1);
  });

  it('fetches the JWKS once and then serves every known key from the cache', async () => {
    const v = verifier();
    for (let i = 0; i < 20; i++) {
      for (const s of Object.values(signers)) await v.verify(await token(s));
    }
    expect(jwks.fetches).toBe(1);
  });

  it('refuses alg none', async () => {
    const now = Math.floor(Date.now() / 1000);
    const t = `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ iss: ISSUER, aud: AUDIENCE, sub: 'u', exp: now + 60 })}.`;
    await expectUnauthorized(verifier().verify(t));
    expect(jwks.fetches).toBe(0);
  });

  it('refuses an HS256 token signed with a public key as the secret (algorithm confusion)', async () => {
    const es = signers.ES256;
    const asText = new TextEncoder().encode(JSON.stringify(es.jwk));
    const asPem = new TextEncoder().encode(await exportSPKI(es.publicKey));
    await expectUnauthorized(verifier().verify(await token({ alg: 'HS256', kid: es.kid, privateKey: asText })));
    await expectUnauthorized(verifier().verify(await token({ alg: 'HS256', kid: es.kid, privateKey: asPem })));
    expect(jwks.fetches).toBe(0);
  });

  it('refuses a token of another issuer before any JWKS fetch, whatever its kid', async () => {
    const v = verifier();
    const stranger = await signer('ES256', 'kid-of-the-stranger');
    jwks.keys.push(stranger.jwk); // even a key the JWKS holds is bound to APP_JWT_ISSUER
    for (let i = 0; i < 20; i++) {
      await expectUnauthorized(v.verify(await token({ ...stranger, kid: randomBytes(8).toString('hex') }, { iss: 'https://evil.example' })));
    }
    await expectUnauthorized(v.verify(await token(stranger, { iss: 'https://evil.example' })));
    await expectUnauthorized(v.verify(await token(stranger, { iss: undefined })));
    expect(jwks.fetches).toBe(0);
  });

  it('refuses a token for another audience', async () => {
    await expectUnauthorized(verifier().verify(await token(signers.ES256, { aud: 'someone-else' })));
    await expectUnauthorized(verifier().verify(await token(signers.ES256, { aud: undefined })));
  });

  it('refuses an expired token, allowing 30 seconds of clock skew', async () => {
    const now = Math.floor(Date.now() / 1000);
    const v = verifier();
    await expect(v.verify(await token(signers.ES256, { exp: now - 20 }))).resolves.toMatchObject({ id: 'user-42' });
    await expectUnauthorized(v.verify(await token(signers.ES256, { exp: now - 40 })));
  });

  it('refuses a token whose nbf is in the future (beyond the skew)', async () => {
    const now = Math.floor(Date.now() / 1000);
    const v = verifier();
    await expectUnauthorized(v.verify(await token(signers.ES256, { nbf: now + 120 })));
    await expect(v.verify(await token(signers.ES256, { nbf: now + 20 }))).resolves.toMatchObject({ id: 'user-42' });
  });

  it('refuses a token without exp', async () => {
    await expectUnauthorized(verifier().verify(await token(signers.ES256, { exp: undefined })));
  });

  it('refuses a token signed by a key it does not know, with a known kid', async () => {
    const impostor = await signer('ES256', signers.ES256.kid);
    await expectUnauthorized(verifier().verify(await token(impostor)));
  });

  it('refuses an unknown kid with at most one refetch', async () => {
    const v = verifier();
    await v.verify(await token(signers.ES256));
    advance(31_000); // past the cooldown: an unknown kid may refetch once
    const stranger = await signer('ES256', 'not-in-the-jwks');
    await expectUnauthorized(v.verify(await token(stranger)));
    await expectUnauthorized(v.verify(await token(stranger)));
    expect(jwks.fetches).toBe(2);
  });

  it('fetches at most once for 200 tokens with random kids (cooldown)', async () => {
    const v = verifier({ jwksCooldownMs: 60_000 });
    const stranger = await signer('ES256');
    const tokens = await Promise.all(Array.from({ length: 200 }, () => token({ ...stranger, kid: randomBytes(12).toString('hex') })));
    await Promise.all(tokens.slice(0, 100).map((t) => expectUnauthorized(v.verify(t))));
    for (const t of tokens.slice(100)) await expectUnauthorized(v.verify(t));
    expect(jwks.fetches).toBe(1);
    await expect(v.verify(await token(signers.RS256))).resolves.toMatchObject({ kind: 'app' });
    expect(jwks.fetches).toBe(1);
  });

  it('never hammers a JWKS endpoint that is down with a flood of random kids', async () => {
    const v = verifier({ jwksCooldownMs: 60_000 });
    await v.verify(await token(signers.ES256));
    jwks.mode = '500';
    advance(61_000); // the cooldown is over: the next unknown kid may try once
    const stranger = await signer('ES256');
    for (let i = 0; i < 200; i++) {
      await expectUnauthorized(v.verify(await token({ ...stranger, kid: randomBytes(12).toString('hex') })));
    }
    expect(jwks.fetches).toBe(2);
    await expect(v.verify(await token(signers.ES256))).resolves.toMatchObject({ kind: 'app' });
    expect(jwks.fetches).toBe(2);
  });

  it.each(['500', 'garbage', 'not-jwks', 'huge', 'redirect'] as const)(
    'answers 401, not 500, while the JWKS answers %s and no key was ever fetched',
    async (mode) => {
      jwks.mode = mode;
      const failures: Error[] = [];
      const v = verifier({ onJwksFailure: (e) => failures.push(e) });
      await expectUnauthorized(v.verify(await token(signers.ES256)));
      expect(jwks.fetches).toBe(1);
      expect(failures).toHaveLength(1);
    },
  );

  it('answers 401 within the timeout while the JWKS does not answer', async () => {
    jwks.mode = 'slow';
    const v = verifier({ jwksTimeoutMs: 200 });
    const started = performance.now();
    await expectUnauthorized(v.verify(await token(signers.ES256)));
    expect(performance.now() - started).toBeLessThan(5_000);
    expect(jwks.fetches).toBe(1);
  });

  it.each(['500', 'garbage', 'slow'] as const)('keeps the cached keys working past their max age while the JWKS answers %s', async (mode) => {
    const v = verifier({ jwksCooldownMs: 1_000, jwksCacheMaxAgeMs: 5_000, jwksTimeoutMs: 200 });
    await v.verify(await token(signers.PS256));
    jwks.mode = mode;
    advance(6_000); // the cache is stale: jose refetches, the fetch fails, the last good keys stay
    await expect(v.verify(await token(signers.PS256))).resolves.toMatchObject({ kind: 'app' });
    expect(jwks.fetches).toBe(2);
    // a kid the cache never had is refused, and does not reach the endpoint within the cooldown
    await expectUnauthorized(v.verify(await token(await signer('ES256'))));
    await expect(v.verify(await token(signers.EdDSA))).resolves.toMatchObject({ kind: 'app' });
    expect(jwks.fetches).toBe(2);
  });

  it('picks up a rotation with no restart: a new key once the cooldown allows, the old one refused once dropped and the cache expired', async () => {
    const v = verifier({ jwksCooldownMs: 1_000, jwksCacheMaxAgeMs: 10_000 });
    const old = signers.RS256;
    jwks.keys = [old.jwk];
    await v.verify(await token(old));

    const next = await signer('RS256', 'rotated-2');
    jwks.keys = [old.jwk, next.jwk];
    await expectUnauthorized(v.verify(await token(next))); // within the cooldown: no refetch yet
    expect(jwks.fetches).toBe(1);
    advance(1_500);
    await expect(v.verify(await token(next))).resolves.toMatchObject({ kind: 'app' });
    expect(jwks.fetches).toBe(2);

    jwks.keys = [next.jwk]; // the app drops the old key
    await expect(v.verify(await token(old))).resolves.toMatchObject({ kind: 'app' }); // still cached
    advance(10_500);
    await expectUnauthorized(v.verify(await token(old)));
    await expect(v.verify(await token(next))).resolves.toMatchObject({ kind: 'app' });
    expect(jwks.fetches).toBe(3);
  });

  it('refuses a huge token without parsing it or fetching the JWKS', async () => {
    const v = verifier();
    const huge = await token(signers.ES256, { pad: 'x'.repeat(9_000) });
    expect(huge.length).toBeGreaterThan(8192);
    await expectUnauthorized(v.verify(huge));
    await expectUnauthorized(v.verify(`${'a'.repeat(5000)}.${'b'.repeat(5000)}.c`));
    expect(jwks.fetches).toBe(0);
  });

  it.each([
    ['undefined', undefined],
    ['a number', 42],
    ['an object', { token: 'x' }],
    ['an empty string', ''],
    ['not a JWT', 'hello'],
    ['two segments', 'aGVsbG8.d29ybGQ'],
    ['a header that is not JSON', 'bm90IGpzb24.e30.c2ln'],
  ])('refuses %s', async (_, value) => {
    await expectUnauthorized(verifier().verify(value));
    expect(jwks.fetches).toBe(0);
  });
});

describe('app tokens: keys from a PEM or a secret', () => {
  it.each([
    ['RS256', 'rsa'],
    ['PS256', 'rsa'],
    ['ES256', 'ec'],
    ['EdDSA', 'ed25519'],
  ] as const)('accepts %s with a %s PEM public key', async (alg, _type) => {
    const s = await signer(alg);
    const v = new AppTokenVerifier(options({ publicKeyPem: await exportSPKI(s.publicKey) }));
    await expect(v.verify(await token(s))).resolves.toEqual({ kind: 'app', id: 'user-42', displayName: 'Ana', avatarUrl: null });
  });

  it('refuses a token signed with another algorithm than the PEM key allows', async () => {
    const es = await signer('ES256');
    const rs = await signer('RS256');
    const v = new AppTokenVerifier(options({ publicKeyPem: await exportSPKI(es.publicKey) }));
    await expectUnauthorized(v.verify(await token(rs)));
  });

  it('refuses an HS256 token signed with the configured PEM text as the secret (algorithm confusion)', async () => {
    const s = await signer('RS256');
    const pem = await exportSPKI(s.publicKey);
    const v = new AppTokenVerifier(options({ publicKeyPem: pem }));
    await expectUnauthorized(v.verify(await token({ alg: 'HS256', privateKey: new TextEncoder().encode(pem) })));
    await expectUnauthorized(v.verify(await token({ alg: 'HS256', privateKey: new TextEncoder().encode(pem.trim()) })));
  });

  it('accepts HS256 with the secret', async () => {
    const v = new AppTokenVerifier(options({ secret: SECRET }));
    const t = await token({ alg: 'HS256', privateKey: new TextEncoder().encode(SECRET) });
    await expect(v.verify(t)).resolves.toEqual({ kind: 'app', id: 'user-42', displayName: 'Ana', avatarUrl: null });
  });

  it('refuses HS256 signed with another secret, and any key algorithm, when configured with a secret', async () => {
    const v = new AppTokenVerifier(options({ secret: SECRET }));
    await expectUnauthorized(v.verify(await token({ alg: 'HS256', privateKey: new TextEncoder().encode(`${SECRET}!`) })));
    await expectUnauthorized(v.verify(await token({ alg: 'HS512', privateKey: new TextEncoder().encode(SECRET) })));
    await expectUnauthorized(v.verify(await token(await signer('ES256'))));
  });

  it('refuses alg none with a secret', async () => {
    const now = Math.floor(Date.now() / 1000);
    const t = `${b64({ alg: 'none' })}.${b64({ iss: ISSUER, aud: AUDIENCE, sub: 'u', exp: now + 60 })}.`;
    await expectUnauthorized(new AppTokenVerifier(options({ secret: SECRET })).verify(t));
  });
});

describe('app tokens: the claims that name the user', () => {
  const key = new TextEncoder().encode(SECRET);
  const hs = { alg: 'HS256', privateKey: key };
  const v = new AppTokenVerifier(options({ secret: SECRET }));

  it('uses sub as the display name when there is no name', async () => {
    await expect(v.verify(await token(hs, { sub: 'acme|77', name: undefined }))).resolves.toEqual({
      kind: 'app',
      id: 'acme|77',
      displayName: 'acme|77',
      avatarUrl: null,
    });
    await expect(v.verify(await token(hs, { name: 42 }))).resolves.toMatchObject({ displayName: 'user-42' });
    await expect(v.verify(await token(hs, { name: ' \n ' }))).resolves.toMatchObject({ displayName: 'user-42' });
  });

  it('trims a name, removes its control characters and cuts it at 200 characters', async () => {
    await expect(v.verify(await token(hs, { name: '  Ana\u0000 Lima\n ' }))).resolves.toMatchObject({ displayName: 'Ana Lima' });
    const long = await v.verify(await token(hs, { name: '😀'.repeat(300) }));
    expect(Array.from(long.displayName)).toHaveLength(200);
    expect(long.displayName).toBe('😀'.repeat(200));
  });

  it.each([
    ['missing', undefined],
    ['empty', ''],
    ['a number', 42],
    ['longer than 255 characters', 'u'.repeat(256)],
    ['with a control character', 'user\n42'],
  ])('refuses a token whose sub is %s', async (_, sub) => {
    await expectUnauthorized(v.verify(await token(hs, { sub })));
  });

  it('accepts a sub of 255 characters', async () => {
    await expect(v.verify(await token(hs, { sub: 'u'.repeat(255) }))).resolves.toMatchObject({ id: 'u'.repeat(255) });
  });

  it.each([
    ['javascript:alert(1)', null],
    ['data:image/png;base64,AAAA', null],
    ['/relative.png', null],
    ['https://user:pw@cdn.example/a.png', null],
    [`https://cdn.example/${'a'.repeat(2100)}`, null],
    ['http://cdn.example/a.png', 'http://cdn.example/a.png'],
    ['https://cdn.example/a b.png', 'https://cdn.example/a%20b.png'],
  ])('keeps picture %s only when it is an http(s) URL', async (picture, expected) => {
    await expect(v.verify(await token(hs, { picture }))).resolves.toMatchObject({ avatarUrl: expected });
  });

  it('reads the configured claim names, literally (no dotted paths)', async () => {
    const mapped = new AppTokenVerifier(
      options({ secret: SECRET, claims: { sub: 'uid', name: 'https://acme.example/name', picture: 'avatar' } }),
    );
    const t = await token(hs, {
      sub: 'ignored',
      uid: 'acme-7',
      name: 'ignored too',
      'https://acme.example/name': 'Bea',
      avatar: 'https://cdn.acme.example/bea.png',
    });
    await expect(mapped.verify(t)).resolves.toEqual({ kind: 'app', id: 'acme-7', displayName: 'Bea', avatarUrl: 'https://cdn.acme.example/bea.png' });
    await expectUnauthorized(mapped.verify(await token(hs, { uid: undefined })));
  });

  it('does not read inherited properties as claims', async () => {
    const odd = new AppTokenVerifier(options({ secret: SECRET, claims: { sub: 'sub', name: 'constructor', picture: 'toString' } }));
    await expect(odd.verify(await token(hs))).resolves.toEqual({ kind: 'app', id: 'user-42', displayName: 'user-42', avatarUrl: null });
  });
});

describe('app tokens: nothing secret in errors', () => {
  it('never puts the token, the secret or the key in an error or a JWKS failure report', async () => {
    const jwks = await new JwksServer().start();
    try {
      const s = await signer('ES256');
      jwks.keys = [s.jwk];
      const failures: Error[] = [];
      const withJwks = new AppTokenVerifier(options({ jwksUrl: jwks.url, jwksTimeoutMs: 200, onJwksFailure: (e) => failures.push(e) }));
      const withSecret = new AppTokenVerifier(options({ secret: SECRET }));
      const now = Math.floor(Date.now() / 1000);
      const bad = [
        await token(s, { exp: now - 3600 }),
        await token(s, { aud: 'x' }),
        await token({ alg: 'HS256', privateKey: new TextEncoder().encode(SECRET) }, { exp: now - 3600 }),
        await token({ alg: 'HS256', privateKey: new TextEncoder().encode(SECRET) }, { sub: 'a\nb' }),
        `${b64({ alg: 'none' })}.${b64({ iss: ISSUER })}.`,
        'x'.repeat(9000),
      ];
      jwks.mode = 'garbage';
      const errors: unknown[] = [];
      for (const t of bad) {
        for (const v of [withJwks, withSecret]) {
          errors.push(await v.verify(t).catch((e: unknown) => e));
        }
      }
      expect(failures.length).toBeGreaterThan(0);
      for (const err of [...errors, ...failures]) {
        const text = `${(err as Error).message} ${JSON.stringify(err)} ${String((err as Error).stack)} ${String((err as Error).cause ?? '')}`;
        for (const t of bad) {
          expect(text).not.toContain(t);
          for (const part of t.split('.').filter((p) => p.length > 8)) expect(text).not.toContain(part);
        }
        expect(text).not.toContain(SECRET);
      }
      for (const err of errors) expect(err).toMatchObject({ code: 'unauthorized', message: 'A valid bearer token is required.' });
    } finally {
      await jwks.stop();
    }
  });
});
