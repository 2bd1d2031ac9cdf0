// Checks a console page's screen, keys and power buttons in headless
// Chromium, from the user's side. Prints one JSON line with what it saw;
// exits 0 when every check passed, 1 otherwise ("ok": false, "error").
// The key events themselves are checked by the caller in the VNC
// server's xev log.
//
//   node tests/browser/input.mjs --url URL [--viewport 1280x600]
//        [--again URL] [--type TEXT] [--keys 1] [--touch URL]
//        [--power none|reboot] [--screenshot PATH] [--chromium PATH]
//
// Always: waits for "connected" and a drawn canvas, then checks the whole
//   remote screen is inside the window (scaled to fit by default), and
//   that opening the clipboard and type-text panels neither moves nor
//   resizes it.
// --again URL: turns Scale off, then opens URL (a second link) in a new
//   tab of the same browser: the choice was remembered (Scale off, the
//   canvas at the server's size), and turns it on again there.
// --keys 1: Keys panel: Ctrl-Alt-F2, Esc, Tab; then the Ctrl toggle
//   (shown pressed) and `c` typed on the keyboard (the toggle lets go).
// --type TEXT: types TEXT (`\n` is a newline) through the Type text panel
//   and waits until every character was sent; the panel warns above 300
//   characters. The report's "sent" lists the key events the page handed
//   noVNC for it, [keysym, code, down].
// --touch URL: opens URL (another link) as a touch device: the Keyboard
//   button shows, takes the focus to the on-screen keyboard's field, and
//   "ok" typed there goes to the server.
// --power none: the page shows no Power button (the key may not).
// --power reboot: the Power button shows; Reboot asks in a dialog naming
//   the server, Cancel queues nothing, confirming queues it, and the panel
//   follows it (report: powerStates, the note's states in order); after a
//   reload of the page the Power button shows again (powerAfterReload).
// --come-back 1 (with --power reboot): the rebooted server's console
//   drops the page, and the page must be connected again by itself (no
//   click) within 25 s. A MutationObserver records every change of
//   body[data-state] (and of the status line's reason) from the
//   confirmation on, with the title, the status line and the time (report: comeBack.states, droppedAt, backAt and
//   droppedForMs, performance.now() ms; comeBack.title when back).
import { Failure, fail, launch } from './common.mjs';

const args = { viewport: '1280x600' };
for (let i = 2; i < process.argv.length; i += 2) {
    const name = process.argv[i].replace(/^--/, '');
    if (i + 1 >= process.argv.length) throw new Error(`--${name} needs a value`);
    args[name] = process.argv[i + 1];
}
const result = { ok: false, checks: [], pageErrors: [] };

const check = (ok, message) => { if (!ok) fail(message); };

function canvasBox() {
    const canvas = document.querySelector('#screen canvas');
    if (!canvas) return null;
    const r = canvas.getBoundingClientRect();
    return {
        left: r.left, top: r.top, right: r.right, bottom: r.bottom,
        width: canvas.width, height: canvas.height,
        innerWidth: window.innerWidth, innerHeight: window.innerHeight,
    };
}

async function connected(page, url) {
    page.on('pageerror', (e) => result.pageErrors.push(String(e)));
    await page.goto(url, { waitUntil: 'load', timeout: 10_000 });
    // The page's state (the console page's title names the server too).
    await page.waitForFunction(() => ['connected', 'failed', 'ended'].includes(document.body?.dataset.state),
        null, { timeout: 10_000 });
    check(await page.evaluate(() => document.body.dataset.state) === 'connected',
        `not connected: ${await page.textContent('#status')}`);
    // The first update drew something other than black.
    await page.waitForFunction(() => {
        const c = document.querySelector('#screen canvas');
        if (!c || !c.width) return false;
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        for (let i = 0; i < d.length; i += 64) if (d[i] + d[i + 1] + d[i + 2] > 24) return true;
        return false;
    }, null, { timeout: 10_000, polling: 100 });
}

const same = (a, b) => ['left', 'top', 'right', 'bottom'].every((k) => Math.abs(a[k] - b[k]) < 0.5);

async function screen(page) {
    const box = await page.evaluate(canvasBox);
    result.box = box;
    check(await page.getAttribute('#scale', 'aria-pressed') === 'true', 'Scale is not on by default');
    check(box.bottom <= box.innerHeight && box.right <= box.innerWidth && box.top >= 0 && box.left >= 0,
        `the screen does not fit the window: ${JSON.stringify(box)}`);
    check(box.right - box.left < box.width || box.width <= box.innerWidth,
        `a ${box.width}x${box.height} screen was not scaled: ${JSON.stringify(box)}`);
    for (const panel of ['clipboard', 'type']) {
        await page.click(`#${panel}-toggle`);
        await page.waitForSelector(`#${panel}:not([hidden])`);
        const open = await page.evaluate(canvasBox);
        check(same(open, box), `opening ${panel} moved the screen: ${JSON.stringify(open)} vs ${JSON.stringify(box)}`);
        await page.click(`#${panel}-toggle`);
        await page.waitForSelector(`#${panel}`, { state: 'hidden' });
    }
    result.checks.push('screen');
}

