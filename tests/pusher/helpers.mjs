// Pusher-compatibility test pieces (issue 14 item 6) on top of tests/js/helpers.mjs: a real server
// with one Pusher app, the real pusher-js (its Node build, unchanged from npm) pointed at it, the
// `pusher` server SDK for signatures and the HTTP API, and a small auth endpoint that signs as an
// application backend would. Every wait is an event or a polled condition with a deadline
// (DECISIONS.md §19).
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import Pusher from 'pusher-js';
import PusherServer from 'pusher';
import { startServer, waitFor, API_KEY } from '../js/helpers.mjs';

export { waitFor, API_KEY };

// The flag's first app gets the default namespace: Pusher channel `x` is hub channel `x`.
export const APP = { id: 'app1', key: 'app-key', secret: 'app-secret' };
// 32 bytes for private-encrypted- channels; the server never sees it.
export const MASTER_KEY_BASE64 = Buffer.alloc(32, 7).toString('base64');

export function startPusherServer(extra = []) {
  return startServer(['--pusher-app', `${APP.id}:${APP.key}:${APP.secret}`, ...extra]);
}

// The server SDK as an application backend configures it for a self-hosted endpoint.
export function serverSdk(server, { secret = APP.secret } = {}) {
  return new PusherServer({
    appId: APP.id, key: APP.key, secret, host: '127.0.0.1', port: String(server.port), useTLS: false,
    encryptionMasterKeyBase64: MASTER_KEY_BASE64,
  });
}

// An application's auth endpoints, as pusher-js calls them (a form POST with socket_id and
// channel_name, plus the `params` the page adds). The user comes from the `user_id` param; `forge=1`
// signs with a wrong secret, to check that the server refuses it.
export async function startAuthServer(server) {
  const good = serverSdk(server);
  const forged = serverSdk(server, { secret: 'not-the-secret' });
  const seen = [];
  const http = createServer((req, res) => {
    let body = '';
    req.on('data', (d) => { body += d; });
    req.on('end', () => {
      const f = Object.fromEntries(new URLSearchParams(body));
      seen.push({ path: req.url, ...f });
      const sdk = f.forge === '1' ? forged : good;
      const user = { id: f.user_id ?? 'anonymous', user_info: { name: f.user_name ?? `name of ${f.user_id}` } };
      let answer;
      if (req.url === '/auth') {
        const presence = f.channel_name?.startsWith('presence-') ? { user_id: user.id, user_info: user.user_info } : undefined;
        answer = sdk.authorizeChannel(f.socket_id, f.channel_name, presence);
      } else if (req.url === '/user-auth') {
        answer = sdk.authenticateUser(f.socket_id, { id: user.id, name: user.user_info.name });
      } else {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify(answer));
    });
  });
  await new Promise((r) => http.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${http.address().port}`;
  return { url, seen, close: () => new Promise((r) => http.close(r)) };
}

// pusher-js clients made here are tracked so that each test file can close them all.
const live = new Set();

// A pusher-js client on the test server. `user` names the user its auth requests speak for.
export function newClient(server, { auth, user, forge = false, key = APP.key, ...options } = {}) {
  const params = { ...(user ? { user_id: user } : {}), ...(forge ? { forge: '1' } : {}) };
  const pusher = new Pusher(key, {
    wsHost: '127.0.0.1', wsPort: server.port, forceTLS: false, enabledTransports: ['ws'], cluster: 'mt1',
    ...(auth ? {
      channelAuthorization: { endpoint: `${auth.url}/auth`, transport: 'ajax', params },
      userAuthentication: { endpoint: `${auth.url}/user-auth`, transport: 'ajax', params },
    } : {}),
    ...options,
  });
  live.add(pusher);
  return pusher;
}

export function closeAll() {
  for (const p of live) p.disconnect();
  live.clear();
}

export async function connected(pusher, timeoutMs = 10000) {
  await waitFor(() => pusher.connection.state === 'connected', { timeoutMs, what: 'pusher-js connected' });
  return pusher.connection.socket_id;
}

// The first `name` event on a pusher-js emitter (client, channel, connection or user) for which
// pred(data) holds.
export function nextEvent(emitter, name, pred = () => true, timeoutMs = 10000) {
  return new Promise((resolve, reject) => {
    const onEvent = (data, meta) => {
      if (!pred(data, meta)) return;
      clearTimeout(timer);
      emitter.unbind(name, onEvent);
      resolve(data);
    };
    // Unreferenced: a wait left behind by a failed test does not hold the file open.
    const timer = setTimeout(() => {
      emitter.unbind(name, onEvent);
      reject(new Error(`timed out after ${timeoutMs} ms waiting for '${name}'`));
    }, timeoutMs).unref();
    emitter.bind(name, onEvent);
  });
}

// The first of several events: `watches` is a list of [emitter, name, pred?]; resolves with
// { index, data } of the one that came first and unbinds them all.
export function firstEvent(watches, timeoutMs = 10000) {
  return new Promise((resolve, reject) => {
    const bound = [];
    const done = () => { clearTimeout(timer); for (const [em, name, fn] of bound) em.unbind(name, fn); };
    const timer = setTimeout(() => {
      done();
      reject(new Error(`timed out after ${timeoutMs} ms waiting for one of ${watches.map((w) => w[1]).join(', ')}`));
    }, timeoutMs).unref();
    watches.forEach(([emitter, name, pred = () => true], index) => {
      const fn = (data, meta) => {
        if (!pred(data, meta)) return;
        done();
        resolve({ index, data });
      };
      bound.push([emitter, name, fn]);
      emitter.bind(name, fn);
    });
  });
}

// The Pusher error code of a pusher-js connection `error` event: a pusher:error after the handshake
// comes as {type:'PusherError', data:{code}}, a refusal during it (pusher:error or a close code)
// as {type:'WebSocketError', error:{type:'PusherError', data:{code}}}.
export const errorCode = (e) => e?.data?.code ?? e?.error?.data?.code;
export const isPusherError = (e) => e?.type === 'PusherError' || e?.error?.type === 'PusherError';

// Every event on a channel (or the client), in arrival order, pusher-js's own events included.
export function record(emitter) {
  const events = [];
  emitter.bind_global((event, data) => events.push({ event, data }));
  return events;
}

// Subscribes and resolves with the channel once pusher:subscription_succeeded came; rejects on
// pusher:subscription_error.
export function subscribed(pusher, name, timeoutMs = 10000) {
  const ch = pusher.subscribe(name);
  if (ch.subscribed) return Promise.resolve(ch);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out subscribing to ${name}`)), timeoutMs);
    ch.bind('pusher:subscription_succeeded', () => { clearTimeout(timer); resolve(ch); });
    ch.bind('pusher:subscription_error', (e) => { clearTimeout(timer); reject(new Error(`${name}: subscription_error ${JSON.stringify(e)}`)); });
  });
}

// tweetnacl is what pusher-js and the server SDK both use for private-encrypted- channels.
const nacl = createRequire(import.meta.url)('tweetnacl');

// The event data pusher-js decrypts: a nacl secretbox under the channel's shared secret
// (`sdk.channelSharedSecret`, SHA-256 of the channel name and the master key), as the server SDKs
// encrypt. The server only passes it through.
export function encrypt(sdk, channel, value) {
  const nonce = nacl.randomBytes(24);
  const box = nacl.secretbox(Buffer.from(JSON.stringify(value)), nonce, sdk.channelSharedSecret(channel));
  return { nonce: Buffer.from(nonce).toString('base64'), ciphertext: Buffer.from(box).toString('base64') };
}

export const unique = (prefix) => `${prefix}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
