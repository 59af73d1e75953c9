// The server drops the lab page's connection again and again (POST /api/disconnect) while the test
// publishes a numbered stream through /api/publish. Over each transport the page must end with
// every number exactly once, in order, and no gap: the client resumes from its last offset.
//
// Rhythm, without sleeps: publish a block of numbers, drop, publish more at once (those land while
// the page is away), then wait until the page has re-subscribed before the next block.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launchBrowser, openPage, publish, disconnectAll, waitFor, q, unique, FAST_CLIENT } from './helpers.mjs';

let server, browser;
before(async () => {
  server = await startServer();
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
  await server?.stop();
});

const TOTAL = 60, BLOCK = 10, DROPS = 4;

for (const transport of ['websocket', 'sse', 'polling']) {
  test(`numbered stream survives repeated server drops over ${transport}`, async () => {
    const channel = unique(`demo:lab-${transport}`);
    const { page, watcher } = await openPage(browser.context, server.url,
      `/lab.html?transport=${transport}&channel=${channel}&opts=${q(FAST_CLIENT)}`,
      { serverDrops: true, ready: () => window.pw && window.pw.subscribed >= 1 && window.pw.state === 'connected' });
    assert.equal(await page.evaluate(() => window.pw.transport), transport);

    let n = 0;
    const send = async (k) => { for (let i = 0; i < k && n < TOTAL; i++) await publish(server, channel, { n: ++n }); };
    for (let drop = 0; drop < DROPS; drop++) {
      await send(BLOCK);
      const subscribedBefore = await page.evaluate(() => window.pw.subscribed);
      const { disconnected } = await disconnectAll(server);
      assert.ok(disconnected >= 1, `the server dropped the page (drop ${drop + 1})`);
      await send(BLOCK / 2);   // published while the page is (most likely) away
      await waitFor(() => page.evaluate((before) => window.pw.subscribed > before && window.pw.state === 'connected', subscribedBefore),
        { timeoutMs: 8000, what: `re-subscription after drop ${drop + 1}` });
    }
    await send(TOTAL);
    await page.waitForFunction((total) => window.pw.numbers.length >= total, TOTAL, { polling: 20, timeout: 10000 })
      .catch(async (err) => { throw new Error(`${err.message}\npw=${await page.evaluate(() => JSON.stringify({ numbers: window.pw.numbers, transitions: window.pw.transitions }))}`); });

    const pw = await page.evaluate(() => ({ numbers: window.pw.numbers, gaps: window.pw.gaps, duplicates: window.pw.duplicates,
      outOfOrder: window.pw.outOfOrder, reconnects: window.pw.reconnects, recovered: window.pw.recovered, transport: window.pw.transport }));
    assert.deepEqual(pw.numbers, Array.from({ length: TOTAL }, (_, i) => i + 1));
    assert.equal(pw.gaps, 0);
    assert.equal(pw.duplicates, 0);
    assert.equal(pw.outOfOrder, 0);
    assert.ok(pw.reconnects >= DROPS, `reconnected after every drop (${pw.reconnects})`);
    assert.equal(pw.transport, transport, 'no fallback to another transport');
    // Every re-subscription after a drop was a resume that history covered.
    assert.ok(pw.recovered.slice(1).every((r) => r === true), `recovered flags ${JSON.stringify(pw.recovered)}`);
    assert.match(await page.textContent('#verdict'), new RegExp(`All ${TOTAL} numbers arrived exactly once`));
    watcher.check(assert);
    await page.close();
  });
}
