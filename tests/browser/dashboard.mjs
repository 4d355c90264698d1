// The monitoring page in real headless Chromium, driven by playwright-core.
//
// Run by tests/integration/dashboard.rs, which seeds the database (accounts `one`, healthy, and
// `two`, cooling; keys `boss` (admin) and `tester`; usage rows at known times with known token
// figures, listed in SEEDED below), starts the real server and passes:
//   AMQ2API_BASE_URL        the server, e.g. http://127.0.0.1:41234
//   AMQ2API_ADMIN_KEY       an admin key
//   AMQ2API_USER_KEY        a key without the admin flag
//   AMQ2API_NODE_BROWSER_DIR  where `npm ci` installed playwright-core (target/browser)
//   AMQ2API_CHROMIUM        the browser (Debian's /usr/bin/chromium)
//   AMQ2API_SCREENSHOT_DIR  where dashboard.png, dashboard-phone.png and dashboard-login.png go
// Each step prints one line; the last line is "N passed, M failed" and the exit status says so.

import { createRequire } from 'node:module';
import path from 'node:path';

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};
const BASE = env('AMQ2API_BASE_URL');
const ADMIN_KEY = env('AMQ2API_ADMIN_KEY');
const USER_KEY = env('AMQ2API_USER_KEY');
const SHOTS = env('AMQ2API_SCREENSHOT_DIR');
const require = createRequire(path.join(env('AMQ2API_NODE_BROWSER_DIR'), 'package.json'));
const { chromium } = require('playwright-core');

// What dashboard.rs seeds: a 24 h bar, a 30 d bar, and the sums over each chart.
const SEEDED = {
  hourBar: { input: 12345, output: 678 },
  dayBar: { input: 50000, output: 7000 },
  hours: { input: 12445, output: 678 },
  days: { input: 62445, output: 7678 },
};

function check(cond, what) {
  if (!cond) throw new Error(what);
}

const browser = await chromium.launch({
  executablePath: env('AMQ2API_CHROMIUM'),
  headless: true,
  // Playwright gives every launch a fresh, empty --user-data-dir of its own.
  args: [
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
  ],
});

/// A fresh context and page that records every request, console error and page error.
async function open(options = {}) {
  const context = await browser.newContext(options);
  const page = await context.newPage();
  const seen = { requests: [], errors: [] };
  page.on('request', (r) => seen.requests.push(r.url()));
  page.on('console', (m) => {
    if (m.type() === 'error') seen.errors.push(m.text());
  });
  page.on('pageerror', (e) => seen.errors.push(String(e)));
  return { context, page, seen };
}

/// Signs in with `key` from the form; returns the POST's response.
async function signIn(page, key) {
  const form = await page.goto(`${BASE}/admin/login`);
  check(form.status() === 200, `login form status ${form.status()}`);
  await page.fill('#key', key);
  const [post] = await Promise.all([
    page.waitForResponse((r) => r.url() === `${BASE}/admin/login` && r.request().method() === 'POST'),
    page.click('button[type=submit]'),
  ]);
  await page.waitForLoadState('load');
  return post;
}

const desktop = await open({ viewport: { width: 1280, height: 900 } });
const { page } = desktop;

async function step_admin_signs_in() {
  const post = await signIn(page, ADMIN_KEY);
  check(post.status() === 303, `POST /admin/login status ${post.status()}`);
  await page.waitForURL(`${BASE}/admin/dashboard`);
  const cookies = await desktop.context.cookies();
  check(cookies.length === 1, `cookies: ${JSON.stringify(cookies.map((c) => c.name))}`);
  const c = cookies[0];
  check(c.name === 'amq2api_admin' && c.httpOnly && c.sameSite === 'Strict' && c.path === '/admin' && !c.secure,
    `cookie attributes: ${JSON.stringify({ ...c, value: '…' })}`);
  check(/^[A-Za-z0-9_-]{43}$/.test(c.value), 'cookie value is 32 random bytes in base64url');
  check(!(await page.content()).includes(ADMIN_KEY), 'the key is not in the page');
  check(await page.title() === 'amq2api monitoring', `title: ${await page.title()}`);
}

