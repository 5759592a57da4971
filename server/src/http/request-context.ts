import type { FastifyRequest } from 'fastify';
import type { Requester } from '@handoff/protocol';
import type { Config } from '../config.js';
import { bearerToken } from '../users/jwt.js';
import type { UserService } from '../users/user-service.js';
import type { UserRecord } from '../users/user-store.js';

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

/** The user of the request's Bearer JWT; throws `unauthorized` when missing or invalid. */
export function requireUser(request: FastifyRequest, users: UserService): Promise<UserRecord> {
  return users.authenticate(bearerToken(request.headers.authorization));
}

/** The user of the Bearer JWT if one is given (throws `unauthorized` if it is given but bad). */
export async function optionalUser(request: FastifyRequest, users: UserService): Promise<UserRecord | undefined> {
  const token = bearerToken(request.headers.authorization);
  if (token === undefined && request.headers.authorization === undefined) return undefined;
  return users.authenticate(token);
}

/** The Watch-Token header, if present. */
export function watchTokenOf(request: FastifyRequest): string | undefined {
  const h = request.headers['watch-token'];
  return typeof h === 'string' ? h : undefined;
}
