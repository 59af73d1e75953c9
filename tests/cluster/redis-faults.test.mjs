// Redis faults (issue 13 item 6): Redis killed with SIGKILL mid-stream and restarted with its data
// (AOF, fsync always): publishes fail fast with 503 / 4022 meanwhile, subscribers keep their
// connections, and after the return nothing is lost and the epoch is the same. Redis that lost its
// data (FLUSHALL, then a restart with nothing on disk): the channel gets a new epoch and the clients
// are told (recovered:false, onGap), resuming ones and those connected through the loss alike. And a
// Redis that stops answering (SIGSTOP): 504/4024 within --redis-timeout-ms, I/O threads unblocked,
// and the retry with the same idempotency key publishes exactly once.
// And the nodes' Pub/Sub connections cut again and again under a numbered stream.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { FAST, loadClient, once, openSse, startCluster, startNode, waitFor } from './cluster.mjs';

const { Client, Code } = await loadClient();
const STORAGE_UNAVAILABLE = Code?.storageUnavailable ?? 4022;
const OUTCOME_UNKNOWN = Code?.outcomeUnknown ?? 4024;
const toClean = [];
after(async () => {
  for (const f of toClean) await f();
});

// Publishes with an idempotency key until Redis takes it (after a restart the nodes reconnect with
// backoff); every refusal on the way must be a quick 503 / 4022.
async function publishWhenBack(node, ch, n, refusals) {
  return waitFor(async () => {
    const r = await node.api('POST', '/api/publish', { channel: ch, data: { n }, idempotency_key: `${ch}-${n}` });
    if (r.status === 200) return r.json;
    refusals.push(r);
    return null;
  }, { timeoutMs: 20000, intervalMs: 50, what: `publish ${n} accepted again (last: ${refusals.at(-1)?.status} ${refusals.at(-1)?.text})` });
}

