// Acme's login page script (no inline scripts: the page's CSP is script-src 'self').
// Handoff's SDK (the global `Handoff`, from /sdk/handoff.iife.js) talks to Handoff's origin; the
// assertion it redeems goes to Acme's own backend, which sets Acme's own session cookie.
'use strict';

const $ = (id) => document.getElementById(id);
const handoff = new Handoff({ url: document.body.dataset.handoffUrl });
let qr = null;
let serverFlow = null;

const QR_TEXT = {
  pending: () => 'Scan with the Acme app',
  scanned: (s) => `Scanned by ${s.scannedBy?.displayName ?? 'your phone'} — confirm on your phone`,
  confirmed: () => 'Confirmed — signing you in…',
};

function errorText(err) {
  const code = err?.state?.error?.code ?? err?.code;
  if (code === 'invalid_credentials') return 'Wrong login or password.';
  if (code === 'unavailable') return 'Acme could not check your password just now. Try again.';
  if (code === 'expired') return 'The code expired.';
  if (code === 'cancelled') return 'Sign-in was declined on the phone.';
  if (code === 'rate_limited') return 'Too many attempts. Wait a little.';
  return `Sign-in failed (${code ?? 'network'}).`;
}

/** Hand Handoff's assertion to Acme's backend, which verifies it and sets Acme's session cookie. */
async function signInWith(session) {
  const res = await fetch('/api/handoff/assertion', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ assertion: session.token }),
  });
  if (!res.ok) throw Object.assign(new Error('assertion refused'), { code: (await res.json().catch(() => ({}))).error?.code });
  await render();
}

function stopQr() {
  qr?.close();
  qr = null;
  serverFlow?.abort();
  serverFlow = null;
}

function showQr(flowId, imageUrl, qrPayload) {
  $('qr-img').src = imageUrl;
  $('qr-img').alt = `QR code to sign in (${qrPayload})`;
  $('qr-img').dataset.flowId = flowId;
  $('qr-link').textContent = qrPayload;
  $('qr-new').hidden = true;
}

function showQrState(s) {
  $('qr-box').dataset.state = s.state;
  const text = QR_TEXT[s.state];
  if (text) $('qr-status').textContent = text(s);
}

function qrFailed(err) {
  $('qr-status').textContent = errorText(err);
  $('qr-new').hidden = false;
}

/** QR login with the SDK: Handoff creates the flow (POST /v1/qr from this page). */
async function startQr() {
  stopQr();
  $('qr-status').textContent = 'Loading a QR code…';
  let flow;
  try {
    flow = qr = await handoff.qrLogin();
  } catch (err) {
    return qrFailed(err);
  }
  showQr(flow.id, flow.imageUrl, flow.qrPayload);
  showQrState(flow.state);
  flow.on('state', showQrState);
  flow.session().then(signInWith).catch((err) => qr === flow && qrFailed(err));
}

/**
 * QR login through Acme's backend (Handoff's server API): Acme creates the flow with this browser's
 * address and user agent and a context for the phone; the page follows it by long-poll and redeems.
 */
async function startServerQr() {
  stopQr();
  const abort = (serverFlow = new AbortController());
  const { signal } = abort;
  try {
    const res = await fetch('/api/handoff/qr', { method: 'POST', signal });
    if (!res.ok) throw Object.assign(new Error('create failed'), { code: (await res.json().catch(() => ({}))).error?.code });
    const flow = await res.json();
    showQr(flow.id, flow.imageUrl, flow.qrPayload);
    const base = `${handoff.url}/v1/flows/${encodeURIComponent(flow.topic)}`;
    const headers = { 'watch-token': flow.watchToken };
    let state = flow;
    showQrState(state);
    while (state.state === 'pending' || state.state === 'scanned') {
      const poll = await fetch(`${base}?after=${state.version}&wait=25`, { headers, signal });
      if (!poll.ok) throw Object.assign(new Error('poll failed'), { code: 'network' });
      state = await poll.json();
      showQrState(state);
    }
    if (state.state !== 'confirmed') throw Object.assign(new Error(state.state), { code: state.state });
    const redeem = await fetch(`${base}/session`, { method: 'POST', headers, signal });
    if (!redeem.ok) throw Object.assign(new Error('redeem failed'), { code: (await redeem.json().catch(() => ({}))).error?.code });
    await signInWith(await redeem.json());
  } catch (err) {
    if (!signal.aborted) qrFailed(err);
  }
}

async function passwordLogin(event) {
  event.preventDefault();
  const status = $('password-status');
  status.textContent = 'Checking…';
  try {
    const login = await handoff.asyncLogin({ login: $('login').value, password: $('password').value });
    login.on('state', (s) => {
      if (s.state === 'queued') status.textContent = `Waiting in line (${s.position} ahead)…`;
      if (s.state === 'processing') status.textContent = 'Acme is checking your password…';
    });
    await signInWith(await login.session());
    status.textContent = '';
    $('password').value = '';
  } catch (err) {
    status.textContent = errorText(err);
  }
}

/** Show who is signed in (Acme's own /api/session, by its session cookie), else the sign-in choices. */
async function render() {
  const res = await fetch('/api/session');
  const me = res.ok ? (await res.json()).user : null;
  $('signed-in').hidden = !me;
  $('signed-out').hidden = !!me;
  if (me) {
    stopQr();
    $('signed-in-title').textContent = `Signed in as ${me.displayName}`;
    $('me-detail').textContent = `Acme user ${me.login} (${me.id}), ${me.via}`;
    $('signed-in-title').focus();
  } else if (!qr && !serverFlow) {
    void startQr();
  }
}

$('qr-new').addEventListener('click', () => void startQr());
$('qr-server').addEventListener('click', () => void startServerQr());
$('password-form').addEventListener('submit', passwordLogin);
$('sign-out').addEventListener('click', async () => {
  await fetch('/api/logout', { method: 'POST' });
  await render();
});
void render();
