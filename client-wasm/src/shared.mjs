// One connection per browser: `new Client(url, { shared: true })` (docs/client.md, "One connection
// per browser"). Built as its own file, dist/pushwire_shared.mjs, which the client imports only for
// such clients (so a page without `shared` downloads none of this) and which is also the script of
// the SharedWorker that holds the connection.
//
// Theory of operation
// - Tabs whose clients have the same *key* — the server URL, a hash of the auth options (`token`,
//   whether there is a `getToken`) and the `shared` string if one is given — share one connection,
//   held by a *hub*: an ordinary Client (its own core and transports) plus the fan-out below. The hub
//   runs in a SharedWorker (this file, as a module worker named after the key); where SharedWorker is
//   missing (or the worker cannot start), in one *leader* tab elected with a Web Lock
//   (`pushwire-leader:<key>`), reached over a BroadcastChannel named after the key.
// - Each tab's Client gets a *remote* (attach() below) in place of its own core and driver: the
//   Client's calls go to the hub as messages and the hub's answers come back as the very events the
//   core emits (`{ k: 'message', … }`), so Client, Subscription, events, `state` and `close()` behave
//   as without sharing.
// - Channels: the hub subscribes each channel once on the server and fans its events out to the tabs
//   that subscribed it; it unsubscribes on the server when the last of them leaves (unsubscribe(),
//   close(), or the tab's death). A tab joining a live channel without `since` gets messages from
//   then on. With `since`, the hub fetches the channel's history and gives that tab what followed its
//   position, then the live messages it held back meanwhile — or a gap where history no longer
//   covers it, as the server would.
// - Exactly once per tab: each remote drops a message at or before its own last position (same
//   epoch), whatever the hub sends. That makes a hand-over safe: a new hub resumes each channel from
//   the position of the first tab that re-subscribes, the others catch up from history as above, and
//   what a tab already saw is not shown again.
// - A tab's death: each tab holds a Web Lock named after itself (`pushwire-tab:<id>`) for its whole
//   life; the hub asks for that lock and is granted it once the tab is gone (closed, crashed,
//   navigated away, discarded), and a `pagehide` message says so sooner. SharedWorker ports have no
//   close event, and a heartbeat would either notice late or keep waking throttled background tabs.
// - A leader's death: the other tabs are queued on the leader lock; the next gets it, starts a hub
//   and announces it on the channel; every tab then re-attaches (hello, connect, its channels with
//   their positions). Requests sent to the old hub and not answered fail with 4017.
//
// Messages: tab -> hub `{ tab, t, … }` (hello, connect, close, bye, sub, unsub, req, token, set,
// check); hub -> tab `{ dst, h, t, … }` (dst: the tab, on the BroadcastChannel; h: the hub's id; t: hub = announce, st = state snapshot,
// ev = a core event, gettoken = call the tab's getToken).
import { Client } from './client.mjs';
import { Code } from './codes.mjs';
import { wasmRefused } from './core.mjs';
import { platform } from './platform.mjs';

const newId = () => Math.random().toString(36).slice(2) + Date.now().toString(36);
const locks = () => globalThis.navigator?.locks ?? null;
const FOREVER = () => new Promise(() => {});

// A 53-bit name for the key: it names a worker and locks that any script of the origin can list,
// so the token is not spelled out in it. Two FNV-1a passes over the UTF-16 code units from
// different starting values (a 32-bit pass alone would let unrelated keys collide too often);
// not a secret-keeping hash, only one that does not show the token.
function hash(s) {
  let a = 0x811c9dc5;
  let b = 0x050c5d1f;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ (c + i), 0x01000193);
  }
  return ((b >>> 11) * 2 ** 32 + (a >>> 0)).toString(36);
}

// ---- the hub: one Client, many tabs ---------------------------------------------------------------

