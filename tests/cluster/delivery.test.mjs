// Two nodes on one Redis (issue 13 items 1, 3, 4, 5): the node registry in /api/info, a publish
// through one node reaching subscribers of the other on every transport (the real JS client, and raw
// long-polls moving between nodes), idempotent publish retried on the other node, history and
// channels answered by either node, and /api/disconnect reaching a client of the other node.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { FAST, loadClient, once, poll, startCluster, startNode, waitFor } from './cluster.mjs';

const { Client } = await loadClient();
let cl;
let A;
let B;
const clients = [];
before(async () => {
  cl = await startCluster({ nodes: 2 });
  [A, B] = cl.nodes;
});
after(async () => {
  for (const c of clients) c.close();
  await cl?.cleanup();
});

function client(node, transport) {
  const c = new Client(node.url, { ...FAST, pollHoldMs: 1000, transports: [transport] });
  clients.push(c);
  return c;
}

test('/api/info names the engine, this node and every live node', async () => {
  const ids = cl.nodes.map((n) => n.id).sort();
  for (const n of cl.nodes) {
    const info = await waitFor(async () => {
      const i = await n.info();
      return i.nodes?.length === ids.length && i;
    }, { what: `both nodes in ${n.id}'s /api/info` });
    assert.equal(info.engine, 'redis');
    assert.equal(info.node, n.id);
    assert.deepEqual(info.nodes.map((x) => x.id).sort(), ids);
  }
});

for (const via of ['env', 'config']) {
  test(`the engine and Redis URL can come from ${via === 'env' ? 'PUSHWIRE_ENGINE / PUSHWIRE_REDIS' : 'a --config file'}`, async () => {
    const n = await startNode({ redis: cl.redis, id: `${via}-${A.id}`, via });
    try {
      const info = await n.info();
      assert.equal(info.engine, 'redis');
      assert.equal(info.node, n.id);
      // It shares the cluster: a publish through it is in A's history.
      const ch = `${via}-check`;
      const r = await n.publish(ch, { x: 1 });
      const h = await A.history(ch);
      assert.deepEqual(h.publications.map((p) => [p.offset, p.data]), [[r.offset, { x: 1 }]]);
    } finally {
      await n.cleanup();
    }
  });
}

for (const transport of ['websocket', 'sse', 'polling']) {
  test(`a publish through one node reaches a ${transport} subscriber of the other, in order`, async () => {
    const ch = `cross-${transport}`;
    const c = client(B, transport);
    const got = [];
    const sub = c.subscribe(ch, { onMessage: (d, ctx) => got.push([d.n, ctx.offset, ctx.epoch]) });
    await once(sub, 'subscribed');
    const results = [];
    for (let n = 1; n <= 20; n++) results.push(await A.publish(ch, { n }));
    await waitFor(() => got.length >= 20, { what: `20 messages on B (have ${got.length})` });
    assert.deepEqual(got, results.map((r, i) => [i + 1, r.offset, r.epoch]));
    // And the other way round, through B to a subscriber on A.
    const c2 = client(A, transport);
    const got2 = [];
    const sub2 = c2.subscribe(ch, { onMessage: (d) => got2.push(d.n) });
    await once(sub2, 'subscribed');
    await B.publish(ch, { n: 21 });
    await waitFor(() => got2.length >= 1 && got.length >= 21, { what: 'message 21 on both nodes' });
    assert.deepEqual(got2, [21]);
    assert.equal(got.at(-1)[0], 21);
    c.close();
    c2.close();
  });
}

test('raw long-polls alternate between the nodes: each poll carries its cursor, nothing lost or repeated', async () => {
  const ch = 'poll-hop';
  const first = await poll(A.url, `channels=${ch}&open=1`);
  assert.equal(first.status, 200, first.text);
  const sub = first.frames.find((f) => f.type === 'subscribed');
  assert.ok(sub, first.text);
  let cursor = first.cursor;
  let clientId = first.frames.find((f) => f.type === 'connected').client;
  const seen = [];
  let n = 0;
  for (const [pubNode, pollNode] of [[A, B], [B, A], [A, B], [B, B], [A, A]]) {
    await pubNode.publish(ch, { n: ++n });
    await pubNode.publish(ch, { n: ++n });
    // Poll until both have arrived (a poll may answer a frame at a time, or a ping).
    await waitFor(async () => {
      const r = await poll(pollNode.url, `channels=${ch}&cursor=${cursor}&client=${clientId}`);
      assert.equal(r.status, 200, r.text);
      for (const f of r.frames) {
        if (f.type === 'connected') clientId = f.client;
        if (f.type === 'subscribed' && 'recovered' in f) assert.equal(f.recovered, true, `resumed on ${pollNode.id}: ${r.text}`);
        if (f.type === 'message') seen.push([f.data.n, f.offset, f.epoch]);
      }
      if (r.cursor) cursor = r.cursor;
      return seen.length >= n;
    }, { what: `messages up to ${n} by polling ${pollNode.id} (have ${seen.length})` });
  }
  assert.deepEqual(seen.map((s) => s[0]), Array.from({ length: n }, (_, i) => i + 1));
  assert.deepEqual(seen.map((s) => s[1]), Array.from({ length: n }, (_, i) => sub.offset + i + 1));
  assert.ok(seen.every((s) => s[2] === sub.epoch), 'one epoch');
});

