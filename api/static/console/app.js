// The console's state, routing (#/, #/alerts/ID, #/clusters, #/clusters/ID), live queue
// and keyboard handling. Views are built in views.js, charts in charts.js.

import { Api, ApiError } from "./api.js";
import {
  alertView, clusterListView, clusterView, h, LEVEL_RANK, queueRow, queueView,
} from "./views.js";

const KEY_STORAGE = "distillguard.console.key";
const PAGE = 100;
const $ = (id) => document.getElementById(id);

const state = {
  api: null,
  stopStream: null,
  signals: {},
  filters: { status: "review", level: "", account: "", cluster: "" },
  alerts: new Map(), // alert_id -> alert (list shape)
  order: [], // alert ids, sorted
  cursors: {}, // status ("" = any) -> next cursor
  selectedId: null,
  fresh: new Set(),
  route: { name: "queue" },
  detail: null, // the open alert (detail shape)
  detailCluster: null, // its cluster, when it has one
  clusters: [],
  clusterIndex: 0,
  panel: null, // "confirm" | "dismiss" | "suppress" while an action form is open
  gap: null, // queue position of an alert that just left the queue (j/k continue from it)
  streamEverLive: false,
};

// ---- start-up and sign-in ------------------------------------------------------------

function init() {
  $("signin-button").addEventListener("click", signIn);
  $("key-input").addEventListener("keydown", (e) => { if (e.key === "Enter") signIn(); });
  $("signout").addEventListener("click", signOut);
  $("help-button").addEventListener("click", toggleHelp);
  $("help").addEventListener("click", (e) => { if (e.target === $("help")) toggleHelp(); });
  document.addEventListener("keydown", onKey);
  window.addEventListener("hashchange", route);
  setInterval(refreshAges, 30_000);
  const key = sessionStorage.getItem(KEY_STORAGE);
  if (key) start(key);
  else showSignIn();
}

function showSignIn(message = "") {
  $("signin").hidden = false;
  $("view").hidden = true;
  $("signout").hidden = true;
  document.querySelector(".nav").hidden = true;
  $("whoami").textContent = "";
  $("signin-error").textContent = message;
  $("key-input").value = "";
  $("key-input").focus();
}

async function signIn() {
  const key = $("key-input").value.trim();
  if (!key) {
    $("signin-error").textContent = "Paste an API key first.";
    return;
  }
  const probe = new Api(key, () => {});
  try {
    await probe.get("/v1/alerts", { limit: 1 });
  } catch (err) {
    $("signin-error").textContent = err instanceof ApiError && err.status === 401
      ? "That key is not valid (or was revoked)."
      : err instanceof ApiError && err.status === 403
        ? "This key may not read alerts: use an analyst or admin key."
        : `Could not reach the API: ${err.message}`;
    return;
  }
  sessionStorage.setItem(KEY_STORAGE, key);
  start(key);
}

function signOut(message = "") {
  if (state.stopStream) state.stopStream();
  state.stopStream = null;
  state.api = null;
  sessionStorage.removeItem(KEY_STORAGE);
  setLive("off");
  showSignIn(typeof message === "string" ? message : "");
}

async function start(key) {
  state.api = new Api(key, () => signOut("Your key was refused (401): sign in again."));
  $("signin").hidden = true;
  $("view").hidden = false;
  $("signout").hidden = false;
  document.querySelector(".nav").hidden = false;
  const keyId = key.split("_")[1] || "";
  $("whoami").textContent = keyId ? `key ${keyId}` : "";
  try {
    const list = await fetch("signals.json").then((r) => r.json());
    state.signals = Object.fromEntries(list.map((s) => [s.name, s]));
  } catch {
    state.signals = {};
  }
  state.streamEverLive = false;
  state.stopStream = state.api.stream(onStreamEvent, onStreamState);
  route();
}

// ---- live stream ---------------------------------------------------------------------

function onStreamState(s) {
  if (s === "live") {
    // after a drop, events may have been missed: reload what is on screen
    if (state.streamEverLive && state.route.name === "queue") loadQueue();
    state.streamEverLive = true;
  }
  setLive(s);
}

