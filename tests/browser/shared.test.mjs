// One connection per browser (issue 16 item 4): clients made with `shared: true` in several tabs of
// one origin share one server connection, held by a SharedWorker, or by a leader tab elected with
// Web Locks where SharedWorker is missing (here: deleted before any page script runs).
//
// What is checked, with the server's own figures (GET /api/stats `connections`, GET /api/channels
// `subscribers`) and a numbered stream published through /api/publish:
// - three tabs, one connection; each tab gets every number exactly once and in order;
// - tabs closed and opened in turn: the others go on without a gap or a duplicate, a newcomer gets
//   the stream from its subscribe point on, a tab's `since` is honoured exactly once;
// - a tab closing unsubscribes its channels on the server (when it was their last tab), and an
//   unsubscribe() in one tab leaves the others subscribed;
// - leader fallback: the leader tab closed mid-stream, the others continue without gap or
//   duplicate on a new connection (the new leader resumed from the tabs' positions).
// Each page fails the test on an uncaught error or a failed request (helpers.mjs `watch`).
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { FAST_CLIENT, launchBrowser, ROOT, startServer, unique, waitFor, watch } from './helpers.mjs';

// The page: a shared client (unless ?shared=0), and window.sub(channel, since) to subscribe; per
// channel it records the numbers, gaps and `subscribed` events.
const PAGE = `
import { Client } from '/pushwire/pushwire.mjs';
const q = new URLSearchParams(location.search);
const pw = (window.pw = { ch: {}, states: [] });
const opts = JSON.parse(q.get('opts'));
// ?token: the test's mintToken(code) (page.exposeFunction) answers getToken.
if (q.has('token')) opts.getToken = ({ code }) => window.mintToken(code);
const client = (pw.client = new Client(q.get('server') ?? location.origin, { shared: q.get('shared') !== '0', ...opts }));
client.on('state', (s) => pw.states.push(s.to));
window.sub = (channel, since) => {
  const c = (pw.ch[channel] = { got: [], gaps: [], subscribed: [] });
  return (pw.subs ??= {})[channel] = client.subscribe(channel, {
    since,
    onSubscribed: (e) => c.subscribed.push(e),
    onMessage: (d) => c.got.push(d.n),
    onGap: (g) => c.gaps.push(g),
  });
};
for (const channel of q.getAll('channel')) window.sub(channel);
`;
const HTML = '<!doctype html><html><head><meta charset="utf-8"><title>shared</title></head><body><script type="module" src="/shared-page.mjs"></script></body></html>\n';
// Where sharing is broken this is where it shows: set PUSHWIRE_SHARED_TEST=0 to run the pages
// unshared (every assertion on connection counts must then fail).
const SHARED = process.env.PUSHWIRE_SHARED_TEST ?? '1';

let dir, server, browser;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pushwire-shared-'));
  await writeFile(join(dir, 'shared-page.mjs'), PAGE);
  await writeFile(join(dir, 'index.html'), HTML);
  // A page whose policy forbids workers: constructing the SharedWorker throws (SecurityError).
  await writeFile(join(dir, 'no-workers.html'), HTML.replace('<head>', `<head><meta http-equiv="Content-Security-Policy" content="worker-src 'none'">`));
  server = await startServer(['--web-root', dir, '--client-root', join(ROOT, 'client-wasm')]);
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
  await server?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const range = (from, to) => Array.from({ length: to - from + 1 }, (_, i) => from + i);
// Open WebSocket connections (the server's own count). The tests counting them run over WebSocket;
// the long-poll test's leases outlive its pages for a while and would move a count of everything.
const connections = async () => (await server.api('GET', '/api/stats')).connections.websocket;
async function subscribers(channel) {
  const { channels } = await server.api('GET', '/api/channels');
  return channels.find((c) => c.channel === channel)?.subscribers ?? 0;
}

