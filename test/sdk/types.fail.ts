/**
 * Misuses of the public API that must NOT compile: types.test.ts runs tsc on this file and expects
 * an error on exactly the lines that end in a cross comment, and nowhere else.
 */
import { AsyncLogin, Handoff, HandoffError, QrLogin, type FlowState, type TransportName } from '@handoff/client-sdk';

declare const handoff: Handoff;
declare const qr: QrLogin;
declare const login: AsyncLogin;

export function misuses(): void {
  new Handoff({}); // ✗ url is required
  new Handoff({ url: 'https://a.example', transports: ['carrier-pigeon'] }); // ✗ unknown transport
  new Handoff({ url: 'https://a.example', requestTimeout: '10s' }); // ✗ durations are numbers (ms)
  new Handoff({ url: 'https://a.example', reconnect: true }); // ✗ no such option
  void handoff.asyncLogin({ email: 'a@example.com' }); // ✗ a password or a code is needed
  void handoff.login({ email: 'a@example.com', password: 42 }); // ✗ the password is a string
  void handoff.scan(42); // ✗ QR ids are strings
  void qr.session({ timeout: '1s' }); // ✗ timeout in ms
  qr.on('stat', () => {}); // ✗ unknown event
  qr.on('state', (s: string) => s); // ✗ the payload is a FlowState
  handoff.on('state', () => {}); // ✗ the client's event is `transport`
  const loginState: FlowState = login.state; // ✗ an AsyncLogin may have no flow (null)
  const transport: TransportName = handoff.transport; // ✗ null while disconnected
  const pending: 'pending' = qr.state.state; // ✗ any flow state name
  new HandoffError('no_such_code'); // ✗ codes are the catalogue's and the SDK's
  const token: string = qr.watchToken; // ✗ the watch token stays inside the SDK
  const watched: FlowState = handoff.watchScanned('id').state; // ✗ null until the first snapshot
  void handoff.watchScanned('id').session(); // ✗ the scanner watches; only the browser redeems
  void [loginState, transport, pending, token, watched];
}

export async function sessions(): Promise<void> {
  const session = await qr.session();
  const email: string = session.user.email; // ✗ an assertion's app user has no email: narrow on tokenType first
  const kind: 'session' = session.tokenType; // ✗ 'session' or 'assertion'
  void [email, kind];
}

export function codes(err: HandoffError): boolean {
  return err.code === 'canceled'; // ✗ the code is `cancelled`
}
