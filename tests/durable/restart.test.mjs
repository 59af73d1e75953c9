// Restart = resume (issue 17, item 3), end to end: the real JS client on each transport and a plain
// EventSource-style reader follow one numbered stream while the server, on a --data-dir, is killed
// with SIGKILL several times and stopped with SIGTERM once, each time started again on the same
// port and folder. The publisher retries every number with its own idempotency key until it is
// acknowledged, so the stream that must arrive is exactly 1..N: a publication that is lost, repeated,
// reordered or reported as recovered:false anywhere fails the test.
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { after, before, test } from 'node:test';
import { FAST, durableServer, eventSource, loadClient, once, tempDir, waitFor } from './durable.mjs';

const { Client } = await loadClient();
const FLAGS = ['--ping-interval-ms', '1000', '--poll-hold-ms', '1000', '--history-size', '2000',
  '--sse-retry-ms', '100', '--shutdown-timeout-ms', '1000'];

let dataDir;
before(async () => {
  dataDir = await tempDir();
});
after(() => rm(dataDir, { recursive: true, force: true }));

// Publishes {n} with key `n<n>` until the server answers 200. Connection errors (the server is down)
// are retried; every other answer is recorded as unexpected and retried too.
async function publishUntilAcknowledged(srv, channel, n, unexpected, retries) {
  for (;;) {
    const r = await srv.api('POST', '/api/publish', { channel, data: { n }, idempotency_key: `n${n}` });
    if (r.status === 200) return r.json;
    retries.count++;
    if (r.status !== 0) unexpected.push(`${n}: HTTP ${r.status} ${r.text}`);
    await new Promise((res) => setTimeout(res, 5));   // a retry's pause, not a synchronisation
  }
}

test('a numbered stream survives SIGKILLs and a SIGTERM on every transport: nothing lost, repeated or reordered', async (t) => {
  const srv = await durableServer({ dataDir: `${dataDir}/stream`, extra: FLAGS });
  const ch = 'numbered';
  const N = 420;
  // The kills land at these acknowledged counts; the one marked SIGTERM is a clean stop.
  const kills = [[60, 'SIGKILL'], [120, 'SIGKILL'], [180, 'SIGTERM'], [240, 'SIGKILL'], [300, 'SIGKILL'], [360, 'SIGKILL']];
  const clients = [];
  const plain = eventSource(`${srv.url}/sse?channels=${ch}`);
  try {
    for (const transport of ['websocket', 'sse', 'polling']) {
      const c = new Client(srv.url, { ...FAST, pollHoldMs: 1000, transports: [transport] });
      const r = { transport, c, got: [], offsets: [], gaps: [], notRecovered: [], reconnects: 0 };
      c.on('state', (e) => { if (e.to === 'reconnecting') r.reconnects++; });
      r.sub = c.subscribe(ch, {
        onMessage: (d, ctx) => {
          r.got.push(d.n);
          r.offsets.push(ctx.offset);
        },
        onGap: (g) => r.gaps.push(g),
        onSubscribed: (e) => { if (e.recovered === false) r.notRecovered.push(e); },
      });
      clients.push(r);
    }
    await Promise.all(clients.map((r) => once(r.sub, 'subscribed')));
    await waitFor(() => plain.controls('subscribed').length === 1, { what: 'the plain reader subscribed' });

    let acked = 0;
    let epoch = null;
    const unexpected = [];
    const retries = { count: 0 };
    // A stop lands within `slack` publications of its mark: the publisher does not run past that
    // before the stop is done (the killer first waits for every client to be back from the last one).
    const slack = 30;
    let stopsDone = 0;
    const publisher = (async () => {
      for (let n = 1; n <= N; n++) {
        await waitFor(() => kills.every(([at], i) => n <= at + slack || i < stopsDone),
          { timeoutMs: 30000, what: `the stop due before publication ${n}` });
        const p = await publishUntilAcknowledged(srv, ch, n, unexpected, retries);
        // The position never moves back, never changes epoch: it is exactly n.
        epoch ??= p.epoch;
        assert.equal(p.epoch, epoch, `epoch of ${n}`);
        assert.equal(p.offset, n, `offset of ${n}`);
        acked = n;
      }
    })();
    // Counts at the last stop: a client is back from it once its count moved on (a state still
    // 'connected' may be from before it noticed the stop). Long-polling is a connection only while a
    // poll is parked, so a stop may fall between its polls: it only has to be connected.
    let seen = clients.map(() => -1);   // none yet
    let seenStreams = 0;
    for (const [at, signal] of kills) {
      await waitFor(() => acked >= at, { timeoutMs: 30000, what: `${at} acknowledged (have ${acked})` });
      // Each stop meets live connections: every client is back from the last one.
      await waitFor(() => clients.every((r, i) => r.c.state === 'connected' && (r.transport === 'polling' || r.reconnects > seen[i])) &&
        plain.opened > seenStreams && plain.live(), { timeoutMs: 15000, what: 'every client back before the next stop' });
      seen = clients.map((r) => r.reconnects);
      seenStreams = plain.opened;
      const exit = await srv.signal(signal);
      if (signal === 'SIGTERM') assert.equal(exit.code, 0, `a clean stop exits 0 (${JSON.stringify(exit)})`);
      await srv.start();
      stopsDone++;
    }
    await publisher;
    assert.deepEqual(unexpected, [], 'no publish was refused');

    const want = Array.from({ length: N }, (_, i) => i + 1);
    for (const r of clients) {
      await waitFor(() => r.got.length >= N, { timeoutMs: 30000, what: `${N} messages on ${r.transport} (have ${r.got.length})` });
    }
    await waitFor(() => plain.messages().length >= N, { timeoutMs: 30000, what: `${N} messages on the plain reader (have ${plain.messages().length})` });
    await waitFor(() => plain.opened > seenStreams, { what: 'the plain reader back after the last stop' });
    for (const r of clients) {
      assert.deepEqual(r.got, want, `${r.transport}: every acknowledged publication, once, in order`);
      assert.deepEqual(r.offsets, want, `${r.transport}: offsets`);
      assert.deepEqual(r.gaps, [], `${r.transport}: no gap`);
      assert.deepEqual(r.notRecovered, [], `${r.transport}: never recovered:false`);
      // Long-polling is a connection only while a poll is parked, so a stop may fall between polls.
      if (r.transport !== 'polling') assert.ok(r.reconnects >= kills.length, `${r.transport} reconnected ${r.reconnects} times`);
    }
    assert.equal(plain.failed, null);
    assert.deepEqual(plain.messages().map((m) => m.data.n), want, 'plain reader: once, in order');
    assert.deepEqual(plain.controls('subscribed').filter((s) => s.recovered === false), [], 'plain reader: never recovered:false');
    assert.ok(plain.opened >= kills.length + 1, `the plain reader came back after every stop (${plain.opened} streams)`);
    assert.equal(srv.runs, kills.length + 1);
    t.diagnostic(`publish retries ${retries.count}; reconnects ${clients.map((r) => `${r.transport} ${r.reconnects}`).join(', ')}; ` +
      `plain reader streams ${plain.opened}, resumed ${plain.controls('subscribed').filter((s) => s.recovered === true).length}`);
  } finally {
    plain.close();
    for (const r of clients) r.c.close();
    await srv.cleanup();
  }
});

