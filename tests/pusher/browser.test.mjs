// pusher-js (its browser build) and Laravel Echo on pusher-js, both unchanged from npm, in Chromium
// against the real server's Pusher endpoint, and the pusher-js demo page (web/pusher.html).
// The server runs in demo mode, whose Pusher app (key pushwire-demo) keeps its channels in the
// Pushwire namespace `demo`: Pusher channel `x` is hub channel `demo:x`, which is where the API
// publishes. The application's auth endpoint is answered from Node through page.route, signed by
// the `pusher` server SDK; the user a page speaks for travels in an X-User header. Its user_info
// holds the id too, as a Laravel app's does (Echo's here/joining/leaving hand out user_info only).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { build } from 'esbuild';
import PusherServer from 'pusher';
import { startServer, launchBrowser, openPage, watch, shots, q, unique, FAST_CLIENT, ROOT } from '../browser/helpers.mjs';
import { encrypt, MASTER_KEY_BASE64 } from './helpers.mjs';

const DEMO = { id: 'demo', key: 'pushwire-demo', secret: 'demo-secret' };
const PUSHER_WEB = join(ROOT, 'node_modules', 'pusher-js', 'dist', 'web');

let server, browser, sdk, forger, echoBundle;
before(async () => {
  server = await startServer();
  browser = await launchBrowser();
  sdk = new PusherServer({ appId: DEMO.id, key: DEMO.key, secret: DEMO.secret, host: '127.0.0.1', port: String(server.port),
    useTLS: false, encryptionMasterKeyBase64: MASTER_KEY_BASE64 });
  forger = new PusherServer({ appId: DEMO.id, key: DEMO.key, secret: 'not-the-secret', host: '127.0.0.1', port: String(server.port), useTLS: false });
  // Echo as an application bundles it: imported from the package, exposed to the page's script.
  const out = await build({
    stdin: { contents: "import Echo from 'laravel-echo'; window.Echo = Echo;", resolveDir: ROOT, loader: 'js' },
    bundle: true, format: 'iife', platform: 'browser', write: false, logLevel: 'warning',
  });
  echoBundle = out.outputFiles[0].text;
});
after(async () => {
  await browser?.close();
  await server?.stop();
});

const publish = (channel, event, data) => server.publish(`demo:${channel}`, { event, data });

// A page of the server's origin (its index, which loads no client) with pusher-js added (its
// build with encryption when asked, and Echo when asked), whose auth endpoint /broadcasting/auth
// signs for `user`. window.sub(name) subscribes and logs every event of the channel on window.log. The page must come
// from the server itself: one fulfilled by page.route has no address, and Chromium's local network
// access checks then block its WebSocket to 127.0.0.1.
async function pusherPage(user, { echo = false, encryption = false, forge = false } = {}) {
  const page = await browser.context.newPage();
  const watcher = watch(page, server.url);
  await page.route(`${server.url}/broadcasting/auth`, async (route) => {
    const req = route.request();
    const form = new URLSearchParams(req.postData() ?? '');
    const asUser = req.headers()['x-user'];
    const channel = form.get('channel_name');
    const presence = channel.startsWith('presence-') ? { user_id: asUser, user_info: { id: asUser, name: `name of ${asUser}` } } : undefined;
    const signer = forge ? forger : sdk;
    await route.fulfill({ contentType: 'application/json', body: JSON.stringify(signer.authorizeChannel(form.get('socket_id'), channel, presence)) });
  });
  await page.goto(`${server.url}/`);
  await page.addScriptTag({ path: join(PUSHER_WEB, encryption ? 'pusher-with-encryption.min.js' : 'pusher.min.js') });
  if (echo) await page.addScriptTag({ content: echoBundle });
  const options = { key: DEMO.key, port: server.port, user };
  await page.evaluate(({ key, port, user: u, echo: withEcho }) => {
    window.log = [];
    window.sub = (name) => new Promise((resolve, reject) => {
      const ch = window.pusher.subscribe(name);
      // A presence channel's subscription_succeeded carries its Members: logged as the member ids.
      ch.bind_global((event, data) => window.log.push({ channel: name, event, data: data && data.each ? Object.keys(data.members) : data }));
      ch.bind('pusher:subscription_succeeded', () => resolve());
      ch.bind('pusher:subscription_error', (e) => reject(new Error(`${name}: ${JSON.stringify(e)}`)));
    });
    const common = { wsHost: '127.0.0.1', wsPort: port, forceTLS: false, enabledTransports: ['ws'], cluster: 'mt1' };
    if (withEcho) {
      window.echo = new window.Echo({ broadcaster: 'pusher', key, ...common, Pusher: window.Pusher,
        authEndpoint: '/broadcasting/auth', auth: { headers: { 'X-User': u } } });
      window.pusher = window.echo.connector.pusher;
    } else {
      window.pusher = new window.Pusher(key, { ...common,
        channelAuthorization: { endpoint: '/broadcasting/auth', transport: 'ajax', headers: { 'X-User': u } } });
    }
  }, { ...options, echo });
  try {
    await page.waitForFunction(() => window.pusher.connection.state === 'connected', null, { timeout: 10000, polling: 20 });
  } catch (err) {
    const state = await page.evaluate(() => window.pusher.connection.state).catch(() => '?');
    throw new Error(`pusher-js in the page did not connect (state ${state}): ${err.message.split('\n')[0]}\n${watcher.console.join('\n')}`);
  }
  return { page, watcher };
}

