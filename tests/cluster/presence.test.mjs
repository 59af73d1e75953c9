// Presence across nodes (issue 13 item 5): members connected to different nodes see each other (the
// client's presence call, /api/presence on either node, join events), and the members of a node
// killed with SIGKILL disappear within one presence lease (--presence-lease-ms, 2 s in these tests),
// with a leave event to the members left on the other node — whether the dying node held its member
// over WebSocket, SSE or long-polling. And the node registry forgets a killed node.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { FAST, loadClient, once, NODE_FLAGS, startCluster, waitFor } from './cluster.mjs';

const { Client } = await loadClient();
const LEASE_MS = Number(NODE_FLAGS[NODE_FLAGS.indexOf('--presence-lease-ms') + 1]);
let cl;
const clients = [];
before(async () => {
  cl = await startCluster({ nodes: 2 });
});
after(async () => {
  for (const c of clients) c.close();
  await cl?.cleanup();
});

const members = async (node, ch) => (await node.presence(ch)).members.map((m) => m.client).sort();

for (const transport of ['websocket', 'sse', 'polling']) {
  test(`members on one node are visible from all, and a killed node's members leave within one lease (${transport} on the dying node)`, async () => {
    for (const n of cl.nodes) if (!n.alive()) await n.start();
    const [A, B] = cl.nodes;
    const ch = `demo:room-${transport}`;
    const a = new Client(A.url, { ...FAST, transports: ['websocket'] });
    const b = new Client(B.url, { ...FAST, pollHoldMs: 1000, transports: [transport] });
    clients.push(a, b);
    const events = [];
    const subA = a.subscribe(ch, {
      onJoin: (e) => events.push(['join', e.client]),
      onLeave: (e) => events.push(['leave', e.client]),
    });
    await once(subA, 'subscribed');
    const [aId] = await waitFor(async () => {
      const m = await members(A, ch);
      return m.length === 1 && m;
    }, { what: "A's member alone in the room" });
    const subB = b.subscribe(ch);
    await once(subB, 'subscribed');

    // Both members, whichever node is asked.
    const both = await waitFor(async () => {
      const m = await members(A, ch);
      return m.length === 2 && m;
    }, { what: 'two members through A' });
    await waitFor(async () => (await members(B, ch)).length === 2, { what: 'two members through B' });
    assert.deepEqual(await members(B, ch), both);
    const viaClient = (await subA.presence()).map((m) => m.client).sort();
    assert.deepEqual(viaClient, both, "the client's presence call on A");
    const bId = both.find((id) => id !== aId);
    await waitFor(() => events.some((e) => e[0] === 'join' && e[1] === bId),
      { what: `a join event for B's member on A (${JSON.stringify(events)})` });

    // B dies without a word: its member must go within one lease.
    const t0 = Date.now();
    await B.kill();
    await waitFor(async () => {
      const m = await members(A, ch);
      return m.length === 1 && !m.includes(bId);
    }, { timeoutMs: LEASE_MS * 4, what: `B's member to leave (lease ${LEASE_MS} ms)` });
    const gone = Date.now() - t0;
    await waitFor(() => events.some((e) => e[0] === 'leave' && e[1] === bId), { timeoutMs: LEASE_MS * 2, what: 'a leave event on A' });
    // One lease, plus the sweep's tick and the test's own polling.
    assert.ok(gone <= LEASE_MS + 1000, `B's member left ${gone} ms after the kill (lease ${LEASE_MS} ms)`);
    a.close();
    b.close();
  });
}

test("a SIGKILLed node leaves the node registry (/api/info) within three heartbeats, and comes back when restarted", async () => {
  for (const n of cl.nodes) if (!n.alive()) await n.start();
  const [A, B] = cl.nodes;
  const ids = async () => (await A.info()).nodes.map((x) => x.id).sort();
  await waitFor(async () => (await ids()).includes(B.id), { what: 'B registered' });
  const t0 = Date.now();
  await B.kill();
  // --node-heartbeat-ms defaults to 1 s; a node is gone 3 heartbeats after it stops.
  await waitFor(async () => !(await ids()).includes(B.id), { timeoutMs: 8000, what: 'B gone from the registry' });
  const gone = Date.now() - t0;
  assert.ok(gone <= 3000 + 1500, `gone after ${gone} ms`);
  await B.start();
  await waitFor(async () => (await ids()).includes(B.id), { what: 'B back in the registry' });
});
