// Drives the WHMCS module's client-area page (its Smarty template rendered
// by tests/whmcs/clientarea.php, a stand-in for WHMCS's client area) in
// headless Chromium, as a customer: the server shown with its graphs;
// Reboot; Reinstall with another image (the new root password shown once,
// gone after a reload); Reset root password; reverse DNS; Power off and
// Power on; Console (WHMCS's single sign-on) opening hcc's console page in
// a new tab, connected. Prints one JSON line; exit 0 when every check
// passed.
//
//   node tests/browser/whmcs.mjs --url CLIENT_AREA_URL --image IMAGE_NAME
//        --image-text TEXT --hostname RDNS [--screenshot PATH] [--timeout MS]
import { Failure, fail, finish, launch, waitFor } from './common.mjs';

const args = { timeout: 20_000, chromium: process.env.CHROMIUM || '/usr/bin/chromium' };
for (let i = 2; i < process.argv.length; i += 2) {
    const [flag, value] = [process.argv[i], process.argv[i + 1]];
    const key = { '--url': 'url', '--image': 'image', '--image-text': 'imageText', '--hostname': 'hostname',
        '--screenshot': 'screenshot', '--timeout': 'timeout' }[flag];
    if (!key || value === undefined) throw new Error(`unknown or incomplete option ${flag}`);
    args[key] = key === 'timeout' ? Number(value) : value;
}

const result = { ok: false, steps: [] };
const browser = await launch(args.chromium);
try {
    const context = await browser.newContext({ viewport: { width: 1200, height: 1000 } });
    const page = await context.newPage();
    const pageErrors = [];
    page.on('pageerror', (err) => pageErrors.push(String(err)));
    page.on('dialog', (dialog) => dialog.accept());
    const text = async (selector) => (await page.locator(selector).first().textContent())?.trim() ?? null;
    const flash = () => text('#flash');
    // Clicks a button that posts its form; the page after the redirect.
    const press = async (what) => {
        await Promise.all([page.waitForNavigation({ timeout: args.timeout }), page.locator(`[data-hcc="${what}"]`).click()]);
        const said = await flash();
        result.steps.push({ pressed: what, flash: said });
        if (said !== 'Action Completed Successfully') fail(`${what}: the page said ${JSON.stringify(said)}`);
    };

    await page.goto(args.url, { waitUntil: 'load', timeout: args.timeout });
    result.name = await text('#hcc-name');
    result.status = await text('#hcc-status');
    if (result.status !== 'running') fail(`status ${result.status}, not running`);
    result.buttons = await page.locator('[data-hcc]').evaluateAll((els) => els.map((e) => e.dataset.hcc));
    for (const b of ['reboot', 'reset', 'stop', 'poweroff', 'console', 'resetpassword', 'rebuild', 'rescueon', 'rdns']) {
        if (!result.buttons.includes(b)) fail(`no ${b} button: ${result.buttons}`);
    }
    if (result.buttons.includes('start')) fail('Power on shown on a running server');
    result.graphs = await page.locator('svg polyline').evaluateAll((els) => els.filter((e) => e.getAttribute('points')).length);
    if (result.graphs < 2) fail(`${result.graphs} graph lines`);
    result.addresses = await text('#hcc-addresses');

    await press('reboot');

    await page.selectOption('#hcc-rebuild-image', args.image);
    await press('rebuild');
    const first = await text('#hcc-password');
    if (!first || first.length < 12) fail(`no new password after the reinstall: ${first}`);
    result.rebuiltImage = await text('#hcc-image');
    if (!result.rebuiltImage.includes(args.imageText)) fail(`image ${result.rebuiltImage} after the reinstall`);
    result.rebuildPassword = first;
    await page.reload({ waitUntil: 'load' });
    if (await page.locator('#hcc-password').count()) fail('the password is shown again after a reload');

    await press('resetpassword');
    const second = await text('#hcc-password');
    if (!second || second === first) fail(`no new password after the reset: ${second}`);
    result.resetPassword = second;

    const ip = await page.locator('#hcc-rdns-ip option').first().getAttribute('value');
    await page.fill('#hcc-rdns-hostname', args.hostname);
    await press('rdns');
    result.rdns = { ip, addresses: await text('#hcc-addresses') };
    if (!result.rdns.addresses.includes(args.hostname)) fail(`reverse DNS not shown: ${result.rdns.addresses}`);

    await press('poweroff');
    result.statusAfterOff = await text('#hcc-status');
    if (result.statusAfterOff !== 'off') fail(`status ${result.statusAfterOff} after Power off`);
    if (!(await page.locator('[data-hcc="start"]').count())) fail('no Power on on a server that is off');
    await press('start');
    result.statusAfterOn = await text('#hcc-status');
    if (result.statusAfterOn !== 'running') fail(`status ${result.statusAfterOn} after Power on`);

    // Console: WHMCS's single sign-on, in a new tab, to a connected console.
    const clicked = Date.now();
    const [tab] = await Promise.all([context.waitForEvent('page'), page.locator('[data-hcc="console"]').click()]);
    await waitFor('the console tab connected', args.timeout, async () => {
        const title = await tab.title();
        if (title.endsWith(' - ended') || title === 'failed') fail(`console tab: ${title}`);
        return title.endsWith(' - connected');
    });
    result.consoleTitle = await tab.title();
    result.consoleUrlPath = new URL(tab.url()).pathname.replace(/[0-9a-f]{16,}/, 'TOKEN');
    result.clickToConnectedMs = Date.now() - clicked;
    if (args.screenshot) await page.screenshot({ path: args.screenshot, fullPage: true });
    result.pageErrors = pageErrors;
    if (pageErrors.length) fail(`page errors: ${pageErrors}`);
    result.ok = true;
} catch (err) {
    result.error = err instanceof Failure ? err.message : String(err.stack || err);
}
await finish(browser, result);
