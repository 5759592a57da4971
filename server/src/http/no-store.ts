/**
 * `Cache-Control` for every HTTP answer, set in one place (contract §2: status reads carry
 * `Cache-Control: no-store`; so do errors).
 *
 * - Every answer is `no-store` by default, so a new route cannot forget it.
 * - A route whose successful answers may be cached declares it in its options:
 *   `config: { cacheControl: 'private, max-age=300' }` (the QR image, the demo pages).
 * - An error answer (status >= 400) is always `no-store`, whatever the route declares or the
 *   handler set: an error is about this moment, never something to keep.
 *
 * Handlers do not set `Cache-Control` themselves; one that does (on a success) is left alone.
 */
import type { FastifyPluginAsync } from 'fastify';
import fp from 'fastify-plugin';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The `Cache-Control` of this route's successful answers (default `no-store`); errors are always `no-store`. */
    cacheControl?: string;
  }
}

/** The `Cache-Control` of every answer whose route declares none, and of every error. */
export const NO_STORE = 'no-store';

const noStorePlugin: FastifyPluginAsync = async (app) => {
  app.addHook('onSend', (request, reply, payload, done) => {
    if (reply.statusCode >= 400) reply.header('cache-control', NO_STORE);
    else if (!reply.hasHeader('cache-control')) reply.header('cache-control', request.routeOptions.config?.cacheControl ?? NO_STORE);
    done(null, payload);
  });
};

/** The plugin: one `onSend` hook on the instance it is registered on, not encapsulated (fastify-plugin): register it on the root. */
export const noStore = fp(noStorePlugin, { name: 'handoff-no-store', fastify: '5.x' });