async function step_security_headers_and_nothing_external() {
  const resp = await page.reload();
  const h = resp.headers();
  check(resp.status() === 200, `status ${resp.status()}`);
  check(h['content-security-policy'].startsWith("default-src 'none'; style-src 'sha256-"), `CSP: ${h['content-security-policy']}`);
  check(h['x-frame-options'] === 'DENY' && h['x-content-type-options'] === 'nosniff', 'frame and sniff headers');
  check(h['referrer-policy'] === 'no-referrer' && h['cache-control'] === 'no-store', 'referrer and cache headers');
  const outside = desktop.seen.requests.filter((u) => !u.startsWith(`${BASE}/`) && !u.startsWith('data:'));
  check(outside.length === 0, `requests outside the server: ${outside}`);
  check(await page.locator('script').count() === 0, 'no script element');
  // The inline stylesheet is allowed by its hash: the styles apply, and Chromium refused nothing.
  const bg = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  check(bg === 'rgb(245, 246, 248)', `body background ${bg}: the stylesheet did not apply`);
  check(desktop.seen.errors.length === 0, `console errors: ${desktop.seen.errors}`);
  const refresh = await page.locator('meta[http-equiv=refresh]').getAttribute('content');
  check(refresh === '30', `refresh ${refresh}`);
}

async function step_accounts_and_health() {
  const one = page.locator('tr[data-account="one"]');
  check(await one.count() === 1, 'account one is listed');
  check((await one.locator('.badge').innerText()) === 'active', 'one is active');
  const two = page.locator('tr[data-account="two"]');
  check((await two.locator('.badge').innerText()) === 'cooling', 'two is cooling');
  const text = await two.innerText();
  check(text.includes('ThrottlingException <b>slow down</b>'), `two's reason, escaped: ${text}`);
  check(/in \d+ min/.test(text), `two's cooldown end: ${text}`);
}

/// The bars of a chart: their exact figures from the data attributes, and the titles.
async function bars(id) {
  return page.locator(`svg#${id} g.bar`).evaluateAll((gs) => gs.map((g) => ({
    input: Number(g.dataset.input),
    output: Number(g.dataset.output),
    title: g.querySelector('title').textContent,
  })));
}

async function step_charts_carry_the_seeded_figures() {
  const hours = await bars('tokens-24h-svg');
  check(hours.length === 24, `${hours.length} hourly bars`);
  const hour = hours.find((b) => b.input === SEEDED.hourBar.input);
  check(hour && hour.output === SEEDED.hourBar.output, `hour bar: ${JSON.stringify(hour)}`);
  check(hour.title.endsWith(': 12,345 input, 678 output tokens'), `hour title: ${hour.title}`);
  const sum = (bs, k) => bs.reduce((n, b) => n + b[k], 0);
  check(sum(hours, 'input') === SEEDED.hours.input && sum(hours, 'output') === SEEDED.hours.output,
    `24 h sums ${sum(hours, 'input')}/${sum(hours, 'output')}`);
  const days = await bars('tokens-30d-svg');
  check(days.length === 30, `${days.length} daily bars`);
  const day = days.find((b) => b.input === SEEDED.dayBar.input);
  check(day && day.output === SEEDED.dayBar.output, `day bar: ${JSON.stringify(day)}`);
  check(sum(days, 'input') === SEEDED.days.input && sum(days, 'output') === SEEDED.days.output,
    `30 d sums ${sum(days, 'input')}/${sum(days, 'output')}`);
  // Drawn, not just present: the tallest bar of the month is a real rectangle on screen, with
  // input below output.
  const big = page.locator(`svg#tokens-30d-svg g.bar[data-input="${SEEDED.dayBar.input}"]`);
  const inBox = await big.locator('rect.in').boundingBox();
  const outBox = await big.locator('rect.out').boundingBox();
  check(inBox && inBox.height > 50 && outBox && outBox.height > 2, `bar boxes ${JSON.stringify([inBox, outBox])}`);
  check(Math.abs(outBox.y + outBox.height - inBox.y) < 1, 'output is stacked on input');
  const totals = await page.locator('#tokens-30d .totals').innerText();
  check(totals === 'Total: 62,445 input, 7,678 output tokens', `30 d totals: ${totals}`);
  check(await page.locator('svg#tokens-24h-svg .legend text').allTextContents().then((t) => t.join(',')) === 'input,output', 'legend');
}

