// Two browser pages chat to each other through web/chat.html and see each other's presence:
// B's arrival is a `join` on A's page, B's departure a `leave`, and messages typed into one page
// appear on the other.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launchBrowser, openPage, shots, q, unique, FAST_CLIENT } from './helpers.mjs';

let server, browser;
before(async () => {
  server = await startServer();
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
  await server?.stop();
});

test('two pages chat and see each other join and leave', async () => {
  const room = unique('demo:chat');
  const path = (name) => `/chat.html?room=${room}&name=${name}&opts=${q(FAST_CLIENT)}`;
  const connected = () => window.pw && window.pw.subscribed && window.pw.state === 'connected';

  const a = await openPage(browser.context, server.url, path('alice'), { ready: connected });
  // A's own presence answer is in before B arrives, so B's arrival must come as a join event.
  await a.page.waitForFunction(() => window.pw.presenceLoads >= 1, null, { polling: 20 });
  const alone = await a.page.evaluate(() => window.pw.members.map((m) => m.client));

  const b = await openPage(browser.context, server.url, path('bob'), { ready: connected });
  await a.page.waitForFunction((known) => window.pw.joins.some((m) => !known.includes(m.client)) && window.pw.members.length === 2,
    alone, { polling: 20, timeout: 5000 });
  await b.page.waitForFunction(() => window.pw.members.length === 2, null, { polling: 20, timeout: 5000 });
  const bobId = await a.page.evaluate((known) => window.pw.joins.find((m) => !known.includes(m.client)).client, alone);
  assert.ok(await b.page.evaluate((id) => window.pw.members.some((m) => m.client === id), bobId), 'B sees itself in presence');

  // B types a message; A sees it. Then A answers.
  await b.page.fill('#text', 'hello from bob');
  await b.page.click('#send');
  await a.page.waitForFunction(() => window.pw.messages.some((m) => m.name === 'bob' && m.text === 'hello from bob'), null, { polling: 20, timeout: 5000 });
  await a.page.fill('#text', 'hi bob, alice here');
  await a.page.press('#text', 'Enter');
  await b.page.waitForFunction(() => window.pw.messages.some((m) => m.name === 'alice' && m.text === 'hi bob, alice here'), null, { polling: 20, timeout: 5000 });
  // Each page sees both messages, once each, in offset order.
  for (const p of [a.page, b.page]) {
    await p.waitForFunction(() => window.pw.messages.length >= 2, null, { polling: 20, timeout: 5000 });
    const msgs = await p.evaluate(() => window.pw.messages);
    assert.deepEqual(msgs.map((m) => m.text), ['hello from bob', 'hi bob, alice here']);
    assert.ok(msgs[0].offset < msgs[1].offset);
  }
  // The joined member and the visible notice are on A's page.
  assert.match(await a.page.textContent('#log'), /joined/);
  assert.equal(await a.page.textContent('#member-count'), '2');

  b.watcher.check(assert);
  await b.page.close();
  await a.page.waitForFunction((id) => window.pw.leaves.some((m) => m.client === id) && window.pw.members.length === 1,
    bobId, { polling: 20, timeout: 5000 });
  assert.match(await a.page.textContent('#log'), /left/);
  await shots(a.page, 'chat');
  a.watcher.check(assert);
  await a.page.close();
});
