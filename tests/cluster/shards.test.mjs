// Two Redis shards (issue 13 item 1): with a comma list of URLs the nodes spread channels over both
// instances by a stable hash of the channel name. Every channel's keys live on exactly one shard, both
// shards hold some, both nodes agree (a channel published through either node lands on the same
// shard), and delivery, history and resume work for channels of either shard. Also: a unix: URL.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { FAST, loadClient, once, startCluster, startNode, startRedis, waitFor } from './cluster.mjs';

const { Client } = await loadClient();
let cl;
before(async () => {
  cl = await startCluster({ nodes: 2, shards: 2 });
});
after(async () => cl?.cleanup());

// The channel a key belongs to: keys carry the channel as their {hash tag}.
const channelOf = (key) => /\{([^}]*)\}/.exec(key)?.[1] ?? null;

test('channels spread over both shards, each channel on exactly one, and both nodes agree', async () => {
  const [A, B] = cl.nodes;
  const names = Array.from({ length: 24 }, (_, i) => `spread-${i}`);
  const firsts = [];
  for (const [i, ch] of names.entries()) firsts.push(await (i % 2 ? A : B).publish(ch, { i }));
  // Publish each again through the other node: same shard, so the same epoch and the next offset.
  for (const [i, ch] of names.entries()) {
    const r = await (i % 2 ? B : A).publish(ch, { i, again: true });
    assert.deepEqual([r.epoch, r.offset], [firsts[i].epoch, firsts[i].offset + 1], ch);
  }
  const onShard = [];
  for (const r of cl.shards) {
    const keys = await r.keys('pushwire:*');
    onShard.push(new Set(keys.map(channelOf).filter((c) => c && names.includes(c))));
  }
  const [s0, s1] = onShard;
  assert.ok(s0.size > 0 && s1.size > 0, `both shards hold channels: ${s0.size} and ${s1.size} of ${names.length}`);
  for (const ch of names) {
    assert.ok(s0.has(ch) !== s1.has(ch), `${ch} on exactly one shard (${s0.has(ch)}, ${s1.has(ch)})`);
  }
});

test('delivery, history and resume across nodes for channels on either shard', async () => {
  const [A, B] = cl.nodes;
  const keysOf = async (r) => new Set((await r.keys('pushwire:*')).map(channelOf));
  // One channel known to live on each shard (found by publishing and scanning).
  const pick = [];
  for (let i = 0; pick.length < 2 && i < 64; i++) {
    const ch = `pick-${i}`;
    await A.publish(ch, { n: 0 });
    const k0 = await keysOf(cl.shards[0]);
    const k1 = await keysOf(cl.shards[1]);
    if (k0.has(ch) && !pick.some((p) => p.shard === 0)) pick.push({ ch, shard: 0 });
    if (k1.has(ch) && !pick.some((p) => p.shard === 1)) pick.push({ ch, shard: 1 });
  }
  assert.equal(pick.length, 2, 'found a channel on each shard');
  const c = new Client(B.url, { ...FAST, transports: ['websocket'] });
  try {
    const got = { [pick[0].ch]: [], [pick[1].ch]: [] };
    for (const p of pick) {
      const sub = c.subscribe(p.ch, { onMessage: (d) => got[p.ch].push(d.n) });
      await once(sub, 'subscribed');
    }
    for (let n = 1; n <= 10; n++) for (const p of pick) await A.publish(p.ch, { n });
    await waitFor(() => pick.every((p) => got[p.ch].length >= 10), { what: 'ten messages on each channel' });
    for (const p of pick) assert.deepEqual(got[p.ch], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], p.ch);
    // The server cuts the connection; the client resumes both channels (one per shard) on B.
    const reconnected = once(c, 'state', (e) => e.to === 'connected');
    await B.apiOk('POST', '/api/disconnect', { all: true, reconnect: true, after_ms: 0, jitter_ms: 0 });
    for (let n = 11; n <= 15; n++) for (const p of pick) await A.publish(p.ch, { n });
    await reconnected;
    await waitFor(() => pick.every((p) => got[p.ch].length >= 15), { what: 'the resumed messages' });
    for (const p of pick) {
      assert.deepEqual(got[p.ch], Array.from({ length: 15 }, (_, i) => i + 1), `${p.ch} after resume`);
      const h = await B.history(p.ch, '&limit=100');
      assert.equal(h.publications.length, 16, `${p.ch} history through B`);
    }
  } finally {
    c.close();
  }
});

test('a unix: socket URL works', async () => {
  const r = await startRedis({ unixSocket: true });
  const n = await startNode({ redis: `unix:${r.socket}`, id: `unix-${process.pid}` });
  try {
    const p = await n.publish('over-unix', { x: 1 });
    assert.equal(p.offset, 1);
    assert.deepEqual(await r.keys('pushwire:*').then((k) => k.some((x) => channelOf(x) === 'over-unix')), true);
    assert.equal((await n.info()).engine, 'redis');
  } finally {
    await n.cleanup();
    await r.cleanup();
  }
});

test('a publish_batch through one node over channels of both shards reaches subscribers of the other', async () => {
  const [A, B] = cl.nodes;
  const names = Array.from({ length: 8 }, (_, i) => `batch-${i}`);
  const c = new Client(B.url, { ...FAST, transports: ['websocket'] });
  try {
    const got = Object.fromEntries(names.map((ch) => [ch, []]));
    for (const ch of names) await once(c.subscribe(ch, { onMessage: (d) => got[ch].push(d.n) }), 'subscribed');
    const messages = [];
    for (let n = 1; n <= 5; n++) for (const ch of names) messages.push({ channel: ch, data: { n } });
    const r = await A.apiOk('POST', '/api/publish_batch', { messages });
    assert.equal(r.results.length, messages.length);
    assert.ok(r.results.every((x) => !x.error && x.offset > 0), JSON.stringify(r.results.filter((x) => x.error)));
    await waitFor(() => names.every((ch) => got[ch].length >= 5), { what: 'five messages on every channel' });
    for (const ch of names) assert.deepEqual(got[ch], [1, 2, 3, 4, 5], ch);
    const where = await Promise.all(cl.shards.map(async (s) => new Set((await s.keys('pushwire:*')).map(channelOf))));
    assert.ok(where.every((set) => names.some((ch) => set.has(ch))), 'the batch touched both shards');
  } finally {
    c.close();
  }
});
