import { createTransport } from 'nodemailer';
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import { PermanentJobError } from '../queue/job-queue.js';
import type { CodeChannel } from './recipients.js';

/** One message to one recipient. */
export interface OutgoingMessage {
  channel: CodeChannel;
  /** Email address or E.164 phone number, normalised. */
  to: string;
  /** Email subject (SMS ignores it). */
  subject: string;
  text: string;
}

/**
 * Sends a message or throws: the job queue retries, unless the error is a PermanentJobError (the
 * recipient or the message was refused for good, so another attempt would only be refused again).
 */
export interface CodeSender {
  send(message: OutgoingMessage): Promise<void>;
}

/** How SMS leave: a provider behind one call (HttpSmsProvider; a vendor SDK would fit here). */
export interface SmsProvider {
  sendSms(to: string, text: string): Promise<void>;
}

/** Email over SMTP with nodemailer. SMTP_URL as nodemailer reads it, e.g. `smtp://user:pass@host:587`. */
export class SmtpSender implements CodeSender {
  private readonly transport: ReturnType<typeof createTransport>;

  /**
   * `url` may carry nodemailer options as query parameters (`?ignoreTLS=true`,
   * `?requireTLS=true`, `?tls.rejectUnauthorized=false`).
   */
  constructor(
    url: string,
    private readonly from: string,
  ) {
    this.transport = createTransport({
      url,
      connectionTimeout: 10_000,
      greetingTimeout: 10_000,
      socketTimeout: 20_000,
    });
  }

  async send(message: OutgoingMessage): Promise<void> {
    try {
      await this.transport.sendMail({ from: this.from, to: message.to, subject: message.subject, text: message.text });
    } catch (err) {
      // nodemailer's verdict on the reply: a 5yz is a permanent refusal (RFC 5321 §4.2.1: 550 no such
      // mailbox, 554 refused), except 503 (bad sequence of commands: a new session may pass).
      if ((err as { permanent?: unknown }).permanent === true) throw new PermanentJobError((err as Error).message);
      throw err;
    }
  }

  close(): void {
    this.transport.close();
  }
}

/** An SMS gateway reached by HTTP: POST `{to, text}` as JSON; any 2xx means sent. */
export class HttpSmsProvider implements SmsProvider {
  constructor(
    private readonly url: string,
    private readonly timeoutMs = 10_000,
    /** Hears at debug what does not change the outcome (default none); never the number, text or URL. */
    private readonly log?: Pick<Logger, 'debug'>,
  ) {}

  async sendSms(to: string, text: string): Promise<void> {
    const res = await fetch(this.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ to, text }),
      signal: AbortSignal.timeout(this.timeoutMs),
      redirect: 'error',
    });
    await res.body?.cancel().catch((err: unknown) => {
      this.log?.debug({ status: res.status, err: err instanceof Error ? err.message : String(err) }, 'SMS provider: the answer body could not be released');
    });
    // The status only: a provider's body might echo the message, and errors end up in logs.
    if (res.status >= 200 && res.status <= 299) return;
    const message = `SMS provider answered HTTP ${res.status}`;
    // A 4xx says the request itself was refused (a bad number, a bad key): sending it again is
    // refused again. Timeouts and throttling (408, 425, 429) and 5xx are worth another attempt.
    if (res.status >= 400 && res.status <= 499 && ![408, 425, 429].includes(res.status)) throw new PermanentJobError(message);
    throw new Error(message);
  }
}

/** SMS through a provider. */
export class SmsSender implements CodeSender {
  constructor(private readonly provider: SmsProvider) {}

  async send(message: OutgoingMessage): Promise<void> {
    await this.provider.sendSms(message.to, message.text);
  }
}

/**
 * Development only: prints the message, code included, through the logger at info. Used when
 * SMTP_URL / SMS_WEBHOOK_URL are unset and NODE_ENV is not production.
 */
export class LogSender implements CodeSender {
  constructor(private readonly log: Logger) {}

  async send(message: OutgoingMessage): Promise<void> {
    this.log.info(
      { channel: message.channel, to: message.to },
      `[dev] ${message.channel} to ${message.to} (not sent: no ${message.channel === 'email' ? 'SMTP_URL' : 'SMS_WEBHOOK_URL'}): ${message.subject}: ${message.text}`,
    );
  }
}

/** Which sender each channel uses; null = the channel is not configured (production without its URL). */
export type ChannelSenders = Record<CodeChannel, CodeSender | null>;

/** Sends each message through its channel's sender. */
export class RoutingSender implements CodeSender {
  constructor(private readonly senders: ChannelSenders) {}

  async send(message: OutgoingMessage): Promise<void> {
    const sender = this.senders[message.channel];
    if (!sender) throw new Error(`no sender configured for ${message.channel}`);
    await sender.send(message);
  }
}

/** True when `channel` can send in this configuration (configured, or development). */
export function channelConfigured(config: Config, channel: CodeChannel): boolean {
  const url = channel === 'email' ? config.smtpUrl : config.smsWebhookUrl;
  return url !== null || config.nodeEnv !== 'production';
}

/**
 * The senders the configuration asks for: SMTP_URL → SmtpSender, SMS_WEBHOOK_URL → SmsSender
 * over HttpSmsProvider; unset → LogSender outside production, nothing in production (that
 * channel answers 503, see CodeService).
 */
export function createChannelSenders(config: Config, log: Logger): ChannelSenders {
  const dev = config.nodeEnv !== 'production';
  return {
    email: config.smtpUrl ? new SmtpSender(config.smtpUrl, config.mailFrom) : dev ? new LogSender(log) : null,
    sms: config.smsWebhookUrl ? new SmsSender(new HttpSmsProvider(config.smsWebhookUrl, undefined, log)) : dev ? new LogSender(log) : null,
  };
}
