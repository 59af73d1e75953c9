// The Pusher HTTP API (issue 14 item 3) driven by the real `pusher` server SDK 5.3.4 from npm against
// a real server: trigger, triggerBatch, channel queries, presence users, terminate_connections, the
// signature and its refusals, and every limit. The subscribers are Pushwire SSE readers of the same
// hub channels (one hub: an event triggered through the Pusher API reaches them, with its data per
// protocol/pusher/pusher_mapping.hpp); presence members are SSE readers with a token (user = sub).
import assert from 'node:assert/strict';
import { createHash, createHmac } from 'node:crypto';
import { after, before, test } from 'node:test';
import { APP, refusal, startPusherServer, waitFor } from './api-server.mjs';

const MAX_MESSAGE = 2000;
const MAX_BATCH = 10;
let srv;
let pusher;
const streams = [];
before(async () => {
  srv = await startPusherServer({ extra: ['--max-message-bytes', String(MAX_MESSAGE), '--max-batch', String(MAX_BATCH)] });
  pusher = srv.pusher();
});
after(async () => {
  for (const s of streams) s.close();
  await srv?.stop();
});

// An SSE reader of the app's channel, subscribed (its `subscribed` frame arrived).
async function reader(name, user) {
  const s = srv.sse(name, user);
  streams.push(s);
  await s.ready;
  assert.equal(s.status, 200, s.body);
  await waitFor(() => s.controls('subscribed').length > 0, { what: `subscribed to ${name}` });
  return s;
}
const json = async (res) => res.json();

test('trigger reaches SSE readers of the same hub channel, data per the mapping', async () => {
  const s = await reader('news');
  const res = await pusher.trigger('news', 'greeting', { hello: 'world' });
  assert.equal(res.status, 200);
  assert.deepEqual(await json(res), {});
  await pusher.trigger('news', 'plain', 'just text');
  const msgs = await waitFor(() => s.messages().length >= 2 && s.messages(), { what: 'two messages' });
  assert.equal(msgs[0].channel, 'demo:news');
  // An object (sent by the SDK as JSON text) travels as JSON; any other string as a string.
  assert.deepEqual(msgs[0].data, { event: 'greeting', data: { hello: 'world' } });
  assert.deepEqual(msgs[1].data, { event: 'plain', data: 'just text' });
});

test('trigger to several channels with socket_id exclusion and info', async () => {
  const a = await reader('multi-a');
  const b = await reader('multi-b');
  await reader('multi-b');
  const res = await pusher.trigger(['multi-a', 'multi-b'], 'ev', 'x', { socket_id: '123.456', info: 'subscription_count' });
  assert.deepEqual(await json(res), {
    channels: { 'multi-a': { subscription_count: 1 }, 'multi-b': { subscription_count: 2 } },
  });
  for (const s of [a, b]) {
    const [m] = await waitFor(() => s.messages().length && s.messages(), { what: 'the event' });
    assert.deepEqual(m.data, { event: 'ev', data: 'x', socket_id: '123.456' });
  }
});

test('triggerBatch publishes every event in order, with info per event when asked', async () => {
  const s = await reader('batch');
  const res = await pusher.triggerBatch([
    { channel: 'batch', name: 'one', data: '1' },
    { channel: 'batch', name: 'two', data: { n: 2 }, info: 'subscription_count' },
  ]);
  assert.deepEqual(await json(res), { batch: [{}, { subscription_count: 1 }] });
  const msgs = await waitFor(() => s.messages().length >= 2 && s.messages(), { what: 'two messages' });
  assert.deepEqual(msgs.map((m) => m.data), [{ event: 'one', data: '1' }, { event: 'two', data: { n: 2 } }]);
  assert.deepEqual(await json(await pusher.triggerBatch([{ channel: 'batch', name: 'three', data: '3' }])), {});
});

