// Opens the dashboard URL `hcc demo` prints (an API key in its fragment,
// `/#key=...`) in headless Chromium as a person trying the demo would:
// the key is taken from the fragment and out of the address bar, no
// request carries it in its URL, the servers are listed, and a server's
// Console button opens a tab that connects. Prints one JSON line; exits 0
// when every check passed.
//
//   node tests/browser/demo.mjs --url DASHBOARD_URL --key KEY --server NAME
//        [--screenshot PATH] [--chromium PATH]
import { finish, launch } from './common.mjs';

const args = {};
for (let i = 2; i < process.argv.length; i += 2) args[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];
const result = { ok: false, errors: [], requests: 0 };
const browser = await launch(args.chromium || '/usr/bin/chromium');
try {
    const context = await browser.newContext({ viewport: { width: 1280, height: 700 } });
    const leaks = [];
    context.on('request', (r) => {
        result.requests += 1;
        if (r.url().includes(args.key)) leaks.push(r.url());
    });
    const page = await context.newPage();
    page.on('console', (m) => { if (m.type() === 'error') result.errors.push(m.text()); });
    page.on('pageerror', (e) => result.errors.push(String(e)));
    await page.goto(args.url, { timeout: 10_000 });
    await page.waitForSelector('#servers:not([hidden])', { timeout: 10_000 });
    result.rows = await page.$$eval('#servers tbody tr', (rows) => rows.map((r) => r.dataset.server));
    result.address = page.url();
    result.keyForm = await page.isVisible('#key-form');

    const opened = context.waitForEvent('page', { timeout: 10_000 });
    await page.click(`tr[data-server="${args.server}"] button:has-text("Console")`);
    const consoleTab = await opened;
    await consoleTab.waitForFunction(() => document.body.dataset.state === 'connected', null, { timeout: 15_000 });
    result.console = await consoleTab.textContent('#status');
    if (args.screenshot) await consoleTab.screenshot({ path: args.screenshot });
    await consoleTab.close();

    if (result.errors.length) throw new Error(`page errors: ${result.errors.join('; ')}`);
    if (result.address.includes(args.key)) throw new Error('the key stayed in the address bar');
    if (leaks.length) throw new Error(`the key went out in a URL: ${leaks.join(' ')}`);
    result.ok = true;
} catch (e) {
    result.error = String(e?.message || e);
}
await finish(browser, result);
