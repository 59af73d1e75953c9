// Bundlers with no extra config (issue 16 item 3): the package as `npm pack` ships it goes into an
// app's node_modules; esbuild, Vite, webpack 5 and Rollup each build the same small page that does
// `import { Client } from 'pushwire'`; each build is served as the web root of a real server and
// run in Chromium, where it must load the .wasm the bundler emitted (not the server's own copy under
// /pushwire/), connect and receive a numbered stream. The builds run through each bundler's own
// JS API with no config file; what a bundler needs beyond that is the one line docs/client.md
// ("Bundlers") documents, and the build functions below hold exactly that line and nothing more.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { freePort } from '../cluster/cluster.mjs';
import { launchBrowser, openPage, ROOT, startServer, unique, waitFor } from './helpers.mjs';

const run = promisify(execFile);
let dir, app, browser;

// The page every bundler builds. `channel` (and `server`, where the page has another origin) come
// from the query string.
const MAIN = `import { Client } from 'pushwire';
const q = new URLSearchParams(location.search);
const pw = (window.pw = { state: null, transport: null, subscribed: false, got: [], reasons: [] });
const client = (pw.client = new Client(q.get('server') || location.origin, { transports: ['websocket'], shared: q.get('shared') || false, WASM_OPTION }));
client.on('state', (s) => { pw.state = s.to; pw.transport = client.transport; pw.reasons.push(s.reason); });
client.subscribe(q.get('channel'), {
  onSubscribed() { pw.subscribed = true; },
  onMessage(data) { pw.got.push(data.n); },
});
`;
// esbuild copies no asset named by \`new URL(…, import.meta.url)\`: its documented line is the
// package's wasm subpath with the file loader.
const ESBUILD_MAIN = "import wasmUrl from 'pushwire/pushwire_core.wasm';\n" + MAIN.replace('WASM_OPTION', 'wasmUrl');
const PLAIN_MAIN = MAIN.replace(', WASM_OPTION', '');

const page = (script) => `<!doctype html><html><head><meta charset="utf-8"><title>bundled</title></head>
<body><script type="module" src="${script}"></script></body></html>\n`;

