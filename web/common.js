// Helpers shared by the demo pages. A classic script (no module), so pages that use the
// `<script>` global and pages that import the ES module can both load it first; it defines
// window.PwDemo and nothing else.
//
// Query parameters every client page understands:
//   ?transport=sse            only this transport (websocket | sse | polling), or a comma list
//   ?opts={"...":...}         extra Client options as JSON (tests use it for short timeouts)
(function () {
  'use strict';
  const params = new URLSearchParams(location.search);

  // Client options from the query string, merged over the page's defaults.
  function clientOptions(defaults) {
    const opts = Object.assign({ transports: ['websocket', 'sse', 'polling'] }, defaults);
    const t = params.get('transport') || params.get('transports');
    if (t) opts.transports = t.split(',').map((s) => s.trim()).filter(Boolean);
    const raw = params.get('opts');
    if (raw) {
      try { Object.assign(opts, JSON.parse(raw)); } catch (e) { console.warn('ignoring bad ?opts=', e.message); }
    }
    return opts;
  }

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') node.className = v;
      else if (k === 'dataset') Object.assign(node.dataset, v);
      else node.setAttribute(k, v === true ? '' : String(v));
    }
    for (const c of children) if (c !== undefined && c !== null) node.append(c instanceof Node ? c : String(c));
    return node;
  }

  function time(d) {
    return (d || new Date()).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
  }

  // Append to a log list, keep at most `max` entries, keep the view pinned to the newest
  // entry unless the reader scrolled up.
  function appendLog(list, item, max) {
    const pinned = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
    list.append(item);
    while (max && list.children.length > max) list.firstElementChild.remove();
    if (pinned) list.scrollTop = list.scrollHeight;
    return item;
  }

  // Wire a client's state and transport into the page's status bar and into `pw`
  // (pw.state, pw.transport, pw.transitions, pw.fallbacks). Elements are found by
  // data-pw="state" / data-pw="transport" inside `root`.
  function bindStatus(client, pw, root) {
    root = root || document;
    const stateEl = root.querySelector('[data-pw="state"]');
    const transportEl = root.querySelector('[data-pw="transport"]');
    pw.transitions = pw.transitions || [];
    pw.fallbacks = pw.fallbacks || [];
    const show = () => {
      pw.state = client.state;
      pw.transport = client.transport || null;
      if (stateEl) { stateEl.textContent = pw.state || '—'; stateEl.dataset.state = pw.state || ''; }
      if (transportEl) transportEl.textContent = pw.transport || '—';
    };
    client.on('state', (ev) => {
      pw.transitions.push({ from: ev.from, to: ev.to, code: ev.code, reason: ev.reason, transport: client.transport || null });
      if (pw.transitions.length > 200) pw.transitions.shift();
      show();
    });
    client.on('fallback', (ev) => { pw.fallbacks.push({ from: ev.from, to: ev.to, reason: ev.reason }); show(); });
    show();
    return show;
  }

  // Draw series of numbers as SVG polylines: the only "plotting" the demos do. `series` is
  // [{ values: [number], className }]; all series share one y range; the newest value sits at the
  // right edge and `slots` values fill the width. Returns { min, max }.
  const SVG = 'http://www.w3.org/2000/svg';
  function polyline(svg, series, opts) {
    // Draw at the element's real width so the labels keep their size on phones.
    const o = Object.assign({ width: Math.max(280, Math.round(svg.getBoundingClientRect().width) || 600), height: 220, left: 46, right: 10, top: 10, bottom: 22, slots: 60, ticks: 4, minRange: 1, zero: false, format: (v) => String(Math.round(v * 100) / 100) }, opts);
    const all = series.flatMap((s) => s.values);
    let min = all.length ? Math.min(...all) : 0, max = all.length ? Math.max(...all) : 1;
    if (o.zero) min = Math.min(0, min);
    if (max - min < o.minRange) { const mid = (max + min) / 2; min = o.zero ? Math.max(0, mid - o.minRange / 2) : mid - o.minRange / 2; max = min + o.minRange; }
    // Round the range out to a 1/2/5 step so the grid lines fall on round numbers.
    const raw = (max - min) / o.ticks, mag = Math.pow(10, Math.floor(Math.log10(raw)));
    const step = [1, 2, 5, 10].map((k) => k * mag).find((k) => k >= raw);
    min = Math.floor(min / step) * step; max = Math.max(min + step * o.ticks, Math.ceil(max / step) * step);
    o.ticks = Math.round((max - min) / step);
    const w = o.width - o.left - o.right, h = o.height - o.top - o.bottom;
    const x = (i, n) => o.left + w - (n - 1 - i) * (w / Math.max(1, o.slots - 1));
    const y = (v) => o.top + h - ((v - min) / (max - min)) * h;
    const node = (tag, attrs, text) => { const n = document.createElementNS(SVG, tag); for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, v); if (text !== undefined) n.textContent = text; return n; };
    svg.setAttribute('viewBox', `0 0 ${o.width} ${o.height}`);
    const parts = [];
    for (let t = 0; t <= o.ticks; t++) {
      const v = min + ((max - min) * t) / o.ticks, yy = y(v).toFixed(1);
      parts.push(node('line', { class: 'grid-line', x1: o.left, x2: o.width - o.right, y1: yy, y2: yy }));
      parts.push(node('text', { x: o.left - 6, y: Number(yy) + 4, 'text-anchor': 'end' }, o.format(v)));
    }
    parts.push(node('line', { class: 'axis', x1: o.left, x2: o.left, y1: o.top, y2: o.top + h }));
    parts.push(node('line', { class: 'axis', x1: o.left, x2: o.width - o.right, y1: o.top + h, y2: o.top + h }));
    if (o.xLabel) parts.push(node('text', { x: o.width - o.right, y: o.height - 6, 'text-anchor': 'end' }, o.xLabel));
    for (const s of series) {
      const vals = s.values.slice(-o.slots);
      const pts = vals.map((v, i) => `${x(i, vals.length).toFixed(1)},${y(v).toFixed(1)}`).join(' ');
      parts.push(node('polyline', { class: 'line ' + (s.className || ''), points: pts }));
    }
    svg.replaceChildren(...parts);
    return { min, max };
  }

  window.PwDemo = { params, clientOptions, el, time, appendLog, bindStatus, polyline };
})();
