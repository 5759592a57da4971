import type { FlowState, Topic } from '@handoff/protocol';
import type { Listener, Unsubscribe } from './emitter.js';
import { FlowEmitter, type FlowContext, type FlowEvents } from './flow.js';
import type { Scope } from './scope.js';
import { FlowSubscription, type SubscriptionState } from './subscription.js';

/**
 * Phone side: a QR flow this user scanned, watched without its watch token
 * (`handoff.watchScanned(id)`, with the app's JWT). It shows the phone what the browser does
 * meanwhile: a `cancelled` from the browser, the `expired` state, and `redeemed` once the browser
 * took the session after the confirm. Same subscription as a browser's flow handle: socket pushes
 * while connected (the socket's own identity proves the scanner), long-poll with
 * `Authorization: Bearer` in fallback, a snapshot after every reconnect; a final state ends it.
 * Only the user who scanned may watch: anyone else's subscription ends `failed` with
 * `invalid_watch_token`.
 *
 * ```ts
 * const info = await app.scan(id);
 * const watch = app.watchScanned(id);
 * watch.on('state', (s) => { if (s.state === 'cancelled' || s.state === 'expired') closeConfirmScreen(); });
 * ```
 */
export class ScannedQr {
  /** The flow id. */
  readonly id: string;
  /** `qr:<id>`. */
  readonly topic: Topic;
  private readonly emitter = new FlowEmitter(() => this.state);
  private readonly scope: Scope;
  private readonly sub: FlowSubscription;

  /** @internal Use `handoff.watchScanned(id)`. */
  constructor(ctx: FlowContext, id: string) {
    this.id = id;
    this.topic = `qr:${id}`;
    this.scope = ctx.scope.child();
    const sub = new FlowSubscription(ctx, this.topic, { scanner: ctx.options.tokens }, null, this.scope);
    this.sub = sub;
    this.scope.add(sub.events.on('flow', (state) => this.emitter.emit('state', state)));
    this.scope.add(
      sub.events.on('subscription', (e) => {
        this.emitter.emit('subscription', e);
        if (e.newState === 'unsubscribed') this.scope.dispose();
      }),
    );
    this.scope.add(() => sub.unsubscribe());
    sub.subscribe();
  }

  /** The flow's current state; null until the first snapshot is in. */
  get state(): FlowState | null {
    return this.sub.flow;
  }

  /** `subscribing` until the snapshot is in, `subscribed` while states arrive, `unsubscribed` once ended. */
  get subscriptionState(): SubscriptionState {
    return this.sub.state;
  }

  /** Listen to `state` (a new listener first gets the current one) or `subscription`; returns the off-function. */
  on<K extends keyof FlowEvents>(event: K, fn: Listener<FlowEvents[K]>): Unsubscribe {
    return this.emitter.on(event, fn);
  }

  /** Remove a listener added with `on`. */
  off<K extends keyof FlowEvents>(event: K, fn: Listener<FlowEvents[K]>): void {
    this.emitter.off(event, fn);
  }

  /** A safe summary for logs and `JSON.stringify`. */
  toJSON(): { topic: string; state: FlowState | null; subscriptionState: SubscriptionState } {
    return { topic: this.topic, state: this.state, subscriptionState: this.subscriptionState };
  }

  /** Stop watching. Idempotent. */
  close(): void {
    this.scope.dispose();
  }
}
