// pusher-js 8.6.0 (its Node build, unchanged from npm) against the real server's /app/{key}
// endpoint: the handshake, every channel kind, client events, user sign-in, reconnection and the
// ping/pong activity check. Publications come from the Pushwire API, so each delivery also checks
// the one mapping between hub publications and Pusher events (protocol/pusher/pusher_mapping.hpp):
//   {"event":E,"data":<JSON object/array>}  -> event E, data the same value
//   {"event":E,"data":"text"}               -> event E, data the string
//   {"event":E,"data":D,"socket_id":S}      -> event E to everyone but the connection S
//   anything else                           -> event `message`, data the whole publication
import { test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import {
  APP, startPusherServer, startAuthServer, serverSdk, newClient, closeAll, connected, nextEvent, record,
  subscribed, unique, waitFor, errorCode, isPusherError, encrypt, firstEvent,
} from './helpers.mjs';
import { startServer, loadClient, once, FAST } from '../js/helpers.mjs';

// Pushwire's own client, on the same hub channels.
const { Client } = await loadClient();

let server, auth;
before(async () => {
  server = await startPusherServer();
  auth = await startAuthServer(server);
});
afterEach(() => closeAll());
after(async () => {
  closeAll();
  await auth?.close();
  await server?.stop();
});

const publish = (channel, data) => server.publish(channel, data);
const ours = (events) => events.filter((e) => !e.event.startsWith('pusher:'));

// Publishes a marker and waits for it on `events`: everything published before it to the same
// channel has been delivered by then (the hub delivers a channel's publications in order).
async function fence(channel, events) {
  const id = unique('fence');
  await publish(channel, { event: 'fence', data: { id } });
  await waitFor(() => events.some((e) => e.event === 'fence' && e.data?.id === id), { what: `fence on ${channel}` });
}

test('connection_established: a socket_id of the form digits.digits and the activity timeout', async () => {
  const a = newClient(server);
  const b = newClient(server);
  const [idA, idB] = await Promise.all([connected(a), connected(b)]);
  assert.match(idA, /^\d+\.\d+$/);
  assert.match(idB, /^\d+\.\d+$/);
  assert.notEqual(idA, idB);
  // min(pusher-js's own 120 s, the server's activity_timeout, default 120 s).
  assert.equal(a.connection.activityTimeout, 120000);
});

test('an unknown app key is refused with 4001 and pusher-js does not retry', async () => {
  const wrong = newClient(server, { key: 'no-such-key' });
  const states = [];
  wrong.connection.bind('state_change', (x) => states.push(x.current));
  await nextEvent(wrong.connection, 'error', (e) => errorCode(e) === 4001);
  // 4000-4099: pusher-js gives up rather than reconnecting.
  await waitFor(() => wrong.connection.state === 'disconnected', { what: 'disconnected after 4001' });
  assert.ok(!states.includes('connected'), `states: ${states}`);
});

test('public channel: API publications arrive as Pusher events, by the mapping', async () => {
  const channel = unique('orders');
  const p = newClient(server);
  const ch = await subscribed(p, channel);
  const events = record(ch);
  await publish(channel, { event: 'shipped', data: { id: 7, items: ['a', 'b'] } });
  await publish(channel, { event: 'note', data: 'plain text' });
  await publish(channel, { event: 'list', data: [1, 2, 3] });
  await publish(channel, { text: 'no event member' });
  await publish(channel, 'a bare string');
  await fence(channel, events);
  assert.deepEqual(ours(events).slice(0, -1), [
    { event: 'shipped', data: { id: 7, items: ['a', 'b'] } },
    { event: 'note', data: 'plain text' },
    { event: 'list', data: [1, 2, 3] },
    { event: 'message', data: { text: 'no event member' } },
    { event: 'message', data: 'a bare string' },
  ]);
  // The client-level binding sees channel events too (pusher-js's global emitter).
  const global = nextEvent(p, 'shipped', (d) => d?.id === 8);
  await publish(channel, { event: 'shipped', data: { id: 8 } });
  await global;
});

test('public channel: a publication naming a socket_id skips that connection only', async () => {
  const channel = unique('news');
  const a = newClient(server);
  const b = newClient(server);
  const [chA, chB] = await Promise.all([subscribed(a, channel), subscribed(b, channel)]);
  const evA = record(chA);
  const evB = record(chB);
  await publish(channel, { event: 'update', data: { n: 1 }, socket_id: a.connection.socket_id });
  await fence(channel, evA);
  await fence(channel, evB);
  // The second fence was awaited at B only: A gets it in its own time.
  await waitFor(() => ours(evA).length === 2, { what: "the second fence at A" });
  assert.deepEqual(ours(evA).map((e) => e.event), ['fence', 'fence']);
  assert.deepEqual(ours(evB).map((e) => e.event), ['update', 'fence', 'fence']);
  assert.deepEqual(ours(evB)[0].data, { n: 1 });
});

test('one hub: server SDK triggers (HTTP API) reach a Pushwire client and pusher-js by the mapping', async () => {
  const channel = unique('scores');
  const pw = new Client(server.url, { ...FAST, transports: ['websocket'] });
  try {
    const hub = [];
    const sub = pw.subscribe(channel, { onMessage: (d) => hub.push(d) });
    await once(sub, 'subscribed');
    const p = newClient(server);
    const ch = await subscribed(p, channel);
    const events = record(ch);
    const sdk = serverSdk(server);
    await sdk.trigger(channel, 'goal', { team: 'home', minute: 12 });   // the SDK sends JSON.stringify of it
    await sdk.trigger(channel, 'text', 'half time');
    await sdk.trigger(channel, 'digits', '42');
    await sdk.trigger(channel, 'list', '[1,2]');
    await sdk.trigger(channel, 'not-for-p', { n: 1 }, { socket_id: p.connection.socket_id });
    await waitFor(() => hub.length >= 5, { what: 'five publications on the Pushwire client' });
    assert.deepEqual(hub, [
      { event: 'goal', data: { team: 'home', minute: 12 } },
      { event: 'text', data: 'half time' },
      { event: 'digits', data: '42' },
      { event: 'list', data: [1, 2] },
      { event: 'not-for-p', data: { n: 1 }, socket_id: p.connection.socket_id },
    ]);
    await fence(channel, events);
    // pusher-js parses every data string it can as JSON: '42' arrives as the number 42.
    assert.deepEqual(ours(events).slice(0, -1), [
      { event: 'goal', data: { team: 'home', minute: 12 } },
      { event: 'text', data: 'half time' },
      { event: 'digits', data: 42 },
      { event: 'list', data: [1, 2] },
    ]);
  } finally {
    pw.close();
  }
});

test('unsubscribe: the server sends nothing more for the channel', async () => {
  const channel = unique('feed');
  const other = unique('feed-other');
  const p = newClient(server);
  await subscribed(p, channel);
  const raw = [];
  p.connection.bind('message', (m) => raw.push(m));
  p.unsubscribe(channel);
  // Sent after the unsubscribe on the same socket: once it succeeded, the server handled both.
  const ch2 = await subscribed(p, other);
  const events2 = record(ch2);
  await publish(channel, { event: 'late', data: {} });
  await fence(other, events2);
  // Checked on the raw messages: pusher-js itself drops events of a channel it left.
  assert.deepEqual(raw.filter((m) => m.channel === channel), []);
});

test('private channel: authorized by the app secret, events delivered', async () => {
  const channel = unique('private-room');
  const p = newClient(server, { auth, user: 'alice' });
  const ch = await subscribed(p, channel);
  assert.ok(auth.seen.some((s) => s.path === '/auth' && s.channel_name === channel && s.socket_id === p.connection.socket_id));
  const got = nextEvent(ch, 'secret-plan', (d) => d?.step === 1);
  await publish(channel, { event: 'secret-plan', data: { step: 1 } });
  await got;
});

test('private channel: a signature made with another secret is refused', async () => {
  const channel = unique('private-vault');
  const p = newClient(server, { auth, user: 'mallory', forge: true });
  await connected(p);
  const ch = p.subscribe(channel);
  let succeeded = false;
  ch.bind('pusher:subscription_succeeded', () => { succeeded = true; });
  // Either form pusher-js understands: pusher:subscription_error on the channel, or pusher:error
  // on the connection.
  await firstEvent([[ch, 'pusher:subscription_error'], [p.connection, 'error', isPusherError]]);
  // Nothing published to the channel reaches the refused client.
  const probe = newClient(server, { auth, user: 'alice' });
  const chProbe = await subscribed(probe, channel);
  const probeEvents = record(chProbe);
  const events = record(ch);
  await publish(channel, { event: 'loot', data: {} });
  await fence(channel, probeEvents);
  assert.equal(succeeded, false);
  assert.deepEqual(ours(events), []);
});

test('presence and private: an empty auth, or channel_data other than what was signed, is refused', async () => {
  const sdk = serverSdk(server);
  const room = unique('presence-vip');
  const desk = unique('private-desk');
  // What an application's broken (or a tampering client's) authorizer would hand pusher-js.
  const p = newClient(server, {
    channelAuthorization: {
      customHandler: ({ socketId, channelName }, callback) => {
        if (channelName === desk) return callback(null, { auth: '' });
        const signed = sdk.authorizeChannel(socketId, channelName, { user_id: 'alice', user_info: {} });
        callback(null, { auth: signed.auth, channel_data: JSON.stringify({ user_id: 'admin', user_info: {} }) });
      },
    },
  });
  await connected(p);
  for (const name of [room, desk]) {
    const ch = p.subscribe(name);
    const first = await firstEvent([[ch, 'pusher:subscription_error'], [ch, 'pusher:subscription_succeeded']]);
    assert.equal(first.index, 0, `${name} must be refused`);
  }
});

test('presence: members with user_info, member_added/removed, one member per user across connections', async () => {
  const channel = unique('presence-lobby');
  const alice = newClient(server, { auth, user: 'alice' });
  const chA = await subscribed(alice, channel);
  assert.equal(chA.members.count, 1);
  assert.equal(chA.members.me.id, 'alice');
  assert.deepEqual(chA.members.me.info, { name: 'name of alice' });
  const added = [];
  const removed = [];
  chA.bind('pusher:member_added', (m) => added.push(m));
  chA.bind('pusher:member_removed', (m) => removed.push(m));

  const bob = newClient(server, { auth, user: 'bob' });
  const chB = await subscribed(bob, channel);
  const seenByBob = {};
  chB.members.each((m) => { seenByBob[m.id] = m.info; });
  assert.deepEqual(seenByBob, { alice: { name: 'name of alice' }, bob: { name: 'name of bob' } });
  await waitFor(() => added.length === 1, { what: 'member_added for bob' });
  assert.deepEqual(added[0], { id: 'bob', info: { name: 'name of bob' } });

  // Bob's second connection (another tab) is the same member: no member_added for it. Carol joins
  // after it, so her member_added is the fence.
  const bob2 = newClient(server, { auth, user: 'bob' });
  const chB2 = await subscribed(bob2, channel);
  assert.equal(chB2.members.count, 2);
  const carol = newClient(server, { auth, user: 'carol' });
  await subscribed(carol, channel);
  await waitFor(() => added.some((m) => m.id === 'carol'), { what: 'member_added for carol' });
  assert.deepEqual(added.map((m) => m.id), ['bob', 'carol']);
  assert.equal(chA.members.count, 3);

  // One of Bob's two connections leaving is not Bob leaving; the second is.
  bob2.disconnect();
  carol.disconnect();
  await waitFor(() => removed.some((m) => m.id === 'carol'), { what: 'member_removed for carol' });
  assert.deepEqual(removed.map((m) => m.id), ['carol']);
  bob.disconnect();
  await waitFor(() => removed.some((m) => m.id === 'bob'), { what: 'member_removed for bob' });
  assert.deepEqual(removed.map((m) => m.id), ['carol', 'bob']);
  assert.equal(chA.members.count, 1);
});

test('private-encrypted channel: ciphertext passes through untouched and pusher-js decrypts it', async () => {
  const channel = unique('private-encrypted-safe');
  const p = newClient(server, { auth, user: 'alice' });
  const ch = await subscribed(p, channel);
  const sealed = encrypt(serverSdk(server), channel, { pin: '1234' });
  const got = nextEvent(ch, 'code');
  await publish(channel, { event: 'code', data: sealed });
  assert.deepEqual(await got, { pin: '1234' });
  // The hub holds exactly what was published: the ciphertext, never the plaintext.
  const h = await server.api('GET', `/api/history?channel=${encodeURIComponent(channel)}&limit=10`);
  assert.deepEqual(h.publications.map((x) => x.data), [{ event: 'code', data: sealed }]);
});

test('private-encrypted channel: an event the server SDK encrypts and triggers (HTTP API) is decrypted', async () => {
  const channel = unique('private-encrypted-sdk');
  const p = newClient(server, { auth, user: 'alice' });
  const ch = await subscribed(p, channel);
  const got = nextEvent(ch, 'sealed');
  await serverSdk(server).trigger(channel, 'sealed', { text: 'for your eyes only' });
  assert.deepEqual(await got, { text: 'for your eyes only' });
  const h = await server.api('GET', `/api/history?channel=${encodeURIComponent(channel)}&limit=10`);
  assert.equal(h.publications.length, 1);
  assert.equal(h.publications[0].data.event, 'sealed');
  assert.ok(!JSON.stringify(h.publications).includes('for your eyes only'), 'the hub must never hold the plaintext');
});

test('cache channel: pusher:cache_miss when empty, then the last event replayed to a new subscriber', async () => {
  const channel = unique('cache-weather');
  const first = newClient(server);
  const ch1 = first.subscribe(channel);
  const miss = nextEvent(ch1, 'pusher:cache_miss');
  await nextEvent(ch1, 'pusher:subscription_succeeded');
  await miss;

  await publish(channel, { event: 'forecast', data: { day: 1, sky: 'rain' } });
  await publish(channel, { event: 'forecast', data: { day: 2, sky: 'sun' } });
  const late = newClient(server);
  const ch2 = late.subscribe(channel);
  const events = record(ch2);
  await nextEvent(ch2, 'pusher:subscription_succeeded');
  await waitFor(() => ours(events).length >= 1, { what: 'the cached event' });
  await fence(channel, events);
  assert.deepEqual(ours(events), [
    { event: 'forecast', data: { day: 2, sky: 'sun' } },
    { event: 'fence', data: ours(events)[1].data },
  ]);
  assert.ok(!events.some((e) => e.event === 'pusher:cache_miss'), 'no cache_miss on a channel with an event');
});

test('client events: private channel, delivered to others, never echoed, and on the hub by the mapping', async () => {
  const channel = unique('private-chat');
  const a = newClient(server, { auth, user: 'alice' });
  const b = newClient(server, { auth, user: 'bob' });
  const [chA, chB] = await Promise.all([subscribed(a, channel), subscribed(b, channel)]);
  const evA = record(chA);
  const got = nextEvent(chB, 'client-typing');
  assert.equal(chA.trigger('client-typing', { who: 'alice' }), true);
  assert.deepEqual(await got, { who: 'alice' });
  // Had it been echoed, it would reach A before a publication made after B received it.
  await fence(channel, evA);
  assert.deepEqual(ours(evA).map((e) => e.event), ['fence']);
  // Pushwire clients and SSE readers see it as the hub publication of the mapping.
  const h = await server.api('GET', `/api/history?channel=${encodeURIComponent(channel)}&limit=10`);
  const pub = h.publications[0].data;
  assert.equal(pub.event, 'client-typing');
  assert.deepEqual(pub.data, { who: 'alice' });
  if ('socket_id' in pub) assert.equal(pub.socket_id, a.connection.socket_id);
});

test("client events on a presence channel carry the sender's user_id (pusher-js's metadata)", async () => {
  const room = unique('presence-typing');
  const a = newClient(server, { auth, user: 'alice' });
  const b = newClient(server, { auth, user: 'bob' });
  const [chA, chB] = await Promise.all([subscribed(a, room), subscribed(b, room)]);
  let meta = null;
  const got = nextEvent(chB, 'client-typing', (d, m) => { meta = m; return true; });
  chA.trigger('client-typing', { on: true });
  assert.deepEqual(await got, { on: true });
  assert.deepEqual(meta, { user_id: 'alice' });
});

test('client events: not relayed on public channels', async () => {
  const open = unique('lobby');
  const priv = unique('private-lobby');
  const a = newClient(server, { auth, user: 'alice' });
  const b = newClient(server, { auth, user: 'bob' });
  const [pubA, pubB] = await Promise.all([subscribed(a, open), subscribed(b, open)]);
  const [privA, privB] = await Promise.all([subscribed(a, priv), subscribed(b, priv)]);
  const evB = record(pubB);
  pubA.trigger('client-sneaky', { n: 1 });
  // A's messages are handled in order: once B has the later private event, the public one would
  // have been published already.
  const fenceB = nextEvent(privB, 'client-after');
  privA.trigger('client-after', {});
  await fenceB;
  await fence(open, evB);
  assert.deepEqual(ours(evB).map((e) => e.event), ['fence']);
});

test('client events: over the rate limit pusher:error 4301, and the excess is dropped', async () => {
  const channel = unique('private-flood');
  const a = newClient(server, { auth, user: 'alice' });
  const b = newClient(server, { auth, user: 'bob' });
  const [chA, chB] = await Promise.all([subscribed(a, channel), subscribed(b, channel)]);
  const evB = record(chB);
  const limited = nextEvent(a.connection, 'error', (e) => errorCode(e) === 4301);
  for (let i = 0; i < 40; i++) chA.trigger('client-spam', { i });
  await limited;
  await fence(channel, evB);
  const delivered = ours(evB).filter((e) => e.event === 'client-spam').length;
  assert.ok(delivered >= 1 && delivered < 40, `delivered ${delivered} of 40`);
  assert.equal(a.connection.state, 'connected', 'a rate-limited client stays connected');
});

test('user sign-in: pusher.signin() then #server-to-user-{id} events reach pusher.user', async () => {
  const p = newClient(server, { auth, user: 'dana' });
  await connected(p);
  const success = nextEvent(p.connection, 'message', (m) => m?.event === 'pusher:signin_success');
  p.signin();
  const ok = await success;
  assert.equal(JSON.parse(ok.data.user_data).id, 'dana');
  assert.equal(p.user.user_data.id, 'dana');
  await waitFor(() => p.user.serverToUserChannel?.subscribed, { what: '#server-to-user-dana subscribed' });
  const got = nextEvent(p.user, 'account', (d) => d?.credit === 5);
  await serverSdk(server).sendToUser('dana', 'account', { credit: 5 });
  await got;
});

// The server closes with 4009 after its pusher:error; pusher-js then calls close() on the already
// closed socket of its Node transport (faye-websocket), which arms a 30 s close timer that keeps
// this file's process alive that long after its last test. pusher-js's doing, not the server's.
test('user sign-in: a forged signature is refused', async () => {
  const p = newClient(server, { auth, user: 'eve', forge: true });
  await connected(p);
  const refused = nextEvent(p.connection, 'error', isPusherError);
  p.signin();
  await refused;
  assert.equal(p.user.user_data, null);
});

test('reconnection: after /api/disconnect pusher-js reconnects, resubscribes and gets later events', async () => {
  const channel = unique('ticker');
  const priv = unique('private-ticker');
  const p = newClient(server, { auth, user: 'alice' });
  const ch = await subscribed(p, channel);
  const chPriv = await subscribed(p, priv);
  const before = p.connection.socket_id;
  const states = [];
  p.connection.bind('state_change', (s) => states.push(s.current));
  await server.disconnect({});
  await waitFor(() => states.includes('connecting') && p.connection.state === 'connected' && ch.subscribed && chPriv.subscribed,
    { what: 'reconnected and resubscribed' });
  assert.notEqual(p.connection.socket_id, before);
  const got = nextEvent(ch, 'tick', (d) => d?.n === 2);
  const gotPriv = nextEvent(chPriv, 'tick', (d) => d?.n === 3);
  await publish(channel, { event: 'tick', data: { n: 2 } });
  await publish(priv, { event: 'tick', data: { n: 3 } });
  await Promise.all([got, gotPriv]);
});

test('reconnection: the server killed (SIGKILL) and started again on the same port', async () => {
  let s = await startPusherServer();
  try {
    const port = s.port;
    const channel = unique('resilient');
    const p = newClient(s);
    const ch = await subscribed(p, channel);
    const states = [];
    p.connection.bind('state_change', (x) => states.push(x.current));
    s.kill('SIGKILL');
    await s.stop();
    // Restarted at once, as a supervisor would. pusher-js retries 1 s after the drop; when that
    // attempt finds nothing listening, its next one comes 15 s later (its ws strategy's timeout),
    // hence the long deadline for a slow start.
    s = await startServer(['--pusher-app', `${APP.id}:${APP.key}:${APP.secret}`, '--port', String(port)]);
    assert.equal(s.port, port);
    await waitFor(() => states.includes('connecting') && p.connection.state === 'connected' && ch.subscribed,
      { timeoutMs: 25000, what: 'reconnected to the new server' });
    const got = nextEvent(ch, 'alive', (d) => d?.ok === true);
    await s.publish(channel, { event: 'alive', data: { ok: true } });
    await got;
  } finally {
    closeAll();
    await s.stop();
  }
});

test('activity timeout: pusher:ping/pong keep an idle connection across several timeouts', async () => {
  const s = await startPusherServer(['--pusher-activity-timeout-s', '1']);
  try {
    // A missing pong would make pusher-js drop the connection 1.5 s after its ping.
    const p = newClient(s, { pongTimeout: 1500 });
    const id = await connected(p);
    assert.equal(p.connection.activityTimeout, 1000);
    const states = [];
    p.connection.bind('state_change', (x) => states.push(x.current));
    // Whoever pings first (pusher-js after 1 s of silence, or the server), each exchange has a
    // ping and a pong; pusher-js answers a server ping by itself.
    let exchanges = 0;
    p.bind('pusher:pong', () => { exchanges += 1; });
    p.bind('pusher:ping', () => { exchanges += 1; });
    await waitFor(() => exchanges >= 3, { timeoutMs: 15000, what: 'three ping/pong exchanges' });
    assert.deepEqual(states, []);
    assert.equal(p.connection.socket_id, id);
  } finally {
    closeAll();
    await s.stop();
  }
});
