// Buffering proxies (issue 16 item 5), with Debian's nginx between Chromium and a real server.
// nginx buffers a proxied response by default (proxy_buffering on): an SSE stream's events wait
// until a buffer fills, and so does its header (nginx sends it with the first body bytes it passes
// on), so the stream does not even open. The server asks nginx not to
// buffer (X-Accel-Buffering: no); a corporate proxy does not listen to that, so the buffering nginx
// here ignores it, with buffers large enough that the stream stays held. The page's client, its
// WebSocket gone (deleted before any script runs), must try SSE, find it silent, fall back to
// long-polling with "SSE buffered by a proxy" and then receive a numbered stream without loss.
// Through a streaming nginx (proxy_buffering off) the same page stays on SSE.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startNginx } from '../cluster/cluster.mjs';
import { FAST_CLIENT, launchBrowser, openPage, startServer, unique } from './helpers.mjs';

const NGINX_BUFFERING = `proxy_buffering on;
      proxy_ignore_headers X-Accel-Buffering;
      proxy_buffer_size 64k;
      proxy_buffers 8 64k;
      proxy_busy_buffers_size 128k;`;

const CLIENT = { ...FAST_CLIENT, sseFirstEventMs: 1500 };

let server, buffering, streaming, browser;
before(async () => {
  server = await startServer();
  buffering = await startNginx([server.port], { buffering: NGINX_BUFFERING });
  streaming = await startNginx([server.port]);
  browser = await launchBrowser();
  // An empty page on the proxy's origin; the client comes from the server's /pushwire/ through nginx.
  await browser.context.route('**/blank.html', (r) =>
    r.fulfill({ contentType: 'text/html', body: '<!doctype html><html><head><title>proxy</title></head><body></body></html>' }));
});
after(async () => {
  await browser?.close();
  await buffering?.cleanup();
  await streaming?.cleanup();
  await server?.stop();
});

// Opens the page through `proxy`, starts a client subscribed to `channel`; resolves once connected.
async function connectThrough(proxy, channel) {
  const { page, watcher } = await openPage(browser.context, proxy.url, '/blank.html', {
    init: () => { delete window.WebSocket; },
  });
  await page.evaluate(async ({ channel, options }) => {
    const { Client } = await import('/pushwire/pushwire.mjs');
    const pw = (window.pw = { states: [], fallbacks: [], got: [], subscribed: false });
    const client = new Client(location.origin, options);
    pw.client = client;
    client.on('state', (s) => pw.states.push({ ...s }));
    client.on('fallback', (f) => pw.fallbacks.push({ ...f }));
    client.subscribe(channel, { onSubscribed() { pw.subscribed = true; }, onMessage(d) { pw.got.push(d.n); } });
  }, { channel, options: CLIENT });
  // The buffered case needs the first-event time plus a poll; well inside the 10 s handshake timeout.
  await page.waitForFunction(() => window.pw.subscribed && window.pw.client.state === 'connected', null, {
    polling: 20, timeout: 8000,
  }).catch(async (err) => {
    const pw = await page.evaluate(() => JSON.stringify({ ...window.pw, client: undefined }));
    throw new Error(`not connected: ${err.message.split('\n')[0]}\n${pw}\n${watcher.console.join('\n')}`);
  });
  return { page, watcher };
}

// Publishes 1..n straight to the server and waits until the page has them all.
async function numberedStream(page, channel, n) {
  for (let i = 1; i <= n; i++) await server.publish(channel, { n: i });
  await page.waitForFunction((n) => window.pw.got.length >= n, n, { polling: 20, timeout: 10000 });
  return page.evaluate(() => window.pw.got);
}

const range = (n) => Array.from({ length: n }, (_, i) => i + 1);

test('behind a buffering proxy: SSE stays silent, the client falls back to long-polling and loses nothing', { timeout: 30000 }, async () => {
  const channel = unique('proxied');
  const { page, watcher } = await connectThrough(buffering, channel);
  const pw = await page.evaluate(() => ({ ...window.pw, client: undefined, transport: window.pw.client.transport }));
  assert.equal(pw.transport, 'polling');
  const sse = pw.fallbacks.find((f) => f.from === 'sse');
  assert.ok(sse, `a fallback from sse: ${JSON.stringify(pw.fallbacks)}`);
  assert.deepEqual(sse, { from: 'sse', to: 'polling', code: 111, reason: 'SSE buffered by a proxy' });
  const connected = pw.states.find((s) => s.to === 'connected');
  assert.equal(connected.reason, 'polling (SSE buffered by a proxy)');
  assert.equal(connected.transport, 'polling');
  assert.deepEqual(await numberedStream(page, channel, 30), range(30));
  assert.equal(await page.evaluate(() => window.pw.client.transport), 'polling');
  watcher.check(assert);
  await page.close();
});

test('behind a streaming proxy (proxy_buffering off): the client stays on SSE', { timeout: 30000 }, async () => {
  const channel = unique('proxied');
  const { page, watcher } = await connectThrough(streaming, channel);
  assert.deepEqual(await numberedStream(page, channel, 30), range(30));
  const pw = await page.evaluate(() => ({ ...window.pw, client: undefined, transport: window.pw.client.transport }));
  assert.equal(pw.transport, 'sse');
  assert.deepEqual(pw.fallbacks.map((f) => f.from), ['websocket'], 'only the deleted WebSocket fell back');
  assert.deepEqual(pw.states.filter((s) => s.to === 'connected').map((s) => s.transport), ['sse'], 'connected once, over SSE');
  watcher.check(assert);
  await page.close();
});
