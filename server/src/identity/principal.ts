/** Who acts: a Handoff account ('builtin') or a user of the app in front ('app', ACCOUNTS=app|both). */
export interface Principal {
  kind: 'builtin' | 'app';
  /** The builtin user id, or the app's `sub` (opaque). */
  id: string;
  displayName: string;
  avatarUrl: string | null;
}
