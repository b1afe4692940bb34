// The campus page: renders the console's snapshot (GET /api/v1/snapshot), live over
// server-sent events (/api/v1/events), polling every 5 s while they are unavailable.
// No build step, no dependencies: tables and SVG charts drawn here.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
let decimals = 0;

// Integers shown exactly: `n` base units with `d` decimals (energy: Wh as kWh, d = 3).
function fixed(n, d) {
  if (d === 0) return String(n);
  const sign = n < 0 ? "-" : "";
  n = Math.abs(n);
  const unit = 10 ** d;
  return sign + Math.floor(n / unit) + "." + String(n % unit).padStart(d, "0");
}
const kwh = (wh) => fixed(wh, 3);
const credits = (q) => fixed(q, decimals);
// Times are shown on the campus's clock (its IANA zone, from the snapshot), with the zone's
// name: a manager in Bangkok reads Bangkok time whatever the browser's own zone.
let zone = "UTC";
const formats = new Map();
function parts(t, options) {
  const key = zone + JSON.stringify(options);
  let f = formats.get(key);
  if (!f) {
    f = new Intl.DateTimeFormat("en-CA", { timeZone: zone, hourCycle: "h23", ...options });
    formats.set(key, f);
  }
  return Object.fromEntries(f.formatToParts(new Date(t * 1000)).map((p) => [p.type, p.value]));
}
// A zone this browser does not know (newer than its time-zone data) falls back to UTC.
function setZone(name) {
  try {
    new Intl.DateTimeFormat("en-CA", { timeZone: name || "UTC" });
    zone = name || "UTC";
  } catch (e) {
    zone = "UTC";
  }
}
function zoneName(t) {
  return parts(t || Date.now() / 1000, { timeZoneName: "short" }).timeZoneName;
}
function hhmm(t) {
  if (!t) return "-";
  const p = parts(t, { hour: "2-digit", minute: "2-digit" });
  return p.hour + ":" + p.minute;
}
function stamp(t) {
  const p = parts(t, { year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit", timeZoneName: "short" });
  return `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute}:${p.second} ${p.timeZoneName}`;
}

function el(tag, attrs, text) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v;
    else e.setAttribute(k, v);
  }
  if (text !== undefined) e.textContent = text;
  return e;
}
function svg(tag, attrs, text) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}
function fill(tbody, rows) {
  tbody.replaceChildren(...rows);
}

function card(key, label, value) {
  const c = el("div", { class: "card" });
  c.append(el("div", { class: "v", "data-t": key }, value), el("div", { class: "k" }, label));
  return c;
}

function renderNow(s) {
  const c = s.campus, t = c.totals, m = c.market;
  document.getElementById("campus-name").textContent = c.name + " campus";
  document.getElementById("clock").textContent =
    "chain time " + stamp(c.chain_time) + " · slot " + c.slot + " · interval " + m.current_interval +
    " (" + hhmm(m.current_starts_at) + " " + zoneName(m.current_starts_at) + ", " + m.interval_s / 60 + " min)";
  const open = s.intervals.filter((i) => i.state === "open").length;
  document.getElementById("cards").replaceChildren(
    card("meters_active", "meters active of " + c.meters, String(c.meters_active)),
    card("meters_silent", "meters silent", String(c.meters_silent)),
    card("verified_export_wh", "verified export kWh", kwh(t.verified_export_wh)),
    card("verified_import_wh", "verified import kWh", kwh(t.verified_import_wh)),
    card("grid_minted_wh", "GRID minted kWh", kwh(t.grid_minted_wh)),
    card("grid_supply_wh", "GRID supply kWh", kwh(t.grid_supply_wh)),
    card("last_price", "last price /kWh (interval " + m.last_price_interval + ")", credits(m.last_price)),
    card("traded_wh", "traded kWh", kwh(t.traded_wh)),
    card("open_orders", "open orders (" + open + " books open)", String(t.open_orders)),
    card("recs_issued", "RECs issued", String(t.recs_issued)),
    card("highest_sequence", "batches applied (highest sequence)", String(s.batches.highest_sequence)),
  );
  const p = c.paused, out = [];
  for (const [name, until] of [["registry", p.registry_until], ["oracle", p.oracle_until], ["market", p.market_until]]) {
    if (until) out.push(el("div", { class: "warn" }, "The " + name + " is paused until " + stamp(until)));
  }
  if (!c.history_complete) out.push(el("div", { class: "warn" }, "The console fell behind the chain's history: fills and intervals have a gap."));
  document.getElementById("paused").replaceChildren(...out);
}

