// The console page behind a one-time link (/c/<token>). hcc puts the
// page's data into it as JSON (#hcc-console): server, refresh and status
// (URLs), refresh_every (seconds), and either
// - session and ws (broker mode: the path of a one-time websocket ticket
//   to hcc itself, relative to this page), or session, wss_url, password
//   and issued_at (direct mode: Hetzner's console credentials): the page
//   that opened the link; or
// - opened: the page of a link opened before (a reload is a GET of it).
//   It holds no secret: this tab resumes the session with the token it
//   kept in sessionStorage, and any other tab says the link was opened.
//
// Console credentials are short-lived and a used URL is dead, so every
// reconnect, and a first connect with credentials older than a minute,
// first POSTs {"session"} to the refresh URL for fresh ones, never more
// often than hcc accepts (refresh_every). A dropped connection is tried
// again after 1, 2, 4 ... 30 s for as long as the session lives, with a
// countdown and a "Reconnect now" button; after a connection that failed,
// the page asks hcc why (status URL), since a browser learns nothing of
// why a websocket closed. A connection that another tab of the same
// session replaced (hcc keeps one per session) is not retried: the page
// says so and waits for the button.
import { Viewer, describeEnd, setStatus } from './vnc.js';
import { forget, recalled, remember } from './session.js';

/** Credentials older than this (seconds) are refreshed before use. */
const MAX_AGE = 60;
/** A broker ticket lives 30 s: older ones are refreshed before use. */
const MAX_TICKET_AGE = 20;
/** The longest wait between reconnect attempts (s); RETRY_CAP_SECS in hcc. */
const RETRY_CAP = 30;
/** A connection that lasted this long (ms) starts the waits over at 1 s. */
const STABLE = 30_000;
/** Connecting longer than this (ms) is said to be slow. */
const SLOW = 5000;
/** Margin (ms) on hcc's refresh interval, for the request's travel. */
const MARGIN = 250;

const ENDED = 'This console session has ended; open a new console from your control panel.';
const OPENED = 'This console link was already opened, in another tab or browser: a link opens the console once. Open a new console from your control panel.';
/** What the page says while hcc holds its console requests back. */
const RATIONED = 'hcc is rationing requests to Hetzner';

const data = readData();
let session = null;
let creds = null;
let tries = 0;
let over = false;
let connected = false;
let busy = false;
/** When this page last asked for fresh credentials (performance.now()). */
let lastRefresh = -Infinity;
let countdown = null;
let slow = null;

const viewer = new Viewer({ onConnect, onEnd });
const reconnectButton = document.getElementById('reconnect');

if (data) begin();
else end('This page carries no console credentials; open a console from your control panel.');

function begin() {
    reconnectButton.addEventListener('click', () => reconnectNow());
    // Leaving the page is not a dropped connection.
    window.addEventListener('pagehide', () => {
        over = true;
        stopCountdown();
        viewer.disconnect();
    });
    // Back from the browser's page cache, this page is over: load it again
    // (a GET of the link, which resumes the session).
    window.addEventListener('pageshow', (event) => {
        if (event.persisted) window.location.reload();
    });
    // Leaving (or reloading) a working console asks first.
    window.addEventListener('beforeunload', (event) => {
        if (!connected) return;
        event.preventDefault();
        event.returnValue = '';
    });
    if (data.session) {
        session = data.session;
        remember(session);
        // A reload is then a GET of the link, which resumes this session,
        // not a POST that finds the link used.
        window.history.replaceState(null, '', window.location.href);
        creds = credentials(data);
        first();
        return;
    }
    session = recalled();
    if (!session) {
        end(OPENED, 'already opened');
        return;
    }
    show('connecting', `Reconnecting to ${serverName()}`);
    attempt();
}

function readData() {
    const element = document.getElementById('hcc-console');
    if (!element) return null;
    try {
        const value = JSON.parse(element.textContent);
        const usable = value && typeof value.refresh === 'string'
            && (value.opened === true || typeof value.ws === 'string' || typeof value.wss_url === 'string');
        return usable ? value : null;
    } catch {
        return null;
    }
}

