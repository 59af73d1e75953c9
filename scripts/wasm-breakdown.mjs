// Where the bytes of the client's wasm go: code bytes per function and per source area, read from a
// build that keeps function names (CMake target pushwire_core_names, linked with --profiling-funcs;
// otherwise the same as pushwire_core.wasm). README.md ("Client size") reports its figures.
//   ninja -C build-wasm pushwire_core_names && node scripts/wasm-breakdown.mjs [build-wasm/pushwire_core_names.wasm] [N]
// prints the sections, the areas, and the N largest functions (default 25).
import { readFileSync } from 'node:fs';

const file = process.argv[2] ?? new URL('../build-wasm/pushwire_core_names.wasm', import.meta.url);
const top = Number(process.argv[3] ?? 25);
const b = readFileSync(file);
let p = 8;
const leb = () => {
  let r = 0, s = 0, x;
  do { x = b[p++]; r += (x & 0x7f) * 2 ** s; s += 7; } while (x & 0x80);
  return r;
};
const skipName = () => { const n = leb(); p += n; };
let imported = 0;
const bodies = [], names = new Map(), sections = [];
const SECTION = ['custom', 'type', 'import', 'function', 'table', 'memory', 'global', 'export', 'start', 'element', 'code', 'data', 'datacount'];
while (p < b.length) {
  const id = b[p++], len = leb(), start = p;
  sections.push(`${SECTION[id] ?? id} ${len}`);
  if (id === 2) {
    for (let i = 0, n = leb(); i < n; i++) {
      skipName(); skipName();
      const kind = b[p++];
      if (kind === 0) { leb(); imported++; }
      else if (kind === 1) { p++; if (leb() & 1) { leb(); leb(); } else leb(); }
      else if (kind === 2) { if (leb() & 1) { leb(); leb(); } else leb(); }
      else p += 2;
    }
  } else if (id === 10) {
    for (let i = 0, n = leb(); i < n; i++) { const l = leb(); bodies.push([i + imported, l]); p += l; }
  } else if (id === 0) {
    const nl = leb(), name = b.subarray(p, p + nl).toString();
    p += nl;
    while (name === 'name' && p < start + len) {
      const sub = b[p++], sl = leb(), ss = p;
      if (sub === 1) for (let i = 0, n = leb(); i < n; i++) { const idx = leb(), l = leb(); names.set(idx, b.subarray(p, p + l).toString()); p += l; }
      p = ss + sl;
    }
  }
  p = start + len;
}
if (!names.size) console.error('wasm-breakdown: no function names (link with --profiling-funcs: target pushwire_core_names)');
// First match wins. LTO inlines much of the machine into the pw_* exports, so the first area holds
// part of the machine too.
const AREAS = [
  [/^pw_|drain_writer|parse_options|write_(action|event)|to_u64|span\(|as_instance|parse_transport|set_ms/, 'C boundary + drain writer (core_exports.cpp)'],
  [/decode_server_frame|\(anonymous namespace\)::(run|string_field|uint_field)\(/, 'client frame decoder (client_frame_decoder.cpp)'],
  [/client_machine|client_event|client_action|client_options|make_event|prng|backoff|is_token_code|reconnect_advised/, 'client machine (client_machine.cpp, backoff.cpp)'],
  [/scanner|scan_object|json_member|decode_string|parse_uint|append_uint|append_json_string|utf8|hex_value|scan_error/, 'JSON scanner/writer (json_scan.cpp)'],
  [/frame|fields::|writer::|encode_command|command::|decode_error|encode\(/, 'frame codec (frame_codec.cpp)'],
  [/valid_channel|namespace_char|position/, 'channel names, positions'],
  [/^(malloc|free|claim_more_memory|attempt_allocate|sbrk|emmalloc|operator new|operator delete|memcpy|__memcpy|memset|memmove|strlen|__)/, 'emmalloc + libc'],
  [/std::/, 'libc++ (string, map, vector, optional)'],
];
const rows = bodies.map(([i, l]) => [names.get(i) ?? `#${i}`, l]).sort((x, y) => y[1] - x[1]);
const areas = new Map();
for (const [n, l] of rows) {
  const area = AREAS.find(([re]) => re.test(n))?.[1] ?? 'other';
  areas.set(area, (areas.get(area) ?? 0) + l);
}
console.log('sections (bytes):', sections.join(', '));
console.log('\ncode bytes by area');
for (const [a, l] of [...areas].sort((x, y) => y[1] - x[1])) console.log(String(l).padStart(7), a);
console.log(String(rows.reduce((s, r) => s + r[1], 0)).padStart(7), 'code total');
console.log(`\nlargest ${top} functions`);
for (const [n, l] of rows.slice(0, top)) console.log(String(l).padStart(7), n.length > 110 ? n.slice(0, 110) + '…' : n);
