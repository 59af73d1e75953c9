// What differs between the entry points (index.mjs for browsers and bundlers, global.mjs for the
// <script> build, node.mjs for Node). Each entry fills this in once when it is evaluated.
export const platform = {
  // The URL of pushwire_core.wasm next to the running bundle.
  defaultWasmUrl: () => 'pushwire_core.wasm',
  // The URL of pushwire_core_wasm2js.mjs (the core as plain JS, for pages that refuse wasm).
  defaultWasm2jsUrl: () => 'pushwire_core_wasm2js.mjs',
  // Browsers only: the URL of pushwire_shared.mjs (`shared: true`, loaded only then); null: no sharing.
  sharedUrl: null,
  // Set in a shared connection's worker to the page's reason for refusing wasm (shared.mjs).
  refused: '',
  // Node only: reads a file: URL (fetch cannot).
  readWasm: null,
  // Node only: resolves to a WebSocket class (the optional `ws` package) or null.
  loadWebSocket: null,
  // Node only: openSseFetch(transport, url, fetch) reads SSE through fetch when there is no
  // EventSource (sse_fetch.mjs). In a browser a missing EventSource means SSE is unavailable, and
  // the core falls back to long-polling.
  openSseFetch: null,
};
