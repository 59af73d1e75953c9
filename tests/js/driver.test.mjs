// The driver and API against injected fakes (no server): queued subscriptions, generation ids
// dropping late events, EventSource closed at once on error, network checks from `online` and
// `visibilitychange`, and close() releasing timers and listeners. The real-server scenarios are in
// the other files.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadClient, waitFor } from './helpers.mjs';

const { Client, Code } = await loadClient();

class FakeWebSocket {
  static all = [];
  constructor(url) {
    this.url = url;
    this.sent = [];
    this.closed = false;
    FakeWebSocket.all.push(this);
  }
  send(text) { this.sent.push(...text.split('\n').filter(Boolean).map((l) => JSON.parse(l))); }
  close() { this.closed = true; }
  // Test side: what the network does.
  open() { this.onopen?.({}); }
  frames(...f) { this.onmessage?.({ data: f.map((x) => JSON.stringify(x)).join('\n') }); }
  serverClose(code = 1006, reason = '') { this.onclose?.({ code, reason }); }
}

class FakeEventSource {
  static all = [];
  constructor(url) {
    this.url = url;
    this.closed = false;
    this.listeners = {};
    FakeEventSource.all.push(this);
  }
  addEventListener(t, f) { (this.listeners[t] ??= []).push(f); }
  close() { this.closed = true; }
  emit(type, frame) { for (const f of this.listeners[type] ?? []) f({ data: JSON.stringify(frame) }); }
}

class FakeTarget {
  constructor() { this.l = new Map(); }
  addEventListener(t, f) { this.l.set(t, [...(this.l.get(t) ?? []), f]); }
  removeEventListener(t, f) { this.l.set(t, (this.l.get(t) ?? []).filter((x) => x !== f)); }
  dispatch(t) { for (const f of this.l.get(t) ?? []) f({ type: t }); }
  count() { return [...this.l.values()].reduce((n, a) => n + a.length, 0); }
}

// Counts live timers so that a test can check none is left.
function timerCounter() {
  const live = new Set();
  return {
    live,
    setTimeout: (f, ms) => {
      const h = setTimeout(() => {
        live.delete(h);
        f();
      }, ms);
      live.add(h);
      return h;
    },
    clearTimeout: (h) => {
      live.delete(h);
      clearTimeout(h);
    },
  };
}

const connected = (id) => ({ type: 'connected', id, client: 'c1', ping: 25000, v: 1 });
const fetchNever = () => new Promise(() => {});

test('subscriptions made before the connection is up are queued and sent after connect', async () => {
  FakeWebSocket.all = [];
  const client = new Client('http://test.invalid', { WebSocket: FakeWebSocket, transports: ['websocket'], fetch: fetchNever });
  const got = [];
  client.subscribe('scores', { onMessage: (d, ctx) => got.push([d, ctx.offset, ctx.channel]) });
  const ws = await waitFor(() => FakeWebSocket.all[0], { what: 'a WebSocket' });
  assert.equal(ws.url, 'ws://test.invalid/ws');
  ws.open();
  assert.equal(ws.sent[0].cmd, 'connect');
  ws.frames(connected(ws.sent[0].id));
  assert.equal(client.state, 'connected');
  assert.equal(client.transport, 'websocket');
  const sub = ws.sent.find((c) => c.cmd === 'subscribe');
  assert.equal(sub.channel, 'scores');
  ws.frames({ type: 'subscribed', id: sub.id, channel: 'scores', epoch: 'e1', offset: 4 },
    { type: 'message', channel: 'scores', epoch: 'e1', offset: 5, data: { home: 1 } },
    { type: 'message', channel: 'scores', epoch: 'e1', offset: 5, data: { home: 1 } });   // duplicate
  assert.deepEqual(got, [[{ home: 1 }, 5, 'scores']]);
  client.close();
  assert.equal(client.state, 'closed');
  assert.equal(ws.closed, true);
});

test('late events from an abandoned transport are dropped (generation ids)', async () => {
  FakeWebSocket.all = [];
  const client = new Client('http://test.invalid', { WebSocket: FakeWebSocket, transports: ['websocket'],
    backoffMinMs: 1, backoffMaxMs: 1, fetch: fetchNever });
  const got = [];
  client.subscribe('news', { onMessage: (d) => got.push(d) });
  const ws1 = await waitFor(() => FakeWebSocket.all[0]);
  ws1.open();
  ws1.frames(connected(ws1.sent[0].id));
  const s1 = ws1.sent.find((c) => c.cmd === 'subscribe');
  ws1.frames({ type: 'subscribed', id: s1.id, channel: 'news', epoch: 'e1', offset: 0 });
  const late = ws1.onmessage;
  ws1.serverClose(1006);
  await waitFor(() => client.state === 'reconnecting' || FakeWebSocket.all[1], { what: 'reconnect' });
  const ws2 = await waitFor(() => FakeWebSocket.all[1], { what: 'a second WebSocket' });
  // The first socket speaks again: nothing of it may reach the application.
  late({ data: JSON.stringify({ type: 'message', channel: 'news', epoch: 'e1', offset: 1, data: 'stale' }) });
  assert.deepEqual(got, []);
  ws2.open();
  ws2.frames(connected(ws2.sent[0].id));
  const s2 = ws2.sent.find((c) => c.cmd === 'subscribe');
  assert.deepEqual(s2.since, { epoch: 'e1', offset: 0 }, 'resumes from the last position');
  ws2.frames({ type: 'subscribed', id: s2.id, channel: 'news', epoch: 'e1', offset: 1, recovered: true },
    { type: 'message', channel: 'news', epoch: 'e1', offset: 1, data: 'fresh' });
  assert.deepEqual(got, ['fresh']);
  client.close();
});

