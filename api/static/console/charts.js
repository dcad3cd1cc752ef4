// SVG charts drawn from API data: reasons as population percentiles, feature history as
// small line charts, and a cluster as a node-link drawing of accounts and shared evidence.
// Pure functions: data in, an <svg> element out.

const NS = "http://www.w3.org/2000/svg";

export function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v !== undefined && v !== null) el.setAttribute(k, String(v));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    el.append(typeof child === "string" ? document.createTextNode(child) : child);
  }
  return el;
}

const title = (text) => svg("title", {}, text);

export function fmtNumber(v) {
  if (v === null || v === undefined || Number.isNaN(v)) return "–";
  if (v === 0) return "0";
  const a = Math.abs(v);
  if (a >= 1e6) return `${(v / 1e6).toFixed(1)}M`;
  if (a >= 1e4) return `${(v / 1e3).toFixed(0)}k`;
  if (a >= 1e3) return `${(v / 1e3).toFixed(1)}k`;
  if (a >= 100) return v.toFixed(0);
  if (a >= 10) return v.toFixed(1);
  if (a >= 1) return v.toFixed(2);
  return v.toFixed(3);
}

// One row per reason: the bar is where the account sits in the population (percentile,
// 0-100). A reason without a percentile (cluster reasons, analyst feedback) gets an empty
// track and its raw value. For low-tail signals (e.g. machine-regular timing) a LOW
// percentile is the unusual one, and the row says so.
export function reasonBars(reasons, signals = {}) {
  const rowH = 30;
  const labelW = 210;
  const barW = 300;
  const width = labelW + barW + 90;
  const height = reasons.length * rowH + 26;
  const x = (p) => labelW + (barW * Math.max(0, Math.min(100, p))) / 100;
  const root = svg("svg", {
    class: "chart reasons-chart", viewBox: `0 0 ${width} ${height}`, width, height,
    role: "img", "aria-label": "Reasons: population percentile of each signal",
  });
  for (const p of [0, 25, 50, 75, 100]) {
    root.append(
      svg("line", { class: "grid", x1: x(p), x2: x(p), y1: 4, y2: height - 18 }),
      svg("text", { class: "axis-label", x: x(p), y: height - 4, "text-anchor": "middle" },
          `p${p}`),
    );
  }
  // the tail where reasons usually sit
  root.append(svg("line", { class: "grid grid-strong", x1: x(90), x2: x(90), y1: 4,
                            y2: height - 18 }, title("p90")));
  reasons.forEach((r, i) => {
    const y = i * rowH + 6;
    const info = signals[r.signal];
    const lowTail = info && info.higher_is_suspicious === false;
    const pct = r.population_percentile;
    const has = pct !== null && pct !== undefined;
    const tip = [r.signal, info ? info.meaning : null, r.detail,
                 `value ${fmtNumber(r.value)}`, has ? `population percentile ${pct}` : null]
      .filter(Boolean).join("\n");
    const row = svg("g", { class: "reason-row", "data-signal": r.signal }, title(tip));
    row.append(
      svg("text", { class: "reason-label", x: labelW - 10, y: y + 15, "text-anchor": "end" },
          r.signal.replaceAll("_", " ")),
      svg("rect", { class: "track", x: labelW, y: y + 3, width: barW, height: 16, rx: 3 }),
      svg("rect", {
        class: `bar${has ? "" : " bar-nopct"}${lowTail ? " bar-lowtail" : ""}${has && pct >= 90 ? " bar-hot" : ""}`,
        x: labelW, y: y + 3, width: has ? Math.max(2, x(pct) - labelW) : 0, height: 16, rx: 3,
      }),
      svg("text", { class: "reason-value", x: labelW + barW + 8, y: y + 15 },
          has ? `p${fmtPct(pct)}${lowTail ? " ↓" : ""}` : fmtNumber(r.value)),
    );
    root.append(row);
  });
  return root;
}