async function open(channels, { init, opts = FAST_CLIENT, extra = '', mintToken, ready = true, html = 'index.html' } = {}) {
  const qs = channels.map((c) => `channel=${encodeURIComponent(c)}`).join('&');
  const page = await browser.context.newPage();
  if (init) await page.addInitScript(init);
  if (mintToken) await page.exposeFunction('mintToken', mintToken);
  const watcher = watch(page, server.url);
  await page.goto(`${server.url}/${html}?shared=${SHARED}&opts=${encodeURIComponent(JSON.stringify(opts))}&${qs}${extra}`);
  page.watcher = watcher;
  if (!ready) return page;
  await page.waitForFunction((chs) => window.pw?.client.state === 'connected' && chs.every((c) => window.pw.ch[c]?.subscribed.length > 0),
    channels, { polling: 20, timeout: 10000 }).catch(async (err) => {
    const pw = await page.evaluate(() => JSON.stringify(window.pw, (k, v) => (k === 'client' ? undefined : v))).catch(() => '?');
    throw new Error(`not ready: ${err.message.split('\n')[0]}\npw=${pw}\n${watcher.problems.join('\n')}\n${watcher.console.join('\n')}`);
  });
  return page;
}
// Every number of [from, to] once and in order: waits for the last one, then compares.
async function received(page, channel, from, to) {
  await page.waitForFunction(([c, n]) => window.pw.ch[c].got.at(-1) >= n, [channel, to], { polling: 20, timeout: 10000 })
    .catch(async (err) => { throw new Error(`${err.message}: ${await page.evaluate((c) => JSON.stringify(window.pw.ch[c]), channel)}`); });
  const c = await page.evaluate((ch) => window.pw.ch[ch], channel);
  assert.deepEqual(c.got, range(from, to), 'every number once, in order');
  assert.deepEqual(c.gaps, [], 'no gap');
}
let n = 0;
async function publish(channel, count) {
  const first = n + 1;
  for (let i = 0; i < count; i++) await server.publish(channel, { n: ++n });
  return first;
}
const closePage = async (p) => {
  p.watcher.check(assert);
  await p.close();
};

test('SharedWorker: three tabs, one connection; tabs closed and opened in turn; no gap or duplicate in any tab', { timeout: 60000 }, async () => {
  n = 0;
  const channel = unique('shared');
  const solo = unique('solo');
  const base = await connections();
  const p1 = await open([channel]);
  const p2 = await open([channel]);
  const p3 = await open([channel, solo]);
  assert.equal(await connections() - base, 1, 'three tabs, one server connection');
  assert.equal(await subscribers(channel).catch(() => 0) <= 1, true);
  const clientIds = await Promise.all([p1, p2, p3].map((p) => p.evaluate(() => window.pw.client.clientId)));
  assert.ok(clientIds[0] && clientIds.every((id) => id === clientIds[0]), `one clientId: ${clientIds}`);

  await publish(channel, 10);
  for (const p of [p1, p2, p3]) await received(p, channel, 1, 10);
  assert.equal(await subscribers(channel), 1, 'the worker subscribed the channel once');

  // The solo channel is only p3's: closing p3 (no unsubscribe() call) unsubscribes it on the server.
  await server.publish(solo, { n: 0 });
  assert.equal(await subscribers(solo), 1);
  await closePage(p3);
  await waitFor(async () => (await subscribers(solo)) === 0, { what: 'the closed tab\'s channel unsubscribed on the server' });

  await closePage(p1);
  await publish(channel, 10);
  await received(p2, channel, 1, 20);

  // A newcomer gets the stream from its subscribe point on; one with `since` gets what followed it.
  const p4 = await open([channel]);
  const since = await p2.evaluate((c) => window.pw.subs[c].position, channel);
  const p5 = await open([]);
  await p5.evaluate(([c, s]) => window.sub(c, { epoch: s.epoch, offset: s.offset - 5 }), [channel, since]);
  await p5.waitForFunction((c) => window.pw.ch[c].subscribed.length > 0, channel, { polling: 20 });
  const sub5 = await p5.evaluate((c) => window.pw.ch[c].subscribed[0], channel);
  assert.equal(sub5.recovered, true, `resumed from since: ${JSON.stringify(sub5)}`);
  const from = await publish(channel, 10);
  await received(p2, channel, 1, 30);
  await received(p4, channel, from, 30);
  await received(p5, channel, 16, 30);
  assert.equal(await connections() - base, 1, 'still one connection after tabs came and went');

  // unsubscribe() in one tab: the others stay subscribed, the server keeps one subscription.
  await p2.evaluate((c) => window.pw.subs[c].unsubscribe(), channel);
  await publish(channel, 5);
  await received(p4, channel, from, 35);
  await received(p5, channel, 16, 35);
  assert.equal(await subscribers(channel), 1);
  assert.deepEqual(await p2.evaluate((c) => window.pw.ch[c].got.length, channel), 30, 'nothing after its unsubscribe');

  for (const p of [p2, p4, p5]) await closePage(p);
  await waitFor(async () => (await subscribers(channel)) === 0, { what: 'the last tab gone, the channel unsubscribed' });
  await waitFor(async () => (await connections()) === base, { what: 'the connection closed with the last tab' });
});

