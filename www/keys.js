// The keys a console needs that a browser keeps for itself or a laptop
// lacks: sticky Ctrl, Alt and Super toggles, Esc, Tab, Ctrl-Alt-F1..F12;
// the "Type text" box, which sends text as key presses (Hetzner's console
// has no guest clipboard: this is how a root password gets in); and on a
// touch device a button that opens the on-screen keyboard.
//
// Keys go out as noVNC's `rfb.sendKey(keysym, code, down)`. The code is
// the key's place on a US keyboard, so that a server taking scancodes
// (QEMU's extended key events, as Hetzner's consoles do) gets the key a
// person would press, with Shift held for the characters that need it.
import { KeyTable, keysymdef } from './novnc/novnc.js';

/** More characters than this get a warning before they are typed. */
export const LONG_TEXT = 300;
/** Characters in one burst, and the pause after each burst (ms): a
 * guest's keyboard buffer is small, and a long password must not lose a
 * character. */
const BURST = 8;
const PAUSE_MS = 40;

/** The sticky modifiers: [id suffix, keysym, code]. */
const MODIFIERS = {
    ctrl: [KeyTable.XK_Control_L, 'ControlLeft'],
    alt: [KeyTable.XK_Alt_L, 'AltLeft'],
    super: [KeyTable.XK_Super_L, 'MetaLeft'],
};

/** Named keys of the keys panel: [keysym, code]. */
const NAMED = {
    Escape: [KeyTable.XK_Escape, 'Escape'],
    Tab: [KeyTable.XK_Tab, 'Tab'],
    Return: [KeyTable.XK_Return, 'Enter'],
    BackSpace: [KeyTable.XK_BackSpace, 'Backspace'],
};
for (let n = 1; n <= 12; n++) NAMED[`F${n}`] = [KeyTable.XK_F1 + n - 1, `F${n}`];

const SHIFT = [KeyTable.XK_Shift_L, 'ShiftLeft'];

// A US keyboard: the code of each printable ASCII character's key, and
// the characters that need Shift.
const PLAIN = {
    '`': 'Backquote', '-': 'Minus', '=': 'Equal', '[': 'BracketLeft', ']': 'BracketRight',
    '\\': 'Backslash', ';': 'Semicolon', "'": 'Quote', ',': 'Comma', '.': 'Period',
    '/': 'Slash', ' ': 'Space',
};
const SHIFTED = {
    '~': 'Backquote', '!': 'Digit1', '@': 'Digit2', '#': 'Digit3', '$': 'Digit4',
    '%': 'Digit5', '^': 'Digit6', '&': 'Digit7', '*': 'Digit8', '(': 'Digit9',
    ')': 'Digit0', '_': 'Minus', '+': 'Equal', '{': 'BracketLeft', '}': 'BracketRight',
    '|': 'Backslash', ':': 'Semicolon', '"': 'Quote', '<': 'Comma', '>': 'Period',
    '?': 'Slash',
};

/**
 * How to type one character: {keysym, code, shift}; null for one that
 * cannot be typed (a control character other than newline and tab).
 */
export function strokeFor(ch) {
    if (ch === '\n') return { keysym: NAMED.Return[0], code: 'Enter', shift: false };
    if (ch === '\t') return { keysym: NAMED.Tab[0], code: 'Tab', shift: false };
    const cp = ch.codePointAt(0);
    if (cp < 0x20 || cp === 0x7f) return null;
    const keysym = keysymdef.lookup(cp);
    if (ch >= 'a' && ch <= 'z') return { keysym, code: `Key${ch.toUpperCase()}`, shift: false };
    if (ch >= 'A' && ch <= 'Z') return { keysym, code: `Key${ch}`, shift: true };
    if (ch >= '0' && ch <= '9') return { keysym, code: `Digit${ch}`, shift: false };
    if (PLAIN[ch]) return { keysym, code: PLAIN[ch], shift: false };
    if (SHIFTED[ch]) return { keysym, code: SHIFTED[ch], shift: true };
    // Beyond ASCII no US key has it: the keysym alone, and the server
    // finds a key for it.
    return { keysym, code: '', shift: false };
}

