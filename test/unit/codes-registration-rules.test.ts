/** The registration rules that need no server: the password policy. */
import { describe, expect, it } from 'vitest';
import { HandoffError } from '../../server/src/errors.js';
import { PASSWORD_MIN_LENGTH, assertPasswordAcceptable, passwordProblems } from '../../server/src/users/password-policy.js';

describe('password policy', () => {
  const email = 'ana.lima+work@example.com';

  it('wants at least 10 characters (code points, not bytes)', () => {
    expect(PASSWORD_MIN_LENGTH).toBe(10);
    expect(passwordProblems('short-pw1', email)).toEqual(['it must be at least 10 characters long']);
    expect(passwordProblems('long-enough', email)).toEqual([]);
    expect(passwordProblems('🔑🔑🔑🔑🔑🔑🔑🔑🔑', email)).toHaveLength(1); // 9 characters, 36 bytes
    expect(passwordProblems('🔑🔑🔑🔑🔑🔑🔑🔑🔑🔑', email)).toEqual([]);
  });

  it('refuses the email, its local part and the local part without +tag, case-insensitively', () => {
    for (const pw of [email, email.toUpperCase(), `xx${email}xx`, 'ANA.LIMA+WORK-2026', 'my-Ana.Lima-password', 'ana.lima1234567']) {
      expect(passwordProblems(pw, email), pw).toEqual(['it must not contain your email address or its name part']);
    }
    expect(passwordProblems('ana.lim-a-1234', email)).toEqual([]);
  });

  it('ignores email parts too short to mean anything', () => {
    expect(passwordProblems('al-is-my-password', 'al@example.com')).toEqual([]);
    expect(passwordProblems('xyz-is-my-password', 'xyz@example.com')).toHaveLength(1);
  });

  it('names every broken rule in one weak_password error (400)', () => {
    expect(() => assertPasswordAcceptable('correct horse battery', email)).not.toThrow();
    try {
      assertPasswordAcceptable('Ana.Lima', email);
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(HandoffError);
      expect(err).toMatchObject({ code: 'weak_password', status: 400 });
      expect((err as Error).message).toContain('at least 10 characters');
      expect((err as Error).message).toContain('must not contain your email');
    }
  });
});
