// Browser-test pieces on top of tests/js/helpers.mjs (which starts the real server and waits with
// deadlines): the server flags the demo pages need, Debian's Chromium launched headless through
// playwright-core (flags exactly as TOOLCHAIN.md §9), a watcher that fails a test on uncaught errors
// and failed same-origin requests, and screenshots.
//
// Every wait is a poll of a condition with a deadline (DECISIONS.md §19); nothing sleeps to
// synchronise. Server timings are set short so reconnects and leases take milliseconds.
import { mkdtemp, rm, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { startServer as startJsServer, waitFor, repo, API_KEY } from '../js/helpers.mjs';

export { waitFor, API_KEY };
export const ROOT = repo;
export const SCREENSHOTS = join(ROOT, 'tests', 'browser', 'screenshots');

// Client options for pages (?opts=): fast reconnects so a drop costs milliseconds.
export const FAST_CLIENT = { backoffMinMs: 20, backoffMaxMs: 200, requestTimeoutMs: 5000 };

// The server with the demo pages and the client bundle, and short timings.
export function startServer(extra = []) {
  return startJsServer([
    '--web-root', join(ROOT, 'web'), '--client-root', join(ROOT, 'client-wasm'),
    '--ping-interval-ms', '1000', '--poll-hold-ms', '1000', '--presence-lease-ms', '1500',
    '--sse-retry-ms', '200', '--reconnect-jitter-ms', '50', '--shutdown-timeout-ms', '500',
    '--housekeeping-ms', '50', '--demo-rate-per-s', '1000',
    ...extra,
  ]);
}

export const publish = (server, channel, data) => server.publish(channel, data);
export const disconnectAll = (server) => server.disconnect({});

export async function launchBrowser() {
  const profile = await mkdtemp(join(tmpdir(), 'chromium-profile-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: '/usr/bin/chromium', headless: true,
    viewport: { width: 1200, height: 800 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  return {
    context,
    async close() {
      await context.close();
      await rm(profile, { recursive: true, force: true });
    },
  };
}

const TRANSPORT_PATH = /^\/(sse|poll|ws|cmd)$/;

// Records what must fail a test: uncaught exceptions (pageerror) and requests to the page's own
// origin that failed or answered >= 400. Console messages are kept for diagnostics only, since
// forced fallbacks log by design. A request the client aborts on purpose (closing an EventSource,
// abandoning a long-poll when it reconnects or the page goes away) is reported by Chromium as
// net::ERR_ABORTED; that is not a failure. With `serverDrops`, transport requests the server cut
// on purpose are not failures either.
export function watch(page, origin, { serverDrops = false } = {}) {
  const problems = [];
  const console_ = [];
  page.on('pageerror', (err) => problems.push(`pageerror: ${err.message}`));
  page.on('console', (msg) => console_.push(`${msg.type()}: ${msg.text()}`));
  page.on('requestfailed', (req) => {
    const u = new URL(req.url());
    if (u.origin !== origin) return;
    const failure = req.failure()?.errorText ?? '';
    if (TRANSPORT_PATH.test(u.pathname) && (failure.includes('ERR_ABORTED') || serverDrops)) return;
    problems.push(`request failed: ${req.method()} ${u.pathname}${u.search} ${failure}`);
  });
  page.on('response', (res) => {
    const u = new URL(res.url());
    if (u.origin === origin && res.status() >= 400) problems.push(`HTTP ${res.status()}: ${res.request().method()} ${u.pathname}${u.search}`);
  });
  return {
    problems, console: console_,
    check(assert) {
      assert.deepEqual(problems, [], `page problems:\n${problems.join('\n')}\nconsole:\n${console_.join('\n')}`);
    },
  };
}

// Opens `path` on a new page and waits until `ready` (a page function over window.pw) holds.
export async function openPage(context, base, path, { ready, timeout = 10000, init, serverDrops, viewport } = {}) {
  const page = await context.newPage();
  if (viewport) await page.setViewportSize(viewport);
  if (init) await page.addInitScript(init);
  const watcher = watch(page, new URL(base).origin, { serverDrops });
  await page.goto(base + path);
  if (ready) {
    try {
      await page.waitForFunction(ready, null, { timeout, polling: 20 });
    } catch (err) {
      const pw = await page.evaluate(() => JSON.stringify(window.pw ?? null, (k, v) => (k === 'client' ? undefined : v))).catch(() => '?');
      throw new Error(`${path}: not ready (${err.message.split('\n')[0]})\npw=${pw}\nproblems=${watcher.problems.join('\n')}\nconsole=${watcher.console.join('\n')}`);
    }
  }
  return { page, watcher };
}

export async function screenshot(page, name) {
  await mkdir(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: true });
}

// Screenshots at the page's desktop size and at a phone's width (<name>-phone.png).
const PHONE = { width: 390, height: 844 };
export async function shots(page, name) {
  await screenshot(page, name);
  const desktop = page.viewportSize();
  await page.setViewportSize(PHONE);
  await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
  await screenshot(page, `${name}-phone`);
  await page.setViewportSize(desktop);
}

export const q = (opts) => encodeURIComponent(JSON.stringify(opts));
export const unique = (prefix) => `${prefix}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
