// close() leaves nothing running: a child Node process connects, subscribes, receives one message,
// closes, and must then exit by itself (no timer, socket or request left keeping it alive).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { nodeEntry, startServer, waitFor } from './helpers.mjs';

let srv;
before(async () => {
  srv = await startServer(['--ping-interval-ms', '1000', '--poll-hold-ms', '1000']);
});
after(() => srv?.stop());

const child = (url, transport) => `
import { Client } from ${JSON.stringify(pathToFileURL(nodeEntry).href)};
const c = new Client(${JSON.stringify(url)}, { transports: [${JSON.stringify(transport)}], pollHoldMs: 1000 });
c.subscribe('bye-${transport}', {
  onSubscribed() { console.log('subscribed'); },
  onMessage(d) { console.log('message ' + JSON.stringify(d)); c.close(); console.log('closed ' + c.state); },
});
`;

for (const transport of ['websocket', 'sse', 'polling']) {
  test(`a process exits by itself after close() (${transport})`, async () => {
    const p = spawn(process.execPath, ['--input-type=module', '-e', child(srv.url, transport)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => { err += d; });
    let exit = null;
    p.on('exit', (code, signal) => { exit = { code, signal }; });
    try {
      await waitFor(() => out.includes('subscribed'), { what: `child subscribed (stderr: ${err})` });
      await srv.publish(`bye-${transport}`, { bye: true });
      await waitFor(() => out.includes('closed closed'), { what: 'child closed' });
      await waitFor(() => exit, { timeoutMs: 3000, what: `the child to exit after close() (stdout: ${out})` });
      assert.deepEqual(exit, { code: 0, signal: null }, err);
      assert.match(out, /message \{"bye":true\}/);
    } finally {
      if (!exit) p.kill('SIGKILL');
    }
  });
}
