// One noVNC connection with the console toolbar, shared by console.js and
// l.js. The page provides #status, #screen and, where it has them, the
// toolbar buttons (#cad, #scale, #fullscreen, the keys of keys.js, and a
// button with `aria-controls` for each panel: #clipboard, #type, #keys)
// and the forms #clipboard and #password-form.
//
// The screen is scaled to fit the window unless the user turned that off
// (remembered in this browser); the VNC server's own size stands (no
// remote resize). Panels open over the screen, never pushing it down.
//
// Imports are relative to this module, so the pages work wherever hcc is
// mounted (noVNC is served at /novnc/novnc.js, one bundled module).
import { RFB } from './novnc/novnc.js';
import { Keys } from './keys.js';

/** Where this browser remembers the scale choice ('1' on, '0' off). */
const SCALE_KEY = 'hcc.console.scale';

/** Every event noVNC's RFB dispatches (1.7). */
export const RFB_EVENTS = [
    'connect', 'disconnect', 'credentialsrequired', 'serververification',
    'securityfailure', 'clipboard', 'bell', 'desktopname', 'capabilities',
    'clippingviewport',
];

// Every RFB event, in order, for anyone inspecting the page (and the
// browser test): {type, detail, at} with `at` in ms since the page started.
window.vncEvents = [];

const $ = (id) => document.getElementById(id);

/** Shows a status line; `state` is connecting|connected|disconnected|failed. */
export function setStatus(state, text) {
    if (state) {
        document.body.dataset.state = state;
        document.title = state;
    }
    $('status').textContent = text;
}

/** How a connection ended, as one line for the status bar. */
export function describeEnd(end) {
    if (end.userInitiated) return 'Disconnected';
    if (end.securityFailure !== null) {
        return end.securityFailure
            ? `Authentication failed: ${end.securityFailure}`
            : 'Authentication failed';
    }
    if (end.error) return end.error;
    if (!end.wasConnected) return 'Could not connect to the console server';
    return end.clean ? 'Disconnected by the server' : 'Connection lost';
}

/**
 * The console viewer. `onConnect(desktopName)` and `onEnd(end)` tell the
 * page what happened; `end` is {clean, wasConnected, userInitiated,
 * securityFailure (null, or the server's reason text), error, duration}.
 */
export class Viewer {
    constructor({ onConnect, onEnd }) {
        this.onConnect = onConnect;
        this.onEnd = onEnd;
        this.rfb = null;
        this.scale = loadScale();
        this.desktopName = '';
        this.keys = new Keys(() => this.rfb);
        this.wireToolbar();
    }

    /** Opens a connection; `password` undefined asks the user if needed. */
    connect(url, password) {
        this.close();
        const attempt = {
            wasConnected: false,
            userInitiated: false,
            securityFailure: null,
            connectedAt: 0,
        };
        this.attempt = attempt;
        const options = { wsProtocols: ['binary'], shared: true };
        if (password !== undefined) options.credentials = { password };
        let rfb;
        try {
            rfb = new RFB($('screen'), url, options);
        } catch (err) {
            this.finish(attempt, { clean: false, error: `Cannot open the console address: ${err.message}` });
            return;
        }
        this.rfb = rfb;
        window.rfb = rfb;
        rfb.viewOnly = false;
        rfb.scaleViewport = this.scale;
        rfb.resizeSession = false;
        for (const type of RFB_EVENTS) {
            rfb.addEventListener(type, (e) => {
                window.vncEvents.push({ type, detail: e.detail ?? null, at: Math.round(performance.now()) });
            });
        }
        rfb.addEventListener('desktopname', (e) => { this.desktopName = e.detail.name; });
        rfb.addEventListener('connect', () => {
            attempt.wasConnected = true;
            attempt.connectedAt = performance.now();
            this.hidePasswordForm();
            this.setButtons(true);
            this.onConnect(this.desktopName);
        });
        rfb.addEventListener('securityfailure', (e) => {
            attempt.securityFailure = e.detail.reason || '';
        });
        rfb.addEventListener('credentialsrequired', (e) => this.askPassword(e.detail.types || []));
        rfb.addEventListener('clipboard', (e) => this.showRemoteClipboard(e.detail.text));
        rfb.addEventListener('disconnect', (e) => {
            if (this.rfb === rfb) {
                this.rfb = null;
            }
            // A connection replaced by a newer one ends quietly.
            if (this.attempt !== attempt) return;
            this.finish(attempt, { clean: !!e.detail.clean });
        });
    }

    /** Closes the connection on the user's behalf (no reconnect follows). */
    disconnect() {
        if (this.attempt) this.attempt.userInitiated = true;
        this.close();
    }

    close() {
        if (this.rfb) {
            const rfb = this.rfb;
            this.rfb = null;
            rfb.disconnect();
        }
    }

