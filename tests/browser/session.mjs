// The console page's session life in headless Chromium, as a customer
// lives it: reloads, a second browser on the same link, an expired link,
// a dropped connection, a console that cannot be reached. Prints one JSON
// line (the report) and exits 0 when every check passed, 1 otherwise
// ("ok": false and "error").
//
//   node tests/browser/session.mjs --url URL --server NAME --scenario S
//        [--expect-text TEXT] [--within MS] [--chromium PATH]
//
// --scenario reload: opens the link, waits for the title `NAME -
//   connected`, checks that leaving would ask first (beforeunload), then
//   reloads the page twice: each reload must be a GET and connect again
//   (the tab's session, fresh credentials). Then a second browser context
//   (a second browser: no sessionStorage) opens the same link: it must
//   say "already opened" and open no websocket.
// --scenario message: opens the link and waits for its status line to
//   contain TEXT (and the page not connected) within MS (5000) of
//   opening it; reports how long that took ("saidAfter").
// --scenario hold: opens the link, waits for `NAME - connected`, prints
//   {"connected": true} and watches: the moment it left "connected", the
//   countdown ("Reconnecting in N s") and the "Reconnect now" button it
//   showed meanwhile, and the moment it was connected again (60 s at
//   most), without a click. The test kills and restarts the console
//   meanwhile.
// --scenario replaced: opens the link (broker mode) and waits for `NAME -
//   connected`; then another tab of the same session connects (the
//   tab's session token, a ticket from the refresh URL, a websocket that
//   completes RFB's handshake, all from this page as a duplicated tab
//   would): hcc keeps one connection per session, so the page's is
//   replaced. The page must say it was opened elsewhere (`NAME - opened
//   elsewhere`) with its Reconnect button, and stay so for 8 s without a
//   websocket of its own; the button then takes the console back, and
//   the other tab's socket is closed with the reason `replaced`.
//
// Uses the Debian chromium (/usr/bin/chromium); never downloads a browser.
import { Failure, fail, finish, launch, waitFor as waitForEvery } from './common.mjs';

const args = { within: 5000, chromium: process.env.CHROMIUM || '/usr/bin/chromium' };
for (let i = 2; i < process.argv.length; i += 2) {
    const name = process.argv[i].replace(/^--/, '').replace(/-(.)/g, (_, c) => c.toUpperCase());
    args[name] = process.argv[i + 1];
}
args.within = Number(args.within);

const result = { ok: false, scenario: args.scenario };


const waitFor = (what, timeout, check, every = 50) => waitForEvery(what, timeout, check, every);

function look(page) {
    return page.evaluate(() => ({
        title: document.title,
        state: document.body?.dataset.state ?? null,
        // The console page's status line; an error page's text.
        status: document.getElementById('status')?.textContent ?? document.body?.innerText ?? '',
        button: !!document.getElementById('reconnect') && !document.getElementById('reconnect').hidden,
    }));
}

/** A tab that records its own loads and websockets. */
async function tab(context) {
    const page = await context.newPage();
    const seen = { navigations: [], websockets: [] };
    page.on('response', (res) => {
        const req = res.request();
        if (req.isNavigationRequest() && req.frame() === page.mainFrame()) {
            seen.navigations.push({ method: req.method(), status: res.status() });
        }
    });
    page.on('websocket', (ws) => seen.websockets.push(new URL(ws.url()).pathname.replace(/[0-9a-f]{32,}/, '<ticket>')));
    return { page, seen };
}

async function connected(page, timeout = 10_000) {
    const want = `${args.server} - connected`;
    return waitFor(`the title "${want}"`, timeout, async () => {
        const now = await look(page);
        if (now.state === 'ended') fail(`the page ended instead of connecting: ${now.status}`);
        return now.title === want ? now : null;
    });
}

async function reload(context) {
    const { page, seen } = await tab(context);
    await page.goto(args.url, { waitUntil: 'load' });
    result.first = await connected(page);
    // Leaving a working console asks first: the handler cancels the event.
    result.asksBeforeLeaving = await page.evaluate(() => {
        const event = new Event('beforeunload', { cancelable: true });
        window.dispatchEvent(event);
        return event.defaultPrevented;
    });
    if (!result.asksBeforeLeaving) fail('beforeunload does not ask while connected');
    result.reloads = [];
    for (let i = 0; i < 2; i++) {
        const before = seen.websockets.length;
        const at = Date.now();
        await page.reload({ waitUntil: 'load' });
        const now = await connected(page);
        result.reloads.push({ ms: Date.now() - at, status: now.status, websockets: seen.websockets.length - before });
    }
    result.navigations = seen.navigations;
    result.websockets = seen.websockets;
    const reloads = seen.navigations.slice(2);
    if (seen.navigations.length !== 4 || reloads.some((n) => n.method !== 'GET')) {
        fail(`a reload must be a GET of the link: ${JSON.stringify(seen.navigations)}`);
    }

    // A second browser: no session of its own, so no console.
    const other = await context.browser().newContext();
    const second = await tab(other);
    await second.page.goto(args.url, { waitUntil: 'load' });
    result.second = await waitFor('"already opened" in the second browser', 10_000, async () => {
        const now = await look(second.page);
        return now.state === 'ended' ? now : null;
    });
    result.second.websockets = second.seen.websockets.length;
    result.second.navigations = second.seen.navigations;
    if (!/already opened/.test(result.second.status) || second.seen.websockets.length) {
        fail(`the second browser: ${JSON.stringify(result.second)}`);
    }
    // The first tab is still connected.
    result.firstStill = (await look(page)).title;
}

