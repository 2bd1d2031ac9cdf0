// The dashboard: whether the system works (worker, last sync, rate budget,
// queue, refreshed on its own), the servers hcc knows, buttons for the
// power verbs, a console link and console suspension per server, and the
// live console sessions with a button that revokes their server's consoles,
// through the JSON API with an API key. A button shows only where it can
// work: the power verbs by the server's state, every button by the key's
// scope (which `/api/v1/status` names), so a read key sees no buttons.
// The key is kept in this tab's sessionStorage and sent only as a header.
// A key may also come in the URL's fragment (`#key=...`, as `hcc demo`
// prints it): browsers never send a fragment, and it is taken out of the
// address bar and history at once.
// Every text from the server goes in with textContent.

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
    $('h-budget').textContent = budget ? `${budget.remaining} of ${budget.limit} requests` : 'unknown (no API call yet)';
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

function cell(row, text) {
    const td = document.createElement('td');
    td.textContent = text ?? '';
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
    const tbody = $('servers').querySelector('tbody');
    const rows = servers.map((server) => {
        const row = document.createElement('tr');
        row.dataset.server = server.name;
        cell(row, server.name);
        const status = cell(row, server.status);
        status.className = `status-${String(server.status || 'unknown').replace(/[^a-z]/g, '')}`;
        cell(row, server.ip4 || '\u2013');
        cell(row, server.managed ? 'yes' : 'no');
        const actions = cell(row, '');
        actions.className = 'actions';
        const last = cell(row, '');
        last.className = 'last';
        for (const [verb, label] of VERBS) {
            if (!allowed('act') || server.status !== WHEN[verb]) continue;
            const b = button(label, () => act(server.name, verb, label, b));
            b.dataset.verb = verb;
            if (HARD.has(verb)) b.classList.add('hard');
            actions.append(b);
        }
        if (allowed('console')) {
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

async function act(name, verb, label, b) {
    if (HARD.has(verb) && !window.confirm(`${label} ${name}? This cuts the power without shutting down.`)) {
        return;
    }
    b.disabled = true;
    busy += 1;
    setLast(name, `${label}: sending`);
    try {
        const body = await api('POST', `servers/${encodeURIComponent(name)}/actions/${verb}`, {});
        const command = body.command ?? body;
        setLast(name, `${label}: queued (command ${command.id})`);
        await follow(name, label, command.id);
    } catch (err) {
        setLast(name, `${label}: ${describe(err)}`);
        if (err instanceof ApiError && err.status === 401) report(err);
    } finally {
        b.disabled = false;
        busy -= 1;
    }
}

/** Polls a command until it is done or failed; then reloads the list. */
async function follow(name, label, id) {
    const until = Date.now() + POLL_FOR;
    while (Date.now() < until) {
        await new Promise((resolve) => setTimeout(resolve, POLL_EVERY));
        const body = await api('GET', `commands/${encodeURIComponent(id)}`);
        const command = body.command ?? body;
        const state = command.state ?? command.status;
        if (state === 'done') {
            const result = typeof command.result === 'string' ? command.result : '';
            setLast(name, `${label}: done${result ? ` (${result})` : ''}`);
            await loadServers();
            return;
        }
        if (state === 'failed') {
            setLast(name, `${label}: failed: ${command.error ?? command.reason ?? 'no reason given'}`);
            await loadServers();
            return;
        }
        setLast(name, `${label}: ${state || 'waiting'} (command ${id})`);
    }
    setLast(name, `${label}: still not finished after ${POLL_FOR / 60000} minutes (command ${id})`);
}

async function openConsole(name, b) {
    b.disabled = true;
    busy += 1;
    setLast(name, 'Console: asking for a link');
    try {
        const body = await api('POST', `servers/${encodeURIComponent(name)}/console-link`, {});
        window.open(body.url, '_blank', 'noopener');
        setLast(name, 'Console: opened in a new tab; if nothing opened,', body.url);
    } catch (err) {
        setLast(name, `Console: ${describe(err)}`);
        if (err instanceof ApiError && err.status === 401) report(err);
    } finally {
        b.disabled = false;
        busy -= 1;
    }
}

/** Servers whose consoles are suspended, from the last sessions load. */
let suspended = new Set();

/** The live sessions (an admin key's view); hidden for other keys. */
async function loadSessions() {
    if (!allowed('admin')) {
        $('sessions-section').hidden = true;
        return;
    }
    let body;
    try {
        body = await api('GET', 'sessions?live=1');
    } catch (err) {
        $('sessions-section').hidden = true;
        if (!(err instanceof ApiError && err.status === 403)) report(err);
        return;
    }
    suspended = new Set((body.suspended || []).map((s) => s.server));
    showSuspensions();
    const sessions = Array.isArray(body.sessions) ? body.sessions : [];
    const rows = sessions.map((s) => {
        const row = document.createElement('tr');
        row.dataset.session = s.id;
        row.dataset.server = s.server;
        cell(row, s.server);
        cell(row, s.link_id ? `link ${s.link_id}${s.created_by ? ` (${s.created_by})` : ''}` : s.created_by || '\u2013');
        cell(row, s.remote || '\u2013');
        cell(row, s.user_agent || '\u2013');
        cell(row, s.connected_at ? new Date(s.connected_at * 1000).toLocaleString() : '\u2013');
        cell(row, `${s.bytes_to_client} / ${s.bytes_from_client} bytes`);
        const state = cell(row, s.stop_requested ? `ending (${s.stop_requested})` : 'live');
        state.className = 'state';
        const actions = cell(row, '');
        actions.className = 'actions';
        const revokeButton = button('Revoke', () => revoke(s.server, revokeButton));
        revokeButton.classList.add('hard');
        actions.append(revokeButton);
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
    try {
        const body = await api('POST', `servers/${encodeURIComponent(name)}/revoke`, {});
        const r = body.revoked || {};
        showMessage(`Consoles of ${name} revoked: ${r.stopped ?? 0} live session(s) ending, ${r.links ?? 0} unopened link(s) void.`);
        await loadSessions();
    } catch (err) {
        report(err);
    } finally {
        b.disabled = false;
    }
}

async function toggleSuspension(name, b) {
    const resume = suspended.has(name);
    if (!resume && !window.confirm(`Suspend the consoles of ${name}? Its links and live sessions stop working until resumed.`)) return;
    b.disabled = true;
    busy += 1;
    try {
        await api('POST', `servers/${encodeURIComponent(name)}/${resume ? 'resume' : 'suspend'}`, {});
        setLast(name, resume ? 'Consoles: resumed' : 'Consoles: suspended');
        await loadSessions();
    } catch (err) {
        setLast(name, `Consoles: ${describe(err)}`);
        if (err instanceof ApiError && err.status === 401) report(err);
    } finally {
        b.disabled = false;
        busy -= 1;
    }
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
$('search').addEventListener('input', filter);
$('forget').addEventListener('click', () => {
    sessionStorage.removeItem(KEY);
    stopStatus();
    $('servers').querySelector('tbody').replaceChildren();
    $('sessions').querySelector('tbody').replaceChildren();
    $('sessions-section').hidden = true;
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
