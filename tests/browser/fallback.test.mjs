// Forced fallbacks: with window.WebSocket deleted before any script runs, the chat page connects
// over SSE; with WebSocket and EventSource both deleted, over long-polling. In both cases the page
// sends a message (the /cmd POST) and receives it back, plus one published through the HTTP API,
// and is in the room's presence exactly once.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launchBrowser, openPage, publish, q, unique, FAST_CLIENT } from './helpers.mjs';

let server, browser;
before(async () => {
  server = await startServer();
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
  await server?.stop();
});

const cases = [
  { name: 'no WebSocket: falls back to SSE', expect: 'sse', init: () => { delete window.WebSocket; } },
  { name: 'no WebSocket, no EventSource: falls back to polling', expect: 'polling',
    init: () => { delete window.WebSocket; delete window.EventSource; } },
  // The same checks with polling picked by the page, so a polling problem shows apart from the fallback.
  { name: 'polling picked by the page (?transport=polling)', expect: 'polling', query: '&transport=polling' },
];

for (const c of cases) {
  test(c.name, async () => {
    const room = unique('demo:fallback');
    const { page, watcher } = await openPage(browser.context, server.url,
      `/chat.html?room=${room}&name=tester&opts=${q(FAST_CLIENT)}${c.query ?? ''}`,
      { init: c.init, ready: () => window.pw && window.pw.subscribed && window.pw.state === 'connected' });
    if (c.init) assert.equal(await page.evaluate(() => typeof window.WebSocket), 'undefined');
    const transport = await page.evaluate(() => window.pw.transport);

    // It works: a message sent from the page comes back, and one from the backend arrives.
    await page.fill('#text', 'sent from the page');
    await page.click('#send');
    await page.waitForFunction(() => window.pw.messages.some((m) => m.text === 'sent from the page'), null, { polling: 20, timeout: 5000 });
    await publish(server, room, { name: 'backend', text: 'from the HTTP API' });
    await page.waitForFunction(() => window.pw.messages.some((m) => m.text === 'from the HTTP API'), null, { polling: 20, timeout: 5000 });
    assert.deepEqual(await page.evaluate(() => window.pw.messages.map((m) => m.text)), ['sent from the page', 'from the HTTP API']);

    // Presence: this page alone is in the room, once (a one-way client keeps one member across
    // its requests, DECISIONS.md §5).
    const presence = await page.evaluate(async () => ({ members: window.pw.members, joins: window.pw.joins }));
    assert.equal(presence.members.length, 1, `one member, got ${presence.members.length} (${presence.joins.length} joins)`);

    // …over the expected transport, shown on the page, and it stayed there.
    assert.equal(transport, c.expect, `connected over ${transport}, expected ${c.expect}`);
    assert.equal(await page.textContent('[data-pw="transport"]'), c.expect);
    assert.equal(await page.evaluate(() => window.pw.transport), c.expect, 'stayed on the fallback transport');
    const fallbacks = await page.evaluate(() => window.pw.fallbacks);
    if (!c.query) assert.ok(fallbacks.length >= 1 && fallbacks[0].from === 'websocket', `a fallback from websocket was reported: ${JSON.stringify(fallbacks)}`);
    watcher.check(assert);
    await page.close();
  });
}