const logged = (page, pred, arg) => page.waitForFunction(pred, arg, { timeout: 10000, polling: 20 });
const entries = (page) => page.evaluate(() => window.log);

test('pusher-js in Chromium: socket id, public, private and presence channels', async () => {
  const news = unique('news');
  const desk = unique('private-desk');
  const room = unique('presence-room');
  const a = await pusherPage('alice');
  assert.match(await a.page.evaluate(() => window.pusher.connection.socket_id), /^\d+\.\d+$/);
  await a.page.evaluate((names) => Promise.all(names.map((n) => window.sub(n))), [news, desk, room]);

  await publish(news, 'headline', { title: 'hello' });
  await publish(desk, 'memo', 'for alice only');
  await logged(a.page, ([n, d]) => window.log.some((e) => e.channel === n && e.event === 'headline') &&
    window.log.some((e) => e.channel === d && e.event === 'memo'), [news, desk]);
  const got = await entries(a.page);
  assert.deepEqual(got.find((e) => e.event === 'headline').data, { title: 'hello' });
  assert.equal(got.find((e) => e.event === 'memo').data, 'for alice only');

  // Presence: Bob joins (Alice sees member_added with his user_info), Bob's page closes (removed).
  const b = await pusherPage('bob');
  const bobView = await b.page.evaluate((r) => new Promise((resolve, reject) => {
    const ch = window.pusher.subscribe(r);
    ch.bind('pusher:subscription_succeeded', (members) => {
      const all = {};
      members.each((m) => { all[m.id] = m.info; });
      resolve({ me: members.me.id, count: members.count, all });
    });
    ch.bind('pusher:subscription_error', (e) => reject(new Error(JSON.stringify(e))));
  }), room);
  assert.deepEqual(bobView, { me: 'bob', count: 2, all: { alice: { id: 'alice', name: 'name of alice' }, bob: { id: 'bob', name: 'name of bob' } } });
  await logged(a.page, (r) => window.log.some((e) => e.channel === r && e.event === 'pusher:member_added'), room);
  const added = (await entries(a.page)).find((e) => e.event === 'pusher:member_added');
  assert.deepEqual(added.data, { id: 'bob', info: { id: 'bob', name: 'name of bob' } });
  await b.page.close();
  await logged(a.page, (r) => window.log.some((e) => e.channel === r && e.event === 'pusher:member_removed'), room);
  assert.equal((await entries(a.page)).find((e) => e.event === 'pusher:member_removed').data.id, 'bob');
  assert.equal(await a.page.evaluate((r) => window.pusher.channel(r).members.count, room), 1);
  a.watcher.check(assert);
  await a.page.close();
});

