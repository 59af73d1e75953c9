// Loads the protocol core and wraps its C boundary (client-wasm/core_exports.cpp).
//
// Inputs go in as UTF-8 (pointer, length) spans written into one scratch buffer in the core's heap;
// everything the machine wants done or said comes back from pw_drain() as one JSON text, parsed once.
// One loaded module can host many machines (one per Client), so the default one is shared.
//
// Loading: the .wasm is instantiated here, not by Emscripten's generated glue (which is most of a
// page's JS otherwise): the wasm needs two imports, `abort` and `emscripten_resize_heap`, and one
// call of its constructors. Their (minified) names come from the glue at build time
// (client-wasm/build.mjs writes dist/pushwire_core_abi.json). Where the page's Content Security Policy
// refuses to compile wasm (no 'wasm-unsafe-eval'), the same core built as plain JavaScript by
// Emscripten's wasm2js (dist/pushwire_core_wasm2js.mjs) is imported instead; nothing else loads it.
import abi from '../dist/pushwire_core_abi.json';

// The drain text's kinds and fields, in core_exports.cpp's order (client_action_kind,
// client_event_kind); a null value leaves its field out.
const ACTIONS = ['open', 'send', 'poll', 'close', 'token'];
const EVENTS = ['state', 'fallback', 'subscribed', 'message', 'gap', 'unsubscribed', 'join', 'leave', 'reply',
  'request_failed', 'error'];
const ACTION_FIELDS = ['gen', 'transport', 'channels', 'cursor', 'token', 'opening', 'client', 'text', 'code'];
const EVENT_FIELDS = ['from', 'to', 'code', 'reason', 'channel', 'epoch', 'offset', 'recovered', 'data', 'id'];

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const instances = new Map();   // core URL -> Promise<Module>, for cores loaded by URL

// The smallest valid module (magic + version): compiling it can fail only when compiling is refused.
const EMPTY_MODULE = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0]);

// Why wasm cannot be used here, or '' when it can. Only a refusal counts (a CSP without
// 'wasm-unsafe-eval' makes Chromium throw a CompileError, others an EvalError); anything else is a
// bug to report, not a reason to switch cores.
export function wasmRefused() {
  if (typeof WebAssembly !== 'object') return 'WebAssembly is not available';
  try {
    new WebAssembly.Module(EMPTY_MODULE);
    return '';
  } catch (err) {
    if (err instanceof WebAssembly.CompileError || err instanceof EvalError) return String(err.message || err);
    throw err;
  }
}

// The module object the rest of this file uses: `_pw_*`, `_malloc`, `_free` and a current HEAPU8
// (a memory growth replaces the buffer, so the view is re-made when it changed).
function wrap(exports) {
  const memory = exports[abi.memory];
  const m = {};
  for (const name in abi.exports) m[name] = exports[abi.exports[name]];
  let heap = new Uint8Array(memory.buffer);
  Object.defineProperty(m, 'HEAPU8', {
    get: () => (heap.buffer === memory.buffer ? heap : (heap = new Uint8Array(memory.buffer))),
  });
  return m;
}

function imports(getMemory) {
  return {
    [abi.module]: {
      [abi.abort]() { throw new WebAssembly.RuntimeError('pushwire: the core aborted'); },
      // emmalloc's sbrk asks for a total heap size; grow by at least a quarter, as Emscripten's glue
      // does, so that a growing stream does not grow the memory page by page.
      [abi.resize](size) {
        const memory = getMemory();
        const have = memory.buffer.byteLength;
        const want = Math.min(2 ** 31, Math.max(size >>> 0, have + (have >>> 2)));
        try {
          memory.grow(Math.ceil((want - have) / 65536));
          return 1;
        } catch {
          return 0;
        }
      },
    },
  };
}

// `source`: { bytes } (an ArrayBuffer/Uint8Array already in hand) or { url, fetch }.
async function instantiate(source) {
  let exports;
  const imp = imports(() => exports[abi.memory]);
  let result;
  if (source.bytes) result = await WebAssembly.instantiate(source.bytes, imp);
  else {
    const fetchImpl = source.fetch;
    if (typeof WebAssembly.instantiateStreaming === 'function') {
      try {
        result = await WebAssembly.instantiateStreaming(fetchImpl(source.url, { credentials: 'same-origin' }), imp);
      } catch (err) {
        // A server sending the wrong MIME type breaks streaming only; the bytes are still good.
        if (!(err instanceof TypeError)) throw err;
      }
    }
    if (!result) {
      const res = await fetchImpl(source.url, { credentials: 'same-origin' });
      if (!res.ok) throw new Error(`pushwire: cannot load ${source.url}: HTTP ${res.status}`);
      result = await WebAssembly.instantiate(await res.arrayBuffer(), imp);
    }
  }
  exports = result.instance.exports;
  exports[abi.ctors]();
  return wrap(exports);
}

// The wasm2js build: Emscripten's own module object has the same members.
async function instantiateJs(url) {
  const { default: createCore } = await importUrl(url);
  return createCore({});
}

// The one import() of a URL known only at run time (the wasm2js core, the shared-connection module):
// app bundlers must leave it alone (build.mjs puts their comments back after minifying).
export const importUrl = (url) => import(/* webpackIgnore: true */ /* @vite-ignore */ url);

