import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { HandoffApp } from './app-type.js';
import { HandoffError, isStoreDown } from '../errors.js';
import { describeSchemaErrors } from './schemas.js';

/**
 * Send a catalogue error as `{ error: {code, message} }` (+ `state` on invalid_transition). It sets
 * `Cache-Control: no-store` itself because Fastify's framework-error handlers (a bad URL, a path
 * parameter too long) answer without running the hooks, the noStore hook included.
 */
export function sendError(reply: FastifyReply, err: HandoffError): FastifyReply {
  if (err.extra.retryAfterSeconds !== undefined) reply.header('retry-after', String(Math.max(1, Math.ceil(err.extra.retryAfterSeconds))));
  const body: Record<string, unknown> = { error: err.toBody() };
  if (err.extra.state) body.state = err.extra.state;
  return reply.code(err.status).header('cache-control', 'no-store').send(body);
}

/** Map whatever a route threw to the catalogue; bad input is always a 4xx, never a 500. */
export function classify(err: FastifyError | Error): HandoffError {
  if (err instanceof HandoffError) return err;
  const fe = err as FastifyError;
  if (fe.validation) return new HandoffError('bad_request', describeSchemaErrors(fe.validation, fe.validationContext));
  switch (fe.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new HandoffError('payload_too_large');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new HandoffError('bad_request', 'Content-Type must be application/json.');
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new HandoffError('bad_request', 'The JSON body is empty.');
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new HandoffError('bad_request', 'The body is not valid JSON.');
  }
  if (err instanceof SyntaxError) return new HandoffError('bad_request', 'The body is not valid JSON.');
  if (isStoreDown(err)) return new HandoffError('unavailable');
  const status = fe.statusCode ?? 500;
  if (status === 413) return new HandoffError('payload_too_large');
  if (status === 404) return new HandoffError('not_found');
  if (status >= 400 && status < 500) return new HandoffError('bad_request', fe.message);
  return new HandoffError('internal');
}

/**
 * True when `err` is the request stream's own error: the client closed the connection before its
 * request (body) was complete. Node reports that as an `ECONNRESET` "aborted" error, which must not
 * be mistaken for a store connection reset.
 */
function isClientAbort(err: Error, request: FastifyRequest): boolean {
  return request.raw.errored === err;
}

/** `Expect` values other than `100-continue`: `417` with the catalogue body, then the connection closes. */
function answerExpectationFailed(_req: IncomingMessage, res: ServerResponse): void {
  const body = JSON.stringify({ error: new HandoffError('bad_request', 'Only "Expect: 100-continue" is supported.').toBody() });
  res.writeHead(417, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
    connection: 'close',
  });
  res.end(body);
}

/** Install the catalogue-based error and not-found handlers (and the 417 for an unknown `Expect`). */
export function installErrorHandling(app: HandoffApp): void {
  app.setErrorHandler((err: FastifyError, request, reply) => {
    if (isClientAbort(err, request)) {
      // Nobody reads the answer; not a server fault, not a store outage.
      request.log.debug({ err: err.message }, 'client aborted');
      return sendError(reply, new HandoffError('bad_request', 'The client closed the connection before the request was complete.'));
    }
    const mapped = classify(err);
    // A store outage is expected and logged by the backend once per cause: one short line per request, no stack.
    if (mapped.code === 'unavailable') request.log.warn({ err: err.message }, 'store unavailable');
    else if (mapped.status >= 500) request.log.error({ err }, 'request failed');
    return sendError(reply, mapped);
  });
  app.setNotFoundHandler((_request, reply) => sendError(reply, new HandoffError('not_found')));
  // Node answers an unknown expectation with a bare 417 itself unless someone listens.
  app.server.on('checkExpectation', answerExpectationFailed);
}
