// Types into a console page (l.html or a one-time link) in headless
// Chromium as a person would: waits for "connected" and a drawn canvas,
// clicks the screen, types the text with the keyboard, then waits until
// the canvas shows something it did not show before. Prints one JSON line;
// exits 0 when every check passed.
//
//   node tests/browser/type.mjs --url URL --text TEXT [--screenshot PATH]
//        [--chromium PATH]
import { finish, launch } from './common.mjs';

const args = {};
for (let i = 2; i < process.argv.length; i += 2) args[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];
const result = { ok: false, errors: [] };

/** Runs in the page: a cheap fingerprint of noVNC's canvas. */
function canvasSum() {
    const canvas = document.querySelector('#screen canvas');
    if (!canvas || !canvas.width) return null;
    const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
    let sum = 0;
    const colours = new Set();
    for (let i = 0; i < data.length; i += 4) {
        sum = (sum * 31 + data[i] + 7 * data[i + 1] + 13 * data[i + 2]) % 1_000_000_007;
        if (colours.size < 16) colours.add((data[i] << 16) | (data[i + 1] << 8) | data[i + 2]);
    }
    return { sum, colours: colours.size };
}

const browser = await launch(args.chromium || '/usr/bin/chromium');
try {
    const page = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
    page.on('pageerror', (e) => result.errors.push(String(e)));
    await page.goto(args.url, { waitUntil: 'load', timeout: 10_000 });
    await page.waitForFunction(() => document.body.dataset.state === 'connected', null, { timeout: 10_000 });
    // More than two colours: the first update has landed.
    await page.waitForFunction(() => {
        const c = document.querySelector('#screen canvas');
        if (!c || !c.width) return false;
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        const seen = new Set();
        for (let i = 0; i < d.length && seen.size < 3; i += 16) seen.add((d[i] << 16) | (d[i + 1] << 8) | d[i + 2]);
        return seen.size >= 3;
    }, null, { timeout: 10_000, polling: 100 });
    result.before = await page.evaluate(canvasSum);
    await page.locator('#screen canvas').click({ position: { x: 300, y: 200 } });
    await page.keyboard.type(args.text.replace(/\\n/g, '\n'), { delay: 20 });
    await page.waitForFunction((sum) => {
        const c = document.querySelector('#screen canvas');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let s = 0;
        for (let i = 0; i < d.length; i += 4) s = (s * 31 + d[i] + 7 * d[i + 1] + 13 * d[i + 2]) % 1_000_000_007;
        return s !== sum;
    }, result.before.sum, { timeout: 10_000, polling: 100 });
    result.after = await page.evaluate(canvasSum);
    result.title = await page.title();
    if (args.screenshot) await page.screenshot({ path: args.screenshot });
    result.ok = result.errors.length === 0;
} catch (err) {
    result.error = String(err?.message || err);
}
await finish(browser, result);
