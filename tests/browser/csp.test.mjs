// Strict Content Security Policy (issue 16 item 2). A page served by the real server with
// `script-src 'self'` (no 'wasm-unsafe-eval', no 'unsafe-eval') may not compile WebAssembly; the
// client must then run the same core built as plain JavaScript (dist/pushwire_core_wasm2js.mjs) and
// connect, over WebSocket and over SSE, receiving a numbered stream in order. Checked per page:
// - which core ran (`client.core`, and the refusal reason in the `state` event),
// - which core files the page fetched: the wasm2js file under the strict policy and never the .wasm
//   there; the .wasm and never the wasm2js file with 'wasm-unsafe-eval' allowed and with no policy,
// - the policy's violation reports (`securitypolicyviolation`, recorded from before any page script):
//   under the strict policy the one allowed is the refusal of the client's probe compile of an empty
//   module ('wasm-eval'), which is how a browser answers "may this page compile wasm?"; nothing else —
//   no 'eval', no inline script — and none at all where wasm is allowed,
// - no uncaught error and no failed request of the page's own origin (helpers.mjs `watch`).
// Both builds are covered: the ES module (`pushwire.mjs`) and the <script> global (`pushwire.js`).
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { startServer } from '../js/helpers.mjs';
import { launchBrowser, ROOT, unique, watch } from './helpers.mjs';

const STRICT = "default-src 'self'; script-src 'self'; connect-src 'self' ws:";
const WASM_ALLOWED = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; connect-src 'self' ws:";
const N = 20;

// The page's own script, a file (an inline script would itself break the policy). It reads the
// transport and channel from the query string and records everything in window.pw.
const PAGE_BODY = `
const q = new URLSearchParams(location.search);
const pw = (window.pw = { states: [], got: [], subscribed: false, core: null });
const client = new Client(location.origin, { transports: [q.get('transport')], backoffMinMs: 20, backoffMaxMs: 200, shared: q.get('shared') || false });
pw.client = client;
client.on('state', (s) => { pw.states.push({ to: s.to, core: s.core, coreReason: s.coreReason ?? null }); pw.core = client.core; });
client.subscribe(q.get('channel'), {
  onSubscribed() { pw.subscribed = true; },
  onMessage(data) { pw.got.push(data.n); },
});
`;
const MODULE_SCRIPT = "import { Client } from '/pushwire/pushwire.mjs';\n" + PAGE_BODY;
const GLOBAL_SCRIPT = `(() => { const { Client } = window.Pushwire;\n${PAGE_BODY}})();\n`;

const html = (csp, scripts) => `<!doctype html><html><head><meta charset="utf-8">
${csp ? `<meta http-equiv="Content-Security-Policy" content="${csp}">` : ''}
<title>csp</title></head><body>${scripts}</body></html>\n`;
const moduleTag = '<script type="module" src="/page.mjs"></script>';
const globalTags = '<script src="/pushwire/pushwire.js"></script><script src="/page-global.js"></script>';

let dir, server, browser;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pushwire-csp-'));
  await writeFile(join(dir, 'page.mjs'), MODULE_SCRIPT);
  await writeFile(join(dir, 'page-global.js'), GLOBAL_SCRIPT);
  await writeFile(join(dir, 'strict.html'), html(STRICT, moduleTag));
  await writeFile(join(dir, 'strict-global.html'), html(STRICT, globalTags));
  await writeFile(join(dir, 'wasm-allowed.html'), html(WASM_ALLOWED, moduleTag));
  await writeFile(join(dir, 'plain.html'), html('', moduleTag));
  await writeFile(join(dir, 'plain-global.html'), html('', globalTags));
  server = await startServer(['--web-root', dir, '--client-root', join(ROOT, 'client-wasm'),
    '--ping-interval-ms', '1000', '--sse-retry-ms', '200']);
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
  await server?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function run(file, transport, extra = '') {
  const page = await browser.context.newPage();
  // Recorded from before the first script: the policy's reports and the core files requested.
  await page.addInitScript(() => {
    window.violations = [];
    document.addEventListener('securitypolicyviolation', (e) =>
      window.violations.push({ directive: e.effectiveDirective, blocked: e.blockedURI, sample: e.sample }));
  });
  const fetched = [];
  page.on('request', (req) => {
    const path = new URL(req.url()).pathname;
    if (path.startsWith('/pushwire/pushwire_core')) fetched.push(path);
  });
  const watcher = watch(page, server.url);
  const channel = unique('csp');
  await page.goto(`${server.url}/${file}?transport=${transport}&channel=${channel}${extra}`);
  await page.waitForFunction(() => window.pw?.subscribed && window.pw.client.state === 'connected', null,
    { timeout: 15000, polling: 20 }).catch(async (err) => {
    const pw = await page.evaluate(() => JSON.stringify({ states: window.pw?.states, v: window.violations })).catch(() => '?');
    throw new Error(`${file} ${transport}: not connected (${err.message.split('\n')[0]}) ${pw}\n${watcher.problems.join('\n')}\n${watcher.console.join('\n')}`);
  });
  for (let n = 1; n <= N; n++) await server.publish(channel, { n });
  await page.waitForFunction((n) => window.pw.got.length >= n, N, { timeout: 10000, polling: 20 });
  const result = await page.evaluate(() => ({
    got: window.pw.got, core: window.pw.client.core, transport: window.pw.client.transport,
    states: window.pw.states, violations: window.violations,
  }));
  assert.deepEqual(result.got, Array.from({ length: N }, (_, i) => i + 1), 'the numbered stream, in order, once');
  assert.equal(result.transport, transport);
  watcher.check(assert);
  await page.close();
  return { ...result, fetched };
}