async function step_keys_errors_and_failures() {
  const tester = await page.locator('tr[data-key="tester"] td').allInnerTexts();
  // Name, key, admin, state, created, last used, requests/errors/tokens 24 h, requests/tokens 30 d.
  check(tester[2] === 'no' && tester[3] === 'active', `tester: ${tester}`);
  check(tester.slice(6).join('|') === '2|1|13,123|3|70,123', `tester's figures: ${tester.slice(6)}`);
  const boss = await page.locator('tr[data-key="boss"] td').allInnerTexts();
  check(boss[2] === 'yes' && boss[1].startsWith('sk-amq-'), `boss: ${boss}`);
  check(!boss[1].includes(ADMIN_KEY.slice(0, 14)), 'only the display prefix of the key');
  const throttled = await page.locator('tr[data-class="throttled"] td').allInnerTexts();
  check(throttled.join('|') === 'throttled|1|100.0 %', `errors by class: ${throttled}`);
  const failure = await page.locator('#failures tbody tr').first().locator('td').allInnerTexts();
  check(failure.slice(1).join('|') === 'tester|one|claude-<i>x</i>|429|throttled|1,234 ms', `failure: ${failure}`);
}

async function step_desktop_screenshot() {
  await page.screenshot({ path: path.join(SHOTS, 'dashboard.png'), fullPage: true });
}

async function step_phone_fits_the_screen() {
  const phone = await open({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true });
  try {
    const post = await signIn(phone.page, ADMIN_KEY);
    check(post.status() === 303, `phone sign-in ${post.status()}`);
    await phone.page.waitForURL(`${BASE}/admin/dashboard`);
    const widths = await phone.page.evaluate(() => ({
      doc: document.documentElement.scrollWidth,
      body: document.body.scrollWidth,
      view: window.innerWidth,
    }));
    check(widths.doc <= widths.view && widths.body <= widths.view, `horizontal overflow: ${JSON.stringify(widths)}`);
    // The charts shrink to the screen; wide tables scroll inside their own box.
    const chart = await phone.page.locator('svg#tokens-24h-svg').boundingBox();
    check(chart.width <= 390 && chart.width > 300, `chart width ${chart.width}`);
    await phone.page.screenshot({ path: path.join(SHOTS, 'dashboard-phone.png'), fullPage: true });
  } finally {
    await phone.context.close();
  }
}

async function step_sign_out() {
  await Promise.all([page.waitForURL(`${BASE}/admin/login`), page.click('header form button')]);
  check((await desktop.context.cookies()).length === 0, 'the cookie is gone');
  const again = await page.goto(`${BASE}/admin/dashboard`);
  check(again.url() === `${BASE}/admin/login`, `dashboard after sign-out went to ${again.url()}`);
}

async function step_non_admin_key_is_refused() {
  const fresh = await open();
  try {
    const post = await signIn(fresh.page, USER_KEY);
    check(post.status() === 403, `status ${post.status()}`);
    check(fresh.page.url() === `${BASE}/admin/login`, `landed on ${fresh.page.url()}`);
    const alert = await fresh.page.locator('[role=alert]').innerText();
    check(alert.includes('not an admin key'), `message: ${alert}`);
    check(!(await fresh.page.content()).includes(USER_KEY), 'the key is not echoed');
    check((await fresh.context.cookies()).length === 0, 'no cookie');
    await fresh.page.screenshot({ path: path.join(SHOTS, 'dashboard-login.png') });
    const dash = await fresh.page.goto(`${BASE}/admin/dashboard`);
    check(dash.url() === `${BASE}/admin/login`, 'the dashboard stays closed');
  } finally {
    await fresh.context.close();
  }
}

async function step_wrong_key_is_refused() {
  const fresh = await open();
  try {
    const post = await signIn(fresh.page, 'sk-amq-not-a-real-key');
    check(post.status() === 401, `status ${post.status()}`);
    const alert = await fresh.page.locator('[role=alert]').innerText();
    check(alert.includes('not valid'), `message: ${alert}`);
    check((await fresh.context.cookies()).length === 0, 'no cookie');
  } finally {
    await fresh.context.close();
  }
}

const STEPS = [
  step_admin_signs_in,
  step_security_headers_and_nothing_external,
  step_accounts_and_health,
  step_charts_carry_the_seeded_figures,
  step_keys_errors_and_failures,
  step_desktop_screenshot,
  step_phone_fits_the_screen,
  step_sign_out,
  step_non_admin_key_is_refused,
  step_wrong_key_is_refused,
];

let failed = 0;
for (const step of STEPS) {
  try {
    await step();
    console.log(`ok ${step.name}`);
  } catch (e) {
    failed += 1;
    console.log(`FAILED ${step.name}: ${e && e.message ? e.message.split('\n')[0] : e}`);
  }
}
await browser.close();
console.log(`${STEPS.length - failed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
