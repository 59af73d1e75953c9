// For the Pusher HTTP API and webhook suites (api*.test.mjs, webhooks*.test.mjs): a real server
// with one Pusher app on the demo namespace (so Pushwire SSE readers with a token can be presence
// members of its channels), the real `pusher` server SDK pointed at it, signed JWTs, and a webhook
// receiver (a plain node:http server) that keeps what it gets.
import { createHmac } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSse } from '../cluster/cluster.mjs';
import { startServer } from '../js/helpers.mjs';

export { openSse };
export { waitFor } from '../js/helpers.mjs';
export const Pusher = createRequire(import.meta.url)('pusher');

export const APP = { id: '1', key: 'app-key', secret: 'app-secret', namespace: 'demo' };
export const TOKEN_SECRET = 'pusher-api-test-secret';

// An HS256 connection token for user `sub`, valid for an hour.
export function token(sub) {
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const head = b64({ alg: 'HS256', typ: 'JWT' });
  const body = b64({ sub, exp: Math.floor(Date.now() / 1000) + 3600 });
  return `${head}.${body}.${createHmac('sha256', TOKEN_SECRET).update(`${head}.${body}`).digest('base64url')}`;
}

// Starts the server with `apps` (default: APP) in a config file; `extra` flags appended.
export async function startPusherServer({ apps = [APP], extra = [] } = {}) {
  const dir = await mkdtemp(join(tmpdir(), 'pushwire-papi-'));
  const config = join(dir, 'config.json');
  await writeFile(config, JSON.stringify({ pusher_apps: apps }));
  const srv = await startServer(['--config', config, '--token-secret', TOKEN_SECRET, ...extra]);
  const stop = srv.stop;
  srv.stop = async () => {
    await stop();
    await rm(dir, { recursive: true, force: true });
  };
  srv.pusher = (app = APP) => new Pusher({ appId: app.id, key: app.key, secret: app.secret, host: '127.0.0.1',
    port: String(srv.port), useTLS: false, timeout: 5000 });
  // An SSE reader of the app's channel `name` (a Pushwire client of the same hub channel).
  srv.sse = (name, user) => {
    const q = `channels=${encodeURIComponent(`${APP.namespace}:${name}`)}${user ? `&token=${token(user)}` : ''}`;
    return openSse(`${srv.url}/sse?${q}`);
  };
  return srv;
}

// Status and text of a rejected SDK call (its RequestError carries both).
export async function refusal(promise) {
  try {
    await promise;
  } catch (e) {
    return { status: e.status, body: e.body };
  }
  throw new Error('the request was not refused');
}

// A webhook receiver: every request's headers and raw body; `status()` picks each answer.
export async function startReceiver(status = () => 200) {
  const got = [];
  const server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (d) => {
      body += d;
    });
    req.on('end', () => {
      const code = status(got.length);
      got.push({ headers: req.headers, rawBody: body, url: req.url, status: code });
      res.writeHead(code, { 'Content-Type': 'text/plain' });
      res.end('ok');
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return {
    got,
    url: (path = '/hook') => `http://127.0.0.1:${server.address().port}${path}`,
    // Every event of the accepted requests, in order.
    events: () => got.filter((g) => g.status === 200).flatMap((g) => JSON.parse(g.rawBody).events),
    close: () => new Promise((r) => server.close(r)),
  };
}
