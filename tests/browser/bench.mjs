// Times console opens in headless Chromium, for examples/bench.rs (the
// benchmark, not a test): for each pair of one-time links, opens the first
// in a fresh browser context (an empty cache) and then the second in a new
// tab of that same context (its cache warm), each until its first
// framebuffer. Prints one JSON line:
//
//   {"ok": true, "opens": [{"first": OPEN, "second": OPEN}, ...]}
//   OPEN = {"ms": link navigation -> first framebuffer,
//           "connectMs": link navigation -> noVNC's "connect" event,
//           "browserRequests": requests the browser made (cache hits not
//           counted when Chromium answers them from its memory cache)}
//
//   node tests/browser/bench.mjs --links FILE [--chromium PATH] [--timeout MS]
//
// FILE holds [[URL, URL], ...]. Before each open the driver fetches
// ORIGIN/hcc-bench-marker-N-first (or -second) outside the browser: lines
// in hcc serve's request log that separate the opens, so the caller
// counts the requests each open cost the server from that log.
//
// "Link navigation" starts when the driver tells the tab to go to the link
// (a GET of the landing page, whose script POSTs it to open the console).
// "First framebuffer" is the first time noVNC copies pixels that came from
// the VNC server onto the visible canvas: a drawImage or putImageData on a
// canvas in the document after which the canvas holds an opaque pixel.
// noVNC also copies its back buffer when ServerInit sizes the screen, but
// that buffer is still transparent then; the pixels of a FramebufferUpdate
// are opaque. A script that runs before the page's own (outside its CSP)
// wraps both canvas calls to note that moment; both clocks are the epoch
// in ms (performance.timeOrigin + performance.now()). The open then waits
// until the canvas shows more than one colour, as a check.
//
// Uses the Debian chromium (/usr/bin/chromium); never downloads a browser.
import { launch, waitFor } from './common.mjs';
import { readFileSync } from 'node:fs';

function parseArgs(argv) {
    const args = { timeout: 15_000, chromium: process.env.CHROMIUM || '/usr/bin/chromium' };
    for (let i = 0; i < argv.length; i += 2) {
        const [flag, value] = [argv[i], argv[i + 1]];
        if (value === undefined) throw new Error(`${flag} needs a value`);
        switch (flag) {
            case '--links': args.links = JSON.parse(readFileSync(value, 'utf8')); break;
            case '--chromium': args.chromium = value; break;
            case '--timeout': args.timeout = Number(value); break;
            default: throw new Error(`unknown option ${flag}`);
        }
    }
    if (!Array.isArray(args.links)) throw new Error('--links FILE is required');
    return args;
}

const now = () => performance.timeOrigin + performance.now();

/** Runs in every document before its scripts: notes the first draw. */
function watchFirstDraw() {
    const stamp = () => performance.timeOrigin + performance.now();
    const proto = CanvasRenderingContext2D.prototype;
    for (const name of ['drawImage', 'putImageData']) {
        const original = proto[name];
        proto[name] = function (...args) {
            const result = original.apply(this, args);
            const at = stamp();
            const { canvas } = this;
            if (window.__firstDraw === undefined && canvas.isConnected && canvas.width && canvas.height) {
                // Only until the first hit: then no more reads.
                const data = this.getImageData(0, 0, canvas.width, canvas.height).data;
                for (let i = 3; i < data.length; i += 4 * 31) {
                    if (data[i] > 0) { window.__firstDraw = at; break; }
                }
            }
            return result;
        };
    }
}

/** Runs in the page: whether the visible canvas shows more than one colour. */
function painted() {
    const canvas = document.querySelector('#screen canvas');
    if (!canvas || !canvas.width || !canvas.height) return false;
    const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
    const first = data[0] | (data[1] << 8) | (data[2] << 16);
    for (let i = 0; i < data.length; i += 4 * 97) {
        if ((data[i] | (data[i + 1] << 8) | (data[i + 2] << 16)) !== first) return true;
    }
    return false;
}

const waitFor5 = (what, timeout, check) => waitFor(what, timeout, check, 5);

async function open(context, url, marker, timeout) {
    await fetch(new URL(`/hcc-bench-marker-${marker}`, url)).catch(() => {});
    const page = await context.newPage();
    let browserRequests = 0;
    page.on('request', () => { browserRequests++; });
    const start = now();
    await page.goto(url, { waitUntil: 'commit', timeout });
    const drawn = await waitFor5('the first framebuffer', timeout, () =>
        page.evaluate(() => window.__firstDraw ?? null));
    const connected = await page.evaluate(() => {
        const e = (window.vncEvents || []).find((e) => e.type === 'connect');
        return e ? performance.timeOrigin + e.at : null;
    });
    await waitFor5('a painted canvas', timeout, () => page.evaluate(painted));
    const result = {
        ms: Math.round((drawn - start) * 10) / 10,
        connectMs: connected === null ? null : Math.round(connected - start),
        browserRequests,
    };
    await page.close();
    return result;
}

async function run(args) {
    const browser = await launch(args.chromium);
    const opens = [];
    try {
        for (const [i, [first, second]] of args.links.entries()) {
            const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
            await context.addInitScript(watchFirstDraw);
            // The page asks before it is left while connected.
            context.on('page', (page) => page.on('dialog', (d) => d.accept()));
            const pair = { first: await open(context, first, `${i}-first`, args.timeout) };
            pair.second = await open(context, second, `${i}-second`, args.timeout);
            await fetch(new URL(`/hcc-bench-marker-${i}-end`, first)).catch(() => {});
            await context.close();
            opens.push(pair);
        }
    } finally {
        await browser.close();
    }
    return opens;
}

const result = { ok: false };
try {
    result.opens = await run(parseArgs(process.argv.slice(2)));
    result.ok = true;
} catch (err) {
    result.error = String(err?.stack || err);
}
console.log(JSON.stringify(result));
process.exit(result.ok ? 0 : 1);