// A tab joining a live channel with a position further back than one history page (the server's
// default read is the newest 100): it gets everything after its position, not a gap.
test('SharedWorker: a tab joining with `since` 150 messages back gets all 150, recovered, no gap', { timeout: 60000 }, async () => {
  n = 0;
  const channel = unique('shared-far');
  const p1 = await open([channel]);
  await publish(channel, 160);
  await received(p1, channel, 1, 160);
  const at = await p1.evaluate((c) => window.pw.subs[c].position, channel);
  const p2 = await open([]);
  await p2.evaluate(([c, s]) => window.sub(c, { epoch: s.epoch, offset: 10 }), [channel, at]);
  await p2.waitForFunction((c) => window.pw.ch[c].subscribed.length > 0, channel, { polling: 20 });
  const sub2 = await p2.evaluate((c) => window.pw.ch[c].subscribed[0], channel);
  assert.equal(sub2.recovered, true, JSON.stringify(sub2));
  await publish(channel, 2);
  await received(p2, channel, 11, 162);
  for (const p of [p1, p2]) await closePage(p);
});

// The worker's transports: SSE (EventSource in the worker) and long-polling (fetch), with commands
// by POST; a tab closing and another opening in between.
for (const transport of ['sse', 'polling']) {
  test(`SharedWorker over ${transport}: two tabs, one connection, a tab replaced mid-stream`, { timeout: 60000 }, async () => {
    n = 0;
    const channel = unique(`demo:shared-${transport}`);   // demo: tabs may publish
    const opts = { ...FAST_CLIENT, transports: [transport], pollHoldMs: 1000 };
    const p1 = await open([channel], { opts, extra: `&shared=${transport}` });
    const p2 = await open([channel], { opts, extra: `&shared=${transport}` });
    assert.equal(await p2.evaluate(() => window.pw.client.transport), transport);
    // One connection: the server gave both tabs the same client id (a long-poll "connection" is a
    // lease between polls, so the id is the check that holds for both transports).
    const id = await p1.evaluate(() => window.pw.client.clientId);
    assert.ok(id && id === await p2.evaluate(() => window.pw.client.clientId), 'one connection for both tabs');
    await publish(channel, 10);
    await closePage(p1);
    await publish(channel, 10);
    const p3 = await open([channel], { opts, extra: `&shared=${transport}` });
    assert.equal(await p3.evaluate(() => window.pw.client.clientId), id);
    const from = await publish(channel, 10);
    // A publish from a tab goes out on the shared connection (POST /cmd on one-way transports).
    const result = await p3.evaluate((c) => window.pw.client.publish(c, { n: 31 }), channel);
    assert.equal(result.offset, 31);
    await received(p2, channel, 1, 31);
    await received(p3, channel, from, 31);
    for (const p of [p2, p3]) await closePage(p);
  });
}

// No SharedWorker: the first tab leads. It is closed while the stream is being published; the new
// leader (another tab) opens a connection and resumes from the positions the tabs had seen.
const NO_WORKER = () => { delete globalThis.SharedWorker; };

test('leader tab (no SharedWorker): one connection; the leader closed mid-stream, the others continue without gap or duplicate', { timeout: 60000 }, async () => {
  n = 0;
  const channel = unique('leader');
  const base = await connections();
  const p1 = await open([channel], { init: NO_WORKER });
  const p2 = await open([channel], { init: NO_WORKER });
  const p3 = await open([channel], { init: NO_WORKER });
  assert.equal(await connections() - base, 1, 'three tabs, one server connection');
  assert.equal(await p2.evaluate(() => typeof SharedWorker), 'undefined');
  const firstId = await p2.evaluate(() => window.pw.client.clientId);

  const TOTAL = 80;
  let closing = null;
  for (let i = 1; i <= TOTAL; i++) {
    await server.publish(channel, { n: i });
    if (i === 25) closing = closePage(p1);   // the leader goes away while numbers keep coming
  }
  await closing;
  for (const p of [p2, p3]) await received(p, channel, 1, TOTAL);
  const ids = await Promise.all([p2, p3].map((p) => p.evaluate(() => window.pw.client.clientId)));
  assert.ok(ids[0] !== firstId && ids[0] === ids[1], `a new connection, shared: ${firstId} -> ${ids}`);
  await waitFor(async () => (await connections()) - base === 1, { what: 'one connection after the hand-over' });
  // The tabs saw the hand-over as a reconnect.
  assert.ok((await p2.evaluate(() => window.pw.states)).includes('reconnecting'));

  // In turn: a tab opens, the new leader closes, the rest carry on.
  const p4 = await open([channel], { init: NO_WORKER });
  await closePage(p2);   // the leader now: it was first in the lock's queue after p1
  for (let i = TOTAL + 1; i <= TOTAL + 20; i++) await server.publish(channel, { n: i });
  await received(p3, channel, 1, TOTAL + 20);
  await received(p4, channel, TOTAL + 1, TOTAL + 20);   // from its subscribe point on
  await waitFor(async () => (await connections()) - base === 1, { what: 'one connection after the second hand-over' }).catch(async (e) => {
    const stats = await server.api('GET', '/api/stats');
    const seen = await Promise.all([p3, p4].map((p) => p.evaluate(() => [window.pw.client.clientId, window.pw.states.join(',')])));
    throw new Error(`${e.message}: connections ${JSON.stringify(stats.connections)} (base ${base}), tabs ${JSON.stringify(seen)}`);
  });
  for (const p of [p3, p4]) await closePage(p);
});