function setLive(s) {
  $("live").dataset.state = s;
  $("live-text").textContent = { live: "live", connecting: "connecting…", reconnecting: "reconnecting…", off: "offline" }[s] || s;
}

function onStreamEvent(msg) {
  let parsed;
  try {
    parsed = JSON.parse(msg.data);
  } catch {
    return;
  }
  const alert = parsed && parsed.alert;
  if (!alert || !alert.alert_id) return;
  const known = state.alerts.has(alert.alert_id);
  if (matchesFilters(alert)) {
    state.alerts.set(alert.alert_id, alert);
    if (!known || parsed.event === "created") flash(alert.alert_id);
  } else if (known) {
    // e.g. confirmed while the queue shows open ones
    if (alert.alert_id === state.selectedId) state.gap = state.order.indexOf(alert.alert_id);
    state.alerts.delete(alert.alert_id);
  } else {
    return;
  }
  sortQueue();
  if (state.route.name === "queue") renderRows();
  if (state.route.name === "alert" && state.detail && state.detail.alert_id === alert.alert_id
      && parsed.event === "updated" && !state.panel) {
    openAlert(alert.alert_id, { quiet: true });
  }
}

function flash(id) {
  state.fresh.add(id);
  setTimeout(() => {
    state.fresh.delete(id);
    const row = document.querySelector(`tr[data-alert-id="${CSS.escape(id)}"]`);
    if (row) row.classList.remove("fresh");
  }, 4000);
}

function matchesFilters(a) {
  const f = state.filters;
  if (f.status === "review" && !["open", "acknowledged"].includes(a.status)) return false;
  if (f.status && f.status !== "review" && a.status !== f.status) return false;
  if (f.level && a.level !== f.level) return false;
  if (f.account && a.subject_id !== f.account && !a.members.includes(f.account)) return false;
  if (f.cluster && a.cluster_id !== f.cluster
      && !(a.subject_type === "cluster" && a.subject_id === f.cluster)) return false;
  return true;
}

// ---- routing -------------------------------------------------------------------------

function route() {
  if (!state.api) return;
  const parts = window.location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  closePanel();
  for (const a of document.querySelectorAll("[data-nav]")) a.classList.remove("active");
  if (parts[0] === "alerts" && parts[1]) {
    state.route = { name: "alert", id: parts[1] };
    navActive("queue");
    if (!state.order.length) loadQueue(); // so j/k work when a link opened the alert
    openAlert(parts[1]);
  } else if (parts[0] === "clusters" && parts[1]) {
    state.route = { name: "cluster", id: parts[1] };
    navActive("clusters");
    openCluster(parts[1]);
  } else if (parts[0] === "clusters") {
    state.route = { name: "clusters" };
    navActive("clusters");
    showClusters();
  } else {
    state.route = { name: "queue" };
    navActive("queue");
    showQueue();
  }
}

function navActive(name) {
  const a = document.querySelector(`[data-nav="${name}"]`);
  if (a) a.classList.add("active");
}

function go(hash) {
  if (window.location.hash === hash) route();
  else window.location.hash = hash;
}

// ---- queue ---------------------------------------------------------------------------

function showQueue() {
  const view = queueView(state.filters, {
    onFilter: (f) => { state.filters = f; loadQueue(); },
    onMore: loadMore,
  });
  $("view").replaceChildren(view);
  document.title = "Queue · distillguard";
  if (state.order.length) renderRows();
  loadQueue();
}

function statusesFor(filter) {
  return filter === "review" ? ["open", "acknowledged"] : [filter];
}

