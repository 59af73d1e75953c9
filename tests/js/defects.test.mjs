// Small defects of issue 16, item 7, checked against the real server: `recovered` only on a resumed
// subscription (docs/protocol.md: present only when `since` was given), and `client.transport` null
// while reconnecting (docs/client.md).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { FAST, loadClient, once, startServer, waitFor } from './helpers.mjs';

const { Client } = await loadClient();
let srv;
before(async () => {
  srv = await startServer(['--ping-interval-ms', '1000', '--poll-hold-ms', '1000']);
});
after(() => srv?.stop());

for (const transport of ['websocket', 'sse', 'polling']) {
  test(`recovered is absent on a first subscribe and present on a resume (${transport})`, async () => {
    const c = new Client(srv.url, { ...FAST, pollHoldMs: 1000, transports: [transport] });
    try {
      const ch = `rec-${transport}`;
      const seen = [];
      const sub = c.subscribe(ch, { onSubscribed: (e) => seen.push(e) });
      await once(sub, 'subscribed');
      assert.equal('recovered' in seen[0], false, `first subscribe: ${JSON.stringify(seen[0])}`);
      await srv.publish(ch, { n: 1 });
      await waitFor(() => sub.position?.offset >= 1, { what: 'the first message' });
      // The client resubscribes from its last position after the cut: now `since` was given.
      await waitFor(async () => {
        if (seen.length > 1) return true;
        await srv.disconnect();
        return waitFor(() => seen.length > 1, { timeoutMs: 500 }).catch(() => false);
      }, { what: 'a resubscription' });
      assert.equal(seen[1].recovered, true, `resume: ${JSON.stringify(seen[1])}`);

      const fresh = c.subscribe(`${ch}-since`, { since: { epoch: seen[0].epoch, offset: 0 } });
      const e = await once(fresh, 'subscribed');
      assert.equal(typeof e.recovered, 'boolean', `subscribe with since: ${JSON.stringify(e)}`);
    } finally {
      c.close();
    }
  });
}

test('client.transport is null while reconnecting, in the property and in the state event', async () => {
  // A long backoff keeps the client in `reconnecting` long enough to look.
  const c = new Client(srv.url, { ...FAST, backoffMinMs: 3000, backoffMaxMs: 3000, transports: ['websocket'] });
  try {
    await c.ready();
    assert.equal(c.transport, 'websocket');
    const ev = once(c, 'state', (e) => e.to === 'reconnecting');
    await srv.disconnect({ after_ms: 3000, jitter_ms: 0 });
    const e = await ev;
    assert.equal(e.transport, null, 'state event');
    assert.equal(c.state, 'reconnecting');
    assert.equal(c.transport, null, 'property');
    const back = await once(c, 'state', (s) => s.to === 'connected', 10000);
    assert.equal(back.transport, 'websocket');
    assert.equal(c.transport, 'websocket');
  } finally {
    c.close();
  }
});