test('pusher-js in Chromium: encrypted and cache channels, client events, reconnection after a server drop', async () => {
  const safe = unique('private-encrypted-safe');
  const weather = unique('cache-weather');
  const chat = unique('private-chat');
  await publish(weather, 'forecast', { sky: 'sun' });
  const a = await pusherPage('alice', { encryption: true });
  const b = await pusherPage('bob');
  await a.page.evaluate((names) => Promise.all(names.map((n) => window.sub(n))), [safe, weather, chat]);
  await b.page.evaluate((n) => window.sub(n), chat);

  // The cache channel replays its last event on subscribe.
  await logged(a.page, (w) => window.log.some((e) => e.channel === w && e.event === 'forecast'), weather);
  // pusher-js decrypts with the shared secret from the auth answer; the server saw only ciphertext.
  await server.publish(`demo:${safe}`, { event: 'pin', data: encrypt(sdk, safe, { pin: '0000' }) });
  await logged(a.page, (n) => window.log.some((e) => e.channel === n && e.event === 'pin'), safe);
  // A client event from Bob's page reaches Alice's, not Bob's own.
  await b.page.evaluate((n) => window.pusher.channel(n).trigger('client-wave', { from: 'bob' }), chat);
  await logged(a.page, (n) => window.log.some((e) => e.channel === n && e.event === 'client-wave'), chat);
  const got = await entries(a.page);
  assert.deepEqual(got.find((e) => e.event === 'forecast').data, { sky: 'sun' });
  assert.deepEqual(got.find((e) => e.event === 'pin').data, { pin: '0000' });
  assert.deepEqual(got.find((e) => e.event === 'client-wave').data, { from: 'bob' });
  assert.ok(!got.some((e) => e.event === 'pusher:cache_miss'));

  // The server drops every connection: pusher-js reconnects, resubscribes and gets later events.
  const before = await a.page.evaluate(() => window.pusher.connection.socket_id);
  await server.disconnect({});
  await a.page.waitForFunction((old) => window.pusher.connection.state === 'connected' && window.pusher.connection.socket_id !== old,
    before, { timeout: 10000, polling: 20 });
  await a.page.waitForFunction((n) => window.pusher.channel(n).subscribed, chat, { timeout: 10000, polling: 20 });
  await publish(chat, 'after-drop', { ok: true });
  await logged(a.page, (n) => window.log.some((e) => e.channel === n && e.event === 'after-drop'), chat);
  // Bob's page is back too; had his client event been echoed, it would have come before this.
  await logged(b.page, (n) => window.log.some((e) => e.channel === n && e.event === 'after-drop'), chat);
  assert.ok(!(await entries(b.page)).some((e) => e.event === 'client-wave'), 'a client event is not echoed to its sender');
  a.watcher.check(assert);
  b.watcher.check(assert);
  await a.page.close();
  await b.page.close();
});

test('Laravel Echo on pusher-js: channel().listen, private(), join() here/joining/leaving, whisper', async () => {
  const orders = unique('orders');
  const desk = unique('desk');
  const room = unique('room');
  const a = await pusherPage('alice', { echo: true });
  await a.page.evaluate(({ orders: o, desk: d, room: r }) => {
    const log = (kind, data) => window.log.push({ kind, data });
    window.echo.channel(o).listen('.OrderShipped', (e) => log('order', e));
    window.echo.private(d).listen('.Memo', (e) => log('memo', e)).listenForWhisper('typing', (e) => log('whisper', e));
    window.echo.join(r)
      .here((users) => log('here', users.map((u) => u.id).sort()))
      .joining((u) => log('joining', u))
      .leaving((u) => log('leaving', u));
  }, { orders, desk, room });
  await logged(a.page, () => window.log.some((e) => e.kind === 'here'));
  await a.page.waitForFunction(([o, d]) => window.pusher.channel(o)?.subscribed && window.pusher.channel(`private-${d}`)?.subscribed,
    [orders, desk], { timeout: 10000, polling: 20 });
  assert.deepEqual((await entries(a.page)).find((e) => e.kind === 'here').data, ['alice']);

  await publish(orders, 'OrderShipped', { order: { id: 42 } });
  await publish(`private-${desk}`, 'Memo', { text: 'quarterly' });
  await logged(a.page, () => ['order', 'memo'].every((k) => window.log.some((e) => e.kind === k)));
  const got = await entries(a.page);
  assert.deepEqual(got.find((e) => e.kind === 'order').data, { order: { id: 42 } });
  assert.deepEqual(got.find((e) => e.kind === 'memo').data, { text: 'quarterly' });

  // Bob: joins the room (Alice's joining), whispers on the private channel, then leaves the room.
  const b = await pusherPage('bob', { echo: true });
  const bobHere = await b.page.evaluate(({ desk: d, room: r }) => new Promise((resolve) => {
    window.echo.private(d).subscribed(() => {
      window.echo.private(d).whisper('typing', { name: 'bob' });
      window.echo.join(r).here((users) => resolve(users.map((u) => u.id).sort()));
    });
  }), { desk, room });
  assert.deepEqual(bobHere, ['alice', 'bob']);
  await logged(a.page, () => ['joining', 'whisper'].every((k) => window.log.some((e) => e.kind === k)));
  const now = await entries(a.page);
  assert.deepEqual(now.find((e) => e.kind === 'joining').data, { id: 'bob', name: 'name of bob' });
  assert.deepEqual(now.find((e) => e.kind === 'whisper').data, { name: 'bob' });
  await b.page.evaluate((r) => window.echo.leave(r), room);
  await logged(a.page, () => window.log.some((e) => e.kind === 'leaving'));
  assert.deepEqual((await entries(a.page)).find((e) => e.kind === 'leaving').data, { id: 'bob', name: 'name of bob' });
  // A whisper is never echoed to its sender.
  assert.ok(!(await b.page.evaluate(() => window.log.some((e) => e.kind === 'whisper'))));
  a.watcher.check(assert);
  b.watcher.check(assert);
  await a.page.close();
  await b.page.close();
});