class Hub {
  // post(tab, msg) reaches one tab (its port, or the BroadcastChannel addressed to it); postMany(tabs,
  // msg), where given, reaches several at once (a leader's BroadcastChannel: every tab receives every
  // post, so one post per event instead of one per tab keeps the work linear in the tabs).
  constructor(post, postMany = null) {
    this.id = newId();
    this.post = (tab, msg) => post(tab, { ...msg, h: this.id });
    this.postMany = postMany && ((tabs, msg) => postMany(tabs, { ...msg, h: this.id }));
    this.tabs = new Map();     // tab id -> { id, port, active, getToken, chans: Set }
    this.chans = new Map();    // channel -> { sub, tabs: Map(tab id -> entry), pos, ready }
    this.tokens = new Map();   // getToken request id -> { resolve, reject, tab }
    this.seq = 0;
    this.client = null;
    this.last = { to: 'disconnected', code: 0, reason: '' };
    this.online = new EventTarget();   // the hub client's `window`: a tab's network check fires `online`
  }

  ev(tab, e) { this.post(tab, { t: 'ev', e }); }

  snapshot() {
    const c = this.client;
    return { t: 'st', ...this.last, transport: c.transport, clientId: c.clientId, core: c.core, coreReason: this.last.coreReason };
  }

  start(o) {
    // The core the page would run (its CSP may refuse wasm where the worker's does not).
    platform.refused = o.refused;
    const opts = { ...o, autoConnect: false, window: this.online, document: null };
    delete opts.url;
    delete opts.refused;
    if (o.getToken) opts.getToken = (ctx) => this.askToken(ctx);
    else delete opts.getToken;
    const c = (this.client = new Client(o.url, opts));
    c.on('state', (e) => {
      this.last = { to: e.to, code: e.code, reason: e.reason, coreReason: e.coreReason };
      for (const tab of this.tabs.values()) this.post(tab, this.snapshot());
    });
    c.on('fallback', (e) => { for (const tab of this.tabs.values()) this.ev(tab, { k: 'fallback', ...e }); });
    c.on('error', (err) => {
      const e = { k: 'error', code: err.code, reason: err.reason, channel: err.channel };
      for (const tab of this.tabs.values()) if (!err.channel || tab.chans.has(err.channel)) this.ev(tab, e);
    });
  }

  receive(m, port) {
    if (m.t === 'hello') return this.hello(m, port);
    const tab = this.tabs.get(m.tab);
    if (!tab) return;   // a tab that has not said hello to this hub re-attaches when it learns of it
    const c = this.client;
    switch (m.t) {
      case 'connect':
        tab.active = true;
        if (c.state === 'disconnected' || c.state === 'closed') c.connect();
        this.post(tab, this.snapshot());
        break;
      case 'close': this.close(tab); break;
      case 'bye': this.gone(tab); break;
      case 'sub': this.sub(tab, m.channel, m.since); break;
      case 'unsub': this.unsub(tab, m.channel); break;
      case 'set': c.setToken(m.token); break;
      case 'check': this.online.dispatchEvent(new Event('online')); break;
      case 'token': {
        const w = this.tokens.get(m.id);
        this.tokens.delete(m.id);
        if (m.error !== undefined) w?.reject(new Error(m.error));
        else w?.resolve(m.token);
        break;
      }
      case 'req': this.request(tab, m); break;
    }
  }

  hello(m, port) {
    // Again (after a hand-over, the bfcache): a clean slate, the channels follow; a token asked of
    // the old record is asked again of the new one.
    const old = this.tabs.get(m.tab);
    const tab = { id: m.tab, port, active: false, getToken: m.o.getToken, chans: new Set() };
    this.tabs.set(tab.id, tab);
    if (old) this.close(old, true);
    if (!this.client) this.start(m.o);
    // Granted once the tab is gone: it holds this lock for as long as it lives.
    locks()?.request('pushwire-tab:' + tab.id, () => this.gone(tab));
    this.post(tab, this.snapshot());
  }

