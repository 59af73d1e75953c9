// Nodes die (issue 13 items 4 and 7): the real JS client subscribed through nginx (round robin, no
// stickiness) while the node holding it is SIGKILLed again and again under a numbered stream: every
// message arrives exactly once and in order, on each transport. And a plain SSE stream (raw HTTP, as
// a browser's EventSource reconnects) resumes on another node from its Last-Event-ID or from since=
// in the URL, directly and through nginx after its node was SIGKILLed.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { FAST, loadClient, once, openSse, startCluster, waitFor } from './cluster.mjs';

const { Client } = await loadClient();
let cl;
before(async () => {
  cl = await startCluster({ nodes: 3, balancer: true });
});
after(async () => cl?.cleanup());

const alive = () => cl.nodes.filter((n) => n.alive());

// Publishes through any live node; a refused or dead node is skipped and the same idempotency key is
// retried on the next one, so a publish the dying node had committed is not published twice.
let rr = 0;
async function publishAnywhere(ch, n) {
  const deadline = Date.now() + 15000;
  let last;
  for (;;) {
    const nodes = alive();
    const node = nodes[rr++ % nodes.length];
    last = await node.api('POST', '/api/publish', { channel: ch, data: { n }, idempotency_key: `${ch}-${n}` }, 3000);
    if (last.status === 200) return last.json;
    if (Date.now() > deadline) throw new Error(`publish ${n} failed everywhere: ${last.status} ${last.text}`);
  }
}

for (const transport of ['websocket', 'sse', 'polling']) {
  test(`the JS client through nginx loses nothing while nodes are SIGKILLed (${transport})`, { timeout: 120000 }, async () => {
    // Each kill takes the node holding the client while the previous victim is still down, so for a
    // moment only one of the three nodes is up; the previous victim is restarted right after.
    for (const n of cl.nodes) if (!n.alive()) await n.start();
    const c = new Client(cl.nginx.url, { ...FAST, pollHoldMs: 1000, transports: [transport] });
    try {
      const ch = `numbered-${transport}`;
      const got = [];
      const gaps = [];
      let reconnects = 0;
      c.on('state', (e) => { if (e.to === 'reconnecting') reconnects++; });
      const sub = c.subscribe(ch, { onMessage: (d) => got.push(d.n), onGap: (g) => gaps.push(g) });
      await once(sub, 'subscribed');
      const N = 400;
      const kills = 6;
      let killed = 0;
      let previous = null;
      for (let i = 1; i <= N; i++) {
        await publishAnywhere(ch, i);
        if (i % Math.floor(N / (kills + 1)) !== 0 || killed === kills) continue;
        let victim;
        if (transport === 'polling') {
          // Polls go round robin over the live nodes; any of them may hold the next one.
          const up = alive();
          victim = up[killed % up.length];
        } else {
          // The node that holds the client's stream (its own connection count, from /metrics).
          const kind = transport === 'websocket' ? 'websocket' : 'sse';
          victim = await waitFor(async () => {
            if (c.state !== 'connected') return null;
            for (const n of alive()) if ((await n.connections(kind)) > 0) return n;
            return null;
          }, { what: `the node holding the ${transport} stream` });
        }
        const seen = reconnects;
        await victim.kill();
        killed++;
        if (transport !== 'polling') await waitFor(() => reconnects > seen, { what: `the client to notice ${victim.id} died` });
        if (previous) await previous.start();
        previous = victim;
      }
      await waitFor(() => got.length >= N, { timeoutMs: 30000, what: `${N} messages (have ${got.length})` });
      await waitFor(() => c.state === 'connected', { what: 'connected at the end' });
      assert.deepEqual(gaps, [], 'no gap');
      assert.deepEqual(got, Array.from({ length: N }, (_, i) => i + 1), 'exactly once, in order');
      assert.equal(killed, kills);
      if (transport !== 'polling') assert.ok(reconnects >= kills, `reconnected after every kill (${reconnects})`);
    } finally {
      c.close();
    }
  });
}

