// The Debian package (issue 15 item 3), built by CPack from the native build directory into a temp
// folder: its control fields, contents and conffiles through dpkg-deb; the unit's Type=notify and
// sandboxing and `systemd-analyze verify`; then the package extracted
// into a throwaway root, its binary run with its own config (paths moved into that root), serving
// the packaged demo pages and client files and creating its key file 0600.
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { repo } from '../js/helpers.mjs';
import { ownServer, publishStatus, request, serverBin } from './own-server.mjs';

const run = promisify(execFile);
const buildDir = process.env.PUSHWIRE_BUILD_DIR || dirname(dirname(serverBin));

let dir;
let deb;
let root;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pushwire-deb-'));
  // CPack installs the build into its own staging folder under -B: the build directory is only read.
  await run('cpack', ['--config', join(buildDir, 'CPackConfig.cmake'), '-B', join(dir, 'out')], { maxBuffer: 1 << 24 });
  const debs = (await readdir(join(dir, 'out'))).filter((f) => f.endsWith('.deb'));
  assert.equal(debs.length, 1, `one .deb: ${debs}`);
  deb = join(dir, 'out', debs[0]);
  root = join(dir, 'root');
  await run('dpkg-deb', ['-x', deb, root]);
});
after(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

const field = async (name) => (await run('dpkg-deb', ['-f', deb, name])).stdout.trim();

describe('the .deb', () => {
  test('control fields: name, version, architecture, dependencies from the binary (shlibdeps)', async () => {
    const version = (await readFile(join(buildDir, 'CMakeCache.txt'), 'utf8')).match(/^CMAKE_PROJECT_VERSION:STATIC=(.*)$/m)[1];
    assert.equal(await field('Package'), 'pushwire');
    assert.equal(await field('Version'), version);
    assert.equal(await field('Architecture'), (await run('dpkg', ['--print-architecture'])).stdout.trim());
    assert.match(await field('Maintainer'), /<.+@.+>/);
    assert.equal(await field('Section'), 'net');
    const depends = await field('Depends');
    for (const lib of ['libc6', 'libstdc++6', 'libssl3', 'libsqlite3-0', 'libhiredis0.14', 'libboost-json1.81.0', 'libsystemd0'])
      // (A version only where the library's symbols file asks for one: libsystemd0's sd_notify needs none.)
      assert.match(depends, new RegExp(`(^|, )${lib.replace(/[.+]/g, '\\$&')}( \\(>= [^)]+\\))?(,|$)`), `Depends on ${lib}: ${depends}`);
    assert.match(deb, /pushwire_[\d.]+_\w+\.deb$/);
  });

  test('contents: binary, unit, config, client, demo pages, man page, nothing else', async () => {
    const { stdout } = await run('dpkg-deb', ['-c', deb], { maxBuffer: 1 << 24 });
    const entries = stdout.trim().split('\n').map((l) => {
      const parts = l.split(/\s+/);
      return { mode: parts[0], owner: parts[1], path: parts.slice(5).join(' ').replace(/^\./, '') };
    });
    const files = entries.filter((e) => !e.mode.startsWith('d')).map((e) => e.path);
    const want = {
      '/usr/bin/pushwire-server': '-rwxr-xr-x',
      '/lib/systemd/system/pushwire.service': '-rw-r--r--',
      '/etc/pushwire/pushwire.conf': '-rw-r--r--',
      '/usr/share/pushwire/client/dist/pushwire.mjs': '-rw-r--r--',
      '/usr/share/pushwire/client/dist/pushwire.js': '-rw-r--r--',
      '/usr/share/pushwire/client/dist/pushwire_core.wasm': '-rw-r--r--',
      '/usr/share/pushwire/client/dist/pushwire_core.wasm.br': '-rw-r--r--',
      '/usr/share/pushwire/web/index.html': '-rw-r--r--',
      '/usr/share/man/man1/pushwire-server.1.gz': '-rw-r--r--',
      '/usr/share/doc/pushwire/copyright': '-rw-r--r--',
      '/usr/share/doc/pushwire/CHANGELOG.md': '-rw-r--r--',
    };
    for (const [p, mode] of Object.entries(want)) {
      const e = entries.find((x) => x.path === p);
      assert.ok(e, `${p} is in the package`);
      assert.equal(e.mode, mode, `${p} mode`);
      assert.equal(e.owner, 'root/root', `${p} owner`);
    }
    // Every file of web/ is there, and nothing outside the package's own places (no headers,
    // static libraries or test binaries from other install rules).
    const web = join(repo, 'web');
    const webFiles = (await readdir(web, { recursive: true, withFileTypes: true }))
      .filter((d) => d.isFile()).map((d) => join(d.parentPath ?? d.path, d.name).slice(web.length));
    for (const f of webFiles) assert.ok(files.includes(`/usr/share/pushwire/web${f}`), `web${f} is packaged`);
    const allowed = ['/usr/bin/pushwire-server', '/lib/systemd/system/pushwire.service', '/etc/pushwire/pushwire.conf',
      '/usr/share/pushwire/client/dist/', '/usr/share/pushwire/web/', '/usr/share/man/man1/pushwire-server.1.gz',
      '/usr/share/doc/pushwire/'];
    const stray = files.filter((f) => !allowed.some((a) => (a.endsWith('/') ? f.startsWith(a) : f === a)));
    assert.deepEqual(stray, []);
  });

  test('control: the config is a conffile; maintainer scripts are there', async () => {
    assert.equal((await run('dpkg-deb', ['-I', deb, 'conffiles'])).stdout.trim(), '/etc/pushwire/pushwire.conf');
    const info = (await run('dpkg-deb', ['-I', deb])).stdout;
    for (const s of ['postinst', 'prerm', 'postrm']) assert.match(info, new RegExp(`\\b${s}\\b.*#!/bin/sh`), `${s} script`);
    assert.match((await run('dpkg-deb', ['-I', deb, 'postinst'])).stdout, /systemctl daemon-reload/);
  });

  test('the unit: Type=notify, reload by SIGHUP, state directory, sandbox, descriptor limit', async () => {
    const unit = await readFile(join(root, 'lib/systemd/system/pushwire.service'), 'utf8');
    const settings = unit.split('\n').filter((l) => /^\w+=/.test(l)).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]);
    const get = (k) => settings.filter(([n]) => n === k).map(([, v]) => v);
    const want = {
      Type: 'notify',
      ExecStart: '/usr/bin/pushwire-server --config /etc/pushwire/pushwire.conf',
      ExecReload: '/bin/kill -HUP $MAINPID',
      DynamicUser: 'yes',
      StateDirectory: 'pushwire',
      ProtectSystem: 'strict',
      ProtectHome: 'yes',
      PrivateTmp: 'yes',
      PrivateDevices: 'yes',
      NoNewPrivileges: 'yes',
      RestrictAddressFamilies: 'AF_INET AF_INET6 AF_UNIX AF_NETLINK',
      SystemCallFilter: '@system-service',
      CapabilityBoundingSet: '',
      AmbientCapabilities: '',
      LimitNOFILE: '65536',
      WantedBy: 'multi-user.target',
    };
    for (const [k, v] of Object.entries(want)) assert.deepEqual(get(k), [v], `${k}=${v}`);
    // Why the limit is what it is, next to it.
    assert.match(unit, /# Every connection holds one descriptor[^\n]*\n(#[^\n]*\n)*LimitNOFILE=/);
    // The packaged config keeps its state where StateDirectory= lets the dynamic user write.
    const conf = JSON.parse(await readFile(join(root, 'etc/pushwire/pushwire.conf'), 'utf8'));
    assert.equal(conf.key_file, '/var/lib/pushwire/keys');
    assert.match(conf.data_dir, /^\/var\/lib\/pushwire\//);
  });

  // scripts/setup.sh installs systemd (for systemd-analyze; it need not be PID 1), so this never skips.
  test('systemd-analyze verify accepts the unit', async () => {
    // The unit as installed, with ExecStart pointing at the extracted binary (verify checks it exists).
    const unit = (await readFile(join(root, 'lib/systemd/system/pushwire.service'), 'utf8'))
      .replace('ExecStart=/usr/bin/pushwire-server', `ExecStart=${join(root, 'usr/bin/pushwire-server')}`);
    const path = join(dir, 'pushwire.service');
    await writeFile(path, unit);
    const r = spawnSync('systemd-analyze', ['verify', '--man=no', path], { encoding: 'utf8' });
    const problems = `${r.stdout}${r.stderr}`.split('\n').filter((l) => l.includes('pushwire.service'));
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.deepEqual(problems, [], 'no warning about the unit');
  });

  test('--version, --help and the man page from the package', async () => {
    const bin = join(root, 'usr/bin/pushwire-server');
    assert.match((await run(bin, ['--version'])).stdout, /^pushwire-server \d+\.\d+\.\d+ \(/);
    const help = (await run(bin, ['--help'])).stdout;
    for (const f of ['--config', '--key-file', '--api-key', '--token-secret', '--data-dir', '--tls-cert', '--log-level'])
      assert.ok(help.includes(`  ${f} `), `--help lists ${f}`);
    assert.match(help, /SIGHUP/);
    assert.match(help, /READY=1/);
    const man = gunzipSync(await readFile(join(root, 'usr/share/man/man1/pushwire-server.1.gz'))).toString();
    assert.match(man, /^\.TH PUSHWIRE-SERVER 1 /m);
    assert.match(man, /\.SH SIGNALS/);
    // man-db comes with scripts/setup.sh: the page must render, not only parse as text.
    const r = spawnSync('man', ['-l', '-'], { input: man, encoding: 'utf8', env: { ...process.env, MANPAGER: 'cat', PAGER: 'cat' } });
    assert.equal(r.status, 0, `man -l renders the page: ${r.stderr}`);
    assert.match(r.stdout, /key-file/);
  });

  test('the extracted binary runs with the packaged config and serves the packaged pages and client', async () => {
    // The packaged config with its paths moved into the throwaway root (state into a fresh folder).
    const state = join(dir, 'state');
    await mkdir(state);
    const conf = JSON.parse(await readFile(join(root, 'etc/pushwire/pushwire.conf'), 'utf8'));
    for (const [k, v] of Object.entries(conf)) {
      if (typeof v !== 'string') continue;
      if (v.startsWith('/usr/share/')) conf[k] = join(root, v);
      else if (v.startsWith('/var/lib/pushwire/')) conf[k] = join(state, v.slice('/var/lib/pushwire/'.length));
    }
    const confPath = join(dir, 'pushwire.conf');
    await writeFile(confPath, JSON.stringify(conf));
    const srv = await ownServer({ bin: join(root, 'usr/bin/pushwire-server'), args: ['--config', confPath], dir });
    try {
      const index = await request(`${srv.url}/`);
      assert.equal(index.status, 200);
      assert.equal(index.body, await readFile(join(root, 'usr/share/pushwire/web/index.html'), 'utf8'));
      const mjs = await request(`${srv.url}/pushwire/pushwire.mjs`);
      assert.equal(mjs.status, 200);
      assert.match(mjs.headers['content-type'], /^text\/javascript/);
      assert.equal(mjs.body, await readFile(join(root, 'usr/share/pushwire/client/dist/pushwire.mjs'), 'utf8'));
      const wasm = await request(`${srv.url}/pushwire/pushwire_core.wasm`);
      assert.equal(wasm.status, 200);
      assert.equal(wasm.headers['content-type'], 'application/wasm');
      // The key file of the packaged config: created 0600, its key opens the API.
      const keyFile = join(state, 'keys');
      assert.equal((await stat(keyFile)).mode & 0o777, 0o600);
      const { api_key: key } = JSON.parse(await readFile(keyFile, 'utf8'));
      assert.equal(await publishStatus(srv.url, key), 200);
      assert.ok(existsSync(join(state, 'data')), 'the data dir is in the state folder');
    } finally {
      assert.equal((await srv.stop()).code, 0);
    }
  });
});