test('a WebSocket that dies before its first frame falls back to SSE; SSE errors close the EventSource at once', async () => {
  FakeWebSocket.all = [];
  FakeEventSource.all = [];
  const client = new Client('https://test.invalid/base', { WebSocket: FakeWebSocket, EventSource: FakeEventSource,
    transports: ['websocket', 'sse'], backoffMinMs: 60000, backoffMaxMs: 60000, fetch: fetchNever });
  const fallbacks = [];
  client.on('fallback', (e) => fallbacks.push(e));
  client.subscribe('demo:x');
  const ws = await waitFor(() => FakeWebSocket.all[0]);
  assert.equal(ws.url, 'wss://test.invalid/base/ws');
  ws.serverClose(1006);
  const es = await waitFor(() => FakeEventSource.all[0], { what: 'an EventSource' });
  assert.deepEqual(fallbacks.map((f) => [f.from, f.to, f.code]), [['websocket', 'sse', Code.transportFailed]]);
  assert.match(es.url, /^https:\/\/test\.invalid\/base\/sse\?channels=demo:x/);
  es.onopen?.();
  es.emit('control', connected(0));
  assert.equal(client.state, 'connected');
  assert.equal(client.transport, 'sse');
  es.onerror();
  assert.equal(es.closed, true, 'closed inside the error handler, before the browser can reconnect it');
  await waitFor(() => client.state === 'reconnecting', { what: 'reconnecting' });
  client.close();
});

test('online and visible-after-hidden trigger a network check; close() removes listeners and timers', async () => {
  FakeWebSocket.all = [];
  const win = new FakeTarget();
  const doc = new FakeTarget();
  doc.visibilityState = 'visible';
  const timers = timerCounter();
  const states = [];
  const client = new Client('http://test.invalid', { WebSocket: FakeWebSocket, transports: ['websocket'],
    backoffMinMs: 60000, backoffMaxMs: 60000, window: win, document: doc, fetch: fetchNever, ...timers });
  client.on('state', (e) => states.push([e.to, e.code]));
  const ws1 = await waitFor(() => FakeWebSocket.all[0]);
  ws1.serverClose(1006);
  await waitFor(() => client.state === 'reconnecting');
  win.dispatch('online');
  assert.deepEqual(states.at(-1), ['connecting', Code.networkCheck]);
  const ws2 = await waitFor(() => FakeWebSocket.all[1]);
  ws2.serverClose(1006);
  await waitFor(() => client.state === 'reconnecting');
  doc.dispatch('visibilitychange');   // still visible: nothing
  assert.equal(client.state, 'reconnecting');
  doc.visibilityState = 'hidden';
  doc.dispatch('visibilitychange');
  doc.visibilityState = 'visible';
  doc.dispatch('visibilitychange');
  assert.deepEqual(states.at(-1), ['connecting', Code.networkCheck]);
  assert.ok(win.count() > 0 && doc.count() > 0);
  client.close();
  assert.equal(win.count() + doc.count(), 0, 'listeners removed');
  assert.equal(timers.live.size, 0, 'no timer left');
  assert.equal(FakeWebSocket.all.at(-1).closed, true);
});

test('requests reject with a PushwireError carrying the code; bad channels throw at once', async () => {
  FakeWebSocket.all = [];
  const client = new Client('http://test.invalid', { WebSocket: FakeWebSocket, transports: ['websocket'], fetch: fetchNever });
  assert.throws(() => client.subscribe('bad channel!'), (e) => e.code === Code.badChannel);
  const ws = await waitFor(() => FakeWebSocket.all[0]);
  ws.open();
  ws.frames(connected(ws.sent[0].id));
  const p = client.publish('scores', { a: 1 });
  const cmd = await waitFor(() => ws.sent.find((c) => c.cmd === 'publish'));
  assert.deepEqual(cmd.data, { a: 1 });
  ws.frames({ type: 'error', id: cmd.id, code: 4003, reason: 'publishing is not allowed in namespace ""' });
  await assert.rejects(p, (e) => e.name === 'PushwireError' && e.code === 4003 && /not allowed/.test(e.message));
  const h = client.history('scores', { limit: 2 });
  const hc = await waitFor(() => ws.sent.find((c) => c.cmd === 'history'));
  assert.equal(hc.limit, 2);
  ws.frames({ type: 'history', id: hc.id, channel: 'scores', epoch: 'e1', offset: 9,
    publications: [{ offset: 8, data: 'a' }, { offset: 9, data: 'b' }] });
  assert.deepEqual((await h).map((x) => [x.offset, x.data, x.epoch]), [[8, 'a', 'e1'], [9, 'b', 'e1']]);
  const pending = client.presence('scores');
  client.close();
  await assert.rejects(pending, (e) => e.code === Code.notConnected);
});
