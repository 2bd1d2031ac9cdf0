// Opens an hcc console page (console.html behind /c/<token>, or
// l.html?ws://...#PW) in headless Chromium and checks it from the user's
// side: connected, the remote screen drawn, Ctrl-Alt-Del sent, no CSP
// violation. Prints one JSON line with what it saw and exits 0 when every
// check passed, 1 otherwise (the line then has "ok": false and "error").
//
//   node tests/browser/console.mjs --url URL [--screenshot PATH]
//        [--expect-connected | --expect-state failed|disconnected [--expect-text TEXT]]
//        [--xev-log PATH] [--size 1024x768] [--password PW] [--drop]
//        [--timeout MS] [--chromium PATH] [--expect-colour #RRGGBB]
//        [--forbid TEXT]... [--log PATH] [--hold-until STATE]
//
// --expect-connected (the default): waits for document.title "connected",
//   then for a drawn canvas (more than 2 colours, most pixels not black),
//   sends Ctrl-Alt-Del through window.rfb, takes the screenshot.
// --expect-colour C: the drawn canvas must show colour C at its top left
//   (e.g. the root window colour the VNC server was painted with) instead
//   of more than 2 colours.
// --expect-state S: waits for body[data-state] S; --expect-text checks the
//   status line contains TEXT (e.g. "session has ended").
// --xev-log PATH: after Ctrl-Alt-Del, waits until that `xev -root -event
//   keyboard` log shows presses of Control_L, Alt_L and Delete.
// --password PW: fills the page's password prompt when the server asks.
// --forbid TEXT: TEXT (a console URL, a password) must appear nowhere the
//   browser saw: no request's URL or body, no websocket's URL, no page
//   source (as served and as rendered). Repeatable. The report lists the
//   websocket URLs (`websockets`) and the number of requests seen.
// --log PATH: writes that network log (and the page sources) to PATH as
//   JSON, [{what, text}], for checks against secrets known only afterwards
//   (the console credentials hcc fetched while the page connected).
// --hold-until STATE: once connected and checked, prints a line
//   {"connected": true} and keeps the page open until its body[data-state]
//   leaves "connected" (e.g. `hcc revoke` run meanwhile) and then becomes
//   STATE (20 s at most); the report's leftConnectedAt and heldUntilAt are
//   those moments (ms since the epoch), events and status what it showed;
//   --expect-text then checks that status line.
// --drop: once connected, closes the WebSocket as a server would and waits
//   for the page to reconnect (console.html fetches fresh credentials).
// --again URL: once the first page is connected and checked, opens URL (a
//   second link) in a new tab of the same browser, sharing its cache, and
//   waits for it to connect and draw. Just before, it fetches
//   ORIGIN/hcc-test-again-marker outside the browser: a line in hcc's
//   request log that separates the two opens. The report's
//   "again" has the tab's requests as the browser saw them and its
//   timings (ms from its start).
// The report's "navigations" lists the page's own loads ({method, status}):
// a one-time link is a GET of the page that opens it, then its POST.
//
// Uses the Debian chromium (/usr/bin/chromium); never downloads a browser.
import { Failure, fail, launch, waitFor } from './common.mjs';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

const started = Date.now();
const result = { ok: false, page: null, timings: {} };
const mark = (name) => { result.timings[name] = Date.now() - started; };

function parseArgs(argv) {
    const args = { forbid: [], expect: 'connected', timeout: 10_000, chromium: process.env.CHROMIUM || '/usr/bin/chromium' };
    const takes = new Set(['--url', '--screenshot', '--xev-log', '--size', '--password', '--timeout',
        '--chromium', '--expect-state', '--expect-text', '--expect-colour', '--forbid', '--log', '--hold-until', '--again']);
    for (let i = 0; i < argv.length; i++) {
        const flag = argv[i];
        if (flag === '--expect-connected') { args.expect = 'connected'; continue; }
        if (flag === '--drop') { args.drop = true; continue; }
        if (!takes.has(flag) || i + 1 >= argv.length) throw new Error(`unknown or incomplete option ${flag}`);
        const value = argv[++i];
        switch (flag) {
            case '--url': args.url = value; break;
            case '--screenshot': args.screenshot = value; break;
            case '--xev-log': args.xevLog = value; break;
            case '--size': args.size = value; break;
            case '--password': args.password = value; break;
            case '--timeout': args.timeout = Number(value); break;
            case '--chromium': args.chromium = value; break;
            case '--expect-state': args.expect = value; break;
            case '--expect-text': args.expectText = value; break;
            case '--expect-colour': args.expectColour = value; break;
            case '--forbid': args.forbid.push(value); break;
            case '--log': args.log = value; break;
            case '--hold-until': args.holdUntil = value; break;
            case '--again': args.again = value; break;
        }
    }
    if (!args.url) throw new Error('--url is required');
    if (!['connected', 'connecting', 'reconnecting', 'disconnected', 'failed', 'ended'].includes(args.expect)) {
        throw new Error(`--expect-state must be connected, reconnecting, disconnected, failed or ended, not ${args.expect}`);
    }
    return args;
}

