// What every browser script shares: the Debian chromium launched headless
// and quiet, polling a page until a check holds, and the closing report
// (one JSON line on stdout, exit status 0 only when `result.ok`).
import { chromium } from 'playwright-core';

export class Failure extends Error {}
export const fail = (message) => { throw new Failure(message); };

/** Chromium at `executablePath`, headless, with nothing of its own on the network. */
export function launch(executablePath) {
    return chromium.launch({
        executablePath,
        args: ['--no-sandbox', '--headless', '--disable-gpu', '--disable-quic', '--no-first-run',
            '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
}

/** `check()` every `every` ms until it gives a truthy value, which it returns;
 * a `Failure` after `timeout` ms. A navigation under way (a one-time link's
 * page posting to open it) replaces the page being asked: it asks again. */
export async function waitFor(what, timeout, check, every = 100) {
    const until = Date.now() + timeout;
    for (;;) {
        let value;
        try {
            value = await check();
        } catch (err) {
            if (err instanceof Failure || !/context was destroyed|navigat/i.test(String(err))) throw err;
        }
        if (value) return value;
        if (Date.now() >= until) fail(`timed out after ${timeout} ms waiting for ${what}`);
        await new Promise((resolve) => setTimeout(resolve, every));
    }
}

/** Closes the browser, prints `result` and exits 0 if it is ok, else 1. */
export async function finish(browser, result) {
    await browser.close();
    console.log(JSON.stringify(result));
    process.exit(result.ok ? 0 : 1);
}
