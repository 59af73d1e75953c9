// Reconnection and resume against the real server: the server cuts every connection again and again
// while a publisher sends a numbered stream; every message must arrive exactly once and in order, on
// every transport. And a gap that history cannot cover fires onGap.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { FAST, loadClient, once, startServer, waitFor } from './helpers.mjs';

const { Client } = await loadClient();
let srv;
before(async () => {
  srv = await startServer(['--ping-interval-ms', '1000', '--poll-hold-ms', '1000', '--history-size', '1000']);
});
after(() => srv?.stop());

for (const transport of ['websocket', 'sse', 'polling']) {
  test(`exactly once and in order while the server keeps cutting connections (${transport})`, async () => {
    const c = new Client(srv.url, { ...FAST, pollHoldMs: 1000, transports: [transport] });
    try {
      const ch = `stream-${transport}`;
      const got = [];
      let gaps = 0;
      let reconnects = 0;
      c.on('state', (e) => { if (e.to === 'reconnecting') reconnects++; });
      const sub = c.subscribe(ch, { onMessage: (d) => got.push(d.n), onGap: () => gaps++ });
      await once(sub, 'subscribed');
      const N = 300;
      const cuts = 10;
      for (let i = 1; i <= N; i++) {
        await srv.publish(ch, { n: i });
        if (i % (N / cuts) === 0) {
          // Wait until the client is back before the next cut, so every cut hits a live connection.
          await waitFor(() => c.state === 'connected', { what: 'connected again' });
          // A long-poll client is only a connection while one of its polls is parked, so a cut can
          // miss it: cut again until the client has seen one.
          const seen = reconnects;
          await waitFor(async () => {
            if (reconnects > seen) return true;
            await srv.disconnect();
            return waitFor(() => reconnects > seen, { timeoutMs: 300 }).catch(() => false);
          }, { what: 'a cut the client notices' });
        }
      }
      await waitFor(() => got.length >= N, { timeoutMs: 30000, what: `${N} messages (have ${got.length})` });
      await waitFor(() => c.state === 'connected', { what: 'connected at the end' });
      assert.equal(gaps, 0, 'no gap');
      assert.deepEqual(got, Array.from({ length: N }, (_, i) => i + 1));
      assert.ok(reconnects >= cuts, `the connection was really cut (${reconnects} reconnects)`);
    } finally {
      c.close();
    }
  });
}

test('a reconnect gap beyond history fires onGap, then the stream goes on', async () => {
  const small = await startServer(['--history-size', '3']);
  // A WebSocket whose opening can be held back, to keep the client away while messages pile up.
  const { WebSocket: RealWebSocket } = await import('ws');
  let blocked = false;
  class GatedWebSocket extends RealWebSocket {
    constructor(url) {
      super(blocked ? url.replace(/\/ws$/, '/no-such-endpoint') : url);
    }
  }
  const c = new Client(small.url, { ...FAST, transports: ['websocket'], WebSocket: GatedWebSocket });
  try {
    const got = [];
    const gaps = [];
    const sub = c.subscribe('gappy', { onMessage: (d) => got.push(d.n), onGap: (g) => gaps.push(g) });
    await once(sub, 'subscribed');
    await small.publish('gappy', { n: 1 });
    await waitFor(() => got.length === 1, { what: 'first message' });
    blocked = true;
    const reconnecting = once(c, 'state', (e) => e.to === 'reconnecting');
    await small.disconnect();
    await reconnecting;
    for (let n = 2; n <= 10; n++) await small.publish('gappy', { n });
    blocked = false;
    const gap = await waitFor(() => gaps[0], { what: 'onGap' });
    assert.equal(gap.channel, 'gappy');
    assert.equal(typeof gap.offset, 'number');
    await small.publish('gappy', { n: 11 });
    await waitFor(() => got.includes(11), { what: 'the stream after the gap' });
    assert.ok(!got.includes(2), 'messages history no longer had were not invented');
    assert.deepEqual(got.filter((n) => n > 1), [...got.filter((n) => n > 1)].sort((a, b) => a - b), 'in order');
  } finally {
    c.close();
    await small.stop();
  }
});
