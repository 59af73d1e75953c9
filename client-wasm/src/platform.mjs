// What differs between the entry points (index.mjs for browsers and bundlers, global.mjs for the
// <script> build, node.mjs for Node). Each entry fills this in once when it is evaluated.
export const platform = {
  // The URL of pushwire_core.wasm next to the running bundle.
  defaultWasmUrl: () => 'pushwire_core.wasm',
  // Node only: reads a file: URL (fetch cannot).
  readWasm: null,
  // Node only: resolves to a WebSocket class (the optional `ws` package) or null.
  loadWebSocket: null,
  // Node only: read SSE through fetch when there is no EventSource. In a browser a missing
  // EventSource means SSE is unavailable, and the core falls back to long-polling.
  sseOverFetch: false,
};
