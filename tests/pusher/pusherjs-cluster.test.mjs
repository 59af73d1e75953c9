// pusher-js against two nodes on the Redis engine (issue 14 item 5), the cases that
// tests/cluster/pusher.test.mjs leaves out: one user connected through *both* nodes is one presence
// member, and a cache channel published on one node replays on the other.
import { test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { startNode, startRedis } from '../cluster/cluster.mjs';
import { APP, startAuthServer, newClient, closeAll, record, subscribed, unique, waitFor } from './helpers.mjs';

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

test('a cache channel published on one node replays its last event to a subscriber on the other', async () => {
  const cache = unique('cache-board');
  await A.publish(cache, { event: 'score', data: { home: 1, away: 1 } });
  await A.publish(cache, { event: 'score', data: { home: 2, away: 1 } });
  const b = newClient(B);
  const chB = b.subscribe(cache);
  const events = record(chB);
  await waitFor(() => events.some((e) => e.event === 'score'), { what: 'the cached event on B' });
  await B.publish(cache, { event: 'fence', data: {} });
  await waitFor(() => events.some((e) => e.event === 'fence'), { what: 'the fence on B' });
  assert.deepEqual(events.filter((e) => !e.event.startsWith('pusher:')).map((e) => e.data), [{ home: 2, away: 1 }, {}]);
  assert.ok(!events.some((e) => e.event === 'pusher:cache_miss'));
});
