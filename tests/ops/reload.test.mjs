// systemctl reload = SIGHUP (issue 15 item 3): the server parses its configuration again and applies
// the keys (config file or key file), the token secret, the log level and the limits checked at the
// door at once; the log names what changed, never a key; settings that need a restart are named and
// ignored; a broken config file changes nothing.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { ownServer, publishStatus, request, signToken, sseStatus, waitFor } from './own-server.mjs';

let dir;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pushwire-reload-'));
});
after(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

// Sends SIGHUP and resolves with the log written by that reload once its "reloaded" line is out.
async function reload(srv) {
  const before = srv.log().length;
  const count = (s) => (s.match(/"msg":"reloaded"/g) || []).length;
  const n = count(srv.log());
  srv.proc.kill('SIGHUP');
  // A config file that does not parse ends the reload with its error line instead.
  await waitFor(() => count(srv.log()) > n || srv.log().slice(before).includes('"msg":"reload: bad configuration'),
    { what: 'the reload to finish' });
  return srv.log().slice(before);
}

test('SIGHUP: a new API key and token secret in the config file apply at once, the log names them only', async () => {
  const conf = join(dir, 'a.conf');
  const base = { address: '127.0.0.1', log_level: 'info' };
  await writeFile(conf, JSON.stringify({ ...base, api_key: 'old-api-key-1', token_secret: 'old-token-secret-1' }));
  const srv = await ownServer({ args: ['--config', conf], dir });
  try {
    assert.equal(await publishStatus(srv.url, 'old-api-key-1'), 200);
    assert.equal(await sseStatus(srv.url, signToken('old-token-secret-1')), 200);

    await writeFile(conf, JSON.stringify({ ...base, api_key: 'new-api-key-2', token_secret: 'new-token-secret-2' }));
    const log = await reload(srv);
    assert.equal(await publishStatus(srv.url, 'old-api-key-1'), 401, 'the old key is refused');
    assert.equal(await publishStatus(srv.url, 'new-api-key-2'), 200, 'the new key is accepted');
    assert.notEqual(await sseStatus(srv.url, signToken('old-token-secret-1')), 200);
    assert.equal(await sseStatus(srv.url, signToken('new-token-secret-2')), 200);
    assert.match(log, /"msg":"api_key changed"/);
    assert.match(log, /"msg":"token_secret changed"/);
    assert.match(log, /"msg":"reloaded","changed":"api_key,token_secret","ignored":"nothing"/);

    // Nothing changed: nothing said to have changed.
    const again = await reload(srv);
    assert.doesNotMatch(again, /"msg":"(api_key|token_secret) changed"/);
    assert.match(again, /"changed":"nothing"/);
  } finally {
    await srv.stop();
  }
  for (const secret of ['old-api-key-1', 'new-api-key-2', 'old-token-secret-1', 'new-token-secret-2'])
    assert.ok(!srv.log().includes(secret), `the log never shows ${secret}`);
});

test('SIGHUP: a key taken out of the config is replaced by a printed one, as a start without one does', async () => {
  const conf = join(dir, 'd.conf');
  await writeFile(conf, JSON.stringify({ api_key: 'removed-key-1' }));
  const srv = await ownServer({ args: ['--config', conf], dir });
  try {
    assert.equal(await publishStatus(srv.url, 'removed-key-1'), 200);
    await writeFile(conf, JSON.stringify({}));
    const log = await reload(srv);
    assert.match(log, /"level":"warn","msg":"no api key configured: one was made for this run and printed on stdout/);
    assert.match(log, /"msg":"reloaded","changed":"api_key"/);
    assert.equal(await publishStatus(srv.url, 'removed-key-1'), 401, 'the removed key no longer opens the API');
    const printed = await waitFor(() => /API key for this run[^:]*: ([0-9a-f]{32})\n/.exec(srv.stdout())?.[1],
      { what: 'the new key printed on stdout' });
    assert.ok(!srv.stderr().includes(printed), 'and not logged');
    assert.equal(await publishStatus(srv.url, printed), 200);
    // Still none: the run's key stays and nothing is said to have changed.
    assert.match(await reload(srv), /"changed":"nothing"/);
  } finally {
    await srv.stop();
  }
  assert.ok(!srv.log().includes('removed-key-1'));
});

test('SIGHUP re-reads the key file', async () => {
  const keyFile = join(dir, 'keys');
  await writeFile(keyFile, JSON.stringify({ api_key: 'file-key-1', token_secret: 'file-secret-1' }), { mode: 0o600 });
  const srv = await ownServer({ args: ['--key-file', keyFile], dir });
  try {
    assert.equal(await publishStatus(srv.url, 'file-key-1'), 200);
    await writeFile(keyFile, JSON.stringify({ api_key: 'file-key-2', token_secret: 'file-secret-1' }), { mode: 0o600 });
    const log = await reload(srv);
    assert.match(log, /"msg":"api_key changed"/);
    assert.doesNotMatch(log, /"msg":"token_secret changed"/);
    assert.equal(await publishStatus(srv.url, 'file-key-1'), 401);
    assert.equal(await publishStatus(srv.url, 'file-key-2'), 200);

    // A key file broken meanwhile: the keys in force stay, the log says why.
    await writeFile(keyFile, 'not json', { mode: 0o600 });
    const bad = await reload(srv);
    assert.match(bad, /"level":"error","msg":"reload: the keys stay as they were","error":"key file [^"]*keys is not a JSON object"/);
    assert.equal(await publishStatus(srv.url, 'file-key-2'), 200);
  } finally {
    await srv.stop();
  }
  assert.ok(!srv.log().includes('file-key-') && !srv.log().includes('file-secret-'));
});

test('SIGHUP: log level changes at once; settings that need a restart are named and ignored; a bad file changes nothing', async () => {
  const conf = join(dir, 'b.conf');
  const base = { api_key: 'k1', log_level: 'info', max_message_bytes: 1000 };
  await writeFile(conf, JSON.stringify(base));
  const srv = await ownServer({ args: ['--config', conf], dir });
  try {
    // At info the API's request line (debug) is not written.
    await publishStatus(srv.url, 'k1');
    assert.doesNotMatch(srv.log(), /"msg":"http request"/);

    await writeFile(conf, JSON.stringify({ ...base, log_level: 'debug', max_message_bytes: 10, idle_timeout_ms: 1234 }));
    const log = await reload(srv);
    assert.match(log, /"msg":"log_level changed","from":"info","to":"debug"/);
    assert.match(log, /"level":"warn","msg":"setting changed, needs a restart: ignored","setting":"idle-timeout-ms"/);
    assert.match(log, /"level":"warn","msg":"setting changed, needs a restart: ignored","setting":"max-message-bytes"/);
    assert.match(log, /"msg":"reloaded","changed":"log_level","ignored":"idle-timeout-ms,max-message-bytes"/);
    // debug is in force: the next API call is logged; the message limit is still the old one.
    const big = await request(`${srv.url}/api/publish`, {
      method: 'POST', headers: { Authorization: 'Bearer k1', 'Content-Type': 'application/json' },
      body: JSON.stringify({ channel: 'keys', data: 'x'.repeat(100) }),
    });
    assert.equal(big.status, 200, 'max_message_bytes was not applied');
    await waitFor(() => srv.log().includes('"msg":"http request"'), { what: 'a debug line' });

    await writeFile(conf, '{"api_key": "k2", ');
    const bad = await reload(srv);
    assert.match(bad, /"level":"error","msg":"reload: bad configuration, nothing changed","error":"config file [^"]* is not a JSON object"/);
    assert.equal(await publishStatus(srv.url, 'k1'), 200, 'the key in force stays');
  } finally {
    await srv.stop();
  }
});

// An SSE stream held open until close() (its per-address slot with it); resolves with its status.
function openStream(url) {
  return new Promise((resolve, reject) => {
    const req = http.get(`${url}/sse?channels=limits`, { agent: false }, (res) => {
      res.resume();
      resolve({ status: res.statusCode, close: () => req.destroy() });
    });
    req.on('error', reject);
  });
}

test('SIGHUP: the limits checked at the door (per-address connections) apply to the next connection', async () => {
  const conf = join(dir, 'c.conf');
  const base = { api_key: 'k1', log_level: 'info' };
  await writeFile(conf, JSON.stringify(base));
  const srv = await ownServer({ args: ['--config', conf], dir });
  const open = [];
  try {
    open.push(await openStream(srv.url), await openStream(srv.url));
    assert.deepEqual(open.map((s) => s.status), [200, 200], 'no per-address limit at first');
    for (const s of open.splice(0)) s.close();

    await writeFile(conf, JSON.stringify({ ...base, max_connections_per_ip: 1 }));
    const log = await reload(srv);
    assert.match(log, /"msg":"limit changed","setting":"max_connections_per_ip","from":"0","to":"1"/);
    assert.match(log, /"msg":"reloaded","changed":"max_connections_per_ip","ignored":"nothing"/);
    // (Streams still closing from above may hold no slot: the limit was off when they opened.)
    open.push(await openStream(srv.url));
    assert.equal(open[0].status, 200);
    const refused = await openStream(srv.url);
    open.push(refused);
    assert.equal(refused.status, 503, 'a second stream from the same address is refused');

    await writeFile(conf, JSON.stringify({ ...base, max_connections_per_ip: 2 }));
    assert.match(await reload(srv), /"setting":"max_connections_per_ip","from":"1","to":"2"/);
    const second = await openStream(srv.url);
    open.push(second);
    assert.equal(second.status, 200, 'raised: the second stream opens');
  } finally {
    for (const s of open) s.close();
    await srv.stop();
  }
});
