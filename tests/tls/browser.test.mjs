// Chromium over TLS with the test root CA trusted the way a machine trusts a private CA: in the NSS
// database of the user Chromium runs as ($HOME/.pki/nssdb, made with certutil), not with
// --ignore-certificate-errors. The page loads the client bundle over https and connects over wss,
// SSE and long-polling; a Chromium without the CA refuses the same page.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { chromium } from 'playwright-core';
import { repo } from '../js/helpers.mjs';
import { startServerProc } from '../ops/server-proc.mjs';
import { makePki } from './certs.mjs';

let pki;
let srv;
let webRoot;
let home;
const homes = [];
before(async () => {
  pki = await makePki();
  const cert = await pki.issue('localhost');
  webRoot = await mkdtemp(join(tmpdir(), 'pushwire-tls-web-'));
  await writeFile(join(webRoot, 'index.html'), '<!doctype html><title>tls</title><p>tls page</p>\n');
  srv = await startServerProc({ certFile: cert.certFile, keyFile: cert.keyFile, ca: pki.ca,
    extra: ['--web-root', webRoot, '--client-root', join(repo, 'client-wasm'), '--poll-hold-ms', '1000',
      '--ping-interval-ms', '1000'] });
  home = await makeHome(true);
});
after(async () => {
  await srv?.stop();
  for (const h of homes) await rm(h, { recursive: true, force: true });
  if (webRoot) await rm(webRoot, { recursive: true, force: true });
});

// A home directory for Chromium, with an NSS database that trusts the test root (or an empty one).
async function makeHome(trustTestCa) {
  const dir = await mkdtemp(join(tmpdir(), 'pushwire-chromium-home-'));
  homes.push(dir);
  const db = join(dir, '.pki', 'nssdb');
  await mkdir(db, { recursive: true });
  execFileSync('certutil', ['-d', `sql:${db}`, '-N', '--empty-password']);
  if (trustTestCa) execFileSync('certutil', ['-d', `sql:${db}`, '-A', '-t', 'C,,', '-n', 'pushwire-test-root', '-i', pki.caFile]);
  return dir;
}

async function launch(homeDir) {
  const profile = join(homeDir, 'profile');
  return chromium.launchPersistentContext(profile, {
    executablePath: '/usr/bin/chromium', headless: true,
    env: { ...process.env, HOME: homeDir },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

test('Chromium trusting the test CA loads the page and the client over https and connects on every transport', async () => {
  const context = await launch(home);
  try {
    const page = context.pages()[0] ?? await context.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(e.message));
    const consoleLines = [];   // diagnostics only (the favicon's 404 lands here)
    page.on('console', (m) => consoleLines.push(`${m.type()}: ${m.text()}`));
    const origin = `https://localhost:${srv.port}`;
    const res = await page.goto(`${origin}/`);
    assert.equal(res.status(), 200);
    const sec = await res.securityDetails();
    assert.equal(sec.issuer, 'Pushwire Test Intermediate CA');
    assert.equal(sec.subjectName, 'localhost');
    assert.match(sec.protocol, /TLS 1\.3/);
    await page.evaluate(async () => {
      const { Client } = await import('/pushwire/pushwire.mjs');
      window.got = {};
      window.clients = {};
      for (const t of ['websocket', 'sse', 'polling']) {
        window.got[t] = [];
        const c = new Client(location.origin, { transports: [t], pollHoldMs: 1000 });
        window.clients[t] = c;
        const sub = c.subscribe(`tls-browser-${t}`, { onMessage: (d) => window.got[t].push(d) });
        sub.on('subscribed', () => { window.got[t].subscribed = c.transport; });
      }
    });
    for (const t of ['websocket', 'sse', 'polling']) {
      await page.waitForFunction((tr) => window.got[tr].subscribed === tr, t, { timeout: 10000 })
        .catch(async (e) => {
          throw new Error(`${t}: ${e.message}; page errors: ${errors}; console: ${consoleLines}; state: ${await page.evaluate(() => JSON.stringify(window.got))}`);
        });
      await srv.publish(`tls-browser-${t}`, { over: t });
      await page.waitForFunction((tr) => window.got[tr].length === 1, t, { timeout: 10000 });
      assert.deepEqual(await page.evaluate((tr) => window.got[tr][0], t), { over: t });
    }
    assert.deepEqual(errors, []);
  } finally {
    await context.close();
  }
});

test('the same page in a Chromium without the test CA fails on the certificate', async () => {
  const context = await launch(await makeHome(false));
  try {
    const page = context.pages()[0] ?? await context.newPage();
    await assert.rejects(page.goto(`https://localhost:${srv.port}/`), /ERR_CERT_AUTHORITY_INVALID/);
  } finally {
    await context.close();
  }
});

