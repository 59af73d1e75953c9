// The driver never hands setTimeout more than it honours (2^31 - 1 ms; issue 18, defect 5): a server
// `after` of 2^32 ms used to fire the timer at once, again and again (a busy loop with thousands of
// TimeoutOverflowWarnings, no reconnect). Now the driver waits the maximum, the core finds nothing
// due and asks again, and the reconnect comes once `after` has really passed. Time is faked by
// shifting performance.now (the driver's clock) and firing the recorded timer by hand.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadClient, waitFor } from './helpers.mjs';

const { Client } = await loadClient();

class FakeWebSocket {
  static all = [];
  constructor(url) {
    this.url = url;
    this.sent = [];
    FakeWebSocket.all.push(this);
  }
  send(text) { this.sent.push(...text.split('\n').filter(Boolean).map((l) => JSON.parse(l))); }
  close() { this.closed = true; }
  open() { this.onopen?.({}); }
  frames(...f) { this.onmessage?.({ data: f.map((x) => JSON.stringify(x)).join('\n') }); }
}

// Timers that only record; fire() runs the ones pending now.
function manualTimers() {
  const pending = new Map();
  const delays = [];
  let next = 1;
  return {
    pending,
    delays,
    setTimeout: (f, ms) => {
      delays.push(ms);
      pending.set(next, f);
      return next++;
    },
    clearTimeout: (h) => pending.delete(h),
    fire() {
      const due = [...pending.values()];
      pending.clear();
      for (const f of due) f();
    },
  };
}

test('an `after` of 2^32 ms is waited out in timers setTimeout honours, then the client reconnects', async () => {
  const realNow = performance.now.bind(performance);
  let shift = 0;
  performance.now = () => realNow() + shift;
  try {
    FakeWebSocket.all = [];
    const timers = manualTimers();
    const client = new Client('http://test.invalid', { WebSocket: FakeWebSocket, transports: ['websocket'],
      fetch: () => new Promise(() => {}), ...timers });
    client.subscribe('x');
    const ws = await waitFor(() => FakeWebSocket.all[0], { what: 'a WebSocket' });
    ws.open();
    ws.frames({ type: 'connected', id: ws.sent[0].id, client: 'c1', ping: 25000, v: 1 });
    assert.equal(client.state, 'connected');
    timers.delays.length = 0;
    ws.frames({ type: 'disconnect', code: 4010, reason: 'bye', reconnect: true, after: 2 ** 32 });
    assert.notEqual(client.state, 'connected');
    assert.ok(timers.delays.length >= 1, 'a timer is armed');
    for (const d of timers.delays) assert.ok(d <= 2 ** 31 - 1, `setTimeout got ${d} ms`);

    // The timer fires after its (clamped) delay: nothing is due yet, so the driver arms one more,
    // again within range, and no connection is opened.
    shift += 2 ** 31;
    timers.fire();
    assert.equal(FakeWebSocket.all.length, 1, 'no reconnect before `after` has passed');
    assert.equal(timers.pending.size, 1, 'exactly one timer armed again');
    for (const d of timers.delays) assert.ok(d <= 2 ** 31 - 1, `setTimeout got ${d} ms`);

    // Once `after` has passed, the next firing reconnects.
    shift += 2 ** 31 + 1000;
    timers.fire();
    await waitFor(() => FakeWebSocket.all.length === 2, { what: 'the reconnect' });
    client.close();
  } finally {
    performance.now = realNow;
  }
});