function renderMarketChart(s) {
  const rows = s.intervals;
  const W = 960, H = 300, L = 60, R = 70, T = 28, B = 40;
  const pw = W - L - R, ph = H - T - B;
  const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": "clearing price and volume per interval" });
  const n = Math.max(rows.length, 1);
  const maxV = Math.max(1, ...rows.map((r) => r.volume_wh));
  const priced = rows.filter((r) => r.volume_wh > 0);
  const maxP = Math.max(1, ...priced.map((r) => r.price)) * 1.1;
  root.append(svg("line", { x1: L, y1: T + ph, x2: L + pw, y2: T + ph, stroke: "#333" }));
  rows.forEach((r, i) => {
    const h = (r.volume_wh / maxV) * ph;
    const x = L + (i / n) * pw;
    const bar = svg("rect", {
      x: x.toFixed(1), y: (T + ph - h).toFixed(1), width: Math.max(1, (pw / n) * 0.8).toFixed(1), height: h.toFixed(1),
      fill: r.state === "open" ? "#c6dbef" : r.state === "gate closed" ? "#fdd0a2" : "#6baed6",
      "data-interval": r.interval, "data-volume-wh": r.volume_wh,
    });
    bar.append(svg("title", {}, `interval ${r.interval} (${hhmm(r.starts_at)} ${zoneName(r.starts_at)}, ${r.state}): ${kwh(r.volume_wh)} kWh at ${credits(r.price)}/kWh, ${r.buy_orders} buys, ${r.sell_orders} sells`));
    root.append(bar);
    if (n <= 24 || i % Math.ceil(n / 12) === 0) {
      root.append(svg("text", { x: (x + pw / n / 2).toFixed(1), y: T + ph + 16, "text-anchor": "middle", "font-size": 11 }, hhmm(r.starts_at)));
    }
  });
  const pts = rows.map((r, i) => [r, i]).filter(([r]) => r.volume_wh > 0)
    .map(([r, i]) => `${(L + ((i + 0.4) / n) * pw).toFixed(1)},${(T + ph - (r.price / maxP) * ph).toFixed(1)}`);
  root.append(svg("polyline", { points: pts.join(" "), fill: "none", stroke: "#d94801", "stroke-width": 2 }));
  for (const p of pts) {
    const [cx, cy] = p.split(",");
    root.append(svg("circle", { cx, cy, r: 3, fill: "#d94801" }));
  }
  if (!priced.length) {
    root.append(svg("text", { x: L + pw / 2, y: T + ph / 2, "text-anchor": "middle", "font-size": 13, fill: "#667" }, "no trade in these intervals yet"));
  }
  for (let k = 0; k <= (priced.length ? 4 : 0); k++) {
    const y = T + ph - (k / 4) * ph;
    root.append(svg("text", { x: L - 6, y: y.toFixed(1), "text-anchor": "end", "font-size": 11, fill: "#3182bd" }, kwh(Math.round((maxV * k) / 4))));
    root.append(svg("text", { x: L + pw + 6, y: y.toFixed(1), "font-size": 11, fill: "#d94801" }, credits(Math.round((maxP * k) / 4))));
  }
  root.append(svg("text", { x: L + 10, y: 12, "font-size": 12 }, "bars: volume kWh (light: open, orange: gate closed) · line: clearing price per kWh"));
  document.getElementById("market-chart").replaceChildren(root);
}

function renderEnergyChart(s) {
  const rows = s.buildings;
  const W = 960, row = 18, L = 70, R = 20, T = 24;
  const H = T + rows.length * row + 10;
  const pw = W - L - R;
  const max = Math.max(1, ...rows.map((b) => Math.max(b.verified_export_wh, b.verified_import_wh)));
  const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": "verified export and import per building" });
  root.append(svg("text", { x: L, y: 14, "font-size": 12 }, `verified export (green) and import (blue) per building, kWh (scale to ${kwh(max)})`));
  rows.forEach((b, i) => {
    const y = T + i * row;
    root.append(svg("text", { x: L - 6, y: y + 12, "text-anchor": "end", "font-size": 11 }, b.code));
    const ex = (b.verified_export_wh / max) * pw, im = (b.verified_import_wh / max) * pw;
    root.append(svg("rect", { x: L, y, width: ex.toFixed(1), height: 7, fill: "#41ab5d", "data-building": b.code, "data-export-wh": b.verified_export_wh }));
    root.append(svg("rect", { x: L, y: y + 8, width: im.toFixed(1), height: 7, fill: "#4292c6", "data-building": b.code, "data-import-wh": b.verified_import_wh }));
  });
  document.getElementById("energy-chart").replaceChildren(root);
}

