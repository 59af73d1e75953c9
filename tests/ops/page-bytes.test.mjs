// A demo page (scores.html: the <script> bundle and the wasm) loaded twice in Chromium, counting what crosses the wire: the first load gets the
// client bundle and wasm brotli-compressed; the second revalidates them (304, no body bytes), so a
// returning visitor downloads almost nothing of the client.
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { launchBrowser } from '../browser/helpers.mjs';
import { repo } from '../js/helpers.mjs';
import { startServerProc } from './server-proc.mjs';

let srv;
let browser;
before(async () => {
  srv = await startServerProc({ extra: ['--web-root', join(repo, 'web'), '--client-root', join(repo, 'client-wasm')] });
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
  await srv?.stop();
});

async function load(page, url) {
  const pending = [];
  const onFinished = (req) => pending.push((async () => {
    const res = await req.response();
    const path = new URL(req.url()).pathname;
    if (!res || !path.startsWith('/pushwire/')) return null;
    const sizes = await req.sizes();
    return { path, status: res.status(), body: sizes.responseBodySize, encoding: (await res.allHeaders())['content-encoding'] };
  })());
  page.on('requestfinished', onFinished);
  await page.goto(url, { waitUntil: 'networkidle' });
  page.off('requestfinished', onFinished);
  return (await Promise.all(pending)).filter(Boolean);
}

test('a demo page twice: brotli the first time, no client bytes the second', async () => {
  const page = await browser.context.newPage();
  const first = await load(page, `${srv.url}/scores.html`);
  const wasm = first.find((r) => r.path === '/pushwire/pushwire_core.wasm');
  const js = first.find((r) => r.path === '/pushwire/pushwire.js');
  assert.ok(wasm && js, JSON.stringify(first));
  assert.equal(wasm.status, 200);
  assert.equal(wasm.encoding, 'br');
  const rawWasm = statSync(join(repo, 'client-wasm/dist/pushwire_core.wasm')).size;
  assert.ok(wasm.body > 1000 && wasm.body < rawWasm * 0.6, `wasm ${wasm.body} bytes on the wire of ${rawWasm}`);
  assert.equal(js.encoding, 'br');

  const second = await load(page, `${srv.url}/scores.html`);
  const client = second.filter((r) => r.path === '/pushwire/pushwire_core.wasm' || r.path === '/pushwire/pushwire.js');
  assert.equal(client.length, 2, JSON.stringify(second));
  // Revalidated (no-cache + ETag): Chromium reports the cached 200 after the server's 304, with no
  // body bytes on the wire.
  for (const r of client) assert.equal(r.body, 0, JSON.stringify(r));
  const firstBytes = first.reduce((n, r) => n + r.body, 0);
  const secondBytes = second.reduce((n, r) => n + r.body, 0);
  console.log(`client bytes: first load ${firstBytes}, second load ${secondBytes}`);
  assert.ok(secondBytes < 1000);
});
