// /metrics after real traffic, checked by Prometheus's own linter (`promtool check metrics`, Debian's
// `prometheus` package) and against what the traffic implies: connections on every transport, an
// API publish, a refused command, a server disconnect (4010), a slow consumer cut (4008) and its
// log line. The server runs with --admin-port: the metrics are scraped there.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, test } from 'node:test';
import WebSocket from 'ws';
import { FAST, loadClient, once } from '../js/helpers.mjs';
import { startServerProc, waitFor } from './server-proc.mjs';

const { Client } = await loadClient();

let srv;
let admin;
before(async () => {
  srv = await startServerProc({ extra: ['--admin-port', '0', '--ping-interval-ms', '1000', '--poll-hold-ms', '1000',
    '--queue-bytes', '16384', '--socket-send-buffer-bytes', '4096', '--slow-consumer-grace-ms', '200'] });
  const listening = await waitFor(
    () => srv.log().split('\n').slice(0, -1).find((l) => l.includes('"msg":"listening"')), { what: 'the listening line' });
  admin = `http://127.0.0.1:${JSON.parse(listening).admin_port}`;
});
after(async () => {
  await srv?.stop();
});

async function api(method, path, body) {
  const res = await fetch(admin + path, {
    method,
    headers: { Authorization: 'Bearer testkey', 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  assert.ok(res.ok, `${method} ${path}: ${res.status} ${text}`);
  return JSON.parse(text);
}

async function scrape() {
  const r = await fetch(`${admin}/metrics`);
  assert.equal(r.status, 200);
  return r.text();
}

const sample = (text, name) => {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? null : Number(line.slice(name.length + 1));
};

function promtool(text) {
  return new Promise((resolve, reject) => {
    const p = spawn('promtool', ['check', 'metrics'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => { out += d; });
    p.on('error', reject);
    p.on('exit', (code) => resolve({ code, out }));
    p.stdin.end(text);
  });
}

// A raw WebSocket client: connect, then its client id.
async function rawWs() {
  const ws = new WebSocket(`ws://127.0.0.1:${srv.port}/ws`);
  const frames = [];
  ws.on('message', (d) => frames.push(...d.toString().split('\n').filter(Boolean).map((l) => JSON.parse(l))));
  const closed = new Promise((resolve) => ws.on('close', (code) => resolve(code)));
  ws.on('error', () => {});
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
  ws.send(JSON.stringify({ cmd: 'connect', id: 1 }));
  const connected = await waitFor(() => frames.find((f) => f.type === 'connected'), { what: 'connected' });
  return { ws, frames, closed, client: connected.client };
}

test('promtool accepts /metrics after traffic, and the new families count what happened', async () => {
  const before = await scrape();
  assert.equal((await promtool(before)).code, 0, 'a fresh server passes too');

  // A subscriber on each transport receives one API publish.
  const clients = [];
  const got = {};
  for (const transport of ['websocket', 'sse', 'polling']) {
    const c = new Client(srv.url, { ...FAST, pollHoldMs: 1000, transports: [transport] });
    clients.push(c);
    got[transport] = [];
    const sub = c.subscribe('metrics-news', { onMessage: (d) => got[transport].push(d) });
    await once(sub, 'subscribed');
  }
  await api('POST', '/api/publish', { channel: 'metrics-news', data: { n: 1 } });
  await waitFor(() => Object.values(got).every((g) => g.length === 1), { what: 'the publish on every transport' });

  // A refused command: publishing outside the demo namespace needs the API (4003).
  await assert.rejects(clients[0].publish('metrics-news', { n: 2 }), (e) => e.code === 4003);

  // A server disconnect of one connection: close code 4010.
  const victim = await rawWs();
  await api('POST', '/api/disconnect', { client: victim.client, reconnect: false });
  assert.equal(await victim.closed, 4010);

  // A slow consumer: subscribed, then never reads; publishes overflow its 16 KB queue (4008).
  const slow = await rawWs();
  slow.ws.send(JSON.stringify({ cmd: 'subscribe', id: 2, channel: 'metrics-flood' }));
  await waitFor(() => slow.frames.find((f) => f.type === 'subscribed'), { what: 'subscribed' });
  slow.ws._socket.pause();
  // Until the server cuts it: the client's kernel receive buffer (loopback autotuning grows it to a
  // few MB) fills first, then the 16 KB queue.
  const blob = 'x'.repeat(32000);
  const slowLine = () => srv.log().split('\n').slice(0, -1).find((l) => l.includes('"msg":"slow consumer"'));
  let flood = 0;
  await waitFor(async () => {
    if (slowLine()) return true;
    assert.ok(++flood < 2000, 'the slow consumer was never cut');
    await api('POST', '/api/publish', { channel: 'metrics-flood', data: { i: flood, blob } });
    return false;
  }, { what: 'the slow consumer line', intervalMs: 0, timeoutMs: 30000 });
  assert.equal(JSON.parse(slowLine()).client, slow.client);
  assert.equal(JSON.parse(slowLine()).level, 'warn');
  slow.ws._socket.resume();
  await slow.closed;
  await waitFor(async () => sample(await scrape(), 'pushwire_disconnects_total{code="4008"}') === 1,
    { what: 'the 4008 disconnect counted' });

  for (const c of clients) c.close();
  await waitFor(async () => sample(await scrape(), 'pushwire_connections{transport="sse"}') === 0, { what: 'the SSE close' });

  const text = await scrape();
  const lint = await promtool(text);
  assert.equal(lint.code, 0, `promtool: ${lint.out}\n${text}`);
  assert.equal(lint.out.trim(), '', `promtool complained: ${lint.out}`);

  // Every new family is announced with its type.
  for (const [family, type] of [['pushwire_disconnects_total', 'counter'], ['pushwire_command_errors_total', 'counter'],
    ['pushwire_command_duration_seconds', 'histogram'], ['pushwire_messages_delivered_total', 'counter'],
    ['pushwire_history_bytes', 'gauge']])
    assert.ok(text.includes(`# TYPE ${family} ${type}\n`), family);

  // What the traffic implies.
  assert.equal(sample(text, 'pushwire_disconnects_total{code="4010"}'), 1);
  assert.equal(sample(text, 'pushwire_disconnects_total{code="4008"}'), 1);
  assert.ok(sample(text, 'pushwire_command_errors_total{code="4003"}') >= 1);
  assert.equal(sample(text, 'pushwire_messages_delivered_total{transport="websocket"}') >= 1, true);
  assert.equal(sample(text, 'pushwire_messages_delivered_total{transport="sse"}'), 1);
  assert.equal(sample(text, 'pushwire_messages_delivered_total{transport="polling"}'), 1);
  assert.equal(sample(text, 'pushwire_messages_delivered_total{transport="pusher"}'), 0);
  // Subscribes: three clients (the polling one may subscribe again on each poll), the slow one.
  assert.ok(sample(text, 'pushwire_command_duration_seconds_count{command="subscribe"}') >= 4);
  assert.equal(sample(text, 'pushwire_command_duration_seconds_bucket{command="subscribe",le="+Inf"}'),
    sample(text, 'pushwire_command_duration_seconds_count{command="subscribe"}'));
  // The refused publish never reached the hub: no publish command was timed.
  assert.equal(sample(text, 'pushwire_command_duration_seconds_count{command="publish"}'), 0);
  // History holds the flood and the news.
  assert.ok(sample(text, 'pushwire_history_bytes') > 8000);
  // No code label outside the fixed list.
  for (const m of text.matchAll(/^pushwire_(?:disconnects|command_errors)_total\{code="([^"]+)"\}/gm))
    assert.match(m[1], /^(0|10\d\d|40[0-2]\d|other)$/);

  // Secrets never appear: not the API key.
  assert.ok(!text.includes('testkey'));
});
