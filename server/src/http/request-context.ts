import type { FastifyRequest } from 'fastify';
import type { Requester } from '@handoff/protocol';
import type { Config } from '../config.js';
import type { Authenticator } from '../identity/identity.js';
import type { Principal } from '../identity/principal.js';
import { bearerToken } from '../users/jwt.js';

/** The server's public base URL: PUBLIC_URL, else the scheme and Host of this request. */
export function baseUrlOf(request: FastifyRequest, config: Config): string {
  if (config.publicUrl) return config.publicUrl;
  return `${request.protocol}://${request.host}`;
}

/** Who is asking, as shown to the phone. */
export function requesterOf(request: FastifyRequest): Requester {
  const ua = request.headers['user-agent'];
  return { ip: request.ip, userAgent: typeof ua === 'string' ? ua.slice(0, 512) : '', createdAt: new Date().toISOString() };
}

/** Who the request's Bearer token names (a built-in session or an app token); `unauthorized` when missing or invalid. */
export function requireUser(request: FastifyRequest, identity: Authenticator): Promise<Principal> {
  return identity.authenticate(bearerToken(request.headers.authorization));
}

/** Who the Bearer token names if one is given (throws `unauthorized` if it is given but bad). */
export async function optionalUser(request: FastifyRequest, identity: Authenticator): Promise<Principal | undefined> {
  const token = bearerToken(request.headers.authorization);
  if (token === undefined && request.headers.authorization === undefined) return undefined;
  return identity.authenticate(token);
}

/** The Watch-Token header, if present. */
export function watchTokenOf(request: FastifyRequest): string | undefined {
  const h = request.headers['watch-token'];
  return typeof h === 'string' ? h : undefined;
}