async function message(context) {
    const { page, seen } = await tab(context);
    const opened = Date.now();
    await page.goto(args.url, { waitUntil: 'load' });
    const said = await waitFor(`a status with "${args.expectText}"`, args.within + 5000, async () => {
        const now = await look(page);
        return now.status.includes(args.expectText) ? now : null;
    });
    result.saidAfter = Date.now() - opened;
    Object.assign(result, said);
    result.websockets = seen.websockets;
    if (said.state === 'connected') fail(`connected, yet says ${said.status}`);
    if (result.saidAfter > args.within) fail(`said so after ${result.saidAfter} ms, not within ${args.within}`);
}

async function hold(context) {
    const { page } = await tab(context);
    await page.goto(args.url, { waitUntil: 'load' });
    await connected(page);
    console.log(JSON.stringify({ connected: true }));
    const seen = new Set();
    result.countdowns = [];
    result.buttonShown = false;
    result.leftAt = await waitFor('the page to leave "connected"', 20_000, async () =>
        (await look(page)).state !== 'connected' ? Date.now() : null, 20);
    result.backAt = await waitFor('connected again', 60_000, async () => {
        const now = await look(page);
        if (now.state === 'ended') fail(`the page ended: ${now.status}`);
        const count = now.status.match(/Reconnecting in \d+ s/);
        if (count && !seen.has(now.status)) {
            seen.add(now.status);
            result.countdowns.push(now.status);
        }
        if (now.button) result.buttonShown = true;
        return now.title === `${args.server} - connected` ? Date.now() : null;
    }, 20);
    result.droppedForMs = result.backAt - result.leftAt;
    if (!result.countdowns.length) fail('no countdown while reconnecting');
    if (!result.buttonShown) fail('no "Reconnect now" button while reconnecting');
    if (result.countdowns.some((t) => /gave up/i.test(t))) fail('"gave up" beside a Reconnect button');
}

async function replaced(context) {
    const { page, seen } = await tab(context);
    await page.goto(args.url, { waitUntil: 'load' });
    await connected(page);
    await page.evaluate(async () => {
        const key = Object.keys(sessionStorage).find((k) => k.startsWith('hcc-console:'));
        const { session } = JSON.parse(sessionStorage.getItem(key));
        const response = await fetch('refresh', {
            method: 'POST',
            headers: { 'Content-Type': 'application/json' },
            body: JSON.stringify({ session }),
        });
        const body = await response.json();
        const url = new URL(body.ws, window.location.href);
        url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
        const other = { closed: null, initialised: false };
        window.otherTab = other;
        const ws = new WebSocket(url.href, 'binary');
        ws.binaryType = 'arraybuffer';
        // RFB as noVNC speaks it: version, security None, ClientInit.
        let got = 0;
        const send = (bytes) => ws.send(new Uint8Array(bytes));
        ws.onmessage = (e) => {
            const before = got;
            got += e.data.byteLength;
            if (before < 12 && got >= 12) send([...'RFB 003.008\n'].map((c) => c.charCodeAt(0)));
            if (before < 14 && got >= 14) send([1]);
            if (before < 18 && got >= 18) send([1]);
            if (got >= 19) other.initialised = true;
        };
        ws.onclose = (e) => { other.closed = e.reason; };
        window.otherSocket = ws;
    });
    await waitFor('the other tab connected', 10_000, () => page.evaluate(() => window.otherTab.initialised));
    const mine = seen.websockets.length;
    result.elsewhere = await waitFor('the page to say it was opened elsewhere', 10_000, async () => {
        const now = await look(page);
        return now.title === `${args.server} - opened elsewhere` ? now : null;
    });
    // It leaves the console to the other tab: no attempt of its own.
    for (let i = 0; i < 16; i++) {
        await new Promise((resolve) => setTimeout(resolve, 500));
        const now = await look(page);
        if (now.title !== `${args.server} - opened elsewhere` || !now.button) {
            fail(`the page did not wait for a click: ${JSON.stringify(now)}`);
        }
    }
    if (seen.websockets.length !== mine) fail(`the page connected again by itself: ${seen.websockets}`);
    result.otherStillOpen = await page.evaluate(() => window.otherTab.closed === null);
    await page.click('#reconnect');
    result.back = await connected(page);
    result.otherClosed = await waitFor('the other tab closed', 10_000,
        () => page.evaluate(() => window.otherTab.closed));
}

const browser = await launch(args.chromium);
try {
    const context = await browser.newContext();
    switch (args.scenario) {
        case 'reload': await reload(context); break;
        case 'message': await message(context); break;
        case 'hold': await hold(context); break;
        case 'replaced': await replaced(context); break;
        default: fail(`unknown --scenario ${args.scenario}`);
    }
    result.ok = true;
} catch (e) {
    result.error = String(e?.message || e);
}
await finish(browser, result);