test('Redis killed and restarted with its data mid-stream: fast 503/4022, connections kept, nothing lost', { timeout: 90000 }, async () => {
  const cl = await startCluster({ nodes: 2, persist: true });
  toClean.push(() => cl.cleanup());
  const [A, B] = cl.nodes;
  const ch = 'through-outage';
  const clients = ['websocket', 'sse', 'polling'].map((tp) => {
    const c = new Client(B.url, { ...FAST, pollHoldMs: 1000, transports: [tp] });
    const s = { c, tp, got: [], gaps: [], reconnects: 0 };
    c.on('state', (e) => { if (e.to === 'reconnecting') s.reconnects++; });
    s.sub = c.subscribe(ch, { onMessage: (d) => s.got.push(d.n), onGap: (g) => s.gaps.push(g) });
    return s;
  });
  try {
    // (All three subscribe at once, so wait on their state rather than on events already past.)
    for (const s of clients) await waitFor(() => s.sub.state === 'subscribed', { what: `subscribed (${s.tp})` });
    const before = [];
    for (let n = 1; n <= 20; n++) before.push(await A.publish(ch, { n }));
    for (const s of clients) await waitFor(() => s.got.length >= 20, { what: `20 messages (${s.tp})` });

    await cl.redis.kill();
    // While Redis is away: every publish, on either node, is refused quickly with 503 / 4022. The
    // exception is a node's first publish, when it is written before the node has read the end of
    // its connection: then its outcome is unknown to the node (504 / 4024, the command was sent),
    // once per node at most; the stream check below shows it published nothing.
    const unknownOnce = new Set();
    for (const node of [A, B, A, B]) {
      let r = await node.api('POST', '/api/publish', { channel: ch, data: { n: -1 } }, 10000);
      if (r.status === 504 && !unknownOnce.has(node.id)) {
        unknownOnce.add(node.id);
        assert.equal(r.json?.error?.code, OUTCOME_UNKNOWN, r.text);
        assert.ok(r.ms < 2000, `answered in ${r.ms} ms`);
        r = await node.api('POST', '/api/publish', { channel: ch, data: { n: -1 } }, 10000);
      }
      assert.equal(r.status, 503, `${node.id}: ${r.status} ${r.text}`);
      assert.equal(r.json?.error?.code, STORAGE_UNAVAILABLE, r.text);
      assert.ok(r.ms < 2000, `refused in ${r.ms} ms`);
    }
    // The streaming clients are still connected (heartbeats go on without Redis). Two heartbeat
    // intervals pass while we wait for their pings, then the state is checked.
    const s0 = openSse(`${B.url}/sse?channels=`);
    await s0.ready;
    await waitFor(() => s0.events.filter((e) => e.event === 'ping').length >= 2, { what: 'two SSE heartbeats from B during the outage' });
    s0.close();
    // A plain EventSource opened during the outage: its subscribe waits for Redis, or, refused
    // with 4022 (the node reached Redis for the subscription but not for the history), the stream
    // ends with reconnect advice; it must never stay open and silent.
    let late = openSse(`${B.url}/sse?channels=${ch}`);
    await late.ready;
    // And the JS client over WebSocket, subscribing during the outage from the position before it:
    // a subscribe refused for now (4022) stays and is asked again, so it gets 21..40 exactly once.
    const lateWs = { c: new Client(B.url, { ...FAST, transports: ['websocket'] }), tp: 'websocket, subscribed during the outage', got: [], gaps: [] };
    lateWs.c.subscribe(ch, { since: { epoch: before[0].epoch, offset: 20 }, onMessage: (d) => lateWs.got.push(d.n), onGap: (g) => lateWs.gaps.push(g) });
    for (const s of clients.filter((x) => x.tp !== 'polling')) {
      assert.equal(s.c.state, 'connected', `${s.tp} still connected`);
      assert.equal(s.reconnects, 0, `${s.tp} never reconnected`);
    }

    await cl.redis.start();
    const refusals = [];
    const r21 = await publishWhenBack(A, ch, 21, refusals);
    assert.ok(refusals.every((r) => r.status === 503 && r.json?.error?.code === STORAGE_UNAVAILABLE),
      `refusals while reconnecting are 503/4022: ${refusals.map((r) => `${r.status} ${r.text}`).join('; ')}`);
    assert.equal(r21.epoch, before[0].epoch, 'same epoch: Redis kept its data');
    assert.equal(r21.offset, before.at(-1).offset + 1);
    // Each node reconnects on its own backoff: B may refuse (503/4022) a little longer than A.
    for (let n = 22; n <= 40; n++) await publishWhenBack(n % 2 ? A : B, ch, n, refusals);
    assert.ok(refusals.every((r) => r.status === 503 && r.json?.error?.code === STORAGE_UNAVAILABLE),
      `refusals while B reconnects are 503/4022: ${refusals.map((r) => `${r.status} ${r.text}`).join('; ')}`);
    let reopened = 0;
    await waitFor(async () => {
      if (late.controls('subscribed').length) return true;
      if (late.closed) {   // what EventSource does at the end of a stream
        const d = late.controls('disconnect');
        assert.ok(d.length === 1 && d[0].code === STORAGE_UNAVAILABLE && d[0].reconnect === true, JSON.stringify(late.events));
        reopened++;
        late = openSse(`${B.url}/sse?channels=${ch}`);
        await late.ready;
      }
      return false;
    }, { timeoutMs: 20000, what: 'the EventSource opened during the outage subscribed once Redis is back' }).catch((e) => { throw new Error(`${e.message}: reopened ${reopened}, closed ${late.closed}, events ${JSON.stringify(late.events)}`); });
    late.close();
    assert.ok(reopened <= 20, `reopened ${reopened} times`);
    try {
      await waitFor(() => lateWs.got.length >= 20, { timeoutMs: 20000, what: `21..40 (${lateWs.tp}, have ${lateWs.got.length})` });
      assert.deepEqual(lateWs.gaps, [], `${lateWs.tp}: no gap`);
      assert.deepEqual(lateWs.got, Array.from({ length: 20 }, (_, i) => i + 21), `${lateWs.tp}: exactly once, in order`);
    } finally {
      lateWs.c.close();
    }
    for (const s of clients) {
      await waitFor(() => s.got.length >= 40, { timeoutMs: 20000, what: `40 messages (${s.tp}, have ${s.got.length})` });
      assert.deepEqual(s.gaps, [], `${s.tp}: no gap`);
      assert.deepEqual(s.got, Array.from({ length: 40 }, (_, i) => i + 1), `${s.tp}: exactly once, in order`);
    }
  } finally {
    for (const s of clients) s.c.close();
  }
});

