/**
 * Helpers for the SDK tests: clients that are closed after each test, and waits on the SDK's own
 * events (never sleeps).
 */
import { Handoff, type FlowState, type HandoffOptions, type QrLogin, type AsyncLogin, type ScannedQr, type TransportEvent } from '@handoff/client-sdk';

/** What the waits below watch: a browser's flow handle, or the phone's watch of a scanned flow. */
type Watched = QrLogin | AsyncLogin | ScannedQr;

/** Makes Handoff clients and closes them all at the end of a test. */
export class Clients {
  private readonly made: Handoff[] = [];

  make(options: HandoffOptions): Handoff {
    const client = new Handoff({ headers: { 'user-agent': 'TestBrowser/1.0' }, ...options });
    this.made.push(client);
    return client;
  }

  closeAll(): void {
    for (const client of this.made.splice(0)) client.close();
  }
}

/** Records a flow handle's states. */
export function recordStates(flow: Watched): FlowState[] {
  const states: FlowState[] = [];
  flow.on('state', (s) => states.push(s));
  return states;
}

/** Resolves with the first state (current or future) matching `name`. */
export function stateReached(flow: Watched, name: FlowState['state'], timeoutMs = 15_000): Promise<FlowState> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`flow never reached ${name}; it is ${flow.state?.state}`));
    }, timeoutMs);
    const off = flow.on('state', (s) => {
      if (s.state !== name) return;
      clearTimeout(timer);
      off();
      resolve(s);
    });
  });
}

/** Resolves once the flow's subscription is `subscribed`. */
export function subscribed(flow: Watched, timeoutMs = 15_000): Promise<void> {
  if (flow.subscriptionState === 'subscribed') return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`never subscribed; state ${flow.subscriptionState}`));
    }, timeoutMs);
    const off = flow.on('subscription', (e) => {
      if (e.newState !== 'subscribed') return;
      clearTimeout(timer);
      off();
      resolve();
    });
  });
}

/** Records a client's transport events. */
export function recordTransport(client: Handoff): TransportEvent[] {
  const events: TransportEvent[] = [];
  client.on('transport', (e) => events.push(e));
  return events;
}

/** Resolves with the first transport event (from now on) matching `match`; at once if the current state matches. */
export function transportReached(client: Handoff, match: (state: Handoff['state'], transport: Handoff['transport']) => boolean, timeoutMs = 20_000): Promise<void> {
  if (match(client.state, client.transport)) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`transport never matched; it is ${client.state}/${client.transport}`));
    }, timeoutMs);
    const off = client.on('transport', (e) => {
      if (!match(e.newState, e.transport)) return;
      clearTimeout(timer);
      off();
      resolve();
    });
  });
}

/** The rejection of `promise` (fails if it resolves). */
export async function rejectionOf(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection');
}
