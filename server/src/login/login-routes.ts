import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { MAX_LONG_POLL_SECONDS, isFinalState, topicOf, type FlowState } from '@handoff/protocol';
import { HandoffError } from '../errors.js';
import type { Handoff } from '../handoff.js';
import { FlowStateSchema, Security, SessionSchema, errorResponses } from '../http/schemas.js';
import { WorkGate } from '../http/work-gate.js';
import type { LoginService } from './login-service.js';
import { parsePrefer } from './prefer.js';
import type { Credentials } from './sealed-credentials.js';

const Email = Type.String({ minLength: 3, maxLength: 254 });
const Password = Type.String({ minLength: 1, maxLength: 1024 });

/**
 * Credentials for `POST /v1/sessions`: `{email, password}` or `{email, code}`; with the app's own
 * logins (CREDENTIALS_URL) `{login, password}`, `login` being the same field as `email` under the
 * app's name (contract §7).
 */
export const LoginBody = Type.Union([
  Type.Object({ email: Email, password: Password }, { additionalProperties: false }),
  Type.Object({ email: Email, code: Type.String({ pattern: '^[0-9]{6}$' }) }, { additionalProperties: false }),
]);


const AcceptedSchema = Type.Intersect([
  FlowStateSchema,
  Type.Object({ watchToken: Type.String({ description: 'Secret; returned once. Send it as the Watch-Token header.' }) }),
], { description: 'The queued login flow (`Prefer: respond-async`); follow it at `Location` with the watch token.' });

/** How often a client without a socket should poll an async login, seconds (Retry-After on 202). */
const POLL_HINT_SECONDS = 1;

/**
 * Async logins admitted per event-loop turn, and at once (see WorkGate): a burst of logins is
 * interleaved with reads and socket messages instead of holding them up until it is through.
 */
const ADMIT_PER_TURN = 2;
const ADMIT_CONCURRENT = 4;
/** Async logins waiting for admission on one node; more answer 503 `unavailable` at once. */
const ADMIT_MAX_WAITING = 1000;

/**
 * `POST /v1/sessions`: synchronous login, or with `Prefer: respond-async` a queued login that
 * answers 202 at once (RFC 7240; `wait=N` first waits up to N seconds for the result).
 */
export const loginRoutes: FastifyPluginAsyncTypebox<{ handoff: Handoff; logins: LoginService }> = async (app, { handoff, logins }) => {
  const admissions = new WorkGate(ADMIT_PER_TURN, ADMIT_CONCURRENT, ADMIT_MAX_WAITING, () =>
    new HandoffError('unavailable', 'Too many logins are waiting; retry shortly.', { retryAfterSeconds: 1 }),
  );
  app.post(
    '/v1/sessions',
    {
      schema: {
        summary: 'Log in with email and password or code; `Prefer: respond-async[, wait=N]` queues it',
        description: '`login` is accepted in place of `email` (the same field under the app\'s own name, for passwords checked by CREDENTIALS_URL).',
        operationId: 'createSession',
        tags: ['sessions'],
        security: Security.none,
        body: LoginBody,
        headers: Type.Object({ prefer: Type.Optional(Type.String({ description: 'respond-async, wait=N (RFC 7240)' })) }),
        response: { 200: SessionSchema, 202: AcceptedSchema, ...errorResponses(400, 401, 429, 503) },
      },
      preValidation: loginIsEmail,
    },
    async (request, reply) => {
      const { email } = request.body;
      const credentials: Credentials = 'password' in request.body ? { password: request.body.password } : { code: request.body.code };
      const prefer = parsePrefer(request.headers.prefer);
      if (!prefer.respondAsync) {
        const admission = await logins.admit(request.ip, email);
        const user = await logins.verify(email, credentials, admission);
        return handoff.identity.issueFor(user, { amr: ['pwd'], flow: 'login' });
      }

      const { record, watchToken, state: queued } = await admissions.run(async () => {
        // A client that gave up while waiting gets no login queued in its name.
        if (request.raw.socket.destroyed) throw new HandoffError('unavailable', 'The client went away.');
        // The rate limits run inside the gate too: they are Redis round trips like the rest.
        const admission = await logins.admit(request.ip, email);
        const created = await logins.enqueue(email, credentials, admission);
        return { ...created, state: await handoff.flows.stateOf(created.record) };
      });
      const topic = topicOf('login', record.id);
      let state = queued;
      if (prefer.wait) {
        state = await waitForResult(handoff, topic, watchToken, state, Math.min(prefer.wait, MAX_LONG_POLL_SECONDS) * 1000);
        if (state.state === 'succeeded') {
          return handoff.flows.redeem(topic, watchToken, (record) => handoff.identity.issue(record));
        }
        if (state.state === 'failed') throw new HandoffError('invalid_credentials');
      }
      return reply
        .code(202)
        .header('location', `/v1/flows/${topic}`)
        .header('preference-applied', 'respond-async')
        .header('retry-after', String(POLL_HINT_SECONDS))
        .send({ ...state, watchToken });
    },
  );
};

/**
 * Follow a login from `state` (as just created) until it is decided (succeeded, failed, or
 * final) or `ms` pass. The first long-poll answers at once if the login has moved already.
 */
async function waitForResult(handoff: Handoff, topic: string, watchToken: string, state: FlowState, ms: number): Promise<FlowState> {
  const deadline = Date.now() + ms;
  const access = { watchToken };
  const never = new AbortController().signal; // the server's drain still ends the wait at shutdown
  while (!isFinalState(state.state) && state.state !== 'succeeded' && Date.now() < deadline && !handoff.shuttingDown) {
    state = await handoff.longPoll(topic, access, state.version, deadline - Date.now(), never);
  }
  return state;
}

/**
 * `{login, password}` is `{email, password}` under the app's name (contract §7): rename it before
 * the schema runs, so one schema (and one set of messages) serves both. Both at once is bad input.
 */
async function loginIsEmail(request: FastifyRequest): Promise<void> {
  const body = request.body as Record<string, unknown> | null;
  if (typeof body !== 'object' || body === null || Array.isArray(body) || !('login' in body)) return;
  if ('email' in body) throw new HandoffError('bad_request', 'login and email are the same field: send one of them.');
  const { login, ...rest } = body;
  request.body = { email: login, ...rest };
}