/** The URL without query or fragment: those can hold console secrets. */
function redact(url) {
    try {
        const u = new URL(url);
        return `${u.origin}${u.pathname}`;
    } catch {
        return '(unparsable URL)';
    }
}

/** l.html's title is its state; the console page's `SERVER - state`. */
const isConnected = (title) => title === 'connected' || title.endsWith(' - connected');


/** Runs in the page: pixel statistics of noVNC's canvas. */
function canvasStats() {
    const canvas = document.querySelector('#screen canvas');
    if (!canvas || !canvas.width || !canvas.height) return null;
    const { width, height } = canvas;
    const data = canvas.getContext('2d').getImageData(0, 0, width, height).data;
    const colours = new Set();
    let nonBlack = 0;
    let samples = 0;
    // Every 3rd pixel of every 3rd row: enough for the statistics, fast.
    for (let y = 0; y < height; y += 3) {
        for (let x = 0; x < width; x += 3) {
            const i = (y * width + x) * 4;
            const r = data[i], g = data[i + 1], b = data[i + 2];
            samples++;
            if (r + g + b > 24) nonBlack++;
            if (colours.size < 10_000) colours.add((r << 16) | (g << 8) | b);
        }
    }
    const p = data;
    return {
        width, height, samples,
        distinctColours: colours.size,
        nonBlackFraction: Math.round((nonBlack / samples) * 1000) / 1000,
        topLeft: `#${[p[0], p[1], p[2]].map((v) => v.toString(16).padStart(2, '0')).join('')}`,
    };
}

function drawn(stats, colour) {
    if (!stats || stats.nonBlackFraction <= 0.5) return false;
    // A known screen colour proves these pixels came from the VNC server.
    return colour ? stats.topLeft === colour.toLowerCase() : stats.distinctColours > 2;
}


/** Key presses and releases in an `xev -event keyboard` log. */
function xevKeys(path) {
    let text = '';
    try {
        text = readFileSync(path, 'utf8');
    } catch {
        return { pressed: [], released: [] };
    }
    const pressed = [];
    const released = [];
    for (const block of text.split(/\n(?=\S)/)) {
        const key = block.match(/keysym 0x[0-9a-f]+, ([A-Za-z0-9_]+)\)/);
        if (!key) continue;
        if (block.startsWith('KeyPress')) pressed.push(key[1]);
        if (block.startsWith('KeyRelease')) released.push(key[1]);
    }
    return { pressed, released };
}

async function pageState(page) {
    return page.evaluate(() => ({
        title: document.title,
        state: document.body?.dataset.state ?? null,
        status: document.getElementById('status')?.textContent ?? null,
        events: (window.vncEvents || []).map((e) => ({
            type: e.type,
            at: e.at,
            ...(e.type === 'disconnect' ? { clean: e.detail?.clean } : {}),
            ...(e.type === 'securityfailure' ? { status: e.detail?.status, reason: e.detail?.reason } : {}),
            ...(e.type === 'credentialsrequired' ? { types: e.detail?.types } : {}),
            ...(e.type === 'desktopname' ? { name: e.detail?.name } : {}),
        })),
        cspViolations: window.__cspViolations || [],
    }));
}

/** A second console in a new tab of the same browser (see --again). */
async function openAgain(context, args) {
    await fetch(new URL('/hcc-test-again-marker', args.again)).catch(() => {});
    const start = Date.now();
    const again = { requests: [], timings: {} };
    const tab = await context.newPage();
    tab.on('request', (req) => again.requests.push(`${req.method()} ${redact(req.url())}`));
    await tab.goto(args.again, { waitUntil: 'load', timeout: args.timeout });
    await waitFor('the second tab connected', args.timeout, async () => isConnected(await tab.title()));
    again.timings.connected = Date.now() - start;
    await waitFor('a drawn canvas in the second tab', args.timeout,
        async () => drawn(await tab.evaluate(canvasStats), args.expectColour));
    again.timings.drawn = Date.now() - start;
    again.state = (await pageState(tab)).state;
    await tab.close();
    return again;
}

