// Packaging as a new user meets it: `npm pack`, install the tarball (with ws) into an empty folder,
// `import { Client } from 'pushwire'` from a script there, and receive one message from the real
// server. Also checks what the tarball holds and that the browser entry imports nothing of Node's.
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { repo, startServer, waitFor } from './helpers.mjs';

const run = promisify(execFile);
let srv;
let dir;
before(async () => {
  srv = await startServer();
  dir = await mkdtemp(join(tmpdir(), 'pushwire-pack-'));
});
after(async () => {
  await srv?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

test('npm pack -> npm install in an empty folder -> import { Client } from "pushwire" receives a message', { timeout: 180000 }, async () => {
  const { stdout } = await run('npm', ['pack', '--json', '--pack-destination', dir], { cwd: repo, maxBuffer: 1 << 24 });
  const [info] = JSON.parse(stdout);
  assert.equal(info.name, 'pushwire');
  assert.equal(info.version, '0.1.0');
  const files = info.files.map((f) => f.path).sort();
  const expected = ['client-wasm/dist/pushwire.js', 'client-wasm/dist/pushwire.mjs', 'client-wasm/dist/pushwire.node.mjs',
    'client-wasm/dist/pushwire_core.wasm', 'client-wasm/dist/pushwire_core_wasm2js.mjs', 'client-wasm/dist/pushwire_shared.mjs', 'client-wasm/types/index.d.ts',
    'client-wasm/types/wasm.d.ts', 'client-wasm/types/wasm2js.d.ts', 'client-wasm/types/global.d.ts', 'package.json'];
  for (const f of expected) assert.ok(files.includes(f), `tarball holds ${f}`);
  const extra = files.filter((f) => !expected.includes(f) && !/^(README(\.md)?|CHANGELOG\.md|LICEN[SC]E(\.md|\.txt)?)$/i.test(f));
  assert.deepEqual(extra, [], 'nothing but the client build, types, README, changelog and licence');

  const app = join(dir, 'app');
  await run('mkdir', ['-p', app]);
  await writeFile(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
  await run('npm', ['install', join(dir, info.filename), 'ws', '--prefer-offline', '--no-audit', '--no-fund'],
    { cwd: app, maxBuffer: 1 << 24 });

  const browserEntry = await readFile(join(app, 'node_modules/pushwire/client-wasm/dist/pushwire.mjs'), 'utf8');
  assert.doesNotMatch(browserEntry, /["']node:|from\s*["']ws["']|import\(\s*["']ws["']\)/, 'browser entry imports no Node module');

  await writeFile(join(app, 'main.mjs'), `
import { Client } from 'pushwire';
console.log('entry ' + import.meta.resolve('pushwire'));
const client = new Client(process.argv[2]);
client.subscribe('welcome', {
  onSubscribed() { console.log('subscribed ' + client.transport); },
  onMessage(data, { offset }) { console.log('message ' + JSON.stringify(data) + ' ' + offset); client.close(); },
});
`);
  const p = spawn(process.execPath, ['main.mjs', srv.url], { cwd: app, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  p.stdout.on('data', (d) => { out += d; });
  p.stderr.on('data', (d) => { err += d; });
  let exit = null;
  p.on('exit', (code) => { exit = { code }; });
  try {
    await waitFor(() => out.includes('subscribed'), { what: `the app to subscribe (stderr: ${err})` });
    assert.match(out, /entry file:.*node_modules\/pushwire\/client-wasm\/dist\/pushwire\.node\.mjs/);
    assert.match(out, /subscribed websocket/, 'ws was found as the WebSocket implementation');
    await srv.publish('welcome', { hello: 'new user' });
    await waitFor(() => exit, { what: `the app to exit (stdout: ${out}, stderr: ${err})` });
    assert.equal(exit.code, 0, err);
    assert.match(out, /message \{"hello":"new user"\} \d+/);
  } finally {
    if (!exit) p.kill('SIGKILL');
  }
});
