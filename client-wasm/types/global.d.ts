// Types of `pushwire/pushwire.js`, the <script> build: it defines the global `Pushwire` (the same
// exports as the `pushwire` module) and exports nothing. A page that loads it with a <script> tag
// gets the global from `/// <reference types="pushwire/pushwire.js" />` or an `import 'pushwire/pushwire.js'`.
declare global {
  var Pushwire: typeof import('./index.js');
}
export {};
