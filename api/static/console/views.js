// DOM building for the three views. Text always goes in through textContent (via h()),
// never innerHTML: alert data (prompts above all) is attacker-controlled.

import {
  clusterGraph, EVIDENCE_COLOURS, fmtNumber, lineChart, memberTimeline, reasonBars, shorten,
} from "./charts.js";

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") el.className = v;
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export const LEVEL_RANK = { critical: 0, high: 1, medium: 2, low: 3 };
export const STATUS_FILTERS = [
  ["review", "Needs review (open + acknowledged)"],
  ["open", "Open"],
  ["acknowledged", "Acknowledged"],
  ["confirmed", "Confirmed"],
  ["dismissed", "Dismissed"],
  ["", "Any status"],
];
const PARAMETER_GROUPS = new Set(["harvesting", "elicitation"]);
const INFRA_SIGNALS = ["ip_change_rate", "scripted_client_rate", "rate_limited_rate",
                       "fast_retry_rate"];
const INFRA_KINDS = new Set(["payment", "net", "asn", "user_agent", "system_prompt"]);

export const levelBadge = (level) => h("span", { class: `badge level-${level}` }, level);
export const statusPill = (status) => h("span", { class: `pill status-${status}` }, status);

export function ago(iso) {
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return "–";
  const s = Math.max(0, (Date.now() - t) / 1000);
  if (s < 60) return `${Math.floor(s)}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86400)} d ago`;
}

export const utc = (iso) => (iso ? iso.replace("T", " ").replace(/\.\d+/, "").replace("Z", " UTC") : "–");

export function subjectLabel(alert, withOrg = true) {
  if (alert.subject_type === "cluster") {
    return h("span", { class: "subject" }, h("span", { class: "tag" }, "cluster"),
             ` ${alert.subject_id} `, h("span", { class: "muted" }, `· ${alert.members.length} accounts`));
  }
  return h("span", { class: "subject" }, alert.subject_id,
           withOrg && alert.org_id ? h("span", { class: "muted" }, ` · ${alert.org_id}`) : null);
}

function riskCell(risk, level) {
  const m = h("span", { class: "riskbar" }, h("span", { class: `riskbar-fill fill-${level}` }));
  m.firstChild.style.width = `${Math.round(risk * 100)}%`;
  return h("span", { class: "risk" }, h("strong", {}, risk.toFixed(2)), m);
}

// ---- queue ---------------------------------------------------------------------------

export function queueView(filters, handlers) {
  const status = h("select", { id: "f-status", "aria-label": "Status" },
    STATUS_FILTERS.map(([v, label]) => h("option", { value: v, selected: v === filters.status }, label)));
  const level = h("select", { id: "f-level", "aria-label": "Level" },
    [["", "Any level"], ["critical", "Critical"], ["high", "High"], ["medium", "Medium"], ["low", "Low"]]
      .map(([v, label]) => h("option", { value: v, selected: v === filters.level }, label)));
  const account = h("input", { id: "f-account", type: "search", placeholder: "Account id",
                               value: filters.account, "aria-label": "Account", spellcheck: "false" });
  const cluster = h("input", { id: "f-cluster", type: "search", placeholder: "Cluster id",
                               value: filters.cluster, "aria-label": "Cluster", spellcheck: "false" });
  const apply = () => handlers.onFilter({ status: status.value, level: level.value,
                                          account: account.value.trim(), cluster: cluster.value.trim() });
  status.addEventListener("change", apply);
  level.addEventListener("change", apply);
  for (const input of [account, cluster]) {
    input.addEventListener("keydown", (e) => { if (e.key === "Enter") { apply(); input.blur(); } });
    input.addEventListener("search", apply);
  }
  const tbody = h("tbody", { id: "queue-body" });
  return h("div", { class: "queue" },
    h("div", { class: "toolbar" },
      h("h1", {}, "Alert queue"),
      h("span", { id: "queue-count", class: "muted" }),
      h("div", { class: "filters" }, status, level, account, cluster)),
    h("div", { class: "card table-card" },
      h("table", { class: "grid-table queue-table", "aria-label": "Alerts" },
        h("thead", {}, h("tr", {},
          ["Level", "Risk", "Subject", "Why", "Status", "Created", "Assignee"].map((c) => h("th", {}, c)))),
        tbody),
      h("div", { id: "queue-empty", class: "empty", hidden: true }, "No alerts match these filters. New ones appear here live."),
      h("div", { class: "table-foot" },
        h("button", { id: "load-more", class: "ghost", type: "button", hidden: true, onclick: handlers.onMore },
          "Load older alerts"),
        h("span", { class: "muted small" }, "Sorted by level, then newest first · ",
          h("kbd", {}, "j"), "/", h("kbd", {}, "k"), " move · ", h("kbd", {}, "Enter"), " open · ",
          h("kbd", {}, "?"), " all shortcuts"))));
}

