import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { generateKeyPairSync } from 'node:crypto';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  calculateJwkThumbprint,
  createLocalJWKSet,
  createRemoteJWKSet,
  decodeProtectedHeader,
  jwtVerify,
  type JWK,
} from 'jose';
import { ConfigError } from '../../server/src/config.js';
import { AssertionSigner, assertionOptionsFromEnv, type AssertionOptions } from '../../server/src/identity/assertions.js';
import type { Principal } from '../../server/src/identity/principal.js';

const ISSUER = 'https://handoff.acme.example';
const AUDIENCE = 'https://acme.example';
const ana: Principal = { kind: 'app', id: 'acme|42', displayName: 'Ana Lima', avatarUrl: 'https://cdn.acme.example/ana.png' };

function pems(type: 'ec' | 'ed25519' | 'rsa', curve?: string) {
  const { privateKey, publicKey } =
    type === 'ec'
      ? generateKeyPairSync('ec', { namedCurve: curve ?? 'P-256' })
      : type === 'rsa'
        ? generateKeyPairSync('rsa', { modulusLength: 2048 })
        : generateKeyPairSync('ed25519');
  return {
    private: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    public: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    sec1: type === 'ec' ? privateKey.export({ type: 'sec1', format: 'pem' }).toString() : '',
  };
}

const p256 = pems('ec');
const ed = pems('ed25519');

function options(over: Partial<AssertionOptions> = {}): AssertionOptions & { signingKeyPem: string } {
  return { issuer: ISSUER, audience: AUDIENCE, ttlSeconds: 120, signingKeyPem: p256.private, ...over };
}

const verifyAgainst = (jwks: { keys: object[] }, token: string) =>
  jwtVerify(token, createLocalJWKSet(jwks as { keys: JWK[] }), { issuer: ISSUER, audience: AUDIENCE, algorithms: ['ES256', 'EdDSA'] });

afterEach(() => {
  vi.useRealTimers();
});

