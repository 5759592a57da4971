import { Type } from 'typebox';
import { FINAL_STATES, LOGIN_STATES, QR_STATES, type FlowKind, type FlowStateName } from '@handoff/protocol';

/**
 * Shared TypeBox schemas; they validate requests, type handlers, serialize responses and feed the
 * OpenAPI document.
 *
 * Response schemas avoid `anyOf` (TypeBox's `Union`): fast-json-stringify can only pick an `anyOf`
 * branch by running an Ajv validator on every response (compiled on the first one). An `enum` or a
 * `type` list (`["string", "null"]`) serializes with plain `typeof` checks.
 */

/** A string or null, without `anyOf`. */
const NullableString = () => Type.Unsafe<string | null>({ type: ['string', 'null'] });

export const ErrorSchema = Type.Object(
  {
    error: Type.Object({ code: Type.String(), message: Type.String() }),
    state: Type.Optional(Type.Any()),
  },
);

export const ScannedBySchema = Type.Object({
  userId: Type.String(),
  displayName: Type.String(),
  avatarUrl: NullableString(),
});

export const RequesterSchema = Type.Object({
  ip: Type.String(),
  userAgent: Type.String(),
  createdAt: Type.String({ format: 'date-time' }),
});

export const FlowStateSchema = Type.Object(
  {
    topic: Type.String({ examples: ['qr:8cXU0mZ9...'] }),
    kind: Type.Unsafe<FlowKind>({ type: 'string', enum: ['qr', 'login'] }),
    id: Type.String(),
    state: Type.Unsafe<FlowStateName>({
      type: 'string',
      enum: [...new Set([...QR_STATES, ...LOGIN_STATES])],
      description: `Final states: ${[...FINAL_STATES].join(', ')}`,
    }),
    version: Type.Integer({ minimum: 1 }),
    expiresAt: Type.String({ format: 'date-time' }),
    scannedBy: Type.Optional(ScannedBySchema),
    position: Type.Optional(Type.Integer({ minimum: 0 })),
    error: Type.Optional(Type.Object({ code: Type.String(), message: Type.String() })),
  },
  { description: 'The state object: the same JSON on HTTP, Socket.IO and WebSocket.' },
);

export const UserSchema = Type.Object({
  id: Type.String(),
  email: Type.String(),
  displayName: Type.String(),
  avatarUrl: Type.Optional(NullableString()),
});

export const SessionSchema = Type.Object({
  token: Type.String({ description: 'HS256 JWT' }),
  expiresAt: Type.String({ format: 'date-time' }),
  user: UserSchema,
});

export const WatchTokenHeaders = Type.Object({
  'watch-token': Type.Optional(Type.String({ maxLength: 256, description: 'The flow’s secret watch token.' })),
  authorization: Type.Optional(Type.String({ description: 'Bearer JWT of the user who scanned (qr flows).' })),
});

export const BearerHeaders = Type.Object({
  authorization: Type.Optional(Type.String({ description: 'Bearer <JWT>' })),
});

/** Error responses every route may give, for the OpenAPI document. */
export function errorResponses(...statuses: number[]): Record<number, typeof ErrorSchema> {
  return Object.fromEntries(statuses.map((s) => [s, ErrorSchema]));
}
