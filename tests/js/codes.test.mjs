// The JS mirror of the code table (client-wasm/src/codes.mjs) must match protocol/codes.hpp and the
// names in protocol/codes.cpp, entry for entry (STYLE.md: "the JS side mirrors those codes").
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { repo } from './helpers.mjs';
import { Code, codeName } from '../../client-wasm/src/codes.mjs';

const camel = (s) => s.replace(/_([a-z])/g, (_, c) => c.toUpperCase());

async function headerCodes() {
  const hpp = await readFile(join(repo, 'protocol/codes.hpp'), 'utf8');
  const body = hpp.match(/enum class code\s*:\s*std::uint16_t\s*\{([\s\S]*?)\};/)[1];
  const out = new Map();
  for (const line of body.split('\n')) {
    const m = line.replace(/\/\/.*$/, '').match(/^\s*([a-z_0-9]+)\s*=\s*(\d+)\s*,?\s*$/);
    if (m) out.set(m[1], Number(m[2]));
  }
  return out;
}

test('every code in codes.hpp is in codes.mjs with the same number, and nothing else', async () => {
  const codes = await headerCodes();
  assert.ok(codes.size > 30, `parsed only ${codes.size} codes from codes.hpp`);
  const expected = Object.fromEntries([...codes].map(([k, v]) => [camel(k), v]));
  assert.deepEqual({ ...Code }, expected);
});

test('codeName() matches code_name() in codes.cpp', async () => {
  const cpp = await readFile(join(repo, 'protocol/codes.cpp'), 'utf8');
  const codes = await headerCodes();
  let n = 0;
  for (const m of cpp.matchAll(/case code::([a-z_0-9]+):\s*return "([^"]*)";/g)) {
    assert.equal(codeName(codes.get(m[1])), m[2], `name of ${m[1]}`);
    n++;
  }
  assert.equal(n, codes.size, 'every code has a name');
  assert.equal(codeName(12345), 'unknown code');
});