test('a Redis that stops answering (SIGSTOP): a publish answers 504/4024 within the Redis timeout, its retry with the same key publishes once, nodes stay responsive, nothing lost', { timeout: 60000 }, async () => {
  const TIMEOUT_MS = 1000;
  const cl = await startCluster({ nodes: 2, extra: ['--redis-timeout-ms', String(TIMEOUT_MS)] });
  toClean.push(() => cl.cleanup());
  const [A, B] = cl.nodes;
  const ch = 'stalled-redis';
  const c = new Client(B.url, { ...FAST, transports: ['websocket'] });
  try {
    const got = [];
    const gaps = [];
    let reconnects = 0;
    c.on('state', (e) => { if (e.to === 'reconnecting') reconnects++; });
    const sub = c.subscribe(ch, { onMessage: (d) => got.push(d.n), onGap: (g) => gaps.push(g) });
    await once(sub, 'subscribed');
    for (let n = 1; n <= 10; n++) await A.publish(ch, { n });
    await waitFor(() => got.length >= 10, { what: 'ten messages' });

    cl.redis.pause();
    // Message 11 goes to the stalled Redis: the node cannot know whether it will run.
    const unknown = await A.api('POST', '/api/publish', { channel: ch, data: { n: 11 }, idempotency_key: `${ch}-11` }, 15000);
    // Meanwhile the node's I/O threads serve other requests at once.
    const health = await Promise.all([A, B].map((n) => n.api('GET', '/healthz', undefined, 2000)));
    assert.equal(unknown.status, 504, unknown.text);
    assert.equal(unknown.json?.error?.code, OUTCOME_UNKNOWN, unknown.text);
    assert.ok(unknown.ms < TIMEOUT_MS + 1500, `answered after ${unknown.ms} ms (Redis timeout ${TIMEOUT_MS} ms)`);
    for (const h of health) assert.ok(h.status === 200 && h.ms < 1000, `healthz ${h.status} in ${h.ms} ms while Redis is stalled`);
    assert.equal(c.state, 'connected');

    cl.redis.resume();
    // The backend retries with the same key (docs/protocol.md, 4024): one publication either way.
    // While the nodes reconnect they may refuse with 503/4022 (never sent) or 504/4024 again.
    const refusals = [];
    const retry = async (node, n) => waitFor(async () => {
      const r = await node.api('POST', '/api/publish', { channel: ch, data: { n }, idempotency_key: `${ch}-${n}` });
      if (r.status === 200) return r.json;
      refusals.push(r);
      return null;
    }, { timeoutMs: 20000, intervalMs: 50, what: `publish ${n} accepted (last: ${refusals.at(-1)?.status} ${refusals.at(-1)?.text})` });
    await retry(B, 11);
    for (let n = 12; n <= 20; n++) await retry(n % 2 ? A : B, n);
    assert.ok(refusals.every((r) => (r.status === 503 && r.json?.error?.code === STORAGE_UNAVAILABLE) ||
      (r.status === 504 && r.json?.error?.code === OUTCOME_UNKNOWN)), refusals.map((r) => `${r.status} ${r.text}`).join('; '));
    await waitFor(() => got.includes(20), { timeoutMs: 15000, what: `message 20 (have ${got.length})` });
    assert.deepEqual(gaps, []);
    assert.equal(reconnects, 0, 'the client kept its connection');
    assert.deepEqual(got, Array.from({ length: 20 }, (_, i) => i + 1), 'message 11 exactly once, all in order');
  } finally {
    c.close();
    cl.redis.resume();
  }
});

