// Behind nginx (issue 15 item 2): Debian's nginx runs the site block of docs/deploy.md as it is
// written there (only its two ports replaced), in front of the real server. The JS client gets a
// numbered stream over WebSocket, SSE and long-poll through it; X-Forwarded-For from the trusted
// proxy picks the per-address slots and the address in the log lines; from a peer that is not
// trusted the header is ignored.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import WebSocket from 'ws';
import { FAST, loadClient, once, repo } from '../js/helpers.mjs';
import { runNginx } from '../cluster/cluster.mjs';
import { startServerProc, waitFor } from './server-proc.mjs';

const { Client } = await loadClient();

// The ```nginx block of the "Behind a reverse proxy" section, verbatim.
export async function nginxSiteFromDocs() {
  const doc = await readFile(join(repo, 'docs/deploy.md'), 'utf8');
  const section = doc.slice(doc.indexOf('## Behind a reverse proxy'));
  const m = section.match(/```nginx\n([\s\S]*?)```/);
  assert.ok(m, 'docs/deploy.md has an nginx block under "Behind a reverse proxy"');
  return m[1];
}

// The documented site with its ports replaced, in the main context a Debian install has around
// its sites (tests/cluster/cluster.mjs runNginx).
async function startNginx(site, upstreamPort) {
  const count = (s, what) => s.split(what).length - 1;
  assert.equal(count(site, 'listen 80;'), 1, 'the documented site listens on port 80 once');
  assert.equal(count(site, 'server 127.0.0.1:8080;'), 1, 'the documented upstream is 127.0.0.1:8080 once');
  const nginx = await runNginx((port) => site.replace('listen 80;', `listen 127.0.0.1:${port};`)
    .replace('server 127.0.0.1:8080;', `server 127.0.0.1:${upstreamPort};`));
  return { url: nginx.url, stop: () => nginx.cleanup() };
}

// The admin listener's port from the structured "listening" line (written before the port file,
// but the pipe may deliver it a moment after the file is seen).
async function adminPort(srv) {
  const line = await waitFor(() => srv.log().split('\n').slice(0, -1).find((l) => l.includes('"msg":"listening"')),
    { what: 'the listening line' });
  return Number(JSON.parse(line).admin_port);
}

function logLines(srv, msg) {
  const out = [];
  for (const l of srv.log().split('\n')) {
    try {
      const o = JSON.parse(l);
      if (o.msg === msg) out.push(o);
    } catch { /* the line being written */ }
  }
  return out;
}

// An SSE stream held open: resolves { status, body (non-200 only), close } once the head arrives.
function openSse(base, channel, headers = {}) {
  return new Promise((resolve, reject) => {
    const req = http.get(`${base}/sse?channels=${channel}`, { headers, agent: false }, (res) => {
      if (res.statusCode !== 200) {
        let body = '';
        res.on('data', (d) => { body += d; });
        res.on('end', () => resolve({ status: res.statusCode, body, close() {} }));
        return;
      }
      res.on('error', () => {});
      resolve({ status: 200, close: () => req.destroy() });
    });
    req.on('error', reject);
  });
}

// A WebSocket opened (status 101) or refused (its status and body).
function openWs(base, headers = {}) {
  return new Promise((resolve) => {
    const ws = new WebSocket(`${base.replace('http:', 'ws:')}/ws`, { headers });
    ws.on('open', () => resolve({ status: 101, close: () => ws.terminate() }));
    ws.on('unexpected-response', (req, res) => {
      let body = '';
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode, body, close() {} }));
    });
    ws.on('error', () => {});
  });
}

const LIMIT = 2;
let trusted;   // the server behind nginx: trusts 127.0.0.1 (nginx), API on the admin port
let nginx;
let adminUrl;
before(async () => {
  trusted = await startServerProc({ extra: ['--trusted-proxy', '127.0.0.1/32', '--admin-port', '0',
    '--max-connections-per-ip', String(LIMIT), '--ping-interval-ms', '1000', '--poll-hold-ms', '1000',
    '--log-level', 'debug'] });
  adminUrl = `http://127.0.0.1:${await adminPort(trusted)}`;
  nginx = await startNginx(await nginxSiteFromDocs(), trusted.port);
});
after(async () => {
  await nginx?.stop();
  await trusted?.stop();
});

