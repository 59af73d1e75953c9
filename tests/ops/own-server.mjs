// The server binary started with exactly the arguments and environment a test gives (no --api-key,
// no --demo added), on an ephemeral port read from --port-file; for the key file, reload, sd_notify
// and package tests, which need to control the keys, the config file and NOTIFY_SOCKET themselves.
import { createHmac } from 'node:crypto';
import http from 'node:http';
import { serverBin, spawnServer, stopProc, waitFor } from '../js/helpers.mjs';

export { serverBin, waitFor };

// Starts `bin` with `args` plus --port 0 --port-file <dir>/…; resolves { proc, port, url, log(),
// stdout(), stderr(), exited(), stop() } once it listens, or { proc, log, exited } once it exited
// (log() is both streams; stdout() and stderr() apart) when `expectExit` is set.
export async function ownServer({ bin = serverBin, args = [], env = {}, dir, expectExit = false } = {}) {
  // The caller's environment without PUSHWIRE_* (the test decides those) and NOTIFY_SOCKET.
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('PUSHWIRE_') && k !== 'NOTIFY_SOCKET'));
  const self = await spawnServer({ bin, args, dir, env: { ...base, ...env }, expectExit });
  if (expectExit) return self;
  return Object.assign(self, {
    url: `http://127.0.0.1:${self.port}`,
    stop: () => stopProc(self.proc, self.exited, 10000),
  });
}

// One request on a fresh connection; resolves { status, headers, body (string) }.
export function request(url, { method = 'GET', headers = {}, body } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers, agent: false }, (res) => {
      // An SSE stream that opened: its status is all a test needs.
      if ((res.headers['content-type'] || '').startsWith('text/event-stream')) {
        resolve({ status: res.statusCode, headers: res.headers, body: '' });
        req.destroy();
        return;
      }
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString() }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

// The status of an API publish with `key` (200 accepted, 401 refused).
export async function publishStatus(url, key) {
  const r = await request(`${url}/api/publish`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${key}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ channel: 'keys', data: { n: 1 } }),
  });
  return r.status;
}

// An HS256 connection token signed with `secret`, valid for an hour.
export function signToken(secret, sub = 'alice') {
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const head = b64({ alg: 'HS256', typ: 'JWT' });
  const body = b64({ sub, exp: Math.floor(Date.now() / 1000) + 3600 });
  const sig = createHmac('sha256', secret).update(`${head}.${body}`).digest('base64url');
  return `${head}.${body}.${sig}`;
}

// The status an SSE open with `token` gets (200: the stream opened; 4xx: refused).
export async function sseStatus(url, token) {
  const r = await request(`${url}/sse?channels=keys&token=${encodeURIComponent(token)}`);
  return r.status;
}