describe('assertions: configuration from the environment', () => {
  const defaults = { issuer: 'https://handoff.example' };

  it('is off (null) when no ASSERTION_* variable is set', () => {
    expect(assertionOptionsFromEnv({}, defaults)).toBeNull();
    expect(assertionOptionsFromEnv({ ASSERTION_AUDIENCE: '  ' }, defaults)).toBeNull();
  });

  it('reads the audience with the documented defaults', () => {
    expect(assertionOptionsFromEnv({ ASSERTION_AUDIENCE: AUDIENCE }, defaults)).toEqual({
      issuer: 'https://handoff.example',
      audience: AUDIENCE,
      ttlSeconds: 120,
    });
  });

  it('reads every variable', () => {
    const prev = pems('ed25519').public;
    const o = assertionOptionsFromEnv(
      {
        ASSERTION_AUDIENCE: AUDIENCE,
        ASSERTION_ISSUER: ISSUER,
        ASSERTION_TTL_SECONDS: '300',
        ASSERTION_SIGNING_KEY: p256.private,
        ASSERTION_PREVIOUS_KEYS: `${ed.public}\n${prev}`,
      },
      defaults,
    );
    expect(o).toEqual({
      issuer: ISSUER,
      audience: AUDIENCE,
      ttlSeconds: 300,
      signingKeyPem: p256.private,
      previousPublicKeysPem: [ed.public, prev],
    });
  });

  it('takes keys written on one line with \\n escapes, and an EC key in SEC1 form (as PKCS8)', () => {
    const oneLine = (pem: string) => pem.trim().replace(/\n/g, '\\n');
    const o = assertionOptionsFromEnv(
      { ASSERTION_AUDIENCE: AUDIENCE, ASSERTION_SIGNING_KEY: oneLine(p256.sec1), ASSERTION_PREVIOUS_KEYS: oneLine(ed.public) + '\\n' + oneLine(p256.public) },
      defaults,
    );
    expect(o?.signingKeyPem).toBe(p256.private);
    expect(o?.previousPublicKeysPem).toEqual([ed.public, p256.public]);
  });

  it('requires ASSERTION_SIGNING_KEY with NODE_ENV=production', () => {
    expect(() => assertionOptionsFromEnv({ ASSERTION_AUDIENCE: AUDIENCE, NODE_ENV: 'production' }, defaults)).toThrow(/^ASSERTION_SIGNING_KEY: is required when NODE_ENV=production/);
    expect(assertionOptionsFromEnv({ ASSERTION_AUDIENCE: AUDIENCE, NODE_ENV: 'production', ASSERTION_SIGNING_KEY: ed.private }, defaults)?.signingKeyPem).toBe(ed.private);
  });

  const encrypted = generateKeyPairSync('ec', { namedCurve: 'P-256' })
    .privateKey.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'pass-phrase' })
    .toString();

  it.each([
    ['ASSERTION_AUDIENCE', { ASSERTION_SIGNING_KEY: p256.private }],
    ['ASSERTION_AUDIENCE', { ASSERTION_TTL_SECONDS: '60' }],
    ['ASSERTION_TTL_SECONDS', { ASSERTION_AUDIENCE: AUDIENCE, ASSERTION_TTL_SECONDS: '9' }],
    ['ASSERTION_TTL_SECONDS', { ASSERTION_AUDIENCE: AUDIENCE, ASSERTION_TTL_SECONDS: '3601' }],
    ['ASSERTION_TTL_SECONDS', { ASSERTION_AUDIENCE: AUDIENCE, ASSERTION_TTL_SECONDS: '2m' }],
    ['ASSERTION_SIGNING_KEY', { ASSERTION_AUDIENCE: AUDIENCE, ASSERTION_SIGNING_KEY: 'not a key' }],
    ['ASSERTION_SIGNING_KEY', { ASSERTION_AUDIENCE: AUDIENCE, ASSERTION_SIGNING_KEY: p256.public }],
    ['ASSERTION_SIGNING_KEY', { ASSERTION_AUDIENCE: AUDIENCE, ASSERTION_SIGNING_KEY: pems('rsa').private }],
    ['ASSERTION_SIGNING_KEY', { ASSERTION_AUDIENCE: AUDIENCE, ASSERTION_SIGNING_KEY: pems('ec', 'P-384').private }],
    ['ASSERTION_SIGNING_KEY', { ASSERTION_AUDIENCE: AUDIENCE, ASSERTION_SIGNING_KEY: encrypted }],
    ['ASSERTION_SIGNING_KEY', { ASSERTION_AUDIENCE: AUDIENCE, ASSERTION_SIGNING_KEY: '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----' }],
    ['ASSERTION_PREVIOUS_KEYS', { ASSERTION_AUDIENCE: AUDIENCE, ASSERTION_PREVIOUS_KEYS: p256.private }],
    ['ASSERTION_PREVIOUS_KEYS', { ASSERTION_AUDIENCE: AUDIENCE, ASSERTION_PREVIOUS_KEYS: `${ed.public}\ngarbage` }],
    ['ASSERTION_PREVIOUS_KEYS', { ASSERTION_AUDIENCE: AUDIENCE, ASSERTION_PREVIOUS_KEYS: pems('rsa').public }],
    ['ASSERTION_PREVIOUS_KEYS', { ASSERTION_AUDIENCE: AUDIENCE, ASSERTION_PREVIOUS_KEYS: '-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----' }],
    ['ASSERTION_PREVIOUS_KEYS', { ASSERTION_AUDIENCE: AUDIENCE, ASSERTION_PREVIOUS_KEYS: Array(11).fill(ed.public).join('\n') }],
  ])('refuses a bad %s, naming it', (name, env) => {
    const run = () => assertionOptionsFromEnv(env, defaults);
    expect(run).toThrow(ConfigError);
    expect(run).toThrow(new RegExp(`^${name}:`));
  });

  it('never puts key material in its error messages', () => {
    const rsa = pems('rsa');
    const messages: string[] = [];
    for (const env of [
      { ASSERTION_SIGNING_KEY: rsa.private },
      { ASSERTION_SIGNING_KEY: p256.public },
      { ASSERTION_PREVIOUS_KEYS: p256.private },
      { ASSERTION_PREVIOUS_KEYS: rsa.public },
    ]) {
      try {
        assertionOptionsFromEnv({ ASSERTION_AUDIENCE: AUDIENCE, ...env }, defaults);
      } catch (err) {
        messages.push((err as Error).message);
      }
    }
    expect(messages).toHaveLength(4);
    for (const m of messages) expect(m).not.toMatch(/MII|MC4C|MCo/);
  });
});