async function loadQueue() {
  const f = state.filters;
  const api = state.api;
  try {
    const pages = await Promise.all(statusesFor(f.status).map((status) => api.get("/v1/alerts", {
      status, level: f.level, account: f.account, cluster: f.cluster, limit: PAGE,
    }).then((page) => [status, page])));
    if (api !== state.api) return;
    state.alerts = new Map();
    state.cursors = {};
    for (const [status, page] of pages) {
      for (const a of page.items) state.alerts.set(a.alert_id, a);
      state.cursors[status] = page.next_cursor;
    }
    sortQueue();
    if (!state.selectedId || !state.alerts.has(state.selectedId)) state.selectedId = state.order[0] || null;
    if (state.route.name === "queue") renderRows();
  } catch (err) {
    showError(err);
  }
}

async function loadMore() {
  const f = state.filters;
  try {
    for (const [status, cursor] of Object.entries(state.cursors)) {
      if (!cursor) continue;
      const page = await state.api.get("/v1/alerts", {
        status, level: f.level, account: f.account, cluster: f.cluster, limit: PAGE, cursor,
      });
      for (const a of page.items) state.alerts.set(a.alert_id, a);
      state.cursors[status] = page.next_cursor;
    }
    sortQueue();
    renderRows();
  } catch (err) {
    showError(err);
  }
}

function sortQueue() {
  state.order = [...state.alerts.values()].sort((a, b) =>
    (LEVEL_RANK[a.level] - LEVEL_RANK[b.level])
    || (b.detected_at || b.created_at).localeCompare(a.detected_at || a.created_at)
    || b.created_at.localeCompare(a.created_at)
    || b.risk - a.risk).map((a) => a.alert_id);
}

function renderRows() {
  const body = $("queue-body");
  if (!body) return;
  const hadFocus = document.activeElement && document.activeElement.closest
    && document.activeElement.closest("#queue-body") !== null;
  if (state.selectedId && !state.alerts.has(state.selectedId)) state.selectedId = state.order[0] || null;
  if (!state.selectedId) state.selectedId = state.order[0] || null;
  body.replaceChildren(...state.order.map((id) => queueRow(state.alerts.get(id), {
    selected: id === state.selectedId,
    fresh: state.fresh.has(id),
    onOpen: (aid) => { state.selectedId = aid; go(`#/alerts/${encodeURIComponent(aid)}`); },
  })));
  $("queue-empty").hidden = state.order.length > 0;
  $("queue-count").textContent = `${state.order.length} alert${state.order.length === 1 ? "" : "s"}`;
  $("load-more").hidden = !Object.values(state.cursors).some(Boolean);
  if (hadFocus) focusSelected();
}

function focusSelected(scroll = true) {
  const row = document.querySelector("#queue-body tr.selected, #cluster-body tr.selected");
  if (row) {
    row.focus({ preventScroll: !scroll });
    if (scroll) row.scrollIntoView({ block: "nearest" });
  }
}

function moveSelection(step) {
  if (state.route.name === "cluster") return; // one cluster on screen: nothing to step through
  if (state.route.name === "clusters") {
    const n = state.clusters.length;
    if (!n) return;
    state.clusterIndex = Math.max(0, Math.min(n - 1, state.clusterIndex + step));
    showClusters(false);
    focusSelected();
    return;
  }
  if (!state.order.length) return;
  const i = state.order.indexOf(state.selectedId);
  const clamp = (n) => Math.max(0, Math.min(state.order.length - 1, n));
  // an alert just reviewed has left the queue: "next" is the one that took its place
  const next = i >= 0 ? clamp(i + step) : state.gap !== null ? clamp(step > 0 ? state.gap : state.gap - 1) : 0;
  state.gap = null;
  state.selectedId = state.order[next];
  if (state.route.name === "alert") {
    go(`#/alerts/${encodeURIComponent(state.selectedId)}`);
    return;
  }
  renderRows();
  focusSelected();
}

function refreshAges() {
  if (state.route.name === "queue") renderRows();
}

// ---- alert detail --------------------------------------------------------------------

