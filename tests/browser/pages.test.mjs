// Every demo page loads from the real server with the real client bundle, does its job, logs no
// uncaught error and no failed same-origin request, and leaves a screenshot (desktop and phone
// widths) in tests/browser/screenshots/ for a person to look at.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { startServer, launchBrowser, openPage, shots, publish, waitFor, q, unique, FAST_CLIENT, ROOT, API_KEY } from './helpers.mjs';

let server, browser;
before(async () => {
  server = await startServer();
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
  await server?.stop();
});

const connected = () => window.pw && window.pw.subscribed && window.pw.state === 'connected';

test('index links every demo, and every link answers', async () => {
  const { page, watcher } = await openPage(browser.context, server.url, '/', { ready: () => window.pw && window.pw.demos.length > 0 });
  const hrefs = await page.evaluate(() => window.pw.demos.map((d) => d.href));
  for (const demo of ['chat.html', 'scores.html', 'admin.html', 'chart.html', 'lab.html', 'dashboard.html', 'plain-sse.html'])
    assert.ok(hrefs.includes(demo), `index links ${demo}`);
  for (const href of hrefs) {
    const res = await fetch(new URL(href, server.url + '/'));
    assert.equal(res.status, 200, href);
    assert.match(res.headers.get('content-type'), /^text\/html/, href);
  }
  for (const [path, type] of [['/pushwire/pushwire.mjs', /^text\/javascript/], ['/pushwire/pushwire.js', /^text\/javascript/],
    ['/pushwire/pushwire_core.wasm', /^application\/wasm/], ['/style.css', /^text\/css/]]) {
    const res = await fetch(server.url + path);
    assert.equal(res.status, 200, path);
    assert.match(res.headers.get('content-type'), type, path);
  }
  await shots(page, 'index');
  watcher.check(assert);
  await page.close();
});

