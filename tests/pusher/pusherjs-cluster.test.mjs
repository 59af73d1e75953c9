// pusher-js against two nodes on the Redis engine (issue 14 item 5): presence is one member list
// over the nodes (one member per user_id, whichever node each connection is on), client events and
// cache channels cross nodes, and an API publish on one node reaches pusher-js on the other.
import { test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { startNode, startRedis } from '../cluster/cluster.mjs';
import { APP, startAuthServer, newClient, closeAll, nextEvent, record, subscribed, unique, waitFor } from './helpers.mjs';

let redis, A, B, auth;
before(async () => {
  redis = await startRedis();
  const extra = ['--pusher-app', `${APP.id}:${APP.key}:${APP.secret}`];
  A = await startNode({ redis, id: 'na', extra });
  B = await startNode({ redis, id: 'nb', extra });
  auth = await startAuthServer(A);
});
afterEach(() => closeAll());
after(async () => {
  closeAll();
  await auth?.close();
  for (const n of [A, B]) await n?.cleanup();
  await redis?.cleanup();
});

test('presence over two nodes: one member list, one member per user across nodes', async () => {
  const room = unique('presence-hall');
  const alice = newClient(A, { auth, user: 'alice' });
  const chA = await subscribed(alice, room);
  const added = [];
  const removed = [];
  chA.bind('pusher:member_added', (m) => added.push(m.id));
  chA.bind('pusher:member_removed', (m) => removed.push(m.id));

  const bob = newClient(B, { auth, user: 'bob' });
  const chB = await subscribed(bob, room);
  const onB = [];
  chB.members.each((m) => onB.push(m.id));
  assert.deepEqual(onB.sort(), ['alice', 'bob']);
  await waitFor(() => added.includes('bob'), { what: 'member_added for bob across nodes' });

  // Bob's second connection, on Alice's node: the same member. Carol (on B) joins after it.
  const bob2 = newClient(A, { auth, user: 'bob' });
  await subscribed(bob2, room);
  const carol = newClient(B, { auth, user: 'carol' });
  await subscribed(carol, room);
  await waitFor(() => added.includes('carol'), { what: 'member_added for carol' });
  assert.deepEqual(added, ['bob', 'carol']);

  bob.disconnect();
  carol.disconnect();
  await waitFor(() => removed.includes('carol'), { what: 'member_removed for carol' });
  assert.deepEqual(removed, ['carol'], 'bob is still here through his connection on node A');
  bob2.disconnect();
  await waitFor(() => removed.includes('bob'), { what: 'member_removed for bob' });
  assert.equal(chA.members.count, 1);
});

test('client events cross nodes and are not echoed to the sender', async () => {
  const channel = unique('private-bridge');
  const a = newClient(A, { auth, user: 'alice' });
  const b = newClient(B, { auth, user: 'bob' });
  const [chA, chB] = await Promise.all([subscribed(a, channel), subscribed(b, channel)]);
  const evA = record(chA);
  const got = nextEvent(chB, 'client-ping', (d) => d?.n === 1);
  chA.trigger('client-ping', { n: 1 });
  await got;
  // A publication made after B got the client event reaches A after it would have.
  await A.publish(channel, { event: 'fence', data: {} });
  await waitFor(() => evA.some((e) => e.event === 'fence'), { what: 'the fence on A' });
  assert.ok(!evA.some((e) => e.event === 'client-ping'), 'the sender never gets its own client event');
});

test('an API publish on one node reaches pusher-js on the other; a cache channel replays across nodes', async () => {
  const channel = unique('wire');
  const a = newClient(A);
  const ch = await subscribed(a, channel);
  const got = nextEvent(ch, 'news', (d) => d?.from === 'B');
  await B.publish(channel, { event: 'news', data: { from: 'B' } });
  await got;

  const cache = unique('cache-board');
  await A.publish(cache, { event: 'score', data: { home: 2, away: 1 } });
  const b = newClient(B);
  const chB = b.subscribe(cache);
  const replayed = nextEvent(chB, 'score');
  assert.deepEqual(await replayed, { home: 2, away: 1 });
});