async function again(context, page) {
    await page.click('#scale');
    check(await page.getAttribute('#scale', 'aria-pressed') === 'false', 'Scale did not turn off');
    result.stored = await page.evaluate(() => localStorage.getItem('hcc.console.scale'));
    const tab = await context.newPage();
    await connected(tab, args.again);
    check(await tab.getAttribute('#scale', 'aria-pressed') === 'false', 'Scale off was not remembered');
    const box = await tab.evaluate(canvasBox);
    result.unscaledBox = box;
    check(Math.round(box.right - box.left) === box.width, `unscaled, the canvas is ${box.right - box.left} px wide for ${box.width}`);
    await tab.click('#scale');
    const back = await tab.evaluate(canvasBox);
    check(back.bottom <= back.innerHeight, `scaled again, it does not fit: ${JSON.stringify(back)}`);
    await tab.close();
    result.checks.push('remembered');
}

async function keys(page) {
    await page.click('#keys-toggle');
    await page.click('#keys [data-key="ctrl-alt-F2"]');
    // The panel stays open for the next key.
    await page.click('#keys [data-key="Escape"]');
    await page.click('#keys [data-key="Tab"]');
    await page.click('#keys-toggle');
    await page.click('#key-ctrl');
    check(await page.getAttribute('#key-ctrl', 'aria-pressed') === 'true', 'the Ctrl toggle does not show pressed');
    await page.keyboard.press('c');
    await page.waitForFunction(() => document.querySelector('#key-ctrl').getAttribute('aria-pressed') === 'false',
        null, { timeout: 2_000 });
    result.checks.push('keys');
}

async function type(page) {
    const text = args.type.replace(/\\n/g, '\n');
    await page.click('#type-toggle');
    await page.fill('#type-text', 'x'.repeat(301));
    check(await page.getAttribute('#type-note', 'class') === 'note warning', 'no warning above 300 characters');
    await page.fill('#type-text', text);
    check(!(await page.getAttribute('#type-note', 'class')).includes('warning'), 'a warning for a short text');
    // What the page hands noVNC, as [keysym, code, down]: the X server
    // makes up a missing Shift itself, so its log alone cannot tell.
    await page.evaluate(() => {
        const rfb = window.rfb;
        const send = rfb.sendKey.bind(rfb);
        window.sentKeys = [];
        rfb.sendKey = (keysym, code, down) => {
            window.sentKeys.push([keysym, code, down]);
            send(keysym, code, down);
        };
    });
    await page.click('#type-send');
    await page.waitForFunction((n) => document.querySelector('#type').dataset.typed === String(n),
        Array.from(text).length, { timeout: 10_000 });
    check(await page.inputValue('#type-text') === '', 'the typed text stayed in the page');
    result.typeNote = await page.textContent('#type-note');
    result.sent = await page.evaluate(() => window.sentKeys);
    result.checks.push('type');
}

async function touch(browser) {
    const context = await browser.newContext({ viewport: { width: 390, height: 700 }, hasTouch: true, isMobile: true });
    const page = await context.newPage();
    await connected(page, args.touch);
    check(await page.isVisible('#osk'), 'no Keyboard button on a touch device');
    await page.click('#osk');
    check(await page.evaluate(() => document.activeElement?.id) === 'osk-input', 'the Keyboard button did not focus the keyboard field');
    await page.evaluate(() => {
        const rfb = window.rfb;
        const send = rfb.sendKey.bind(rfb);
        window.sentKeys = 0;
        rfb.sendKey = (...key) => {
            window.sentKeys += 1;
            send(...key);
        };
    });
    await page.keyboard.type('ok', { delay: 30 });
    result.touchBox = await page.evaluate(canvasBox);
    // Closed only once both keys (down and up) left the page's socket:
    // a page closed at once may take the last one with it.
    await page.waitForFunction(() => window.sentKeys >= 4
        && (window.rfb?._sock?._websocket?.bufferedAmount ?? 0) === 0, null, { timeout: 5_000 });
    await context.close();
    result.checks.push('touch');
}

