/**
 * A refused Socket.IO connection tells the client why in `connect_error`'s `err.data`: a catalogue
 * `{code, message}` (the message of the error stays the code, as contract §3 says).
 */
import { ERRORS } from '@handoff/protocol';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { connectSocketIo } from '../harness/clients.js';
import { STORE_MODES, startInProcess, testConfig, type InProcessServer } from '../harness/in-process.js';

let app: InProcessServer;
beforeAll(async () => {
  app = await startInProcess(testConfig(STORE_MODES[0], { url: '' }, 'socketio-refusal'));
});
afterAll(() => app?.close());

/** The `connect_error` of a connection attempt (fails if it connects). */
async function refusalOf(opts: { token?: string; transports?: ('websocket' | 'polling')[] }): Promise<Error & { data?: unknown }> {
  try {
    (await connectSocketIo(app.base, opts)).close();
  } catch (err) {
    return err as Error & { data?: unknown };
  }
  throw new Error('the connection was accepted');
}

it('a bad handshake token is refused with data {code: unauthorized, message}', async () => {
  const err = await refusalOf({ token: 'not-a-jwt' });
  expect(err.message).toBe('unauthorized');
  expect(err.data).toEqual({ code: 'unauthorized', message: ERRORS.unauthorized.message });
});

it('a node that is shutting down refuses a polling handshake with data {code: unavailable, message}', async () => {
  // (A WebSocket upgrade is refused earlier, by the upgrade router's plain 503: no Socket.IO packet, no data.)
  app.server.handoff.shuttingDown = true;
  try {
    const err = await refusalOf({ transports: ['polling'] });
    expect(err.message).toBe('unavailable');
    expect(err.data).toMatchObject({ code: 'unavailable', message: expect.stringContaining('shutting down') });
  } finally {
    app.server.handoff.shuttingDown = false;
  }
});
