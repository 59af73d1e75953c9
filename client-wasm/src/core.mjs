// Loads the wasm protocol core and wraps its C boundary (client-wasm/core_exports.cpp).
//
// Inputs go in as UTF-8 (pointer, length) spans written into one scratch buffer in the wasm heap;
// everything the machine wants done or said comes back from pw_drain() as one JSON text, parsed once.
// One wasm instance can host many machines (one per Client), so the default instance is shared.
import createCore from '../dist/pushwire_core.mjs';

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const instances = new Map();   // wasm URL -> Promise<Module>, for instances loaded by URL

// `source`: { bytes } (an ArrayBuffer/Uint8Array already in hand) or { url, fetch }.
async function instantiate(source, imports) {
  if (source.bytes) return WebAssembly.instantiate(source.bytes, imports);
  const fetchImpl = source.fetch;
  if (typeof WebAssembly.instantiateStreaming === 'function') {
    try {
      return await WebAssembly.instantiateStreaming(fetchImpl(source.url, { credentials: 'same-origin' }), imports);
    } catch (err) {
      // A server sending the wrong MIME type breaks streaming only; the bytes are still good.
      if (!(err instanceof TypeError)) throw err;
    }
  }
  const res = await fetchImpl(source.url, { credentials: 'same-origin' });
  if (!res.ok) throw new Error(`pushwire: cannot load ${source.url}: HTTP ${res.status}`);
  return WebAssembly.instantiate(await res.arrayBuffer(), imports);
}

function createModule(source) {
  return new Promise((resolve, reject) => {
    createCore({
      // Only consulted by the generated glue for its default URL; instantiateWasm below does the work.
      locateFile: () => String(source.url ?? 'pushwire_core.wasm'),
      instantiateWasm(imports, receive) {
        instantiate(source, imports).then((r) => receive(r.instance, r.module), reject);
        return {};
      },
    }).then(resolve, reject);
  });
}

// options: { wasmBinary?, wasmUrl?, fetch }; platform.readWasm(url) reads file: URLs under Node.
export async function loadModule(options, platform) {
  if (options.wasmBinary) return createModule({ bytes: options.wasmBinary });
  const url = String(options.wasmUrl ?? platform.defaultWasmUrl());
  let p = instances.get(url);
  if (!p) {
    p = (async () => {
      if (platform.readWasm && url.startsWith('file:')) return createModule({ bytes: await platform.readWasm(url) });
      return createModule({ url, fetch: options.fetch });
    })();
    instances.set(url, p);
    p.catch(() => instances.delete(url));   // a failed load may be retried by the next client
  }
  return p;
}

// One client machine inside a loaded module.
export class Core {
  constructor(mod, options) {
    this.m = mod;
    this.ptr = 0;
    this.cap = 0;
    const [p, n] = this.put(JSON.stringify(options));
    this.h = mod._pw_create(p, n);
    if (!this.h) throw new TypeError('pushwire: the core refused the options ' + JSON.stringify(options));
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

  // { s: state, t: transport, d: deadline|null, a: [actions], e: [events] }
  drain() {
    const n = this.m._pw_drain(this.h);
    const p = this.m._pw_out(this.h);
    return JSON.parse(decoder.decode(this.m.HEAPU8.subarray(p, p + n)));
  }
}