test('an idempotency key survives a SIGKILL: the same key answers the first position and publishes nothing', async () => {
  const srv = await durableServer({ dataDir: `${dataDir}/idem`, extra: FLAGS });
  const ch = 'idem';
  const c = new Client(srv.url, { ...FAST, transports: ['websocket'] });
  try {
    const first = await srv.api('POST', '/api/publish', { channel: ch, data: { v: 1 }, idempotency_key: 'once' });
    assert.equal(first.status, 200, first.text);
    // Killed straight after the acknowledgement: the key is in its publication's own commit.
    await srv.kill();
    await srv.start();
    const got = [];
    const sub = c.subscribe(ch, { onMessage: (d) => got.push(d), since: { epoch: first.json.epoch, offset: 0 } });
    await once(sub, 'subscribed');
    await waitFor(() => got.length === 1, { what: 'the first publication, from history' });
    const again = await srv.api('POST', '/api/publish', { channel: ch, data: { v: 1 }, idempotency_key: 'once' });
    assert.equal(again.status, 200, again.text);
    assert.deepEqual({ epoch: again.json.epoch, offset: again.json.offset }, { epoch: first.json.epoch, offset: first.json.offset });
    const other = await srv.api('POST', '/api/publish', { channel: ch, data: { v: 2 }, idempotency_key: 'once' });
    assert.equal(other.status, 409, 'the key with other data is a conflict');
    assert.equal(other.json?.error?.code, 4023);
    const next = await srv.api('POST', '/api/publish', { channel: ch, data: { v: 3 } });
    assert.equal(next.json.offset, first.json.offset + 1, 'the duplicate took no offset');
    await waitFor(() => got.length === 2, { what: 'the next publication' });
    assert.deepEqual(got, [{ v: 1 }, { v: 3 }], 'the duplicate reached no subscriber');
    const h = await srv.api('GET', `/api/history?channel=${ch}`);
    assert.equal(h.json.offset, first.json.offset + 1);
  } finally {
    c.close();
    await srv.cleanup();
  }
});
