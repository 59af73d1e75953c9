// The client-size budget (DECISIONS.md §24, issue 16 item 1): scripts/client-size.sh measures what a
// page downloads (gzip -9 of the wasm plus a minified esbuild bundle of `import { Client }`, and of
// the <script> build) and exits non-zero when either is over its budget. This test runs it, so a
// change that makes the client bigger fails here until the budget (and README.md) says otherwise.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { repo } from './helpers.mjs';

const run = promisify(execFile);

test('what a page downloads stays within the budget in scripts/client-size.sh', async () => {
  let out;
  try {
    out = (await run('sh', [join(repo, 'scripts/client-size.sh')])).stdout;
  } catch (err) {
    assert.fail(`client-size.sh failed (exit ${err.code}):\n${err.stdout}${err.stderr}`);
  }
  const totals = [...out.matchAll(/^wasm \+ .*?(\d+)\s+\(budget (\d+): ok\)$/gm)];
  assert.equal(totals.length, 2, `both page totals reported:\n${out}`);
  // The fallback core is reported apart and never counted (it is not downloaded on normal pages).
  assert.match(out, /^wasm2js core\s+\d+\s+\(strict-CSP fallback only, not counted\)$/m);
});
