// The npm package as published (issue 15 item 8): the real `npm pack` lists exactly the client build,
// its types, the client's README (client-wasm/npm-readme.md swapped in by prepack, see
// scripts/npm-readme.mjs), CHANGELOG.md, LICENSE and package.json — no server source, no test — and
// the repository's own README.md is the server's again afterwards.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { repo } from './helpers.mjs';

const run = promisify(execFile);
const EXPECTED = [
  'CHANGELOG.md',
  'LICENSE',
  'README.md',
  'client-wasm/dist/pushwire.js',
  'client-wasm/dist/pushwire.mjs',
  'client-wasm/dist/pushwire.node.mjs',
  'client-wasm/dist/pushwire_core.wasm',
  'client-wasm/dist/pushwire_core_wasm2js.mjs',
  'client-wasm/dist/pushwire_shared.mjs',
  'client-wasm/types/global.d.ts',
  'client-wasm/types/index.d.ts',
  'client-wasm/types/wasm.d.ts',
  'client-wasm/types/wasm2js.d.ts',
  'package.json',
];

let dir;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pushwire-npm-pack-'));
});
after(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

test('npm pack --dry-run --json lists exactly the published files', async () => {
  const serverReadme = await readFile(join(repo, 'README.md'), 'utf8');
  const { stdout } = await run('npm', ['pack', '--dry-run', '--json'], { cwd: repo, maxBuffer: 1 << 24 });
  const [info] = JSON.parse(stdout);
  assert.equal(info.name, 'pushwire');
  const files = info.files.map((f) => f.path).sort();
  assert.deepEqual(files, [...EXPECTED].sort());
  // The README in the list has the client README's size, not the server's.
  const clientReadme = await readFile(join(repo, 'client-wasm/npm-readme.md'), 'utf8');
  assert.equal(info.files.find((f) => f.path === 'README.md').size, Buffer.byteLength(clientReadme));
  assert.notEqual(Buffer.byteLength(clientReadme), Buffer.byteLength(serverReadme));
  // postpack put the server's README back.
  assert.equal(await readFile(join(repo, 'README.md'), 'utf8'), serverReadme);
  assert.ok(!existsSync(join(repo, '.npm-pack')), 'no leftover of the swap');
});

test('the tarball holds the client README, the changelog and the repository fields', async () => {
  const { stdout } = await run('npm', ['pack', '--json', '--pack-destination', dir], { cwd: repo, maxBuffer: 1 << 24 });
  const [info] = JSON.parse(stdout);
  const tgz = join(dir, info.filename);
  const { stdout: list } = await run('tar', ['-tzf', tgz]);
  assert.deepEqual(list.trim().split('\n').map((p) => p.replace(/^package\//, '')).sort(), [...EXPECTED].sort());
  const { stdout: readme } = await run('tar', ['-xzOf', tgz, 'package/README.md']);
  assert.equal(readme, await readFile(join(repo, 'client-wasm/npm-readme.md'), 'utf8'));
  assert.match(readme, /npm install pushwire/);
  assert.doesNotMatch(readme, /scripts\/(start|test)\.sh/, 'not the server README');
  const { stdout: changelog } = await run('tar', ['-xzOf', tgz, 'package/CHANGELOG.md']);
  assert.match(changelog, new RegExp(`^## ${info.version.replace(/\./g, '\\.')}\\b`, 'm'), 'the changelog starts with this version');
  const pkg = JSON.parse((await run('tar', ['-xzOf', tgz, 'package/package.json'])).stdout);
  assert.equal(pkg.repository.type, 'git');
  assert.match(pkg.repository.url, /^git\+https:\/\/.+\.git$/);
  assert.match(pkg.homepage, /^https:\/\//);
  assert.match(pkg.bugs.url, /^https:\/\//);
});
