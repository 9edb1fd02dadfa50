// Drives headless chromium through the provider's web UI while the demo flow makes deals.
// Run by examples/tests/ui.rs; prints one JSON report on stdout and exits non-zero on the
// first failed check. Environment:
//   UI_URL        the provider's HTTP base (http://127.0.0.1:port/)
//   ADMIN_TOKEN   READ_TOKEN   the repo's token and token.read
//   START_FLAG    file to create once the browser watches the deal list (the demo waits for it)
//   SHOTS         directory for screenshots
//   BROWSER_DEPS  directory holding node_modules/playwright-core (target/browser)
//   DEALS         how many deals the flow makes (2)
import { createRequire } from 'node:module';
import fs from 'node:fs';
import path from 'node:path';

const env = (k) => {
  const v = process.env[k];
  if (!v) {
    throw new Error(`${k} is not set`);
  }
  return v;
};
const base = new URL(env('UI_URL'));
const url = (p) => new URL(p, base).toString();
const require = createRequire(path.join(path.resolve(env('BROWSER_DEPS')), 'package.json'));
const { chromium } = require('playwright-core');
const shots = env('SHOTS');
const wantDeals = Number(process.env.DEALS || '2');
fs.mkdirSync(shots, { recursive: true });

const report = { checks: [], screenshots: [], consoleErrors: [], statesSeen: {} };
function check(ok, what) {
  report.checks.push(what);
  if (!ok) {
    throw new Error(`check failed: ${what}`);
  }
}

