/** Who acts: a Handoff account ('builtin') or a user of the app in front ('app', ACCOUNTS=app|both). */
export interface Principal {
  kind: 'builtin' | 'app';
  /** The builtin user id, or the app's `sub` (opaque). */
  id: string;
  displayName: string;
  avatarUrl: string | null;
}

/**
 * The id a flow record keeps for `p` (its `userId`, what scanner binding compares): a builtin
 * account's own id, or `app:<sub>` for an app user, so an app `sub` never collides with a builtin
 * id (builtin ids never contain ':'). What people see (`scannedBy.userId`) stays the plain id.
 */
export function principalKey(p: Principal): string {
  return p.kind === 'app' ? `app:${p.id}` : p.id;
}