describe('assertions: signing and the JWKS', () => {
  it.each([
    ['ES256', p256.private],
    ['EdDSA', ed.private],
  ])('signs a %s assertion that verifies against jwks() with every contract claim', async (alg, signingKeyPem) => {
    const signer = await AssertionSigner.create(options({ signingKeyPem }));
    const before = Math.floor(Date.now() / 1000);
    const { token, expiresAt, jti } = await signer.sign(ana, { amr: ['qr'], flow: 'flow-topic-1' });

    const { payload, protectedHeader } = await verifyAgainst(signer.jwks(), token);
    expect(protectedHeader).toEqual({ alg, kid: signer.kid, typ: 'JWT' });
    expect(payload).toEqual({
      iss: ISSUER,
      aud: AUDIENCE,
      sub: 'acme|42',
      jti,
      iat: expect.any(Number),
      exp: payload.iat! + 120,
      amr: ['qr'],
      flow: 'flow-topic-1',
      name: 'Ana Lima',
      picture: 'https://cdn.acme.example/ana.png',
    });
    expect(payload.iat).toBeGreaterThanOrEqual(before);
    expect(expiresAt).toBe(new Date(payload.exp! * 1000).toISOString());
  });

  it('leaves picture out when the user has none, and carries amr pwd', async () => {
    const signer = await AssertionSigner.create(options());
    const { token } = await signer.sign({ ...ana, avatarUrl: null }, { amr: ['pwd'], flow: 'f2' });
    const { payload } = await verifyAgainst(signer.jwks(), token);
    expect(payload).not.toHaveProperty('picture');
    expect(payload.amr).toEqual(['pwd']);
  });

  it('gives every assertion its own jti of at least 128 random bits', async () => {
    const signer = await AssertionSigner.create(options());
    const jtis = new Set<string>();
    for (let i = 0; i < 200; i++) jtis.add((await signer.sign(ana, { amr: ['qr'], flow: 'f' })).jti);
    expect(jtis.size).toBe(200);
    for (const jti of jtis) expect(Buffer.from(jti, 'base64url').length).toBeGreaterThanOrEqual(16);
  });

  it('publishes public keys only, kid = RFC 7638 thumbprint, alg and use sig', async () => {
    const signer = await AssertionSigner.create(options({ previousPublicKeysPem: [ed.public] }));
    const { keys } = signer.jwks() as { keys: JWK[] };
    expect(keys).toHaveLength(2);
    expect(keys[0]).toMatchObject({ kty: 'EC', crv: 'P-256', alg: 'ES256', use: 'sig', kid: signer.kid });
    expect(keys[1]).toMatchObject({ kty: 'OKP', crv: 'Ed25519', alg: 'EdDSA', use: 'sig' });
    for (const k of keys) {
      expect(k).not.toHaveProperty('d');
      const { kid, alg: _alg, use: _use, ...bare } = k;
      expect(kid).toBe(await calculateJwkThumbprint(bare, 'sha256'));
    }
  });

  it('does not let a caller change the published keys', async () => {
    const signer = await AssertionSigner.create(options());
    (signer.jwks().keys[0] as JWK).kid = 'tampered';
    expect((signer.jwks().keys[0] as JWK).kid).toBe(signer.kid);
  });

  it('after a rotation, an assertion signed with the previous key still verifies against jwks()', async () => {
    const before = await AssertionSigner.create(options({ signingKeyPem: p256.private }));
    const { token: old } = await before.sign(ana, { amr: ['qr'], flow: 'f-old' });

    const after = await AssertionSigner.create(options({ signingKeyPem: ed.private, previousPublicKeysPem: [p256.public] }));
    const { token: fresh } = await after.sign(ana, { amr: ['qr'], flow: 'f-new' });
    expect(decodeProtectedHeader(fresh).kid).toBe(after.kid);
    expect(after.kid).not.toBe(before.kid);

    await expect(verifyAgainst(after.jwks(), old)).resolves.toMatchObject({ payload: { flow: 'f-old' } });
    await expect(verifyAgainst(after.jwks(), fresh)).resolves.toMatchObject({ payload: { flow: 'f-new' } });
    // once the previous key is no longer published, its assertions are refused
    const later = await AssertionSigner.create(options({ signingKeyPem: ed.private }));
    await expect(verifyAgainst(later.jwks(), old)).rejects.toThrow();
  });

  it('publishes a previous key equal to the current one only once', async () => {
    const signer = await AssertionSigner.create(options({ previousPublicKeysPem: [p256.public, ed.public, ed.public] }));
    expect(signer.jwks().keys).toHaveLength(2);
  });

  it('is refused by a verifier once expired, or for another audience, or when altered', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const signer = await AssertionSigner.create(options({ ttlSeconds: 60 }));
    const { token } = await signer.sign(ana, { amr: ['qr'], flow: 'f' });
    const jwks = createLocalJWKSet(signer.jwks() as { keys: JWK[] });
    await expect(jwtVerify(token, jwks, { issuer: ISSUER, audience: 'https://other.example' })).rejects.toThrow();
    const [h, p, s] = token.split('.');
    const altered = `${h}.${Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(p, 'base64url').toString()), sub: 'mallory' })).toString('base64url')}.${s}`;
    await expect(verifyAgainst(signer.jwks(), altered)).rejects.toThrow();
    vi.setSystemTime(Date.now() + 61_000);
    await expect(verifyAgainst(signer.jwks(), token)).rejects.toThrow(/"exp" claim timestamp check failed/);
  });

  it('verifies through a real HTTP JWKS endpoint, as the app backend does', async () => {
    const signer = await AssertionSigner.create(options({ previousPublicKeysPem: [ed.public] }));
    const server = createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(signer.jwks())));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const url = new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}/.well-known/jwks.json`);
      const { token } = await signer.sign(ana, { amr: ['pwd'], flow: 'f' });
      const { payload } = await jwtVerify(token, createRemoteJWKSet(url), { issuer: ISSUER, audience: AUDIENCE });
      expect(payload.sub).toBe('acme|42');
    } finally {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it('makes a development key that it accepts (ES256, PKCS8), a new one each time', async () => {
    const a = await AssertionSigner.generateDevKeyPem();
    const b = await AssertionSigner.generateDevKeyPem();
    expect(a).toMatch(/^-----BEGIN PRIVATE KEY-----/);
    expect(a).not.toBe(b);
    const signer = await AssertionSigner.create(options({ signingKeyPem: a }));
    const { token } = await signer.sign(ana, { amr: ['qr'], flow: 'f' });
    expect(decodeProtectedHeader(token).alg).toBe('ES256');
    await expect(verifyAgainst(signer.jwks(), token)).resolves.toBeTruthy();
    expect(assertionOptionsFromEnv({ ASSERTION_AUDIENCE: AUDIENCE, ASSERTION_SIGNING_KEY: a }, { issuer: ISSUER })?.signingKeyPem?.trim()).toBe(a.trim());
  });

  it('refuses an unusable key without showing it', async () => {
    const rsa = pems('rsa');
    const err = await AssertionSigner.create(options({ signingKeyPem: rsa.private })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TypeError);
    expect((err as Error).message).toMatch(/unsupported key type rsa/);
    expect((err as Error).message).not.toMatch(/MII/);
    await expect(AssertionSigner.create(options({ previousPublicKeysPem: [rsa.public] }))).rejects.toThrow(TypeError);
  });
});
