import { HandoffError } from '../errors.js';

/** Shortest password accepted at registration, in characters (code points). */
export const PASSWORD_MIN_LENGTH = 10;
/** Parts of the email shorter than this are not searched for in the password (too common to mean anything). */
const MIN_EMAIL_PART = 3;

/**
 * What is wrong with `password` for an account with `email` (empty = acceptable):
 * - at least 10 characters;
 * - does not contain the email address, its local part (`ana.lima` of `ana.lima+x@example.com`),
 *   or the local part without its `+tag` — case-insensitively. Parts under 3 characters are not
 *   checked (a local part `al` would forbid every password containing "al"). "Equal to" is a case
 *   of "contains".
 */
export function passwordProblems(password: string, email: string): string[] {
  const problems: string[] = [];
  if ([...password].length < PASSWORD_MIN_LENGTH) problems.push(`it must be at least ${PASSWORD_MIN_LENGTH} characters long`);
  const pw = password.toLowerCase();
  const address = email.trim().toLowerCase();
  const at = address.lastIndexOf('@');
  const local = at > 0 ? address.slice(0, at) : address;
  const plus = local.indexOf('+');
  const parts = new Set([address, local, plus > 0 ? local.slice(0, plus) : local]);
  if ([...parts].some((part) => part.length >= MIN_EMAIL_PART && pw.includes(part))) {
    problems.push('it must not contain your email address or its name part');
  }
  return problems;
}

/** Throws 400 `weak_password` naming every rule the password breaks. */
export function assertPasswordAcceptable(password: string, email: string): void {
  const problems = passwordProblems(password, email);
  if (problems.length > 0) throw new HandoffError('weak_password', `The password is too weak: ${problems.join('; ')}.`);
}
