import type { Logger } from 'pino';
import type { Config } from '../config.js';
import type { IdentityParts } from '../core.js';
import type { Backend } from '../store/backend.js';
import { AppTokenVerifier } from './app-tokens.js';
import { AssertionSigner } from './assertions.js';

/**
 * The app-identity parts of this process (ACCOUNTS=app|both): the app-token verifier and the
 * assertion signer. Built before the capabilities because keys are loaded (and, without
 * ASSERTION_SIGNING_KEY, a development key is made). ACCOUNTS=builtin: none.
 */
export async function openIdentity(config: Config, backend: Backend, log: Logger): Promise<IdentityParts> {
  if (!config.appTokens || !config.assertions) return {};
  const jwksLog = log.child({ component: 'app-tokens' });
  const appTokens = new AppTokenVerifier({
    ...config.appTokens,
    // The app's JWKS is unreachable or broken: cached keys keep working; a new kid is 401.
    onJwksFailure: (err) => jwksLog.warn({ err: err.message }, "the app's JWKS could not be fetched; cached keys stay in use"),
  });
  const signingKeyPem = config.assertions.signingKeyPem ?? (await developmentKey(backend, log));
  const assertions = await AssertionSigner.create({ ...config.assertions, signingKeyPem });
  return { appTokens, assertions };
}

/**
 * A development signing key, for when ASSERTION_SIGNING_KEY is unset (never with
 * NODE_ENV=production: config refuses that). Embedded mode: made per process. Redis mode: the
 * first node stores one (SET NX) and every node uses that one, so /.well-known/jwks.json is the
 * same on every node and an assertion signed by one node verifies against any node's JWKS.
 */
async function developmentKey(backend: Backend, log: Logger): Promise<string> {
  log.warn('ASSERTION_SIGNING_KEY is not set: assertions are signed with a development key (set one in production; see docs/integration.md)');
  const made = await AssertionSigner.generateDevKeyPem();
  if (!backend.redis) return made;
  const key = backend.keys.assertionDevKey();
  await backend.redis.client.set(key, made, 'NX');
  const shared = await backend.redis.client.get(key);
  if (!shared) throw new Error('the shared development assertion key could not be read back from Redis');
  return shared;
}
