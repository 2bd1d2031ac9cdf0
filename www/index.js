// The dashboard: whether the system works (worker, last sync, rate budget,
// queue, refreshed on its own), the servers hcc knows, buttons for the
// power verbs, a console link and console suspension per server, and the
// live and recent console sessions (one row per console page, however
// often it reconnected; refreshed with the status panel) with a button
// that revokes a live one's server's consoles, through the JSON API with
// an API key. An admin key also gets the create form (its pick lists from
// `/api/v1/catalog`), Delete with a typed-name confirmation, and Adopt /
// Release (the managed label). A server's name opens its detail view
// (facts, grouped actions, graphs: see `openDetail`). A button shows only where it can work: the power verbs by the
// server's state, every button by the key's scope (which `/api/v1/status`
// names) and by whether hcc manages the server, so a read key sees none.
// The key is kept in this tab's sessionStorage and sent only as a header.
// A key may also come in the URL's fragment (`#key=...`, as `hcc demo`
// prints it): browsers never send a fragment, and it is taken out of the
// address bar and history at once.
// Every text from the server goes in with textContent.

import { copyText } from './copy.js';

const KEY = 'hcc-api-key';
const VERBS = [
    ['start', 'Start'],
    ['stop', 'Stop'],
    ['reboot', 'Reboot'],
    ['reset', 'Reset'],
    ['force', 'Force off'],
];
/** Verbs that cut the power without asking the operating system. */
const HARD = new Set(['reset', 'force']);
/** What a row's power button asks before it acts: the operating system
 *  restarting is as much an interruption as the power cut. */
const ASK = {
    reboot: (name) => `Reboot ${name}? Its operating system restarts; whoever works on it is interrupted.`,
    reset: (name) => `Reset ${name}? This cuts the power without shutting down.`,
    force: (name) => `Force off ${name}? This cuts the power without shutting down.`,
};
/** Poll a queued command every this many ms, for at most POLL_FOR ms. */
const POLL_EVERY = 1000;
const POLL_FOR = 10 * 60 * 1000;
/** Refresh the status panel every this many ms. */
const STATUS_EVERY = 5000;
/** The state a power verb makes sense in: the others would only fail. */
const WHEN = {
    start: 'off',
    stop: 'running',
    reboot: 'running',
    reset: 'running',
    force: 'running',
};

const $ = (id) => document.getElementById(id);

class ApiError extends Error {
    constructor(status, code, message) {
        super(message);
        this.status = status;
        this.code = code;
    }
}

/** One API call; the JSON body, or an ApiError from the error envelope. */
async function api(method, path, body) {
    const key = sessionStorage.getItem(KEY);
    const headers = { Accept: 'application/json', Authorization: `Bearer ${key}` };
    const init = { method, headers, cache: 'no-store', credentials: 'omit' };
    if (body !== undefined) {
        headers['Content-Type'] = 'application/json';
        init.body = JSON.stringify(body);
    }
    let response;
    try {
        response = await fetch(`api/v1/${path}`, init);
    } catch {
        throw new ApiError(0, 'network', 'hcc did not answer (network error)');
    }
    let json = null;
    try {
        json = await response.json();
    } catch {
        json = null;
    }
    if (!response.ok) {
        const error = json?.error || {};
        throw new ApiError(
            response.status,
            error.code || `http_${response.status}`,
            error.message || `HTTP ${response.status} ${response.statusText}`.trim(),
        );
    }
    return json ?? {};
}

function describe(err) {
    if (err instanceof ApiError) {
        return err.status ? `${err.message} (${err.code}, HTTP ${err.status})` : err.message;
    }
    return String(err);
}

function showMessage(text) {
    const message = $('message');
    message.textContent = text;
    message.hidden = !text;
    if (text) showNotice('');
}

/** Good news (a server deleted, adopted): beside the errors, not as one. */
function showNotice(text) {
    const notice = $('notice');
    notice.textContent = text;
    notice.hidden = !text;
}

/** An API error: a rejected key goes back to the key form. */
function report(err) {
    showMessage(describe(err));
    if (err instanceof ApiError && err.status === 401) {
        sessionStorage.removeItem(KEY);
        showKeyForm();
    }
}

function showKeyForm() {
    stopStatus();
    $('key-form').hidden = false;
    $('health').hidden = true;
    $('no-worker').hidden = true;
    $('search').hidden = true;
    $('reload').hidden = true;
    $('forget').hidden = true;
    $('servers').hidden = true;
    $('empty').hidden = true;
    $('sessions-section').hidden = true;
    $('create').hidden = true;
    $('notice').hidden = true;
    $('key').focus();
}

/** The calling key's scope, from the last status answer. */
let scope = null;

/** Whether the key may do what `need` (read, act, console, admin) names. */
function allowed(need) {
    return need === 'read' || scope === 'admin' || scope === need;
}

/** "12 s ago", "3 min ago", ... for a Unix time. */
function ago(at) {
    const s = Math.max(0, Math.round(Date.now() / 1000 - at));
    if (s < 120) return `${s} s ago`;
    if (s < 7200) return `${Math.round(s / 60)} min ago`;
    if (s < 172800) return `${Math.round(s / 3600)} h ago`;
    return `${Math.round(s / 86400)} days ago`;
}

/** Fills the status panel and the no-worker banner from `/status`. */
function showStatus(body) {
    const worker = body.worker;
    $('h-worker').textContent = worker ? `running (pid ${worker.pid}, since ${ago(worker.since)})` : 'not running';
    $('h-worker').className = worker ? 'ok' : 'bad';
    $('no-worker').hidden = Boolean(worker);
    const sync = body.last_sync;
    $('h-sync').textContent = sync ? `${ago(sync.at)}${sync.mode ? ` (${sync.mode})` : ''}` : 'never';
    const budget = body.rate_budget;
    $('h-budget').textContent = budget
        ? `${budget.remaining} of ${budget.limit} requests, ${budget.for_commands} kept for queued commands`
        : 'unknown (no API call yet)';
    const q = body.queue || {};
    let queue = `${q.queued ?? 0} queued, ${q.running ?? 0} running, ${q.failed ?? 0} failed`;
    if (q.oldest_queued_age != null) queue += `; oldest waits ${q.oldest_queued_age} s`;
    $('h-queue').textContent = queue;
    $('h-key').textContent = body.key ? `${body.key.name} (${body.key.scope})` : '\u2013';
    $('health').hidden = false;
    $('health').dataset.worker = worker ? 'running' : 'none';
}

/** Loads the status; true when the key's scope changed since last time. */
async function loadStatus() {
    const body = await api('GET', 'status');
    const now = body.key?.scope ?? 'read';
    const changed = scope !== null && scope !== now;
    scope = now;
    showStatus(body);
    return changed;
}

