// Every demo page passes axe-core with no serious or critical violation, once it has content in its
// logs (issue 18, defect 14: `<ol role="log">` dropped the list's semantics, so its items failed
// "listitem"). The logs' role now sits on a wrapper around the list.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { startServer, launchBrowser, openPage, q, unique, FAST_CLIENT, ROOT } from './helpers.mjs';

const AXE = join(ROOT, 'node_modules', 'axe-core', 'axe.min.js');
const PAGES = ['index.html', 'chat.html', 'scores.html', 'admin.html', 'chart.html', 'lab.html', 'dashboard.html', 'plain-sse.html', 'pusher.html'];

let server, browser;
before(async () => {
  server = await startServer();
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
  await server?.stop();
});

for (const name of PAGES) {
  test(`${name}: no serious or critical axe-core violation`, async () => {
    const channel = unique('demo:a11y');
    const { page } = await openPage(browser.context, server.url, `/${name}?channel=${channel}&opts=${q(FAST_CLIENT)}`);
    await page.waitForLoadState('load');
    // A list item in every log, as a user sees the page after a moment (an empty list hides the
    // "listitem" rule).
    await page.evaluate(() => {
      for (const ol of document.querySelectorAll('ol.log')) {
        if (!ol.children.length) ol.append(Object.assign(document.createElement('li'), { textContent: 'entry' }));
      }
    });
    await page.addScriptTag({ path: AXE });
    const violations = await page.evaluate(async () => {
      const r = await window.axe.run(document, { resultTypes: ['violations'] });
      return r.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical')
        .map((v) => `${v.id} (${v.impact}): ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
    });
    assert.deepEqual(violations, [], `${name}:\n${violations.join('\n')}`);
    await page.close();
  });
}
