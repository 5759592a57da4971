import { WATCH_TOKEN_HEADER, isErrorCode } from '@handoff/protocol';
import type { Endpoints } from './endpoints.js';
import { HandoffError } from './errors.js';
import type { Scope } from './scope.js';
import { parseErrorBody, parseFlowState, parseRetryAfter } from './utils.js';

/** The `fetch` the SDK calls (the global one by default). */
export type FetchLike = (input: string, init: RequestInit) => Promise<Response>;

export interface HttpRequest {
  body?: unknown;
  headers?: Record<string, string>;
  /** Watch token, sent as the `Watch-Token` header (never in the URL). */
  watchToken?: string;
  /** Bearer JWT, sent as `Authorization`. */
  bearer?: string;
  /** Abort this request (rejects with `aborted`). */
  signal?: AbortSignal;
  /** ms before giving up (rejects with `timeout`). */
  timeout: number;
}

export interface HttpResponse {
  status: number;
  headers: Headers;
  body: unknown;
}

/**
 * JSON over the injected `fetch`. Non-2xx answers become HandoffErrors with the catalogue code,
 * the status, `Retry-After` and (on invalid_transition) the flow's state. Every request is bound
 * to `scope`: disposing it aborts the request (`closed`). Requests go to the endpoints' current
 * URL; a network error there (no answer at all) moves the endpoints on to the next URL.
 */
export class HttpClient {
  constructor(
    private readonly endpoints: Endpoints,
    private readonly fetchFn: FetchLike,
    private readonly defaultHeaders: Record<string, string>,
  ) {}

  async request(method: string, path: string, req: HttpRequest, scope: Scope): Promise<HttpResponse> {
    const headers: Record<string, string> = { accept: 'application/json', ...this.defaultHeaders, ...req.headers };
    if (req.body !== undefined) headers['content-type'] = 'application/json';
    if (req.watchToken !== undefined) headers[WATCH_TOKEN_HEADER] = req.watchToken;
    if (req.bearer !== undefined) headers.authorization = `Bearer ${req.bearer}`;

    const controller = new AbortController();
    const local = scope.child();
    let why: HandoffError | null = null;
    let done = false;
    const abort = (err: HandoffError): void => {
      if (why || done) return;
      why = err;
      controller.abort();
    };
    local.add(() => abort(new HandoffError('closed')));
    local.onAbort(req.signal, () => abort(new HandoffError('aborted', undefined, { cause: req.signal?.reason })));
    local.timeout(() => abort(new HandoffError('timeout', `No answer from ${method} ${path} within ${req.timeout} ms.`)), req.timeout);
    if (req.signal?.aborted) abort(new HandoffError('aborted', undefined, { cause: req.signal.reason }));

    const base = this.endpoints.current;
    try {
      const res = await this.fetchFn(base + path, {
        method,
        headers,
        body: req.body === undefined ? undefined : JSON.stringify(req.body),
        signal: controller.signal,
      });
      const text = await res.text();
      let body: unknown = undefined;
      if (text !== '') {
        try {
          body = JSON.parse(text);
        } catch (err) {
          if (res.ok) throw new HandoffError('bad_response', `${method} ${path} answered non-JSON.`, { status: res.status, cause: err });
        }
      }
      if (!res.ok) throw errorFromResponse(res, body);
      return { status: res.status, headers: res.headers, body };
    } catch (err) {
      if (why) throw why;
      if (err instanceof HandoffError) throw err;
      this.endpoints.rotate(base);
      throw new HandoffError('network', `${method} ${path} failed: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    } finally {
      done = true;
      local.dispose();
    }
  }
}

/** Map an error answer to a HandoffError: the catalogue body when there is one, else by status. */
function errorFromResponse(res: Response, body: unknown): HandoffError {
  const retryAfter = parseRetryAfter(res.headers.get('retry-after'));
  const record = typeof body === 'object' && body !== null ? (body as Record<string, unknown>) : {};
  const error = parseErrorBody(record.error);
  const state = parseFlowState(record.state) ?? undefined;
  const details = { status: res.status, retryAfter, state };
  if (error && isErrorCode(error.code)) return new HandoffError(error.code, error.message || undefined, details);
  if (res.status === 429) return new HandoffError('rate_limited', undefined, details);
  if (res.status >= 500) return new HandoffError('unavailable', `The server answered ${res.status}.`, details);
  return new HandoffError('bad_response', `The server answered ${res.status}.`, details);
}