async function openAlert(id, { quiet = false } = {}) {
  const api = state.api;
  if (!quiet) $("view").replaceChildren(h("p", { class: "loading muted" }, "Loading alert…"));
  try {
    const alert = await api.get(`/v1/alerts/${encodeURIComponent(id)}`);
    const clusterId = alert.subject_type === "cluster" ? alert.subject_id : alert.cluster_id;
    let cluster = null;
    if (clusterId) cluster = await api.get(`/v1/clusters/${encodeURIComponent(clusterId)}`).catch(() => null);
    if (api !== state.api || state.route.name !== "alert" || state.route.id !== id) return;
    // a background refresh must not wipe a form the analyst has started filling in
    if (quiet && state.panel) return;
    state.detail = alert;
    state.selectedId = id;
    renderAlert(alert, cluster);
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) {
      $("view").replaceChildren(h("div", { class: "card empty" }, `No alert ${id}. `,
        h("a", { href: "#/" }, "Back to the queue")));
    } else {
      showError(err);
    }
  }
}

function renderAlert(alert, cluster) {
  state.detailCluster = cluster;
  state.panel = null; // the action panel is rebuilt empty
  $("view").replaceChildren(alertView(alert, {
    signals: state.signals,
    cluster,
    handlers: {
      onAck: acknowledge,
      onVerdict: openVerdict,
      onSuppress: openSuppress,
      onCluster: (cid) => go(`#/clusters/${encodeURIComponent(cid)}`),
    },
  }));
  document.title = `${alert.subject_id} · distillguard`;
  $("main").focus({ preventScroll: true });
}

function afterChange(alert, message) {
  state.detail = alert;
  if (matchesFilters(alert)) {
    state.alerts.set(alert.alert_id, alert);
  } else if (state.alerts.has(alert.alert_id)) {
    state.gap = state.order.indexOf(alert.alert_id);
    state.alerts.delete(alert.alert_id);
  }
  sortQueue();
  closePanel();
  renderAlert(alert, state.detailCluster);
  toast(message);
}

async function acknowledge() {
  const a = state.detail;
  if (!a || a.status !== "open") return toast("Only an open alert can be acknowledged.", true);
  try {
    afterChange(await state.api.post(`/v1/alerts/${encodeURIComponent(a.alert_id)}/ack`, {}),
      "Acknowledged and assigned to you.");
  } catch (err) {
    showError(err);
  }
}

function openVerdict(verdict) {
  const a = state.detail;
  if (!a) return;
  if (!["open", "acknowledged"].includes(a.status)) return toast(`This alert is already ${a.status}.`, true);
  const confirm = verdict === "confirm";
  const note = h("input", {
    id: "verdict-note", type: "text", maxlength: "10000", autocomplete: "off",
    placeholder: confirm ? "Note (optional), Enter to confirm" : "Why is this benign? Enter to dismiss",
    "aria-label": confirm ? "Confirmation note" : "Dismissal note",
  });
  const error = h("span", { class: "error" });
  const submit = async () => {
    const text = note.value.trim();
    if (!confirm && !text) {
      error.textContent = "A dismissal needs a note: it teaches the detectors what benign looks like.";
      note.focus();
      return;
    }
    try {
      const updated = await state.api.post(`/v1/alerts/${encodeURIComponent(a.alert_id)}/review`,
        { label: verdict, note: text || null });
      afterChange(updated, confirm
        ? "Confirmed as a distiller: label sent to the detectors."
        : "Dismissed as benign: label sent to the detectors.");
    } catch (err) {
      error.textContent = describe(err);
    }
  };
  note.addEventListener("keydown", (e) => {
    if (e.key === "Enter") { e.preventDefault(); submit(); }
  });
  note.addEventListener("input", () => { error.textContent = ""; });
  showPanel(verdict, h("div", { class: `verdict verdict-${verdict}` },
    h("strong", {}, confirm ? "Confirm: this account is distilling" : "Dismiss: benign"),
    note,
    h("button", { type: "button", class: confirm ? "danger" : "primary", onclick: submit },
      confirm ? "Confirm" : "Dismiss"),
    h("button", { type: "button", class: "ghost", onclick: closePanel }, "Cancel ", h("kbd", {}, "Esc")),
    error));
  note.focus();
}