/** What a connection needs, from the page's data or a refresh's answer. */
function credentials(body) {
    if (typeof body.ws === 'string') return { ws: body.ws, received: performance.now() };
    return { wss_url: body.wss_url, password: body.password, received: performance.now() };
}

/** The broker's websocket URL: the ticket's path on this page's host. */
function brokerUrl(path) {
    const url = new URL(path, window.location.href);
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    return url.href;
}

function serverName() {
    return data?.server || 'the server';
}

/**
 * Shows a state (connecting, connected, reconnecting, ended) and a line;
 * the tab's title names the server and the state (or `title`).
 */
function show(state, text, title = state) {
    setStatus(state, text);
    document.title = data?.server ? `${data.server} - ${title}` : title;
}

/** The end of this page's console: no more attempts, no button. */
function end(text, title = 'ended') {
    over = true;
    connected = false;
    stopCountdown();
    reconnectButton.hidden = true;
    show('ended', text, title);
}

// Seconds since the credentials arrived, by this page's own monotonic
// clock: hcc hands them out the moment it answers, and a customer's wrong
// wall clock must not make them look stale (or fresh).
function credentialsAge() {
    return (performance.now() - creds.received) / 1000;
}

/** The first connection, with the page's own credentials when fresh. */
function first() {
    if (credentialsAge() > (creds.ws ? MAX_TICKET_AGE : MAX_AGE)) {
        creds = null;
        show('connecting', `Getting fresh credentials for ${serverName()}`);
        attempt();
        return;
    }
    show('connecting', `Connecting to ${serverName()}`);
    open();
}

function open() {
    creds.used = true;
    clearTimeout(slow);
    slow = setTimeout(() => {
        if (!connected && !over && !countdown) {
            show(document.body.dataset.state, `Still connecting to ${serverName()}: the console answers slowly`);
        }
    }, SLOW);
    if (creds.ws) {
        // hcc authenticates to the console itself: no password here.
        viewer.connect(brokerUrl(creds.ws), undefined);
    } else {
        viewer.connect(creds.wss_url, creds.password);
    }
}

function onConnect() {
    clearTimeout(slow);
    connected = true;
    reconnectButton.hidden = true;
    // The server's name, never the VNC desktop's.
    show('connected', `Connected to ${serverName()}`);
}

async function onEnd(ending) {
    clearTimeout(slow);
    connected = false;
    if (over || ending.userInitiated) return;
    if (ending.duration >= STABLE) tries = 0;
    let why = ending.wasConnected ? `Connection to ${serverName()} lost` : describeEnd(ending);
    // Why, in words: hcc knows (the broker's record, a revocation, the
    // server's state); the browser does not.
    const known = await status();
    if (over) return;
    if (known?.state === 'ended') {
        forget();
        end(known.message || ENDED);
        return;
    }
    if (known?.state === 'replaced') {
        // Another tab of this session connected, and hcc keeps one
        // connection per session: taking it back at once would only make
        // that tab do the same. The button takes it back.
        stopCountdown();
        reconnectButton.hidden = false;
        show('ended', `${known.message} Reconnect here to take it back.`, 'opened elsewhere');
        return;
    }
    if (!ending.wasConnected && known?.message && known.reason !== 'unknown') why = known.message;
    if (known?.reason === 'rationed') {
        later(RATIONED, (Number(known.retry_after) || 0) * 1000, true);
        return;
    }
    later(why);
}

/** The wait before the next attempt (ms): 1, 2, 4 ... 30 s, and never
 *  sooner than hcc gives fresh credentials again. */
function backoff(atLeast = 0) {
    const wait = Math.min(2 ** tries, RETRY_CAP) * 1000;
    tries += 1;
    return Math.max(wait, atLeast, refreshWait());
}

