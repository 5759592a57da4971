// The demo login page: a live QR code (through the Handoff SDK's browser bundle, global `Handoff`),
// its countdown, the live transport, "Sign in with your phone" (push-to-approve: type the email,
// show the 2-digit number, wait for the phone), and a password form. No framework, no inline script.
'use strict';

(function () {
  const $ = (id) => document.getElementById(id);

  if (typeof window.Handoff !== 'function') {
    const box = $('boot-error');
    box.textContent =
      'The Handoff SDK bundle did not load (/sdk/handoff.iife.js). Build it with `npm run build:sdk` (or `npm start`), then reload.';
    box.hidden = false;
    $('login-view').hidden = true;
    return;
  }

  const Handoff = window.Handoff;
  const handoff = new Handoff({ url: location.origin });

  const el = {
    loginView: $('login-view'),
    signedInView: $('signed-in-view'),
    qrTitle: $('qr-title'),
    qrBox: $('qr-box'),
    qrImg: $('qr-img'),
    qrAvatar: $('qr-avatar'),
    statusTitle: $('status-title'),
    statusDetail: $('status-detail'),
    countdownWrap: $('countdown-wrap'),
    countdown: $('countdown'),
    countdownBar: $('countdown-bar'),
    newCode: $('new-code'),
    cancelCode: $('cancel-code'),
    linkWrap: $('qr-link-wrap'),
    link: $('qr-link'),
    copy: $('copy-link'),
    copyNote: $('copy-note'),
    openLink: $('open-link'),
    transport: $('transport'),
    transportText: $('transport-text'),
    form: $('password-form'),
    email: $('pw-email'),
    password: $('pw-password'),
    pwError: $('pw-error'),
    pwSubmit: $('pw-submit'),
    signedInTitle: $('signed-in-title'),
    signedInHow: $('signed-in-how'),
    meAvatar: $('me-avatar'),
    meMethod: $('me-method'),
    meTransport: $('me-transport'),
    meExpires: $('me-expires'),
    signOut: $('sign-out'),
    apTitle: $('ap-title'),
    apForm: $('approval-form'),
    apEmail: $('ap-email'),
    apSubmit: $('ap-submit'),
    apWait: $('ap-wait'),
    apNumber: $('ap-number'),
    apStatusTitle: $('ap-status-title'),
    apStatusDetail: $('ap-status-detail'),
    apAgain: $('ap-again'),
    apCancel: $('ap-cancel'),
  };

  /** The push-to-approve request on screen, with its own generation number. */
  let approval = null;
  let apGeneration = 0;

  /** The QR flow on screen, and a generation number so late events of an old flow are ignored. */
  let qr = null;
  let generation = 0;
  let cancelledHere = false;
  /** The live transport when the flow was confirmed: the signed-in view says what carried it. */
  let lastLive = null;
  let countdownTimer = null;

  const TRANSPORT_TEXT = {
    websocket: 'Live: WebSocket',
    polling: 'Live: Socket.IO HTTP polling',
    webtransport: 'Live: WebTransport',
    'long-poll': 'Live: HTTP long-poll fallback',
  };

  // ---- transport -------------------------------------------------------------------------

  function showTransport() {
    const live = handoff.transport;
    let text;
    let kind;
    if (live) {
      text = TRANSPORT_TEXT[live] || `Live: ${live}`;
      kind = live === 'long-poll' ? 'fallback' : 'live';
      lastLive = live;
    } else if (handoff.state === 'connecting') {
      text = 'Connecting…';
      kind = 'connecting';
    } else {
      text = qr && !isFinal(qr.state.state) ? 'Not connected' : 'Idle: no code to watch';
      kind = 'none';
    }
    el.transport.dataset.transport = kind;
    el.transportText.textContent = text;
  }
  handoff.on('transport', showTransport);

  // ---- the QR flow -----------------------------------------------------------------------

  function isFinal(state) {
    return state === 'redeemed' || state === 'cancelled' || state === 'expired';
  }

  function focusIfIdle(target) {
    // Move focus for a state change only when the user is not busy in the password form.
    const active = document.activeElement;
    if (active && el.form.contains(active)) return;
    target.focus();
  }

  function setStatus(title, detail) {
    el.statusTitle.textContent = title;
    el.statusDetail.textContent = detail || '';
  }

  async function newCode() {
    const gen = ++generation;
    if (qr) qr.close();
    qr = null;
    cancelledHere = false;
    stopCountdown();
    el.qrBox.dataset.state = 'loading';
    el.qrImg.removeAttribute('src');
    el.qrImg.alt = '';
    el.newCode.hidden = true;
    el.cancelCode.hidden = true;
    el.linkWrap.hidden = true;
    setStatus('Creating a code…');
    let flow;
    try {
      flow = await handoff.qrLogin();
    } catch (err) {
      if (gen !== generation) return;
      el.qrBox.dataset.state = 'error';
      setStatus('Could not create a code', describeError(err));
      el.newCode.hidden = false;
      focusIfIdle(el.newCode);
      return;
    }
    if (gen !== generation) return void flow.close();
    qr = flow;
    el.qrImg.src = sameOrigin(flow.imageUrl);
    el.qrImg.alt = 'QR code: scan it with the Handoff app';
    el.link.value = flow.qrPayload;
    el.openLink.href = flow.qrPayload;
    el.copyNote.textContent = '';
    el.linkWrap.hidden = false;
    startCountdown(flow.expiresAt, gen);
    flow.on('state', (s) => {
      if (gen === generation) render(s);
    });
    flow.session().then(
      (session) => {
        if (gen === generation) signedIn(session, 'qr');
      },
      (err) => {
        if (gen !== generation) return;
        // cancelled / expired are shown from the state itself; anything else is an error here.
        if (Handoff.isHandoffError(err, 'cancelled') || Handoff.isHandoffError(err, 'expired') || Handoff.isHandoffError(err, 'closed')) return;
        el.qrBox.dataset.state = 'error';
        setStatus('Something went wrong', describeError(err));
        el.cancelCode.hidden = true;
        el.newCode.hidden = false;
        stopCountdown();
        focusIfIdle(el.newCode);
      },
    );
    showTransport();
  }

  function render(s) {
    el.qrBox.dataset.state = s.state;
    el.cancelCode.hidden = !(s.state === 'pending' || s.state === 'scanned');
    switch (s.state) {
      case 'pending':
        setStatus('Scan with the Handoff app', 'Open the phone app, sign in, and scan this code (or paste the link below).');
        break;
      case 'scanned': {
        const who = (s.scannedBy && s.scannedBy.displayName) || 'someone';
        setAvatar(el.qrAvatar, who);
        setStatus(`Scanned by ${who} — confirm on your phone`, 'Waiting for the phone to confirm…');
        break;
      }
      case 'confirmed':
      case 'redeemed':
        setStatus('Confirmed — signing you in…');
        stopCountdown();
        break;
      case 'cancelled':
        stopCountdown();
        setStatus(cancelledHere ? 'You cancelled' : 'Cancelled on your phone', 'Nobody was signed in. Get a new code to try again.');
        endWithNewCode();
        break;
      case 'expired':
        stopCountdown();
        setStatus('This code expired', 'It was not confirmed in time. Get a new code to try again.');
        endWithNewCode();
        break;
    }
    showTransport();
  }

  function endWithNewCode() {
    el.cancelCode.hidden = true;
    el.linkWrap.hidden = true;
    el.newCode.hidden = false;
    el.qrImg.alt = 'QR code (no longer valid)';
    focusIfIdle(el.newCode);
  }

  // ---- countdown -------------------------------------------------------------------------

  function startCountdown(expiresAt, gen) {
    const end = Date.parse(expiresAt);
    const total = Math.max(1, end - Date.now());
    const tick = () => {
      if (gen !== generation) return stopCountdown();
      const left = Math.max(0, end - Date.now());
      const secs = Math.ceil(left / 1000);
      el.countdown.textContent = left > 0 ? `Expires in ${Math.floor(secs / 60)}:${String(secs % 60).padStart(2, '0')}` : 'Expiring…';
      el.countdownBar.style.transform = `scaleX(${Math.min(1, left / total)})`;
      el.countdownWrap.classList.toggle('urgent', secs <= 15);
    };
    stopCountdown();
    el.countdownWrap.hidden = false;
    tick();
    countdownTimer = setInterval(tick, 250);
  }

  function stopCountdown() {
    if (countdownTimer !== null) clearInterval(countdownTimer);
    countdownTimer = null;
    el.countdownWrap.hidden = true;
  }

  // ---- signed in -------------------------------------------------------------------------

  async function signedIn(session, how) {
    const gen = ++generation; // the QR flow on screen (if any) is over
    stopCountdown();
    if (how !== 'approval') withdrawApproval();
    else if (handoff.transport) lastLive = handoff.transport;
    if (qr) {
      const flow = qr;
      qr = null;
      // Signed in another way while a code was up: withdraw the code, so no phone can use it.
      if (how !== 'qr' && !isFinal(flow.state.state)) flow.cancel().catch(() => {}).finally(() => flow.close());
      else flow.close();
    }
    let user = session.user;
    try {
      // Show that the token works: the user as GET /v1/me tells it.
      const res = await fetch('/v1/me', { headers: { authorization: `Bearer ${session.token}` }, cache: 'no-store' });
      if (res.ok) user = await res.json();
    } catch {
      // the session's own user will do
    }
    if (gen !== generation) return;
    const name = user.displayName || user.email;
    el.signedInTitle.textContent = `Signed in as ${name} (${user.email})`;
    const viaPhone = how === 'qr' || how === 'approval';
    el.signedInHow.textContent = viaPhone
      ? 'You confirmed on your phone, and this page knew at once: no reload, no polling loop.'
      : 'Welcome back. (Try the QR code next time: it is quicker.)';
    setAvatar(el.meAvatar, name);
    el.meMethod.textContent = how === 'qr' ? 'Phone (QR code)' : how === 'approval' ? 'Phone (approved with a number)' : 'Password';
    el.meTransport.textContent = viaPhone
      ? lastLive === 'long-poll' ? 'HTTP long-poll fallback' : lastLive === 'websocket' ? 'WebSocket' : lastLive || '—'
      : 'HTTP (one request)';
    el.meExpires.textContent = formatTime(session.expiresAt);
    el.loginView.hidden = true;
    el.signedInView.hidden = false;
    el.signedInTitle.focus();
    showTransport();
  }

  function signOut() {
    resetApproval();
    el.signedInView.hidden = true;
    el.loginView.hidden = false;
    el.password.value = '';
    el.pwError.textContent = '';
    el.qrTitle.focus();
    newCode();
  }

  // ---- sign in with your phone (push-to-approve) -------------------------------------------

  function setApStatus(title, detail) {
    el.apStatusTitle.textContent = title || '';
    el.apStatusDetail.textContent = detail || '';
  }

  /** Back to the email form, with no request on screen. */
  function resetApproval() {
    apGeneration++;
    if (approval) approval.close();
    approval = null;
    el.apForm.hidden = false;
    el.apWait.hidden = true;
    el.apAgain.hidden = true;
    el.apCancel.hidden = true;
    el.apSubmit.disabled = false;
    setApStatus('');
  }

  /** Signed in some other way while a request was up: withdraw it, so no phone can approve it. */
  function withdrawApproval() {
    const flow = approval;
    apGeneration++;
    approval = null;
    if (!flow) return;
    if (flow.state.state === 'pending') flow.cancel().catch(() => {}).finally(() => flow.close());
    else flow.close();
  }

  async function onApprovalSubmit(event) {
    event.preventDefault();
    const login = el.apEmail.value.trim();
    if (!login) {
      setApStatus('Enter your email.');
      el.apEmail.setAttribute('aria-invalid', 'true');
      el.apEmail.focus();
      return;
    }
    el.apEmail.removeAttribute('aria-invalid');
    const gen = ++apGeneration;
    el.apSubmit.disabled = true;
    setApStatus('Asking your phone…');
    let flow;
    try {
      flow = await handoff.approvalLogin({ login });
    } catch (err) {
      if (gen !== apGeneration) return;
      el.apSubmit.disabled = false;
      setApStatus('Could not send the request', describeError(err));
      return;
    }
    if (gen !== apGeneration) return void flow.close();
    approval = flow;
    el.apForm.hidden = true;
    el.apNumber.textContent = String(flow.number).padStart(2, '0');
    el.apWait.hidden = false;
    el.apCancel.hidden = false;
    setApStatus('Check your phone', `Open the Handoff app signed in as ${login} and tap ${el.apNumber.textContent}.`);
    flow.on('state', (s) => {
      if (gen === apGeneration) renderApproval(s);
    });
    flow.session().then(
      (session) => {
        if (gen === apGeneration) signedIn(session, 'approval');
      },
      (err) => {
        if (gen !== apGeneration) return;
        if (['denied', 'cancelled', 'expired', 'closed'].some((code) => Handoff.isHandoffError(err, code))) return; // shown from the state
        endApproval('Something went wrong', describeError(err));
      },
    );
    showTransport();
  }

  function renderApproval(s) {
    switch (s.state) {
      case 'approved':
      case 'redeemed':
        el.apCancel.hidden = true;
        setApStatus('Approved on your phone — signing you in…');
        break;
      case 'denied':
        endApproval('Denied on your phone', 'The request was refused (Deny, or a wrong number). Nobody was signed in.');
        break;
      case 'cancelled':
        endApproval('You cancelled the request', 'Nobody was signed in.');
        break;
      case 'expired':
        endApproval('The request expired', 'Nobody answered it on the phone in time.');
        break;
    }
  }

  function endApproval(title, detail) {
    el.apWait.hidden = true;
    el.apCancel.hidden = true;
    el.apAgain.hidden = false;
    setApStatus(title, detail);
    focusIfIdle(el.apAgain);
  }

  // ---- password form ---------------------------------------------------------------------

  async function onPasswordSubmit(event) {
    event.preventDefault();
    const email = el.email.value.trim();
    const password = el.password.value;
    el.pwError.textContent = '';
    el.email.removeAttribute('aria-invalid');
    el.password.removeAttribute('aria-invalid');
    if (!email || !password) {
      el.pwError.textContent = !email ? 'Enter your email.' : 'Enter your password.';
      const bad = !email ? el.email : el.password;
      bad.setAttribute('aria-invalid', 'true');
      bad.focus();
      return;
    }
    el.pwSubmit.disabled = true;
    el.pwSubmit.textContent = 'Signing in…';
    try {
      const session = await handoff.login({ email, password });
      await signedIn(session, 'password');
    } catch (err) {
      el.pwError.textContent = Handoff.isHandoffError(err, 'invalid_credentials') ? 'Wrong email or password.' : describeError(err);
      el.password.setAttribute('aria-invalid', 'true');
      el.password.select();
      el.password.focus();
    } finally {
      el.pwSubmit.disabled = false;
      el.pwSubmit.textContent = 'Sign in';
    }
  }

  // ---- helpers ---------------------------------------------------------------------------

  function describeError(err) {
    if (Handoff.isHandoffError(err, 'rate_limited')) {
      return `Too many attempts; try again in ${err.retryAfter || 'a few'} seconds.`;
    }
    if (Handoff.isHandoffError(err, 'network')) return 'The server cannot be reached. Is it running?';
    return (err && err.message) || String(err);
  }

  function setAvatar(node, name) {
    node.textContent = (name || '?').trim().charAt(0).toUpperCase() || '?';
  }

  /** The QR image from this server (the page's CSP allows no other), whatever PUBLIC_URL says. */
  function sameOrigin(url) {
    const u = new URL(url, location.href);
    return u.origin === location.origin ? u.href : u.pathname;
  }

  function formatTime(iso) {
    const d = new Date(iso);
    return Number.isNaN(d.getTime()) ? iso : d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  }

  async function copyLink() {
    const text = el.link.value;
    try {
      await navigator.clipboard.writeText(text);
      el.copyNote.textContent = 'Copied.';
    } catch {
      el.link.focus();
      el.link.select();
      el.copyNote.textContent = 'Selected: press Ctrl+C (⌘C) to copy.';
    }
  }

  el.newCode.addEventListener('click', () => {
    el.qrTitle.focus();
    newCode();
  });
  el.cancelCode.addEventListener('click', async () => {
    const flow = qr;
    if (!flow) return;
    cancelledHere = true;
    el.cancelCode.disabled = true;
    try {
      await flow.cancel();
    } catch (err) {
      if (flow !== qr) return;
      // The `cancelled` push can beat the DELETE's own answer; the handle then ends and the
      // SDK rejects the call (`closed`) although the cancel went through.
      if (flow.state.state === 'cancelled') return;
      cancelledHere = false;
      // Too late (e.g. just confirmed): the state that won is shown by the flow itself.
      if (!Handoff.isHandoffError(err, 'invalid_transition')) setStatus('Could not cancel', describeError(err));
    } finally {
      el.cancelCode.disabled = false;
    }
  });
  el.apForm.addEventListener('submit', onApprovalSubmit);
  el.apAgain.addEventListener('click', () => {
    resetApproval();
    el.apEmail.focus();
  });
  el.apCancel.addEventListener('click', async () => {
    const flow = approval;
    if (!flow) return;
    el.apCancel.disabled = true;
    try {
      await flow.cancel();
    } catch (err) {
      // Too late (approved or denied meanwhile): the state that won is shown by the flow itself.
      if (flow === approval && flow.state.state === 'pending') setApStatus('Could not cancel', describeError(err));
    } finally {
      el.apCancel.disabled = false;
    }
  });
  el.copy.addEventListener('click', copyLink);
  el.link.addEventListener('focus', () => el.link.select());
  el.form.addEventListener('submit', onPasswordSubmit);
  el.signOut.addEventListener('click', signOut);
  window.addEventListener('pagehide', () => handoff.close());
  // Back from the back/forward cache with a closed client: start over.
  window.addEventListener('pageshow', (e) => {
    if (e.persisted) location.reload();
  });

  newCode();
})();
