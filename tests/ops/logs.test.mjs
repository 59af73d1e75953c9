// The log lines an operator reads (one JSON object per line on stderr): a line when a connection
// opens and when it closes (transport, remote address, user, duration, close code), refused
// authentication with its reason, and API calls at debug. Real process, real sockets.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { WebSocket } from 'ws';
import { httpsRequest as request, startServerProc, waitFor } from './server-proc.mjs';

let srv;
before(async () => {
  srv = await startServerProc({ extra: ['--log-level', 'debug', '--token-secret', 'log-test-secret'] });
});
after(async () => {
  await srv?.stop();
});

const lines = () => srv.log().split('\n').filter(Boolean).map((l) => JSON.parse(l));
const find = (pred, what) => waitFor(() => lines().find(pred), { what });
const BAD_TOKEN = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJtYWxsb3J5In0.c2lnbmF0dXJlLXRoYXQtZG9lcy1ub3QtbWF0Y2g';

async function openWs(token) {
  const ws = new WebSocket(`ws://127.0.0.1:${srv.port}/ws`);
  const frames = [];
  ws.on('message', (d) => frames.push(...d.toString().split('\n').filter(Boolean).map((l) => JSON.parse(l))));
  const closed = new Promise((resolve) => ws.on('close', (code) => resolve(code)));
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
  ws.send(JSON.stringify({ cmd: 'connect', id: 1, ...(token ? { token } : {}) }));
  return { ws, frames, closed };
}

test('a WebSocket: opened and closed lines with remote, client, duration and the peer\'s close code', async () => {
  const { ws, frames, closed } = await openWs();
  const connected = await waitFor(() => frames.find((f) => f.type === 'connected'), { what: 'connected' });
  const opened = await find((l) => l.msg === 'connection opened' && l.client === connected.client, 'the open line');
  assert.equal(opened.transport, 'websocket');
  assert.equal(opened.remote, '127.0.0.1');
  ws.close(1000, 'bye');
  await closed;
  const line = await find((l) => l.msg === 'connection closed' && l.client === connected.client, 'the close line');
  assert.equal(line.level, 'info');
  assert.equal(line.transport, 'websocket');
  assert.equal(line.remote, '127.0.0.1');
  assert.equal(line.code, '1000');
  assert.equal(line.reason, 'bye');
  assert.equal(line.user, '');
  assert.match(line.duration_ms, /^\d+$/);
});

test('a refused token: an auth line with the reason, and the close with 4004; the token itself is never logged', async () => {
  const { closed } = await openWs(BAD_TOKEN);
  assert.equal(await closed, 4004);
  const auth = await find((l) => l.msg === 'auth refused' && l.transport === 'websocket', 'the ws auth line');
  assert.equal(auth.level, 'warn');
  assert.equal(auth.code, '4004');
  assert.ok(auth.reason.length > 0);
  await find((l) => l.msg === 'connection closed' && l.transport === 'websocket' && l.code === '4004', 'the 4004 close');

  const sse = await request(`${srv.url}/sse?channels=news&token=${BAD_TOKEN}`);
  assert.equal(sse.status, 401);
  const sseAuth = await find((l) => l.msg === 'auth refused' && l.transport === 'sse', 'the sse auth line');
  assert.equal(sseAuth.remote, '127.0.0.1');
  assert.ok(sseAuth.reason.length > 0);

  const poll = await request(`${srv.url}/poll?channels=news&open=1&token=${BAD_TOKEN}`);
  assert.equal(poll.status, 401);
  await find((l) => l.msg === 'auth refused' && l.transport === 'polling', 'the polling auth line');
  assert.ok(!srv.log().includes(BAD_TOKEN.split('.')[2]), 'a token signature reached the log');
});

test('an SSE stream the client leaves: opened and closed (code 0: the peer went away)', async () => {
  const ac = new AbortController();
  const res = await fetch(`${srv.url}/sse?channels=news`, { signal: ac.signal });
  assert.equal(res.status, 200);
  const opened = await find((l) => l.msg === 'connection opened' && l.transport === 'sse', 'the sse open line');
  ac.abort();
  const closedLine = await find((l) => l.msg === 'connection closed' && l.client === opened.client, 'the sse close line');
  assert.equal(closedLine.code, '0');
});

test('API calls at debug: method, path, status, time', async () => {
  await srv.publish('news', { n: 1 });
  const line = await find((l) => l.msg === 'http request' && l.path === '/api/publish', 'the api line');
  assert.equal(line.level, 'debug');
  assert.equal(line.method, 'POST');
  assert.equal(line.status, '200');
  assert.match(line.ms, /^\d+$/);
  assert.equal(line.remote, '127.0.0.1');
});
