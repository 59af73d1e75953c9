// TLS on the one listening port (--tls-cert/--tls-key): certificates made by openssl in the test
// (certs.mjs: root CA -> intermediate -> server, the file holding the chain), the real server, and
// clients that trust only the test root: Node's TLS directly, the JS client over wss / SSE / polling
// (child processes with NODE_EXTRA_CA_CERTS), and a SIGHUP reload in the middle of open streams.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { copyFile, readFile, writeFile } from 'node:fs/promises';
import https from 'node:https';
import net from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, test } from 'node:test';
import { WebSocket } from 'ws';
import { repo } from '../js/helpers.mjs';
import { makePki } from './certs.mjs';
import { handshake, httpsRequest, startServerProc as startTlsServer, waitFor } from '../ops/server-proc.mjs';

let pki;
let first;
let srv;
let liveCert;
let liveKey;
before(async () => {
  pki = await makePki();
  first = await pki.issue('pushwire-test-a');
  // The server reads these paths; the reload test overwrites them.
  liveCert = join(pki.dir, 'live-cert.pem');
  liveKey = join(pki.dir, 'live-key.pem');
  await copyFile(first.certFile, liveCert);
  await copyFile(first.keyFile, liveKey);
  srv = await startTlsServer({ certFile: liveCert, keyFile: liveKey, ca: pki.ca,
    extra: ['--client-root', join(repo, 'client-wasm'), '--ping-interval-ms', '1000', '--poll-hold-ms', '1000'] });
});
after(async () => {
  await srv?.stop();
});

const metric = async (name) => {
  const r = await httpsRequest(`${srv.url}/metrics`, { ca: pki.ca });
  const m = r.body.toString().match(new RegExp(`^${name} (\\d+)$`, 'm'));
  return m ? Number(m[1]) : null;
};