function fmtPct(p) {
  return p >= 99 || p <= 1 ? p.toFixed(1) : p.toFixed(0);
}

// A small line chart of one series over time, with its own y scale.
export function lineChart(points, { label, unit = "", width = 360, height = 120 } = {}) {
  const pad = { l: 44, r: 12, t: 22, b: 22 };
  const root = svg("svg", {
    class: "chart line-chart", viewBox: `0 0 ${width} ${height}`, width, height, role: "img",
    "aria-label": `${label} over time`,
  });
  root.append(svg("text", { class: "chart-title", x: pad.l, y: 13 }, label));
  const pts = points.filter((p) => Number.isFinite(p.v)).sort((a, b) => a.t - b.t);
  if (pts.length === 0) {
    root.append(svg("text", { class: "axis-label", x: width / 2, y: height / 2,
                              "text-anchor": "middle" }, "no data"));
    return root;
  }
  const t0 = pts[0].t;
  const t1 = pts[pts.length - 1].t;
  const vmax = Math.max(...pts.map((p) => p.v), 1e-9) * 1.1;
  const sx = (t) => pad.l + (t1 === t0 ? 0.5 : (t - t0) / (t1 - t0)) * (width - pad.l - pad.r);
  const sy = (v) => height - pad.b - (v / vmax) * (height - pad.t - pad.b);
  for (const f of [0, 0.5, 1]) {
    const v = (vmax / 1.1) * f;
    root.append(
      svg("line", { class: "grid", x1: pad.l, x2: width - pad.r, y1: sy(v), y2: sy(v) }),
      svg("text", { class: "axis-label", x: pad.l - 6, y: sy(v) + 4, "text-anchor": "end" },
          fmtNumber(v)),
    );
  }
  const d = pts.map((p, i) => `${i ? "L" : "M"}${sx(p.t).toFixed(1)},${sy(p.v).toFixed(1)}`)
    .join("");
  const area = `${d}L${sx(t1).toFixed(1)},${sy(0)}L${sx(t0).toFixed(1)},${sy(0)}Z`;
  root.append(svg("path", { class: "area", d: area }), svg("path", { class: "line", d }));
  const last = pts[pts.length - 1];
  root.append(
    svg("circle", { class: "last", cx: sx(last.t), cy: sy(last.v), r: 3 }),
    svg("text", { class: "chart-value", x: width - pad.r, y: 13, "text-anchor": "end" },
        `${fmtNumber(last.v)}${unit}`),
    svg("text", { class: "axis-label", x: pad.l, y: height - 6 }, clock(t0)),
    svg("text", { class: "axis-label", x: width - pad.r, y: height - 6, "text-anchor": "end" },
        clock(t1)),
  );
  return root;
}

function clock(ms) {
  return new Date(ms).toISOString().slice(5, 16).replace("T", " ");
}

export const EVIDENCE_COLOURS = {
  payment: "#c2410c", net: "#2563eb", asn: "#60a5fa", user_agent: "#7c3aed",
  system_prompt: "#a855f7", template: "#0f766e", template_centroid: "#14b8a6",
  sync: "#be123c", behaviour: "#64748b",
};