test("the nodes' Pub/Sub connections cut (CLIENT KILL TYPE pubsub) under a numbered stream: nothing lost, order kept", { timeout: 60000 }, async () => {
  const cl = await startCluster({ nodes: 2 });
  toClean.push(() => cl.cleanup());
  const [A, B] = cl.nodes;
  const ch = 'pubsub-cut';
  const subs = [];
  for (const [node, tp] of [[A, 'websocket'], [B, 'websocket'], [B, 'sse']]) {
    const c = new Client(node.url, { ...FAST, transports: [tp] });
    const s = { c, tp, node: node.id, got: [], gaps: [] };
    await once(c.subscribe(ch, { onMessage: (d) => s.got.push(d.n), onGap: (g) => s.gaps.push(g) }), 'subscribed');
    subs.push(s);
  }
  try {
    const N = 200;
    let cuts = 0;
    for (let n = 1; n <= N; n++) {
      await (n % 2 ? A : B).publish(ch, { n });
      if (n % 40 === 0) {
        // Cut only once both nodes listen again (each reconnects on its own backoff after a cut).
        await waitFor(async () => (await cl.redis.cli('CLIENT', 'LIST', 'TYPE', 'pubsub')).split('\n').filter(Boolean).length >= 2,
          { what: "both nodes' Pub/Sub connections back" });
        const killed = Number((await cl.redis.cli('CLIENT', 'KILL', 'TYPE', 'pubsub')).trim());
        assert.ok(killed >= 2, `both nodes' Pub/Sub connections cut (${killed})`);
        cuts++;
      }
    }
    assert.equal(cuts, 5);
    for (const s of subs) {
      await waitFor(() => s.got.length >= N, { timeoutMs: 15000, what: `${N} messages (${s.tp} on ${s.node}, have ${s.got.length})` });
      assert.deepEqual(s.gaps, [], `${s.tp} on ${s.node}: no gap`);
      assert.deepEqual(s.got, Array.from({ length: N }, (_, i) => i + 1), `${s.tp} on ${s.node}: exactly once, in order`);
    }
  } finally {
    for (const s of subs) s.c.close();
  }
});

test('a node started while Redis is down comes up, refuses publishes with 503/4022, and serves once Redis is back', { timeout: 60000 }, async () => {
  const cl = await startCluster({ nodes: 1, persist: true });
  toClean.push(() => cl.cleanup());
  const [A] = cl.nodes;
  const r1 = await A.publish('early', { n: 1 });
  await cl.redis.kill();
  const late = await startNode({ redis: cl.redis, id: `late-${A.id}` });
  toClean.push(() => late.cleanup());
  const refused = await late.api('POST', '/api/publish', { channel: 'early', data: { n: -1 } }, 10000);
  assert.equal(refused.status, 503, refused.text);
  assert.equal(refused.json?.error?.code, STORAGE_UNAVAILABLE, refused.text);
  await cl.redis.start();
  const r2 = await publishWhenBack(late, 'early', 2, []);
  assert.deepEqual([r2.epoch, r2.offset], [r1.epoch, r1.offset + 1]);
  const c = new Client(late.url, { ...FAST, transports: ['websocket'] });
  try {
    const got = [];
    const sub = c.subscribe('early', { since: { epoch: r1.epoch, offset: 0 }, onMessage: (d) => got.push(d.n) });
    await once(sub, 'subscribed');
    await waitFor(() => got.length >= 2, { what: 'the history through the late node' });
    assert.deepEqual(got, [1, 2]);
    await waitFor(async () => (await late.info()).nodes?.length === 2, { what: 'both nodes in the registry' });
  } finally {
    c.close();
  }
});