  // The tab closed its client (or went away): its channels are left, and the connection closes when
  // no tab wants it any more.
  close(tab, quiet = false) {
    for (const channel of [...tab.chans]) this.unsub(tab, channel);
    tab.active = false;
    // A token asked of this tab is asked of another that can give one.
    for (const [id, w] of this.tokens) {
      if (w.tab !== tab) continue;
      w.tab = [...this.tabs.values()].find((t) => t !== tab && t.getToken);
      if (w.tab) this.post(w.tab, { t: 'gettoken', id, code: w.code });
      else {
        this.tokens.delete(id);
        w.reject(new Error('no tab left that can give a token'));
      }
    }
    if (!quiet && ![...this.tabs.values()].some((t) => t.active) && this.client.state !== 'closed') this.client.close();
  }

  gone(tab) {
    if (this.tabs.get(tab.id) !== tab) return;
    this.tabs.delete(tab.id);
    this.close(tab);
  }

  askToken({ code }) {
    return new Promise((resolve, reject) => {
      const all = [...this.tabs.values()].filter((t) => t.getToken);
      const tab = all.find((t) => t.active) ?? all[0];
      if (!tab) return reject(new Error('no tab left that can give a token'));
      const id = ++this.seq;
      this.tokens.set(id, { resolve, reject, tab, code });
      this.post(tab, { t: 'gettoken', id, code });
    });
  }

  request(tab, m) {
    const c = this.client;
    let p;
    if (m.kind === 'publish') p = c.publish(m.channel, JSON.parse(m.json));
    else if (m.kind === 'history') p = c.history(m.channel, { limit: m.limit }).then((data) => ({ channel: m.channel, epoch: data[0]?.epoch, data }));
    else if (m.kind === 'presence') p = c.presence(m.channel).then((data) => ({ data }));
    else p = c.drop().then(() => ({}));
    p.then(
      (reply) => this.ev(tab, { k: 'reply', ...reply, id: m.id }),
      (err) => this.ev(tab, { k: 'request_failed', id: m.id, code: err?.code ?? Code.internalError, reason: err?.reason ?? String(err) }),
    );
  }

  sub(tab, channel, since) {
    this.unsub(tab, channel);
    const entry = { since, wait: true, buf: null, origin: false };
    let ch = this.chans.get(channel);
    if (!ch) {
      ch = { sub: null, tabs: new Map(), pos: null, ready: false };
      this.chans.set(channel, ch);
      entry.origin = true;   // the server's answer to this subscribe is this tab's answer
      const fan = (e) => this.fan(ch, e);
      ch.sub = this.client.subscribe(channel, {
        since: since ?? undefined,
        onSubscribed: (e) => this.subscribed(channel, ch, e),
        onMessage: (data, ctx) => fan({ k: 'message', ...ctx, data }),
        onGap: (g) => fan({ k: 'gap', ...g }),
        onJoin: (p) => fan({ k: 'join', channel, data: p.member }),
        onLeave: (p) => fan({ k: 'leave', channel, data: p.member }),
        onUnsubscribed: (u) => {
          // Code 0 answers the hub's own unsubscribe; anything else is the server ending it for all.
          if (!u.code || this.chans.get(channel) !== ch) return;
          this.chans.delete(channel);
          for (const id of ch.tabs.keys()) {
            const t = this.tabs.get(id);
            t.chans.delete(channel);
            this.ev(t, { k: 'unsubscribed', ...u });
          }
        },
      });
    }
    ch.tabs.set(tab.id, entry);
    tab.chans.add(channel);
    if (ch.ready) this.settle(channel, ch, tab, entry, null);
  }

  unsub(tab, channel) {
    const ch = this.chans.get(channel);
    tab.chans.delete(channel);
    if (!ch || !ch.tabs.delete(tab.id) || ch.tabs.size) return;
    this.chans.delete(channel);
    ch.sub.unsubscribe();
  }

  fan(ch, e) {
    if (e.k === 'message' || e.k === 'gap') ch.pos = { epoch: e.epoch, offset: e.offset };
    const now = [];
    for (const [id, entry] of ch.tabs) {
      if (entry.wait) continue;
      if (entry.buf) entry.buf.push(e);
      else now.push(this.tabs.get(id));
    }
    if (this.postMany && now.length > 1) this.postMany(now, { t: 'ev', e });
    else for (const tab of now) this.ev(tab, e);
  }