// Accounts on an outer circle, the pieces of shared evidence on an inner one, an edge
// from each piece to every account holding it. Evidence is ordered round the inner ring
// by the mean angle of its holders, so edges stay short and rarely cross.
export function clusterGraph(cluster, riskByAccount = {}, onAccount = null) {
  const width = 600;
  const height = 470;
  const cx = width / 2;
  const cy = height / 2;
  const members = cluster.members.slice(0, 40);
  const rOuter = Math.min(cx, cy) - 48;
  const rInner = rOuter * 0.46;
  const angle = new Map(members.map((m, i) => [m, (2 * Math.PI * i) / members.length - Math.PI / 2]));
  const pos = new Map(members.map((m) => [m, polar(cx, cy, angle.get(m), rOuter)]));
  const evidence = cluster.evidence.filter((e) => e.accounts.some((a) => pos.has(a))).slice(0, 24)
    .map((e) => {
      const holders = e.accounts.filter((a) => pos.has(a));
      const sx = holders.reduce((t, a) => t + Math.cos(angle.get(a)), 0);
      const sy = holders.reduce((t, a) => t + Math.sin(angle.get(a)), 0);
      const mean = Math.hypot(sx, sy) < 1e-6 ? -Math.PI / 2 : Math.atan2(sy, sx);
      return { e, holders, mean: (mean + 2.5 * Math.PI) % (2 * Math.PI) };
    })
    .sort((a, b) => a.mean - b.mean);
  const root = svg("svg", {
    class: "chart cluster-graph", viewBox: `0 0 ${width} ${height}`, width, height,
    role: "img", "aria-label": "Accounts and the evidence they share",
  });
  const edges = svg("g", { class: "edges" });
  const evNodes = svg("g", { class: "evidence-nodes" });
  evidence.forEach(({ e, holders }, i) => {
    const a = (2 * Math.PI * i) / evidence.length - Math.PI / 2 + Math.PI / evidence.length;
    const p = polar(cx, cy, a, evidence.length === 1 ? 0 : rInner);
    const colour = EVIDENCE_COLOURS[e.kind] || "#64748b";
    for (const acc of holders) {
      const q = pos.get(acc);
      edges.append(svg("line", {
        class: "edge", x1: p.x, y1: p.y, x2: q.x, y2: q.y, stroke: colour,
        "stroke-width": 1 + 1.5 * Math.min(1, e.weight),
      }));
    }
    const right = Math.cos(a) >= 0;
    evNodes.append(svg("g", { class: "ev-node", "data-kind": e.kind },
      title(`${e.kind}: ${e.value}\nweight ${e.weight}\nheld by ${e.accounts.length} accounts`),
      svg("rect", { x: p.x - 8, y: p.y - 8, width: 16, height: 16, rx: 3, fill: colour,
                    transform: `rotate(45 ${p.x} ${p.y})` }),
      svg("text", { class: "ev-label", x: p.x + (right ? 14 : -14), y: p.y + 4,
                    "text-anchor": right ? "start" : "end" }, e.kind.replaceAll("_", " ")),
    ));
  });
  const accNodes = svg("g", { class: "account-nodes" });
  for (const m of members) {
    const p = pos.get(m);
    const risk = riskByAccount[m];
    const level = risk ? risk.level : "low";
    const a = angle.get(m);
    const r = 9 + 7 * (risk ? risk.risk : 0);
    const out = polar(cx, cy, a, rOuter + r + 6);
    const side = Math.cos(a);
    const anchor = Math.abs(side) < 0.3 ? "middle" : side > 0 ? "start" : "end";
    const dy = Math.sin(a) < -0.7 ? -2 : Math.sin(a) > 0.7 ? 12 : 4;
    const node = svg("g", { class: `acc-node level-${level}`, "data-account": m },
      title(`${m}${risk ? `\nrisk ${risk.risk.toFixed(2)} (${risk.level})` : ""}`),
      svg("circle", { cx: p.x, cy: p.y, r }),
      svg("text", { class: "node-label", x: out.x, y: out.y + dy, "text-anchor": anchor },
          shorten(m, 18)),
    );
    if (onAccount) node.addEventListener("click", () => onAccount(m));
    accNodes.append(node);
  }
  root.append(edges, evNodes, accNodes);
  return root;
}

function polar(cx, cy, a, r) {
  return { x: cx + r * Math.cos(a), y: cy + r * Math.sin(a) };
}

export function shorten(text, n) {
  return text.length > n ? `${text.slice(0, n - 1)}…` : text;
}

