// A refused token under the browser's own EventSource, which hides the HTTP status of a stream that
// cannot open: the client must still see the 401 (and its code) and stop in `closed` 4005, instead
// of counting it as a transport failure and reconnecting forever (issue 16, item 6).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { startServer, launchBrowser, openPage, q, unique, FAST_CLIENT } from './helpers.mjs';

const SECRET = 'browser-token-secret';
function expiredToken() {
  const enc = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const head = `${enc({ alg: 'HS256', typ: 'JWT' })}.${enc({ sub: 'alice', exp: Math.floor(Date.now() / 1000) - 120 })}`;
  return `${head}.${createHmac('sha256', SECRET).update(head).digest('base64url')}`;
}

let server, browser;
before(async () => {
  server = await startServer(['--token-secret', SECRET]);
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
  await server?.stop();
});

test('SSE through EventSource with an expired token and no getToken: closed 4005, no reconnect loop', async () => {
  const room = unique('demo:tokens');
  const opts = { ...FAST_CLIENT, token: expiredToken() };
  const { page, watcher } = await openPage(browser.context, server.url,
    `/chat.html?room=${room}&name=tester&transport=sse&opts=${q(opts)}`,
    { ready: () => window.pw && window.pw.state === 'closed' });
  const transitions = await page.evaluate(() => window.pw.transitions);
  const last = transitions[transitions.length - 1];
  assert.equal(last.to, 'closed');
  assert.equal(last.code, 4005, JSON.stringify(transitions));
  assert.equal(transitions.filter((t) => t.to === 'reconnecting').length, 0, JSON.stringify(transitions));
  // The refused stream and the probe that read its status are the only problems, and expected.
  const others = watcher.problems.filter((p) => !/^HTTP 401: GET \/sse\?/.test(p));
  assert.deepEqual(others, [], watcher.problems.join('\n'));
  await page.close();
});
