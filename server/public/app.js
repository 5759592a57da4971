// The demo phone app: sign in (the JWT is kept in sessionStorage), scan a QR link or id, show who
// is asking, confirm or cancel. While the confirm screen is open it watches the flow as the
// scanning user (the SDK's watchScanned: no watch token needed), so a cancel in the browser or the
// expiry shows at once.
'use strict';

(function () {
  const $ = (id) => document.getElementById(id);
  const STORAGE_KEY = 'handoff-demo-session';

  if (typeof window.Handoff !== 'function') {
    const box = $('boot-error');
    box.textContent =
      'The Handoff SDK bundle did not load (/sdk/handoff.iife.js). Build it with `npm run build:sdk` (or `npm start`), then reload.';
    box.hidden = false;
    return;
  }
  const Handoff = window.Handoff;

  const el = {
    who: $('who'),
    whoAvatar: $('who-avatar'),
    whoName: $('who-name'),
    signOut: $('sign-out'),
    views: {
      signin: $('view-signin'),
      scan: $('view-scan'),
      confirm: $('view-confirm'),
      done: $('view-done'),
    },
    headings: {
      signin: $('signin-title'),
      scan: $('scan-title'),
      confirm: $('confirm-title'),
      done: $('done-title'),
    },
    signinForm: $('signin-form'),
    email: $('app-email'),
    password: $('app-password'),
    signinError: $('signin-error'),
    signinSubmit: $('signin-submit'),
    signinPending: $('signin-pending'),
    scanForm: $('scan-form'),
    scanInput: $('scan-input'),
    scanError: $('scan-error'),
    scanSubmit: $('scan-submit'),
    confirmTitle: $('confirm-title'),
    confirmWhen: $('confirm-when'),
    confirmUa: $('confirm-ua'),
    confirmError: $('confirm-error'),
    yes: $('confirm-yes'),
    no: $('confirm-no'),
    doneIcon: $('done-icon'),
    doneTitle: $('done-title'),
    doneDetail: $('done-detail'),
    scanAnother: $('scan-another'),
    incoming: $('incoming'),
    incomingEmpty: $('incoming-empty'),
    incomingList: $('incoming-list'),
    incomingStatus: $('incoming-status'),
  };

  /** The pushed sign-in requests on screen, by id: `{req, item, busy}`. */
  const requests = new Map();
  let agesTimer = null;

  /** `{token, expiresAt, user}` or null. */
  let session = loadSession();
  /** The SDK client with the app's JWT (phone side: scan / confirm / cancel). */
  let app = null;
  /** The flow on the confirm screen: `{id, watch: ScannedQr, acting, outcome}`. */
  let current = null;
  /** A QR id from the page's own URL (`#qr=<id>`), scanned as soon as we are signed in. */
  let pendingId = null;

  // ---- views -----------------------------------------------------------------------------

  function show(name, focusTarget) {
    for (const [key, view] of Object.entries(el.views)) view.hidden = key !== name;
    (focusTarget || el.headings[name]).focus();
  }

  function setWho() {
    el.who.hidden = !session;
    if (!session) return;
    const name = session.user.displayName || session.user.email;
    el.whoName.textContent = name;
    el.whoAvatar.textContent = name.charAt(0).toUpperCase();
  }

  // ---- session ---------------------------------------------------------------------------

  function loadSession() {
    try {
      const s = JSON.parse(sessionStorage.getItem(STORAGE_KEY) || 'null');
      if (s && typeof s.token === 'string' && Date.parse(s.expiresAt) > Date.now() + 5000) return s;
    } catch {
      // unreadable: start over
    }
    sessionStorage.removeItem(STORAGE_KEY);
    return null;
  }

  function useSession(s) {
    session = s;
    if (app) app.close();
    app = s ? new Handoff({ url: location.origin, token: s.token }) : null;
    listenForRequests();
    if (s) sessionStorage.setItem(STORAGE_KEY, JSON.stringify(s));
    else sessionStorage.removeItem(STORAGE_KEY);
    setWho();
  }

  async function onSignIn(event) {
    event.preventDefault();
    const email = el.email.value.trim();
    const password = el.password.value;
    el.signinError.textContent = '';
    if (!email || !password) {
      el.signinError.textContent = !email ? 'Enter your email.' : 'Enter your password.';
      (!email ? el.email : el.password).focus();
      return;
    }
    el.signinSubmit.disabled = true;
    el.signinSubmit.textContent = 'Signing in…';
    const anon = new Handoff({ url: location.origin });
    try {
      useSession(await anon.login({ email, password }));
      el.password.value = '';
      afterSignIn();
    } catch (err) {
      el.signinError.textContent = Handoff.isHandoffError(err, 'invalid_credentials') ? 'Wrong email or password.' : describeError(err);
      el.password.select();
      el.password.focus();
    } finally {
      anon.close();
      el.signinSubmit.disabled = false;
      el.signinSubmit.textContent = 'Sign in';
    }
  }

  function afterSignIn() {
    if (pendingId) {
      const id = pendingId;
      pendingId = null;
      el.scanInput.value = id;
      scan(id);
    } else {
      showScan();
    }
  }

  function signOut(message) {
    stopWatching();
    current = null;
    useSession(null);
    el.signinError.textContent = message || '';
    show('signin', el.email);
  }

  function showScan(message) {
    el.scanError.textContent = message || '';
    show('scan', el.scanInput);
  }

  // ---- scanning --------------------------------------------------------------------------

  /** The QR id in a pasted link (`…/app#qr=<id>`), or the pasted id itself. */
  function parseQrId(text) {
    const t = text.trim();
    const m = /[#?&]qr=([A-Za-z0-9_-]+)/.exec(t);
    if (m) return m[1];
    if (/^(qr:)?[A-Za-z0-9_-]{8,64}$/.test(t)) return t.replace(/^qr:/, '');
    return null;
  }

  function onScanSubmit(event) {
    event.preventDefault();
    const id = parseQrId(el.scanInput.value);
    if (!id) {
      el.scanError.textContent = 'That is not a QR link or id. Copy the link shown under the QR code.';
      el.scanInput.setAttribute('aria-invalid', 'true');
      el.scanInput.focus();
      return;
    }
    el.scanInput.removeAttribute('aria-invalid');
    scan(id);
  }

  async function scan(id) {
    el.scanError.textContent = '';
    el.scanSubmit.disabled = true;
    el.scanSubmit.textContent = 'Scanning…';
    try {
      const { requester } = await app.scan(id);
      showConfirm(id, requester);
    } catch (err) {
      if (Handoff.isHandoffError(err, 'unauthorized')) return signOut('Your session ended. Sign in again.');
      showScan(scanErrorText(err));
    } finally {
      el.scanSubmit.disabled = false;
      el.scanSubmit.textContent = 'Scan';
    }
  }

  function scanErrorText(err) {
    if (Handoff.isHandoffError(err, 'not_found')) return 'No such code. It may have expired: get a new one on the login page.';
    if (Handoff.isHandoffError(err, 'invalid_transition')) {
      const state = err.state && err.state.state;
      if (state === 'expired') return 'This code expired. Get a new one on the login page.';
      if (state === 'cancelled') return 'This code was cancelled. Get a new one on the login page.';
      if (state === 'scanned') return 'This code was already scanned.';
      return 'This code was already used.';
    }
    return describeError(err);
  }

  // ---- confirm ---------------------------------------------------------------------------

  function showConfirm(id, requester) {
    stopWatching();
    current = { id, watch: null, acting: false, outcome: null };
    el.confirmTitle.textContent = `Sign in on ${describeUserAgent(requester.userAgent)} from ${requester.ip}?`;
    el.confirmWhen.textContent = `Asked at ${formatTime(requester.createdAt)}.`;
    el.confirmUa.textContent = requester.userAgent || '(no user agent)';
    el.confirmError.textContent = '';
    el.yes.disabled = false;
    el.no.disabled = false;
    el.scanInput.value = '';
    show('confirm');
    watch(current);
  }

  async function act(action) {
    const flow = current;
    if (!flow || flow.acting || flow.outcome) return;
    flow.acting = true;
    el.yes.disabled = true;
    el.no.disabled = true;
    el.confirmError.textContent = '';
    try {
      const state = action === 'confirm' ? await app.confirm(flow.id) : await app.cancel(flow.id);
      finish(flow, action === 'confirm' ? 'confirmed' : 'declined', state);
    } catch (err) {
      if (Handoff.isHandoffError(err, 'unauthorized')) return signOut('Your session ended. Sign in again.');
      const state = err.state && err.state.state;
      if (state === 'cancelled') return finish(flow, 'cancelled-elsewhere');
      if (state === 'expired') return finish(flow, 'expired');
      el.confirmError.textContent = describeError(err);
      el.yes.disabled = false;
      el.no.disabled = false;
    } finally {
      flow.acting = false;
    }
  }

  const OUTCOMES = {
    confirmed: { kind: 'ok', title: 'Done — you are signed in on the other screen', detail: 'Waiting for the browser to pick up its session…' },
    declined: { kind: 'no', title: 'Declined', detail: 'You cancelled: nobody was signed in.' },
    'cancelled-elsewhere': { kind: 'no', title: 'Cancelled in the browser', detail: 'The login page withdrew this code. Nothing to confirm.' },
    expired: { kind: 'warn', title: 'This code expired', detail: 'It was not confirmed in time. Get a new code on the login page.' },
  };

  function finish(flow, outcome) {
    if (flow !== current || flow.outcome) return;
    flow.outcome = outcome;
    if (outcome !== 'confirmed') stopWatching();
    const o = OUTCOMES[outcome];
    el.doneIcon.dataset.kind = o.kind;
    el.doneTitle.textContent = o.title;
    el.doneDetail.textContent = o.detail;
    show('done');
  }

  /**
   * Watch the flow as the user who scanned it (contract §3: the scanner may watch): pushed over the
   * signed-in client's socket, long-polled with the JWT in fallback; a final state ends the watch.
   */
  function watch(flow) {
    flow.watch = app.watchScanned(flow.id);
    flow.watch.on('state', (s) => onWatchedState(flow, s));
    flow.watch.on('subscription', (e) => {
      if (flow === current && e.code === 'failed' && e.error && e.error.code === 'unauthorized') signOut('Your session ended. Sign in again.');
    });
  }

  function onWatchedState(flow, s) {
    if (flow !== current) return;
    switch (s.state) {
      case 'cancelled':
        if (!flow.outcome && !flow.acting) finish(flow, 'cancelled-elsewhere');
        break;
      case 'expired':
        if (!flow.outcome && !flow.acting) finish(flow, 'expired');
        else if (flow.outcome === 'confirmed') {
          el.doneDetail.textContent = 'The code expired before the browser picked up its session.';
        }
        break;
      case 'redeemed':
        if (flow.outcome === 'confirmed') {
          el.doneDetail.textContent = 'The browser has its session. You can put the phone away.';
        }
        break;
    }
  }

  function stopWatching() {
    if (current && current.watch) current.watch.close();
  }

  // ---- incoming sign-in requests (push-to-approve) ------------------------------------------

  /** Follow the user channel on the signed-in client: each pending request is listed with its three numbers. */
  function listenForRequests() {
    for (const id of [...requests.keys()]) dropRequest(id);
    el.incomingStatus.textContent = '';
    el.incoming.hidden = !app;
    if (agesTimer !== null) clearInterval(agesTimer);
    agesTimer = null;
    if (!app) return;
    const client = app;
    client.approvals.on('request', (req) => {
      if (client === app) addRequest(req);
    });
    client.approvals.on('state', (req) => {
      if (client !== app || req.state === 'pending') return;
      const entry = requests.get(req.id);
      if (!entry) return;
      dropRequest(req.id);
      if (!entry.answered) el.incomingStatus.textContent = OTHER_END[req.state] || '';
    });
    client.approvals.on('gone', (g) => {
      if (client === app) dropRequest(g.id);
    });
    agesTimer = setInterval(renderAges, 1000);
    renderEmpty();
  }

  const OTHER_END = {
    approved: 'A request was approved on another device.',
    denied: 'A request was denied on another device.',
    cancelled: 'A request was withdrawn in the browser.',
    expired: 'A request expired.',
    redeemed: 'A request was approved on another device.',
  };

  function addRequest(req) {
    if (requests.has(req.id)) return;
    const item = document.createElement('li');
    item.className = 'request';
    item.dataset.id = req.id;
    const where = document.createElement('p');
    where.className = 'request-where';
    const question = document.createElement('p');
    question.className = 'request-question';
    question.id = `q-${req.id}`;
    question.textContent = 'Which number do you see?';
    const choices = document.createElement('div');
    choices.className = 'choices';
    choices.setAttribute('role', 'group');
    choices.setAttribute('aria-labelledby', question.id);
    const entry = { req, item, where, answered: false, buttons: [] };
    for (const n of req.choices) {
      const b = document.createElement('button');
      b.type = 'button';
      b.className = 'btn btn-secondary';
      b.textContent = String(n).padStart(2, '0');
      b.addEventListener('click', () => answer(entry, n));
      choices.append(b);
      entry.buttons.push(b);
    }
    const deny = document.createElement('button');
    deny.type = 'button';
    deny.className = 'btn btn-quiet btn-block';
    deny.textContent = 'Deny';
    deny.addEventListener('click', () => answer(entry, null));
    entry.buttons.push(deny);
    const error = document.createElement('p');
    error.className = 'field-error';
    entry.error = error;
    item.append(where, question, choices, deny, error);
    requests.set(req.id, entry);
    el.incomingList.append(item);
    renderAge(entry);
    renderEmpty();
    el.incomingStatus.textContent = 'New sign-in request.';
  }

  /** Approve with the number picked (a wrong one denies the request), or deny (`n === null`). */
  async function answer(entry, n) {
    if (entry.answered) return;
    entry.answered = true;
    for (const b of entry.buttons) b.disabled = true;
    entry.error.textContent = '';
    try {
      if (n === null) {
        await app.approvals.deny(entry.req.id);
        el.incomingStatus.textContent = 'Denied: nobody was signed in.';
      } else {
        await app.approvals.approve(entry.req.id, n);
        el.incomingStatus.textContent = 'Approved: the browser is signing in.';
      }
      dropRequest(entry.req.id);
    } catch (err) {
      if (Handoff.isHandoffError(err, 'unauthorized')) return signOut('Your session ended. Sign in again.');
      dropRequest(entry.req.id);
      if (Handoff.isHandoffError(err, 'wrong_number')) {
        el.incomingStatus.textContent = 'Wrong number: the request was denied. If you did not ask to sign in, someone else did.';
      } else if (Handoff.isHandoffError(err, 'invalid_transition')) {
        const state = err.state && err.state.state;
        el.incomingStatus.textContent = OTHER_END[state] || 'This request was already answered.';
      } else {
        el.incomingStatus.textContent = describeError(err);
      }
    }
  }

  function dropRequest(id) {
    const entry = requests.get(id);
    if (!entry) return;
    entry.answered = true;
    entry.item.remove();
    requests.delete(id);
    renderEmpty();
  }

  function renderEmpty() {
    el.incomingEmpty.hidden = requests.size > 0;
  }

  function renderAges() {
    for (const entry of requests.values()) renderAge(entry);
  }

  /** "Sign in request from Chrome 131 (Linux), IP 203.0.113.7, 12 s ago". */
  function renderAge(entry) {
    const r = entry.req.requester;
    const secs = Math.max(0, Math.round((Date.now() - Date.parse(r.createdAt)) / 1000));
    const ago = Number.isNaN(secs) ? '' : secs < 90 ? `, ${secs} s ago` : `, ${Math.round(secs / 60)} min ago`;
    const place = entry.req.context && typeof entry.req.context.location === 'string' ? ` ${entry.req.context.location}` : '';
    entry.where.textContent = `Sign in request from ${describeUserAgent(r.userAgent, ' on ')},${place} IP ${r.ip}${ago}`;
  }

  // ---- helpers ---------------------------------------------------------------------------

  /** "Chrome 131 (Linux)" from a user agent string; the whole string is under "Browser details". */
  function describeUserAgent(ua, osJoin) {
    if (!ua) return 'an unknown browser';
    const browsers = [
      [/Edg\/(\d+)/, 'Edge'],
      [/OPR\/(\d+)/, 'Opera'],
      [/Firefox\/(\d+)/, 'Firefox'],
      [/HeadlessChrome\/(\d+)/, 'Headless Chrome'],
      [/Chrome\/(\d+)/, 'Chrome'],
      [/Version\/(\d+)[\d.]* .*Safari\//, 'Safari'],
      [/curl\/([\d.]+)/, 'curl'],
      [/node/i, 'Node.js'],
    ];
    const systems = [
      [/iPhone|iPad/, 'iOS'],
      [/Android/, 'Android'],
      [/CrOS/, 'ChromeOS'],
      [/Windows/, 'Windows'],
      [/Mac OS X|Macintosh/, 'macOS'],
      [/Linux/, 'Linux'],
    ];
    let browser = null;
    for (const [re, name] of browsers) {
      const m = re.exec(ua);
      if (m) {
        browser = m[1] ? `${name} ${m[1]}` : name;
        break;
      }
    }
    const os = (systems.find(([re]) => re.test(ua)) || [])[1];
    if (!browser) return ua.length > 40 ? `${ua.slice(0, 40)}…` : ua;
    if (!os) return browser;
    return osJoin ? `${browser}${osJoin}${os}` : `${browser} (${os})`;
  }

  function describeError(err) {
    if (Handoff.isHandoffError(err, 'rate_limited')) return `Too many attempts; try again in ${err.retryAfter || 'a few'} seconds.`;
    if (Handoff.isHandoffError(err, 'network')) return 'The server cannot be reached.';
    return (err && err.message) || String(err);
  }

  function formatTime(iso) {
    const d = new Date(iso);
    return Number.isNaN(d.getTime()) ? iso : d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
  }

  /** `#qr=<id>` in our own URL (the QR code's link opens this page): remember it and clean the URL. */
  function takeIdFromUrl() {
    const m = /^#qr=([A-Za-z0-9_-]+)$/.exec(location.hash);
    if (!m) return null;
    history.replaceState(null, '', location.pathname + location.search);
    return m[1];
  }

  function onLink() {
    const id = takeIdFromUrl();
    if (!id) return;
    if (session) {
      stopWatching();
      current = null;
      el.scanInput.value = id;
      scan(id);
    } else {
      pendingId = id;
      el.signinPending.hidden = false;
    }
  }

  // ---- wiring ----------------------------------------------------------------------------

  el.signinForm.addEventListener('submit', onSignIn);
  el.scanForm.addEventListener('submit', onScanSubmit);
  el.yes.addEventListener('click', () => act('confirm'));
  el.no.addEventListener('click', () => act('cancel'));
  el.scanAnother.addEventListener('click', () => {
    stopWatching();
    current = null;
    showScan();
  });
  el.signOut.addEventListener('click', () => signOut());
  window.addEventListener('hashchange', onLink);
  window.addEventListener('pagehide', () => {
    stopWatching();
    if (agesTimer !== null) clearInterval(agesTimer);
    if (app) app.close();
  });
  // Back from the back/forward cache with a closed client: start over.
  window.addEventListener('pageshow', (e) => {
    if (e.persisted) location.reload();
  });

  useSession(session);
  if (session) showScan();
  else show('signin', el.email);
  onLink();
})();