  subscribed(channel, ch, e) {
    ch.pos = { epoch: e.epoch, offset: e.offset };
    ch.ready = true;
    for (const [id, entry] of ch.tabs) {
      const tab = this.tabs.get(id);
      if (entry.wait) this.settle(channel, ch, tab, entry, e);
      else this.ev(tab, { k: 'subscribed', ...e });   // re-subscribed after the hub's reconnect
    }
  }

  // A tab's subscription once the hub's is live.
  settle(channel, ch, tab, entry, e) {
    entry.wait = false;
    if (entry.origin && e) return this.ev(tab, { k: 'subscribed', ...e });
    const since = entry.since;
    if (!since) return this.ev(tab, { k: 'subscribed', channel, ...ch.pos });
    // Catch this tab up from its own position: history, then what arrived meanwhile (held in buf).
    entry.buf = [];
    const finish = (items) => {
      if (ch.tabs.get(tab.id) !== entry) return;
      const epoch = items[0]?.epoch ?? ch.pos.epoch;
      const first = items[0]?.offset ?? ch.pos.offset + 1;
      const covered = epoch === since.epoch && first <= since.offset + 1;
      const last = Math.max(ch.pos.offset, items.at(-1)?.offset ?? 0);
      this.ev(tab, { k: 'subscribed', channel, epoch, offset: last, recovered: covered });
      if (!covered) this.ev(tab, { k: 'gap', channel, epoch, offset: first - 1, reason: 'history no longer covers the position' });
      for (const p of items) this.ev(tab, { k: 'message', channel, epoch: p.epoch, offset: p.offset, data: p.data });
      for (const ev of entry.buf) this.ev(tab, ev);
      entry.buf = null;
    };
    // Every publication the channel keeps (the server's default read is its newest 100, which would
    // call a tab further behind than that a gap); the tab's remote drops what it already has.
    this.client.history(channel, { limit: 2 ** 31 }).then(finish, () => finish([]));
  }
}

// In a SharedWorker (this file started as `new SharedWorker(url, { type: 'module' })`): one hub for
// every tab that connects.
if (typeof SharedWorkerGlobalScope === 'function' && globalThis instanceof SharedWorkerGlobalScope) {
  let hub = null;
  globalThis.onconnect = (ev) => {
    const port = ev.ports[0];
    port.onmessage = (m) => (hub ??= new Hub((tab, msg) => tab.port.postMessage(msg))).receive(m.data, port);
  };
}

// Leader-tab mode: the hub in this page, reached over the BroadcastChannel.
function lead(key) {
  const bc = new BroadcastChannel(key);
  const hub = new Hub((tab, msg) => bc.postMessage({ ...msg, dst: tab.id }),
    (tabs, msg) => bc.postMessage({ ...msg, dst: tabs.map((t) => t.id) }));
  bc.onmessage = (m) => m.data.dst === undefined && hub.receive(m.data, null);
  bc.postMessage({ dst: '*', h: hub.id, t: 'hub' });
}

// ---- the tab side ----------------------------------------------------------------------------------

// The driver (and core) of a shared Client: see client.mjs #load (`page` is the importing bundle's
// platform, which knows where its .wasm is). Returns null where this browser cannot share a
// connection (no SharedWorker, and no Web Locks + BroadcastChannel).
export function attach(url, o, page, onEvent) {
  const worker = typeof SharedWorker === 'function';
  if (typeof location !== 'object' || (!worker && !(locks() && typeof BroadcastChannel === 'function'))) return null;
  return new Remote(url, o, o.wasmUrl ?? page.defaultWasmUrl(), o.wasm2jsUrl ?? page.defaultWasm2jsUrl(), onEvent, worker);
}

