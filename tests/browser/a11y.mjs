// The pages as a newcomer meets them, checked with axe-core (injected into
// the page, `axe.run`): every serious or critical violation is reported,
// with the elements it was found on. Besides axe, what a person sees:
//
// Dashboard (--key KEY): the page without a key says how to get one;
// with the key (in the URL's fragment), at a laptop's 1366 px, each
// server's name and its buttons stay on one line; at a phone's 390 px,
// each card's fields are labelled; the create form (admin key) says the
// name prefix before anything is sent. With --detail NAME, the server's
// detail view is opened (its Details button) and checked too; it needs
// `GET /api/v1/servers/{name}` (the detail view says so when it is not
// there: "detail" in the report is then what the view showed).
//
// Console page (--console 1, --url being a console link): connected, the
// power panel open where the key may power it.
//
//   node tests/browser/a11y.mjs --url URL [--key KEY] [--create 1]
//        [--detail NAME] [--console 1] [--screenshot PATH] [--chromium PATH]
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

/** The detail view of one server: opened by its row's Details button. */
async function detail(page, result) {
    const row = `#servers tr[data-server="${args.detail}"]`;
    await page.click(`${row} button[data-verb="details"]`);
    await page.waitForSelector('#detail[open]', { timeout: 5_000 });
    await waitFor('the detail view to load', 15_000, () => page.evaluate(() => {
        const state = document.getElementById('detail').dataset.state;
        return state === 'loaded' || state === 'partial' || state === 'failed';
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
        };
    });
    result.violations.detail = await axe(page);
    if (args.screenshot) await page.screenshot({ path: args.screenshot.replace(/\.png$/, '-detail.png'), fullPage: true });
    await page.setViewportSize({ width: 390, height: 844 });
    result.detailNarrow = await page.evaluate(() => {
        const d = document.getElementById('detail').getBoundingClientRect();
        return { left: Math.round(d.left), right: Math.round(d.right), scrollWidth: document.documentElement.scrollWidth };
    });
    result.violations.detailPhone = await axe(page);
    if (args.screenshot) await page.screenshot({ path: args.screenshot.replace(/\.png$/, '-detail-390.png') });
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
    if (args.screenshot) await page.screenshot({ path: args.screenshot });
}

const result = { ok: false, violations: {}, errors: [] };
const browser = await launch(args.chromium || '/usr/bin/chromium');
try {
    // The pages forbid inline scripts; axe is the test's, not the page's.
    const context = await browser.newContext({ viewport: { width: 1280, height: 700 }, bypassCSP: true });
    const page = await context.newPage();
    page.on('pageerror', (e) => result.errors.push(String(e)));
    page.on('dialog', (d) => d.accept());
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