    finish(attempt, { clean, error = '' }) {
        this.setButtons(false);
        this.keys.reset();
        this.hidePasswordForm();
        const duration = attempt.wasConnected ? performance.now() - attempt.connectedAt : 0;
        this.onEnd({
            clean,
            error,
            duration,
            wasConnected: attempt.wasConnected,
            userInitiated: attempt.userInitiated,
            securityFailure: attempt.securityFailure,
        });
    }

    wireToolbar() {
        $('cad')?.addEventListener('click', () => {
            if (!this.rfb) return;
            this.rfb.sendCtrlAltDel();
            this.rfb.focus();
        });
        const scale = $('scale');
        scale?.setAttribute('aria-pressed', String(this.scale));
        scale?.addEventListener('click', () => {
            this.scale = !this.scale;
            scale.setAttribute('aria-pressed', String(this.scale));
            saveScale(this.scale);
            if (this.rfb) {
                this.rfb.scaleViewport = this.scale;
                this.rfb.focus();
            }
        });
        const full = $('fullscreen');
        if (full) {
            if (!document.fullscreenEnabled) {
                full.hidden = true;
            }
            full.addEventListener('click', () => {
                if (document.fullscreenElement) {
                    document.exitFullscreen();
                } else {
                    document.documentElement.requestFullscreen().catch(() => {});
                }
            });
            document.addEventListener('fullscreenchange', () => {
                full.setAttribute('aria-pressed', String(!!document.fullscreenElement));
                this.rfb?.focus();
            });
        }
        wirePanels(() => this.rfb?.focus());
        const panel = $('clipboard');
        if (panel) {
            panel.addEventListener('submit', (e) => {
                e.preventDefault();
                if (!this.rfb) return;
                this.rfb.clipboardPasteFrom($('clipboard-text').value);
                $('clipboard-note').textContent = 'Sent to the server; paste it there.';
                this.rfb.focus();
            });
        }
        $('password-form')?.addEventListener('submit', (e) => {
            e.preventDefault();
            const input = $('password');
            if (this.rfb) {
                this.rfb.sendCredentials({ password: input.value });
            }
            input.value = '';
            this.hidePasswordForm();
        });
        this.setButtons(false);
    }

    setButtons(connected) {
        const ids = ['cad', 'clipboard-send', 'type-send', 'key-ctrl', 'key-alt', 'key-super'];
        for (const id of ids) {
            const button = $(id);
            if (button) button.disabled = !connected || (id === 'type-send' && this.keys.typing);
        }
        for (const button of document.querySelectorAll('[data-key]')) button.disabled = !connected;
    }

    showRemoteClipboard(text) {
        const area = $('clipboard-text');
        if (!area) return;
        area.value = text;
        $('clipboard-note').textContent = 'The server\u2019s clipboard; edit it and send it back, or copy it from here.';
    }

    askPassword(types) {
        const form = $('password-form');
        if (!form || !types.includes('password')) {
            setStatus('failed', `The console server asks for ${types.join(', ') || 'credentials'}, which this page cannot send`);
            return;
        }
        setStatus(null, 'The console server asks for a password');
        form.hidden = false;
        $('password').focus();
    }

    hidePasswordForm() {
        const form = $('password-form');
        if (form) form.hidden = true;
    }
}

/** The scale choice this browser remembers; scaled when there is none. */
function loadScale() {
    try {
        return window.localStorage.getItem(SCALE_KEY) !== '0';
    } catch {
        // Storage may be off (a sandboxed frame): scaled, not remembered.
        return true;
    }
}

function saveScale(on) {
    try {
        window.localStorage.setItem(SCALE_KEY, on ? '1' : '0');
    } catch {
        // Not remembered; the choice holds for this page.
    }
}

/**
 * The panel buttons of the toolbar: each `button[aria-controls]` inside
 * `.tools` opens its panel and closes the others; Escape in a panel, or
 * its button again, closes it. `done()` runs when a panel closes (the
 * screen takes the keyboard back). A panel's first field takes the focus.
 */
function wirePanels(done = () => {}) {
    const buttons = [...document.querySelectorAll('.tools button[aria-controls]')];
    const close = (button) => {
        const panel = $(button.getAttribute('aria-controls'));
        if (panel && !panel.hidden) {
            panel.hidden = true;
            button.setAttribute('aria-expanded', 'false');
            return true;
        }
        return false;
    };
    for (const button of buttons) {
        const panel = $(button.getAttribute('aria-controls'));
        if (!panel) continue;
        button.addEventListener('click', () => {
            if (close(button)) {
                done();
                return;
            }
            for (const other of buttons) close(other);
            panel.hidden = false;
            button.setAttribute('aria-expanded', 'true');
            panel.querySelector('textarea, input, button:not(:disabled):not([hidden])')?.focus();
        });
        panel.addEventListener('keydown', (e) => {
            if (e.key === 'Escape') {
                close(button);
                button.focus();
            }
        });
    }
}
