// The public API: Client, Subscription, PushwireError. Everything that decides (transports, fallback,
// reconnects, resume, duplicates, gaps, request timeouts) is the wasm core's; this file translates
// between application calls, the driver and the core's events.
//
// Until the wasm module has loaded, calls are queued in order (`ops`) and run once it is ready, so
// `new Client(...).subscribe(...)` works at once. close() releases every timer, socket and listener.
import { Code, codeName } from './codes.mjs';
import { Core, importUrl, loadModule } from './core.mjs';
import { Driver } from './driver.mjs';
import { endpoints } from './http.mjs';
import { platform } from './platform.mjs';

const TRANSPORTS = ['websocket', 'sse', 'polling'];
// The JS timing options, in the order of pw_create's arguments (client-wasm/core_exports.cpp; the
// defaults are client_options' in protocol/client_machine.hpp).
const TIMINGS = ['backoffMinMs', 'backoffMaxMs', 'stableAfterMs', 'handshakeTimeoutMs', 'sseFirstEventMs',
  'heartbeatGraceMs', 'pollHoldMs', 'requestTimeoutMs'];
// protocol/channel_name.hpp, checked here too so that subscribe() can throw at once.
const CHANNEL = /^(?:[A-Za-z0-9_-]{1,32}:)?[A-Za-z0-9_.=@-]+$/;
// The states in which a transport is in use or being tried (docs/client.md: null otherwise, also while
// a reconnect waits out its backoff).
const ACTIVE = new Set(['connecting', 'connected']);

export class PushwireError extends Error {
  constructor(code, reason) {
    super(`${reason || codeName(code)} (${code})`);
    this.name = 'PushwireError';
    this.code = code;
    this.reason = reason || codeName(code);
  }
}

class Emitter {
  #listeners = new Map();

  on(name, fn) {
    if (typeof fn !== 'function') throw new TypeError('listener must be a function');
    let set = this.#listeners.get(name);
    if (!set) this.#listeners.set(name, (set = new Set()));
    set.add(fn);
    return () => this.off(name, fn);
  }

  off(name, fn) {
    this.#listeners.get(name)?.delete(fn);
    return this;
  }

  emit(name, ...args) {
    const set = this.#listeners.get(name);
    if (set) for (const fn of [...set]) fn.apply(this, args);
  }
}

function validChannel(channel) {
  return typeof channel === 'string' && CHANNEL.test(channel) && new TextEncoder().encode(channel).length <= 128;
}

function coreOptions(options) {
  const transports = options.transports ?? TRANSPORTS;
  if (!Array.isArray(transports) || transports.length === 0 || transports.some((t) => !TRANSPORTS.includes(t)))
    throw new TypeError(`pushwire: transports must be a non-empty list of ${TRANSPORTS.join(', ')}`);
  // Core's arguments: transports, token, token refresh (0/1), the timings (undefined: the default), seed.
  const o = [transports.join(','), String(options.token ?? ''), 0];
  if (options.getToken !== undefined) {
    if (typeof options.getToken !== 'function') throw new TypeError('pushwire: getToken must be a function');
    o[2] = 1;
  }
  for (const js of TIMINGS) {
    const v = options[js];
    if (v !== undefined && (!Number.isSafeInteger(v) || v < 0))
      throw new TypeError(`pushwire: ${js} must be a whole number of milliseconds`);
    o.push(v);
  }
  // Each client its own jitter, so that a crowd of page loads does not reconnect in step.
  o.push(options.seed ?? 1 + Math.floor(Math.random() * 2 ** 52));
  return o;
}

export class Subscription extends Emitter {
  constructor(client, channel, handlers) {
    super();
    this.client = client;
    this.channel = channel;
    this.state = 'subscribing';   // subscribing | subscribed | unsubscribed
    this.position = handlers.since ? { epoch: handlers.since.epoch, offset: handlers.since.offset } : null;
    const map = { onMessage: 'message', onGap: 'gap', onJoin: 'join', onLeave: 'leave', onSubscribed: 'subscribed',
      onUnsubscribed: 'unsubscribed', onError: 'error' };
    for (const [k, ev] of Object.entries(map)) if (typeof handlers[k] === 'function') this.on(ev, handlers[k]);
  }

