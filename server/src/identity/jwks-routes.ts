import type { FastifyPluginAsync } from 'fastify';
import type { Handoff } from '../handoff.js';
import { Security } from '../http/schemas.js';

/** How long the app's backend may cache Handoff's JWKS, seconds (a rotation publishes the new key before using it). */
export const JWKS_MAX_AGE_SECONDS = 300;

/**
 * `GET /.well-known/jwks.json` (contract §7): the public keys of the assertions, the current one
 * and those still published after a rotation. Every node serves the same keys. Not registered with
 * ACCOUNTS=builtin (no assertions: 404).
 */
export const jwksRoutes: FastifyPluginAsync<{ handoff: Handoff }> = async (app, { handoff }) => {
  const jwks = handoff.identity.jwks();
  if (!jwks) return;
  app.get(
    '/.well-known/jwks.json',
    {
      schema: {
        summary: 'The public keys that verify assertions (JWKS)',
        operationId: 'getJwks',
        tags: ['identity'],
        security: Security.none,
        response: { 200: { type: 'object', properties: { keys: { type: 'array', items: { type: 'object', additionalProperties: true } } }, required: ['keys'] } },
      },
      config: { cacheControl: `public, max-age=${JWKS_MAX_AGE_SECONDS}` },
    },
    async () => jwks,
  );
};