// Playwright gives every launch a fresh, empty profile directory of its own.
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: [
    '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
  ],
});
let failed = null;
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  // The refusals this script provokes on purpose are the only errors allowed: chromium
  // logs every non-2xx answer as a console error, so each is matched by URL and status.
  const provoked = [];
  const expect = (p, status) => provoked.push([url(p), status]);
  page.on('console', (m) => {
    if (m.type() !== 'error') {
      return;
    }
    const status = Number((/status of (\d+)/.exec(m.text()) || [])[1]);
    const at = m.location().url;
    const i = provoked.findIndex(([u, s]) => u === at && s === status);
    if (i >= 0) {
      provoked.splice(i, 1);
      return;
    }
    report.consoleErrors.push(`${page.url()}: ${m.text()} (${at})`);
  });
  page.on('pageerror', (e) => report.consoleErrors.push(`${page.url()}: ${e.message}`));

  // Not logged in: every page sends us to the login page; a wrong token is refused.
  await page.goto(url('ui/deals'));
  check(page.url().endsWith('/ui/login'), 'an anonymous visit lands on the login page');
  await page.fill('#token', 'not-a-token');
  expect('ui/login', 401);
  await page.click('#login');
  check((await page.textContent('#login-error')).includes('Not a token'), 'a wrong token is refused');

  // The admin logs in and watches the deal list before any deal exists.
  await page.fill('#token', env('ADMIN_TOKEN'));
  await page.click('#login');
  await page.waitForURL(url('ui/'));
  check((await page.textContent('#role')).trim() === 'admin', 'the admin token gives the admin role');
  await page.goto(url('ui/deals'));
  check((await page.locator('#deals tr[data-deal]').count()) === 0, 'no deal yet when watching starts');
  let navigations = 0;
  page.on('framenavigated', (f) => {
    if (f === page.mainFrame()) {
      navigations += 1;
    }
  });
  fs.writeFileSync(env('START_FLAG'), 'go');

  // Live updates (no reload) bring the deals in and take them to Active.
  const deadline = Date.now() + 180_000;
  for (;;) {
    const rows = await page.$$eval('#deals tr[data-deal]', (trs) =>
      trs.map((tr) => [tr.dataset.deal, tr.querySelector('[data-state]').dataset.state]));
    for (const [id, state] of rows) {
      const seen = (report.statesSeen[id] ||= []);
      if (seen[seen.length - 1] !== state) {
        seen.push(state);
      }
    }
    if (rows.length === wantDeals && rows.every(([, s]) => s === 'StorageDealActive')) {
      break;
    }
    if (Date.now() > deadline) {
      throw new Error(`deals never all Active: ${JSON.stringify(rows)}`);
    }
    await page.waitForTimeout(100);
  }
  check(navigations === 0, 'the list followed the deals without a page load');
  check(Object.values(report.statesSeen).some((s) => s.length > 1),
    'a deal was seen changing state on the page');
  report.screenshots.push(path.join(shots, 'deals.png'));
  await page.screenshot({ path: report.screenshots.at(-1), fullPage: true });

  // A deal's page has its timeline.
  await page.click('#deals tr[data-deal] a');
  await page.waitForSelector('#timeline');
  const timeline = await page.$$eval('#timeline [data-state]', (els) => els.map((e) => e.dataset.state));
  check(timeline.includes('StorageDealPublishing') && timeline.at(-1) === 'StorageDealActive',
    'the deal page shows its timeline up to Active');
  report.timeline = timeline;
  check((await page.locator('#cancel').count()) === 0, 'an Active deal offers no cancel');
  report.screenshots.push(path.join(shots, 'deal.png'));
  await page.screenshot({ path: report.screenshots.at(-1), fullPage: true });

  // The dashboard counts them.
  await page.goto(url('ui/'));
  const active = await page.textContent('[data-count="StorageDealActive"]');
  check(Number(active) === wantDeals, 'the dashboard counts the Active deals');
  check((await page.locator('#stores tr').count()) >= 2, 'the dashboard shows piece storage');
  report.screenshots.push(path.join(shots, 'dashboard.png'));
  await page.screenshot({ path: report.screenshots.at(-1), fullPage: true });

  // The admin edits the ask.
  await page.goto(url('ui/asks'));
  const form = page.locator('form.ask-form').first();
  report.miner = await page.locator('section.ask').first().getAttribute('data-miner');
  await form.locator('input[name=price]').fill('12345');
  await form.locator('button').click();
  await page.waitForSelector('#notice');
  check((await page.textContent('section.ask .price')).includes('12345'), 'the edited ask is shown');
  await form.locator('input[name=min_piece_size]').fill('300');
  expect(`ui/asks/${report.miner}`, 400);
  await form.locator('button').click();
  await page.waitForSelector('#notice');
  check((await page.textContent('#notice')).includes('power of two'), 'a bad piece size is refused and said why');
  report.screenshots.push(path.join(shots, 'asks-admin.png'));
  await page.screenshot({ path: report.screenshots.at(-1), fullPage: true });

  // Log out; the read token looks but cannot change anything.
  await page.click('nav button');
  await page.waitForURL(url('ui/login'));
  await page.fill('#token', env('READ_TOKEN'));
  await page.click('#login');
  await page.waitForURL(url('ui/'));
  check((await page.textContent('#role')).trim() === 'read-only', 'the read token gives the read-only role');
  await page.goto(url('ui/asks'));
  check((await page.locator('form.ask-form').count()) === 0, 'no ask form for a read-only viewer');
  const csrf = await page.getAttribute('nav input[name=csrf]', 'value');
  expect(`ui/asks/${report.miner}`, 403);
  const refused = await page.evaluate(async ([miner, csrf]) => {
    const body = new URLSearchParams({ csrf, price: '1', verified_price: '0', min_piece_size: '256', max_piece_size: '1048576' });
    const r = await fetch(`/ui/asks/${miner}`, { method: 'POST', body });
    return r.status;
  }, [report.miner, csrf]);
  check(refused === 403, 'a read-only viewer posting an ask is refused (403)');
  check((await page.textContent('section.ask .price')).includes('12345'), 'the ask is unchanged by the refused post');
  report.screenshots.push(path.join(shots, 'asks-read.png'));
  await page.screenshot({ path: report.screenshots.at(-1), fullPage: true });

  await page.waitForTimeout(200);
  check(report.consoleErrors.length === 0, 'no console errors on any page');
  check(provoked.length === 0, `every provoked refusal was seen: ${JSON.stringify(provoked)}`);
} catch (e) {
  failed = e;
} finally {
  await browser.close();
}
report.ok = failed === null;
if (failed) {
  report.error = String(failed && failed.stack || failed);
}
console.log(JSON.stringify(report));
process.exit(failed ? 1 : 0);
