// The console page's power buttons: Reboot, Reset, Power on, shown when
// the key that made the console link may queue them (scope `act` or
// `admin`). The page holds no API key: it asks hcc with its console
// session (the `session` of the page's #hcc-console data, or the one this
// tab kept for a reload: session.js; in the body of
// a POST, never in a URL) at `power`, beside the page's `refresh`:
//   {"session"}                 -> {server, status, verbs: [...]}
//   {"session", "verb"}         -> 202 {command}, queued like the
//                                  dashboard's buttons queue it
//   {"session", "command": id}  -> {command}, to follow it to done/failed
// After a reboot the console drops and console.js reconnects by itself.
//
// Where the power answer's `verbs` holds `reset-password` (the key may
// act), the panel also offers "Reset root password": asked at
// `password` beside `power` (see `askPassword`), the new password shown
// once, with Copy and a button that types it into the console through
// the toolbar's Type text.

import { copyText } from './copy.js';

/** How often a queued command is asked after (ms), and for how long. */
const POLL_MS = 1000;
const POLL_FOR_MS = 3 * 60 * 1000;

const LABELS = {
    reboot: {
        name: 'Reboot',
        doing: 'reboot',
        detail: 'The operating system is asked to restart (like pressing the power button briefly); unsaved work on the server is lost if it does not shut down cleanly. The console reconnects by itself.',
    },
    reset: {
        name: 'Reset',
        doing: 'reset',
        detail: 'The server restarts at once, like pressing its reset button: the operating system gets no chance to shut down, and unsaved data is lost.',
    },
    start: {
        name: 'Power on',
        doing: 'power-on',
        detail: 'The server is switched on, if it is off.',
    },
    'reset-password': {
        name: 'Reset root password',
        doing: 'root password reset',
        detail: 'The root password is replaced by a new one, shown here once. The server must be running, with the Hetzner guest agent (qemu-guest-agent).',
    },
};

import { recalled } from './session.js';

const $ = (id) => document.getElementById(id);

// The page's data carries the session on the page that opened the link;
// a reloaded page (a GET of the opened link) has only what this tab kept.
function readData() {
    let value = null;
    try {
        value = JSON.parse($('hcc-console')?.textContent ?? 'null');
    } catch {
        return null;
    }
    if (!value || typeof value !== 'object') return null;
    const session = typeof value.session === 'string' ? value.session : recalled();
    return session ? { ...value, session } : null;
}

const data = readData();
// Relative to the page (/c/TOKEN), as the refresh URL is.
const endpoint = 'power';

async function ask(body, to = endpoint) {
    const response = await fetch(to, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
        body: JSON.stringify({ session: data.session, ...body }),
        cache: 'no-store',
        credentials: 'same-origin',
    });
    let json = null;
    try {
        json = await response.json();
    } catch {
        json = null;
    }
    return { status: response.status, body: json };
}

function note(text, state) {
    const p = $('power-note');
    p.textContent = text;
    p.dataset.state = state;
    const toggle = $('power-toggle');
    if (toggle) toggle.dataset.state = state;
}

/** Shows the buttons the session's key may press; none when it may not. */
async function offer() {
    let answer;
    try {
        answer = await ask({ verb: null });
    } catch {
        return;
    }
    const verbs = answer.status === 200 && Array.isArray(answer.body?.verbs) ? answer.body.verbs : [];
    if (!verbs.length) return;
    const server = answer.body.server || data.server || 'the server';
    for (const button of document.querySelectorAll('#power [data-verb]')) {
        const verb = button.dataset.verb;
        if (!verbs.includes(verb)) continue;
        button.hidden = false;
        button.addEventListener('click', () => confirmThen(server, verb));
    }
    if (verbs.includes('reset-password')) {
        const reset = $('password-reset');
        reset.hidden = false;
        reset.addEventListener('click', () => confirmThen(server, 'reset-password'));
    }
    $('power-toggle').hidden = false;
}

function confirmThen(server, verb) {
    const label = LABELS[verb];
    const dialog = $('power-confirm');
    $('power-question').textContent = `${label.name} ${server}?`;
    $('power-detail').textContent = label.detail;
    $('power-yes').textContent = label.name;
    dialog.returnValue = '';
    dialog.addEventListener('close', () => {
        if (dialog.returnValue !== 'yes') return;
        if (verb === 'reset-password') {
            resetPassword(server);
        } else {
            queue(server, verb);
        }
    }, { once: true });
    dialog.showModal();
}