class Remote {
  constructor(url, o, wasmUrl, wasm2jsUrl, onEvent, worker) {
    const abs = (u) => new URL(String(u), location.href).href;
    // What the hub's client is made with, if this tab is the first: every plain option, absolute URLs
    // (the worker's base URL is not the page's), and the page's verdict on compiling wasm.
    const hubOpts = {};
    for (const [k, v] of Object.entries(o)) if (v === null || Array.isArray(v) || (typeof v !== 'object' && typeof v !== 'function')) hubOpts[k] = v;
    delete hubOpts.shared;
    delete hubOpts.sharedUrl;
    delete hubOpts.autoConnect;
    Object.assign(hubOpts, { url: abs(url), wasmUrl: abs(wasmUrl), wasm2jsUrl: abs(wasm2jsUrl),
      getToken: typeof o.getToken === 'function', refused: wasmRefused() });
    if (o.wasmBinary) hubOpts.wasmBinary = o.wasmBinary;
    this.hubOpts = hubOpts;
    this.key = 'pushwire:' + hubOpts.url + ':' + hash(JSON.stringify([String(o.token ?? ''), hubOpts.getToken, o.shared === true ? '' : String(o.shared)]));
    this.o = o;
    this.onEvent = onEvent;
    this.id = newId();
    this.hub = null;           // the id of the hub this tab is attached to
    this.ready = false;        // holds its tab lock: may say hello (the hub may then ask for that lock)
    this.active = false;       // connect() called and not closed
    this.state = 'disconnected';
    this.transport = null;
    this.clientId = '';
    this.subs = new Map();     // channel -> { pos: { epoch, offset } | null }: this tab's last position
    this.pending = new Map();  // request id -> { m, sent }
    this.seq = 0;
    this.q = [];
    this.link = worker ? this.workerLink() : this.leaderLink();
    const start = () => {
      this.ready = true;
      this.attach();
    };
    // Held for this tab's whole life: the hub learns of its death when it is granted this lock.
    if (locks()) locks().request('pushwire-tab:' + this.id, () => (start(), FOREVER()));
    else queueMicrotask(start);
    addEventListener('pagehide', () => this.send({ t: 'bye' }));
    addEventListener('pageshow', (e) => e.persisted && this.attach());   // back from the bfcache
  }

  workerLink() {
    const w = new SharedWorker(import.meta.url, { type: 'module', name: this.key });
    w.port.onmessage = (m) => this.receive(m.data);
    // The worker cannot start (blocked, not served): a leader tab holds the connection instead.
    w.onerror = () => {
      if (this.link.port !== w.port) return;
      this.link = this.leaderLink();
      this.attach();
    };
    return { port: w.port, post: (m) => w.port.postMessage(m) };
  }

  leaderLink() {
    const bc = new BroadcastChannel(this.key);
    bc.onmessage = (m) => {
      const { dst } = m.data;
      if (dst === this.id || dst === '*' || (Array.isArray(dst) && dst.includes(this.id))) this.receive(m.data);
    };
    locks().request('pushwire-leader:' + this.key, () => (lead(this.key), FOREVER()));
    return { port: null, post: (m) => bc.postMessage(m) };
  }

  send(m) {
    if (this.ready) this.link.post({ ...m, tab: this.id });
  }

  // Tells the hub everything it needs of this tab: again after a hand-over or the bfcache.
  attach() {
    if (!this.ready) return;
    this.send({ t: 'hello', o: this.hubOpts });
    if (this.active) this.send({ t: 'connect' });
    for (const [channel, s] of this.subs) this.send({ t: 'sub', channel, since: s.pos });
    for (const r of this.pending.values()) if (!r.sent) this.send(r.m), (r.sent = true);
  }

  emit(e) {
    try {
      this.onEvent(e);
    } catch (err) {
      queueMicrotask(() => {
        throw err;
      });
    }
  }

  // Client calls fn(core, now) and then expects the events it caused.
  input(fn) {
    const r = fn(this, 0);
    for (const e of this.q.splice(0)) this.emit(e);
    return r;
  }

  release() {}

  // The `state` event for a change to `to` (null when there is none).
  setState(to, code, reason, core, coreReason) {
    if (to === this.state) return null;
    const e = { k: 'state', from: this.state, to, code, reason };
    if (core) Object.assign(e, { core, coreReason });
    this.state = to;
    return e;
  }