export function queueRow(alert, { selected, fresh, onOpen }) {
  const reasons = alert.reasons.slice(0, 3).map((r) => h("span", { class: "chip" }, r.signal.replaceAll("_", " ")));
  const row = h("tr", {
    class: `qrow${selected ? " selected" : ""}${fresh ? " fresh" : ""}`,
    tabindex: selected ? "0" : "-1",
    "aria-selected": selected ? "true" : "false",
    dataset: { alertId: alert.alert_id, level: alert.level, status: alert.status },
    onclick: () => onOpen(alert.alert_id),
  },
    h("td", {}, levelBadge(alert.level)),
    h("td", {}, riskCell(alert.risk, alert.level)),
    h("td", {}, subjectLabel(alert)),
    h("td", { class: "why" }, reasons),
    h("td", {}, statusPill(alert.status)),
    // when it was raised (wall clock), not when the replayed traffic happened
    h("td", { title: `raised ${utc(raisedAt(alert))}; event time ${utc(alert.created_at)}` },
      ago(raisedAt(alert))),
    h("td", { class: "muted" }, alert.assignee ? shorten(alert.assignee.split("#")[0], 18) : "–"),
  );
  return row;
}

/** When the alert was raised: the store's wall clock, or event time for older alerts. */
function raisedAt(alert) {
  return alert.detected_at || alert.created_at;
}

// ---- alert detail --------------------------------------------------------------------

