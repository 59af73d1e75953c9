// Types of the `pushwire/pushwire_core.wasm` subpath. A bundler that emits a `.wasm` import as an
// asset (esbuild with `--loader:.wasm=file`) gives its URL, to pass as the client's `wasmUrl`:
//   import wasmUrl from 'pushwire/pushwire_core.wasm';
//   const client = new Client(url, { wasmUrl });
declare const wasmUrl: string;
export default wasmUrl;
