import { STATUS_CODES, maxHeaderSize } from 'node:http';
import type { Socket } from 'node:net';
import type { ConnectionError, FastifyBaseLogger, FastifyError, FastifyServerOptions } from 'fastify';
import { HandoffError } from '../errors.js';
import { classify, sendError } from './error-handler.js';

/** Longest path parameter the router matches, characters (Fastify's default, 100); longer is `400 bad_request`. */
export const MAX_PARAM_LENGTH = 100;

/**
 * How long a connection refused at the HTTP parser stays half-open, ms: the answer is sent and the
 * server's side closed (FIN) at once, and what the client still sends is read and dropped for at
 * most this long, so the close is clean instead of a TCP reset that could discard the answer.
 */
export const LINGER_MS = 2_000;

/** The Fastify constructor options of the HTTP edge; `createHandoffServer` spreads them. */
export type EdgeOptions = Pick<FastifyServerOptions, 'routerOptions' | 'frameworkErrors' | 'clientErrorHandler'>;

/**
 * Fastify options that make the answers Fastify and Node give before any route runs come from the
 * catalogue, with `Cache-Control: no-store`:
 * - a path parameter over MAX_PARAM_LENGTH characters, or a path that is not valid percent-encoding:
 *   `400 bad_request` (as a too-long id or topic that reaches its route already is);
 * - bad HTTP framing (400), headers over Node's `maxHeaderSize` (431), a request that did not arrive
 *   in time (408), chunk extensions too large (413): the catalogue body, `Connection: close`, and a
 *   clean close of the connection (see LINGER_MS).
 * (`Expect` other than `100-continue`, 417, is answered by installErrorHandling.)
 */
export function edgeOptions(): EdgeOptions {
  return {
    routerOptions: { maxParamLength: MAX_PARAM_LENGTH },
    frameworkErrors: (error: FastifyError, request, reply) => {
      request.log.debug({ code: error.code }, 'unroutable url');
      sendError(reply, routingError(error));
    },
    clientErrorHandler: answerClientError,
  };
}

/** The catalogue error for a request the router could not route. */
function routingError(error: FastifyError): HandoffError {
  switch (error.code) {
    case 'FST_ERR_BAD_URL':
      return new HandoffError('bad_request', 'The URL path is not valid percent-encoding.');
    case 'FST_ERR_MAX_PARAM_LENGTH':
      return new HandoffError('bad_request', `A path segment is longer than ${MAX_PARAM_LENGTH} characters.`);
    default:
      return classify(error);
  }
}

/** The status and catalogue error of a connection-level failure (before any request exists). */
function parserAnswer(err: ConnectionError): { status: number; error: HandoffError } {
  switch (err.code) {
    case 'HPE_HEADER_OVERFLOW':
      return { status: 431, error: new HandoffError('bad_request', `The request headers are larger than ${maxHeaderSize} bytes.`) };
    case 'HPE_CHUNK_EXTENSIONS_OVERFLOW':
      return { status: 413, error: new HandoffError('payload_too_large', 'The chunk extensions are too large.') };
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return { status: 408, error: new HandoffError('bad_request', 'The request did not arrive in time.') };
    default:
      return { status: 400, error: new HandoffError('bad_request', 'The request is not valid HTTP/1.1.') };
  }
}

/** Sockets already answered: Node's parser reports its error again for every chunk that follows. */
const answered = new WeakSet<Socket>();

/**
 * Fastify's clientErrorHandler (called with the Fastify instance as `this`): answer once with the
 * catalogue body and `Connection: close`, close our side, drain what the client still sends, and
 * destroy the socket after LINGER_MS if the client has not closed by then.
 */
function answerClientError(this: { log: FastifyBaseLogger }, err: ConnectionError, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return; // the client is gone: nobody to answer
  if (answered.has(socket)) return;
  answered.add(socket);
  const { status, error } = parserAnswer(err);
  this.log.debug({ code: err.code }, 'client error');
  // A response already on its way on this connection (pipelining) cannot be followed by another one.
  const inFlight = (socket as Socket & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
  if (!socket.writable || inFlight?.headersSent) {
    socket.destroy();
    return;
  }
  const body = JSON.stringify({ error: error.toBody() });
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\n` +
      'Content-Type: application/json; charset=utf-8\r\n' +
      `Content-Length: ${Buffer.byteLength(body)}\r\n` +
      'Cache-Control: no-store\r\n' +
      'Connection: close\r\n\r\n' +
      body,
  );
  const linger = setTimeout(() => socket.destroy(), LINGER_MS);
  socket.once('close', () => clearTimeout(linger));
}