// Members' requests on one time axis: one row per member, one tick per request. Rows
// come ordered by first activity (the API orders them), so a fleet started together
// stacks up and requests sent in the same second line up as one column of ticks. Every
// tick of the same second gets the same x: synchrony is exact, not approximate.
const TIMELINE_STEPS = [1, 5, 10, 30, 60, 300, 600, 1800, 3600, 3 * 3600, 6 * 3600,
                        12 * 3600, 86400, 2 * 86400, 7 * 86400];

export function memberTimeline(timeline, onAccount = null) {
  const rows = timeline.members;
  const rowH = 20;
  const labelW = 150;
  const width = 640;
  const pad = { t: 8, r: 14, b: 34 };
  const plotW = width - labelW - pad.r;
  const height = pad.t + rows.length * rowH + pad.b;
  let t0 = Math.min(...rows.map((r) => r.times[0]));
  let t1 = Math.max(...rows.map((r) => r.times[r.times.length - 1]));
  if (t1 - t0 < 60) { const mid = (t0 + t1) / 2; t0 = mid - 30; t1 = mid + 30; }
  const x = (t) => labelW + ((t - t0) / (t1 - t0)) * plotW;
  const root = svg("svg", {
    class: "chart member-timeline", viewBox: `0 0 ${width} ${height}`, width, height,
    role: "list",
    "aria-label": `Requests of ${rows.length} members on one time axis, ${isoSecond(t0)} to ${isoSecond(t1)} UTC`,
  });
  const axisY = pad.t + rows.length * rowH;
  const step = TIMELINE_STEPS.find((s) => (t1 - t0) / s <= 6) || TIMELINE_STEPS[TIMELINE_STEPS.length - 1];
  const axis = svg("g", { class: "tl-axis" });
  for (let t = Math.ceil(t0 / step) * step; t <= t1; t += step) {
    axis.append(
      svg("line", { class: "grid tl-grid", x1: x(t), x2: x(t), y1: pad.t, y2: axisY }),
      svg("text", { class: "axis-label", x: x(t), y: axisY + 14, "text-anchor": "middle" },
          axisLabel(t, step, t1 - t0)),
    );
  }
  axis.append(
    svg("line", { class: "tl-baseline", x1: labelW, x2: width - pad.r, y1: axisY, y2: axisY }),
    svg("text", { class: "axis-label", x: width - pad.r, y: axisY + 28, "text-anchor": "end" },
        `time (UTC) · ${isoSecond(t0).slice(0, 10)}`),
  );
  root.append(axis);
  rows.forEach((r, i) => {
    const y = pad.t + i * rowH;
    const first = isoSecond(r.times[0]);
    const last = isoSecond(r.times[r.times.length - 1]);
    const shown = r.times.length < r.requests ? `last ${r.times.length} of ${r.requests} requests` : `${r.requests} requests`;
    const tip = `${r.account_id}: ${shown}, ${first} to ${last} UTC`;
    const row = svg("g", { class: "tl-row", "data-account": r.account_id, role: "listitem", "aria-label": tip },
      title(tip),
      svg("rect", { class: `tl-band${i % 2 ? " tl-band-odd" : ""}`, x: 0, y, width, height: rowH }),
      svg("text", { class: "tl-label", x: labelW - 8, y: y + rowH / 2 + 4, "text-anchor": "end" },
          shorten(r.account_id, 20)));
    const ticks = svg("g", { class: "tl-ticks" });
    for (const t of r.times) {
      ticks.append(svg("line", { class: "tl-tick", "data-t": t, x1: x(t), x2: x(t), y1: y + 3, y2: y + rowH - 3 }));
    }
    row.append(ticks);
    if (onAccount) row.addEventListener("click", () => onAccount(r.account_id));
    root.append(row);
  });
  return root;
}

function isoSecond(t) {
  return new Date(t * 1000).toISOString().slice(0, 19).replace("T", " ");
}

function axisLabel(t, step, span) {
  const s = isoSecond(t);
  if (span > 2 * 86400) return s.slice(5, 16); // MM-DD HH:MM
  return step < 60 ? s.slice(11, 19) : s.slice(11, 16);
}