  receive(m) {
    if (m.t === 'hub') {
      // A new leader: whatever the old one had in hand is lost; attach to this one.
      if (m.h === this.hub || !this.ready) return;
      const had = this.hub;
      this.hub = m.h;
      if (!had) return this.attach();
      for (const [id, r] of this.pending) {
        if (!r.sent) continue;
        this.pending.delete(id);
        this.emit({ k: 'request_failed', id, code: Code.notConnected, reason: 'the tab holding the shared connection went away' });
      }
      if (this.active && (this.state === 'connected' || this.state === 'connecting')) {
        this.emit(this.setState('reconnecting', Code.transportClosed, 'the tab holding the shared connection went away'));
      }
      return this.attach();
    }
    if (this.hub === null) this.hub = m.h;
    else if (m.h !== this.hub) return;   // a hub this tab has left
    if (m.t === 'st') {
      this.transport = m.transport;
      this.clientId = m.clientId;
      if (!this.active) return;
      // The hub's client starting up again after a hand-over is still this tab's `reconnecting`.
      if (m.to === 'disconnected' || (this.state === 'reconnecting' && m.to === 'connecting')) return;
      const e = this.setState(m.to, m.code, m.reason, m.core, m.coreReason);
      if (e) this.emit(e);
    } else if (m.t === 'ev') {
      const e = m.e;
      const s = this.subs.get(e.channel);
      if (e.k === 'message' || e.k === 'gap') {
        if (!s) return;
        if (e.k === 'message' && s.pos && s.pos.epoch === e.epoch && e.offset <= s.pos.offset) return;   // seen
        s.pos = { epoch: e.epoch, offset: e.offset };
      } else if (e.k === 'subscribed') {
        if (!s) return;
        s.pos ??= { epoch: e.epoch, offset: e.offset };
      } else if (e.k === 'unsubscribed') {
        this.subs.delete(e.channel);
      } else if (e.k === 'reply' || e.k === 'request_failed') {
        if (!this.pending.delete(e.id)) return;
      }
      this.emit(e);
    } else if (m.t === 'gettoken') {
      new Promise((resolve) => resolve(this.o.getToken({ code: m.code }))).then(
        (token) => this.send(typeof token === 'string' ? { t: 'token', id: m.id, token }
          : { t: 'token', id: m.id, error: `getToken must give a string, not ${typeof token}` }),
        (err) => this.send({ t: 'token', id: m.id, error: String(err?.message ?? err) }),
      );
    }
  }

  // ---- the core's methods, as client.mjs calls them ----
  connect() {
    if (this.active) return;
    this.active = true;
    // The hub dropped this tab's channels when it closed: give them again.
    this.attach();
  }

  close() {
    if (!this.active) return;
    this.active = false;
    this.send({ t: 'close' });
    for (const id of this.pending.keys())
      this.q.push({ k: 'request_failed', id, code: Code.notConnected, reason: 'client closed' });
    this.pending.clear();
    const e = this.setState('closed', Code.closedByClient, 'close() called');
    if (e) this.q.push(e);
  }

  setToken(token) {
    this.hubOpts.token = token;
    this.send({ t: 'set', token });
  }

  subscribe(channel, since) {
    this.subs.set(channel, { pos: since });
    this.send({ t: 'sub', channel, since });
    return true;
  }

  unsubscribe(channel) {
    this.subs.delete(channel);
    this.send({ t: 'unsub', channel });
    return true;
  }

  request(m) {
    const id = ++this.seq;
    m = { t: 'req', id, ...m };
    this.pending.set(id, { m, sent: this.ready });
    this.send(m);
    return id;
  }

  publish(channel, json) { return this.request({ kind: 'publish', channel, json }); }
  history(channel, limit) { return this.request({ kind: 'history', channel, limit }); }
  presence(channel) { return this.request({ kind: 'presence', channel }); }
  drop() { return this.request({ kind: 'drop' }); }
  networkCheck() { this.send({ t: 'check' }); }
}