async function publish(channel, data) {
  const res = await fetch(`${adminUrl}/api/publish`, {
    method: 'POST',
    headers: { Authorization: 'Bearer testkey', 'Content-Type': 'application/json' },
    body: JSON.stringify({ channel, data }),
  });
  const text = await res.text();
  assert.equal(res.status, 200, text);
  return JSON.parse(text);
}

describe('the JS client through nginx', () => {
  for (const transport of ['websocket', 'sse', 'polling']) {
    test(`${transport}: a numbered stream arrives whole and in order`, async () => {
      const c = new Client(nginx.url, { ...FAST, pollHoldMs: 1000, transports: [transport] });
      try {
        const ch = `proxy-${transport}`;
        const got = [];
        const sub = c.subscribe(ch, { onMessage: (d, ctx) => got.push([d.n, ctx.offset]) });
        await once(sub, 'subscribed');
        assert.equal(c.transport, transport);
        const first = await publish(ch, { n: 1 });
        for (let n = 2; n <= 30; ++n) await publish(ch, { n });
        await waitFor(() => got.length >= 30, { what: `30 messages over ${transport}` });
        assert.deepEqual(got, Array.from({ length: 30 }, (_, i) => [i + 1, first.offset + i]));
      } finally {
        c.close();
      }
    });
  }

  test('the public port (through nginx) answers /metrics and /api/* 404; the admin port serves them', async () => {
    for (const path of ['/metrics', '/api/stats']) {
      const r = await fetch(nginx.url + path, { headers: { Authorization: 'Bearer testkey' } });
      assert.equal(r.status, 404, path);
      await r.text();
    }
    const m = await fetch(`${adminUrl}/metrics`);
    assert.equal(m.status, 200);
    assert.match(await m.text(), /^pushwire_connections\{transport="websocket"\} \d+$/m);
    const s = await fetch(`${adminUrl}/api/stats`, { headers: { Authorization: 'Bearer testkey' } });
    assert.equal(s.status, 200);
    await s.text();
    // The admin listener serves nothing else (no pages, no transports).
    for (const path of ['/', '/sse?channels=x', '/pushwire/pushwire.mjs']) {
      const r = await fetch(adminUrl + path);
      assert.equal(r.status, 404, path);
      await r.text();
    }
    const h = await fetch(`${adminUrl}/healthz`);
    assert.equal(h.status, 200);
    await h.text();
  });
});

