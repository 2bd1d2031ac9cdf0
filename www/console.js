// The console page behind a one-time link (/c/<token>). hcc puts the
// page's data into it as JSON (#hcc-console): server, refresh (a URL),
// session, and either ws (broker mode: the path of a one-time websocket
// ticket to hcc itself, relative to this page) or wss_url, password and
// issued_at (direct mode: Hetzner's console credentials).
//
// Console credentials are short-lived and a used URL is dead, so every
// reconnect, and a first connect with credentials older than a minute,
// first POSTs {"session"} to the refresh URL for fresh ones.
import { Viewer, describeEnd, setStatus } from './vnc.js';

/** Credentials older than this (seconds) are refreshed before use. */
const MAX_AGE = 60;
/** A broker ticket lives 30 s: older ones are refreshed before use. */
const MAX_TICKET_AGE = 20;
/** Reconnect attempts in a row before giving up. */
const MAX_TRIES = 3;
/** A connection that lasted this long (ms) resets the count of tries. */
const STABLE = 30_000;
/** Wait before reconnect attempt n (ms); the first one is at once. */
const DELAYS = [0, 1000, 3000];

const ENDED = 'This console session has ended; open a new console link from your panel';

const data = readData();
let creds = null;
let tries = 0;
let over = false;

const viewer = new Viewer({ onConnect, onEnd });
const reconnectButton = document.getElementById('reconnect');

if (data) {
    creds = credentials(data);
    reconnectButton.addEventListener('click', () => {
        reconnectButton.hidden = true;
        tries = 0;
        reconnect();
    });
    // Leaving the page is not a dropped connection.
    window.addEventListener('pagehide', () => {
        over = true;
        viewer.disconnect();
    });
    start();
} else {
    giveUp('This page carries no console credentials; open a console link from your panel');
}

function readData() {
    const element = document.getElementById('hcc-console');
    if (!element) return null;
    try {
        const value = JSON.parse(element.textContent);
        const usable = value && (typeof value.ws === 'string' || typeof value.wss_url === 'string');
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

// Seconds since the credentials arrived, by this page's own monotonic
// clock: hcc hands them out the moment it answers, and a customer's wrong
// wall clock must not make them look stale (or fresh).
function credentialsAge() {
    return (performance.now() - creds.received) / 1000;
}

function serverName() {
    return data.server || 'the server';
}

async function start() {
    if (credentialsAge() > (creds.ws ? MAX_TICKET_AGE : MAX_AGE)) {
        setStatus('connecting', `Getting fresh credentials for ${serverName()}`);
        if (!(await refreshOrGiveUp())) return;
    }
    open();
}

function open() {
    setStatus('connecting', `Connecting to ${serverName()}`);
    creds.used = true;
    if (creds.ws) {
        // hcc authenticates to the console itself: no password here.
        viewer.connect(brokerUrl(creds.ws), undefined);
    } else {
        viewer.connect(creds.wss_url, creds.password);
    }
}

function onConnect(desktopName) {
    setStatus('connected', `Connected to ${desktopName || serverName()}`);
}

function onEnd(end) {
    if (over) return;
    if (end.userInitiated) {
        setStatus('disconnected', 'Disconnected');
        offerReconnect();
        return;
    }
    if (end.duration >= STABLE) tries = 0;
    const why = describeEnd(end);
    if (!data.refresh || !data.session) {
        setStatus(end.wasConnected ? 'disconnected' : 'failed', why);
        return;
    }
    if (tries >= MAX_TRIES) {
        giveUp(`${why}. Gave up after ${MAX_TRIES} tries; open a new console link from your panel`);
        offerReconnect();
        return;
    }
    setStatus('connecting', `${why}; reconnecting`);
    reconnect(why);
}

/** Fresh credentials, then a new connection; waits longer on each try. */
async function reconnect(why = '') {
    const delay = DELAYS[Math.min(tries, DELAYS.length - 1)];
    tries += 1;
    const prefix = why ? `${why}; ` : '';
    setStatus('connecting', `${prefix}getting fresh credentials (try ${tries} of ${MAX_TRIES})`);
    if (delay) await sleep(delay);
    if (over) return;
    if (!(await refreshOrGiveUp())) return;
    open();
}

/** Refreshes `creds`; false when it gave up (the status says why). */
async function refreshOrGiveUp() {
    for (;;) {
        const outcome = await refresh();
        if (outcome.ok) return true;
        if (outcome.fatal) {
            giveUp(outcome.fatal);
            if (!outcome.ended) offerReconnect();
            return false;
        }
        if (tries >= MAX_TRIES) {
            giveUp(`Could not get fresh console credentials: ${outcome.retry}. Gave up after ${MAX_TRIES} tries`);
            offerReconnect();
            return false;
        }
        tries += 1;
        setStatus('connecting', `Could not get fresh credentials (${outcome.retry}); trying again (try ${tries} of ${MAX_TRIES})`);
        await sleep(DELAYS[Math.min(tries - 1, DELAYS.length - 1)] || 1000);
        if (over) return false;
    }
}

/** One POST to the refresh URL: {ok}, {retry: why} or {fatal: why, ended}. */
async function refresh() {
    let response;
    try {
        response = await fetch(data.refresh, {
            method: 'POST',
            headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
            body: JSON.stringify({ session: data.session }),
            cache: 'no-store',
            credentials: 'same-origin',
        });
    } catch {
        return { retry: 'the network request failed' };
    }
    if (response.status === 410) {
        over = true;
        return { fatal: ENDED, ended: true };
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
    if (status >= 500 || status === 408 || status === 429 || response.ok) {
        return { retry: message };
    }
    return { fatal: `Could not get fresh console credentials: ${message}` };
}

function giveUp(text) {
    setStatus('failed', text);
}

function offerReconnect() {
    if (!over && data?.refresh && data?.session) reconnectButton.hidden = false;
}

function sleep(ms) {
    return new Promise((resolve) => setTimeout(resolve, ms));
}
