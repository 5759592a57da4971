/**
 * An async password login: the server queues it (202) and the SDK follows the login flow — the
 * queue position while `queued` — until it succeeds and is redeemed. On a server that logs in at
 * once (200), `session()` simply resolves at once.
 */
import { Handoff } from '@handoff/client-sdk';

export async function asyncLoginExample(
  url: string,
  email: string,
  password: string,
  showPosition: (position: number | undefined) => void,
): Promise<string> {
  const handoff = new Handoff({ url });
  try {
    const login = await handoff.asyncLogin({ email, password });
    login.on('state', (s) => showPosition(s.position));
    const { token } = await login.session();
    return token;
  } finally {
    handoff.close();
  }
}