test('an idempotent publish retried on the other node is published once', async () => {
  const ch = 'idem';
  const c = client(B, 'websocket');
  const got = [];
  const sub = c.subscribe(ch, { onMessage: (d, ctx) => got.push([d.v, ctx.offset]) });
  await once(sub, 'subscribed');
  const r1 = await A.publish(ch, { v: 'first' }, { idempotency_key: 'order-17' });
  // The backend's retry: the same request, through the other node.
  const r2 = await B.publish(ch, { v: 'first' }, { idempotency_key: 'order-17' });
  assert.deepEqual(r2, r1, 'the retry answers the first result');
  // The same key with other data is a conflict (409, 4023) on either node, and publishes nothing.
  for (const node of [A, B]) {
    const bad = await node.api('POST', '/api/publish', { channel: ch, data: { v: 'other' }, idempotency_key: 'order-17' });
    assert.equal(bad.status, 409, `${node.id}: ${bad.text}`);
    assert.equal(bad.json?.error?.code, 4023, bad.text);
  }
  const r3 = await B.publish(ch, { v: 'next' });
  assert.equal(r3.offset, r1.offset + 1);
  await waitFor(() => got.length >= 2, { what: 'two messages' });
  assert.deepEqual(got, [['first', r1.offset], ['next', r3.offset]]);
  const h = await A.history(ch);
  assert.deepEqual(h.publications.map((p) => p.data.v), ['first', 'next']);
  c.close();
});

describe('history and channels from any node', () => {
  test('history is the same through either node, with and without since', async () => {
    const ch = 'hist';
    const rs = [];
    for (let n = 1; n <= 6; n++) rs.push(await (n % 2 ? A : B).publish(ch, { n }));
    const epoch = rs[0].epoch;
    for (const node of [A, B]) {
      const h = await node.history(ch, '&limit=50');
      assert.equal(h.epoch, epoch, node.id);
      assert.equal(h.offset, rs.at(-1).offset, node.id);
      assert.deepEqual(h.publications.map((p) => [p.offset, p.data.n]), rs.map((r, i) => [r.offset, i + 1]), node.id);
      const since = await node.history(ch, `&since=${epoch}-${rs[2].offset}`);
      assert.deepEqual(since.publications.map((p) => p.data.n), [4, 5, 6], `${node.id} since`);
    }
  });

  test('channels lists a channel published through the other node, at its offset', async () => {
    const ch = 'listed';
    const r = await A.publish(ch, { n: 1 });
    for (const node of [A, B]) {
      const all = await node.apiOk('GET', '/api/channels');
      const one = all.channels.find((x) => x.channel === ch);
      assert.ok(one, `${node.id} lists ${ch}: ${JSON.stringify(all)}`);
      assert.equal(one.epoch, r.epoch);
      assert.equal(one.offset, r.offset);
    }
  });

  test('channels counts the subscribers of every node', async () => {
    const ch = 'counted';
    const ca = client(A, 'websocket');
    const cb = client(B, 'sse');
    await once(ca.subscribe(ch), 'subscribed');
    await once(cb.subscribe(ch), 'subscribed');
    await A.publish(ch, { n: 1 });   // /api/channels lists channels that were published to
    for (const node of [A, B]) {
      await waitFor(async () => {
        const all = await node.apiOk('GET', '/api/channels');
        return all.channels.find((x) => x.channel === ch)?.subscribers === 2;
      }, { timeoutMs: 5000, what: `${node.id} to count 2 subscribers of ${ch} (one per node)` });
    }
    ca.close();
    cb.close();
  });
});

test('/api/disconnect through one node cuts a client connected to the other (by client id, then all)', async () => {
  const c = client(B, 'websocket');
  const states = [];
  c.on('state', (e) => states.push(e));
  await once(c.subscribe('cut-me'), 'subscribed');
  const id = c.clientId;
  assert.ok(id, 'the client knows its id');
  const r = await A.apiOk('POST', '/api/disconnect', { client: id, reconnect: true, after_ms: 0, jitter_ms: 0 });
  await waitFor(() => states.some((e) => e.to === 'reconnecting'), { what: `the client on B cut by A (answer ${JSON.stringify(r)})` });
  await waitFor(() => c.state === 'connected', { what: 'connected again' });
  const before = states.filter((e) => e.to === 'reconnecting').length;
  await A.apiOk('POST', '/api/disconnect', { all: true, reconnect: true, after_ms: 0, jitter_ms: 0 });
  await waitFor(() => states.filter((e) => e.to === 'reconnecting').length > before, { what: 'the client on B cut by a disconnect-all through A' });
  c.close();
});

test('concurrent publishes through both nodes reach subscribers of both in offset order, none missing', async () => {
  const ch = 'concurrent';
  const subs = [];
  for (const [node, tp] of [[A, 'websocket'], [B, 'sse'], [A, 'polling'], [B, 'websocket']]) {
    const c = client(node, tp);
    const s = { tp, node: node.id, got: [], gaps: 0 };
    await once(c.subscribe(ch, { onMessage: (d, ctx) => s.got.push([ctx.offset, d.k]), onGap: () => s.gaps++ }), 'subscribed');
    subs.push(s);
  }
  const results = [];
  for (let round = 0; round < 10; round++) {
    // Twenty publishes in flight at once, half through each node.
    results.push(...await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? A : B).publish(ch, { k: round * 20 + i }))));
  }
  const offsets = results.map((r) => r.offset).sort((a, b) => a - b);
  assert.deepEqual(offsets, offsets.map((_, i) => offsets[0] + i), 'every publish got its own offset, none skipped');
  const byOffset = new Map(results.map((r, i) => [r.offset, i]));
  for (const s of subs) {
    await waitFor(() => s.got.length >= 200, { what: `200 messages (${s.tp} on ${s.node}, have ${s.got.length})` });
    assert.equal(s.gaps, 0, `${s.tp} on ${s.node}: no gap`);
    assert.deepEqual(s.got.map((g) => g[0]), offsets, `${s.tp} on ${s.node}: offset order`);
    assert.ok(s.got.every(([off, k]) => byOffset.get(off) === k), `${s.tp} on ${s.node}: each offset carries its own message`);
  }
});