test('a plain SSE stream resumes on another node from Last-Event-ID, and from since= in the URL', async () => {
  for (const n of cl.nodes) if (!n.alive()) await n.start();
  const [A, B, C] = cl.nodes;
  const ch = 'plain-sse';
  const s1 = openSse(`${A.url}/sse?channels=${ch}`);
  await s1.ready;
  assert.equal(s1.status, 200);
  await waitFor(() => s1.controls('subscribed').length === 1, { what: 'subscribed on A' });
  for (let n = 1; n <= 3; n++) await B.publish(ch, { n });
  await waitFor(() => s1.messages().length === 3, { what: 'three messages on A' });
  const lastId = s1.lastId();
  assert.ok(lastId, 'events carry ids');
  s1.close();
  // The node the browser was on dies; the next messages are published meanwhile.
  await A.kill();
  for (let n = 4; n <= 6; n++) await C.publish(ch, { n });

  const s2 = openSse(`${B.url}/sse?channels=${ch}`, { 'Last-Event-ID': lastId });
  await s2.ready;
  assert.equal(s2.status, 200, s2.body);
  await waitFor(() => s2.messages().length >= 3, { what: 'the missed messages on B' });
  const sub = s2.controls('subscribed')[0];
  assert.equal(sub.recovered, true, JSON.stringify(sub));
  await C.publish(ch, { n: 7 });
  await waitFor(() => s2.messages().length >= 4, { what: 'the live message on B' });
  assert.deepEqual(s2.messages().map((m) => m.data.n), [4, 5, 6, 7]);
  const offsets = [...s1.messages(), ...s2.messages()].map((m) => m.offset);
  assert.deepEqual(offsets, offsets.map((_, i) => offsets[0] + i), 'consecutive offsets across the two nodes');
  const resumeAt = s2.lastId();
  s2.close();

  // A client that cannot set headers puts the same token in the URL; C answers it.
  await B.publish(ch, { n: 8 });
  const s3 = openSse(`${C.url}/sse?channels=${ch}&since=${encodeURIComponent(resumeAt)}`);
  await s3.ready;
  assert.equal(s3.status, 200, s3.body);
  await waitFor(() => s3.messages().length >= 1, { what: 'the missed message on C' });
  assert.equal(s3.controls('subscribed')[0].recovered, true);
  assert.deepEqual(s3.messages().map((m) => m.data.n), [8]);
  s3.close();
  await A.start();
});

test('a raw SSE stream through nginx whose node is SIGKILLed comes back through nginx with Last-Event-ID', async () => {
  for (const n of cl.nodes) if (!n.alive()) await n.start();
  const ch = 'plain-sse-balanced';
  const s1 = openSse(`${cl.nginx.url}/sse?channels=${ch}`);
  await s1.ready;
  assert.equal(s1.status, 200);
  await waitFor(() => s1.controls('subscribed').length === 1, { what: 'subscribed through nginx' });
  const holder = await waitFor(async () => {
    for (const n of alive()) if ((await n.connections('sse')) > 0) return n;
    return null;
  }, { what: 'the node holding the stream' });
  for (let n = 1; n <= 3; n++) await publishAnywhere(ch, n);
  await waitFor(() => s1.messages().length === 3, { what: 'three messages' });
  await holder.kill();
  // The stream ends as a browser would see it: the connection closes.
  await waitFor(() => s1.closed, { what: 'the stream to end when its node dies' });
  for (let n = 4; n <= 6; n++) await publishAnywhere(ch, n);
  const s2 = openSse(`${cl.nginx.url}/sse?channels=${ch}`, { 'Last-Event-ID': s1.lastId() });
  await s2.ready;
  assert.equal(s2.status, 200, s2.body);
  await waitFor(() => s2.messages().length >= 3, { what: 'the missed messages on another node' });
  assert.equal(s2.controls('subscribed')[0]?.recovered, true);
  await publishAnywhere(ch, 7);
  await waitFor(() => s2.messages().length >= 4, { what: 'the live message' });
  assert.deepEqual([...s1.messages(), ...s2.messages()].map((m) => m.data.n), [1, 2, 3, 4, 5, 6, 7]);
  s2.close();
  await holder.start();
});