test('scores over SSE alone, fed by scripts/publish-scores.mjs and by the admin page', async () => {
  const channel = unique('demo:scores');
  const scores = await openPage(browser.context, server.url, `/scores.html?transport=sse&channel=${channel}&opts=${q(FAST_CLIENT)}`, { ready: connected });
  assert.equal(await scores.page.evaluate(() => window.pw.transport), 'sse');
  assert.equal(await scores.page.evaluate(() => typeof window.Pushwire.Client), 'function', 'the <script> global');

  // The publisher script, through /api/publish with the key.
  const child = spawn(process.execPath, [join(ROOT, 'scripts', 'publish-scores.mjs'), '--url', server.url, '--key', API_KEY,
    '--channel', channel, '--count', '6', '--interval', '0', '--quiet'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => { stderr += d; });
  const code = await new Promise((r) => child.on('exit', r));
  assert.equal(code, 0, `publish-scores.mjs failed: ${stderr}`);
  await scores.page.waitForFunction(() => window.pw.updates >= 6, null, { polling: 20, timeout: 5000 });
  assert.equal(await scores.page.locator('#matches tr').count(), 3, 'three matches in the table');

  // The admin page's button, through /demo/publish without a key.
  const admin = await openPage(browser.context, server.url, `/admin.html?channel=${channel}&opts=${q(FAST_CLIENT)}`,
    { ready: () => window.pw && window.pw.state === 'connected' });
  await admin.page.waitForFunction(() => window.pw.matches['lions-tigers'].status !== 'pre', null, { polling: 20, timeout: 5000 });   // learnt the script's state
  const before_ = await admin.page.evaluate(() => window.pw.matches['lions-tigers'].homeScore);
  await admin.page.click('#card-lions-tigers button[data-action="home"]');
  await admin.page.waitForFunction(() => window.pw.published === 1, null, { polling: 20, timeout: 5000 });
  await scores.page.waitForFunction((s) => window.pw.updates >= 7 && window.pw.matches['lions-tigers'].homeScore === s,
    before_ + 1, { polling: 20, timeout: 5000 });
  assert.match(await scores.page.textContent('#ticker'), /Goal! Lions/);
  assert.equal(await scores.page.evaluate(() => window.pw.transport), 'sse', 'still SSE');
  await shots(scores.page, 'scores');
  await shots(admin.page, 'admin');
  scores.watcher.check(assert);
  admin.watcher.check(assert);
  await scores.page.close();
  await admin.page.close();
});

test('chart plots values as they arrive', async () => {
  const channel = unique('demo:chart');
  const { page, watcher } = await openPage(browser.context, server.url, `/chart.html?channel=${channel}&interval=30&opts=${q(FAST_CLIENT)}`, { ready: connected });
  // Values from the backend…
  for (const v of [10, 40, 25]) await publish(server, channel, { v });
  await page.waitForFunction(() => window.pw.count >= 3, null, { polling: 20, timeout: 5000 });
  assert.deepEqual(await page.evaluate(() => window.pw.points.map((p) => p.v)), [10, 40, 25]);
  // …and from the page's own feed (client.publish).
  await page.click('#feed');
  await page.waitForFunction(() => window.pw.count >= 25, null, { polling: 20, timeout: 8000 });
  await page.click('#feed');
  const points = await page.locator('#chart polyline').getAttribute('points');
  assert.ok(points.trim().split(/\s+/).length >= 25, 'polyline has a point per value');
  assert.equal(await page.evaluate(() => window.pw.errors.length), 0);
  await shots(page, 'chart');
  watcher.check(assert);
  await page.close();
});

test('lab: numbered stream from the page, cut connection, resume', async () => {
  const channel = unique('demo:lab');
  const { page, watcher } = await openPage(browser.context, server.url, `/lab.html?transport=websocket&channel=${channel}&opts=${q(FAST_CLIENT)}`,
    { ready: () => window.pw && window.pw.subscribed >= 1 && window.pw.state === 'connected', serverDrops: true });
  await page.fill('#stream-count', '20');
  await page.fill('#stream-interval', '0');
  await page.click('#stream');
  await page.waitForFunction(() => window.pw.numbers.length >= 20, null, { polling: 20, timeout: 5000 });
  await page.click('#drop');   // client.drop(): the server drops this connection
  await page.waitForFunction(() => window.pw.reconnects >= 1 && window.pw.subscribed >= 2 && window.pw.state === 'connected', null, { polling: 20, timeout: 5000 });
  await page.click('#stream');
  await page.waitForFunction(() => window.pw.numbers.length >= 20 && window.pw.expected === 20 && !document.querySelector('#stream').disabled, null, { polling: 20, timeout: 5000 });
  const pw = await page.evaluate(() => ({ numbers: window.pw.numbers, drops: window.pw.drops, missing: window.pw.missing() }));
  assert.deepEqual(pw.numbers, Array.from({ length: 20 }, (_, i) => i + 1));
  assert.deepEqual(pw.missing, []);
  assert.equal(pw.drops, 1);
  // Switching transport from the page.
  await page.check('input[value="polling"]');
  await page.waitForFunction(() => window.pw.transport === 'polling' && window.pw.subscribed >= 1 && window.pw.state === 'connected', null, { polling: 20, timeout: 5000 });
  await page.check('input[value="sse"]');
  await page.waitForFunction(() => window.pw.transport === 'sse' && window.pw.subscribed >= 1 && window.pw.state === 'connected', null, { polling: 20, timeout: 5000 });
  await page.click('#stream');
  await page.waitForFunction(() => window.pw.numbers.length >= 20, null, { polling: 20, timeout: 5000 });
  await page.click('#drop');
  await page.waitForFunction(() => window.pw.reconnects >= 1 && window.pw.state === 'connected', null, { polling: 20, timeout: 5000 });
  await shots(page, 'lab');
  watcher.check(assert);
  await page.close();
});

test('dashboard shows connections by transport, channels and message rates', async () => {
  const opts = q(FAST_CLIENT);
  const channel = unique('demo:dash');
  const others = [];
  for (const t of ['websocket', 'sse', 'polling'])
    others.push(await openPage(browser.context, server.url, `/lab.html?transport=${t}&channel=${channel}&opts=${opts}`, { ready: connected }));
  const { page, watcher } = await openPage(browser.context, server.url, '/dashboard.html?interval=250', { ready: () => window.pw && window.pw.samples >= 1 });
  await page.waitForFunction(() => window.pw.connections.websocket >= 1 && window.pw.connections.sse >= 1 && window.pw.connections.polling >= 1 && window.pw.channels >= 1,
    null, { polling: 50, timeout: 5000 }).catch(async (e) => { throw new Error(e.message + ' ' + await page.evaluate(() => JSON.stringify(window.pw.metrics))); });
  // Publish until the dashboard has seen a non-zero rate of both (each sample is 250 ms apart).
  let i = 0;
  await waitFor(async () => {
    for (let k = 0; k < 5; k++) await publish(server, channel, { n: ++i });
    return page.evaluate(() => window.pw.publishedPerSec > 0 && window.pw.deliveredPerSec > 0);
  }, { timeoutMs: 8000, intervalMs: 50, what: 'message rates on the dashboard' });
  assert.equal(await page.textContent('#health'), 'live');
  await shots(page, 'dashboard');
  watcher.check(assert);
  for (const o of others) { o.watcher.check(assert); await o.page.close(); }
  await page.close();
});
