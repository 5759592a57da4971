/**
 * Your backend (Node), with `ACCOUNTS=app`: the browser posts the assertion its `session()` gave
 * (`tokenType: 'assertion'`); verify it against Handoff's JWKS, then log the user in your own way.
 * A forged, foreign, expired or replayed assertion throws an `AssertionError`: answer 401.
 */
import { verifyAssertion, type VerifyAssertionOptions } from '@handoff/client-sdk/server';

export async function handoffLogin(assertion: string, handoff: VerifyAssertionOptions, startSession: (userId: string) => Promise<string>): Promise<string> {
  const user = await verifyAssertion(assertion, handoff); // ES256/EdDSA from the JWKS, iss, aud, exp, one-time jti
  return startSession(user.sub); // your own session (cookie), as after a password login; user.sub is your user id
}
