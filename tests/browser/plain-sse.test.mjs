// The plain-EventSource snippet from docs/protocol.md, with no Pushwire library: web/plain-sse.html
// runs it, and a page.evaluate runs it verbatim on a blank page of the same origin.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launchBrowser, openPage, publish, shots, unique } from './helpers.mjs';

let server, browser;
before(async () => {
  server = await startServer();
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
  await server?.stop();
});

test('plain-sse.html receives publications with a bare EventSource', async () => {
  const channel = unique('demo:plain');
  const { page, watcher } = await openPage(browser.context, server.url, `/plain-sse.html?channel=${channel}`,
    { ready: () => window.pw && window.pw.opens >= 1 });
  assert.equal(await page.evaluate(() => typeof window.Pushwire), 'undefined', 'no library on the page');
  const sent = [{ home: 1, away: 0 }, { home: 1, away: 1 }, { text: 'ünïcode ✓' }];
  const offsets = [];
  for (const d of sent) offsets.push((await publish(server, channel, d)).offset);
  await page.waitForFunction((k) => window.pw.messages.length >= k, sent.length, { polling: 20, timeout: 5000 });
  assert.deepEqual(await page.evaluate(() => window.pw.messages), sent.map((data, i) => ({ offset: offsets[i], data })));
  assert.match(await page.textContent('#log'), /ünïcode ✓/);
  await shots(page, 'plain-sse');
  watcher.check(assert);
  await page.close();
});

test('the docs snippet, verbatim, in page.evaluate', async () => {
  const page = await browser.context.newPage();
  await page.goto(server.url + '/');   // same origin, any page
  await page.evaluate(() => {
    window.got = [];
    const console = { log: (...a) => window.got.push(a) };   // the snippet logs; capture it
    // --- docs/protocol.md ---
    const es = new EventSource('/sse?channels=demo:scores');
    es.onmessage = (e) => { const m = JSON.parse(e.data); console.log(m.offset, m.data); };
    // ---
    window.es = es;
  });
  await page.waitForFunction(() => window.es.readyState === 1, null, { polling: 20 });
  const { offset } = await publish(server, 'demo:scores', { match: 'snippet', home: 'A', away: 'B', homeScore: 2, awayScore: 0 });
  await page.waitForFunction((o) => window.got.some(([off]) => off === o), offset, { polling: 20, timeout: 5000 });
  const [, data] = await page.evaluate((o) => window.got.find(([off]) => off === o), offset);
  assert.deepEqual(data, { match: 'snippet', home: 'A', away: 'B', homeScore: 2, awayScore: 0 });
  await page.evaluate(() => window.es.close());
  await page.close();
});

// Issue 18, defect 9: a resume that history cannot cover reaches a plain EventSource as a named
// `gap` event, which plain-sse.html shows. The page resumes from offset 1 of a channel that kept
// only its last 3 of 10 publications (its EventSource URL carries `since=`, as a page that stored
// its last id would).
test('plain-sse.html shows a gap after a resume history could not cover', async () => {
  const gapServer = await startServer(['--history-size', '3']);
  try {
    const channel = unique('gap');   // the default namespace: --history-size applies
    let epoch;
    for (let i = 1; i <= 10; i++) ({ epoch } = await publish(gapServer, channel, { n: i }));
    const query = encodeURIComponent(`${channel}&since=${epoch}-1`);
    const { page, watcher } = await openPage(browser.context, gapServer.url, `/plain-sse.html?channel=${query}`,
      { ready: () => window.pw && window.pw.opens >= 1 });
    await page.waitForFunction(() => window.pw.gaps.length >= 1, null, { polling: 20, timeout: 10000 });
    assert.equal((await page.evaluate(() => window.pw.gaps))[0].channel, channel);
    assert.equal(await page.textContent('#gaps'), '1');
    await shots(page, 'plain-sse-gap');
    watcher.check(assert);
    await page.close();
  } finally {
    await gapServer.stop();
  }
});