let statusTimer = null;

function startStatus() {
    if (statusTimer !== null) return;
    statusTimer = setInterval(async () => {
        try {
            // A key whose scope changed gets the buttons of its new scope.
            if (await loadStatus()) {
                await loadServers();
            } else if (busy === 0) {
                // A server started or stopped elsewhere gets its buttons;
                // not while a button waits, which a redraw would re-enable.
                const body = await api('GET', 'servers');
                const servers = Array.isArray(body.servers) ? body.servers : [];
                if (busy === 0 && JSON.stringify(servers) !== shownServers) render(servers);
            }
            // Sessions start and end behind the page's back too; not while
            // a Revoke waits, which a redraw would lose.
            if (revoking === 0) await loadSessions();
        } catch (err) {
            if (err instanceof ApiError && err.status === 401) {
                report(err);
            } else {
                $('h-worker').textContent = `unknown: ${describe(err)}`;
                $('h-worker').className = 'bad';
            }
        }
    }, STATUS_EVERY);
}

function stopStatus() {
    clearInterval(statusTimer);
    statusTimer = null;
    scope = null;
}

async function loadServers() {
    const button = $('reload');
    button.disabled = true;
    try {
        await loadStatus();
        const body = await api('GET', 'servers');
        render(Array.isArray(body.servers) ? body.servers : []);
        showMessage('');
        await loadSessions();
        $('key-form').hidden = true;
        $('reload').hidden = false;
        $('forget').hidden = false;
        $('search').hidden = false;
        $('create').hidden = !allowed('admin');
        startStatus();
    } catch (err) {
        report(err);
    } finally {
        button.disabled = false;
    }
}

/** The server list last drawn, as JSON, and the buttons waiting for an answer. */
let shownServers = '';
let busy = 0;

/** Last action per server name, kept across reloads of the list. */
const lastAction = new Map();

/** A cell; `label` names it on a phone, where each row is a card. */
function cell(row, text, label) {
    const td = document.createElement('td');
    td.textContent = text ?? '';
    if (label) td.dataset.label = label;
    row.append(td);
    return td;
}

function button(label, onClick) {
    const b = document.createElement('button');
    b.type = 'button';
    b.textContent = label;
    b.addEventListener('click', onClick);
    return b;
}

function render(servers) {
    shownServers = JSON.stringify(servers);
    // Only an admin has anything to manage: the others get no such column.
    $('servers').classList.toggle('admin', allowed('admin'));
    const tbody = $('servers').querySelector('tbody');
    const rows = servers.map((server) => {
        const row = document.createElement('tr');
        row.dataset.server = server.name;
        const nameCell = cell(row, '', 'Name');
        nameCell.classList.add('name');
        // The name opens the server's detail view (as does a click on
        // the row's free space); a name the rules reject opens nothing.
        if (server.name_ok === false) {
            nameCell.textContent = server.name;
        } else {
            const open = button(server.name, () => openDetail(server.name));
            open.className = 'name-link';
            open.dataset.verb = 'details';
            open.title = `Details of ${server.name}`;
            nameCell.append(open);
            row.addEventListener('click', (e) => {
                if (e.target.closest('button, a, input, select')) return;
                openDetail(server.name);
            });
        }
        const status = cell(row, server.status, 'Status');
        status.className = `status-${String(server.status || 'unknown').replace(/[^a-z]/g, '')}`;
        cell(row, server.ip4 || '\u2013', 'IPv4').classList.add('ip');
        cell(row, server.managed ? 'yes' : 'no', 'Managed');
        // A server being created has no labels yet, but is hcc's own.
        const creating = server.stage === 'new' && server.id == null;
        const managed = server.managed || creating;
        row.dataset.managed = managed ? 'yes' : 'no';
        const actions = cell(row, '', 'Actions');
        actions.className = 'actions';
        const manage = cell(row, '', 'Manage');
        manage.className = 'manage';
        const last = cell(row, '', 'Last action');
        last.className = 'last';
        // A name hcc's rules reject (from a broken or hostile API answer):
        // every route takes a server by name, so none would take this one.
        if (server.name_ok === false) {
            row.dataset.nameOk = 'no';
            const why = document.createElement('span');
            why.className = 'name-note';
            why.textContent = 'No actions: this name breaks the name rules (letters, digits, dashes, dots). Rename the server at Hetzner.';
            actions.append(why);
            showLast(server.name, last);
            return row;
        }
        manageButtons(server, manage, managed, creating);
        // hcc refuses every verb on a server it does not manage.
        if (!managed) {
            showLast(server.name, last);
            return row;
        }
        for (const [verb, label] of VERBS) {
            if (!allowed('act') || server.status !== WHEN[verb]) continue;
            const b = button(label, () => act(server.name, verb, label, b));
            b.dataset.verb = verb;
            if (HARD.has(verb)) b.classList.add('hard');
            actions.append(b);
        }
        // A console shows a running server's screen; an off one has none.
        if (allowed('console') && server.status === 'running') {
            const consoleButton = button('Console', () => openConsole(server.name, consoleButton));
            consoleButton.dataset.verb = 'console';
            consoleButton.classList.add('primary');
            actions.append(consoleButton);
        }
        if (allowed('admin')) {
            const suspendButton = button('Suspend consoles', () => toggleSuspension(server.name, suspendButton));
            suspendButton.dataset.verb = 'suspend';
            suspendButton.classList.add('suspend');
            actions.append(suspendButton);
        }
        showLast(server.name, last);
        return row;
    });
    tbody.replaceChildren(...rows);
    $('servers').hidden = rows.length === 0;
    $('empty').hidden = rows.length !== 0;
    filter();
}

/** An admin's Adopt, or Release and Delete, in a row's Manage cell. */
function manageButtons(server, td, managed, creating) {
    if (!allowed('admin') || creating) return;
    if (!managed) {
        const adopt = button('Adopt', () => setManaged(server.name, true, adopt));
        adopt.dataset.verb = 'adopt';
        td.append(adopt);
        return;
    }
    const release = button('Release', () => setManaged(server.name, false, release));
    release.dataset.verb = 'release';
    const del = button('Delete', () => askDelete(server.name, del));
    del.dataset.verb = 'delete';
    del.classList.add('hard');
    td.append(release, del);
}

/** Hides the rows the search box does not match (name, status, IP). */
function filter() {
    const words = $('search').value.trim().toLowerCase().split(/\s+/).filter(Boolean);
    let shown = 0;
    for (const row of $('servers').querySelectorAll('tbody tr')) {
        const text = Array.from(row.cells).slice(0, 4).map((c) => c.textContent).join(' ').toLowerCase();
        row.hidden = !words.every((w) => text.includes(w));
        if (!row.hidden) shown += 1;
    }
    $('servers').dataset.shown = String(shown);
}