function renderBuildings(s) {
  const cell = (b, f, v) => el("td", { "data-b": b.code, "data-f": f }, v);
  fill(document.querySelector("#buildings tbody"), s.buildings.map((b) => {
    const tr = el("tr");
    tr.append(
      cell(b, "code", b.code), cell(b, "kind", b.kind), cell(b, "status", b.status),
      cell(b, "verified_export_wh", kwh(b.verified_export_wh)), cell(b, "verified_import_wh", kwh(b.verified_import_wh)),
      cell(b, "grid_minted_wh", kwh(b.grid_minted_wh)), cell(b, "grid_wh", kwh(b.grid_wh)), cell(b, "quote", credits(b.quote)),
      cell(b, "claimable_grid_wh", kwh(b.claimable_grid_wh)), cell(b, "claimable_quote", credits(b.claimable_quote)),
      cell(b, "recs", String(b.recs)), cell(b, "bought_wh", kwh(b.bought_wh)), cell(b, "sold_wh", kwh(b.sold_wh)),
      cell(b, "open_orders", String(b.open_orders)),
    );
    return tr;
  }));
}

function renderMeters(s) {
  document.getElementById("meters").replaceChildren(...s.meters.map((m) => {
    const d = el("div", { class: "meter " + m.health.replace(" ", "-"), "data-b": m.code, "data-health": m.health });
    const age = m.age_s === null ? "never read" : m.age_s + " s ago";
    d.append(el("div", { class: "c" }, m.code), el("div", { class: "h" }, m.health + " · " + age));
    d.title = `${m.lfdi} · ${m.status} · ${m.readings} readings · last ${m.last_reading ? stamp(m.last_reading) : "-"}`;
    return d;
  }));
}

function renderOrders(s) {
  fill(document.querySelector("#orders tbody"), s.orders.map((o) => {
    const tr = el("tr");
    tr.append(el("td", {}, o.building), el("td", {}, String(o.interval)), el("td", {}, hhmm(o.starts_at)),
      el("td", {}, o.side), el("td", {}, kwh(o.quantity_wh)), el("td", {}, credits(o.limit_price)), el("td", {}, o.state));
    return tr;
  }));
}

function renderBatches(s) {
  const b = s.batches, out = [];
  const last = b.recent.slice(-5).reverse()
    .map((r) => `#${r.sequence}: ${r.applied} applied, ${r.skipped} skipped (slot ${r.slot})`).join(" · ");
  out.push(el("div", {}, `Oracle: highest sequence ${b.highest_sequence}. Recent: ${last || "none seen yet"}`));
  if (!b.bridge) {
    out.push(el("div", { class: "muted" }, "Bridge: not configured."));
  } else if (!b.bridge.reachable) {
    out.push(el("div", { class: "warn" }, "Bridge unreachable: " + b.bridge.error));
  } else {
    const a = b.bridge.attestation;
    out.push(el("div", {}, a
      ? `Bridge: last round ${stamp(a.at)}, ${a.batches_signed} batches (${a.readings_signed} readings) signed; then ${a.pending_batches} signed batches awaited the keeper and ${a.waiting_meters} meters a round` +
        (a.oldest_unattested_s === null ? "" : ` (oldest ${a.oldest_unattested_s} s)`) + (a.backlog_full ? " · BACKLOG FULL" : "")
      : "Bridge: no attestation round yet."));
    if (b.bridge.denied.length) {
      out.push(el("div", { class: "warn" }, "Denied at the bridge: " + b.bridge.denied.map((d) => `${d.code} (${d.reason})`).join(", ")));
    }
  }
  document.getElementById("batches").replaceChildren(...out);
}

function renderProposals(s) {
  fill(document.querySelector("#proposals tbody"), s.proposals.slice(-20).reverse().map((p) => {
    const tr = el("tr");
    tr.append(el("td", {}, String(p.index)), el("td", {}, p.action), el("td", {}, p.status),
      el("td", {}, `${p.approvals}/${p.threshold}`), el("td", {}, String(p.rejections)),
      el("td", {}, p.executable_at ? stamp(p.executable_at) : "-"));
    return tr;
  }));
}

function render(s) {
  if (s.campus.time_zone !== zone) setZone(s.campus.time_zone);
  decimals = s.campus.market.quote_decimals;
  renderNow(s);
  renderMarketChart(s);
  renderEnergyChart(s);
  renderBuildings(s);
  renderMeters(s);
  renderOrders(s);
  renderBatches(s);
  renderProposals(s);
  document.body.dataset.version = s.version;
}

let polling = null;
function live(on) {
  const chip = document.getElementById("live");
  chip.textContent = on ? "live" : "polling";
  chip.className = on ? "chip" : "chip off";
  if (on && polling) { clearInterval(polling); polling = null; }
  if (!on && !polling) { poll(); polling = setInterval(poll, 5000); }
}
async function poll() {
  try {
    const r = await fetch("/api/v1/snapshot", { cache: "no-store" });
    if (r.ok) render(await r.json());
  } catch (e) { /* the next poll tries again */ }
}

if (window.EventSource) {
  const es = new EventSource("/api/v1/events");
  es.addEventListener("snapshot", (e) => render(JSON.parse(e.data)));
  es.onopen = () => live(true);
  es.onerror = () => live(false);
} else {
  live(false);
}
