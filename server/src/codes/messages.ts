import type { OutgoingMessage } from './senders.js';
import type { CodeChannel, CodePurpose } from './recipients.js';

function minutes(ms: number): number {
  return Math.max(1, Math.ceil(ms / 60_000));
}

/** The message carrying a code. `validForMs`: what is left of its window at send time. */
export function codeMessage(channel: CodeChannel, to: string, purpose: CodePurpose, code: string, validForMs: number): OutgoingMessage {
  const what = purpose === 'register' ? 'confirm your email address and create your account' : 'sign in';
  const mins = minutes(validForMs);
  if (channel === 'sms') {
    return { channel, to, subject: '', text: `Your Handoff code is ${code}. It expires in ${mins} min. Never share it.` };
  }
  return {
    channel,
    to,
    subject: purpose === 'register' ? 'Your Handoff sign-up code' : 'Your Handoff sign-in code',
    text: [
      `Your Handoff code is: ${code}`,
      '',
      `Enter it to ${what}. It expires in ${mins} minute${mins === 1 ? '' : 's'} and works once.`,
      '',
      'If you did not ask for it, ignore this message. Nobody from Handoff will ever ask you for this code.',
    ].join('\n'),
  };
}

/**
 * Sent instead of a sign-up code when the address already has an account: the owner learns
 * about the attempt, the requester learns nothing from the API (it answered 202 as always).
 */
export function accountExistsMessage(to: string): OutgoingMessage {
  return {
    channel: 'email',
    to,
    subject: 'You already have a Handoff account',
    text: [
      'Someone asked to create a Handoff account with this email address, but it already has one.',
      '',
      'If that was you, sign in instead (you can ask for a sign-in code by email).',
      'If it was not you, ignore this message: nothing has changed.',
    ].join('\n'),
  };
}
