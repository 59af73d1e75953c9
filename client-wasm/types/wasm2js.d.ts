// Types of the `pushwire/pushwire_core_wasm2js.mjs` subpath: the protocol core built as plain
// JavaScript (Emscripten wasm2js), which the client imports by itself, and only where the page's
// Content Security Policy refuses to compile WebAssembly. An app does not import it; it makes the file
// reachable (bundlers that emit `new URL(…, import.meta.url)` assets do; otherwise copy it next to the
// bundle or pass its URL as the client's `wasm2jsUrl`). Its default export is Emscripten's factory.
declare function createCore(moduleArg?: object): Promise<object>;
export default createCore;
