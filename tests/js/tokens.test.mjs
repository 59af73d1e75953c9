// Tokens against the real server started with a token secret (issue 16, item 6): an expired token
// makes the client ask getToken and reconnect with the fresh one, on every transport; a getToken that
// fails, or none at all, or one that gives the refused token again, ends in `closed` with the
// server's code and no further attempt.
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { after, before, test } from 'node:test';
import { FAST, loadClient, once, startServer, waitFor } from './helpers.mjs';

const { Client, Code } = await loadClient();
const SECRET = 'token-test-secret';

function b64url(s) {
  return Buffer.from(s).toString('base64url');
}
// An HS256 JWT; `expIn` seconds from now (negative: already expired, beyond the server's 30 s leeway).
function sign(sub, expIn) {
  const head = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
  const body = b64url(JSON.stringify({ sub, exp: Math.floor(Date.now() / 1000) + expIn }));
  const sig = createHmac('sha256', SECRET).update(`${head}.${body}`).digest('base64url');
  return `${head}.${body}.${sig}`;
}
const expired = () => sign('alice', -120);
const fresh = () => sign('alice', 3600);

let srv;
before(async () => {
  srv = await startServer(['--token-secret', SECRET, '--ping-interval-ms', '1000', '--poll-hold-ms', '1000']);
});
after(() => srv?.stop());

function record(c) {
  const states = [];
  c.on('state', (e) => states.push(e));
  return states;
}

// No attempt follows a close: watch a while (several backoff ceilings of FAST) for any state change.
async function staysClosed(c, states, ms = 600) {
  const n = states.length;
  await new Promise((r) => setTimeout(r, ms));
  assert.equal(c.state, 'closed');
  assert.deepEqual(states.slice(n), [], 'no state change after closed');
}

for (const transport of ['websocket', 'sse', 'polling']) {
  test(`an expired token: getToken is called and the client reconnects with the fresh one (${transport})`, async () => {
    const calls = [];
    const c = new Client(srv.url, {
      ...FAST, pollHoldMs: 1000, transports: [transport], token: expired(),
      getToken: async ({ code }) => {
        calls.push(code);
        return fresh();
      },
    });
    const states = record(c);
    try {
      const sub = c.subscribe(`tok-${transport}`);
      await once(sub, 'subscribed');
      assert.equal(c.state, 'connected');
      assert.deepEqual(calls, [Code.tokenExpired]);
      const refused = states.find((s) => s.to === 'reconnecting');
      assert.ok(refused, JSON.stringify(states));
      assert.equal(refused.code, Code.tokenExpired, JSON.stringify(refused));
      assert.equal(states.filter((s) => s.to === 'reconnecting').length, 1, JSON.stringify(states));
      const got = once(sub, 'message');
      await srv.publish(`tok-${transport}`, { ok: 1 });
      assert.deepEqual(await got, { ok: 1 });
    } finally {
      c.close();
    }
  });

  test(`getToken failing: closed with 4005 and no further attempts (${transport})`, async () => {
    let calls = 0;
    const c = new Client(srv.url, {
      ...FAST, pollHoldMs: 1000, transports: [transport], token: expired(),
      getToken: async () => {
        calls++;
        throw new Error('session over');
      },
    });
    const states = record(c);
    try {
      const ready = c.ready().then(() => null, (err) => err);
      const closed = await once(c, 'state', (s) => s.to === 'closed');
      assert.equal(closed.code, Code.tokenExpired);
      assert.match(closed.reason, /getToken failed: session over/);
      const err = await ready;
      assert.equal(err?.code, Code.tokenExpired);
      await staysClosed(c, states);
      assert.equal(calls, 1);
    } finally {
      c.close();
    }
  });
}

test('without getToken an expired token ends in closed 4005 at once (no reconnect loop)', async () => {
  const c = new Client(srv.url, { ...FAST, transports: ['websocket'], token: expired() });
  const states = record(c);
  try {
    const closed = await once(c, 'state', (s) => s.to === 'closed');
    assert.equal(closed.code, Code.tokenExpired);
    assert.equal(states.filter((s) => s.to === 'reconnecting').length, 0, JSON.stringify(states));
    await staysClosed(c, states);
  } finally {
    c.close();
  }
});

test('a forged token: 4004; getToken giving the same refused token again ends in closed 4004', async () => {
  // Another signature character (the first: the last one holds padding bits a decoder may ignore).
  const good = fresh();
  const at = good.lastIndexOf('.') + 1;
  const forged = good.slice(0, at) + (good[at] === 'A' ? 'B' : 'A') + good.slice(at + 1);
  let calls = 0;
  const c = new Client(srv.url, {
    ...FAST, transports: ['websocket'], token: forged,
    getToken: () => {
      calls++;
      return forged;
    },
  });
  const states = record(c);
  try {
    const closed = await once(c, 'state', (s) => s.to === 'closed');
    assert.equal(closed.code, Code.unauthorized);
    assert.equal(calls, 1);
    await staysClosed(c, states);
  } finally {
    c.close();
  }
});

test('getToken is called before connecting when there is no token, then not again', async () => {
  const calls = [];
  const c = new Client(srv.url, {
    ...FAST, transports: ['sse'], getToken: ({ code }) => {
      calls.push(code);
      return fresh();
    },
  });
  try {
    await c.ready();
    assert.deepEqual(calls, [0]);
    // An ordinary loss reconnects with the token in hand.
    const lost = once(c, 'state', (s) => s.to === 'reconnecting');
    await srv.disconnect();
    await lost;
    await waitFor(() => c.state === 'connected', { what: 'connected again' });
    assert.deepEqual(calls, [0]);
  } finally {
    c.close();
  }
});
