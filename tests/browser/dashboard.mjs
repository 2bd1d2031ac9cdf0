// Drives the dashboard (`/` of hcc serve) in headless Chromium as an
// operator would: a wrong key is refused, the right one lists the servers,
// a button queues an action and shows its outcome, Console opens a new tab
// that connects; with --session, the live session of that server is
// listed, Revoke asks it to stop (its success said in the notice, not the
// error box), and its consoles are suspended; with --reconnect, the
// console tab reloads and the sessions list, refreshing by itself, shows
// that page session as one row of two connections; --unused names the id
// of a page session that never connected ("expired unused"); the page at
// 1366 px with the sessions' user agents, shown as browser and system. Both
// modes report the status panel (worker, no-worker banner, the key's scope)
// and the buttons each server's row shows. With --look, the key comes in
// the URL's fragment and nothing is pressed: the status panel (and, with
// --queue, that it refreshes by itself; with --follow, that a server's
// buttons follow its state), the buttons, the search box, and
// the page at 390 px wide. Prints one JSON line; exits 0 when every check
// passed.
//
//   node tests/browser/dashboard.mjs --url http://127.0.0.1:PORT --key KEY
//        --server NAME [--session SERVER [--reconnect 1] [--unused ID]]
//        [--look 1 [--ready FILE] [--queue 1] [--follow SERVER]]
//        [--screenshot PATH] [--chromium PATH]
import { writeFileSync } from 'node:fs';
import { finish, launch } from './common.mjs';

/** The status panel, the banner and each row's buttons, as the DOM has them. */
async function look(page) {
    await page.waitForSelector('#health:not([hidden])', { timeout: 5_000 });
    return page.evaluate(() => {
        const buttons = {};
        const manage = {};
        const status = {};
        const notes = {};
        for (const row of document.querySelectorAll('#servers tbody tr')) {
            const note = row.querySelector('.name-note');
            if (note) notes[row.dataset.server] = note.textContent;
            buttons[row.dataset.server] = Array.from(row.querySelectorAll('td.actions button'), (b) => b.dataset.verb);
            manage[row.dataset.server] = Array.from(row.querySelectorAll('td.manage button'), (b) => b.dataset.verb);
            status[row.dataset.server] = row.cells[1].textContent;
        }
        const text = (id) => document.getElementById(id).textContent;
        return {
            banner: !document.querySelector('#no-worker').hidden,
            worker: text('h-worker'),
            sync: text('h-sync'),
            budget: text('h-budget'),
            queue: text('h-queue'),
            key: text('h-key'),
            buttons,
            manage,
            // Why a row offers no action (a name hcc's rules reject).
            notes,
            // The create form is an admin's.
            create: !document.querySelector('#create').hidden,
            status,
        };
    });
}

/** --look: reads the page without pressing anything. */
async function lookOnly(page, result) {
    await page.goto(`${args.url}/#key=${encodeURIComponent(args.key)}`, { timeout: 10_000 });
    await page.waitForSelector('#servers:not([hidden])', { timeout: 5_000 });
    result.look = await look(page);
    // The test changes things behind the page's back only once it has
    // been read as it was.
    if (args.ready) writeFileSync(args.ready, 'read\n');
    // The panel refreshes on its own: a command queued behind the page's
    // back (the test pushes one) shows up without a click.
    if (args.queue) {
        await page.waitForFunction((b) => document.querySelector('#h-queue').textContent !== b,
            result.look.queue, { timeout: 15_000 });
        result.queueLater = await page.textContent('#h-queue');
    }
    // A server started behind the page's back gets a running server's
    // buttons without a click.
    if (args.follow) {
        await page.waitForSelector(`tr[data-server="${args.follow}"] button[data-verb="stop"]`, { timeout: 15_000 });
        result.followed = (await look(page)).buttons[args.follow];
    }
    await page.fill('#search', args.server);
    result.searched = await page.$$eval('#servers tbody tr:not([hidden])', (rows) => rows.map((r) => r.dataset.server));
    await page.fill('#search', 'no-such-server');
    result.searchedNone = await page.$$eval('#servers tbody tr:not([hidden])', (rows) => rows.length);
    await page.fill('#search', '');
    await page.setViewportSize({ width: 390, height: 844 });
    result.narrow = await page.evaluate(() => {
        const buttons = Array.from(document.querySelectorAll('#servers button'));
        return {
            scrollWidth: document.documentElement.scrollWidth,
            // Every button within the screen, none cut off on the right.
            buttonsInside: buttons.every((b) => b.getBoundingClientRect().right <= 390),
            buttons: buttons.length,
        };
    });
}

