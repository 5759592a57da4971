/**
 * The public types, used as an application would: this file must compile (types.test.ts runs tsc
 * on it, with client-sdk/examples/*.ts).
 */
import {
  AsyncLogin,
  DEFAULTS,
  Handoff,
  HandoffError,
  QrLogin,
  SDK_ERRORS,
  TRANSPORT_CODES,
  isHandoffError,
  type FlowState,
  type HandoffErrorCode,
  type HandoffOptions,
  type LoginCredentials,
  type Requester,
  type ScanResult,
  type ScannedQr,
  type Session,
  type SocketFactory,
  type SubscriptionEvent,
  type SubscriptionState,
  type TransportEvent,
  type TransportName,
  type TransportState,
  type Unsubscribe,
} from '@handoff/client-sdk';
import { io } from 'socket.io-client';

declare function render(s: FlowState): void;

export async function browser(): Promise<Session> {
  const factory: SocketFactory = io; // socket.io-client's io is the default factory
  const options: HandoffOptions = {
    url: 'https://auth.example.com',
    io: factory,
    fetch: (input, init) => fetch(input, init),
    transports: ['websocket', 'polling'],
    requestTimeout: DEFAULTS.requestTimeout,
    fallbackTimeout: 2_000,
    longPollWait: 20,
  };
  const handoff = new Handoff(options);
  const controller = new AbortController();
  const qr: QrLogin = await handoff.qrLogin({ signal: controller.signal, timeout: 5_000 });
  const src: string = qr.imageUrl;
  void src;
  const off: Unsubscribe = qr.on('state', (s) => {
    render(s);
    const who: string | undefined = s.scannedBy?.displayName;
    void who;
  });
  off();
  qr.on('subscription', (e: SubscriptionEvent) => {
    const state: SubscriptionState = e.newState;
    void state;
  });
  const current: FlowState = qr.state; // a QR login always has a state
  void current;
  const transport: TransportState = handoff.state;
  const live: TransportName | null = handoff.transport;
  void transport;
  void live;
  handoff.on('transport', (e: TransportEvent) => {
    if (e.code === TRANSPORT_CODES.fallbackTimeout) render(qr.state);
  });
  try {
    return await qr.session({ timeout: 120_000 });
  } catch (err) {
    if (err instanceof HandoffError) {
      const code: HandoffErrorCode = err.code;
      const status: number | undefined = err.status;
      void status;
      switch (code) {
        case 'cancelled':
        case 'expired':
        case 'already_redeemed':
        case 'timeout':
          break;
      }
      const message: string = SDK_ERRORS.cancelled;
      void message;
    }
    throw err;
  } finally {
    handoff.close();
  }
}

export async function asyncLogin(credentials: LoginCredentials): Promise<string> {
  const handoff = new Handoff({ url: 'https://auth.example.com' });
  const login: AsyncLogin = await handoff.asyncLogin(credentials);
  const state: FlowState | null = login.state; // null when the server logged in at once
  void state;
  login.on('state', (s) => {
    const position: number | undefined = s.position;
    void position;
  });
  const session: Session = await login.session();
  await handoff.asyncLogin({ email: 'a@example.com', code: '123456' }, { wait: 5, timeout: 20_000 });
  // tokenType tells the two apart: a Handoff session JWT, or an assertion for the app's backend.
  if (session.tokenType === 'assertion') {
    const sub: string = session.user.id;
    const avatar: string | null = session.user.avatarUrl;
    void [sub, avatar];
  } else {
    const email: string = session.user.email;
    void email;
  }
  return session.token;
}

export async function phone(appJwt: string, qrId: string): Promise<FlowState> {
  const app = new Handoff({ url: 'https://auth.example.com', token: appJwt });
  await app.connect({ timeout: 10_000 });
  const info: ScanResult = await app.scan(qrId);
  const requester: Requester = info.requester;
  const ip: string = requester.ip;
  void ip;
  // The phone watches what it scanned: the browser may cancel while the confirm screen is open.
  const watch: ScannedQr = app.watchScanned(qrId);
  const off: Unsubscribe = watch.on('state', (s: FlowState) => void s.version);
  watch.on('subscription', (e: SubscriptionEvent) => void e.error?.code);
  const seen: FlowState | null = watch.state;
  const sub: SubscriptionState = watch.subscriptionState;
  void [seen, sub, watch.topic, watch.toJSON()];
  off();
  watch.close();
  try {
    return await app.confirm(qrId);
  } catch (err) {
    if (isHandoffError(err, 'not_scanner')) return app.cancel(qrId);
    throw err;
  }
}