function openSuppress() {
  const a = state.detail;
  if (!a) return;
  const clusterId = a.subject_type === "cluster" ? a.subject_id : a.cluster_id;
  const options = [];
  if (a.subject_type === "account") options.push(["account", a.subject_id]);
  if (clusterId) options.push(["cluster", clusterId]);
  if (a.org_id) options.push(["org", a.org_id]);
  const scope = h("select", { id: "suppress-scope", "aria-label": "Scope" },
    options.map(([s, v], i) => h("option", { value: `${s}|${v}`, selected: i === 0 }, `${s}: ${v}`)));
  const expiry = h("select", { id: "suppress-expiry", "aria-label": "Expires" },
    [["1", "for 24 hours"], ["7", "for 7 days"], ["30", "for 30 days"], ["", "until removed"]]
      .map(([v, label]) => h("option", { value: v, selected: v === "7" }, label)));
  const reason = h("input", { id: "suppress-reason", type: "text", maxlength: "2000", autocomplete: "off",
                              placeholder: "Reason (known-good partner, test account…)", "aria-label": "Reason" });
  const error = h("span", { class: "error", role: "alert" });
  const submit = async () => {
    const [s, v] = scope.value.split("|");
    if (!reason.value.trim()) {
      error.textContent = "Give a reason: suppressions are audited.";
      reason.focus();
      return;
    }
    const days = Number(expiry.value);
    const body = { scope: s, value: v, reason: reason.value.trim() };
    if (days) body.expires_at = new Date(Date.now() + days * 86_400_000).toISOString();
    try {
      await state.api.post("/v1/suppressions", body);
      closePanel();
      toast(`Suppressed ${s} ${v}: no new alerts ${days ? `for ${expiry.selectedOptions[0].textContent.slice(4)}` : "until removed"}.`);
    } catch (err) {
      error.textContent = err instanceof ApiError && err.status === 403
        ? "Suppressing needs an admin key: this key's role may not create suppressions. Ask an admin."
        : describe(err);
    }
  };
  reason.addEventListener("keydown", (e) => {
    if (e.key === "Enter") { e.preventDefault(); submit(); }
  });
  reason.addEventListener("input", () => { error.textContent = ""; });
  showPanel("suppress", h("div", { class: "verdict verdict-suppress" },
    h("strong", {}, "Suppress new alerts about"), scope, expiry, reason,
    h("button", { type: "button", class: "primary", onclick: submit }, "Suppress"),
    h("button", { type: "button", class: "ghost", onclick: closePanel }, "Cancel ", h("kbd", {}, "Esc")),
    error));
  reason.focus();
}

function showPanel(name, content) {
  const panel = $("action-panel");
  if (!panel) return;
  state.panel = name;
  panel.replaceChildren(content);
  panel.hidden = false;
}

function closePanel() {
  state.panel = null;
  const panel = $("action-panel");
  if (panel) {
    panel.hidden = true;
    panel.replaceChildren();
  }
}

// ---- clusters ------------------------------------------------------------------------

async function showClusters(reload = true) {
  document.title = "Clusters · distillguard";
  const render = () => $("view").replaceChildren(clusterListView(state.clusters, state.clusterIndex,
    (cid) => go(`#/clusters/${encodeURIComponent(cid)}`)));
  render();
  if (!reload) return;
  try {
    const page = await state.api.get("/v1/clusters", { limit: 100 });
    state.clusters = page.items;
    state.clusterIndex = Math.min(state.clusterIndex, Math.max(0, state.clusters.length - 1));
    if (state.route.name === "clusters") render();
  } catch (err) {
    showError(err);
  }
}