  publish(data) { return this.client.publish(this.channel, data); }
  history(options) { return this.client.history(this.channel, options); }
  presence() { return this.client.presence(this.channel); }

  unsubscribe() {
    if (this.state === 'unsubscribed') return;
    this.client._unsubscribe(this);
  }

  _ended(code, reason) {
    this.state = 'unsubscribed';
    this.emit('unsubscribed', { channel: this.channel, code, reason: reason || codeName(code) });
  }
}

export class Client extends Emitter {
  #opts;
  #urls;
  #coreOptions;
  #driver = null;
  #ops = [];                 // queued until the core is loaded; null once it is (or failed)
  #loadError = null;
  #state = 'disconnected';
  #subs = new Map();         // channel -> Subscription
  #requests = new Map();     // request id -> { resolve, reject, kind, channel }
  #waiters = [];             // ready() promises
  #unlisten = null;
  #core = null;              // 'wasm' | 'wasm2js' once loaded
  #coreReason = '';          // why not wasm, when wasm2js

  constructor(url, options = {}) {
    super();
    this.#opts = options;
    this.#urls = endpoints(url);
    this.#coreOptions = coreOptions(options);
    this.url = String(url);
    this.#load();
    if (options.autoConnect !== false) this.connect();
  }

  get state() { return this.#state; }
  // Which build of the core runs: 'wasm', or 'wasm2js' where the page refuses to compile wasm; null
  // until it has loaded.
  get core() { return this.#core; }
  get transport() { return ACTIVE.has(this.#state) ? this.#driver?.transport ?? null : null; }
  // The server's id for the current connection (from its `connected` frame); null before that.
  get clientId() { return (this.#state === 'connected' && this.#driver?.clientId) || null; }

  // Resolves once connected; rejects if the client ends up closed first.
  ready() {
    if (this.#state === 'connected') return Promise.resolve();
    if (this.#state === 'closed') return Promise.reject(new PushwireError(Code.notConnected, 'client is closed'));
    return new Promise((resolve, reject) => this.#waiters.push({ resolve, reject }));
  }

  connect() {
    this.#listen();
    this.#do(() => this.#input((c, now) => c.connect(now)), null, 'connect');
  }

  close() {
    this.#unlisten?.();
    this.#unlisten = null;
    // Not loaded yet: no transport was ever opened, so do not open one just to close it.
    if (this.#ops) this.#ops = this.#ops.filter((op) => op.tag !== 'connect');
    this.#do(() => {
      this.#input((c, now) => c.close(now));
      this.#driver.release();
    });
    // Closed from now on, even when close() runs inside an event handler (the core's own `state`
    // event then follows once the handler returns); nothing more is delivered to subscriptions.
    if (this.#state !== 'closed') {
      this.#state = 'closed';
      this.#settleWaiters('closed', Code.closedByClient, 'close() called');
    }
  }

  // Demo servers only (--demo): asks the server to drop this connection; resolves when it has.
  drop() {
    return this.#request('drop', null, (c, now) => c.drop(now));
  }

  setToken(token) {
    this.#do(() => this.#input((c) => c.setToken(String(token ?? ''))));
  }

  subscribe(channel, handlers = {}) {
    if (!validChannel(channel)) throw new PushwireError(Code.badChannel, `invalid channel name ${JSON.stringify(channel)}`);
    if (this.#subs.has(channel)) throw new PushwireError(Code.alreadySubscribed, `already subscribed to ${channel}`);
    const sub = new Subscription(this, channel, handlers);
    this.#subs.set(channel, sub);
    const since = handlers.since ? { epoch: String(handlers.since.epoch), offset: Number(handlers.since.offset) } : null;
    this.#do(() => {
      if (!this.#input((c, now) => c.subscribe(channel, since, now)) && this.#subs.get(channel) === sub) {
        this.#subs.delete(channel);
        sub._ended(Code.badChannel, 'the core refused the subscription');
      }
    }, () => this.#subs.get(channel) === sub && (this.#subs.delete(channel), sub._ended(Code.internalError, this.#loadError?.message)));
    return sub;
  }

  getSubscription(channel) { return this.#subs.get(channel) ?? null; }

  publish(channel, data) {
    let json;
    try {
      json = JSON.stringify(data === undefined ? null : data);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.#request('publish', channel, (c, now) => c.publish(channel, json, now));
  }

  history(channel, { limit = 0 } = {}) {
    return this.#request('history', channel, (c, now) => c.history(channel, limit, now));
  }

  presence(channel) {
    return this.#request('presence', channel, (c, now) => c.presence(channel, now));
  }

  _unsubscribe(sub) {
    if (this.#subs.get(sub.channel) === sub) this.#subs.delete(sub.channel);
    sub._ended(Code.ok, 'unsubscribe() called');
    this.#do(() => this.#input((c, now) => c.unsubscribe(sub.channel, now)));
  }

  // ---- plumbing ----------------------------------------------------------------------------------

  async #load() {
    const o = this.#opts;
    const fetchImpl = o.fetch ?? (typeof globalThis.fetch === 'function' ? (...a) => globalThis.fetch(...a) : null);
    try {
      // `shared`: one connection per browser, held by a SharedWorker or a leader tab (shared.mjs, loaded
      // only here); its attach() gives a driver that talks to that connection, or null where the
      // browser cannot share (this client then has its own connection).
      if (o.shared && platform.sharedUrl) {
        const { attach } = await importUrl(String(o.sharedUrl ?? platform.sharedUrl()));
        this.#driver = attach(this.url, o, platform, (e) => this.#onCoreEvent(e));
      }
      if (!this.#driver) {
        const [loaded, WebSocketImpl] = await Promise.all([
          // The wasm comes through the page's own fetch; an injected one is for the transports.
          loadModule({ wasmBinary: o.wasmBinary, wasmUrl: o.wasmUrl, wasm2jsUrl: o.wasm2jsUrl,
            fetch: typeof globalThis.fetch === 'function' ? (...a) => globalThis.fetch(...a) : fetchImpl }, platform),
          o.WebSocket ?? globalThis.WebSocket ?? platform.loadWebSocket?.() ?? null,
        ]);
        this.#core = loaded.kind;
        this.#coreReason = loaded.reason;
        const core = new Core(loaded.mod, this.#coreOptions);
        this.#driver = new Driver(core, {
          urls: this.#urls,
          WebSocket: WebSocketImpl,
          EventSource: o.EventSource ?? globalThis.EventSource,
          fetch: fetchImpl,
          getToken: o.getToken,
          setTimeout: o.setTimeout ?? ((f, ms) => setTimeout(f, ms)),
          clearTimeout: o.clearTimeout ?? ((t) => clearTimeout(t)),
        }, (e) => this.#onCoreEvent(e));
      }
    } catch (err) {
      this.#loadError = err;
      const ops = this.#ops;
      this.#ops = null;
      this.#setState(this.#state, 'closed', Code.internalError, 'cannot load the pushwire core: ' + (err?.message ?? err));
      for (const op of ops) op.fail?.();
      return;
    }
    // Subscriptions and requests made before the core loaded go in before connect, so a one-way
    // transport opens once with every channel rather than empty and then again.
    const ops = this.#ops;
    this.#ops = null;
    for (const op of ops) if (op.tag !== 'connect') op();
    for (const op of ops) if (op.tag === 'connect') op();
  }

  #do(op, fail = null, tag = null) {
    if (this.#ops) {
      op.fail = fail;
      op.tag = tag;
      this.#ops.push(op);
    } else if (this.#driver) op();
    else fail?.();
  }

  #input(fn) {
    return this.#driver.input(fn);
  }

  #request(kind, channel, call) {
    return new Promise((resolve, reject) => {
      this.#do(
        () => this.#input((c, now) => {
          const id = call(c, now);
          this.#requests.set(id, { resolve, reject, kind, channel });
        }),
        () => reject(new PushwireError(Code.internalError, 'cannot load the pushwire core: ' + this.#loadError?.message)),
      );
    });
  }

  #listen() {
    if (this.#unlisten) return;
    const win = this.#opts.window ?? (typeof window === 'object' ? window : null);
    const doc = this.#opts.document ?? (typeof document === 'object' ? document : null);
    const check = () => this.#do(() => this.#input((c, now) => c.networkCheck(now)));
    let hidden = doc?.visibilityState === 'hidden';
    const onVisibility = () => {
      if (doc.visibilityState === 'hidden') hidden = true;
      else if (hidden) {
        hidden = false;
        check();
      }
    };
    win?.addEventListener?.('online', check);
    doc?.addEventListener?.('visibilitychange', onVisibility);
    this.#unlisten = () => {
      win?.removeEventListener?.('online', check);
      doc?.removeEventListener?.('visibilitychange', onVisibility);
    };
  }

  #settleWaiters(to, code, reason) {
    if (to === 'connected') for (const w of this.#waiters.splice(0)) w.resolve();
    if (to === 'closed') for (const w of this.#waiters.splice(0)) w.reject(new PushwireError(code, reason));
  }

  #setState(from, to, code, reason) {
    this.#state = to;
    this.#settleWaiters(to, code, reason);
    if (to === 'closed') {
      // Closed by the server's advice too: nothing may keep running.
      this.#unlisten?.();
      this.#unlisten = null;
      this.#driver?.release();
    }
    const e = { from, to, code, reason, transport: this.transport, core: this.#core };
    if (this.#core === 'wasm2js') e.coreReason = this.#coreReason;
    this.emit('state', e);
  }

  #onCoreEvent(e) {
    // After close(): only the core's own closing events (state, request failures) still matter.
    const sub = e.channel !== undefined && this.#state !== 'closed' ? this.#subs.get(e.channel) : undefined;
    switch (e.k) {
      case 'state':
        // A shared connection's events say which core its worker or leader tab runs.
        if (e.core) {
          this.#core = e.core;
          this.#coreReason = e.coreReason;
        }
        this.#setState(e.from, e.to, e.code, e.reason);
        break;
      case 'fallback':
        this.emit('fallback', { from: e.from, to: e.to, code: e.code, reason: e.reason });
        break;
      case 'subscribed':
        if (!sub) break;
        sub.state = 'subscribed';
        // `recovered` only when the subscription resumed from a position (the core leaves it out otherwise).
        sub.emit('subscribed', { channel: e.channel, epoch: e.epoch, offset: e.offset,
          ...('recovered' in e && { recovered: e.recovered }) });
        break;
      case 'message':
        if (!sub) break;
        sub.position = { epoch: e.epoch, offset: e.offset };
        sub.emit('message', e.data, { channel: e.channel, epoch: e.epoch, offset: e.offset });
        break;
      case 'gap':
        if (!sub) break;
        sub.position = { epoch: e.epoch, offset: e.offset };
        sub.emit('gap', { channel: e.channel, epoch: e.epoch, offset: e.offset, reason: e.reason });
        break;
      case 'unsubscribed':
        // Code 0 answers our own unsubscribe(), already handled; anything else is the server's doing.
        if (!sub || e.code === Code.ok) break;
        this.#subs.delete(e.channel);
        sub._ended(e.code, e.reason);
        break;
      case 'join':
      case 'leave':
        sub?.emit(e.k, { channel: e.channel, member: e.data, user: e.data?.user, client: e.data?.client });
        break;
      case 'reply': {
        const r = this.#requests.get(e.id);
        if (!r) break;
        this.#requests.delete(e.id);
        // The reply frame's channel, position and data (a history's publications, a presence's members).
        if (r.kind === 'publish') r.resolve({ channel: e.channel, epoch: e.epoch, offset: e.offset });
        else if (r.kind === 'history')
          r.resolve((e.data ?? []).map((p) => ({ ...p, channel: e.channel, epoch: e.epoch })));
        else if (r.kind === 'presence') r.resolve(e.data ?? []);
        else r.resolve();
        break;
      }
      case 'request_failed': {
        const r = this.#requests.get(e.id);
        if (!r) break;
        this.#requests.delete(e.id);
        r.reject(new PushwireError(e.code, e.reason));
        break;
      }
      case 'error': {
        const err = new PushwireError(e.code, e.reason);
        if (e.channel) err.channel = e.channel;
        sub?.emit('error', err);
        this.emit('error', err);
        break;
      }
    }
  }
}