// A page whose Content-Security-Policy forbids workers (worker-src 'none'): the SharedWorker cannot
// start, so the tabs share through a leader tab instead of each failing or opening its own (checked
// to fail when the worker's error does not lead to the leader fallback).
test("a policy that forbids workers: the tabs share through a leader tab", { timeout: 60000 }, async () => {
  n = 0;
  const channel = unique('no-workers');
  const base = await connections();
  const p1 = await open([channel], { html: 'no-workers.html' });
  const p2 = await open([channel], { html: 'no-workers.html' });
  assert.equal(await connections() - base, 1, 'two tabs, one server connection');
  // Chromium refuses the worker after the fact (an error event); the tab then elects a leader.
  const held = await p1.evaluate(async () => (await navigator.locks.query()).held.map((l) => l.name));
  assert.ok(held.some((name) => name.startsWith('pushwire-leader:')), `a leader tab holds the connection: ${held}`);
  await publish(channel, 10);
  for (const p of [p1, p2]) await received(p, channel, 1, 10);
  for (const p of [p1, p2]) await closePage(p);
});

// getToken with a shared connection: asked in one tab; when that tab goes away before answering,
// the question goes to another tab that gave a getToken. The first tab's first token is expired
// (refused with 4005), and it never answers the second question; it is then closed.
const SECRET = 'shared-token-secret';
function token(expInS) {
  const enc = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const head = `${enc({ alg: 'HS256', typ: 'JWT' })}.${enc({ sub: 'alice', exp: Math.floor(Date.now() / 1000) + expInS })}`;
  return `${head}.${createHmac('sha256', SECRET).update(head).digest('base64url')}`;
}

test('getToken: asked in one tab; that tab closed while asked, another tab answers', { timeout: 60000 }, async () => {
  const authed = await startServer(['--token-secret', SECRET]);
  try {
    const channel = unique('tokens');
    const calls = { p1: [], p2: [] };
    const extra = `&token&server=${encodeURIComponent(authed.url)}&shared=alice`;
    const p1 = await open([channel], { extra, ready: false, mintToken: (code) => {
      calls.p1.push(code);
      return calls.p1.length === 1 ? token(-120) : new Promise(() => {});   // expired; then no answer
    } });
    await waitFor(() => calls.p1.length === 2, { what: 'the first tab asked again after the 4005' });
    assert.deepEqual(calls.p1, [0, 4005]);
    const p2 = await open([channel], { extra, ready: false, mintToken: (code) => {
      calls.p2.push(code);
      return token(600);
    } });
    await p2.waitForFunction(() => window.pw?.client, null, { polling: 20 });
    assert.deepEqual(calls.p2, [], 'only one tab is asked at a time');
    await p1.close();
    await p2.waitForFunction((c) => window.pw.client.state === 'connected' && window.pw.ch[c]?.subscribed.length > 0, channel,
      { polling: 20, timeout: 10000 });
    assert.deepEqual(calls.p2, [4005], 'the question moved to the other tab');
    await authed.publish(channel, { n: 1 });
    await p2.waitForFunction((c) => window.pw.ch[c].got.length === 1, channel, { polling: 20, timeout: 10000 });
    await p2.close();
  } finally {
    await authed.stop();
  }
});
