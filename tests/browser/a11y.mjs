// The pages as a newcomer meets them, checked with axe-core (injected into
// the page, `axe.run`): every serious or critical violation is reported,
// with the elements it was found on. Besides axe, what a person sees:
//
// Dashboard (--key KEY): the page without a key says how to get one;
// with the key (in the URL's fragment), at a laptop's 1366 px, each
// server's name and its buttons stay on one line; at a phone's 390 px,
// each card's fields are labelled; the create form (admin key) says the
// name prefix before anything is sent. With --detail NAME, the server's
// detail view is opened (its name, a button) and checked too: its facts,
// which action groups and buttons it shows, the graphs; with --act 1
// besides, a root password reset (the password shown once, with Copy),
// a Reinstall confirmed by typing the name, and the graphs' 24h range.
//
// With --mock 1 the detail view's server side (`GET /api/v1/servers/{name}`,
// its `/metrics`, the action verbs, a command's `result.root_password`) is
// answered in the browser (Playwright routes, with values no simulator
// gives: an IPv6 reverse DNS entry, a fixed password), everything else
// goes to hcc. Without --mock the page talks to hcc alone.
//
// Console page (--console 1, --url being a console link): connected, the
// power panel open where the key may power it. With --password 1, its
// "Reset root password": confirmed, the new password shown (and checked
// by axe), then typed into the console by its button (Type text).
//
//   node tests/browser/a11y.mjs --url URL [--key KEY] [--create 1]
//        [--detail NAME [--act 1] [--mock 1]] [--console 1]
//        [--screenshot PATH] [--chromium PATH]
//
// Prints one JSON line: `violations` maps each check to the serious and
// critical violations axe found there (empty lists when none); exits 0
// when the page could be driven (the test asserts on the lists).
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { finish, launch, waitFor } from './common.mjs';

const require = createRequire(import.meta.url);
const AXE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

const args = {};
for (let i = 2; i < process.argv.length; i += 2) args[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];

/** The serious and critical violations axe finds on the page as it is now. */
async function axe(page) {
    if (!(await page.evaluate(() => typeof window.axe === 'object'))) {
        await page.addScriptTag({ content: AXE });
    }
    const found = await page.evaluate(async () => {
        const run = await window.axe.run(document, { resultTypes: ['violations'] });
        return run.violations;
    });
    return found
        .filter((v) => v.impact === 'serious' || v.impact === 'critical')
        .map((v) => ({
            id: v.id,
            impact: v.impact,
            help: v.help,
            nodes: v.nodes.map((n) => ({ target: n.target.join(' '), summary: n.failureSummary })),
        }));
}

/** The dashboard's rows at the width the page has now. */
function rows(page) {
    return page.$$eval('#servers tbody tr', (trs) => trs.map((tr) => {
        const name = tr.querySelector('td.name');
        const text = document.createRange();
        text.selectNodeContents(name);
        const tops = Array.from(tr.querySelectorAll('td.actions button'), (b) => Math.round(b.getBoundingClientRect().top));
        const labels = Array.from(tr.cells)
            .filter((td) => getComputedStyle(td).display !== 'none')
            .map((td) => getComputedStyle(td, '::before').content.replace(/^"|"$/g, ''));
        return {
            server: tr.dataset.server,
            // The lines the name's text takes.
            nameLines: new Set(Array.from(text.getClientRects(), (r) => Math.round(r.top))).size,
            buttonLines: new Set(tops).size,
            verbs: Array.from(tr.querySelectorAll('td.actions button'), (b) => b.dataset.verb),
            labels,
        };
    }));
}