describe('handshake', () => {
  test('TLS 1.3 by default, 1.2 accepted, 1.1 refused; ALPN http/1.1; the chain verifies against the root', async () => {
    const h = await handshake(srv.port, pki.ca);
    assert.equal(h.authorized, true);
    assert.equal(h.protocol, 'TLSv1.3');
    assert.equal(h.alpn, 'http/1.1');
    assert.equal(h.fingerprint, first.fingerprint);
    const h12 = await handshake(srv.port, pki.ca, { maxVersion: 'TLSv1.2' });
    assert.equal(h12.protocol, 'TLSv1.2');
    await assert.rejects(handshake(srv.port, pki.ca, { maxVersion: 'TLSv1.1', minVersion: 'TLSv1' }));
    // A client offering only h2 gets no ALPN answer rather than h2.
    assert.equal((await handshake(srv.port, pki.ca, { ALPNProtocols: ['h2'] })).alpn, false);
    // Without the test root the same certificate is refused: trust comes from the CA, not from a
    // switched-off check.
    await assert.rejects(handshake(srv.port, undefined), /unable to get local issuer|self-signed|unable to verify/);
  });

  test('TLS 1.2 offers only forward-secret AEAD suites', async () => {
    await assert.rejects(handshake(srv.port, pki.ca, { maxVersion: 'TLSv1.2', ciphers: 'AES128-SHA:AES256-SHA:AES128-GCM-SHA256' }));
    const ok = await handshake(srv.port, pki.ca, { maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES128-GCM-SHA256' });
    assert.equal(ok.protocol, 'TLSv1.2');
  });

  test('a certificate file without its intermediate does not verify (the chain in --tls-cert is what is sent)', async () => {
    const leafOnly = join(pki.dir, 'leaf-only.pem');
    const chain = await readFile(first.certFile, 'utf8');
    await writeFile(leafOnly, chain.slice(0, chain.indexOf('-----END CERTIFICATE-----') + 26));
    const other = await startTlsServer({ certFile: leafOnly, keyFile: first.keyFile, ca: pki.ca });
    try {
      await assert.rejects(handshake(other.port, pki.ca), /unable to get local issuer|unable to verify/);
    } finally {
      await other.stop();
    }
  });

  test('a key that does not match the certificate stops the start with a clear error', async () => {
    const second = await pki.issue('pushwire-test-mismatch');
    await assert.rejects(startTlsServer({ certFile: first.certFile, keyFile: second.keyFile, ca: pki.ca }),
      /key values mismatch|does not match/);
  });

  test('plain HTTP to the TLS port is closed, counted, and the server keeps serving', async () => {
    const before_ = await metric('pushwire_tls_handshake_failures_total');
    await new Promise((resolve, reject) => {
      const s = net.connect(srv.port, '127.0.0.1', () => s.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n'));
      let got = '';
      s.on('data', (d) => { got += d; });
      s.on('close', () => (got.includes('HTTP/1.1 200') ? reject(new Error('answered in plain text')) : resolve()));
      s.on('error', () => {});
    });
    await waitFor(async () => (await metric('pushwire_tls_handshake_failures_total')) === before_ + 1,
      { what: 'the handshake failure counted' });
    const r = await httpsRequest(`${srv.url}/healthz`, { ca: pki.ca });
    assert.equal(r.status, 200);
  });

  test('a connection that never completes its handshake is closed after --request-timeout-ms', async () => {
    const own = await startTlsServer({ certFile: first.certFile, keyFile: first.keyFile, ca: pki.ca,
      extra: ['--request-timeout-ms', '300'] });
    try {
      const t0 = Date.now();
      await new Promise((resolve, reject) => {
        const s = net.connect(own.port, '127.0.0.1');
        s.on('close', resolve);
        s.on('error', () => {});
        setTimeout(() => reject(new Error('still open after 5 s')), 5000).unref();
      });
      const took = Date.now() - t0;
      assert.ok(took >= 250 && took < 3000, `closed after ${took} ms`);
    } finally {
      await own.stop();
    }
  });

  test('static files over HTTPS keep their types', async () => {
    const r = await httpsRequest(`${srv.url}/pushwire/pushwire_core.wasm`, { ca: pki.ca });
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-type'], 'application/wasm');
    assert.equal(r.body.subarray(0, 4).toString('hex'), '0061736d');
  });
});

// The JS client as an application uses it: the CA comes from NODE_EXTRA_CA_CERTS, nothing else.
function runClient(transport, channel) {
  const child = spawn(process.execPath, [join(repo, 'tests/tls/client-child.mjs'), srv.url, transport, channel],
    { env: { ...process.env, NODE_EXTRA_CA_CERTS: pki.caFile }, stdio: ['ignore', 'pipe', 'pipe'] });
  const events = [];
  let stderr = '';
  child.stderr.on('data', (d) => { stderr += d; });
  createInterface({ input: child.stdout }).on('line', (l) => events.push(JSON.parse(l)));
  const exit = new Promise((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, events, exit, stderr: () => stderr };
}

describe('the JS client over TLS', () => {
  for (const transport of ['websocket', 'sse', 'polling']) {
    test(`${transport}: subscribes, receives, reads history`, async () => {
      const ch = `tls-${transport}`;
      const c = runClient(transport, ch);
      try {
        await waitFor(() => c.events.find((e) => e.event === 'subscribed'), { what: `${transport} subscribed` });
        assert.equal(c.events[0].transport, transport);
        assert.ok(c.events[0].url.startsWith('https://'));
        await srv.publish(ch, { n: 1 });
        await srv.publish(ch, { n: 2 });
        assert.equal(await c.exit, 0, c.stderr());
        assert.deepEqual(c.events.filter((e) => e.event === 'message').map((e) => e.data), [{ n: 1 }, { n: 2 }]);
        assert.deepEqual(c.events.find((e) => e.event === 'history').data, [{ n: 1 }, { n: 2 }]);
      } finally {
        c.child.kill();
      }
    });
  }
});

// A TCP relay between the test and the server that counts the TLS records the server sends
// (application_data, type 23). The server writes each flush of a connection with one SSL write, so
// a WebSocket message of n bytes (header included) is ceil(n / 16384) records; an SSL stream fed
// the buffer sequence instead writes 8 KB slices, more records for any message over 8 KB.
async function recordCounter(port) {
  const counts = { records: 0 };
  const server = net.createServer((down) => {
    const up = net.connect(port, '127.0.0.1');
    let pending = Buffer.alloc(0);
    up.on('data', (d) => {
      pending = Buffer.concat([pending, d]);
      while (pending.length >= 5) {
        const len = pending.readUInt16BE(3);
        if (pending.length < 5 + len) break;
        if (pending[0] === 23) counts.records++;
        pending = pending.subarray(5 + len);
      }
      down.write(d);
    });
    down.on('data', (d) => up.write(d));
    up.on('close', () => down.destroy());
    down.on('close', () => up.destroy());
    up.on('error', () => {});
    down.on('error', () => {});
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { counts, port: server.address().port, close: () => server.close() };
}

describe('batching over TLS', () => {
  test('every flush is one SSL write: records per WebSocket message as the 16 KB record size dictates', async () => {
    const relay = await recordCounter(srv.port);
    const ws = new WebSocket(`wss://127.0.0.1:${relay.port}/ws`, { ca: pki.ca });
    const sizes = [];
    let messages = 0;
    let subscribed = false;
    ws.on('message', (d) => {
      sizes.push(d.length);
      const text = d.toString();
      subscribed ||= text.includes('"type":"subscribed"');
      messages += text.split('\n').filter((l) => l.includes('"type":"message"')).length;
    });
    try {
      await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
      ws.send(`${JSON.stringify({ cmd: 'connect', id: 1 })}\n${JSON.stringify({ cmd: 'subscribe', id: 2, channel: 'tls-burst' })}`);
      await waitFor(() => subscribed, { what: 'connected and subscribed' });
      const before_ = { records: relay.counts.records, ws: sizes.length };
      // Each publication alone is over 8 KB, so every message tells one SSL write from 8 KB slices,
      // however the burst is split into writes.
      const batch = Array.from({ length: 6 }, (_, i) => ({ channel: 'tls-burst', data: { i, pad: 'p'.repeat(9000) } }));
      await srv.api('POST', '/api/publish_batch', { messages: batch });
      await waitFor(() => messages === 6, { what: 'six publications' });
      const burst = sizes.slice(before_.ws);
      assert.ok(burst.every((n) => n > 8192), `message sizes ${burst}`);
      const header = (n) => (n < 126 ? 2 : n < 65536 ? 4 : 10);
      const expected = burst.reduce((k, n) => k + Math.ceil((n + header(n)) / 16384), 0);
      await waitFor(() => relay.counts.records - before_.records === expected,
        { what: `${expected} records for messages of ${burst} bytes (seen ${relay.counts.records - before_.records})`,
          timeoutMs: 2000 });
    } finally {
      ws.close();
      relay.close();
    }
  });
});

describe('reload on SIGHUP', () => {
  test('streams opened before the reload keep receiving; new handshakes get the new certificate', async () => {
    const ch = 'tls-reload';
    // A WebSocket (wss) and an SSE stream (https), both trusting only the test root.
    const ws = new WebSocket(`wss://127.0.0.1:${srv.port}/ws`, { ca: pki.ca });
    const wsFrames = [];
    let wsClosed = false;
    ws.on('message', (d) => wsFrames.push(...d.toString().split('\n').filter(Boolean).map((l) => JSON.parse(l))));
    ws.on('close', () => { wsClosed = true; });
    await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
    ws.send(JSON.stringify({ cmd: 'connect', id: 1 }));
    ws.send(JSON.stringify({ cmd: 'subscribe', id: 2, channel: ch }));
    await waitFor(() => wsFrames.find((f) => f.type === 'subscribed'), { what: 'ws subscribed' });

    let sseText = '';
    let sseEnded = false;
    const sseReq = https.get(`${srv.url}/sse?channels=${ch}`, { ca: pki.ca, agent: false }, (res) => {
      assert.equal(res.statusCode, 200);
      res.on('data', (d) => { sseText += d; });
      res.on('end', () => { sseEnded = true; });
    });
    await waitFor(() => sseText.includes('"type":"subscribed"'), { what: 'sse subscribed' });

    await srv.publish(ch, { before: true });
    await waitFor(() => wsFrames.some((f) => f.type === 'message') && sseText.includes('{"before":true}'),
      { what: 'the message before the reload' });

    const second = await pki.issue('pushwire-test-b');
    assert.notEqual(second.fingerprint, first.fingerprint);
    await copyFile(second.certFile, liveCert);
    await copyFile(second.keyFile, liveKey);
    srv.proc.kill('SIGHUP');
    await waitFor(() => srv.log().includes('"msg":"tls reloaded"'), { what: 'the reload log line' });
    assert.equal((await handshake(srv.port, pki.ca)).fingerprint, second.fingerprint);

    await srv.publish(ch, { after: true });
    await waitFor(() => wsFrames.filter((f) => f.type === 'message').length === 2 && sseText.includes('{"after":true}'),
      { what: 'the message after the reload on both old streams' });
    assert.equal(wsClosed, false);
    assert.equal(sseEnded, false);

    // A reload that fails (a key that is not PEM) keeps the certificate in use.
    await writeFile(liveKey, 'not a key\n');
    srv.proc.kill('SIGHUP');
    await waitFor(() => srv.log().includes('tls reload failed'), { what: 'the failed reload log line' });
    assert.equal((await handshake(srv.port, pki.ca)).fingerprint, second.fingerprint);
    assert.equal(srv.exited(), null);

    ws.close();
    sseReq.destroy();
  });
});
