// The real server binary as an operator runs it, on an ephemeral port, with its process at hand
// (signals, exit): plain HTTP, or TLS with --tls-cert/--tls-key where HTTPS calls trust only the
// test root CA (no verification is switched off anywhere).
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import tls from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { API_KEY, spawnServer, stopProc, waitFor } from '../js/helpers.mjs';

export { API_KEY, waitFor };

// One request on a fresh connection (http: or https:); resolves { status, headers, body (Buffer) }.
export function httpsRequest(url, { ca, method = 'GET', headers = {}, body } = {}) {
  return new Promise((resolve, reject) => {
    const mod = url.startsWith('https:') ? https : http;
    const req = mod.request(url, { method, headers, ca, agent: false }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

// A fresh TLS connection: the certificate the server presents now, and the protocol and ALPN agreed.
export function handshake(port, ca, { ALPNProtocols = ['h2', 'http/1.1'], ...opts } = {}) {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, ca, ALPNProtocols, ...opts }, () => {
      const r = { fingerprint: s.getPeerCertificate().fingerprint256, protocol: s.getProtocol(),
        alpn: s.alpnProtocol, authorized: s.authorized };
      s.end();
      resolve(r);
    });
    s.on('error', reject);
  });
}

// `certFile`/`keyFile`/`ca` given: TLS. Returns { url, port, proc, api, publish, log, exited, stop }.
export async function startServerProc({ certFile, keyFile, ca, extra = [] } = {}) {
  const dir = await mkdtemp(join(tmpdir(), 'pushwire-tls-srv-'));
  const { proc, port, log, exited } = await spawnServer({
    dir,
    args: ['--demo', '--api-key', API_KEY, '--log-level', 'info',
      ...(certFile ? ['--tls-cert', certFile, '--tls-key', keyFile] : []), ...extra],
  });
  const url = `${certFile ? 'https' : 'http'}://127.0.0.1:${port}`;
  async function api(method, path, body) {
    const r = await httpsRequest(url + path, {
      ca, method, headers: { Authorization: `Bearer ${API_KEY}`, 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (r.status >= 300) throw new Error(`${method} ${path}: HTTP ${r.status} ${r.body}`);
    return JSON.parse(r.body.toString());
  }
  return {
    url, port, proc, api,
    log,
    exited,
    publish: (channel, data) => api('POST', '/api/publish', { channel, data }),
    async stop() {
      await stopProc(proc, exited, 10000);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
