// Each transport forced in turn against the real server: subscribe, receive (API publish), publish
// from the client (demo namespace), presence (join/leave), history, and a refused publish.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { FAST, loadClient, once, startServer, waitFor } from './helpers.mjs';

const { Client, Code } = await loadClient();
let srv;
const clients = [];
before(async () => {
  srv = await startServer(['--ping-interval-ms', '1000', '--poll-hold-ms', '1000']);
});
after(async () => {
  for (const c of clients) c.close();
  await srv?.stop();
});

function client(transport, extra = {}) {
  const c = new Client(srv.url, { ...FAST, pollHoldMs: 1000, transports: [transport], ...extra });
  clients.push(c);
  return c;
}

for (const transport of ['websocket', 'sse', 'polling']) {
  describe(`transport ${transport}`, () => {
    test('subscribes and receives messages published through the API, in order', async () => {
      const c = client(transport);
      const got = [];
      const sub = c.subscribe(`news-${transport}`, { onMessage: (d, ctx) => got.push([d, ctx.offset, ctx.channel]) });
      await once(sub, 'subscribed');
      assert.equal(c.state, 'connected');
      assert.equal(c.transport, transport);
      const first = await srv.publish(`news-${transport}`, { n: 1, text: 'héllo ✓' });
      await srv.publish(`news-${transport}`, [1, 2, 3]);
      await waitFor(() => got.length >= 2, { what: 'two messages' });
      assert.deepEqual(got, [
        [{ n: 1, text: 'héllo ✓' }, first.offset, `news-${transport}`],
        [[1, 2, 3], first.offset + 1, `news-${transport}`],
      ]);
      c.close();
    });

    test('publishes from the client into a demo channel and history returns it', async () => {
      const c = client(transport);
      const ch = `demo:chat-${transport}`;
      const got = [];
      const sub = c.subscribe(ch, { onMessage: (d) => got.push(d) });
      await once(sub, 'subscribed');
      const r1 = await c.publish(ch, { text: 'one' });
      const r2 = await sub.publish({ text: 'two' });
      assert.equal(r1.channel, ch);
      assert.equal(r2.offset, r1.offset + 1);
      assert.equal(r2.epoch, r1.epoch);
      await waitFor(() => got.length >= 2, { what: 'own messages' });
      assert.deepEqual(got, [{ text: 'one' }, { text: 'two' }]);
      const past = await sub.history({ limit: 1 });
      assert.deepEqual(past.map((p) => [p.offset, p.data]), [[r2.offset, { text: 'two' }]]);
      const all = await c.history(ch, { limit: 50 });
      assert.deepEqual(all.map((p) => p.data), [{ text: 'one' }, { text: 'two' }]);
      c.close();
    });

    test('presence lists members and reports joins and leaves', async () => {
      const ch = `demo:room-${transport}`;
      const a = client(transport);
      const events = [];
      const subA = a.subscribe(ch, { onJoin: (e) => events.push(['join', e.client]), onLeave: (e) => events.push(['leave', e.client]) });
      await once(subA, 'subscribed');
      const alone = await waitFor(async () => {
        const m = await subA.presence();
        return m.length === 1 && m;
      }, { what: 'a alone in the room' });
      const b = client('websocket');
      const subB = b.subscribe(ch);
      await once(subB, 'subscribed');
      const members = await waitFor(async () => {
        const m = await subA.presence();
        return m.length >= 2 && m;
      }, { what: 'two members' });
      assert.ok(members.every((m) => typeof m.client === 'string' && typeof m.user === 'string'));
      // Join/leave frames reach a long-poll client only while one of its polls is parked: the
      // stateless poll keeps no per-client queue, and only messages are replayed from history.
      if (transport !== 'polling') await waitFor(() => events.some((e) => e[0] === 'join' && e[1] !== alone[0].client), { what: 'a join event' });
      const joined = members.find((m) => m.client !== alone[0].client).client;
      if (transport !== 'polling') assert.ok(events.some((e) => e[0] === 'join' && e[1] === joined), 'b joined');
      b.close();
      await waitFor(async () => (await subA.presence()).length === 1, { what: 'the member to be gone' });
      if (transport !== 'polling') await waitFor(() => events.some((e) => e[0] === 'leave' && e[1] === joined), { what: 'a leave event' });
      a.close();
    });

    test('a refused publish rejects with the server code', async () => {
      const c = client(transport);
      await once(c.subscribe(`refused-${transport}`), 'subscribed');
      // The default namespace does not allow client publish.
      await assert.rejects(c.publish('scores', { x: 1 }),
        (e) => e.name === 'PushwireError' && e.code === Code.permissionDenied && e.message.length > 0);
      c.close();
    });

    test('connects with no subscription at all', { timeout: 5000 }, async () => {
      const c = client(transport);
      try {
        await c.ready();
        assert.equal(c.transport, transport);
      } finally {
        c.close();
      }
    });
  });
}
