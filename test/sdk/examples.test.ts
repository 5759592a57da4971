/**
 * The README's examples (client-sdk/examples/*.ts) run as written against a real embedded server:
 * the browser's QR login with the phone app's scan/confirm, a declined one, and the async login.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { FlowState, Requester } from '@handoff/client-sdk';
import { qrLoginExample } from '../../client-sdk/examples/qr-login.js';
import { phoneAppExample } from '../../client-sdk/examples/phone-app.js';
import { asyncLoginExample } from '../../client-sdk/examples/async-login.js';
import { ANA, MODES, login, startCluster, type Cluster } from '../harness/cluster.js';
import { http } from '../harness/clients.js';
import { rejectionOf } from './helpers.js';

let cluster: Cluster;
let appToken: string;

beforeAll(async () => {
  cluster = await startCluster(MODES[0]);
  appToken = await login(cluster.phone, ANA);
});
afterAll(() => cluster?.stop());

/** Run the browser example; resolves `id` with the QR id at its first render. */
function browserExample() {
  const img = { src: '' };
  const rendered: FlowState[] = [];
  let first: (id: string) => void = () => {};
  const id = new Promise<string>((resolve) => (first = resolve));
  const session = qrLoginExample(cluster.browser, img, (s) => {
    rendered.push(s);
    first(s.id);
  });
  return { img, rendered, id, session };
}

it('QR login: the browser example shows the code and gets the session once the phone example confirms', async () => {
  const browser = browserExample();
  const id = await browser.id;
  expect(browser.img.src).toBe(`${cluster.browser}/v1/qr/${id}/image.svg`);
  const asked: Requester[] = [];
  await expect(phoneAppExample(cluster.phone, appToken, id, async (r) => (asked.push(r), true))).resolves.toBe('confirmed');
  const session = await browser.session;
  expect(session).toMatchObject({ tokenType: 'session', user: { email: ANA.email } }); // a built-in user (ACCOUNTS=builtin)
  expect(asked[0]).toMatchObject({ ip: expect.any(String), userAgent: expect.any(String) });
  expect(browser.rendered[0].state).toBe('pending');
  expect(browser.rendered.at(-1)?.state).toMatch(/confirmed|redeemed/);
});

it('QR login declined on the phone: the browser example rejects with `cancelled`', async () => {
  const browser = browserExample();
  const outcome = rejectionOf(browser.session);
  await expect(phoneAppExample(cluster.phone, appToken, await browser.id, async () => false)).resolves.toBe('cancelled');
  expect(await outcome).toMatchObject({ name: 'HandoffError', code: 'cancelled' });
});

it('async login: the example returns a working token', async () => {
  const positions: Array<number | undefined> = [];
  const token = await asyncLoginExample(cluster.browser, ANA.email, ANA.password, (p) => positions.push(p));
  const me = await http(cluster.browser, 'GET', '/v1/me', { headers: { authorization: `Bearer ${token}` } });
  expect(me).toMatchObject({ status: 200, body: { email: ANA.email } });
});