/** How long until hcc accepts the next refresh (ms). */
function refreshWait() {
    const every = (Number(data.refresh_every) || 3) * 1000;
    return Math.max(0, lastRefresh + every + MARGIN - performance.now());
}

/** Counts down to the next attempt, saying why it waits. */
function later(why, atLeast = 0, rationed = false) {
    if (over) return;
    const due = performance.now() + backoff(atLeast);
    const text = why.replace(/[.;:\s]+$/, '');
    const tick = () => {
        const left = Math.ceil((due - performance.now()) / 1000);
        if (left <= 0) {
            stopCountdown();
            attempt();
            return;
        }
        show('reconnecting', rationed ? `${text}, retrying in ${left} s` : `${text}. Reconnecting in ${left} s`);
    };
    stopCountdown();
    reconnectButton.hidden = false;
    countdown = setInterval(tick, 250);
    tick();
}

function stopCountdown() {
    if (countdown) clearInterval(countdown);
    countdown = null;
}

/** "Reconnect now": at once, or as soon as hcc gives fresh credentials. */
function reconnectNow() {
    if (over || busy || connected) return;
    stopCountdown();
    const wait = refreshWait();
    if (wait > 0) {
        const due = performance.now() + wait;
        countdown = setInterval(() => {
            if (performance.now() < due) return;
            stopCountdown();
            attempt();
        }, 100);
        show('reconnecting', `Reconnecting to ${serverName()} in a moment`);
        return;
    }
    attempt();
}

/** Fresh credentials, then a connection; on failure, a later try. */
async function attempt() {
    if (over || busy) return;
    busy = true;
    reconnectButton.hidden = true;
    show(document.body.dataset.state === 'connecting' ? 'connecting' : 'reconnecting',
        `Connecting to ${serverName()}`);
    const outcome = await refresh();
    busy = false;
    if (over) return;
    if (outcome.ok) {
        open();
        return;
    }
    if (outcome.fatal) {
        end(outcome.fatal);
        return;
    }
    later(outcome.retry, outcome.after, outcome.rationed);
}

/** One POST to the refresh URL: {ok}, {retry: why, after: ms} or {fatal: why}. */
async function refresh() {
    lastRefresh = performance.now();
    let response;
    try {
        response = await post(data.refresh);
    } catch {
        return { retry: `hcc cannot be reached from this browser (${serverName()})` };
    }
    let body = null;
    try {
        body = await response.json();
    } catch {
        body = null;
    }
    if (response.ok && body && (typeof body.ws === 'string' || typeof body.wss_url === 'string')) {
        creds = credentials(body);
        if (body.server) data.server = body.server;
        return { ok: true };
    }
    const message = body?.error?.message || `HTTP ${response.status} ${response.statusText}`.trim();
    const status = response.status;
    // 410: the session ended; 404: hcc never knew it (another hcc's, say).
    if (status === 410 || status === 404) {
        forget();
        return { fatal: message || ENDED };
    }
    if (status >= 500 || status === 408 || status === 429 || response.ok) {
        const after = Number(response.headers.get('Retry-After')) * 1000 || 0;
        // hcc keeps Hetzner's budget for queued commands and shares the
        // rest between consoles: a wait, not a failure.
        if (body?.error?.code === 'rationed') return { retry: RATIONED, after, rationed: true };
        return { retry: status === 429 ? 'Waiting for fresh console credentials' : message, after };
    }
    return { fatal: `Could not get fresh console credentials: ${message}` };
}

/** hcc's words for why the page's connection failed, or null. The spent
 *  ticket of a brokered connection names which connection that was. */
async function status() {
    if (!data.status) return null;
    try {
        const response = await post(data.status, creds?.ws ? { ws: creds.ws } : {});
        if (response.status === 410 || response.status === 404) return { state: 'ended', message: ENDED };
        return response.ok ? await response.json() : null;
    } catch {
        return null;
    }
}

function post(url, more = {}) {
    return fetch(url, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
        body: JSON.stringify({ ...more, session }),
        cache: 'no-store',
        credentials: 'same-origin',
    });
}