/** `text` as characters to type: CR LF and lone CR are one newline. */
export function characters(text) {
    return Array.from(text.replace(/\r\n?/g, '\n'));
}

/** Presses and releases one character's key (Shift around it if needed). */
function typeOne(rfb, stroke) {
    if (stroke.shift) rfb.sendKey(SHIFT[0], SHIFT[1], true);
    rfb.sendKey(stroke.keysym, stroke.code, true);
    rfb.sendKey(stroke.keysym, stroke.code, false);
    if (stroke.shift) rfb.sendKey(SHIFT[0], SHIFT[1], false);
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Types `text` as key presses, in bursts. `rfb()` is the connection now
 * (null: it dropped, and typing stops); `progress(done, total)` is called
 * after each burst. Resolves to the number of characters typed.
 */
export async function typeText(rfb, text, progress = () => {}) {
    const strokes = characters(text).map(strokeFor).filter(Boolean);
    let done = 0;
    while (done < strokes.length) {
        const conn = rfb();
        if (!conn) break;
        for (const stroke of strokes.slice(done, done + BURST)) typeOne(conn, stroke);
        done = Math.min(done + BURST, strokes.length);
        progress(done, strokes.length);
        if (done < strokes.length) await sleep(PAUSE_MS);
    }
    return done;
}

const $ = (id) => document.getElementById(id);

/** Whether this is a touch device, whose keyboard appears on demand. */
export function isTouch() {
    return window.matchMedia?.('(pointer: coarse)').matches || 'ontouchstart' in window;
}

/**
 * The keys toolbar of a console page: the modifier toggles (#key-ctrl,
 * #key-alt, #key-super), the buttons with `data-key` (a NAMED key, or
 * `ctrl-alt-F1`...), the type-text form (#type), the on-screen keyboard
 * button (#osk) and its input (#osk-input). `rfb()` is the connection.
 */
export class Keys {
    constructor(rfb) {
        this.rfb = rfb;
        /** Modifiers held down at the server by their toggle. */
        this.held = new Set();
        this.typing = false;
        this.wire();
    }

    wire() {
        for (const name of Object.keys(MODIFIERS)) {
            $(`key-${name}`)?.addEventListener('click', () => {
                this.toggle(name);
                this.rfb()?.focus();
            });
        }
        for (const button of document.querySelectorAll('[data-key]')) {
            button.addEventListener('click', () => {
                this.press(button.dataset.key);
                this.rfb()?.focus();
            });
        }
        // A key typed on the real keyboard while a toggle is on: noVNC
        // sends it in this same event, then the toggles let go.
        document.addEventListener('keyup', (e) => {
            if (!this.held.size || e.target?.tagName !== 'CANVAS') return;
            if (['Control', 'Alt', 'Meta', 'Shift', 'OS'].includes(e.key)) return;
            setTimeout(() => this.releaseAll(), 0);
        }, true);
        this.wireTypeText();
        this.wireTouchKeyboard();
    }

    /** Holds or lets go of a modifier at the server. */
    toggle(name) {
        const conn = this.rfb();
        const [keysym, code] = MODIFIERS[name];
        if (this.held.has(name)) {
            this.held.delete(name);
            conn?.sendKey(keysym, code, false);
        } else if (conn) {
            this.held.add(name);
            conn.sendKey(keysym, code, true);
        }
        this.show();
    }

    /** Lets go of every held modifier. */
    releaseAll() {
        const conn = this.rfb();
        for (const name of [...this.held].reverse()) {
            const [keysym, code] = MODIFIERS[name];
            conn?.sendKey(keysym, code, false);
        }
        this.held.clear();
        this.show();
    }

    /** The connection ended: the server forgets held keys with it. */
    reset() {
        this.held.clear();
        this.show();
    }

    show() {
        for (const name of Object.keys(MODIFIERS)) {
            $(`key-${name}`)?.setAttribute('aria-pressed', String(this.held.has(name)));
        }
    }

    /** A keys-panel key: `Escape`, `Tab`, `F5` or `ctrl-alt-F2`; held
     * modifiers apply to it, then let go. */
    press(spec) {
        const conn = this.rfb();
        if (!conn) return;
        const combo = spec.startsWith('ctrl-alt-');
        const key = NAMED[combo ? spec.slice('ctrl-alt-'.length) : spec];
        if (!key) return;
        const around = combo ? [MODIFIERS.ctrl, MODIFIERS.alt] : [];
        for (const [keysym, code] of around) conn.sendKey(keysym, code, true);
        conn.sendKey(key[0], key[1], true);
        conn.sendKey(key[0], key[1], false);
        for (const [keysym, code] of [...around].reverse()) conn.sendKey(keysym, code, false);
        this.releaseAll();
    }

    wireTypeText() {
        const form = $('type');
        const area = $('type-text');
        const note = $('type-note');
        if (!form || !area || !note) return;
        const usual = note.textContent;
        const warn = () => {
            const n = characters(area.value).length;
            const long = n > LONG_TEXT;
            note.classList.toggle('warning', long);
            note.textContent = long
                ? `This is ${n} characters long: typing it takes about ${Math.ceil((n / BURST) * PAUSE_MS / 1000)} s, and every character lands where the cursor is on the server. Check it is meant to be typed.`
                : usual;
        };
        area.addEventListener('input', warn);
        form.addEventListener('submit', async (e) => {
            e.preventDefault();
            if (this.typing || !this.rfb()) return;
            const text = area.value;
            if (!text) return;
            this.typing = true;
            const send = $('type-send');
            if (send) send.disabled = true;
            this.releaseAll();
            const total = characters(text).map(strokeFor).filter(Boolean).length;
            note.classList.remove('warning');
            const typed = await typeText(this.rfb, text, (done, all) => {
                note.textContent = `Typing: ${done} of ${all} characters`;
            });
            this.typing = false;
            if (send) send.disabled = !this.rfb();
            form.dataset.typed = String(typed);
            if (typed === total) {
                // A root password should not stay on the page.
                area.value = '';
                note.textContent = `Typed ${typed} characters.`;
                this.rfb()?.focus();
            } else {
                note.textContent = `The connection dropped after ${typed} of ${total} characters; the text is still here.`;
            }
        });
    }

    // As noVNC's own app does it: a hidden text field takes the focus, so
    // the device shows its keyboard, and what arrives in the field is
    // sent as key presses, a deleted character as BackSpace.
    wireTouchKeyboard() {
        const button = $('osk');
        const input = $('osk-input');
        if (!button || !input) return;
        button.hidden = !isTouch();
        let last = '';
        button.addEventListener('click', () => {
            input.value = '';
            last = '';
            input.focus();
        });
        input.addEventListener('keydown', (e) => {
            // Nothing left in the field to delete: no input event comes.
            if (e.key === 'Backspace' && input.value === '' && this.rfb()) {
                typeOne(this.rfb(), { keysym: NAMED.BackSpace[0], code: 'Backspace', shift: false });
            }
        });
        input.addEventListener('focus', () => button.setAttribute('aria-pressed', 'true'));
        input.addEventListener('blur', () => button.setAttribute('aria-pressed', 'false'));
        input.addEventListener('input', () => {
            const conn = this.rfb();
            const now = input.value;
            let same = 0;
            while (same < last.length && same < now.length && last[same] === now[same]) same++;
            if (conn) {
                for (let i = same; i < last.length; i++) typeOne(conn, { keysym: NAMED.BackSpace[0], code: 'Backspace', shift: false });
                for (const ch of characters(now.slice(same))) {
                    const stroke = strokeFor(ch);
                    if (stroke) typeOne(conn, stroke);
                }
                if (now.length > same || last.length > same) this.releaseAll();
            }
            // Short, so that the diff stays cheap; a newline starts over.
            if (now.length > 64 || now.endsWith('\n')) {
                input.value = '';
                last = '';
            } else {
                last = now;
            }
        });
    }
}
