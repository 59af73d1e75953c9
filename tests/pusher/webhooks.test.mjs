// Pusher webhooks (issue 14 item 4) from a real server to receivers in this test, each request
// checked with the `pusher` SDK's own webhook checker (pusher.webhook(req).isValid()): occupied and
// vacated as this node's first and last subscriber come and go, each webhook's event filter,
// batching bounded by --pusher-webhook-max-batch, a retry after a failed request. The subscribers are
// Pushwire SSE readers of the app's hub channels. member_added / client_event come from the Pusher
// WebSocket endpoint.
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { after, before, test } from 'node:test';
import { APP, Pusher, startPusherServer, startReceiver, waitFor } from './api-server.mjs';

const MAX_BATCH = 2;
let srv;
let all;        // every event, always 200
let vacated;    // channel_vacated only
let flaky;      // every event; its first request is answered 500
const streams = [];
before(async () => {
  all = await startReceiver();
  vacated = await startReceiver();
  flaky = await startReceiver((n) => (n === 0 ? 500 : 200));
  const app = { ...APP, webhooks: [
    { url: all.url('/all') },
    { url: vacated.url('/vacated'), events: ['channel_vacated'] },
    { url: flaky.url('/flaky') },
  ] };
  srv = await startPusherServer({ apps: [app], extra: ['--pusher-webhook-batch-ms', '200',
    '--pusher-webhook-max-batch', String(MAX_BATCH), '--pusher-webhook-backoff-ms', '20'] });
});
after(async () => {
  for (const s of streams) s.close();
  await srv?.stop();
  await Promise.all([all, vacated, flaky].map((r) => r?.close()));
});

async function reader(name) {
  const s = srv.sse(name);
  streams.push(s);
  await s.ready;
  await waitFor(() => s.controls('subscribed').length > 0, { what: `subscribed to ${name}` });
  return s;
}
const checker = new Pusher({ appId: APP.id, key: APP.key, secret: APP.secret });
const has = (r, name, channel) => r.events().some((e) => e.name === name && e.channel === channel);

test('channel_occupied and channel_vacated, signed as the SDK checks, Pusher body shape', async () => {
  const s = await reader('hooked');
  await waitFor(() => has(all, 'channel_occupied', 'hooked'), { what: 'channel_occupied' });
  s.close();
  await waitFor(() => has(all, 'channel_vacated', 'hooked'), { what: 'channel_vacated' });
  for (const req of all.got) {
    assert.equal(req.headers['content-type'], 'application/json');
    assert.equal(req.headers['x-pusher-key'], APP.key);
    const hook = checker.webhook(req);
    assert.equal(hook.isValid(), true, req.rawBody);
    const body = JSON.parse(req.rawBody);
    assert.equal(typeof body.time_ms, 'number');
    assert.ok(Math.abs(body.time_ms - Date.now()) < 60000);
    assert.deepEqual(hook.getEvents(), body.events);
    // The checker is not a rubber stamp: the same request under another secret is invalid.
    const wrong = new Pusher({ appId: APP.id, key: APP.key, secret: 'other' });
    assert.equal(wrong.webhook(req).isValid(), false);
    assert.equal(checker.webhook({ ...req, rawBody: req.rawBody.replace('hooked', 'hacked') }).isValid(), false);
  }
  const mine = all.events().filter((e) => e.channel === 'hooked');
  assert.deepEqual(mine, [{ name: 'channel_occupied', channel: 'hooked' }, { name: 'channel_vacated', channel: 'hooked' }]);
  // A second subscriber of an occupied channel is no news; the last one leaving is.
  const a = await reader('twice');
  const b = await reader('twice');
  a.close();
  b.close();
  await waitFor(() => has(all, 'channel_vacated', 'twice'), { what: 'twice vacated' });
  assert.deepEqual(all.events().filter((e) => e.channel === 'twice').map((e) => e.name), ['channel_occupied', 'channel_vacated']);
});

test("each webhook gets only the kinds it lists", async () => {
  const s = await reader('filtered');
  s.close();
  await waitFor(() => has(vacated, 'channel_vacated', 'filtered'), { what: 'vacated on the filtered hook' });
  assert.ok(vacated.events().every((e) => e.name === 'channel_vacated'), JSON.stringify(vacated.events()));
});

test('events within the batch window share a request, at most --pusher-webhook-max-batch each', async () => {
  const names = ['b1', 'b2', 'b3'];
  await Promise.all(names.map((n) => reader(n)));
  await waitFor(() => names.every((n) => has(all, 'channel_occupied', n)), { what: 'three occupied events' });
  const sizes = all.got.map((g) => JSON.parse(g.rawBody).events.length);
  assert.ok(sizes.every((n) => n <= MAX_BATCH), `request sizes ${sizes}`);
  assert.ok(sizes.some((n) => n === MAX_BATCH), `no request carried a full batch: ${sizes}`);
});

test('a failed request is retried (same body) and then delivered', async () => {
  await waitFor(() => flaky.got.length >= 2, { what: 'the retry' });
  assert.equal(flaky.got[0].status, 500);
  assert.equal(flaky.got[1].rawBody, flaky.got[0].rawBody);
  assert.equal(checker.webhook(flaky.got[1]).isValid(), true);
});

test('member_added, member_removed and client_event from Pusher WebSocket connections', async () => {
  const { default: WebSocket } = await import('ws');
  const ws = new WebSocket(`ws://127.0.0.1:${srv.port}/app/${APP.key}?protocol=7&client=test&version=1`);
  streams.push({ close: () => ws.close() });
  const frames = [];
  ws.on('message', (d) => frames.push(JSON.parse(String(d))));
  const established = await waitFor(() => frames.find((f) => f.event === 'pusher:connection_established'),
    { what: 'connection_established' });
  const socketId = JSON.parse(established.data).socket_id;
  const channel = 'presence-hooks';
  const channelData = JSON.stringify({ user_id: 'erin', user_info: {} });
  const sig = createHmac('sha256', APP.secret).update(`${socketId}:${channel}:${channelData}`).digest('hex');
  ws.send(JSON.stringify({ event: 'pusher:subscribe', data: { channel, auth: `${APP.key}:${sig}`, channel_data: channelData } }));
  await waitFor(() => frames.find((f) => f.event === 'pusher_internal:subscription_succeeded'), { what: 'subscribed' });
  await waitFor(() => all.events().some((e) => e.name === 'member_added' && e.user_id === 'erin'), { what: 'member_added' });
  ws.send(JSON.stringify({ event: 'client-typing', channel, data: { on: true } }));
  const ce = await waitFor(() => all.events().find((e) => e.name === 'client_event' && e.channel === channel),
    { what: 'client_event' });
  assert.equal(ce.event, 'client-typing');
  assert.equal(ce.socket_id, socketId);
  assert.equal(ce.user_id, 'erin');
  ws.close();
  await waitFor(() => all.events().some((e) => e.name === 'member_removed' && e.user_id === 'erin'), { what: 'member_removed' });
});
