// The Pusher endpoint across nodes on the Redis engine (issue 14 item 5): the real pusher-js on two
// nodes sees one presence channel (one member per user, member_added / member_removed from the
// other node), client events reach the other node's subscribers and never their sender, and a
// Pushwire API publish on one node reaches pusher-js on the other. The nodes run --demo, which
// configures the Pusher app `demo` (key pushwire-demo, secret demo-secret, namespace demo).
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { after, before, test } from 'node:test';
import Pusher from 'pusher-js';
import { startCluster, waitFor } from './cluster.mjs';

const KEY = 'pushwire-demo';
const SECRET = 'demo-secret';
let cl;
const clients = [];
before(async () => {
  cl = await startCluster({ nodes: 2 });
});
after(async () => {
  for (const c of clients) c.disconnect();
  await cl?.cleanup();
});

// What an app's auth endpoint answers (Pusher's documented signature), computed here directly.
function authorize(socketId, channel, channelData) {
  const text = channelData ? `${socketId}:${channel}:${channelData}` : `${socketId}:${channel}`;
  const auth = `${KEY}:${createHmac('sha256', SECRET).update(text).digest('hex')}`;
  return channelData ? { auth, channel_data: channelData } : { auth };
}

function connect(node, user) {
  const p = new Pusher(KEY, {
    wsHost: '127.0.0.1', wsPort: node.port, forceTLS: false, enabledTransports: ['ws'], cluster: 'mt1',
    disableStats: true,
    channelAuthorization: {
      customHandler: ({ socketId, channelName }, cb) =>
        cb(null, authorize(socketId, channelName,
          channelName.startsWith('presence-') ? JSON.stringify({ user_id: user, user_info: { name: user } }) : undefined)),
    },
  });
  clients.push(p);
  return p;
}
const event = (target, name) => new Promise((resolve) => target.bind(name, resolve));

test('presence, client events and publications across two nodes', async () => {
  const [A, B] = cl.nodes;
  const a = connect(A, 'ann');
  const b = connect(B, 'bob');
  const b2 = connect(B, 'bob');   // a second connection of the same user, on the other node
  await Promise.all([a, b, b2].map((p) => event(p.connection, 'connected')));
  const ids = [a, b, b2].map((p) => p.connection.socket_id);
  assert.equal(new Set(ids).size, 3, `socket ids are unique over the cluster: ${ids}`);
  for (const id of ids) assert.match(id, /^\d+\.\d+$/);

  const roomA = a.subscribe('presence-room');
  await event(roomA, 'pusher:subscription_succeeded');
  const added = [];
  roomA.bind('pusher:member_added', (m) => added.push(m.id));
  const roomB = b.subscribe('presence-room');
  const listB = await event(roomB, 'pusher:subscription_succeeded');
  assert.deepEqual(Object.keys(listB.members).sort(), ['ann', 'bob'], 'B sees A\'s member, from the other node');
  await waitFor(() => added.includes('bob'), { what: 'member_added on A for B' });
  const roomB2 = b2.subscribe('presence-room');
  const listB2 = await event(roomB2, 'pusher:subscription_succeeded');
  assert.equal(listB2.count, 2, 'one member per user over its connections');

  // Client events: B's reach A (on the other node) and B2 but not B itself.
  const privA = a.subscribe('private-chat');
  const privB = b.subscribe('private-chat');
  const privB2 = b2.subscribe('private-chat');
  await Promise.all([privA, privB, privB2].map((c) => event(c, 'pusher:subscription_succeeded')));
  const echoed = [];
  privB.bind('client-typing', (d) => echoed.push(d));
  const atA = event(privA, 'client-typing');
  const atB2 = event(privB2, 'client-typing');
  assert.equal(privB.trigger('client-typing', { who: 'bob' }), true);
  assert.deepEqual(await atA, { who: 'bob' });
  assert.deepEqual(await atB2, { who: 'bob' });

  // A Pushwire publication on node A reaches pusher-js on node B as its event.
  const pubB = b.subscribe('news');
  await event(pubB, 'pusher:subscription_succeeded');
  const got = event(pubB, 'Score');
  await A.publish('demo:news', { event: 'Score', data: { home: 2 } });
  assert.deepEqual(await got, { home: 2 });
  assert.deepEqual(echoed, [], 'a client event never comes back to its sender');

  // Bob's last connection leaving makes him leave; one of two does not.
  const removed = [];
  roomA.bind('pusher:member_removed', (m) => removed.push(m.id));
  b.disconnect();
  await waitFor(async () => (await A.presence('demo:presence-room')).members.length === 2, { what: 'B gone from presence' });
  assert.deepEqual(removed, [], 'bob still has a connection');
  b2.disconnect();
  await waitFor(() => removed.includes('bob'), { what: 'member_removed on A when bob\'s last connection left' });
  assert.equal(roomA.members.count, 1);
});
