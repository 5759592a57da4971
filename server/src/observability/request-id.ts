import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { FastifyServerOptions } from 'fastify';

/** Header that carries a request's id, in and out (lower case, as Node.js presents headers). */
export const REQUEST_ID_HEADER = 'x-request-id';

/** Longest incoming `X-Request-Id` that is kept; a longer one is replaced by a fresh id. */
export const MAX_REQUEST_ID_LENGTH = 128;

/**
 * What an incoming id may be made of: letters, digits and `. _ ~ : + / = -` (UUIDs, ULIDs,
 * W3C trace ids, base64 values), 1 to 128 characters. Nothing that could break a log line or a
 * header, and never an attacker's 10 KB header.
 */
const SAFE_REQUEST_ID = new RegExp(`^[A-Za-z0-9._~:+/=-]{1,${MAX_REQUEST_ID_LENGTH}}$`);

/**
 * The request's id: the incoming `X-Request-Id` when it is a safe value (a proxy's or a
 * client's id, so one id follows a request through every hop), else a fresh random UUID. A header
 * sent twice arrives joined by `, ` and so is replaced too.
 */
export function requestIdOf(req: Pick<IncomingMessage, 'headers'>): string {
  const given = req.headers[REQUEST_ID_HEADER];
  return typeof given === 'string' && SAFE_REQUEST_ID.test(given) ? given : randomUUID();
}

/**
 * The Fastify options that set request ids (spread them into `Fastify({...})`): `genReqId` is
 * `requestIdOf`; `requestIdHeader` is off because Fastify would take the header unchecked;
 * every log line of a request carries the id as `reqId` (Fastify's default label). The id is echoed in the response's
 * `X-Request-Id` by the `httpObservability` plugin.
 */
export function requestIdOptions(): Pick<FastifyServerOptions, 'genReqId' | 'requestIdHeader'> {
  return { genReqId: requestIdOf, requestIdHeader: false };
}
