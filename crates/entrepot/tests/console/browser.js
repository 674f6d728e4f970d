// A Chromium of the test's own, driven by Playwright's core library: Debian's
// /usr/bin/chromium, headless, a fresh profile, no network besides loopback.
// Every page a test opens is watched: a Content-Security-Policy violation, a
// script error or a secret payload in the HTML fails the test.
'use strict';

const fs = require('fs');
const os = require('os');
const path = require('path');
const { chromium } = require('playwright-core');

const ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
  '--disable-dev-shm-usage',
];

function fail(message) {
  throw new Error(message);
}

/** Launch Chromium with a fresh profile; `forbidden` are strings no page may hold. */
async function launch({ base, screenshots, forbidden = [], width = 1280, height = 800 }) {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'entrepot-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ARGS,
    viewport: { width, height },
    baseURL: base,
  });
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: base });
  const problems = [];
  const page = context.pages()[0] || (await context.newPage());
  page.setDefaultTimeout(20000);
  page.on('console', (msg) => {
    if (msg.type() === 'error' && !/Failed to load resource: the server responded with a status of (4\d\d)/.test(msg.text())) {
      problems.push(`console error on ${page.url()}: ${msg.text()}`);
    }
  });
  page.on('pageerror', (err) => problems.push(`script error on ${page.url()}: ${err.message}`));
  // Every page's HTML is checked for the forbidden strings (secret payloads).
  let allowReveal = false;
  page.on('response', async (response) => {
    const type = response.headers()['content-type'] || '';
    if (!type.startsWith('text/html')) return;
    const allowed = allowReveal;
    let body = '';
    try {
      body = await response.text();
    } catch (_) {
      return;
    }
    for (const secret of forbidden) {
      if (body.includes(secret) && !allowed) {
        problems.push(`the page ${response.url()} holds a secret payload`);
      }
    }
  });
  fs.mkdirSync(screenshots, { recursive: true });
  return {
    context,
    page,
    /** Let the next responses hold a payload (the explicit "View secret value"). */
    revealing(on) {
      allowReveal = on;
    },
    async shot(name) {
      await page.screenshot({ path: path.join(screenshots, `${name}.png`), fullPage: false });
    },
    async phoneShot(url, name) {
      const phone = await context.newPage();
      await phone.setViewportSize({ width: 390, height: 844 });
      await phone.goto(url);
      const overflow = await phone.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      await phone.screenshot({ path: path.join(screenshots, `${name}.png`), fullPage: false });
      await phone.close();
      if (overflow > 1) problems.push(`${url} scrolls sideways by ${overflow}px at 390px wide`);
    },
    async close() {
      await context.close();
      fs.rmSync(profile, { recursive: true, force: true });
      if (problems.length) fail(problems.join('\n'));
    },
  };
}

/** Sign in with a personal access token. */
async function signInWithToken(page, token) {
  await page.goto('/ui/');
  if (!page.url().includes('/ui/signin')) fail(`/ui/ without a session went to ${page.url()}`);
  await page.getByLabel('Personal access token').fill(token);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expectText(page, '.notice', 'Signed in.');
}

/** Sign in with a user name and password; the page after it. */
async function signInWithPassword(page, username, password) {
  await page.goto('/ui/signin');
  await page.getByLabel('User name and password').check();
  await page.getByLabel('User name', { exact: true }).fill(username);
  await page.getByLabel('Password', { exact: true }).fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

async function expectText(page, selector, text) {
  const locator = page.locator(selector).filter({ hasText: text });
  try {
    await locator.first().waitFor({ state: 'visible', timeout: 15000 });
  } catch (e) {
    const shown = await page.locator('main').innerText().catch(() => '');
    fail(`expected ${JSON.stringify(text)} in ${selector} on ${page.url()}; the page shows:\n${shown.slice(0, 2000)}`);
  }
}

async function expectNone(page, locator, what) {
  const n = await locator.count();
  if (n !== 0) fail(`${what} is offered on ${page.url()} (${n} found)`);
}

/** The text the page's clipboard holds. */
async function clipboard(page) {
  return page.evaluate(() => navigator.clipboard.readText());
}

/** Print the result the Rust test reads: one JSON line. */
function report(value) {
  process.stdout.write(`RESULT ${JSON.stringify(value)}\n`);
}

/** Run `flow` with the settings the Rust test passes in the environment. */
function main(flows) {
  const name = process.argv[2];
  const flow = flows[name];
  if (!flow) {
    console.error(`no flow ${name}; known: ${Object.keys(flows).join(', ')}`);
    process.exit(2);
  }
  const settings = JSON.parse(process.env.CONSOLE_TEST || '{}');
  flow(settings).then(
    (result) => {
      report(result || {});
    },
    (err) => {
      console.error(err && err.stack ? err.stack : String(err));
      process.exit(1);
    },
  );
}

module.exports = { launch, signInWithToken, signInWithPassword, expectText, expectNone, clipboard, main, fail };
