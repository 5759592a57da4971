/**
 * Test harness: a real SMTP server (the `smtp-server` package) on a free port of 127.0.0.1 that
 * captures every message. No auth, no TLS (STARTTLS disabled), so nodemailer talks plain SMTP.
 *
 *   const smtp = await startSmtp();                        // accepts everything
 *   const flaky = await startSmtp({ refuse: (to, n) => n <= 2 ? '451 try later' : null });
 *   // server env: SMTP_URL=smtp.url
 *   const mail = await smtp.waitFor((m) => m.to.includes('ana@example.com'));
 *   codeIn(mail)                                           // the 6-digit code in its text
 *   await smtp.stop();
 */
import { SMTPServer } from 'smtp-server';
import type { AddressInfo } from 'node:net';

/** One message as received. */
export interface CapturedMail {
  /** Envelope sender and recipients. */
  from: string;
  to: string[];
  subject: string;
  /** The decoded text body. */
  text: string;
  raw: string;
}

export interface SmtpHandle {
  /** `smtp://127.0.0.1:<port>` (plain SMTP; `?ignoreTLS=true` would be harmless but STARTTLS is not offered). */
  url: string;
  port: number;
  /** Every accepted message, in order. */
  messages: CapturedMail[];
  /** RCPT TO attempts per recipient address (refused ones included). */
  attempts: Map<string, number>;
  /** Resolve with the first received (or future) message matching `match`. */
  waitFor(match: (m: CapturedMail) => boolean, timeoutMs?: number): Promise<CapturedMail>;
  /** Messages to `address` received so far. */
  to(address: string): CapturedMail[];
  stop(): Promise<void>;
}

export interface StartSmtpOptions {
  /**
   * Called on each RCPT TO with the address and its attempt number (1 = first); return an SMTP
   * reply like `451 try again later` to refuse it, or null to accept.
   */
  refuse?: (to: string, attempt: number) => string | null;
}

/** The 6-digit code in a message's text, or undefined. */
export function codeIn(mail: CapturedMail): string | undefined {
  return /\b(\d{6})\b/.exec(mail.text)?.[1];
}

export async function startSmtp(opts: StartSmtpOptions = {}): Promise<SmtpHandle> {
  const messages: CapturedMail[] = [];
  const attempts = new Map<string, number>();
  let waiters: Array<{ match: (m: CapturedMail) => boolean; resolve: (m: CapturedMail) => void }> = [];

  const server = new SMTPServer({
    secure: false,
    authOptional: true,
    disabledCommands: ['STARTTLS', 'AUTH'],
    logger: false,
    banner: 'handoff test smtp',
    // No reverse DNS of 127.0.0.1 before the greeting: where that lookup is slow it can hold each
    // mail for up to 1.5 s, longer than the short resend windows and code lifetimes tests use.
    disableReverseLookup: true,
    onRcptTo(address, _session, callback) {
      const to = address.address.toLowerCase();
      const n = (attempts.get(to) ?? 0) + 1;
      attempts.set(to, n);
      const refusal = opts.refuse?.(to, n);
      if (refusal) {
        const m = /^(\d{3})\s*(.*)$/.exec(refusal);
        const err = Object.assign(new Error(m ? m[2] : refusal), { responseCode: m ? Number(m[1]) : 451 });
        return callback(err);
      }
      callback();
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        const raw = Buffer.concat(chunks).toString('utf8');
        const mail: CapturedMail = {
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          to: session.envelope.rcptTo.map((r) => r.address.toLowerCase()),
          ...parse(raw),
          raw,
        };
        messages.push(mail);
        waiters = waiters.filter((w) => {
          if (!w.match(mail)) return true;
          w.resolve(mail);
          return false;
        });
        callback();
      });
    },
  });
  server.on('error', () => {}); // a client dropping the connection is not a test failure

  await new Promise<void>((resolve, reject) => {
    server.server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.server.address() as AddressInfo).port;

  return {
    url: `smtp://127.0.0.1:${port}`,
    port,
    messages,
    attempts,
    to: (address) => messages.filter((m) => m.to.includes(address.toLowerCase())),
    waitFor(match, timeoutMs = 10_000) {
      const seen = messages.find(match);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters = waiters.filter((w) => w.resolve !== done);
          reject(new Error(`no matching mail within ${timeoutMs} ms; got ${messages.length}: ${messages.map((m) => `${m.to} "${m.subject}"`).join(', ')}`));
        }, timeoutMs);
        const done = (m: CapturedMail) => {
          clearTimeout(timer);
          resolve(m);
        };
        waiters.push({ match, resolve: done });
      });
    },
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** Headers and text of a single-part message (7bit, quoted-printable or base64; what nodemailer sends for plain text). */
function parse(raw: string): { subject: string; text: string } {
  const split = raw.indexOf('\r\n\r\n');
  const head = (split >= 0 ? raw.slice(0, split) : raw).replace(/\r\n[ \t]+/g, ' ');
  let body = split >= 0 ? raw.slice(split + 4) : '';
  const header = (name: string) => new RegExp(`^${name}:\\s*(.*)$`, 'im').exec(head)?.[1]?.trim() ?? '';
  const encoding = header('Content-Transfer-Encoding').toLowerCase();
  if (encoding === 'quoted-printable') {
    body = body
      .replace(/=\r?\n/g, '')
      .replace(/=([0-9A-F]{2})/gi, (_m, hex: string) => String.fromCharCode(parseInt(hex, 16)));
    body = Buffer.from(body, 'latin1').toString('utf8');
  } else if (encoding === 'base64') {
    body = Buffer.from(body.replace(/\s+/g, ''), 'base64').toString('utf8');
  }
  return { subject: decodeWords(header('Subject')), text: body.replace(/\r\n/g, '\n').trimEnd() };
}

/** RFC 2047 encoded words (=?UTF-8?Q?...?= / =?UTF-8?B?...?=) in a header. */
function decodeWords(value: string): string {
  return value.replace(/=\?([^?]+)\?([QqBb])\?([^?]*)\?=\s*/g, (_m, _charset: string, kind: string, data: string) =>
    kind.toUpperCase() === 'B'
      ? Buffer.from(data, 'base64').toString('utf8')
      : Buffer.from(data.replace(/_/g, ' ').replace(/=([0-9A-F]{2})/gi, (_x, h: string) => String.fromCharCode(parseInt(h, 16))), 'latin1').toString('utf8'),
  );
}