function lastCell(name) {
    for (const row of $('servers').querySelectorAll('tbody tr')) {
        if (row.dataset.server === name) return row.querySelector('td.last');
    }
    return null;
}

/** Writes a server's last action, as text, or as text plus a link. */
function setLast(name, text, link) {
    lastAction.set(name, { text, link });
    const td = lastCell(name);
    if (td) showLast(name, td);
}

function showLast(name, td) {
    const last = lastAction.get(name);
    td.replaceChildren();
    if (!last) return;
    td.append(last.text);
    if (last.link) {
        const a = document.createElement('a');
        a.href = last.link;
        a.target = '_blank';
        a.rel = 'noopener noreferrer';
        a.textContent = 'open it';
        td.append(' ', a);
    }
}

/**
 * Runs a row's action: its button disabled and the list's refresh held
 * (`busy`) meanwhile; a failure is said in the row as `label: why`, and a
 * key the server no longer takes is reported.
 */
async function rowAction(name, label, b, work) {
    b.disabled = true;
    busy += 1;
    try {
        await work();
    } catch (err) {
        setLast(name, `${label}: ${describe(err)}`);
        if (err instanceof ApiError && err.status === 401) report(err);
    } finally {
        b.disabled = false;
        busy -= 1;
    }
}

async function act(name, verb, label, b) {
    if (ASK[verb] && !window.confirm(ASK[verb](name))) return;
    await rowAction(name, label, b, async () => {
        setLast(name, `${label}: sending`);
        const body = await api('POST', `servers/${encodeURIComponent(name)}/actions/${verb}`, {});
        const { command } = body;
        setLast(name, `${label}: queued (command ${command.id})`);
        const state = await follow(command.id, (text) => setLast(name, `${label}: ${text}`));
        if (verb === 'kill' && state === 'done') showNotice(`${name} was deleted.`);
    });
}

/**
 * Polls a command until it is done or failed, telling `show` each state;
 * then reloads the list. Answers the last state.
 */
async function follow(id, show) {
    const until = Date.now() + POLL_FOR;
    while (Date.now() < until) {
        await new Promise((resolve) => setTimeout(resolve, POLL_EVERY));
        const body = await api('GET', `commands/${encodeURIComponent(id)}`);
        const { command } = body;
        const { state } = command;
        if (state === 'done') {
            const result = typeof command.result === 'string' ? command.result : '';
            show(`done${result ? ` (${result})` : ''}`);
            await loadServers();
            return state;
        }
        if (state === 'failed') {
            show(`failed: ${command.error ?? 'no reason given'}`);
            await loadServers();
            return state;
        }
        show(`${state || 'waiting'} (command ${id})`);
    }
    show(`still not finished after ${POLL_FOR / 60000} minutes (command ${id})`);
    return 'waiting';
}

async function openConsole(name, b) {
    await rowAction(name, 'Console', b, async () => {
        setLast(name, 'Console: asking for a link');
        const body = await api('POST', `servers/${encodeURIComponent(name)}/console-link`, {});
        window.open(body.url, '_blank', 'noopener');
        setLast(name, 'Console: opened in a new tab; if nothing opened,', body.url);
    });
}

/** Servers whose consoles are suspended, from the last sessions load. */
let suspended = new Set();

/** Console sessions listed: the live ones and the most recent others. */
const SESSIONS = 20;