async function dashboard(page, result) {
    // Without a key: how to get one, said on the page.
    await page.goto(`${args.url}/`, { timeout: 10_000 });
    await page.waitForSelector('#key-form:not([hidden])', { timeout: 5_000 });
    result.keyHow = await page.textContent('#key-how');
    result.violations.keyForm = await axe(page);

    await page.setViewportSize({ width: 1366, height: 768 });
    // Only the fragment differs: a new load, not a jump within the page.
    await page.goto('about:blank');
    await page.goto(`${args.url}/#key=${encodeURIComponent(args.key)}`, { timeout: 10_000 });
    await page.waitForSelector('#servers:not([hidden])', { timeout: 5_000 });
    await page.waitForSelector('#health:not([hidden])', { timeout: 5_000 });
    result.wide = {
        rows: await rows(page),
        scrollWidth: await page.evaluate(() => document.documentElement.scrollWidth),
    };
    result.violations.servers = await axe(page);

    if (args.create) {
        await page.click('#create summary');
        await page.waitForSelector('#create[data-catalog="loaded"]', { timeout: 15_000 });
        result.prefix = await page.evaluate(() => {
            const p = document.getElementById('create-prefix');
            return p.hidden ? null : p.textContent;
        });
        result.violations.create = await axe(page);
    }

    await page.setViewportSize({ width: 390, height: 844 });
    result.narrow = {
        rows: await rows(page),
        scrollWidth: await page.evaluate(() => document.documentElement.scrollWidth),
    };
    result.violations.phone = await axe(page);
    if (args.screenshot) await page.screenshot({ path: args.screenshot.replace(/\.png$/, '-390.png'), fullPage: true });
    await page.setViewportSize({ width: 1366, height: 768 });

    if (args.detail) await detail(page, result);
}

/** The verbs of the contract that hcc's API does not take yet, and those
 *  whose result carries a root password. */
const NEW_VERBS = new Set(['rebuild', 'reset-password', 'enable-rescue', 'disable-rescue', 'change-type',
    'set-rdns', 'attach-iso', 'detach-iso', 'create-image', 'enable-backup', 'disable-backup']);
const PASSWORD_VERBS = new Set(['rebuild', 'reset-password', 'enable-rescue']);
export const MOCK_PASSWORD = 'Mock-Root-Pa55word';

/** Hetzner's shape of a metrics answer: `count` points until now. */
function metrics(type, since) {
    const step = { '1h': 60, '24h': 900, '7d': 3600, '30d': 14400 }[since] || 60;
    const end = Math.floor(Date.now() / 1000);
    const series = (scale) => ({ values: Array.from({ length: 30 }, (_, i) => [end - (29 - i) * step, String((scale * (1 + Math.sin(i / 3))).toFixed(3))]) });
    const names = {
        cpu: ['cpu'],
        disk: ['disk.0.iops.read', 'disk.0.iops.write', 'disk.0.bandwidth.read', 'disk.0.bandwidth.write'],
        network: ['network.0.bandwidth.in', 'network.0.bandwidth.out', 'network.0.pps.in', 'network.0.pps.out'],
    }[type] || [];
    return {
        metrics: {
            start: new Date((end - 29 * step) * 1000).toISOString(),
            end: new Date(end * 1000).toISOString(),
            step,
            time_series: Object.fromEntries(names.map((n, i) => [n, series(10 * (i + 1))])),
        },
    };
}

