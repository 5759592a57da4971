import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { EMAIL_MAX_LENGTH, emailLocalPart, normaliseRecipient } from '../codes/recipients.js';
import type { CodeService } from '../codes/code-service.js';
import { HandoffError } from '../errors.js';
import type { Handoff } from '../handoff.js';
import { Security, errorResponses } from '../http/schemas.js';
import { assertPasswordAcceptable } from './password-policy.js';

/** Longest display name, in characters. */
export const DISPLAY_NAME_MAX_LENGTH = 100;

export const RegisterBody = Type.Object(
  {
    email: Type.String({ minLength: 3, maxLength: EMAIL_MAX_LENGTH }),
    password: Type.String({ minLength: 1, maxLength: 1024 }),
    code: Type.String({ pattern: '^[0-9]{6}$', description: 'The code sent by POST /v1/verification-codes {channel:"email", purpose:"register"}.' }),
    displayName: Type.Optional(Type.String({ maxLength: DISPLAY_NAME_MAX_LENGTH, description: 'Default: the local part of the email.' })),
  },
  { additionalProperties: false },
);

export const RegisteredSchema = Type.Object(
  {
    id: Type.String(),
    email: Type.String(),
    displayName: Type.String(),
  },
  { description: 'The new account; log in with POST /v1/sessions.' },
);

// Control characters (C0, DEL, C1) and line/paragraph separators have no place in a name shown on a phone.
const CONTROL_CHARS = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;

/**
 * POST /v1/users: create an account with an emailed code of purpose "register".
 *
 * Order: input rules first (email format, password strength, display name — they reveal
 * nothing), then the code (used up on a match), then the account. So `email_taken` is answered
 * only to someone who holds a valid code for that address, i.e. who reads its mailbox; and
 * POST /v1/verification-codes never sends a register code to an existing account.
 */
export const registrationRoutes: FastifyPluginAsyncTypebox<{ handoff: Handoff; codes: Pick<CodeService, 'verify'> }> = async (
  app,
  { handoff, codes },
) => {
  app.post(
    '/v1/users',
    {
      schema: {
        summary: 'Register with email, password and the emailed code',
        operationId: 'registerUser',
        tags: ['users'],
        security: Security.none,
        body: RegisterBody,
        response: { 201: RegisteredSchema, ...errorResponses(400, 401, 409, 413, 429, 503) },
      },
    },
    async (request, reply) => {
      const body = request.body;
      const email = normaliseRecipient('email', body.email);
      assertPasswordAcceptable(body.password, email);
      const displayName = body.displayName?.trim() || emailLocalPart(email).slice(0, DISPLAY_NAME_MAX_LENGTH);
      if (CONTROL_CHARS.test(displayName)) throw new HandoffError('bad_request', 'displayName must not contain control characters.');

      if (!(await codes.verify('register', 'email', email, body.code))) {
        throw new HandoffError('invalid_credentials', 'The verification code is wrong, expired or used up.');
      }
      const user = await handoff.users.create({ email, password: body.password, displayName });
      return reply.code(201).send({ id: user.id, email: user.email, displayName: user.displayName });
    },
  );
};
