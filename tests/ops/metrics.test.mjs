// --version, pushwire_build_info and the process families of /metrics, read from the real process.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import net from 'node:net';
import { after, before, test } from 'node:test';
import { serverBin } from '../js/helpers.mjs';
import { httpsRequest as request, startServerProc, waitFor } from './server-proc.mjs';

let srv;
let startedAt;
before(async () => {
  startedAt = Date.now() / 1000;
  srv = await startServerProc();
});
after(async () => {
  await srv?.stop();
});

async function scrape() {
  const r = await request(`${srv.url}/metrics`);
  assert.equal(r.status, 200);
  return r.body.toString();
}
const value = (text, name) => {
  const m = text.match(new RegExp(`^${name} ([0-9.e+]+)$`, 'm'));
  return m ? Number(m[1]) : null;
};

test('--version prints the version and commit that pushwire_build_info reports', async () => {
  const out = execFileSync(serverBin, ['--version']).toString();
  const m = out.match(/^pushwire-server (\S+) \((\S+)\)\n$/);
  assert.ok(m, out);
  const text = await scrape();
  assert.ok(text.includes(`pushwire_build_info{version="${m[1]}",commit="${m[2]}"} 1\n`), text);
});

test('process metrics: start time, CPU, memory, descriptors that follow open connections', async () => {
  const text = await scrape();
  for (const [family, type] of [['process_cpu_seconds_total', 'counter'], ['process_resident_memory_bytes', 'gauge'],
    ['process_open_fds', 'gauge'], ['process_max_fds', 'gauge'], ['process_start_time_seconds', 'gauge']])
    assert.ok(text.includes(`# TYPE ${family} ${type}\n`), family);
  const start = value(text, 'process_start_time_seconds');
  assert.ok(start >= startedAt - 2 && start <= Date.now() / 1000, `start ${start}, spawned ${startedAt}`);
  assert.ok(value(text, 'process_resident_memory_bytes') > 1 << 20);
  assert.ok(value(text, 'process_cpu_seconds_total') >= 0);
  assert.ok(value(text, 'process_max_fds') > value(text, 'process_open_fds'));

  // Ten idle TCP connections are ten more descriptors in the server.
  const fds = value(text, 'process_open_fds');
  const socks = await Promise.all(Array.from({ length: 10 }, () => new Promise((resolve, reject) => {
    const s = net.connect(srv.port, '127.0.0.1', () => resolve(s));
    s.on('error', reject);
  })));
  try {
    // Each scrape is one more connection of its own, closed before the next (agent: false).
    await waitFor(async () => value(await scrape(), 'process_open_fds') >= fds + 10, { what: '10 more descriptors' });
  } finally {
    for (const s of socks) s.destroy();
  }
  await waitFor(async () => value(await scrape(), 'process_open_fds') <= fds + 1, { what: 'the descriptors closed' });
});
