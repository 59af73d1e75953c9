// Keys that survive restarts (issue 15 item 4): --key-file creates the file once (mode 0600, random
// API key and token secret), a restart reuses it, --api-key wins over it, neither start logs a
// secret (nor does /metrics), and an unreadable or corrupt file stops the start with a clear error.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { ownServer, publishStatus, request, signToken, sseStatus, waitFor } from './own-server.mjs';

let dir;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pushwire-keys-'));
});
after(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

test('the first start creates the key file 0600, a restart reuses it, and no log holds a key', async () => {
  const keyFile = join(dir, 'state', 'keys');
  await mkdir(join(dir, 'state'));
  const first = await ownServer({ args: ['--key-file', keyFile], dir });
  const st = await stat(keyFile);
  assert.equal(st.mode & 0o777, 0o600, 'mode 0600');
  const keys = JSON.parse(await readFile(keyFile, 'utf8'));
  assert.deepEqual(Object.keys(keys).sort(), ['api_key', 'token_secret']);
  assert.match(keys.api_key, /^[0-9a-f]{64}$/);
  assert.match(keys.token_secret, /^[0-9a-f]{64}$/);
  assert.notEqual(keys.api_key, keys.token_secret);
  assert.equal(await publishStatus(first.url, keys.api_key), 200, 'the file\'s API key is the one in force');
  assert.equal(await publishStatus(first.url, 'wrong'), 401);
  assert.equal(await sseStatus(first.url, signToken(keys.token_secret)), 200, 'tokens signed with the file\'s secret pass');
  assert.notEqual(await sseStatus(first.url, signToken('another secret')), 200);
  const metrics = await request(`${first.url}/metrics`);
  assert.equal(metrics.status, 200);
  assert.match(metrics.body, /^pushwire_build_info\{/m, 'the real metrics page');
  for (const secret of [keys.api_key, keys.token_secret])
    assert.ok(!metrics.body.includes(secret.slice(0, 16)), 'no key in /metrics');
  assert.equal((await first.stop()).code, 0);
  assert.match(first.log(), /"msg":"key file created","path":"[^"]*\/state\/keys"/);

  const second = await ownServer({ args: ['--key-file', keyFile], dir });
  assert.deepEqual(JSON.parse(await readFile(keyFile, 'utf8')), keys, 'the file is not rewritten');
  assert.equal(await publishStatus(second.url, keys.api_key), 200, 'the same key works after a restart');
  assert.equal(await sseStatus(second.url, signToken(keys.token_secret)), 200);
  await second.stop();
  assert.match(second.log(), /"msg":"key file read"/);

  for (const log of [first.log(), second.log()]) {
    assert.ok(!log.includes(keys.api_key), 'no API key in the log');
    assert.ok(!log.includes(keys.token_secret), 'no token secret in the log');
    assert.ok(!log.includes(keys.api_key.slice(0, 16)), 'not even part of it');
  }
});

test('--api-key and --token-secret win over the key file', async () => {
  const keyFile = join(dir, 'keys-precedence');
  const keys = { api_key: 'file-api-key', token_secret: 'file-token-secret' };
  await writeFile(keyFile, JSON.stringify(keys), { mode: 0o600 });
  const srv = await ownServer({ args: ['--key-file', keyFile, '--api-key', 'flag-api-key'], dir });
  assert.equal(await publishStatus(srv.url, 'flag-api-key'), 200);
  assert.equal(await publishStatus(srv.url, 'file-api-key'), 401);
  assert.equal(await sseStatus(srv.url, signToken('file-token-secret')), 200, 'the file\'s secret fills what no flag set');
  await srv.stop();
  // The environment counts as explicit too.
  const env = await ownServer({ args: ['--key-file', keyFile], env: { PUSHWIRE_TOKEN_SECRET: 'env-secret' }, dir });
  assert.equal(await sseStatus(env.url, signToken('env-secret')), 200);
  assert.notEqual(await sseStatus(env.url, signToken('file-token-secret')), 200);
  assert.equal(await publishStatus(env.url, 'file-api-key'), 200);
  await env.stop();
  for (const log of [srv.log(), env.log()])
    for (const secret of ['flag-api-key', 'file-api-key', 'file-token-secret', 'env-secret']) assert.ok(!log.includes(secret));
});

// DECISIONS.md §9: without a key the server makes one for the run and prints it, on stdout only.
test('without any key the run gets a printed key, on stdout and never in the log', async () => {
  const srv = await ownServer({ args: [], dir });
  const printed = await waitFor(() => /API key for this run[^:]*: ([0-9a-f]{32})\n/.exec(srv.stdout())?.[1],
    { what: 'the printed key' });
  assert.equal(await publishStatus(srv.url, ''), 401);
  assert.equal(await publishStatus(srv.url, 'not-the-key'), 401);
  assert.equal(await publishStatus(srv.url, printed), 200, 'the printed key opens the API');
  await srv.stop();
  assert.match(srv.stderr(), /"msg":"no api key configured: one was made for this run and printed on stdout/);
  assert.ok(!srv.stderr().includes(printed), 'the key is not in the log');
  assert.doesNotMatch(srv.stderr(), /api_key"?\s*:/, 'no api_key field in any line');
});

for (const [what, prepare, why] of [
  ['corrupt (not JSON)', (p) => writeFile(p, '{"api_key": "abc", ', { mode: 0o600 }), /is not a JSON object/],
  ['missing its token secret', (p) => writeFile(p, '{"api_key":"abc"}', { mode: 0o600 }), /needs both api_key and token_secret/],
  ['with an empty key', (p) => writeFile(p, '{"api_key":"","token_secret":"x"}', { mode: 0o600 }), /api_key must be a non-empty string/],
  ['with an unknown field', (p) => writeFile(p, '{"api_key":"a","token_secret":"b","apikey":"c"}', { mode: 0o600 }), /unknown field apikey/],
  // (Tests may run as root, who reads a 0000 file: a folder in its place cannot be read by anyone.)
  ['unreadable (a folder)', (p) => mkdir(p), /cannot read key file .*: Is a directory/],
  ['in a folder that does not exist', async () => {}, /cannot create key file .*: No such file or directory/],
]) {
  test(`a key file ${what} stops the start with a clear error`, async () => {
    const p = what.includes('does not exist') ? join(dir, 'no-such-folder', 'keys') : join(dir, `bad-${what.replace(/\W+/g, '-')}`);
    await prepare(p);
    const srv = await ownServer({ args: ['--key-file', p], dir, expectExit: true });
    assert.notEqual(srv.exited().code, 0, 'exits non-zero');
    assert.match(srv.log(), /"level":"error","msg":"cannot start"/);
    assert.match(srv.log(), why);
    assert.ok(srv.log().includes(p), 'names the file');
  });
}