// Redis loses everything: FLUSHALL, then a restart with nothing on disk (the nodes reconnect).
async function flushAndRestart(cl) {
  assert.equal((await cl.redis.cli('FLUSHALL')).trim(), 'OK');
  await cl.redis.restart();
}

test('Redis flushed and restarted empty: a client resuming from its old position gets recovered:false on any node', { timeout: 60000 }, async () => {
  const cl = await startCluster({ nodes: 2 });
  toClean.push(() => cl.cleanup());
  const [A, B] = cl.nodes;
  const ch = 'flushed-resume';
  const s1 = openSse(`${A.url}/sse?channels=${ch}`);
  await s1.ready;
  await waitFor(() => s1.controls('subscribed').length === 1, { what: 'subscribed on A' });
  const first = [];
  for (let n = 1; n <= 5; n++) first.push(await A.publish(ch, { n }));
  await waitFor(() => s1.messages().length === 5, { what: 'five messages' });
  const oldId = s1.lastId();
  s1.close();

  await flushAndRestart(cl);
  const r6 = await publishWhenBack(A, ch, 6, []);
  assert.notEqual(r6.epoch, first[0].epoch, 'a new epoch after the loss');
  // Each node reconnects on its own backoff: B answers once a publish through it does.
  await publishWhenBack(B, `${ch}-probe`, 1, []);
  for (const node of [B, A]) {
    const s2 = openSse(`${node.url}/sse?channels=${ch}`, { 'Last-Event-ID': oldId });
    await s2.ready;
    assert.equal(s2.status, 200, s2.body);
    const sub2 = await waitFor(() => s2.controls('subscribed')[0], { what: `subscribed on ${node.id}` }).catch(async (e) => {
      const p = await node.api('POST', '/api/publish', { channel: `${ch}-probe`, data: 1 });
      throw new Error(`${e.message}; the stream had: ${s2.events.map((x) => `${x.event} ${x.data}`).join(' | ')}; ` +
        `a publish through ${node.id} now answers ${p.status} ${p.text}`);
    });
    s2.close();
    assert.equal(sub2.recovered, false, `${node.id}: ${JSON.stringify(sub2)}`);
    assert.equal(sub2.epoch, r6.epoch, node.id);
  }
});

test('Redis flushed and restarted empty: a client connected through it is told of the gap and goes on', { timeout: 60000 }, async () => {
  const cl = await startCluster({ nodes: 2 });
  toClean.push(() => cl.cleanup());
  const [A, B] = cl.nodes;
  const ch = 'flushed-live';
  const c = new Client(B.url, { ...FAST, transports: ['websocket'] });
  try {
    const got = [];
    const gaps = [];
    const sub = c.subscribe(ch, { onMessage: (d) => got.push(d.n), onGap: (g) => gaps.push(g) });
    await once(sub, 'subscribed');
    const first = [];
    for (let n = 1; n <= 5; n++) first.push(await A.publish(ch, { n }));
    await waitFor(() => got.length >= 5, { what: 'five messages' });

    await flushAndRestart(cl);
    const r6 = await publishWhenBack(A, ch, 6, []);
    assert.notEqual(r6.epoch, first[0].epoch, 'a new epoch after the loss');
    // The client must learn that its history is gone (a `subscribed` with recovered:false, which the
    // client reports as onGap) and then get the new epoch's messages: a message of an epoch it never
    // subscribed to is dropped by the client as stray.
    await waitFor(() => gaps.length >= 1, { timeoutMs: 10000, what: 'onGap on the live client' });
    await waitFor(() => got.includes(6), { timeoutMs: 10000, what: 'message 6 after the gap' });
    assert.deepEqual(got, [1, 2, 3, 4, 5, 6]);
  } finally {
    c.close();
  }
});
