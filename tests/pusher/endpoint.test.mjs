// The Pusher endpoint's refusals and limits, over raw WebSockets (the `ws` package) so each test
// sees exactly what goes over the wire: the close codes of Pusher's ranges for an unknown key, a
// missing or unsupported protocol version and the app's connection quota; pusher:error for bad
// messages with the connection kept; the subscription limit; a message over the size limit; a
// slow consumer cut with 4100. The real pusher-js is in pusherjs.test.mjs and browser.test.mjs.
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { createHmac } from 'node:crypto';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import WebSocket from 'ws';
import { startServer } from '../js/helpers.mjs';

let srv;
let configDir;
before(async () => {
  // One app with a connection quota of 2, its channels in the default namespace.
  const { mkdtemp } = await import('node:fs/promises');
  const { tmpdir } = await import('node:os');
  configDir = await mkdtemp(join(tmpdir(), 'pusher-endpoint-'));
  const config = join(configDir, 'config.json');
  await writeFile(config, JSON.stringify({
    pusher_apps: [
      { id: '1', key: 'app-key', secret: 'app-secret', max_connections: 2 },
      { id: '2', key: 'big-key', secret: 'big-secret', namespace: 'big' },
    ],
  }));
  srv = await startServer(['--config', config, '--max-subscriptions', '3', '--max-message-bytes', '1000',
    '--queue-bytes', '65536', '--slow-consumer-grace-ms', '5000']);
});
after(async () => {
  await srv?.stop();
});

const wsUrl = (key, query = '?protocol=7') => `${srv.url.replace('http', 'ws')}/app/${key}${query}`;

// Opens a connection and collects its messages (parsed) and its close.
function open(key, query) {
  const ws = new WebSocket(wsUrl(key, query));
  const c = { ws, messages: [], closed: null };
  c.done = new Promise((resolve) => ws.on('close', (code, reason) => { c.closed = { code, reason: String(reason) }; resolve(c.closed); }));
  ws.on('message', (d) => c.messages.push(JSON.parse(String(d))));
  ws.on('error', () => {});
  c.next = async (pred, what = 'a message') => {
    const end = Date.now() + 5000;
    for (;;) {
      const i = c.messages.findIndex(pred);
      if (i >= 0) return c.messages.splice(i, 1)[0];
      if (c.closed || Date.now() > end) throw new Error(`no ${what}; got ${JSON.stringify(c.messages)} closed ${JSON.stringify(c.closed)}`);
      await new Promise((r) => setTimeout(r, 5));
    }
  };
  c.send = (o) => ws.send(typeof o === 'string' ? o : JSON.stringify(o));
  c.established = async () => JSON.parse((await c.next((m) => m.event === 'pusher:connection_established')).data);
  return c;
}

test('an unknown key, a missing or unsupported protocol are refused with Pusher close codes', async () => {
  for (const [key, query, code] of [['nope', '?protocol=7', 4001], ['app-key', '', 4008], ['app-key', '?protocol=4', 4007],
    ['app-key', '?protocol=8', 4007]]) {
    const c = open(key, query);
    const closed = await c.done;
    assert.equal(closed.code, code, `${key}${query}`);
    const err = c.messages.find((m) => m.event === 'pusher:error');
    assert.ok(err, `a pusher:error before the close for ${key}${query}`);
    assert.equal(JSON.parse(err.data).code, code);
  }
});

test("the app's max_connections refuses the next connection with 4004, and frees the slot on close", async () => {
  const a = open('app-key');
  const b = open('app-key');
  await a.established();
  await b.established();
  const c = open('app-key');
  assert.equal((await c.done).code, 4004);
  const other = open('big-key');   // another app's quota is its own
  await other.established();
  a.ws.close();
  await a.done;
  const d = open('app-key');
  const { socket_id: id } = await d.established();
  assert.match(id, /^\d+\.\d+$/);
  for (const x of [b, d, other]) x.ws.close();
  await Promise.all([b.done, d.done, other.done]);
});

