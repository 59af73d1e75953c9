// Static files as a CDN would serve them (server/http/static_files.hpp), with real requests to the
// real server: the build's precompressed siblings chosen by Accept-Encoding, validators and 304s,
// Cache-Control by versioned URL, MIME types. The client root is a copy of client-wasm/dist in a
// temp dir, so the test can make a sibling stale.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import { repo, serverBin } from '../js/helpers.mjs';
import { httpsRequest as request, startServerProc } from './server-proc.mjs';

const dist = join(repo, 'client-wasm/dist');
let root;
let srv;
before(async () => {
  for (const f of ['pushwire.mjs.br', 'pushwire.mjs.gz', 'pushwire_core.wasm.br'])
    assert.ok(existsSync(join(dist, f)), `${f} missing: run client-wasm/build.mjs (npm run build)`);
  root = mkdtempSync(join(tmpdir(), 'pushwire-static-'));
  cpSync(dist, join(root, 'dist'), { recursive: true, preserveTimestamps: true });
  srv = await startServerProc({ extra: ['--client-root', root] });
});
after(async () => {
  await srv?.stop();
  rmSync(root, { recursive: true, force: true });
});

const get = (path, headers = {}) => request(srv.url + path, { headers });
const raw = (f) => readFileSync(join(root, 'dist', f));

test('brotli, then gzip, then identity, by Accept-Encoding; the bytes decode to the file', async () => {
  const file = raw('pushwire.mjs');
  const br = await get('/pushwire/pushwire.mjs', { 'Accept-Encoding': 'gzip, deflate, br' });
  assert.equal(br.status, 200);
  assert.equal(br.headers['content-encoding'], 'br');
  assert.equal(br.headers['content-type'], 'text/javascript');
  assert.equal(br.headers.vary, 'Accept-Encoding');
  assert.ok(brotliDecompressSync(br.body).equals(file));
  assert.ok(br.body.length < file.length / 2, `brotli ${br.body.length} of ${file.length} bytes`);

  const gz = await get('/pushwire/pushwire.mjs', { 'Accept-Encoding': 'gzip' });
  assert.equal(gz.headers['content-encoding'], 'gzip');
  assert.ok(gunzipSync(gz.body).equals(file));

  const refused = await get('/pushwire/pushwire.mjs', { 'Accept-Encoding': 'br;q=0, gzip;q=0' });
  assert.equal(refused.headers['content-encoding'], undefined);
  assert.ok(refused.body.equals(file));
  const none = await get('/pushwire/pushwire.mjs');
  assert.equal(none.headers['content-encoding'], undefined);
  assert.ok(none.body.equals(file));
  // Three representations, three strong validators.
  assert.equal(new Set([br.headers.etag, gz.headers.etag, none.headers.etag]).size, 3);

  const wasm = await get('/pushwire/pushwire_core.wasm', { 'Accept-Encoding': 'br' });
  assert.equal(wasm.headers['content-type'], 'application/wasm');
  assert.equal(wasm.headers['content-encoding'], 'br');
  assert.ok(brotliDecompressSync(wasm.body).equals(raw('pushwire_core.wasm')));
});

test('ETag and Last-Modified revalidate with 304 and no body', async () => {
  const first = await get('/pushwire/pushwire.mjs', { 'Accept-Encoding': 'br' });
  assert.equal(first.headers['cache-control'], 'no-cache');
  assert.match(first.headers['last-modified'], /^[A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d GMT$/);
  const again = await get('/pushwire/pushwire.mjs', { 'Accept-Encoding': 'br', 'If-None-Match': first.headers.etag });
  assert.equal(again.status, 304);
  assert.equal(again.body.length, 0);
  assert.equal(again.headers.etag, first.headers.etag);
  // The validator of another representation does not match this one.
  const other = await get('/pushwire/pushwire.mjs', { 'Accept-Encoding': 'gzip', 'If-None-Match': first.headers.etag });
  assert.equal(other.status, 200);
  const ims = await get('/pushwire/pushwire.mjs', { 'If-Modified-Since': first.headers['last-modified'] });
  assert.equal(ims.status, 304);
  const older = await get('/pushwire/pushwire.mjs', { 'If-Modified-Since': 'Mon, 01 Jan 2001 00:00:00 GMT' });
  assert.equal(older.status, 200);
  // If-None-Match wins over If-Modified-Since (RFC 9110 §13.2.2).
  const both = await get('/pushwire/pushwire.mjs',
    { 'If-None-Match': '"nope"', 'If-Modified-Since': first.headers['last-modified'] });
  assert.equal(both.status, 200);
});

test('a URL naming this release is cached for a year; any other is revalidated', async () => {
  const version = execFileSync(serverBin, ['--version']).toString().split(' ')[1];
  const pinned = await get(`/pushwire/pushwire.mjs?v=${version}`);
  assert.equal(pinned.headers['cache-control'], 'public, max-age=31536000, immutable');
  const wrong = await get('/pushwire/pushwire.mjs?v=0.0.0-not-this');
  assert.equal(wrong.headers['cache-control'], 'no-cache');
});

test('a precompressed sibling older than its file is not served', async () => {
  const js = join(root, 'dist', 'pushwire.js');
  const future = new Date(Date.now() + 3600_000);
  utimesSync(js, future, future);
  const r = await get('/pushwire/pushwire.js', { 'Accept-Encoding': 'br, gzip' });
  assert.equal(r.status, 200);
  assert.equal(r.headers['content-encoding'], undefined);
  assert.ok(r.body.equals(raw('pushwire.js')));
});