async function run(args) {
    result.page = redact(args.url);
    result.expect = args.expect;
    const browser = await launch(args.chromium);
    mark('launched');
    let page = null;
    try {
        // ignoreHTTPSErrors: behind the test's nginx, a self-signed certificate.
        const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, ignoreHTTPSErrors: true });
        page = await context.newPage();
        const consoleErrors = [];
        const pageErrors = [];
        const failedRequests = [];
        const httpErrors = [];
        result.consoleErrors = consoleErrors;
        result.pageErrors = pageErrors;
        result.failedRequests = failedRequests;
        result.httpErrors = httpErrors;
        // Runs before the page's own scripts and outside its CSP.
        await page.addInitScript(() => {
            window.__cspViolations = [];
            document.addEventListener('securitypolicyviolation', (e) => {
                window.__cspViolations.push({ directive: e.violatedDirective, blocked: e.blockedURI, source: e.sourceFile });
            });
        });
        page.on('console', (msg) => {
            if (msg.type() === 'error') consoleErrors.push(msg.text());
        });
        page.on('pageerror', (err) => pageErrors.push(String(err)));
        page.on('requestfailed', (req) => failedRequests.push({ url: redact(req.url()), error: req.failure()?.errorText }));
        const navigations = [];
        result.navigations = navigations;
        page.on('response', (res) => {
            if (res.status() >= 400) httpErrors.push({ url: redact(res.url()), status: res.status() });
            const req = res.request();
            if (req.isNavigationRequest() && req.frame() === page.mainFrame()) {
                navigations.push({ method: req.method(), status: res.status() });
                // Every page as served: the landing page and the console
                // page its POST brought.
                res.text().then((text) => seen.push({ what: `the page as served (${req.method()})`, text }), () => {});
            }
        });
        page.on('dialog', (dialog) => dialog.dismiss());
        // The network log: everything the browser asked for, and where
        // its websockets went.
        const seen = [];
        const websockets = [];
        result.websockets = websockets;
        page.on('request', (req) => {
            seen.push({ what: `the URL of a request to ${redact(req.url())}`, text: req.url() });
            const body = req.postData();
            if (body) seen.push({ what: `the body of a request to ${redact(req.url())}`, text: body });
        });
        page.on('websocket', (ws) => {
            websockets.push(redact(ws.url()));
            seen.push({ what: `a websocket to ${redact(ws.url())}`, text: ws.url() });
        });

        const response = await page.goto(args.url, { waitUntil: 'load', timeout: args.timeout });
        result.httpStatus = response?.status() ?? null;
        if (response) seen.push({ what: 'the page as served', text: await response.text().catch(() => '') });
        mark('loaded');

        if (args.password !== undefined) {
            const form = page.locator('#password-form');
            await form.waitFor({ state: 'visible', timeout: args.timeout });
            await page.fill('#password', args.password);
            await page.click('#password-form button[type=submit]');
            mark('passwordSent');
        }

        if (args.expect !== 'connected') {
            await waitFor(`state ${args.expect}`, args.timeout,
                async () => (await pageState(page)).state === args.expect);
            mark(args.expect);
            Object.assign(result, await pageState(page));
            if (args.expectText && !String(result.status).includes(args.expectText)) {
                fail(`status is ${JSON.stringify(result.status)}, expected it to contain ${JSON.stringify(args.expectText)}`);
            }
        } else {
            await waitFor('document.title "connected"', args.timeout, async () => {
                const title = await page.title();
                if (title === 'failed' || title.endsWith(' - ended')) {
                    const status = await page.evaluate(() => document.getElementById('status')?.textContent);
                    fail(`the page failed instead of connecting: ${status}`);
                }
                return isConnected(title);
            });
            mark('connected');
            const stats = await waitFor('a drawn canvas (more than 2 colours, most pixels not black)', args.timeout,
                async () => {
                    const s = await page.evaluate(canvasStats);
                    result.pixels = s;
                    return drawn(s, args.expectColour) ? s : null;
                });
            result.pixels = stats;
            mark('drawn');
            if (args.size && `${stats.width}x${stats.height}` !== args.size) {
                fail(`canvas is ${stats.width}x${stats.height}, expected ${args.size}`);
            }
            await page.evaluate(() => window.rfb.sendCtrlAltDel());
            mark('ctrlAltDelSent');
            if (args.xevLog) {
                const wanted = ['Control_L', 'Alt_L', 'Delete'];
                result.xev = await waitFor(`${wanted.join(', ')} in ${args.xevLog}`, args.timeout, () => {
                    const keys = xevKeys(args.xevLog);
                    return wanted.every((k) => keys.pressed.includes(k) && keys.released.includes(k)) ? keys : null;
                });
                mark('ctrlAltDelSeen');
            }
            if (args.drop) {
                const connects = (await pageState(page)).events.filter((e) => e.type === 'connect').length;
                await page.evaluate(() => window.rfb._sock.close());
                mark('dropped');
                await waitFor('a reconnect after the drop', args.timeout, async () => {
                    const s = await pageState(page);
                    if (s.state === 'failed' || s.state === 'ended') fail(`the page failed instead of reconnecting: ${s.status}`);
                    return s.state === 'connected' && s.events.filter((e) => e.type === 'connect').length > connects;
                });
                mark('reconnected');
                result.pixelsAfterReconnect = await waitFor('a drawn canvas after the reconnect', args.timeout,
                    async () => { const s = await page.evaluate(canvasStats); return drawn(s, args.expectColour) ? s : null; });
            }
            Object.assign(result, await pageState(page));
            if (args.holdUntil) {
                // The test acts now (it waits for this line), the page stays.
                console.log(JSON.stringify({ connected: true }));
                result.leftConnectedAt = await waitFor('the page to leave "connected"', 20_000, async () =>
                    (await pageState(page)).state !== 'connected' ? Date.now() : null, 20);
                mark('leftConnected');
                result.heldUntilAt = await waitFor(`state ${args.holdUntil}`, 20_000, async () =>
                    (await pageState(page)).state === args.holdUntil ? Date.now() : null, 20);
                mark(args.holdUntil);
                Object.assign(result, await pageState(page));
                if (args.expectText && !String(result.status).includes(args.expectText)) {
                    fail(`status is ${JSON.stringify(result.status)}, expected it to contain ${JSON.stringify(args.expectText)}`);
                }
            }
        }

        if (args.again) result.again = await openAgain(context, args);

        if (args.screenshot) {
            mkdirSync(dirname(args.screenshot), { recursive: true });
            await page.screenshot({ path: args.screenshot });
            result.screenshot = args.screenshot;
            mark('screenshot');
        }

        seen.push({ what: 'the page as rendered', text: await page.content() });
        result.requestsSeen = seen.length;
        if (args.log) writeFileSync(args.log, JSON.stringify(seen));
        args.forbid.forEach((secret, i) => {
            const where = seen.find(({ text }) => text.includes(secret));
            if (where) fail(`forbidden text #${i + 1} (of --forbid) is in ${where.what}`);
        });
        const state = await pageState(page);
        result.cspViolations = state.cspViolations;
        const cspConsole = consoleErrors.filter((t) => /Content Security Policy/i.test(t));
        if (state.cspViolations.length || cspConsole.length) {
            fail(`CSP violation: ${JSON.stringify(state.cspViolations.length ? state.cspViolations : cspConsole)}`);
        }
        if (pageErrors.length) fail(`uncaught error in the page: ${pageErrors[0]}`);
        await context.close();
    } catch (err) {
        // What the page showed when the check failed.
        if (page) Object.assign(result, await pageState(page).catch(() => ({})));
        throw err;
    } finally {
        await browser.close();
    }
    result.ok = true;
}

const deadline = setTimeout(() => {
    result.error = 'the whole check took longer than 60 s';
    console.log(JSON.stringify(result));
    process.exit(1);
}, 60_000);

try {
    await run(parseArgs(process.argv.slice(2)));
} catch (err) {
    result.ok = false;
    result.error = err instanceof Failure ? err.message : String(err?.stack || err);
}
mark('total');
clearTimeout(deadline);
console.log(JSON.stringify(result));
if (!result.ok) console.error(`browser check failed: ${result.error}`);
process.exit(result.ok ? 0 : 1);
