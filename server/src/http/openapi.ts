/**
 * The OpenAPI 3.0.3 document of the HTTP routes, served at `GET /docs/openapi.json`, and the
 * shared schemas the routes reference (`FlowState`, `ErrorBody`, `User`, `Session`).
 *
 * @fastify/swagger builds the document from the route schemas that also validate requests and
 * serialize answers, so the two cannot drift. Each route declares its `operationId`, `tags` and
 * `security`; credentials are expressed as security schemes (`bearer`, `watchToken`), never as
 * header parameters. test/integration/openapi.test.ts validates the document with
 * @apidevtools/swagger-parser and lints it with Redocly's recommended rules.
 *
 * Register it before the routes: @fastify/swagger learns the routes from an `onRoute` hook.
 */
import swagger from '@fastify/swagger';
import type { FastifyPluginAsync, FastifySchema } from 'fastify';
import fp from 'fastify-plugin';
import { SHARED_SCHEMAS } from './schemas.js';

export interface OpenApiOptions {
  /** `PUBLIC_URL` (config.publicUrl): the document's server. Default (null): `/`, the origin the document was fetched from. */
  publicUrl: string | null;
}

/** The security schemes routes name in their `security`. */
const SECURITY_SCHEMES = {
  bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: 'A session token from POST /v1/sessions or a redeemed flow.' },
  watchToken: { type: 'apiKey', in: 'header', name: 'Watch-Token', description: 'The secret returned once when the flow was created.' },
  apiKey: { type: 'apiKey', in: 'header', name: 'X-Api-Key', description: 'A key of API_KEYS, for the app’s backend (the server API; its routes answer 404 without API_KEYS).' },
} as const;

/** Request headers that carry credentials: described by SECURITY_SCHEMES, so left out of the parameters. */
const CREDENTIAL_HEADERS = new Set(['authorization', SECURITY_SCHEMES.watchToken.name.toLowerCase(), SECURITY_SCHEMES.apiKey.name.toLowerCase()]);

const TAGS = [
  { name: 'qr', description: 'QR login: a browser shows a code, a logged-in app scans and confirms it.' },
  { name: 'flows', description: 'Read, long-poll and redeem a flow (QR or async login).' },
  { name: 'sessions', description: 'Log in; the current user.' },
  { name: 'users', description: 'Self-service registration.' },
  { name: 'verification-codes', description: 'One-time codes by email or SMS.' },
  { name: 'approvals', description: 'Push-to-approve: the user’s phone is pushed the login request and approves it with number matching.' },
  { name: 'server', description: 'The server API, for the app’s backend (X-Api-Key): QR flows on behalf of its users.' },
  { name: 'operations', description: 'Liveness, readiness and metrics, for operators.' },
  { name: 'identity', description: 'The keys that verify assertions (ACCOUNTS=app|both).' },
];

interface ObjectSchema {
  properties?: Record<string, unknown>;
  required?: string[];
}

/** The route schema as the document shows it: without the credential headers (the route's `security` says them). */
function withoutCredentialHeaders({ schema, url }: { schema: FastifySchema; url: string }): { schema: FastifySchema; url: string } {
  const headers = schema.headers as ObjectSchema | undefined;
  if (!headers?.properties) return { schema, url };
  const properties = Object.fromEntries(Object.entries(headers.properties).filter(([name]) => !CREDENTIAL_HEADERS.has(name.toLowerCase())));
  const kept = Object.keys(properties).length === 0 ? undefined : { ...headers, properties, required: headers.required?.filter((n) => n in properties) };
  return { schema: { ...schema, headers: kept }, url };
}

/**
 * Drop from the built document the security schemes no operation names: `apiKey` is declared only
 * where the server API exists (API_KEYS set), since an unused component is a lint warning.
 */
function dropUnusedSchemes(doc: { paths?: object; components?: { securitySchemes?: object } }): void {
  const components = doc.components;
  if (!components?.securitySchemes) return;
  const used = new Set<string>();
  for (const item of Object.values(doc.paths ?? {}) as unknown[]) {
    for (const op of Object.values(item ?? {}) as unknown[]) {
      const security = (op as { security?: unknown } | null)?.security;
      if (Array.isArray(security)) for (const requirement of security) for (const name of Object.keys(requirement ?? {})) used.add(name);
    }
  }
  // A new object: the one built may be SECURITY_SCHEMES itself, which every server shares.
  components.securitySchemes = Object.fromEntries(Object.entries(components.securitySchemes).filter(([name]) => used.has(name)));
}

const openapiPlugin: FastifyPluginAsync<OpenApiOptions> = async (app, opts) => {
  for (const schema of SHARED_SCHEMAS) app.addSchema(schema);
  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'Handoff',
        version: '1.0.0',
        description: 'Real-time login state. See docs/protocol.md for the socket protocols (Socket.IO, /v1/ws).',
        license: { name: 'MIT', url: 'https://opensource.org/licenses/MIT' },
      },
      servers: [{ url: opts.publicUrl ?? '/', description: opts.publicUrl ? 'PUBLIC_URL' : 'The origin this document was fetched from.' }],
      tags: TAGS,
      components: { securitySchemes: SECURITY_SCHEMES },
    },
    // Shared schemas keep their own names under components.schemas (the default names them def-0, def-1…).
    refResolver: { buildLocalReference: (json, _baseUri, _fragment, i) => (typeof json.$id === 'string' ? json.$id : `def-${i}`) },
    transform: withoutCredentialHeaders,
    transformObject: (built) => {
      if (!('openapiObject' in built)) return built.swaggerObject;
      dropUnusedSchemes(built.openapiObject);
      return built.openapiObject;
    },
  });
  app.get('/docs/openapi.json', { schema: { hide: true }, config: { cacheControl: 'no-cache' } }, async () => app.swagger());
};

/** The plugin: shared schemas, @fastify/swagger, and `GET /docs/openapi.json`. Not encapsulated (fastify-plugin). */
export const openapi = fp(openapiPlugin, { name: 'handoff-openapi', fastify: '5.x' });
