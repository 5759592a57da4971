import { Type, type Static, type TSchema, type TUnsafe } from 'typebox';
import { ERRORS, FINAL_STATES, LOGIN_STATES, QR_STATES, type FlowKind, type FlowStateName } from '@handoff/protocol';

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

/**
 * The schemas routes share, by name: registered once with `app.addSchema` (http/openapi.ts) and
 * listed once under `components.schemas` of the OpenAPI document, which points at them.
 */
const sharedSchemas: Array<TSchema & { $id: string }> = [];
export const SHARED_SCHEMAS: ReadonlyArray<TSchema & { $id: string }> = sharedSchemas;

/**
 * Add `schema` to SHARED_SCHEMAS as `name`; returns a `$ref` to it, typed as the schema (TypeBox's
 * own `Type.Ref` is typed `unknown` outside a module). Fastify resolves the `$ref` for validation
 * and serialization, @fastify/swagger turns it into `#/components/schemas/<name>`.
 */
function shared<T extends TSchema>(name: string, schema: T): TUnsafe<Static<T>> {
  sharedSchemas.push({ ...schema, $id: name });
  return Type.Unsafe<Static<T>>({ $ref: `${name}#` });
}

/** `{code, message}`, from the error catalogue. */
const ErrorDetail = Type.Object({
  code: Type.String({ description: 'A code from the error catalogue (docs/protocol.md).', examples: ['not_found'] }),
  message: Type.String({ description: 'For people; clients switch on `code`.' }),
});

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

const FlowStateObject = Type.Object(
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
    error: Type.Optional(ErrorDetail),
  },
  { description: 'The state object: the same JSON on HTTP, Socket.IO and WebSocket.' },
);

/** The state object (shared schema `FlowState`). */
export const FlowStateSchema = shared('FlowState', FlowStateObject);

const ErrorBodyObject = Type.Object(
  {
    error: ErrorDetail,
    state: Type.Optional(FlowStateSchema),
  },
  { description: 'An error from the catalogue; a 409 `invalid_transition` also carries the current `state`.' },
);

/** The error body (shared schema `ErrorBody`). */
export const ErrorSchema = shared('ErrorBody', ErrorBodyObject);

const UserObject = Type.Object(
  {
    id: Type.String(),
    email: Type.String(),
    displayName: Type.String(),
    avatarUrl: Type.Optional(NullableString()),
  },
  { description: 'A user, as apps see it.' },
);

/** A user (shared schema `User`). */
export const UserSchema = shared('User', UserObject);

const SessionObject = Type.Object(
  {
    token: Type.String({ description: 'HS256 JWT; send it as `Authorization: Bearer <token>`.' }),
    expiresAt: Type.String({ format: 'date-time' }),
    user: UserSchema,
  },
  { description: 'A session: what a login or a redeemed flow gives.' },
);

/** A session (shared schema `Session`). */
export const SessionSchema = shared('Session', SessionObject);

export const WatchTokenHeaders = Type.Object({
  'watch-token': Type.Optional(Type.String({ maxLength: 256, description: 'The flow’s secret watch token.' })),
  authorization: Type.Optional(Type.String({ description: 'Bearer JWT of the user who scanned (qr flows).' })),
});

export const BearerHeaders = Type.Object({
  authorization: Type.Optional(Type.String({ description: 'Bearer <JWT>' })),
});

/** The catalogue's codes by HTTP status, e.g. 401 → `unauthorized`, `invalid_credentials`. */
function codesOfStatus(status: number): string {
  const codes = Object.entries(ERRORS).filter(([, e]) => e.status === status).map(([code]) => `\`${code}\``);
  return codes.length === 0 ? 'An error from the catalogue.' : `${codes.join(' or ')} (error catalogue, docs/protocol.md).`;
}

/** Error responses a route may give (the ErrorBody, described by the catalogue's codes of each status), for the OpenAPI document. */
export function errorResponses(...statuses: number[]): Record<number, typeof ErrorSchema> {
  return Object.fromEntries(statuses.map((s) => [s, { ...ErrorSchema, description: codesOfStatus(s) }]));
}

/** Security requirements (OpenAPI `security`) of the routes; the schemes are declared in http/openapi.ts. */
export const Security: Record<'none' | 'bearer' | 'watchToken' | 'watchTokenOrBearer', Array<Record<string, string[]>>> = {
  /** No credentials. */
  none: [],
  /** `Authorization: Bearer <JWT>`. */
  bearer: [{ bearer: [] }],
  /** The flow's `Watch-Token` header. */
  watchToken: [{ watchToken: [] }],
  /** The `Watch-Token` header, or else the scanner's bearer JWT (GET /v1/flows/{topic}). */
  watchTokenOrBearer: [{ watchToken: [] }, { bearer: [] }],
};
