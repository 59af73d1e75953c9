// Forced fallback against the real server: the core (not the JS) moves websocket -> sse -> polling
// when a transport is refused, and reports each step in a `fallback` event.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FAST, loadClient, once, startServer, waitFor } from './helpers.mjs';

const { Client, Code } = await loadClient();

async function scenario(serverFlags, clientOptions, expectFallbacks, expectTransport) {
  const srv = await startServer(['--poll-hold-ms', '1000', ...serverFlags]);
  const c = new Client(srv.url, { ...FAST, pollHoldMs: 1000, ...clientOptions });
  try {
    const fallbacks = [];
    c.on('fallback', (e) => fallbacks.push(e));
    const got = [];
    const sub = c.subscribe('fb', { onMessage: (d) => got.push(d) });
    await once(sub, 'subscribed');
    assert.equal(c.transport, expectTransport);
    assert.deepEqual(fallbacks.map((f) => [f.from, f.to]), expectFallbacks);
    for (const f of fallbacks) {
      assert.equal(typeof f.reason, 'string');
      assert.ok(f.reason.length > 0, 'a reason is given');
      // transport_failed when it never opened, else the close code (1006 here) or handshake_timeout.
      assert.ok(Number.isInteger(f.code) && f.code !== Code.ok, `code ${f.code}`);
    }
    await srv.publish('fb', { ok: true });
    await waitFor(() => got.length === 1, { what: 'the message' });
    assert.deepEqual(got, [{ ok: true }]);
  } finally {
    c.close();
    await srv.stop();
  }
}

test('websocket refused by the server -> sse', () =>
  scenario(['--transports', 'sse,polling'], {}, [['websocket', 'sse']], 'sse'));

test('websocket and sse refused -> polling', () =>
  scenario(['--transports', 'polling'], {}, [['websocket', 'sse'], ['sse', 'polling']], 'polling'));

test('an injected WebSocket that fails to open -> sse', () => {
  class FailingWebSocket {
    constructor() {
      queueMicrotask(() => {
        this.onerror?.({});
        this.onclose?.({ code: 1006, reason: '' });
      });
    }
    send() {}
    close() {}
  }
  return scenario([], { WebSocket: FailingWebSocket }, [['websocket', 'sse']], 'sse');
});

test('an injected WebSocket that opens but dies before the first frame -> sse', () => {
  class DyingWebSocket {
    constructor() {
      queueMicrotask(() => this.onopen?.({}));
    }
    send() {
      queueMicrotask(() => this.onclose?.({ code: 1006, reason: 'proxy cut it' }));
    }
    close() {}
  }
  return scenario([], { WebSocket: DyingWebSocket }, [['websocket', 'sse']], 'sse');
});