async function openCluster(id) {
  const api = state.api;
  $("view").replaceChildren(h("p", { class: "loading muted" }, "Loading cluster…"));
  try {
    const [cluster, alerts, timeline] = await Promise.all([
      api.get(`/v1/clusters/${encodeURIComponent(id)}`),
      api.get("/v1/alerts", { cluster: id, limit: 50 }),
      // the page still shows the cluster if only its timeline fails
      api.get(`/v1/clusters/${encodeURIComponent(id)}/timeline`).catch(() => null),
    ]);
    if (api !== state.api || state.route.name !== "cluster" || state.route.id !== id) return;
    $("view").replaceChildren(clusterView(cluster, alerts.items, timeline, {
      onAccount: (account) => {
        state.filters = { status: "", level: "", account, cluster: "" };
        go("#/");
      },
    }));
    document.title = `Cluster ${id} · distillguard`;
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) {
      $("view").replaceChildren(h("div", { class: "card empty" }, `No cluster ${id}. `,
        h("a", { href: "#/clusters" }, "All clusters")));
    } else {
      showError(err);
    }
  }
}

// ---- keyboard ------------------------------------------------------------------------

function typing(target) {
  return target instanceof HTMLElement
    && (target.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName));
}

function onKey(e) {
  if (e.ctrlKey || e.metaKey || e.altKey) return;
  if (!$("help").hidden) {
    if (e.key === "Escape" || e.key === "?") { e.preventDefault(); toggleHelp(); }
    return;
  }
  if (!state.api) return;
  if (e.key === "Escape") {
    e.preventDefault();
    if (state.panel) { closePanel(); $("main").focus(); return; }
    if (typing(e.target)) { e.target.blur(); return; }
    if (state.route.name === "alert") go("#/");
    else if (state.route.name === "cluster") go("#/clusters");
    else if (state.route.name === "clusters") go("#/");
    return;
  }
  if (typing(e.target)) return;
  const r = state.route.name;
  const onList = r === "queue" || r === "clusters";
  switch (e.key) {
    case "?": toggleHelp(); break;
    case "j": case "ArrowDown": moveSelection(1); break;
    case "k": case "ArrowUp": moveSelection(-1); break;
    case "Enter":
      if (e.target instanceof HTMLButtonElement || e.target instanceof HTMLAnchorElement) return;
      if (r === "queue" && state.selectedId) go(`#/alerts/${encodeURIComponent(state.selectedId)}`);
      else if (r === "clusters" && state.clusters[state.clusterIndex]) {
        go(`#/clusters/${encodeURIComponent(state.clusters[state.clusterIndex].cluster_id)}`);
      } else return;
      break;
    case "a": if (r === "alert") acknowledge(); else return; break;
    case "c": if (r === "alert") openVerdict("confirm"); else return; break;
    case "d": if (r === "alert") openVerdict("dismiss"); else return; break;
    case "s": if (r === "alert") openSuppress(); else return; break;
    case "g": {
      const a = state.detail;
      const cid = a && (a.subject_type === "cluster" ? a.subject_id : a.cluster_id);
      if (r === "alert" && cid) go(`#/clusters/${encodeURIComponent(cid)}`);
      else return;
      break;
    }
    case "/":
      if (r !== "queue") go("#/");
      setTimeout(() => { const f = $("f-account"); if (f) f.focus(); }, 0);
      break;
    default: return;
  }
  if (onList || r === "alert" || r === "cluster") e.preventDefault();
}

function toggleHelp() {
  const help = $("help");
  help.hidden = !help.hidden;
}

// ---- messages ------------------------------------------------------------------------

function describe(err) {
  if (err instanceof ApiError) {
    if (err.status === 403) return "This key's role may not do that (403).";
    if (err.status === 409) return `Conflict: ${err.message}`;
    if (err.status === 429) return "Rate limited: wait a moment and retry.";
    if (err.status === 503) return "The alert store is unavailable: retry shortly.";
    return `${err.status}: ${err.message}`;
  }
  return `Network error: ${err.message}`;
}

function showError(err) {
  if (err instanceof ApiError && err.status === 401) return; // signed out already
  toast(describe(err), true);
}

let toastTimer = null;
function toast(message, isError = false) {
  const el = $("toast");
  el.textContent = message;
  el.className = `toast show${isError ? " toast-error" : ""}`;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { el.className = "toast"; }, 4500);
}

init();
