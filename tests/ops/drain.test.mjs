// Readiness and drain with the real process: SIGTERM turns /readyz to 503 at once, the listener
// keeps answering (fresh connections) for --readiness-drain-ms, /healthz stays 200, new streams are
// refused with 4009, and the process then exits on its own.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { httpsRequest as request, startServerProc, waitFor } from './server-proc.mjs';

const get = (srv, path) => request(srv.url + path);   // each on a new connection (agent: false)

test('SIGTERM: /readyz 503 while the listener answers until the drain ends; /healthz 200; then exit', async () => {
  const srv = await startServerProc({ extra: ['--readiness-drain-ms', '1500', '--shutdown-timeout-ms', '4000'] });
  try {
    assert.equal((await get(srv, '/readyz')).status, 200);
    assert.equal((await get(srv, '/healthz')).status, 200);
    const t0 = Date.now();
    srv.proc.kill('SIGTERM');
    const first = await waitFor(async () => {
      const r = await get(srv, '/readyz');
      return r.status === 503 && r;
    }, { what: '/readyz 503' });
    assert.equal(first.body.toString(), 'draining\n');
    assert.equal((await get(srv, '/healthz')).status, 200);
    const sse = await get(srv, '/sse?channels=news');
    assert.equal(sse.status, 503);
    assert.equal(JSON.parse(sse.body).error.code, 4009);
    // The listener still answers a second after the signal (a balancer checking every second sees it).
    let answered = 0;
    while (Date.now() - t0 < 1000) {
      assert.equal((await get(srv, '/readyz')).status, 503);
      ++answered;
    }
    assert.ok(answered > 0);
    await waitFor(() => srv.exited(), { what: 'the exit after the drain', timeoutMs: 6000 });
    const took = Date.now() - t0;
    assert.ok(took >= 1500, `exited ${took} ms after SIGTERM, before --readiness-drain-ms`);
    assert.ok(took < 4000 + 1500, `exited ${took} ms after SIGTERM`);
    assert.deepEqual(srv.exited(), { code: 0, signal: null });
    await assert.rejects(get(srv, '/readyz'), /ECONNREFUSED/);
  } finally {
    await srv.stop();
  }
});

test('without --readiness-drain-ms and with no clients, SIGTERM stops at once', async () => {
  const srv = await startServerProc({ extra: ['--shutdown-timeout-ms', '4000'] });
  try {
    const t0 = Date.now();
    srv.proc.kill('SIGTERM');
    await waitFor(() => srv.exited(), { what: 'exit', timeoutMs: 6000 });
    assert.ok(Date.now() - t0 < 1500, `took ${Date.now() - t0} ms`);
  } finally {
    await srv.stop();
  }
});

test('open streams are told 4009 with reconnect advice and the drain ends when they are gone', async () => {
  const srv = await startServerProc({ extra: ['--shutdown-timeout-ms', '4000', '--reconnect-jitter-ms', '50'] });
  try {
    const res = await fetch(`${srv.url}/sse?channels=news`);
    assert.equal(res.status, 200);
    const reader = res.body.getReader();
    let text = '';
    const done = (async () => {
      for (;;) {
        const { value, done: end } = await reader.read();
        if (end) return;
        text += Buffer.from(value).toString();
      }
    })();
    await waitFor(() => text.includes('"type":"subscribed"'), { what: 'subscribed' });
    const t0 = Date.now();
    srv.proc.kill('SIGTERM');
    await done;
    assert.match(text, /"code":4009/);
    assert.match(text, /"reconnect":true/);
    await waitFor(() => srv.exited(), { what: 'exit', timeoutMs: 6000 });
    assert.ok(Date.now() - t0 < 3000, `took ${Date.now() - t0} ms`);
  } finally {
    await srv.stop();
  }
});