async function queue(server, verb) {
    const label = LABELS[verb];
    const buttons = document.querySelectorAll('#power [data-verb]');
    for (const b of buttons) b.disabled = true;
    note(`Asking for the ${label.doing} of ${server}...`, 'queued');
    try {
        const answer = await ask({ verb });
        if (answer.status === 409 && answer.body?.command) {
            // One is under way already (another tab, a second click):
            // follow that one.
            const running = answer.body.command;
            await follow(server, LABELS[running.cmd] || label, running);
            return;
        }
        if (answer.status !== 202 || !answer.body?.command) {
            const why = answer.body?.error?.message || `HTTP ${answer.status}`;
            note(`The ${label.doing} of ${server} was refused: ${why}`, 'failed');
            return;
        }
        await follow(server, label, answer.body.command);
    } catch {
        note(`Could not reach hcc to ask for the ${label.doing}; try again.`, 'failed');
    } finally {
        for (const b of buttons) b.disabled = false;
    }
}

/** Follows a queued command until it is done or failed. */
async function follow(server, label, command) {
    const until = Date.now() + POLL_FOR_MS;
    for (;;) {
        if (command.state === 'done') {
            note(`${label.name} of ${server}: done.`, 'done');
            return;
        }
        if (command.state === 'failed') {
            note(`${label.name} of ${server} failed: ${command.error || 'no reason given'}`, 'failed');
            return;
        }
        note(`${label.name} of ${server}: ${command.state === 'running' ? 'running' : 'queued, waiting for the worker'}.`,
            command.state === 'running' ? 'running' : 'queued');
        if (Date.now() > until) {
            note(`${label.name} of ${server} is still ${command.state}; hcc's worker has not finished it.`, command.state);
            return;
        }
        await new Promise((resolve) => setTimeout(resolve, POLL_MS));
        try {
            const answer = await ask({ command: command.id });
            if (answer.status === 200 && answer.body?.command) {
                command = answer.body.command;
            } else if (answer.status === 410 || answer.status === 404) {
                note(`${label.name} of ${server} was queued; this console session has ended, so its progress is not shown.`, 'queued');
                return;
            }
        } catch {
            // A dropped network is asked again at the next tick.
        }
    }
}

/**
 * One call to hcc's root password reset for this console: `POST
 * /c/password` (relative to the page, as `power` is /c/power),
 * with the page's session in the body like every call of this page:
 *   {"session"}                -> {"root_password": "..."} once hcc's
 *                                 worker has reset it, or {"state":
 *                                 "queued"|"running", "command": id}
 *   {"session", "command": id} -> the same for that command: asked again
 *                                 until the password comes (once: a later
 *                                 ask has it no more)
 * Errors as `power` answers them ({"error": {"message"}}, 4xx/5xx).
 */
function askPassword(command) {
    return ask(command === undefined ? {} : { command }, 'password');
}

/** Resets the root password and shows it (until hidden or a reload). */
async function resetPassword(server) {
    const label = LABELS['reset-password'];
    const reset = $('password-reset');
    reset.disabled = true;
    hidePassword();
    note(`Asking for the ${label.doing} of ${server}...`, 'queued');
    const until = Date.now() + POLL_FOR_MS;
    let command;
    try {
        for (;;) {
            const answer = await askPassword(command);
            const body = answer.body || {};
            if (answer.status >= 200 && answer.status < 300 && typeof body.root_password === 'string') {
                showPassword(body.root_password);
                note(`${label.name} of ${server}: done. The new password is below, this once.`, 'done');
                return;
            }
            if (answer.status >= 300 || !body.command) {
                const why = body.error?.message || body.state || `HTTP ${answer.status}`;
                note(`The ${label.doing} of ${server} failed: ${why}`, 'failed');
                return;
            }
            command = body.command;
            note(`${label.name} of ${server}: ${body.state === 'running' ? 'running' : 'queued, waiting for the worker'}.`,
                body.state === 'running' ? 'running' : 'queued');
            if (Date.now() > until) {
                note(`${label.name} of ${server} is still ${body.state}; hcc's worker has not finished it.`, body.state);
                return;
            }
            await new Promise((resolve) => setTimeout(resolve, POLL_MS));
        }
    } catch {
        note(`Could not reach hcc to ask for the ${label.doing}; try again.`, 'failed');
    } finally {
        reset.disabled = false;
    }
}

/** The password on the page only: never stored, gone when hidden. */
function showPassword(password) {
    $('password-value').textContent = password;
    $('password-copy').textContent = 'Copy';
    $('password-new').hidden = false;
}

function hidePassword() {
    $('password-value').textContent = '';
    $('password-new').hidden = true;
}

function copyPassword() {
    return copyText($('password-value'), $('password-copy'));
}

/** Types the password on the server with the toolbar's Type text (which
 *  empties its field once everything is typed). */
function typePassword() {
    const value = $('password-value').textContent;
    const form = $('type');
    if (!value || !form) return;
    if (form.hidden) $('type-toggle')?.click();
    $('type-text').value = value;
    form.requestSubmit();
}

$('password-copy')?.addEventListener('click', copyPassword);
$('password-type')?.addEventListener('click', typePassword);
$('password-hide')?.addEventListener('click', hidePassword);

if (data) offer();
