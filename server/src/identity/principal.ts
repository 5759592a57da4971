/** Who acts: a Handoff account ('builtin') or a user of the app in front ('app', ACCOUNTS=app|both). */
export interface Principal {
  kind: 'builtin' | 'app';
  /** The builtin user id, or the app's `sub` (opaque). */
  id: string;
  displayName: string;
  avatarUrl: string | null;
}

/** Prefix of an app user's key in a flow record; built-in account ids never contain ':'. */
const APP_PREFIX = 'app:';

/**
 * How a flow record names its user (`userId`, the scanner binding): a built-in account by its id,
 * an app user as `app:<sub>`, so an app's `sub` can never be taken for a built-in account's id.
 */
export function principalKey(p: Pick<Principal, 'kind' | 'id'>): string {
  return p.kind === 'app' ? `${APP_PREFIX}${p.id}` : p.id;
}

/** The kind and plain id behind a record's `userId` (the inverse of principalKey). */
export function parsePrincipalKey(key: string): Pick<Principal, 'kind' | 'id'> {
  return key.startsWith(APP_PREFIX) ? { kind: 'app', id: key.slice(APP_PREFIX.length) } : { kind: 'builtin', id: key };
}