test('Laravel Echo: a signature the server refuses reaches .error(), and the channel gets nothing', async () => {
  const desk = unique('desk');
  const m = await pusherPage('mallory', { echo: true, forge: true });
  await m.page.evaluate((d) => {
    window.echo.private(d).error((e) => window.log.push({ kind: 'error', data: e })).listen('.Memo', (e) => window.log.push({ kind: 'memo', data: e }));
  }, desk);
  await logged(m.page, () => window.log.some((e) => e.kind === 'error'));
  const err = (await entries(m.page)).find((e) => e.kind === 'error').data;
  assert.equal(err.type, 'AuthError', JSON.stringify(err));
  // A subscriber that is allowed in receives a publication; the refused page does not.
  const ok = await pusherPage('alice', { echo: true });
  await ok.page.evaluate((d) => window.echo.private(d).listen('.Memo', (e) => window.log.push({ kind: 'memo', data: e })), desk);
  await ok.page.waitForFunction((d) => window.pusher.channel(`private-${d}`)?.subscribed, desk, { timeout: 10000, polling: 20 });
  await publish(`private-${desk}`, 'Memo', { text: 'secret' });
  await logged(ok.page, () => window.log.some((e) => e.kind === 'memo'));
  assert.ok(!(await entries(m.page)).some((e) => e.kind === 'memo'));
  await m.page.close();
  await ok.page.close();
});

test('demo page web/pusher.html: pusher-js events from the API and the chat room, and its own sends', async () => {
  const name = unique('chat');
  const demo = await openPage(browser.context, server.url, `/pusher.html?channel=${name}&name=ada`,
    { ready: () => window.pw && window.pw.subscribed && window.pw.state === 'connected' });
  assert.match(await demo.page.evaluate(() => window.pw.socketId), /^\d+\.\d+$/);
  // The Pushwire chat room on the same hub channel.
  const chat = await openPage(browser.context, server.url, `/chat.html?room=demo:${name}&name=grace&opts=${q(FAST_CLIENT)}`,
    { ready: () => window.pw && window.pw.subscribed && window.pw.state === 'connected' });

  await server.publish(`demo:${name}`, { name: 'backend', text: 'from the API' });
  await chat.page.fill('#text', 'from the chat room');
  await chat.page.click('#send');
  await demo.page.fill('#text', 'from pusher-js');
  await demo.page.click('#send');
  await demo.page.waitForFunction(() => window.pw.events.length >= 3, null, { timeout: 10000, polling: 20 });
  const events = await demo.page.evaluate(() => window.pw.events);
  assert.deepEqual(events.map((e) => e.event), ['message', 'message', 'message']);
  assert.deepEqual(events.map((e) => e.data.text).sort(), ['from pusher-js', 'from the API', 'from the chat room']);
  assert.equal(events.find((e) => e.data.text === 'from pusher-js').data.name, 'ada');
  await chat.page.waitForFunction(() => window.pw.messages.some((m) => m.text === 'from pusher-js'), null, { timeout: 10000, polling: 20 });
  assert.equal(await demo.page.locator('#log li').count(), 3);
  assert.deepEqual(await demo.page.evaluate(() => window.pw.errors), []);
  await shots(demo.page, 'pusher');
  demo.watcher.check(assert);
  chat.watcher.check(assert);
  await demo.page.close();
  await chat.page.close();
});
