import { Type, type Static, type TSchema, type TUnsafe } from 'typebox';
import { ERRORS, FINAL_STATES, LOGIN_STATES, QR_STATES, APPROVAL_STATES, type FlowKind, type FlowStateName } from '@handoff/protocol';

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
    kind: Type.Unsafe<FlowKind>({ type: 'string', enum: ['qr', 'login', 'approval'] }),
    id: Type.String(),
    state: Type.Unsafe<FlowStateName>({
      type: 'string',
      enum: [...new Set([...QR_STATES, ...LOGIN_STATES, ...APPROVAL_STATES])],
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
    id: Type.String({ description: 'A built-in account id, or the app user\'s `sub` (ACCOUNTS=app|both).' }),
    email: Type.Optional(Type.String({ description: 'Built-in accounts only.' })),
    displayName: Type.String(),
    avatarUrl: Type.Optional(NullableString()),
  },
  { description: 'A user, as apps see it.' },
);

/** A user (shared schema `User`). */
export const UserSchema = shared('User', UserObject);

const SessionObject = Type.Object(
  {
    token: Type.String({ description: 'A session JWT (send it as `Authorization: Bearer <token>`), or an assertion for the app\'s backend.' }),
    tokenType: Type.Union([Type.Literal('session'), Type.Literal('assertion')], {
      description: '`session`: a built-in account\'s session JWT; `assertion`: an app user\'s one-time assertion, verified against /.well-known/jwks.json.',
    }),
    expiresAt: Type.String({ format: 'date-time' }),
    // `tokenType: assertion` (an app user): no email, Handoff knows none (protocol's `AppUser`).
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

/** One Ajv error as Fastify reports it in `err.validation`. */
export interface SchemaError {
  keyword: string;
  instancePath: string;
  schemaPath: string;
  params: Record<string, unknown>;
  message?: string;
}

/** What the root of each validated part is called in a message ("body: must be an object"). */
const PART_NAMES: Record<string, string> = { body: 'body', querystring: 'query string', params: 'path', headers: 'headers' };

/**
 * A schema failure in words, naming each field and what is wrong with it: `password: required`,
 * `email: must be a string`, `password or code: required` (alternatives of an `anyOf`),
 * `channel: must be one of "email", "sms"`. Never Ajv's internals (`must match a schema in anyOf`).
 * `part` is Fastify's validation context (body, querystring, params, headers).
 */
export function describeSchemaErrors(errors: readonly SchemaError[], part = 'body'): string {
  return unique(describeAll(errors, PART_NAMES[part] ?? part)).join('; ');
}

/** The errors of one level: an `anyOf`/`oneOf` swallows the errors of its branches (they precede it). */
function describeAll(errors: readonly SchemaError[], root: string): string[] {
  const groups = errors.filter((e) => e.keyword === 'anyOf' || e.keyword === 'oneOf');
  const inBranch = (e: SchemaError, g: SchemaError) => e !== g && e.schemaPath.startsWith(`${g.schemaPath}/`);
  const out: string[] = [];
  for (const e of errors) {
    if (groups.some((g) => inBranch(e, g))) continue;
    if (groups.includes(e)) {
      const branches = errors.filter((b) => inBranch(b, e));
      out.push(branches.length === 0 ? `${fieldName(e.instancePath, root)}: ${problem(e)}` : alternatives(branches, root));
    } else {
      out.push(describeOne(e, root));
    }
  }
  return out;
}

/** Either branch would do: `password or code: required`, `channel: must be one of "email", "sms"`, or `A or B`. */
function alternatives(branches: readonly SchemaError[], root: string): string {
  if (branches.every((b) => b.keyword === 'required' && b.instancePath === branches[0].instancePath)) {
    const names = unique(branches.map((b) => fieldName(joinPath(b.instancePath, String(b.params.missingProperty)), root)));
    return `${names.join(' or ')}: required`;
  }
  if (branches.every((b) => b.keyword === 'const' && b.instancePath === branches[0].instancePath)) {
    const values = unique(branches.map((b) => JSON.stringify(b.params.allowedValue)));
    return `${fieldName(branches[0].instancePath, root)}: must be ${values.length > 1 ? 'one of ' : ''}${values.join(', ')}`;
  }
  return unique(describeAll(branches, root)).join(', or ');
}

function describeOne(e: SchemaError, root: string): string {
  if (e.keyword === 'required') return `${fieldName(joinPath(e.instancePath, String(e.params.missingProperty)), root)}: required`;
  if (e.keyword === 'additionalProperties') {
    return `${fieldName(joinPath(e.instancePath, String(e.params.additionalProperty)), root)}: unknown property`;
  }
  return `${fieldName(e.instancePath, root)}: ${problem(e)}`;
}

/** What is wrong with one value, in words. */
function problem(e: SchemaError): string {
  const p = e.params;
  switch (e.keyword) {
    case 'type': {
      const types = Array.isArray(p.type) ? (p.type as unknown[]) : String(p.type).split(',');
      return `must be ${types.map((t) => TYPE_WORDS[String(t)] ?? String(t)).join(' or ')}`;
    }
    case 'minLength':
      return p.limit === 1 ? 'must not be empty' : `must be at least ${String(p.limit)} characters long`;
    case 'maxLength':
      return `must be at most ${String(p.limit)} characters long`;
    case 'pattern':
      return patternWords(String(p.pattern));
    case 'format':
      return `must be a valid ${String(p.format)}`;
    case 'minimum':
    case 'exclusiveMinimum':
    case 'maximum':
    case 'exclusiveMaximum':
      return `must be ${String(p.comparison)} ${String(p.limit)}`;
    case 'const':
      return `must be ${JSON.stringify(p.allowedValue)}`;
    case 'enum':
      return `must be one of ${(p.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`;
    case 'minItems':
      return `must have at least ${String(p.limit)} items`;
    case 'maxItems':
      return `must have at most ${String(p.limit)} items`;
    case 'anyOf':
    case 'oneOf':
      return 'is not any of the accepted forms';
    default:
      return e.message ?? 'is not valid';
  }
}

const TYPE_WORDS: Record<string, string> = {
  string: 'a string',
  number: 'a number',
  integer: 'a whole number',
  boolean: 'true or false',
  object: 'an object',
  array: 'an array',
  null: 'null',
};

/** `^[0-9]{6}$` → "must be 6 digits"; other patterns are quoted. */
function patternWords(pattern: string): string {
  const digits = /^\^\[0-9\]\{(\d+)(?:,(\d+))?\}\$$/.exec(pattern);
  if (digits) return digits[2] === undefined ? `must be ${digits[1]} digits` : `must be ${digits[1]} to ${digits[2]} digits`;
  return `must match the pattern ${pattern}`;
}

function joinPath(instancePath: string, property: string): string {
  return `${instancePath}/${property.replace(/~/g, '~0').replace(/\//g, '~1')}`;
}

/** `/user/emails/0` → `user.emails[0]`; the root is named after the part (body, query string…). */
function fieldName(instancePath: string, root: string): string {
  if (instancePath === '') return root;
  return instancePath
    .split('/')
    .slice(1)
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((s, i) => (/^\d+$/.test(s) ? `[${s}]` : i === 0 ? s : `.${s}`))
    .join('');
}

function unique<T>(values: readonly T[]): T[] {
  return [...new Set(values)];
}

/** Error responses a route may give (the ErrorBody, described by the catalogue's codes of each status), for the OpenAPI document. */
export function errorResponses(...statuses: number[]): Record<number, typeof ErrorSchema> {
  return Object.fromEntries(statuses.map((s) => [s, { ...ErrorSchema, description: codesOfStatus(s) }]));
}

/** Security requirements (OpenAPI `security`) of the routes; the schemes are declared in http/openapi.ts. */
export const Security: Record<'none' | 'bearer' | 'watchToken' | 'watchTokenOrBearer' | 'apiKey', Array<Record<string, string[]>>> = {
  /** No credentials. */
  none: [],
  /** `Authorization: Bearer <JWT>`. */
  bearer: [{ bearer: [] }],
  /** The flow's `Watch-Token` header. */
  watchToken: [{ watchToken: [] }],
  /** The `Watch-Token` header, or else the scanner's bearer JWT (GET /v1/flows/{topic}). */
  watchTokenOrBearer: [{ watchToken: [] }, { bearer: [] }],
  /** The app's backend: an `X-Api-Key` header from API_KEYS (the server API). */
  apiKey: [{ apiKey: [] }],
};