const builds = {
  async esbuild(out) {
    const esbuild = await import('esbuild');
    await esbuild.build({
      entryPoints: [join(app, 'src/main-esbuild.js')], bundle: true, format: 'esm', minify: true,
      outfile: join(out, 'main.js'), logLevel: 'warning',
      loader: { '.wasm': 'file' },   // the documented line
    });
    // The documented line for `shared: true`: esbuild does not emit `new URL(…)` assets either.
    await copyFile(join(app, 'node_modules/pushwire/client-wasm/dist/pushwire_shared.mjs'), join(out, 'pushwire_shared.mjs'));
    await writeFile(join(out, 'index.html'), page('main.js'));
  },
  async vite(out) {
    const { build } = await import('vite');
    await build({ root: app, configFile: false, logLevel: 'warn', build: { outDir: out, emptyOutDir: true } });
  },
  async webpack(out) {
    const { default: webpack } = await import('webpack');
    const stats = await new Promise((resolve, reject) => webpack({
      mode: 'production', context: app, entry: './src/main.js', output: { path: out, filename: 'main.js' },
    }, (err, s) => (err ? reject(err) : resolve(s))));
    assert.ok(!stats.hasErrors(), stats.toString('errors-only'));
    await writeFile(join(out, 'index.html'), page('main.js'));
  },
  async rollup(out) {
    const { rollup } = await import('rollup');
    const { nodeResolve } = await import('@rollup/plugin-node-resolve');
    const { importMetaAssets } = await import('@web/rollup-plugin-import-meta-assets');
    const bundle = await rollup({
      input: join(app, 'src/main.js'),
      // nodeResolve is how Rollup finds node_modules at all; importMetaAssets is the documented line.
      plugins: [nodeResolve({ browser: true }), importMetaAssets()],
      onwarn: (w) => { throw new Error(`rollup: ${w.message}`); },
    });
    await bundle.write({ dir: out, format: 'es', entryFileNames: 'main.js' });
    await bundle.close();
    await writeFile(join(out, 'index.html'), page('main.js'));
  },
};

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pushwire-bundlers-'));
  app = join(dir, 'app');
  const pkg = join(app, 'node_modules/pushwire');
  await mkdir(pkg, { recursive: true });
  await mkdir(join(app, 'src'));
  // The tarball npm would publish, unpacked where `npm install` puts it.
  const { stdout } = await run('npm', ['pack', '--json', '--pack-destination', dir], { cwd: ROOT, maxBuffer: 1 << 24 });
  const [info] = JSON.parse(stdout);
  await run('tar', ['-xzf', join(dir, info.filename), '-C', pkg, '--strip-components=1']);
  await writeFile(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
  await writeFile(join(app, 'src/main.js'), PLAIN_MAIN);
  await writeFile(join(app, 'src/main-esbuild.js'), ESBUILD_MAIN);
  await writeFile(join(app, 'index.html'), page('/src/main.js'));   // Vite's entry
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

// Opens the bundled page at `base`, its client connecting to `server`; checks a numbered stream.
// `shared`: the client's `shared` option (a string key), and the channel to share.
async function openBundled(base, server, name, { shared = '', channel = unique('bundled') } = {}) {
  const q = (base === server.url ? '' : `&server=${encodeURIComponent(server.url)}`) + (shared ? `&shared=${shared}` : '');
  const { page, watcher } = await openPage(browser.context, base, `/index.html?channel=${channel}${q}`, {
    ready: () => window.pw?.subscribed && window.pw.state === 'connected',
  }).catch((err) => { throw new Error(`${name}: ${err.message}`); });
  if (shared) {
    page.watcher = watcher;
    return page;
  }
  for (let n = 1; n <= 5; n++) await server.publish(channel, { n });
  await page.waitForFunction(() => window.pw.got.length >= 5, null, { polling: 20, timeout: 10000 });
  assert.deepEqual(await page.evaluate(() => window.pw.got), [1, 2, 3, 4, 5]);
  assert.equal(await page.evaluate(() => window.pw.transport), 'websocket');
  page.watcher = watcher;
  return page;
}

// The paths of the page's .wasm loads; exactly one is expected.
async function wasmLoads(page) {
  const requested = await page.evaluate(() => performance.getEntriesByType('resource').map((e) => new URL(e.name).pathname));
  const wasm = requested.filter((u) => u.endsWith('.wasm'));
  assert.equal(wasm.length, 1, `one wasm load: ${requested}`);
  return wasm;
}

for (const name of Object.keys(builds)) {
  test(`${name} builds a page that loads the emitted wasm and receives a numbered stream`, { timeout: 60000 }, async (t) => {
    const out = join(dir, `out-${name}`);
    await mkdir(out, { recursive: true });
    const started = Date.now();
    await builds[name](out);
    const buildMs = Date.now() - started;
    const emitted = (await readdir(out, { recursive: true })).filter((f) => f.endsWith('.wasm'));
    t.diagnostic(`${name}: built in ${buildMs} ms, wasm emitted as ${emitted}`);
    assert.equal(emitted.length, 1, `${name} emitted the wasm once (files: ${await readdir(out, { recursive: true })})`);

    const server = await startServer(['--web-root', out]);
    try {
      const p = await openBundled(server.url, server, name);
      // The wasm came from the bundle's own output, as application/wasm.
      const wasm = await wasmLoads(p);
      assert.ok(!wasm[0].startsWith('/pushwire/'), `the bundle's own wasm, not the server's: ${wasm[0]}`);
      assert.ok(emitted.some((f) => wasm[0].endsWith('/' + f.split('/').pop())), `${wasm[0]} is one of ${emitted}`);
      const res = await p.request.get(server.url + wasm[0]);
      assert.equal(res.headers()['content-type'], 'application/wasm');
      p.watcher.check(assert);
      await p.close();

      // `shared: true` from the same build: two pages, one connection (the SharedWorker is the
      // bundle's copy of pushwire_shared.mjs), both get the stream.
      const channel = unique('bundled-shared');
      const pages = [];
      for (let i = 0; i < 2; i++) pages.push(await openBundled(server.url, server, `${name} shared`, { shared: name, channel }));
      const ids = await Promise.all(pages.map((s) => s.evaluate(() => window.pw.client.clientId)));
      const sharedJs = (await pages[0].evaluate(() => performance.getEntriesByType('resource').map((e) => new URL(e.name).pathname)))
        .filter((u) => u.endsWith('.mjs'));   // webpack names assets by hash alone
      t.diagnostic(`${name}: shared module loaded from ${sharedJs}`);
      assert.ok(sharedJs.length === 1 && !sharedJs[0].startsWith('/pushwire/'), `the bundle's own pushwire_shared.mjs: ${sharedJs}`);
      assert.ok(ids[0] && ids[0] === ids[1], `one connection for both pages: ${ids}`);
      await waitFor(async () => Object.values((await server.api('GET', '/api/stats')).connections).reduce((a, b) => a + b) === 1,
        { what: `${name}: one server connection for two shared pages` });
      for (let n = 1; n <= 5; n++) await server.publish(channel, { n });
      for (const s of pages) {
        await s.waitForFunction(() => window.pw.got.length >= 5, null, { polling: 20, timeout: 10000 });
        assert.deepEqual(await s.evaluate(() => window.pw.got), [1, 2, 3, 4, 5]);
        s.watcher.check(assert);
        await s.close();
      }
    } finally {
      await server.stop();
    }
  });
}

// Vite's dev server pre-bundles dependencies into node_modules/.vite/deps/, where no .wasm is next
// to the module (the page gets index.html instead and the client closes with 4018); the documented
// line keeps pushwire out of the pre-bundling. The page is on Vite's origin, the server on its own.
test('vite dev server: with optimizeDeps.exclude the page loads the package\'s wasm and receives a numbered stream', { timeout: 60000 }, async () => {
  const { createServer } = await import('vite');
  const server = await startServer();
  const dev = await createServer({
    root: app, configFile: false, logLevel: 'warn',
    optimizeDeps: { exclude: ['pushwire'] },   // the documented line
    server: { host: '127.0.0.1', port: await freePort(), strictPort: true, hmr: false },
  });
  try {
    await dev.listen();
    const base = dev.resolvedUrls.local[0].replace(/\/$/, '');
    const p = await openBundled(base, server, 'vite dev');
    const wasm = await wasmLoads(p);
    assert.equal(wasm[0], '/node_modules/pushwire/client-wasm/dist/pushwire_core.wasm');
    p.watcher.check(assert);
    await p.close();
  } finally {
    await dev.close();
    await server.stop();
  }
});