/** Answers the detail view's new endpoints in the browser (see --mock). */
async function mockServerSide(page, log) {
    const json = (route, status, body) => route.fulfill({ status, contentType: 'application/json', body: JSON.stringify(body) });
    const commands = new Map();
    // The catalog as it will be: hcc's, with ISOs and snapshots.
    await page.route((url) => url.pathname === '/api/v1/catalog', async (route) => {
        const real = await route.fetch();
        const catalog = await real.json();
        if (real.status() === 200) {
            catalog.isos = [{ name: 'virtio-win-0.1.248.iso', description: 'virtio-win-0.1.248' }];
            catalog.snapshots = [{ id: 4711, description: 'before the upgrade' }];
        }
        return route.fulfill({ response: real, body: JSON.stringify(catalog) });
    });
    await page.route((url) => /\/api\/v1\/(servers\/[^/]+(\/metrics|\/actions\/[^/]+)?|commands\/mock-\d+)$/.test(url.pathname), async (route) => {
        const request = route.request();
        const url = new URL(request.url());
        const parts = url.pathname.split('/api/v1/')[1].split('/');
        if (parts[0] === 'commands') {
            const command = commands.get(parts[1]);
            command.reads += 1;
            const state = command.reads === 1 ? 'running' : 'done';
            const result = { note: 'mock' };
            // The password once: the first read after done.
            if (state === 'done' && !command.told && PASSWORD_VERBS.has(command.cmd)) {
                result.root_password = MOCK_PASSWORD;
                command.told = true;
            }
            return json(route, 200, { command: { id: command.id, cmd: command.cmd, state, result: state === 'done' ? result : null } });
        }
        const name = decodeURIComponent(parts[1]);
        if (parts.length === 2 && request.method() === 'GET') {
            const list = await (await route.fetch({ url: `${url.origin}/api/v1/servers` })).json();
            const server = list.servers.find((s) => s.name === name);
            if (!server) return json(route, 404, { error: { code: 'not_found', message: `no server ${name}` } });
            log.detail += 1;
            return json(route, 200, {
                server: { ...server, server_type: server.server_type || 'cx22', location: server.location || 'fsn1', datacenter: 'fsn1-dc14' },
                detail: {
                    rescue_enabled: false,
                    iso: null,
                    backup_window: '22-02',
                    protection: { delete: true, rebuild: false },
                    traffic: { outgoing: 123456789, ingoing: 2345678, included: 21990232555520 },
                    disk: 40,
                    cores: 2,
                    memory: 4,
                    addresses: [{ ip: server.ip4 || '10.0.0.1', dns_ptr: 'static.1.0.0.10.clients.your-server.de' },
                        { ip: '2001:db8::1', dns_ptr: null }],
                    image: { name: 'debian-12', description: 'Debian 12' },
                },
            });
        }
        if (parts[2] === 'metrics') {
            log.metrics.push(`${url.searchParams.get('type')} ${url.searchParams.get('since')}`);
            return json(route, 200, metrics(url.searchParams.get('type'), url.searchParams.get('since')));
        }
        if (parts[2] === 'actions' && NEW_VERBS.has(parts[3]) && request.method() === 'POST') {
            const id = `mock-${commands.size + 1}`;
            commands.set(id, { id, cmd: parts[3], reads: 0, told: false });
            log.actions.push({ verb: parts[3], body: request.postDataJSON() });
            return json(route, 202, { command: { id, cmd: parts[3], state: 'queued' } });
        }
        return route.fallback();
    });
}

/** The detail view of one server: opened by the name in its row. */
async function detail(page, result) {
    const row = `#servers tr[data-server="${args.detail}"]`;
    await page.click(`${row} button[data-verb="details"]`);
    await page.waitForSelector('#detail[open]', { timeout: 5_000 });
    await waitFor('the detail view to load', 15_000, () => page.evaluate(() => {
        const d = document.getElementById('detail');
        const state = d.dataset.state;
        // An admin's pick lists come from the catalog, loaded meanwhile.
        const lists = document.querySelector('#detail fieldset[data-group="reinstall"]').hidden || d.dataset.catalog === 'loaded';
        return (state === 'loaded' || state === 'partial' || state === 'failed') && lists;
    }));
    result.detail = await page.evaluate(() => {
        const d = document.getElementById('detail');
        const facts = {};
        for (const row of d.querySelectorAll('dl.facts > div')) {
            facts[row.querySelector('dt').textContent] = row.querySelector('dd').textContent;
        }
        const visible = (b) => !b.hidden && !b.closest('[hidden]');
        return {
            state: d.dataset.state,
            title: document.getElementById('detail-title').textContent,
            facts,
            groups: Array.from(d.querySelectorAll('.groups fieldset'))
                .filter((f) => !f.hidden)
                .map((f) => ({
                    group: f.dataset.group,
                    buttons: Array.from(f.querySelectorAll('button[data-action]')).filter(visible).map((b) => b.dataset.action),
                })),
            ranges: Array.from(d.querySelectorAll('.graph-ranges button'), (b) => b.textContent),
            note: document.getElementById('detail-note').textContent,
            images: Array.from(document.querySelectorAll('#detail-image option'), (o) => o.value),
            isos: Array.from(document.querySelectorAll('#detail-isos option'), (o) => o.value),
        };
    });
    result.graphs = await graphs(page, '1h');
    result.violations.detail = await axe(page);
    if (args.screenshot) await page.screenshot({ path: args.screenshot.replace(/\.png$/, '-detail.png'), fullPage: true });
    if (args.act) await detailActions(page, result);
    await page.setViewportSize({ width: 390, height: 844 });
    result.detailNarrow = await page.evaluate(() => {
        const d = document.getElementById('detail').getBoundingClientRect();
        return { left: Math.round(d.left), right: Math.round(d.right), scrollWidth: document.documentElement.scrollWidth };
    });
    result.violations.detailPhone = await axe(page);
    if (args.screenshot) await page.screenshot({ path: args.screenshot.replace(/\.png$/, '-detail-390.png') });
}