test('channel queries: list with prefix and user_count, one channel, presence users', async () => {
  await reader('presence-room', 'alice');
  await reader('presence-room', 'alice');   // one user, two connections
  await reader('presence-room', 'bob');
  await reader('listed');
  const list = await json(await pusher.get({ path: '/channels' }));
  assert.ok(list.channels['presence-room'] && list.channels.listed, JSON.stringify(list));
  assert.deepEqual(list.channels.listed, {});
  const presence = await json(await pusher.get({ path: '/channels', params: { filter_by_prefix: 'presence-', info: 'user_count' } }));
  assert.deepEqual(presence, { channels: { 'presence-room': { user_count: 2 } } });
  const prefixed = await json(await pusher.get({ path: '/channels', params: { filter_by_prefix: 'lis' } }));
  assert.deepEqual(prefixed, { channels: { listed: {} } });

  const room = await json(await pusher.get({ path: '/channels/presence-room', params: { info: 'user_count,subscription_count' } }));
  assert.deepEqual(room, { occupied: true, subscription_count: 3, user_count: 2 });
  assert.deepEqual(await json(await pusher.get({ path: '/channels/listed' })), { occupied: true });
  assert.deepEqual(await json(await pusher.get({ path: '/channels/nobody-here', params: { info: 'subscription_count' } })),
    { occupied: false, subscription_count: 0 });

  const users = await json(await pusher.get({ path: '/channels/presence-room/users' }));
  assert.deepEqual(users, { users: [{ id: 'alice' }, { id: 'bob' }] });

  // Pusher's rules: user_count only where every channel is a presence one.
  assert.equal((await refusal(pusher.get({ path: '/channels', params: { info: 'user_count' } }))).status, 400);
  assert.equal((await refusal(pusher.get({ path: '/channels/listed', params: { info: 'user_count' } }))).status, 400);
  assert.equal((await refusal(pusher.get({ path: '/channels/listed/users' }))).status, 400);
  assert.equal((await refusal(pusher.get({ path: '/channels', params: { info: 'bogus' } }))).status, 400);
});

test('terminate_connections disconnects every connection of the user, and no one else', async () => {
  // A Pusher user's connections are in the registry as pusher:<app>:<user>; a Pushwire reader with
  // that token user stands in for them here.
  const victim = await reader('term', `pusher:${APP.id}:carol`);
  const other = await reader('term', `pusher:${APP.id}:dave`);
  const res = await pusher.terminateUserConnections('carol');
  assert.deepEqual(await json(res), {});
  await waitFor(() => victim.closed, { what: "carol's stream to close" });
  const [d] = victim.controls('disconnect');
  assert.equal(d.code, 4009);
  assert.equal(d.reconnect, false);
  assert.equal(other.closed, false);
  // A user id in the path: 1-200 bytes.
  assert.deepEqual(await json(await pusher.terminateUserConnections('u'.repeat(200))), {});
  assert.equal((await refusal(pusher.terminateUserConnections('u'.repeat(201)))).status, 400);
});

// A request signed by hand (as the SDK does) with any timestamp.
function signed(method, path, body, { timestamp = Math.floor(Date.now() / 1000), secret = APP.secret, md5 } = {}) {
  const params = { auth_key: APP.key, auth_timestamp: String(timestamp), auth_version: '1.0' };
  if (body) params.body_md5 = md5 ?? createHash('md5').update(body).digest('hex');
  const query = Object.keys(params).sort().map((k) => `${k}=${params[k]}`).join('&');
  const sig = createHmac('sha256', secret).update(`${method}\n${path}\n${query}`).digest('hex');
  return fetch(`${srv.url}${path}?${query}&auth_signature=${sig}`, {
    method, body, headers: body ? { 'Content-Type': 'application/json' } : {},
  });
}