describe('X-Forwarded-For from the trusted proxy', () => {
  test('each forwarded address gets its own slots; the same address is limited; the log names it', async () => {
    const A = '198.51.100.7';
    const B = '2001:db8::7';
    const open = [];
    try {
      // nginx appends 127.0.0.1 (this test's own address, trusted): the server skips it and takes A.
      for (let i = 0; i < LIMIT; ++i) {
        const s = await openSse(nginx.url, 'xff-sse', { 'X-Forwarded-For': A });
        open.push(s);
        assert.equal(s.status, 200, `stream ${i + 1} from ${A}`);
      }
      const over = await openSse(nginx.url, 'xff-sse', { 'X-Forwarded-For': A });
      assert.equal(over.status, 503);
      assert.equal(JSON.parse(over.body).error.code, 4015, over.body);
      const overWs = await openWs(nginx.url, { 'X-Forwarded-For': A });
      assert.equal(overWs.status, 503, 'a WebSocket from the same forwarded address is limited too');
      // Another forwarded address has slots of its own, on every transport.
      const b1 = await openSse(nginx.url, 'xff-sse', { 'X-Forwarded-For': B });
      open.push(b1);
      assert.equal(b1.status, 200);
      const b2 = await openWs(nginx.url, { 'X-Forwarded-For': B });
      open.push(b2);
      assert.equal(b2.status, 101);
      // A forged entry left of the client's own is not taken: "1.2.3.4, A" is A (already full).
      const forged = await openSse(nginx.url, 'xff-sse', { 'X-Forwarded-For': `1.2.3.4, ${A}` });
      assert.equal(forged.status, 503);

      await waitFor(() => logLines(trusted, 'connection opened').some((l) => l.remote === B && l.transport === 'websocket'),
        { what: 'the websocket opened line with the forwarded address' });
      const opened = logLines(trusted, 'connection opened');
      assert.equal(opened.filter((l) => l.remote === A && l.transport === 'sse').length, LIMIT);
      assert.ok(opened.some((l) => l.remote === B && l.transport === 'sse'));
      // Logged before the 503 is written, but the pipe may deliver it a moment after the answer.
      await waitFor(() => logLines(trusted, 'connection refused').filter((l) => l.remote === A).length >= 3,
        { what: 'three refused lines naming A' });
      assert.equal(logLines(trusted, 'connection refused').filter((l) => l.remote === A).length, 3);
      // A plain request through nginx (the demo publish, rate-limited per address): its debug line
      // names the forwarded address too.
      const pub = await fetch(`${nginx.url}/demo/publish`, {
        method: 'POST', headers: { 'Content-Type': 'application/json', 'X-Forwarded-For': `1.2.3.4, ${B}` },
        body: JSON.stringify({ channel: 'demo:xff', data: { n: 1 } }),
      });
      assert.equal(pub.status, 200, await pub.text());
      await waitFor(() => logLines(trusted, 'http request').some((l) => l.path === '/demo/publish' && l.remote === B),
        { what: 'the demo publish line naming B' });
      assert.ok(!trusted.log().includes('1.2.3.4'), 'the forged left-most entry is never used');
    } finally {
      for (const s of open) s.close();
    }
    await waitFor(() => logLines(trusted, 'connection closed').filter((l) => l.remote === A).length >= LIMIT,
      { what: 'the closed lines with the forwarded address' });
    // The slots came back: A may open again.
    const again = await waitFor(async () => {
      const s = await openSse(nginx.url, 'xff-sse', { 'X-Forwarded-For': A });
      if (s.status === 200) return s;
      return null;
    }, { what: 'a slot for A again' });
    again.close();
  });
});

describe('X-Forwarded-For from a peer that is not trusted', () => {
  let direct;
  before(async () => {
    // Trusts a range this test's connections never come from: 127.0.0.1 is an ordinary client.
    direct = await startServerProc({ extra: ['--trusted-proxy', '10.0.0.0/8,::1/128',
      '--max-connections-per-ip', String(LIMIT)] });
  });
  after(async () => {
    await direct?.stop();
  });

  test('a direct connection with a forged header is counted against its own address', async () => {
    const open = [];
    try {
      for (const forged of ['198.51.100.1', '198.51.100.2']) {
        const s = await openSse(direct.url, 'forged', { 'X-Forwarded-For': forged });
        open.push(s);
        assert.equal(s.status, 200);
      }
      // Two different forged values, yet the third stream is over 127.0.0.1's limit.
      const over = await openSse(direct.url, 'forged', { 'X-Forwarded-For': '198.51.100.3' });
      assert.equal(over.status, 503);
      const overWs = await openWs(direct.url, { 'X-Forwarded-For': '198.51.100.4' });
      assert.equal(overWs.status, 503);
      await waitFor(() => logLines(direct, 'connection opened').length >= 2, { what: 'the opened lines' });
      assert.ok(logLines(direct, 'connection opened').every((l) => l.remote === '127.0.0.1'));
      const refused = await waitFor(() => {
        const r = logLines(direct, 'connection refused');
        return r.length >= 2 && r;
      }, { what: 'the two refused lines' });
      assert.equal(refused.length, 2);
      assert.ok(refused.every((l) => l.remote === '127.0.0.1'));
      assert.ok(!direct.log().includes('198.51.100.'), 'no forged address reaches the log');
    } finally {
      for (const s of open) s.close();
    }
  });
});