/** Waits for the graphs of `since` to be drawn or to fail: what shows. */
async function graphs(page, since) {
    await waitFor(`the graphs of ${since}`, 15_000, () => page.evaluate((want) => {
        const area = document.getElementById('graphs-area');
        return area.dataset.since === want && (area.dataset.state === 'drawn' || area.dataset.state === 'failed');
    }, since));
    return page.evaluate(() => {
        const area = document.getElementById('graphs-area');
        return {
            state: area.dataset.state,
            since: area.dataset.since,
            charts: Array.from(area.querySelectorAll('figure.graph'), (f) => ({
                kind: f.dataset.kind,
                uplot: Boolean(f.querySelector('.uplot canvas')),
                caption: f.querySelector('figcaption').textContent,
            })),
            note: document.getElementById('graphs-note').textContent,
            pressed: document.querySelector('.graph-ranges [aria-pressed="true"]')?.textContent,
        };
    });
}

/** A root password reset, a typed-name Reinstall, the 24h graphs. */
async function detailActions(page, result) {
    const progress = () => page.textContent('#detail-progress');
    const acts = {};
    await page.click('#detail button[data-action="reset-password"]');
    await page.waitForSelector('#detail-password:not([hidden])', { timeout: 15_000 });
    acts.password = await page.textContent('#detail-password-value');
    acts.passwordProgress = await progress();
    await page.click('#detail-password-copy');
    await waitFor('the copy', 5_000, async () => (await page.textContent('#detail-password-copy')) !== 'Copy');
    acts.copyButton = await page.textContent('#detail-password-copy');
    acts.stored = await page.evaluate((pw) => JSON.stringify({ ...sessionStorage }).includes(pw)
        || JSON.stringify({ ...localStorage }).includes(pw) || document.cookie.includes(pw), acts.password);
    await page.click('#detail-password-hide');
    acts.hidden = await page.evaluate(() => document.getElementById('detail-password').hidden
        && document.getElementById('detail-password-value').textContent === '');

    // Reinstall: the name typed first; a wrong one keeps the button off.
    const images = await page.$$eval('#detail-image option', (os) => os.map((o) => o.value));
    const image = images.find((i) => i !== 'debian-12') || images[0];
    await page.selectOption('#detail-image', image);
    await page.click('#detail button[data-action="rebuild"]');
    await page.waitForSelector('#delete-dialog[open]', { timeout: 5_000 });
    acts.typedTitle = await page.textContent('#delete-title');
    await page.fill('#delete-typed', `${args.detail}x`);
    acts.wrongNameDisabled = await page.$eval('#delete-confirm', (b) => b.disabled);
    await page.fill('#delete-typed', args.detail);
    await page.click('#delete-confirm');
    await waitFor('the reinstall to finish', 15_000, async () => (await progress()).includes('Reinstall: done'));
    acts.reinstallProgress = await progress();
    acts.reinstallPassword = await page.textContent('#detail-password-value');
    acts.image = image;
    // "done" shows before the view reloads the server and fills its
    // fields anew; the buttons come back once that is over.
    await page.waitForSelector('#detail button[data-action="set-rdns"]:not([disabled])', { timeout: 15_000 });

    // Reverse DNS: the field starts from the address's entry.
    acts.rdnsStart = await page.inputValue('#detail-rdns-host');
    // The mock's IPv6 entry where there is one, else the server's own
    // first address (hcc's side lists the IPv6 network's ::1).
    const ips = await page.$$eval('#detail-rdns-ip option', (os) => os.map((o) => o.value));
    await page.selectOption('#detail-rdns-ip', ips.includes('2001:db8::1') ? '2001:db8::1' : ips[ips.length - 1]);
    await page.fill('#detail-rdns-host', 'srv.example.org');
    await page.click('#detail button[data-action="set-rdns"]');
    await waitFor('the reverse DNS to be set', 15_000, async () => (await progress()).includes('Reverse DNS: done'));

    await page.click('#detail .graph-ranges button[data-since="24h"]');
    acts.graphs24h = await graphs(page, '24h');
    result.acts = acts;
}