async function power(page) {
    // The page asks which buttons to show once, at load.
    await page.waitForFunction(() => performance.getEntriesByType('resource').some((e) => e.name.endsWith('/c/power')),
        null, { timeout: 5_000 });
    await page.waitForTimeout(300);
    const shown = await page.isVisible('#power-toggle');
    result.powerShown = shown;
    if (args.power === 'none') {
        check(!shown, 'a Power button for a key that may not power');
        result.checks.push('no power');
        return;
    }
    check(shown, 'no Power button for a key that may power');
    await page.click('#power-toggle');
    result.powerVerbs = await page.$$eval('#power [data-verb]:not([hidden])', (b) => b.map((x) => x.dataset.verb));
    await page.click(`#power [data-verb="${args.power}"]`);
    await page.waitForSelector('#power-confirm[open]');
    result.question = await page.textContent('#power-question');
    await page.click('#power-confirm button[value="cancel"]');
    await page.waitForSelector('#power-confirm:not([open])', { state: 'attached' });
    check(await page.getAttribute('#power-note', 'data-state') === null, 'Cancel queued something');
    await page.click(`#power [data-verb="${args.power}"]`);
    await page.waitForSelector('#power-confirm[open]');
    if (args['come-back']) await watchStates(page);
    await page.click('#power-yes');
    const states = [];
    result.powerStates = states;
    await page.waitForFunction(() => ['done', 'failed'].includes(document.querySelector('#power-note').dataset.state)
        || document.querySelector('#power-note').dataset.state === 'queued', null, { timeout: 5_000 });
    for (let i = 0; i < 100; i++) {
        const state = await page.getAttribute('#power-note', 'data-state');
        if (states[states.length - 1] !== state) states.push(state);
        if (state === 'done' || state === 'failed') break;
        await page.waitForTimeout(100);
    }
    result.powerNote = await page.textContent('#power-note');
    if (args['come-back']) await comeBack(page);
    // A reload is a GET of the opened link: the page resumes the tab's
    // session, and with it the power buttons.
    page.on('dialog', (dialog) => dialog.accept());
    await page.reload({ waitUntil: 'load' });
    await page.waitForFunction(() => performance.getEntriesByType('resource').some((e) => e.name.endsWith('/c/power')),
        null, { timeout: 5_000 });
    result.powerAfterReload = await page.waitForSelector('#power-toggle', { state: 'visible', timeout: 5_000 })
        .then(() => true, () => false);
    check(result.powerAfterReload, 'no Power button after a reload');
    result.checks.push('power');
}

// Records each change of body[data-state] (window.stateLog), as it
// happens: a poll could miss a short state. A new status line in the same
// state (a countdown's ticks aside) is recorded too, to show why it waits.
async function watchStates(page) {
    await page.evaluate(() => {
        window.stateLog = [];
        const status = document.getElementById('status');
        const record = () => {
            const state = document.body.dataset.state;
            const text = status?.textContent ?? '';
            const reason = text.replace(/ in \d+ s$/, '');
            const log = window.stateLog;
            const last = log[log.length - 1];
            if (last && last.state === state && last.reason === reason) return;
            log.push({ state, reason, title: document.title, status: text, at: Math.round(performance.now()) });
        };
        const observer = new MutationObserver(record);
        observer.observe(document.body, { attributes: true, attributeFilter: ['data-state'] });
        if (status) observer.observe(status, { childList: true, characterData: true, subtree: true });
    });
}

// After the reboot: the page left "connected" and came back to it by
// itself.
async function comeBack(page) {
    const report = {};
    result.comeBack = report;
    try {
        await page.waitForFunction(() => {
            const log = window.stateLog;
            const left = log.findIndex((e) => e.state !== 'connected');
            return log.some((e) => e.state === 'ended')
                || (left >= 0 && log.slice(left).some((e) => e.state === 'connected'));
        }, null, { timeout: 25_000, polling: 100 });
    } finally {
        report.states = await page.evaluate(() => window.stateLog);
    }
    const log = report.states;
    const left = log.findIndex((e) => e.state !== 'connected');
    const back = log.findIndex((e, i) => i > left && e.state === 'connected');
    check(left >= 0 && back > left, `the page did not come back by itself: ${JSON.stringify(log)}`);
    report.droppedAt = log[left].at;
    report.backAt = log[back].at;
    report.droppedForMs = report.backAt - report.droppedAt;
    report.title = await page.title();
    result.checks.push('come back');
}

const browser = await launch(args.chromium || '/usr/bin/chromium');
const deadline = setTimeout(() => {
    result.error = 'the whole check took longer than 50 s';
    console.log(JSON.stringify(result));
    process.exit(1);
}, 50_000);
try {
    const [width, height] = args.viewport.split('x').map(Number);
    const context = await browser.newContext({ viewport: { width, height } });
    const page = await context.newPage();
    await connected(page, args.url);
    await screen(page);
    if (args.power) await power(page);
    if (args.keys) await keys(page);
    if (args.type !== undefined) await type(page);
    if (args.screenshot) await page.screenshot({ path: args.screenshot });
    if (args.again) await again(context, page);
    if (args.touch) await touch(browser);
    check(!result.pageErrors.length, `uncaught error in the page: ${result.pageErrors[0]}`);
    result.ok = true;
} catch (err) {
    result.error = err instanceof Failure ? err.message : String(err?.stack || err);
} finally {
    clearTimeout(deadline);
    await browser.close();
}
console.log(JSON.stringify(result));
if (!result.ok) console.error(`browser check failed: ${result.error}`);
process.exit(result.ok ? 0 : 1);
