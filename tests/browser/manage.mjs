// Drives the dashboard's admin tools in headless Chromium as an operator
// would: the console sessions (live and recent, with their end reasons and
// Revoke only where something is open), the create form (its pick lists
// from the catalog, a bad name's error in the form, a create with a
// chosen type, image and location followed until done), Delete (the
// confirm button enabled only by the exact name typed), Adopt on a server
// hcc does not manage and Release on one it does. Prints one JSON line;
// exits 0 when every step passed.
//
//   node tests/browser/manage.mjs --url http://127.0.0.1:PORT --key ADMIN_KEY
//        --create NAME --type T --image I --location L
//        --delete NAME --adopt NAME --release NAME [--screenshot PATH] [--chromium PATH]
//   node tests/browser/manage.mjs --url ... --key ADMIN_KEY --catalog-down 1
//        (only the create form's answer to a catalog hcc cannot load)
import { finish, launch } from './common.mjs';

const args = {};
for (let i = 2; i < process.argv.length; i += 2) args[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];
const result = { ok: false, errors: [] };
const row = (name) => `#servers tr[data-server="${name}"]`;

/** A row's buttons by cell, and whether hcc manages the server. */
async function buttons(page, name) {
    return page.$eval(row(name), (r) => ({
        managed: r.dataset.managed,
        actions: Array.from(r.querySelectorAll('td.actions button'), (b) => b.dataset.verb),
        manage: Array.from(r.querySelectorAll('td.manage button'), (b) => b.dataset.verb),
    }));
}

async function sessions(page) {
    return page.$$eval('#sessions tbody tr', (rows) => rows.map((r) => ({
        server: r.dataset.server,
        mode: r.querySelector('td.mode').textContent,
        remote: r.querySelector('td.remote').textContent,
        started: r.querySelector('td.started').textContent,
        duration: r.querySelector('td.duration').textContent,
        state: r.querySelector('td.state').textContent,
        revoke: r.querySelector('td.actions button') !== null,
    })));
}

/** Submits the create form with `name`; answers the error shown. */
async function badName(page, name) {
    await page.fill('#create-name', name);
    await page.click('#create-submit');
    await page.waitForSelector('#create-error:not([hidden])', { timeout: 5_000 });
    const error = await page.textContent('#create-error');
    // The next submit hides it at once, before it asks hcc.
    const invalid = await page.getAttribute('#create-name', 'aria-invalid');
    return { error, invalid };
}

async function create(page) {
    await page.click('#create summary');
    await page.waitForSelector('#create[data-catalog="loaded"]', { timeout: 15_000 });
    const values = (id) => page.$$eval(`#${id} option`, (os) => os.map((o) => o.value));
    result.catalog = {
        types: await values('create-type'),
        images: await values('create-image'),
        locations: await values('create-location'),
        chosen: await page.evaluate(() => ['create-type', 'create-image', 'create-location']
            .map((id) => document.getElementById(id).value)),
        name: await page.inputValue('#create-name'),
        note: await page.textContent('#catalog-note'),
    };
    await page.selectOption('#create-type', args.type);
    await page.selectOption('#create-image', args.image);
    await page.selectOption('#create-location', args.location);
    result.invalidName = await badName(page, 'Not_A_Name');
    result.badPrefix = await badName(page, 'elsewhere1');
    result.exists = await badName(page, args.release);
    await page.fill('#create-name', args.create);
    await page.click('#create-submit');
    await page.waitForFunction(() => /queued|running|done/.test(document.querySelector('#create-progress').textContent),
        null, { timeout: 5_000 });
    result.createQueued = await page.textContent('#create-progress');
    result.createError = await page.evaluate(() => {
        const e = document.querySelector('#create-error');
        return e.hidden ? null : e.textContent;
    });
    await page.waitForFunction(() => /done|failed/.test(document.querySelector('#create-progress').textContent),
        null, { timeout: 20_000 });
    result.created = await page.textContent('#create-progress');
    await page.waitForSelector(row(args.create), { timeout: 10_000 });
    result.createdRow = await buttons(page, args.create);
}

