// Drives the dashboard (`/` of hcc serve) in headless Chromium as an
// operator would: a wrong key is refused, the right one lists the servers,
// a button queues an action and shows its outcome, Console opens a new tab
// that connects; with --session, the live session of that server is
// listed, Revoke asks it to stop, and its consoles are suspended. Prints
// one JSON line; exits 0 when every check passed.
//
//   node tests/browser/dashboard.mjs --url http://127.0.0.1:PORT --key KEY
//        --server NAME [--session SERVER] [--screenshot PATH] [--chromium PATH]
import { chromium } from 'playwright-core';

const args = {};
for (let i = 2; i < process.argv.length; i += 2) args[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];
const result = { ok: false, errors: [] };
const browser = await chromium.launch({
    executablePath: args.chromium || '/usr/bin/chromium',
    args: ['--no-sandbox', '--headless', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
try {
    const context = await browser.newContext({ viewport: { width: 1280, height: 700 } });
    const page = await context.newPage();
    page.on('console', (m) => { if (m.type() === 'error' && !m.text().includes('401')) result.errors.push(m.text()); });
    page.on('pageerror', (e) => result.errors.push(String(e)));
    page.on('dialog', (d) => d.accept());
    await page.goto(args.url + '/', { timeout: 10_000 });

    await page.fill('#key', 'hcc_wrong');
    await page.click('#key-form button');
    await page.waitForSelector('#message:not([hidden])', { timeout: 5_000 });
    result.wrongKey = await page.textContent('#message');

    await page.fill('#key', args.key);
    await page.click('#key-form button');
    await page.waitForSelector('#servers:not([hidden])', { timeout: 5_000 });
    result.rows = await page.$$eval('#servers tbody tr', (rows) => rows.map((r) => r.dataset.server));
    result.keyInUrl = page.url().includes(args.key);

    const row = `tr[data-server="${args.server}"]`;
    await page.click(`${row} button:has-text("Reboot")`);
    await page.waitForFunction((sel) => document.querySelector(`${sel} td.last`)?.textContent.includes('done'),
        row, { timeout: 15_000 });
    result.reboot = await page.textContent(`${row} td.last`);

    const opened = context.waitForEvent('page', { timeout: 10_000 });
    await page.click(`${row} button:has-text("Console")`);
    const consoleTab = await opened;
    await consoleTab.waitForFunction(() => document.title === 'connected', null, { timeout: 10_000 });
    result.console = await consoleTab.textContent('#status');
    result.opener = await consoleTab.evaluate(() => window.opener === null ? 'null' : 'set');
    // The live sessions: the one given is listed; Revoke asks it to stop;
    // the server's consoles are suspended and the button says so.
    if (args.session) {
        const live = `#sessions tr[data-server="${args.session}"]`;
        await page.waitForSelector(live, { timeout: 5_000 });
        result.sessions = await page.$$eval('#sessions tbody tr', (rows) => rows.map((r) => r.dataset.server));
        await page.click(`${live} button:has-text("Revoke")`);
        await page.waitForFunction(() => document.querySelector('#message')?.textContent.includes('revoked'),
            null, { timeout: 5_000 });
        result.revoke = await page.textContent('#message');
        await page.waitForFunction((sel) => document.querySelector(`${sel} td.state`)?.textContent.includes('revoked'),
            live, { timeout: 5_000 });
        result.sessionState = await page.textContent(`${live} td.state`);
        const suspend = `#servers tr[data-server="${args.session}"] button.suspend`;
        await page.click(suspend);
        await page.waitForFunction((sel) => document.querySelector(sel)?.textContent === 'Resume consoles',
            suspend, { timeout: 5_000 });
        result.suspendButton = await page.textContent(suspend);
    }
    if (args.screenshot) await page.screenshot({ path: args.screenshot, fullPage: true });
    if (result.errors.length) throw new Error(`page errors: ${result.errors.join('; ')}`);
    if (result.keyInUrl) throw new Error('the key reached the URL');
    result.ok = true;
} catch (e) {
    result.error = String(e?.message || e);
} finally {
    await browser.close();
}
console.log(JSON.stringify(result));
process.exit(result.ok ? 0 : 1);