test('wrong secret, old or future timestamp, bad body_md5, missing signature: 401; unknown app or path: 404', async () => {
  const wrong = srv.pusher({ ...APP, secret: 'not-the-secret' });
  assert.equal((await refusal(wrong.trigger('news', 'e', 'x'))).status, 401);
  assert.equal((await refusal(wrong.get({ path: '/channels' }))).status, 401);
  const now = Math.floor(Date.now() / 1000);
  assert.equal((await signed('GET', `/apps/${APP.id}/channels`)).status, 200);
  assert.equal((await signed('GET', `/apps/${APP.id}/channels`, undefined, { timestamp: now - 700 })).status, 401);
  assert.equal((await signed('GET', `/apps/${APP.id}/channels`, undefined, { timestamp: now + 700 })).status, 401);
  const body = JSON.stringify({ name: 'e', data: 'x', channel: 'news' });
  assert.equal((await signed('POST', `/apps/${APP.id}/events`, body)).status, 200);
  assert.equal((await signed('POST', `/apps/${APP.id}/events`, body, { md5: 'f'.repeat(32) })).status, 401);
  assert.equal((await fetch(`${srv.url}/apps/${APP.id}/channels?auth_key=${APP.key}`)).status, 401);
  const other = srv.pusher({ ...APP, id: '999' });
  assert.equal((await refusal(other.get({ path: '/channels' }))).status, 404);
  assert.equal((await refusal(pusher.get({ path: '/nothing-here' }))).status, 404);
  assert.equal((await refusal(pusher.get({ path: '/events' }))).status, 405);
});

test('limits: data size, channels per event, batch size, names, socket_id', async () => {
  const s = await reader('limits');
  // Exactly --max-message-bytes of data passes; one more byte is 413.
  await pusher.trigger('limits', 'big', 'x'.repeat(MAX_MESSAGE));
  assert.equal((await refusal(pusher.trigger('limits', 'big', 'x'.repeat(MAX_MESSAGE + 1)))).status, 413);
  await waitFor(() => s.messages().length === 1, { what: 'the event of exactly the limit' });
  // The SDK checks these itself; post() sends them anyway.
  const channels = (n) => Array.from({ length: n }, (_, i) => `c${i}`);
  assert.equal((await pusher.post({ path: '/events', body: { name: 'e', data: 'x', channels: channels(100) } })).status, 200);
  assert.equal((await refusal(pusher.post({ path: '/events', body: { name: 'e', data: 'x', channels: channels(101) } }))).status, 400);
  const batch = (n) => Array.from({ length: n }, () => ({ channel: 'limits', name: 'b', data: 'x' }));
  assert.equal((await pusher.triggerBatch(batch(MAX_BATCH))).status, 200);
  assert.equal((await refusal(pusher.triggerBatch(batch(MAX_BATCH + 1)))).status, 413);
  const bad = [
    { name: 'e', data: 'x', channels: ['bad channel'] },
    { name: 'e', data: 'x', channels: ['a'.repeat(165)] },
    { name: 'e'.repeat(201), data: 'x', channels: ['ok'] },
    { name: 'e', data: { not: 'a string' }, channels: ['ok'] },
    { name: 'e', data: 'x', channels: ['ok'], socket_id: '12a.3' },
    { name: 'e', data: 'x' },
    { name: 'e', data: 'x', channels: [] },
  ];
  for (const body of bad) assert.equal((await refusal(pusher.post({ path: '/events', body }))).status, 400, JSON.stringify(body).slice(0, 80));
  assert.equal((await pusher.post({ path: '/events', body: { name: 'e', data: 'x', channels: ['a'.repeat(164)] } })).status, 200);
  // One bad event refuses the whole batch, and nothing of it is published.
  const mixed = [{ channel: 'limits', name: 'ok', data: 'x' }, { channel: 'bad name', name: 'no', data: 'x' }];
  assert.equal((await refusal(pusher.triggerBatch(mixed))).status, 400);
  await pusher.trigger('limits', 'marker', 'm');
  const all = await waitFor(() => s.messages().find((m) => m.data.event === 'marker') && s.messages(), { what: 'the marker' });
  assert.ok(!all.some((m) => m.data.event === 'ok'), 'nothing of the refused batch was published');
  assert.equal(all.filter((m) => m.data.event === 'b').length, MAX_BATCH);
});