for (const transport of ['websocket', 'sse']) {
  test(`strict CSP (script-src 'self'), ES module, ${transport}: the wasm2js core, no eval`, async () => {
    const r = await run('strict.html', transport);
    assert.equal(r.core, 'wasm2js');
    assert.ok(r.states.length > 0 && r.states.every((s) => s.core === 'wasm2js' && s.coreReason),
      `the state events name the core and why: ${JSON.stringify(r.states)}`);
    assert.deepEqual(r.fetched, ['/pushwire/pushwire_core_wasm2js.mjs'], 'the wasm2js file only, never the .wasm');
    const others = r.violations.filter((v) => v.blocked !== 'wasm-eval');
    assert.deepEqual(others, [], `no violation but the refused wasm probe: ${JSON.stringify(r.violations)}`);
    assert.ok(r.violations.length <= 1, `at most the one probe: ${JSON.stringify(r.violations)}`);
  });
}

test("strict CSP, the <script> build (pushwire.js), websocket: the wasm2js core", async () => {
  const r = await run('strict-global.html', 'websocket');
  assert.equal(r.core, 'wasm2js');
  assert.deepEqual(r.fetched, ['/pushwire/pushwire_core_wasm2js.mjs']);
  assert.deepEqual(r.violations.filter((v) => v.blocked !== 'wasm-eval'), [], JSON.stringify(r.violations));
});

// `shared: true`: the core runs in the SharedWorker, whose own policy (the worker script's response
// headers; here none) would let it compile wasm. It runs the core the page would run: wasm2js under
// the page's strict policy, wasm where the page allows it. The page itself fetches no core file.
for (const [file, core] of [['strict.html', 'wasm2js'], ['plain.html', 'wasm']]) {
  test(`shared: true, ${file}: the worker runs the ${core} core`, async () => {
    const r = await run(file, 'websocket', `&shared=${file}`);   // its own worker per page kind
    assert.equal(r.core, core);
    assert.ok(r.states.every((s) => s.core === core && (core === 'wasm') === (s.coreReason === null)), JSON.stringify(r.states));
    assert.deepEqual(r.fetched, [], 'the core is the worker\'s, not the page\'s');
    assert.deepEqual(r.violations.filter((v) => v.blocked !== 'wasm-eval'), [], JSON.stringify(r.violations));
  });
}

for (const transport of ['websocket', 'sse']) {
  test(`CSP with 'wasm-unsafe-eval', ${transport}: the wasm core, the wasm2js file never fetched`, async () => {
    const r = await run('wasm-allowed.html', transport);
    assert.equal(r.core, 'wasm');
    assert.ok(r.states.every((s) => s.core === 'wasm' && s.coreReason === null), JSON.stringify(r.states));
    assert.deepEqual(r.fetched, ['/pushwire/pushwire_core.wasm']);
    assert.deepEqual(r.violations, []);
  });
}

for (const file of ['plain.html', 'plain-global.html']) {
  test(`no CSP (${file}): the wasm core, the wasm2js file never fetched`, async () => {
    const r = await run(file, 'websocket');
    assert.equal(r.core, 'wasm');
    assert.deepEqual(r.fetched, ['/pushwire/pushwire_core.wasm']);
    assert.deepEqual(r.violations, []);
  });
}
