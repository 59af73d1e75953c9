// Entry of the <script> build (dist/pushwire.js, global `Pushwire`). The .wasm sits next to the
// script, found from document.currentScript, which is only set while the script first runs.
import { platform } from './platform.mjs';

const script = typeof document === 'object' ? document.currentScript : null;
const base = script?.src || (typeof location === 'object' ? location.href : undefined);
platform.defaultWasmUrl = () => new URL('pushwire_core.wasm', base).href;
platform.defaultWasm2jsUrl = () => new URL('pushwire_core_wasm2js.mjs', base).href;
platform.sharedUrl = () => new URL('pushwire_shared.mjs', base).href;

export { Client, Subscription, PushwireError } from './client.mjs';
export { Code, codeName } from './codes.mjs';