test('bad messages are answered with pusher:error and the connection stays', async () => {
  const c = open('big-key');
  await c.established();
  for (const bad of ['not json', '[1,2]', '{"event":5}', '{"event":"pusher:subscribe","data":7}',
    '{"event":"unknown-thing","data":{}}', '{"event":"client-x","channel":"news","data":{}}']) {
    c.send(bad);
    const err = await c.next((m) => m.event === 'pusher:error', `an error for ${bad}`);
    assert.ok(JSON.parse(err.data).message, bad);
  }
  c.send({ event: 'pusher:ping', data: {} });
  await c.next((m) => m.event === 'pusher:pong');
  assert.equal(c.closed, null);
  c.ws.close();
  await c.done;
});

test('subscriptions past --max-subscriptions are refused on the channel; a wrong signature is an AuthError', async () => {
  const c = open('big-key');
  const { socket_id: socketId } = await c.established();
  for (const ch of ['a', 'b', 'c']) {
    c.send({ event: 'pusher:subscribe', data: { channel: ch } });
    await c.next((m) => m.event === 'pusher_internal:subscription_succeeded' && m.channel === ch);
  }
  c.send({ event: 'pusher:subscribe', data: { channel: 'd' } });
  const refused = await c.next((m) => m.event === 'pusher:subscription_error' && m.channel === 'd');
  assert.equal(JSON.parse(refused.data).type, 'LimitReached');
  c.send({ event: 'pusher:unsubscribe', data: { channel: 'a' } });
  const sig = (s) => createHmac('sha256', 'big-secret').update(s).digest('hex');
  c.send({ event: 'pusher:subscribe', data: { channel: 'private-x', auth: `big-key:${sig(`${socketId}:private-y`)}` } });
  const auth = await c.next((m) => m.event === 'pusher:subscription_error' && m.channel === 'private-x');
  assert.equal(JSON.parse(auth.data).status, 401);
  c.send({ event: 'pusher:subscribe', data: { channel: 'private-x', auth: `big-key:${sig(`${socketId}:private-x`)}` } });
  await c.next((m) => m.event === 'pusher_internal:subscription_succeeded' && m.channel === 'private-x');
  c.ws.close();
  await c.done;
});

test('a message over the size limit closes with 1009', async () => {
  const c = open('big-key');
  await c.established();
  c.send({ event: 'client-x', channel: 'private-x', data: 'x'.repeat(2000) });
  assert.equal((await c.done).code, 1009);
});

test('a subscriber that stops reading is cut as a slow consumer (4100) while others keep receiving', async () => {
  const slow = open('big-key');
  const fast = open('big-key');
  await slow.established();
  await fast.established();
  for (const c of [slow, fast]) {
    c.send({ event: 'pusher:subscribe', data: { channel: 'flood' } });
    await c.next((m) => m.event === 'pusher_internal:subscription_succeeded');
  }
  slow.ws._socket.pause();   // the kernel buffers fill, then the server's queue bound
  let got = 0;
  fast.ws.on('message', () => { got += 1; });
  const payload = 'y'.repeat(900);
  const cuts = async () => Number(/pushwire_slow_consumer_disconnects_total (\d+)/.exec(await (await fetch(`${srv.url}/metrics`)).text())[1]);
  const end = Date.now() + 20000;
  while ((await cuts()) === 0 && Date.now() < end)
    await Promise.all(Array.from({ length: 20 }, () => srv.api('POST', '/api/publish', { channel: 'big:flood', data: { p: payload } })));
  // The server gave up on it: reading again, it gets what was written before and the close, within
  // the grace the server leaves a stuck write to finish.
  slow.ws._socket.resume();
  const closed = await slow.done;
  assert.equal(closed.code, 4100, JSON.stringify(closed));
  assert.ok(got > 0);
  fast.ws.close();
  await fast.done;
});