const args = {};
for (let i = 2; i < process.argv.length; i += 2) args[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];
const result = { ok: false, errors: [] };
const browser = await launch(args.chromium || '/usr/bin/chromium');
try {
    const context = await browser.newContext({ viewport: { width: 1280, height: 700 } });
    const page = await context.newPage();
    page.on('console', (m) => { if (m.type() === 'error' && !m.text().includes('401')) result.errors.push(m.text()); });
    page.on('pageerror', (e) => result.errors.push(String(e)));
    page.on('dialog', (d) => d.accept());
    if (args.look) {
        await lookOnly(page, result);
    } else {
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
        result.look = await look(page);

        const row = `tr[data-server="${args.server}"]`;
        await page.click(`${row} button:has-text("Reboot")`);
        await page.waitForFunction((sel) => document.querySelector(`${sel} td.last`)?.textContent.includes('done'),
            row, { timeout: 15_000 });
        result.reboot = await page.textContent(`${row} td.last`);

        const opened = context.waitForEvent('page', { timeout: 10_000 });
        await page.click(`${row} button:has-text("Console")`);
        const consoleTab = await opened;
        await consoleTab.waitForFunction(() => document.body.dataset.state === 'connected', null, { timeout: 10_000 });
        result.console = await consoleTab.textContent('#status');
        result.opener = await consoleTab.evaluate(() => window.opener === null ? 'null' : 'set');
        // The live sessions: the one given is listed; Revoke asks it to stop;
        // the server's consoles are suspended and the button says so.
        if (args.session) {
            const rowsNow = () => page.$$eval('#sessions tbody tr', (rows) => rows.map((r) => ({
                session: r.dataset.session,
                server: r.dataset.server,
                live: r.dataset.live,
                connections: r.querySelector('td.connections')?.textContent,
                duration: r.querySelector('td.duration')?.textContent,
                state: r.querySelector('td.state')?.textContent,
                revoke: r.querySelector('td.actions button') !== null,
            })));
            // The console tab reloads: a second connection of the same
            // page session, which the list (not clicked) shows as one row.
            if (args.reconnect) {
                await consoleTab.reload({ waitUntil: 'load' });
                await consoleTab.waitForFunction(() => document.body.dataset.state === 'connected', null, { timeout: 15_000 });
                const at = Date.now();
                await page.waitForFunction((server) => {
                    const rows = document.querySelectorAll(`#sessions tbody tr[data-server="${server}"][data-live="yes"]`);
                    return rows.length === 1 && rows[0].querySelector('td.connections')?.textContent === '2';
                }, args.server, { timeout: 15_000 });
                result.refreshedAfterMs = Date.now() - at;
                result.reconnected = (await rowsNow()).filter((r) => r.server === args.server);
            }
            if (args.unused) {
                result.unused = (await rowsNow()).find((r) => r.session === args.unused) ?? null;
            }
            const live = `#sessions tr[data-server="${args.session}"]`;
            await page.waitForSelector(live, { timeout: 5_000 });
            result.sessions = await page.$$eval('#sessions tbody tr', (rows) => rows.map((r) => r.dataset.server));
            await page.click(`${live} button:has-text("Revoke")`);
            await page.waitForFunction(() => document.querySelector('#notice')?.textContent.includes('revoked'),
                null, { timeout: 5_000 });
            result.revoke = await page.textContent('#notice');
            // Good news in the notice style, not in the red error box.
            result.revokeShown = await page.evaluate(() => ({
                notice: !document.querySelector('#notice').hidden,
                error: !document.querySelector('#message').hidden,
                noticeColor: getComputedStyle(document.querySelector('#notice')).color,
                errorColor: getComputedStyle(document.querySelector('#message')).color,
            }));
            await page.waitForFunction((sel) => document.querySelector(`${sel} td.state`)?.textContent.includes('revoked'),
                live, { timeout: 5_000 });
            result.sessionState = await page.textContent(`${live} td.state`);
            result.sessionRows = await rowsNow();
            // At a laptop's 1366 px, long user agents widen nothing.
            await page.setViewportSize({ width: 1366, height: 768 });
            result.wide = await page.evaluate((sel) => {
                const browser = document.querySelector(`${sel} td.browser`);
                return {
                    scrollWidth: document.documentElement.scrollWidth,
                    browser: browser?.textContent,
                    title: browser?.title,
                };
            }, live);
            await page.setViewportSize({ width: 1280, height: 700 });
            const suspend = `#servers tr[data-server="${args.session}"] button.suspend`;
            await page.click(suspend);
            await page.waitForFunction((sel) => document.querySelector(sel)?.textContent === 'Resume consoles',
                suspend, { timeout: 5_000 });
            result.suspendButton = await page.textContent(suspend);
        }
    }
    if (args.screenshot) await page.screenshot({ path: args.screenshot, fullPage: true });
    if (result.errors.length) throw new Error(`page errors: ${result.errors.join('; ')}`);
    if (result.keyInUrl) throw new Error('the key reached the URL');
    result.ok = true;
} catch (e) {
    result.error = String(e?.message || e);
}
await finish(browser, result);
