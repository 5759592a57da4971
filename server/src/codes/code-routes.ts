import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { Security, errorResponses } from '../http/schemas.js';
import type { CodeService } from './code-service.js';
import { EMAIL_MAX_LENGTH } from './recipients.js';

export const CodeRequestBody = Type.Object(
  {
    channel: Type.Union([Type.Literal('email'), Type.Literal('sms')]),
    to: Type.String({ minLength: 1, maxLength: EMAIL_MAX_LENGTH, description: 'Email address, or phone number in international format (+447700900123).' }),
    purpose: Type.Union([Type.Literal('register'), Type.Literal('login')]),
  },
  { additionalProperties: false },
);

export const CodeSentSchema = Type.Object(
  {
    expiresIn: Type.Integer({ minimum: 0, description: 'Seconds until the code expires (a re-sent code keeps its original expiry).' }),
    resendAfter: Type.Integer({ minimum: 0, description: 'Seconds before this recipient may be sent a message again.' }),
  },
  { description: 'Accepted: a code is on its way (the same answer whether or not the address has an account).' },
);

/** POST /v1/verification-codes (contract §2). See docs/verification-codes.md. */
export const codeRoutes: FastifyPluginAsyncTypebox<{ codes: CodeService }> = async (app, { codes }) => {
  app.post(
    '/v1/verification-codes',
    {
      schema: {
        summary: 'Send a verification code (or re-send the live one) by email or SMS',
        description:
          'Answers 202 the same way whether or not the address has an account. Within the resend window: 429 with Retry-After.',
        operationId: 'sendVerificationCode',
        tags: ['verification-codes'],
        security: Security.none,
        body: CodeRequestBody,
        response: { 202: CodeSentSchema, ...errorResponses(400, 413, 429, 503) },
      },
    },
    async (request, reply) => {
      const sent = await codes.request(request.body, request.ip);
      return reply.code(202).send(sent);
    },
  );
};