// options: { wasmBinary?, wasmUrl?, wasm2jsUrl?, fetch }; platform.readWasm(url) reads file: URLs
// under Node. Resolves to { mod, kind: 'wasm' | 'wasm2js', reason } (reason: why not wasm).
export async function loadModule(options, platform) {
  // platform.refused: a shared connection's worker runs the core the page itself would run (shared.mjs).
  const refused = platform.refused || wasmRefused();
  if (refused) {
    const url = String(options.wasm2jsUrl ?? platform.defaultWasm2jsUrl());
    return { mod: await cached(url, () => instantiateJs(url)), kind: 'wasm2js', reason: refused };
  }
  if (options.wasmBinary) return { mod: await instantiate({ bytes: options.wasmBinary }), kind: 'wasm', reason: '' };
  const url = String(options.wasmUrl ?? platform.defaultWasmUrl());
  const mod = await cached(url, async () => {
    if (platform.readWasm && url.startsWith('file:')) return instantiate({ bytes: await platform.readWasm(url) });
    return instantiate({ url, fetch: options.fetch });
  });
  return { mod, kind: 'wasm', reason: '' };
}

function cached(url, load) {
  let p = instances.get(url);
  if (!p) {
    p = load();
    instances.set(url, p);
    p.catch(() => instances.delete(url));   // a failed load may be retried by the next client
  }
  return p;
}

// One client machine inside a loaded module.
export class Core {
  // args: [transports ("websocket,sse"), token, token refresh (0/1), the eight timings in ms (undefined:
  // the default; NaN in the core), seed] — pw_create's arguments after the two strings' spans.
  constructor(mod, args) {
    this.m = mod;
    this.ptr = 0;
    this.cap = 0;
    const [transports, token, ...numbers] = args;
    this.h = mod._pw_create(...this.put(transports, token), ...numbers);
    if (!this.h) throw new TypeError('pushwire: the core refused the options ' + JSON.stringify(args));
  }

  // Writes the strings (or byte arrays) one after the other into the scratch buffer and returns
  // [ptr0, len0, ptr1, len1, ...].
  put(...items) {
    let need = 0;
    for (const s of items) need += typeof s === 'string' ? s.length * 3 : s.byteLength;
    if (need > this.cap) {
      if (this.ptr) this.m._free(this.ptr);
      this.cap = Math.max(need, 2 * this.cap, 4096);
      this.ptr = this.m._malloc(this.cap);
      if (!this.ptr) throw new RangeError('pushwire: out of wasm memory');
    }
    const heap = this.m.HEAPU8;   // read after _malloc: a memory growth replaces the view
    const out = [];
    let at = this.ptr;
    for (const s of items) {
      let n;
      if (typeof s === 'string') {
        n = encoder.encodeInto(s, heap.subarray(at, this.ptr + this.cap)).written;
      } else {
        heap.set(s instanceof Uint8Array ? s : new Uint8Array(s), at);
        n = s.byteLength;
      }
      out.push(at, n);
      at += n;
    }
    return out;
  }

  destroy() {
    if (this.ptr) this.m._free(this.ptr);
    this.ptr = this.cap = 0;
    if (this.h) this.m._pw_destroy(this.h);
    this.h = 0;
  }

  connect(now) { this.m._pw_connect(this.h, now); }
  close(now) { this.m._pw_close(this.h, now); }
  setToken(token) { this.m._pw_set_token(this.h, ...this.put(token)); }
  subscribe(channel, since, now) {
    const [c, cn, e, en] = this.put(channel, since ? String(since.epoch) : '');
    return this.m._pw_subscribe(this.h, c, cn, e, en, since ? Number(since.offset) : 0, now) === 1;
  }
  unsubscribe(channel, now) { return this.m._pw_unsubscribe(this.h, ...this.put(channel), now) === 1; }
  publish(channel, json, now) { return this.m._pw_publish(this.h, ...this.put(channel, json), now); }
  history(channel, limit, now) { return this.m._pw_history(this.h, ...this.put(channel), limit, now); }
  presence(channel, now) { return this.m._pw_presence(this.h, ...this.put(channel), now); }
  drop(now) { return this.m._pw_drop(this.h, now); }
  transportOpen(gen, now) { this.m._pw_transport_open(this.h, gen, now); }
  transportData(gen, data, now) { this.m._pw_transport_data(this.h, gen, ...this.put(data), now); }
  transportClosed(gen, code, reason, now) {
    this.m._pw_transport_closed(this.h, gen, code, ...this.put(reason || ''), now);
  }
  timeout(now) { this.m._pw_timeout(this.h, now); }
  networkCheck(now) { this.m._pw_network_check(this.h, now); }
  tokenReady(id, token, now) { this.m._pw_token(this.h, id, ...this.put(token), now); }
  tokenFailed(id, reason, now) { this.m._pw_token_failed(this.h, id, ...this.put(reason), now); }

  // { s: state, t: transport, c: client id, d: deadline|null, a: [actions], e: [events] }, from the
  // flat array pw_drain() writes (client-wasm/core_exports.cpp).
  drain() {
    const n = this.m._pw_drain(this.h);
    const p = this.m._pw_out(this.h);
    const v = JSON.parse(decoder.decode(this.m.HEAPU8.subarray(p, p + n)));
    let i = 3;
    const read = (fields, o) => {
      for (const f of fields) {
        const x = v[i++];
        if (x !== null) o[f] = x;
      }
      return o;
    };
    const out = { s: v[0], t: v[1], c: v[2], d: v.pop(), a: [], e: [] };
    while (i < v.length) {
      const k = v[i++];
      if (k < ACTIONS.length) out.a.push(read(ACTION_FIELDS, { k: ACTIONS[k] }));
      else out.e.push(read(EVENT_FIELDS, { k: EVENTS[k - ACTIONS.length] }));
    }
    return out;
  }
}