/** "42 s", "3 min 5 s", "2 h 10 min". */
function duration(secs) {
    const s = Math.max(0, Math.round(secs));
    if (s < 60) return `${s} s`;
    if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
    return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

/** "Nov 30, 11:42:12": the year is this one's, as a rule. */
function shortTime(at) {
    return new Date(at * 1000).toLocaleString([], {
        month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit',
    });
}

/** The page's end reason when it never connected (hcc's word for it). */
const EXPIRED_UNUSED = 'expired unused';

/** What a page session is doing, or why it ended. */
function sessionState(s) {
    // A page closed before it connected: its tickets ran out.
    if (s.end_reason === EXPIRED_UNUSED) return EXPIRED_UNUSED;
    if (s.ended_at) return `ended: ${s.end_reason || 'no reason recorded'}`;
    if (s.stop_requested) return `ending (${s.stop_requested})`;
    if (s.live) return 'live';
    // A direct session's connection goes past hcc; its page is open.
    return s.mode === 'direct' ? 'open (direct)' : 'not connected yet';
}

/** Browsers by the token that names them, the more specific first (Edge
 *  and Opera also say Chrome, Chrome also says Safari). */
const BROWSERS = [
    ['Edge', /\bEdg(?:e|A|iOS)?\/(\d+)/],
    ['Opera', /\bOPR\/(\d+)/],
    ['Samsung Internet', /\bSamsungBrowser\/(\d+)/],
    ['Firefox', /\b(?:Firefox|FxiOS)\/(\d+)/],
    ['Chrome', /(?:Chrome|CriOS)\/(\d+)/],
    ['Safari', /\bVersion\/(\d+)[.\d]*(?: Mobile\/\S+)? Safari\//],
];
/** Systems likewise (Android says Linux, iOS says Mac OS X, ChromeOS X11). */
const SYSTEMS = [
    ['Android', /\bAndroid\b/],
    ['iOS', /\b(?:iPhone|iPad|iPod)\b/],
    ['ChromeOS', /\bCrOS\b/],
    ['Windows', /\bWindows\b/],
    ['macOS', /\bMac OS X\b|\bMacintosh\b/],
    ['Linux', /\bLinux\b|\bX11\b/],
];

/** "Chrome 156 on Linux" from a User-Agent; a client that is no browser
 *  by its first word ("curl/8.5.0"). The whole string goes in the title. */
function browserOf(ua) {
    if (!ua) return '\u2013';
    let browser = null;
    for (const [name, re] of BROWSERS) {
        const m = ua.match(re);
        if (m) {
            browser = `${name} ${m[1]}`;
            break;
        }
    }
    const system = SYSTEMS.find(([, re]) => re.test(ua))?.[0];
    browser ??= ua.split(/[\s(]/)[0] || ua;
    return system ? `${browser} on ${system}` : browser;
}

/** Revokes waiting for their answer: the list is not redrawn under them. */
let revoking = 0;

/** The live and recent sessions (an admin key's view); hidden for other keys. */
async function loadSessions() {
    if (!allowed('admin')) {
        $('sessions-section').hidden = true;
        return;
    }
    let body;
    try {
        body = await api('GET', `sessions?limit=${SESSIONS}`);
    } catch (err) {
        $('sessions-section').hidden = true;
        if (!(err instanceof ApiError && err.status === 403)) report(err);
        return;
    }
    suspended = new Set((body.suspended || []).map((s) => s.server));
    showSuspensions();
    const sessions = Array.isArray(body.sessions) ? body.sessions : [];
    const now = Date.now() / 1000;
    const rows = sessions.map((s) => {
        const row = document.createElement('tr');
        row.dataset.session = s.id;
        row.dataset.server = s.server;
        row.dataset.ended = s.ended_at ? 'yes' : 'no';
        row.dataset.live = s.live ? 'yes' : 'no';
        const direct = s.mode === 'direct';
        cell(row, s.server);
        cell(row, s.mode || '\u2013').className = 'mode';
        cell(row, s.link_id ? `link ${s.link_id}${s.created_by ? ` (${s.created_by})` : ''}` : s.created_by || '\u2013');
        cell(row, s.remote || '\u2013').className = 'remote';
        const agent = cell(row, browserOf(s.user_agent));
        agent.className = 'browser';
        if (s.user_agent) agent.title = s.user_agent;
        cell(row, s.started_at ? shortTime(s.started_at) : '\u2013').className = 'started';
        // Connected time: a direct page from its start (hcc does not see
        // its connection); a brokered one from its first connection, and
        // none while it never connected.
        const from = direct ? s.started_at : s.connected_at;
        cell(row, from ? duration((s.ended_at ?? now) - from) : '\u2013').className = 'duration';
        cell(row, direct ? '\u2013' : String(s.connection_count ?? 0)).className = 'connections';
        cell(row, `${s.bytes_to_client} / ${s.bytes_from_client} bytes`);
        cell(row, sessionState(s)).className = 'state';
        const actions = cell(row, '');
        actions.className = 'actions';
        // Revoking cuts what is live; an ended page has nothing to cut.
        if (s.live || (direct && !s.ended_at)) {
            const revokeButton = button('Revoke', () => revoke(s.server, revokeButton));
            revokeButton.classList.add('hard');
            actions.append(revokeButton);
        }
        return row;
    });
    $('sessions').querySelector('tbody').replaceChildren(...rows);
    $('sessions').hidden = rows.length === 0;
    $('no-sessions').hidden = rows.length !== 0;
    $('sessions-section').hidden = false;
}

/** Labels each server's suspend button by its state. */
function showSuspensions() {
    for (const row of $('servers').querySelectorAll('tbody tr')) {
        const b = row.querySelector('button.suspend');
        if (!b) continue;
        const on = suspended.has(row.dataset.server);
        b.textContent = on ? 'Resume consoles' : 'Suspend consoles';
        row.classList.toggle('suspended', on);
    }
}

async function revoke(name, b) {
    if (!window.confirm(`Revoke every console of ${name}? Live sessions end, unopened links stop working.`)) return;
    b.disabled = true;
    revoking += 1;
    try {
        const body = await api('POST', `servers/${encodeURIComponent(name)}/revoke`, {});
        const r = body.revoked || {};
        showMessage('');
        showNotice(`Consoles of ${name} revoked: ${r.stopped ?? 0} live session(s) ending, ${r.links ?? 0} unopened link(s) void.`);
        await loadSessions();
    } catch (err) {
        report(err);
    } finally {
        revoking -= 1;
        b.disabled = false;
    }
}

async function toggleSuspension(name, b) {
    const resume = suspended.has(name);
    if (!resume && !window.confirm(`Suspend the consoles of ${name}? Its links and live sessions stop working until resumed.`)) return;
    await rowAction(name, 'Consoles', b, async () => {
        await api('POST', `servers/${encodeURIComponent(name)}/${resume ? 'resume' : 'suspend'}`, {});
        setLast(name, resume ? 'Consoles: resumed' : 'Consoles: suspended');
        await loadSessions();
    });
}

/** Adopt (add the managed label) or release (remove it), at once. */
async function setManaged(name, add, b) {
    const label = add ? 'Adopt' : 'Release';
    if (!add && !window.confirm(`Release ${name}? hcc stops acting on it (no power buttons, no consoles, no delete) until it is adopted again; the server itself is not touched.`)) {
        return;
    }
    await rowAction(name, label, b, async () => {
        setLast(name, `${label}: asking Hetzner`);
        const body = await api('POST', `servers/${encodeURIComponent(name)}/${add ? 'adopt' : 'release'}`, {});
        const did = add ? 'adopted: hcc manages it now' : 'released: hcc no longer manages it';
        setLast(name, body.changed ? `${label}: ${did}` : `${label}: nothing to do (it was ${add ? 'managed' : 'not managed'} already)`);
        await loadServers();
    });
}

/** The typed-name confirmation open now: the server's name, and how to
 *  answer the one waiting for it. */
let typing = null;

/**
 * Asks for the server's name, typed, before `verb` (the dialog's title and
 * its button say it; `text` says what happens): confirming is that exact
 * name. Delete asks it, and the detail view's Reinstall, Resize, Stop,
 * Reset and Force off. True when confirmed.
 */
function askTyped(name, verb, text) {
    cancelTyped();
    return new Promise((resolve) => {
        typing = { name, resolve };
        $('delete-what').textContent = verb;
        $('delete-name').textContent = name;
        $('delete-text').textContent = `${text} Type the server's name to confirm.`;
        $('delete-confirm').textContent = verb;
        $('delete-typed').value = '';
        $('delete-confirm').disabled = true;
        $('delete-dialog').showModal();
        $('delete-typed').focus();
    });
}

function cancelTyped() {
    const waiting = typing;
    typing = null;
    if (waiting) waiting.resolve(false);
}

function typedName() {
    $('delete-confirm').disabled = !typing || $('delete-typed').value !== typing.name;
}

function confirmTyped(e) {
    e.preventDefault();
    if (!typing || $('delete-typed').value !== typing.name) return;
    const { resolve } = typing;
    typing = null;
    $('delete-dialog').close();
    resolve(true);
}

/** Delete: the server's name typed first. */
async function askDelete(name, b) {
    const text = 'The server and its disk are deleted at Hetzner; this cannot be undone.';
    if (await askTyped(name, 'Delete', text)) act(name, 'kill', 'Delete', b);
}

/** The catalog as last loaded (for the image architectures), or null. */
let catalog = null;
let catalogLoading = false;

function option(value, text) {
    const o = document.createElement('option');
    o.value = value;
    o.textContent = text;
    return o;
}

/** Fills the create form's pick lists from `/api/v1/catalog`. */
async function loadCatalog() {
    if (catalogLoading) return;
    catalogLoading = true;
    $('catalog-retry').hidden = true;
    $('create-submit').disabled = true;
    $('catalog-note').textContent = 'Loading the catalog\u2026';
    try {
        const body = await api('GET', 'catalog');
        catalog = body;
        const d = body.defaults || {};
        const types = (body.server_types || []).filter((t) => !t.deprecated || t.name === d.server_type);
        const price = (t) => {
            const p = (t.prices || []).find((x) => x.location === d.location) || (t.prices || [])[0];
            return p ? `, ${Number(p.monthly_gross).toFixed(2)} EUR/month` : '';
        };
        fill('create-type', types.map((t) => option(t.name,
            `${t.name} \u2013 ${t.cores} cores, ${t.memory_gb} GB, ${t.disk_gb} GB disk${t.architecture ? `, ${t.architecture}` : ''}${price(t)}`)), d.server_type);
        fill('create-image', (body.images || []).map((i) => {
            const o = option(i.name, i.description && i.description !== i.name ? `${i.name} (${i.description})` : i.name);
            o.dataset.arch = i.architecture || '';
            return o;
        }), d.image);
        fill('create-location', (body.locations || []).map((l) => option(l.name,
            `${l.name}${l.city ? ` (${l.city}${l.country ? `, ${l.country}` : ''})` : ''}`)), d.location);
        fitImages();
        const name = $('create-name');
        name.placeholder = body.prefix ? `${body.prefix}web1` : 'web1';
        if (!name.value && body.prefix) name.value = body.prefix;
        // The prefix said before a create fails for the want of it.
        $('create-prefix').textContent = body.prefix
            ? `This hcc creates servers only with names beginning with \u201c${body.prefix}\u201d (its prefix): for example ${body.prefix}web1.`
            : '';
        $('create-prefix').hidden = !body.prefix;
        $('catalog-note').textContent = `Types, images and locations from Hetzner, fetched ${ago(body.fetched_at)}.`;
        $('create-submit').disabled = false;
        $('create').dataset.catalog = 'loaded';
    } catch (err) {
        catalog = null;
        $('catalog-note').textContent = '';
        createError(`The catalog could not be loaded: ${describe(err)}`);
        $('catalog-retry').hidden = false;
        $('create').dataset.catalog = 'failed';
        if (err instanceof ApiError && err.status === 401) report(err);
    } finally {
        catalogLoading = false;
    }
}

/** Puts options in a pick list and selects `chosen` when it is there. */
function fill(id, options, chosen) {
    const select = $(id);
    select.replaceChildren(...options);
    if (options.some((o) => o.value === chosen)) select.value = chosen;
}

/** Only images built for the chosen type's architecture can be picked. */
function fitImages() {
    const type = (catalog?.server_types || []).find((t) => t.name === $('create-type').value);
    const arch = type?.architecture || '';
    const select = $('create-image');
    for (const o of select.options) o.disabled = Boolean(arch && o.dataset.arch && o.dataset.arch !== arch);
    if (select.selectedOptions[0]?.disabled) {
        const first = Array.from(select.options).find((o) => !o.disabled);
        select.value = first ? first.value : '';
    }
}

function createError(text) {
    $('create-error').textContent = text;
    $('create-error').hidden = !text;
}

function createProgress(text) {
    $('create-progress').textContent = text;
    $('create-progress').hidden = !text;
}

/** Queues a `create` and follows it until it is done or failed. */
async function createServer(e) {
    e.preventDefault();
    const nameInput = $('create-name');
    const name = nameInput.value.trim();
    const choice = {
        server_type: $('create-type').value,
        image: $('create-image').value,
        location: $('create-location').value,
    };
    createError('');
    nameInput.removeAttribute('aria-invalid');
    if (!name || name === catalog?.prefix) {
        nameInput.setAttribute('aria-invalid', 'true');
        createError('Name the new server.');
        return;
    }
    if (!choice.server_type || !choice.image || !choice.location) {
        createError('Pick a type, an image and a location.');
        return;
    }
    const submit = $('create-submit');
    submit.disabled = true;
    busy += 1;
    createProgress(`Create ${name}: sending`);
    try {
        const body = await api('POST', `servers/${encodeURIComponent(name)}/actions/create`, choice);
        const { command } = body;
        $('create').dataset.command = command.id;
        createProgress(`Create ${name}: queued (command ${command.id})`);
        nameInput.value = catalog?.prefix || '';
        const state = await follow(command.id, (text) => createProgress(`Create ${name}: ${text}`));
        if (state === 'done') setLast(name, 'Create: done');
    } catch (err) {
        createProgress('');
        // The name's mistakes are the name field's.
        if (['invalid_name', 'bad_prefix', 'exists'].includes(err.code)) nameInput.setAttribute('aria-invalid', 'true');
        createError(describe(err));
        if (err instanceof ApiError && err.status === 401) report(err);
    } finally {
        submit.disabled = false;
        busy -= 1;
    }
}

/*
 * The detail view of one server (a dialog, the whole screen on a phone):
 * its facts from `GET /api/v1/servers/{name}` (`server` and `detail`; the
 * list's entry while that answer is missing, or `detail` is null before
 * the first sync), its actions grouped, each shown only where the key's
 * scope allows (`act`: power, rescue, root password, reverse DNS, ISO;
 * `admin` besides: reinstall, resize, snapshot, backups) and hcc manages
 * the server, and its graphs (`GET .../metrics?type=&since=`, drawn by
 * uPlot). Each action is `POST .../actions/{verb}` with its JSON body,
 * followed at `GET /api/v1/commands/{id}` until done or failed; a root
 * password in the result (reinstall, rescue, password reset: Hetzner
 * says it once, hcc hands it over once) is shown with a Copy button and
 * kept nowhere but the page's text, gone when hidden or closed.
 */

/** What each action needs: the scope, a confirmation (`typed`: the
 *  server's name; `ask`: a yes), its label, and its body from the form. */
const ACTIONS = {
    start: { need: 'act', label: 'Start' },
    reboot: { need: 'act', label: 'Reboot', ask: 'Its operating system restarts; whoever works on it is interrupted.' },
    stop: { need: 'act', label: 'Stop', typed: 'The operating system is asked to shut down and the server stays off.' },
    reset: { need: 'act', label: 'Reset', typed: 'The power is cut and the server starts again, without shutting down: unsaved data is lost.' },
    force: { need: 'act', label: 'Force off', typed: 'The power is cut without shutting down: unsaved data is lost.' },
    rebuild: {
        need: 'admin',
        label: 'Reinstall',
        typed: 'Its disk is erased and the chosen image installed; everything on it is lost.',
        body: () => ({ image: $('detail-image').value }),
        check: () => ($('detail-image').value ? '' : 'Pick an image.'),
    },
    'enable-rescue': { need: 'act', label: 'Enable rescue', body: () => ({ type: 'linux64' }) },
    'disable-rescue': { need: 'act', label: 'Disable rescue' },
    'reset-password': { need: 'act', label: 'Reset root password', ask: 'Its root password is replaced by a new one, shown here once.' },
    'change-type': {
        need: 'admin',
        label: 'Resize',
        typed: 'The server gets the chosen type (it must be off); without keeping the disk\u2019s size it can never go back to a smaller disk.',
        body: () => ({ server_type: $('detail-type').value, keep_disk: $('detail-keep-disk').checked }),
        check: () => ($('detail-type').value ? '' : 'Pick a type.'),
    },
    'set-rdns': {
        need: 'act',
        label: 'Reverse DNS',
        body: () => {
            const host = $('detail-rdns-host').value.trim();
            return host ? { ip: $('detail-rdns-ip').value, hostname: host } : { ip: $('detail-rdns-ip').value };
        },
        check: () => ($('detail-rdns-ip').value ? '' : 'Pick an address.'),
    },
    'attach-iso': {
        need: 'act',
        label: 'Attach ISO',
        body: () => ({ iso: $('detail-iso').value.trim() }),
        check: () => ($('detail-iso').value.trim() ? '' : 'Name the ISO to attach.'),
    },
    'detach-iso': { need: 'act', label: 'Detach ISO' },
    'create-image': {
        need: 'admin',
        label: 'Snapshot',
        body: () => ({ description: $('detail-snapshot').value.trim() || `${shownDetail?.name} snapshot` }),
    },
    'enable-backup': { need: 'admin', label: 'Enable backups' },
    'disable-backup': { need: 'admin', label: 'Disable backups', ask: 'Its backups stop and the existing ones are deleted.' },
};

/** The groups of the view and the scope each needs. */
const GROUPS = {
    power: 'act', reinstall: 'admin', rescue: 'act', password: 'act',
    resize: 'admin', rdns: 'act', iso: 'act', snapshot: 'admin', backups: 'admin',
};

/** The server the view shows: its name, the list's entry, the detail answer. */
let shownDetail = null;
/** Which opening of the view an answer belongs to (a late one is dropped). */
let detailGeneration = 0;

function fact(dl, term, value) {
    const div = document.createElement('div');
    const dt = document.createElement('dt');
    dt.textContent = term;
    const dd = document.createElement('dd');
    dd.textContent = value ?? '\u2013';
    div.append(dt, dd);
    dl.append(div);
}

/** "1.2 TB", "340 MB" for bytes. */
function bytes(n) {
    if (n == null || Number.isNaN(Number(n))) return 'unknown';
    let v = Number(n);
    for (const unit of ['B', 'kB', 'MB', 'GB', 'TB']) {
        if (Math.abs(v) < 1000 || unit === 'TB') return `${unit === 'B' ? v : v.toFixed(1)} ${unit}`;
        v /= 1000;
    }
    return `${v} TB`;
}

function listed(name) {
    try {
        return JSON.parse(shownServers || '[]').find((s) => s.name === name) || null;
    } catch {
        return null;
    }
}

function detailNote(text) {
    $('detail-note').textContent = text;
}

function detailProgress(text) {
    $('detail-progress').textContent = text;
    $('detail-progress').hidden = !text;
}

/** Opens the view on `name`: the list's entry at once, then hcc's answer. */
async function openDetail(name) {
    const generation = ++detailGeneration;
    const entry = listed(name) || { name };
    shownDetail = { name, server: entry, detail: null };
    hidePassword();
    detailProgress('');
    $('detail-title').textContent = `Server ${name}`;
    $('detail').dataset.server = name;
    $('detail').dataset.state = 'loading';
    delete $('detail').dataset.catalog;
    detailNote('Loading the details\u2026');
    drawDetail();
    if (!$('detail').open) $('detail').showModal();
    loadGraphs(currentRange());
    if (allowed('admin')) loadDetailCatalog(generation);
    await reloadDetail(generation);
}

/** Asks hcc for the server's details again and redraws the view. */
async function reloadDetail(generation = detailGeneration) {
    const name = shownDetail?.name;
    if (!name) return;
    try {
        const body = await api('GET', `servers/${encodeURIComponent(name)}`);
        if (generation !== detailGeneration) return;
        shownDetail.server = body.server || shownDetail.server;
        shownDetail.detail = body.detail || null;
        $('detail').dataset.state = body.detail ? 'loaded' : 'partial';
        // `detail` null: not synced yet; absent: an hcc without details.
        detailNote(body.detail ? '' : 'detail' in body
            ? 'hcc has not synced this server\u2019s details yet: shown is what the list has.'
            : 'This hcc gives no more details of a server than its list has.');
    } catch (err) {
        if (generation !== detailGeneration) return;
        if (err instanceof ApiError && err.status === 401) {
            $('detail').close();
            report(err);
            return;
        }
        $('detail').dataset.state = 'partial';
        detailNote(`The details could not be loaded (${describe(err)}): shown is what the list has.`);
    }
    drawDetail();
}

/** The facts, the addresses and which actions show, from `shownDetail`. */
function drawDetail() {
    const { server: s, detail: d } = shownDetail;
    const dl = $('detail-facts');
    dl.replaceChildren();
    const unknown = d ? null : 'not known yet';
    fact(dl, 'Status', s.status);
    const size = d ? ` (${d.cores} cores, ${d.memory} GB memory, ${d.disk} GB disk)` : '';
    fact(dl, 'Type', s.server_type ? `${s.server_type}${size}` : null);
    fact(dl, 'Image', d?.image ? (d.image.description || d.image.name) : s.image);
    fact(dl, 'Location', [s.location, s.datacenter].filter(Boolean).join(', ') || null);
    fact(dl, 'IPv4', s.ip4);
    fact(dl, 'IPv6', s.ip6);
    const t = d?.traffic;
    fact(dl, 'Traffic', t
        ? `${bytes(t.outgoing)} out, ${bytes(t.ingoing)} in, ${t.included == null ? 'unknown' : bytes(t.included)} included`
        : unknown);
    fact(dl, 'Backups', d ? (d.backup_window ? `enabled (window ${d.backup_window} UTC)` : 'disabled') : unknown);
    fact(dl, 'Rescue', d ? (d.rescue_enabled ? 'enabled (on the next boot)' : 'disabled') : unknown);
    fact(dl, 'ISO', d ? (d.iso || 'none') : unknown);
    const p = d?.protection;
    fact(dl, 'Protection', p
        ? (['delete', 'rebuild'].filter((k) => p[k]).map((k) => `${k} protected`).join(', ') || 'none')
        : unknown);
    fact(dl, 'Managed by hcc', s.managed ? 'yes' : 'no');

    const addresses = d?.addresses?.length
        ? d.addresses
        : [s.ip4, s.ip6].filter(Boolean).map((ip) => ({ ip, dns_ptr: null }));
    const rows = addresses.map((a) => {
        const tr = document.createElement('tr');
        cell(tr, a.ip, 'Address');
        cell(tr, a.dns_ptr || (d ? 'none' : 'not known yet'), 'Reverse DNS');
        return tr;
    });
    $('detail-addresses').querySelector('tbody').replaceChildren(...rows);
    const ipSelect = $('detail-rdns-ip');
    const chosen = ipSelect.value;
    fill('detail-rdns-ip', addresses.map((a) => {
        const o = option(a.ip, a.ip);
        o.dataset.ptr = a.dns_ptr || '';
        return o;
    }), chosen);
    // The host name field starts from the chosen address's current entry.
    $('detail-rdns-host').value = ipSelect.selectedOptions[0]?.dataset.ptr || '';

    // What the key may do, on a server hcc manages.
    const managed = s.managed || (s.stage === 'new' && s.id == null);
    for (const fieldset of document.querySelectorAll('#detail .groups fieldset')) {
        fieldset.hidden = !managed || !allowed(GROUPS[fieldset.dataset.group]);
    }
    for (const b of document.querySelectorAll('#detail [data-action]')) {
        const verb = b.dataset.action;
        let show = allowed(ACTIONS[verb].need);
        if (WHEN[verb]) show &&= s.status === WHEN[verb];
        if (d && verb === 'enable-rescue') show &&= !d.rescue_enabled;
        if (d && verb === 'disable-rescue') show &&= Boolean(d.rescue_enabled);
        if (d && verb === 'detach-iso') show &&= Boolean(d.iso);
        if (d && verb === 'enable-backup') show &&= !d.backup_window;
        if (d && verb === 'disable-backup') show &&= Boolean(d.backup_window);
        b.hidden = !show;
    }
    if (!managed) {
        detailNote(`${$('detail-note').textContent} hcc does not manage this server: adopt it to act on it.`.trim());
    }
}

/** The pick lists of reinstall (images), resize (types) and ISO, from the
 *  catalog (an admin's: other keys type an ISO's name). */
async function loadDetailCatalog(generation) {
    try {
        const body = catalog || await api('GET', 'catalog');
        catalog = body;
        if (generation !== detailGeneration) return;
        const s = shownDetail.server;
        fill('detail-image', (body.images || []).map((i) => option(i.name,
            i.description && i.description !== i.name ? `${i.name} (${i.description})` : i.name)), s.image);
        // The project's snapshots too (`catalog.snapshots`): Hetzner
        // rebuilds from an image's id as from a name.
        const snapshots = (body.snapshots || []).filter((x) => x.id != null);
        if (snapshots.length) {
            const group = document.createElement('optgroup');
            group.label = 'Snapshots';
            group.append(...snapshots.map((x) => option(String(x.id),
                `${x.description || x.name || 'snapshot'} (snapshot ${x.id})`)));
            $('detail-image').append(group);
        }
        fill('detail-type', (body.server_types || []).filter((t) => !t.deprecated).map((t) => option(t.name,
            `${t.name} \u2013 ${t.cores} cores, ${t.memory_gb} GB, ${t.disk_gb} GB disk`)), s.server_type);
        $('detail-isos').replaceChildren(...(body.isos || []).map((i) => option(i.name, i.description || i.name)));
        $('detail').dataset.catalog = 'loaded';
    } catch {
        // The lists stay empty; the buttons say what is missing.
    }
}

/** Runs an action of the view: confirmed as it needs, queued, followed. */
async function detailAction(verb, b) {
    const spec = ACTIONS[verb];
    const name = shownDetail?.name;
    if (!spec || !name) return;
    const problem = spec.check?.() || '';
    if (problem) {
        detailProgress(`${spec.label}: ${problem}`);
        return;
    }
    if (spec.typed && !(await askTyped(name, spec.label, spec.typed))) return;
    if (spec.ask && !window.confirm(`${spec.label} ${name}? ${spec.ask}`)) return;
    const body = spec.body ? spec.body() : {};
    const buttons = document.querySelectorAll('#detail [data-action]');
    for (const x of buttons) x.disabled = true;
    busy += 1;
    try {
        detailProgress(`${spec.label}: sending`);
        const { command } = await api('POST', `servers/${encodeURIComponent(name)}/actions/${verb}`, body);
        setLast(name, `${spec.label}: queued (command ${command.id})`);
        detailProgress(`${spec.label}: queued (command ${command.id})`);
        const done = await followCommand(command.id, (text) => detailProgress(`${spec.label}: ${text}`));
        if (!done) {
            detailProgress(`${spec.label}: still not finished after ${POLL_FOR / 60000} minutes (command ${command.id})`);
            return;
        }
        if (done.state === 'failed') {
            detailProgress(`${spec.label}: failed: ${done.error ?? 'no reason given'}`);
            setLast(name, `${spec.label}: failed`);
            return;
        }
        const password = done.result && typeof done.result === 'object' ? done.result.root_password : null;
        if (password && shownDetail?.name === name) showPassword(name, password);
        detailProgress(`${spec.label}: done`);
        setLast(name, `${spec.label}: done`);
        await reloadDetail();
        await loadServers();
    } catch (err) {
        detailProgress(`${spec.label}: ${describe(err)}`);
        if (err instanceof ApiError && err.status === 401) report(err);
    } finally {
        busy -= 1;
        for (const x of buttons) x.disabled = false;
    }
}

/** Polls a command until it is done or failed: the command, or null when
 *  it did not finish in time. */
async function followCommand(id, show) {
    const until = Date.now() + POLL_FOR;
    while (Date.now() < until) {
        await new Promise((resolve) => setTimeout(resolve, POLL_EVERY));
        const { command } = await api('GET', `commands/${encodeURIComponent(id)}`);
        if (command.state === 'done' || command.state === 'failed') return command;
        show(`${command.state || 'waiting'} (command ${id})`);
    }
    return null;
}

/** The new root password, on the page only: never stored. */
function showPassword(name, password) {
    $('detail-password-server').textContent = name;
    $('detail-password-value').textContent = password;
    $('detail-password-copy').textContent = 'Copy';
    $('detail-password').hidden = false;
}

function hidePassword() {
    $('detail-password-value').textContent = '';
    $('detail-password').hidden = true;
}

function copyPassword() {
    return copyText($('detail-password-value'), $('detail-password-copy'));
}

/** The graphs: one chart per kind of series Hetzner answers for the type
 *  (CPU; disk operations and throughput; network traffic and packets). */
const METRICS = ['cpu', 'disk', 'network'];
const KINDS = {
    cpu: 'CPU (%)',
    'disk.iops': 'Disk operations (per second)',
    'disk.bandwidth': 'Disk throughput (bytes per second)',
    'network.bandwidth': 'Network traffic (bytes per second)',
    'network.pps': 'Network packets (per second)',
};
const COLOURS = ['#2d6aa3', '#b3372f', '#2f7d4a', '#8a5800'];

function currentRange() {
    return document.querySelector('#detail .graph-ranges [aria-pressed="true"]')?.dataset.since || '1h';
}

let uplotModule = null;
/** The charts drawn, resized with the view (a phone turned, a window). */
let plots = [];

function chartWidth() {
    const area = $('graphs-area');
    return Math.max(200, Math.min((area.clientWidth || 600) - 20, 900));
}

/** uPlot and its stylesheet, loaded with the first graph. */
async function uplot() {
    if (!uplotModule) {
        const link = document.createElement('link');
        link.rel = 'stylesheet';
        link.href = new URL('./uplot/uplot.css', import.meta.url).href;
        document.head.append(link);
        uplotModule = (await import('./uplot/uplot.js')).default;
    }
    return uplotModule;
}

async function loadGraphs(since) {
    const name = shownDetail?.name;
    const generation = detailGeneration;
    const area = $('graphs-area');
    for (const p of plots) p.destroy();
    plots = [];
    area.replaceChildren();
    area.dataset.since = since;
    $('graphs-note').textContent = `Loading the last ${since}\u2026`;
    let plot;
    let answers;
    try {
        [plot, ...answers] = await Promise.all([
            uplot(),
            ...METRICS.map((type) => api('GET',
                `servers/${encodeURIComponent(name)}/metrics?type=${type}&since=${encodeURIComponent(since)}`)),
        ]);
    } catch (err) {
        if (generation !== detailGeneration) return;
        $('graphs-note').textContent = `No graphs: ${describe(err)}`;
        area.dataset.state = 'failed';
        return;
    }
    if (generation !== detailGeneration || currentRange() !== since) return;
    const groups = new Map();
    for (const answer of answers) {
        for (const [key, series] of Object.entries(answer.metrics?.time_series || {})) {
            const parts = key.split('.');
            const kind = parts.length >= 3 ? `${parts[0]}.${parts[2]}` : parts[0];
            if (!groups.has(kind)) groups.set(kind, []);
            groups.get(kind).push({ label: parts.length >= 4 ? parts.slice(3).join(' ') : parts[0], values: series.values || [] });
        }
    }
    $('graphs-note').textContent = groups.size ? '' : `No data for the last ${since}.`;
    const width = chartWidth();
    for (const [kind, series] of groups) {
        const times = [...new Set(series.flatMap((x) => x.values.map((v) => Number(v[0]))))].sort((a, b) => a - b);
        const index = new Map(times.map((t, i) => [t, i]));
        const columns = series.map((x) => {
            const col = new Array(times.length).fill(null);
            for (const [t, v] of x.values) col[index.get(Number(t))] = Number(v);
            return col;
        });
        const figure = document.createElement('figure');
        figure.className = 'graph';
        figure.dataset.kind = kind;
        const caption = document.createElement('figcaption');
        const last = series.map((x, i) => {
            const v = columns[i].filter((n) => n != null).at(-1);
            return `${x.label} ${v == null ? '\u2013' : Number(v.toFixed(2))}`;
        });
        caption.textContent = `${KINDS[kind] || kind}: latest ${last.join(', ')}`;
        const chart = document.createElement('div');
        figure.append(caption, chart);
        area.append(figure);
        plots.push(new plot({
            width,
            height: 170,
            series: [{}, ...series.map((x, i) => ({ label: x.label, stroke: COLOURS[i % COLOURS.length], width: 1.5 }))],
            axes: [{}, { size: 60 }],
        }, [times, ...columns], chart));
    }
    area.dataset.state = 'drawn';
}

function initDetail() {
    $('detail-close').addEventListener('click', () => $('detail').close());
    $('detail').addEventListener('close', () => {
        // A password goes with the view; a late answer finds it closed.
        hidePassword();
        detailGeneration += 1;
        shownDetail = null;
    });
    for (const b of document.querySelectorAll('#detail [data-action]')) {
        b.addEventListener('click', () => detailAction(b.dataset.action, b));
    }
    for (const b of document.querySelectorAll('#detail .graph-ranges button')) {
        b.addEventListener('click', () => {
            for (const x of document.querySelectorAll('#detail .graph-ranges button')) {
                x.setAttribute('aria-pressed', String(x === b));
            }
            loadGraphs(b.dataset.since);
        });
    }
    new ResizeObserver(() => {
        const width = chartWidth();
        for (const p of plots) if (p.width !== width) p.setSize({ width, height: 170 });
    }).observe($('graphs-area'));
    $('detail-rdns-ip').addEventListener('change', () => {
        $('detail-rdns-host').value = $('detail-rdns-ip').selectedOptions[0]?.dataset.ptr || '';
    });
    $('detail-password-copy').addEventListener('click', copyPassword);
    $('detail-password-hide').addEventListener('click', hidePassword);
}

$('key-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const key = $('key').value.trim();
    if (!key) return;
    sessionStorage.setItem(KEY, key);
    $('key').value = '';
    loadServers();
});
$('reload').addEventListener('click', loadServers);
$('create').addEventListener('toggle', () => {
    if ($('create').open && !catalog) loadCatalog();
});
$('catalog-retry').addEventListener('click', loadCatalog);
$('create-type').addEventListener('change', fitImages);
$('create-form').addEventListener('submit', createServer);
$('delete-typed').addEventListener('input', typedName);
$('delete-form').addEventListener('submit', confirmTyped);
$('delete-cancel').addEventListener('click', () => {
    cancelTyped();
    $('delete-dialog').close();
});
$('delete-dialog').addEventListener('close', cancelTyped);
initDetail();
$('search').addEventListener('input', filter);
$('forget').addEventListener('click', () => {
    sessionStorage.removeItem(KEY);
    stopStatus();
    $('servers').querySelector('tbody').replaceChildren();
    $('sessions').querySelector('tbody').replaceChildren();
    $('sessions-section').hidden = true;
    $('create').hidden = true;
    $('create').open = false;
    catalog = null;
    lastAction.clear();
    showMessage('');
    showKeyForm();
});

if (window.location.hash.startsWith('#key=')) {
    const key = decodeURIComponent(window.location.hash.slice('#key='.length)).trim();
    history.replaceState(null, '', window.location.pathname + window.location.search);
    if (key) sessionStorage.setItem(KEY, key);
}
if (sessionStorage.getItem(KEY)) {
    $('key-form').hidden = true;
    loadServers();
}