async function remove(page) {
    await page.click(`${row(args.delete)} button[data-verb="delete"]`);
    await page.waitForSelector('#delete-dialog[open]', { timeout: 5_000 });
    const disabled = () => page.$eval('#delete-confirm', (b) => b.disabled);
    const steps = { shown: await page.textContent('#delete-name'), empty: await disabled() };
    for (const [what, typed] of [['part', args.delete.slice(0, -1)], ['more', `${args.delete}x`],
        ['upper', args.delete.toUpperCase()], ['spaced', ` ${args.delete}`]]) {
        await page.fill('#delete-typed', typed);
        steps[what] = await disabled();
        // Enter in the field does not delete either.
        await page.press('#delete-typed', 'Enter');
    }
    steps.stillOpen = await page.$eval('#delete-dialog', (d) => d.open);
    await page.fill('#delete-typed', args.delete);
    steps.exact = await disabled();
    await page.click('#delete-confirm');
    steps.closed = await page.$eval('#delete-dialog', (d) => !d.open);
    await page.waitForFunction((sel) => /queued|running|done/.test(document.querySelector(`${sel} td.last`)?.textContent ?? 'gone'),
        row(args.delete), { timeout: 5_000 }).catch(() => {});
    await page.waitForSelector(row(args.delete), { state: 'detached', timeout: 20_000 });
    // The list may drop the row before the page's next look at the command
    // says it is done, which is when the notice comes.
    await page.waitForFunction(() => /deleted/.test(document.getElementById('notice')?.textContent ?? ''),
        null, { timeout: 10_000 }).catch(() => {});
    steps.notice = await page.textContent('#notice');
    result.delete = steps;
}

async function label(page) {
    result.beforeAdopt = await buttons(page, args.adopt);
    await page.click(`${row(args.adopt)} button[data-verb="adopt"]`);
    await page.waitForSelector(`${row(args.adopt)}[data-managed="yes"]`, { timeout: 10_000 });
    result.afterAdopt = await buttons(page, args.adopt);
    result.adoptLast = await page.textContent(`${row(args.adopt)} td.last`);
    await page.click(`${row(args.release)} button[data-verb="release"]`);
    await page.waitForSelector(`${row(args.release)}[data-managed="no"]`, { timeout: 10_000 });
    result.afterRelease = await buttons(page, args.release);
    result.releaseLast = await page.textContent(`${row(args.release)} td.last`);
}

/** Hetzner unreachable: the form says so in words, and cannot submit. */
async function catalogDown(page) {
    await page.click('#create summary');
    await page.waitForSelector('#create[data-catalog="failed"]', { timeout: 30_000 });
    result.catalogError = await page.textContent('#create-error');
    result.retry = await page.isVisible('#catalog-retry');
    result.submitDisabled = await page.$eval('#create-submit', (b) => b.disabled);
}

async function everything(page) {
    await page.waitForSelector('#sessions-section:not([hidden])', { timeout: 5_000 });
    result.sessions = await sessions(page);
    result.step = 'create';
    await create(page);
    result.step = 'delete';
    await remove(page);
    result.step = 'adopt';
    await label(page);
    delete result.step;
    // A phone: the open form, the servers and the sessions fit its width.
    await page.setViewportSize({ width: 390, height: 844 });
    result.narrow = await page.evaluate(() => ({
        scrollWidth: document.documentElement.scrollWidth,
        inside: Array.from(document.querySelectorAll('main button, main select, main input'))
            .filter((e) => e.offsetParent !== null)
            .every((e) => e.getBoundingClientRect().right <= 390),
    }));
    await page.setViewportSize({ width: 1280, height: 800 });
}

const browser = await launch(args.chromium || '/usr/bin/chromium');
try {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const page = await context.newPage();
    // The form's own errors are answers the page shows, not page errors.
    page.on('console', (m) => {
        if (m.type() === 'error' && !/40[039]|503/.test(m.text())) result.errors.push(m.text());
    });
    page.on('pageerror', (e) => result.errors.push(String(e)));
    page.on('dialog', (d) => { result.asked = d.message(); d.accept(); });
    await page.goto(`${args.url}/#key=${encodeURIComponent(args.key)}`, { timeout: 10_000 });
    await page.waitForSelector('#servers:not([hidden])', { timeout: 5_000 });
    if (args['catalog-down']) {
        await catalogDown(page);
    } else {
        await everything(page);
    }
    if (args.screenshot) await page.screenshot({ path: args.screenshot, fullPage: true });
    if (result.errors.length) throw new Error(`page errors: ${result.errors.join('; ')}`);
    result.ok = true;
} catch (e) {
    result.error = String(e?.message || e);
}
await finish(browser, result);
