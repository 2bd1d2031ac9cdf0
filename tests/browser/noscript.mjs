// Opens a one-time console link in headless Chromium with script turned
// off, as a customer whose browser runs no script would: the page's button
// must send the POST (the page's CSP allows `form-action 'self'`) and the
// answer must be the console page. Prints one JSON line; exits 0 when
// every check passed.
//
//   node tests/browser/noscript.mjs --url URL [--chromium PATH]
import { finish, launch } from './common.mjs';

const args = {};
for (let i = 2; i < process.argv.length; i += 2) args[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];
const result = { ok: false, navigations: [], consoleErrors: [] };
const browser = await launch(args.chromium || '/usr/bin/chromium');
try {
    const context = await browser.newContext({ javaScriptEnabled: false });
    const page = await context.newPage();
    page.on('console', (m) => { if (m.type() === 'error') result.consoleErrors.push(m.text()); });
    page.on('response', (res) => {
        const req = res.request();
        if (req.isNavigationRequest() && req.frame() === page.mainFrame()) {
            result.navigations.push({ method: req.method(), status: res.status() });
        }
    });
    await page.goto(args.url, { timeout: 10_000 });
    result.button = await page.textContent('#open button');
    await Promise.all([
        page.waitForResponse((res) => res.request().method() === 'POST', { timeout: 10_000 }),
        page.click('#open button'),
    ]);
    await page.waitForLoadState('load');
    result.consolePage = (await page.$('#hcc-console')) !== null;
    if (!result.consolePage) throw new Error('the POST did not answer the console page');
    if (result.consoleErrors.some((t) => /Content Security Policy/i.test(t))) {
        throw new Error(`CSP violation: ${result.consoleErrors.join('; ')}`);
    }
    result.ok = true;
} catch (e) {
    result.error = String(e?.message || e);
}
await finish(browser, result);
