// Type=notify for real (issue 15 item 3): the server is started as systemd starts it, with
// NOTIFY_SOCKET naming a unix datagram socket, here one a small python3 receiver listens on (Node
// has no datagram unix sockets). READY=1 comes once the port answers, RELOADING=1 (with
// MONOTONIC_USEC) then READY=1 around a SIGHUP reload, STOPPING=1 on SIGTERM, then a clean exit.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { ownServer, request, waitFor } from './own-server.mjs';

// Prints "bound", then each datagram as one JSON string per line.
const RECEIVER = `
import json, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
print("bound", flush=True)
while True:
    data = s.recv(65536)
    print(json.dumps(data.decode()), flush=True)
`;

let dir;
let receiver;
const messages = [];   // { text, at: the index of the server's log length when it arrived }
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pushwire-notify-'));
  receiver = spawn('python3', ['-c', RECEIVER, join(dir, 'notify.sock')], { stdio: ['ignore', 'pipe', 'inherit'] });
  let buf = '';
  let bound = false;
  receiver.stdout.on('data', (d) => {
    buf += d;
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      if (line === 'bound') bound = true;
      else messages.push(JSON.parse(line));
    }
  });
  await waitFor(() => bound, { what: 'the notify receiver' });
});
after(async () => {
  receiver?.kill('SIGTERM');
  if (dir) await rm(dir, { recursive: true, force: true });
});

test('READY=1 once listening, RELOADING=1/READY=1 around SIGHUP, STOPPING=1 on SIGTERM', async () => {
  const conf = join(dir, 'pushwire.conf');
  await writeFile(conf, JSON.stringify({ api_key: 'k' }));
  const env = { NOTIFY_SOCKET: join(dir, 'notify.sock') };
  const started = ownServer({ args: ['--config', conf], env, dir });
  const ready = await waitFor(() => messages.find((m) => m.split('\n').includes('READY=1')), { what: 'READY=1' });
  const srv = await started;
  const answeredAtReady = await request(`${srv.url}/healthz`);
  assert.equal(answeredAtReady.status, 200, 'the port answers once READY=1 is sent');
  assert.equal(messages.indexOf(ready), 0, 'READY=1 is the first message');

  try {
    const n = messages.length;
    srv.proc.kill('SIGHUP');
    await waitFor(() => messages.length >= n + 2, { what: 'RELOADING=1 and READY=1' });
    const reloading = messages[n].split('\n');
    assert.ok(reloading.includes('RELOADING=1'), `RELOADING=1 first: ${messages[n]}`);
    const usec = reloading.find((l) => l.startsWith('MONOTONIC_USEC='));
    assert.match(usec ?? '', /^MONOTONIC_USEC=\d+$/, 'with the CLOCK_MONOTONIC time');
    const uptimeUsec = Number.parseFloat((await readFile('/proc/uptime', 'utf8')).split(' ')[0]) * 1e6;
    assert.ok(Math.abs(Number(usec.split('=')[1]) - uptimeUsec) < 60e6, 'MONOTONIC_USEC is CLOCK_MONOTONIC (about the uptime)');
    assert.ok(messages[n + 1].split('\n').includes('READY=1'), `then READY=1: ${messages[n + 1]}`);
    assert.match(srv.log(), /"msg":"reloaded"/);
  } finally {
    const n = messages.length;
    const exit = await srv.stop();
    assert.deepEqual(exit, { code: 0, signal: null });
    await waitFor(() => messages.slice(n).some((m) => m.split('\n').includes('STOPPING=1')), { what: 'STOPPING=1 on SIGTERM' });
  }
});