async function consolePage(page, result) {
    await page.goto(args.url, { waitUntil: 'load', timeout: 10_000 });
    await waitFor('the console to connect', 15_000, () => page.evaluate(() => document.body.dataset.state === 'connected'));
    result.violations.console = await axe(page);
    const power = await page.$('#power-toggle:not([hidden])');
    result.power = Boolean(power);
    if (power) {
        await power.click();
        await page.waitForSelector('#power:not([hidden])', { timeout: 5_000 });
        result.violations.consolePower = await axe(page);
    }
    if (args.password) await consolePassword(page, result);
    if (args.screenshot) await page.screenshot({ path: args.screenshot });
}

async function consolePassword(page, result) {
    const steps = {};
    await page.waitForSelector('#password-reset:not([hidden])', { timeout: 5_000 });
    await page.click('#password-reset');
    await page.waitForSelector('#power-confirm[open]', { timeout: 5_000 });
    steps.question = await page.textContent('#power-question');
    await page.click('#power-yes');
    await page.waitForSelector('#password-new:not([hidden])', { timeout: 15_000 });
    steps.password = await page.textContent('#password-value');
    steps.note = await page.textContent('#power-note');
    result.violations.consolePassword = await axe(page);
    await page.click('#password-type');
    await waitFor('the password typed', 15_000, () => page.evaluate(() => document.getElementById('type').dataset.typed));
    steps.typed = Number(await page.evaluate(() => document.getElementById('type').dataset.typed));
    steps.typeField = await page.inputValue('#type-text');
    steps.typeNote = await page.textContent('#type-note');
    result.passwordSteps = steps;
}

const result = { ok: false, violations: {}, errors: [] };
const browser = await launch(args.chromium || '/usr/bin/chromium');
try {
    // The pages forbid inline scripts; axe is the test's, not the page's.
    const context = await browser.newContext({ viewport: { width: 1280, height: 700 }, bypassCSP: true });
    const page = await context.newPage();
    page.on('pageerror', (e) => result.errors.push(String(e)));
    page.on('dialog', (d) => d.accept());
    result.mock = { detail: 0, metrics: [], actions: [], password: [] };
    if (args.mock) await mockServerSide(page, result.mock);
    if (args.console) {
        await consolePage(page, result);
    } else {
        await dashboard(page, result);
    }
    if (result.errors.length) throw new Error(`page errors: ${result.errors.join('; ')}`);
    result.ok = true;
} catch (e) {
    result.error = String(e?.message || e);
}
await finish(browser, result);