export function alertView(alert, ctx) {
  const { signals, cluster, handlers } = ctx;
  const open = alert.status === "open";
  const reviewable = open || alert.status === "acknowledged";
  const clusterId = alert.subject_type === "cluster" ? alert.subject_id : alert.cluster_id;
  const actions = h("div", { class: "actions", role: "toolbar", "aria-label": "Actions" },
    button("Acknowledge", "a", "ack", !open, handlers.onAck),
    button("Confirm", "c", "confirm", !reviewable, () => handlers.onVerdict("confirm")),
    button("Dismiss", "d", "dismiss", !reviewable, () => handlers.onVerdict("dismiss")),
    button("Suppress", "s", "suppress", false, handlers.onSuppress),
    clusterId ? button("Cluster", "g", "cluster", false, () => handlers.onCluster(clusterId)) : null,
  );
  const head = h("div", { class: "card alert-head" },
    h("div", { class: "alert-title" },
      h("a", { href: "#/", class: "back", title: "Back to the queue (Esc)" }, "← Queue"),
      h("h1", {}, subjectLabel(alert, false)),
      h("div", { class: "meta" },
        levelBadge(alert.level), statusPill(alert.status),
        h("span", { class: "muted" }, alert.alert_id))),
    h("div", { class: "alert-risk" },
      h("div", { class: `risk-big level-text-${alert.level}` }, alert.risk.toFixed(2)),
      h("div", { class: "muted small" }, "risk")),
    h("dl", { class: "facts" },
      fact("Raised", utc(raisedAt(alert))),
      fact("Event time", utc(alert.created_at)),
      fact("Updated", utc(alert.updated_at)),
      fact("Activity", `${utc(alert.first_event_ts)} → ${utc(alert.last_event_ts)}`),
      fact("Assignee", alert.assignee ? alert.assignee.split("#")[0] : "–"),
      alert.org_id ? fact("Org", alert.org_id) : null,
      clusterId ? fact("Cluster", h("a", { href: `#/clusters/${encodeURIComponent(clusterId)}` }, clusterId)) : null),
    actions,
    h("div", { id: "action-panel", class: "action-panel", hidden: true }),
  );

  const reasonsCard = h("section", { class: "card" },
    h("h2", {}, "Why: reasons ", h("span", { class: "muted small" }, "position in the population")),
    alert.reasons.length ? reasonBars(alert.reasons, signals) : h("p", { class: "muted" }, "No reasons recorded."),
    h("ul", { class: "reason-notes" }, alert.reasons.map((r) => {
      const info = signals[r.signal];
      const text = r.detail || (info && info.meaning);
      return text ? h("li", {}, h("strong", {}, r.signal.replaceAll("_", " ")), ": ", text) : null;
    })));

  const activity = h("section", { class: "card" }, h("h2", {}, "Activity ",
    h("span", { class: "muted small" }, `${alert.feature_history.length} snapshots`)));
  const series = activitySeries(alert, signals);
  if (alert.feature_history.length === 0) activity.append(h("p", { class: "muted" }, "No feature history for this subject."));
  else activity.append(h("div", { class: "small-multiples" }, series.map(([sig, label]) => lineChart(
    alert.feature_history.map((p) => ({ t: Date.parse(p.ts), v: p.features[sig] })), { label }))));

  const features = { ...alert.features };
  const params = Object.keys(features).filter((k) => signals[k] && PARAMETER_GROUPS.has(signals[k].group));
  const paramsCard = h("section", { class: "card" }, h("h2", {}, "Parameters used"),
    params.length ? featureTable(params, features, signals) : h("p", { class: "muted" }, "No request-parameter signals on this alert."));

  const evidence = [...alert.evidence, ...(cluster ? cluster.evidence : [])]
    .filter((e) => INFRA_KINDS.has(e.kind) || alert.subject_type === "cluster")
    .filter((e) => alert.subject_type === "cluster" || e.accounts.includes(alert.subject_id));
  const seen = new Set();
  const uniqueEvidence = evidence.filter((e) => {
    const k = `${e.kind}|${e.value}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
  const infraSignals = INFRA_SIGNALS.filter((k) => k in features);
  const infraCard = h("section", { class: "card" }, h("h2", {}, "Infrastructure seen"),
    infraSignals.length ? featureTable(infraSignals, features, signals) : null,
    uniqueEvidence.length ? evidenceTable(uniqueEvidence) : null,
    !infraSignals.length && !uniqueEvidence.length ? h("p", { class: "muted" }, "No infrastructure evidence on this alert.") : null);

  const prompts = h("section", { class: "card" }, h("h2", {}, "Sample prompts ",
    h("span", { class: "muted small" }, "truncated")),
    alert.sample_prompts.length
      ? h("ol", { class: "prompts" }, alert.sample_prompts.map((p) => h("li", {}, h("code", {}, shorten(p, 280)))))
      : h("p", { class: "muted" }, "No prompts sampled."));

  const history = h("section", { class: "card" }, h("h2", {}, "History"),
    alert.history.length ? null : h("p", { class: "muted" }, "No changes yet."),
    h("ol", { class: "history" }, [...alert.history].reverse().map((e) => h("li", {},
      h("span", { class: "when", title: e.at }, utc(e.at)),
      h("span", { class: "who" }, e.actor.split("#")[0]),
      h("span", { class: "what" }, e.action),
      e.note ? h("span", { class: "note" }, e.note) : null))));

  const members = alert.subject_type === "cluster"
    ? h("section", { class: "card" }, h("h2", {}, `Members (${alert.members.length})`),
      h("p", {}, alert.members.map((m) => h("span", { class: "chip" }, m))))
    : null;

  return h("div", { class: "alert-view", dataset: { alertId: alert.alert_id } },
    head,
    h("div", { class: "grid-2" }, reasonsCard, activity),
    members,
    h("div", { class: "grid-2" }, paramsCard, infraCard),
    h("div", { class: "grid-2" }, prompts, history));
}

function activitySeries(alert, signals) {
  const out = [["requests_per_hour", "Volume · requests / hour"],
               ["output_tokens_per_hour", "Output tokens / hour"]];
  for (const r of alert.reasons) {
    if (out.length >= 5) break;
    if (out.some(([s]) => s === r.signal)) continue;
    if (!alert.feature_history.some((p) => r.signal in p.features)) continue;
    out.push([r.signal, r.signal.replaceAll("_", " ")]);
  }
  return out.filter(([s]) => alert.feature_history.some((p) => s in p.features) || signals[s]);
}

function fact(label, value) {
  return h("div", { class: "fact" }, h("dt", {}, label), h("dd", {}, value));
}

function button(label, key, action, disabled, onclick) {
  return h("button", { type: "button", class: `action action-${action}`, disabled, onclick,
                       dataset: { action }, title: `${label} (${key})` },
           label, h("kbd", {}, key));
}

function featureTable(keys, features, signals) {
  return h("table", { class: "kv" }, h("tbody", {}, keys.map((k) => h("tr", {},
    h("th", { title: signals[k] ? signals[k].meaning : "" }, k.replaceAll("_", " ")),
    h("td", { class: "num" }, fmtNumber(features[k])),
    h("td", { class: "muted small" }, signals[k] ? signals[k].meaning : "")))));
}

function evidenceTable(evidence) {
  return h("table", { class: "kv evidence" }, h("tbody", {}, evidence.map((e) => h("tr", {},
    h("th", {}, kindDot(e.kind), e.kind.replaceAll("_", " ")),
    h("td", { class: "mono" }, shorten(e.value, 48)),
    h("td", { class: "muted small" }, `${e.accounts.length} accounts · weight ${e.weight.toFixed(2)}`)))));
}

function kindDot(kind) {
  const dot = h("span", { class: "kind-dot" });
  dot.style.background = EVIDENCE_COLOURS[kind] || "#64748b";
  return dot;
}

// ---- clusters ------------------------------------------------------------------------

export function clusterListView(clusters, selectedIndex, onOpen) {
  return h("div", { class: "clusters" },
    h("div", { class: "toolbar" }, h("h1", {}, "Clusters"), h("span", { class: "muted" }, `${clusters.length} riskiest`)),
    h("div", { class: "card table-card" },
      h("table", { class: "grid-table", "aria-label": "Clusters" },
        h("thead", {}, h("tr", {}, ["Level", "Risk", "Cluster", "Members", "Shared evidence", "Updated"].map((c) => h("th", {}, c)))),
        h("tbody", { id: "cluster-body" }, clusters.map((c, i) => h("tr", {
          class: `qrow${i === selectedIndex ? " selected" : ""}`, tabindex: i === selectedIndex ? "0" : "-1",
          dataset: { clusterId: c.cluster_id }, onclick: () => onOpen(c.cluster_id),
        },
          h("td", {}, levelBadge(c.level)), h("td", {}, riskCell(c.risk, c.level)),
          h("td", { class: "mono" }, c.cluster_id), h("td", {}, String(c.members.length)),
          h("td", {}, [...new Set(c.evidence.map((e) => e.kind))].map((k) => h("span", { class: "chip" }, kindDot(k), k))),
          h("td", { title: utc(c.updated_at) }, c.updated_at ? ago(c.updated_at) : "–"))))),
      clusters.length ? null : h("div", { class: "empty" }, "No clusters yet.")));
}

// The members' requests on one time axis, or why there is nothing to draw. `timeline` is
// null when the API could not say (an older API): the card says so instead of failing.
function timelineCard(cluster, timeline, onAccount) {
  const card = h("section", { class: "card timeline-card" }, h("h2", {}, "Requests over time"));
  if (!timeline) {
    card.append(h("p", { class: "muted" }, "Timeline unavailable."));
    return card;
  }
  const rows = timeline.members;
  if (rows.length) {
    card.append(
      h("p", { class: "muted small" }, "One row per member, one tick per request, rows in order of first "
        + "request. Ticks stacked in one column are requests sent in the same second."),
      memberTimeline(timeline, onAccount));
  } else {
    card.append(h("p", { class: "muted" }, "No request times recorded for these members."));
  }
  if (timeline.hidden > 0 && rows.length) {
    card.append(h("p", { class: "muted small timeline-hidden" },
      `${timeline.hidden} more member${timeline.hidden === 1 ? "" : "s"} not drawn: `
      + `the ${rows.length} most active are shown.`));
  }
  return card;
}

export function clusterView(cluster, alerts, timeline, handlers) {
  const risks = Object.fromEntries(cluster.member_risks.map((r) => [r.account_id, r]));
  const kinds = [...new Set(cluster.evidence.map((e) => e.kind))];
  const graph = h("section", { class: "card graph-card" }, h("h2", {}, "Accounts and shared evidence"),
    clusterGraph(cluster, risks, handlers.onAccount),
    h("div", { class: "legend" },
      h("span", {}, h("span", { class: "legend-circle" }), "account (size = risk)"),
      kinds.map((k) => h("span", {}, kindDot(k), k.replaceAll("_", " ")))));
  const members = h("section", { class: "card" }, h("h2", {}, `Members (${cluster.members.length})`),
    h("table", { class: "grid-table members-table" },
      h("thead", {}, h("tr", {}, ["Account", "Level", "Risk", "Top reason"].map((c) => h("th", {}, c)))),
      h("tbody", {}, cluster.members.map((m) => {
        const r = risks[m];
        return h("tr", { dataset: { account: m } },
          h("td", { class: "mono" }, h("a", { href: "#/", onclick: (e) => { e.preventDefault(); handlers.onAccount(m); } }, m)),
          h("td", {}, r ? levelBadge(r.level) : h("span", { class: "muted" }, "unknown")),
          h("td", {}, r ? riskCell(r.risk, r.level) : "–"),
          h("td", { class: "muted small" }, r && r.reasons.length ? r.reasons[0].signal.replaceAll("_", " ") : "–"));
      }))));
  const evidence = h("section", { class: "card" }, h("h2", {}, "Shared evidence"),
    cluster.evidence.length ? evidenceTable(cluster.evidence) : h("p", { class: "muted" }, "None recorded."));
  const clusterAlerts = h("section", { class: "card" }, h("h2", {}, "Alerts in this cluster"),
    alerts.length ? h("ul", { class: "alert-links" }, alerts.map((a) => h("li", {},
      levelBadge(a.level), " ", h("a", { href: `#/alerts/${encodeURIComponent(a.alert_id)}` }, a.subject_id),
      " ", statusPill(a.status), h("span", { class: "muted small" }, ` ${ago(raisedAt(a))}`))))
      : h("p", { class: "muted" }, "No alerts."));
  return h("div", { class: "cluster-view", dataset: { clusterId: cluster.cluster_id } },
    h("div", { class: "card alert-head" },
      h("div", { class: "alert-title" },
        h("a", { href: "#/clusters", class: "back", title: "Back (Esc)" }, "← Clusters"),
        h("h1", {}, h("span", { class: "tag" }, "cluster"), ` ${cluster.cluster_id}`),
        h("div", { class: "meta" }, levelBadge(cluster.level),
          h("span", { class: "muted" }, `${cluster.members.length} accounts · first alert ${utc(cluster.first_alert_ts)}`))),
      h("div", { class: "alert-risk" },
        h("div", { class: `risk-big level-text-${cluster.level}` }, cluster.risk.toFixed(2)),
        h("div", { class: "muted small" }, "risk"))),
    h("div", { class: "grid-2" }, graph, h("div", { class: "stack" }, members, clusterAlerts)),
    h("div", { class: "grid-2" }, timelineCard(cluster, timeline, handlers.onAccount), evidence));
}
