// The driver: carries out what the core decides, and feeds back what happened. It owns the
// transports (keyed by the core's generation number), the one timer and the command POSTs, and it
// decides nothing (STYLE.md: "an I/O-free core, thin shells").
//
// Every input goes the same way: call the core, then pump(): drain the core's actions and events
// (one JSON text), carry out the actions, arm the timer for the next deadline, hand the events to the
// client. pump() never nests: an input that arrives while it runs (an event handler calling publish(),
// a transport reporting synchronously) makes it drain once more, so actions run in the core's order.
import { postCommands, withQuery } from './http.mjs';
import { PollingTransport } from './polling.mjs';
import { SseTransport } from './sse.mjs';
import { WebSocketTransport } from './websocket.mjs';

const clock = globalThis.performance ?? Date;
// The longest delay setTimeout honours (a signed 32-bit count of milliseconds).
const MAX_TIMER_MS = 2 ** 31 - 1;

export class Driver {
  // env: { urls, WebSocket, EventSource, fetch, setTimeout, clearTimeout, getToken }; onEvent(e) gets each
  // core event.
  constructor(core, env, onEvent) {
    this.core = core;
    this.env = env;
    this.onEvent = onEvent;
    this.transports = new Map();   // generation -> transport object
    this.posts = new Set();        // AbortControllers of command POSTs in flight
    this.timer = null;
    this.timerAt = null;
    this.pumping = false;
    this.again = false;
    this.transport = null;         // the core's current transport name
    this.clientId = '';            // the server's id for this connection
  }

  // Milliseconds on a monotonic clock; +1 keeps the first instant above zero.
  now() {
    return Math.floor(clock.now()) + 1;
  }

  // Runs `fn(core, now)` and carries out the consequences. Returns what fn returned.
  input(fn) {
    const r = fn(this.core, this.now());
    this.pump();
    return r;
  }

  pump() {
    if (this.pumping) {
      this.again = true;
      return;
    }
    this.pumping = true;
    try {
      do {
        this.again = false;
        const out = this.core.drain();
        this.transport = out.t;
        this.clientId = out.c;
        for (const a of out.a) this.carryOut(a);
        this.arm(out.d);
        for (const e of out.e) this.deliver(e);
      } while (this.again);
    } finally {
      this.pumping = false;
    }
  }

  deliver(e) {
    try {
      this.onEvent(e);
    } catch (err) {
      // An application handler threw: report it like an uncaught error, but keep the machine going.
      queueMicrotask(() => {
        throw err;
      });
    }
  }

  carryOut(a) {
    const { urls } = this.env;
    switch (a.k) {
      case 'open': {
        const sink = this.sink(a.gen);
        let t;
        if (a.transport === 'websocket') t = new WebSocketTransport(urls.ws, this.env.WebSocket, sink);
        else if (a.transport === 'sse')
          t = new SseTransport(withQuery(urls.sse, { channels: a.channels, since: a.cursor, token: a.token }), this.env, sink);
        else t = new PollingTransport(this.env.fetch, sink);
        sink.transport = t;
        this.transports.set(a.gen, t);
        break;
      }
      case 'send': {
        const t = this.transports.get(a.gen);
        if (t instanceof WebSocketTransport) t.send(a.text);
        else this.post(a.gen, a.text);
        break;
      }
      case 'poll':
        this.transports.get(a.gen)?.poll(
          withQuery(urls.poll, {
            channels: a.channels, cursor: a.cursor, token: a.token, open: a.opening ? 1 : '', client: a.client,
          }));
        break;
      case 'close': {
        const t = this.transports.get(a.gen);
        this.transports.delete(a.gen);
        t?.close();
        break;
      }
      case 'token':
        this.fetchToken(a.gen, a.code);
        break;
    }
  }

  // The application's getToken({ code }), answered to the core under the request's id (the core
  // ignores an answer it no longer waits for, and decides what a failure means).
  fetchToken(id, code) {
    // The executor turns a synchronous throw of getToken into a rejection.
    new Promise((resolve) => resolve(this.env.getToken({ code }))).then(
      (token) => this.input((c, now) => (typeof token === 'string'
        ? c.tokenReady(id, token, now)
        : c.tokenFailed(id, `getToken must give a string, not ${typeof token}`, now))),
      (err) => this.input((c, now) => c.tokenFailed(id, String(err?.message ?? err), now)),
    );
  }

  // The callbacks of the transport of one generation. A callback from a transport that is no longer
  // the one registered for its generation is dropped here (and the core ignores old generations too).
  sink(gen) {
    const live = () => this.transports.get(gen) === sink.transport;
    const sink = {
      transport: null,
      open: () => live() && this.input((c, now) => c.transportOpen(gen, now)),
      data: (d) => live() && this.input((c, now) => c.transportData(gen, d, now)),
      closed: (code, reason) => {
        if (!live()) return;
        this.transports.delete(gen);
        this.input((c, now) => c.transportClosed(gen, code, reason, now));
      },
    };
    return sink;
  }

  // Commands of the one-way transports. The answer is fed back under the generation that sent it,
  // even after that transport was replaced: its replies are still awaited (see client_machine.cpp).
  post(gen, text) {
    const ctl = new AbortController();
    this.posts.add(ctl);
    postCommands(this.env.fetch, this.env.urls.cmd, text, ctl.signal)
      .then((r) => {
        if (ctl.signal.aborted) return;
        // A refused POST still answers with protocol frames when it can; anything else is left to
        // the request timeout.
        if (r.body.trimStart().startsWith('{"type"')) this.input((c, now) => c.transportData(gen, r.body, now));
      })
      .catch(() => {
        /* network failure: the core's request timeout reports it */
      })
      .finally(() => this.posts.delete(ctl));
  }

  arm(deadline) {
    if (deadline === this.timerAt) return;
    if (this.timer !== null) this.env.clearTimeout(this.timer);
    this.timer = null;
    this.timerAt = deadline;
    if (deadline === null || deadline === undefined) return;
    // Timers may fire a millisecond early; the core then finds nothing due and asks again. A delay
    // over setTimeout's maximum (2^31 - 1 ms) would fire at once (a warning and a busy loop): wait
    // the maximum instead, and the core asks again then.
    const delay = Math.min(MAX_TIMER_MS, Math.max(0, deadline - this.now() + 1));
    this.timer = this.env.setTimeout(() => {
      this.timer = null;
      this.timerAt = null;
      this.input((c, now) => c.timeout(now));
    }, delay);
  }

  // After the core closed: drop every timer, socket and request still around.
  release() {
    this.arm(null);
    for (const t of this.transports.values()) t.close();
    this.transports.clear();
    for (const ctl of this.posts) ctl.abort();
    this.posts.clear();
  }
}
