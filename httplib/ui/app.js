// The dashboard: reads the scheduler's REST API from the browser and
// follows GET /v1/events. Plain script, no build step, nothing fetched from
// elsewhere. Every call carries "Authorization: Bearer <token>" when a token
// was entered (kept in sessionStorage for this tab only). The event stream
// is read with fetch rather than EventSource, which cannot send headers.
"use strict";

const TOKEN_KEY = "stateful.apiToken";
const MAX_EVENTS = 200;
const POLL_MS = 5000;

const state = {
  instances: new Map(), // name → instance with tasks, as GET returns it
  selected: "",
  lastEventId: "",
  feed: null, // AbortController of the current stream
  pending: new Set(), // instances to refresh after events
  pendingTimer: 0,
  gone: new Set(), // deleted, per the events: nothing to fetch
};

// ---- API ----

function token() {
  return sessionStorage.getItem(TOKEN_KEY) || "";
}

function headers(extra) {
  const h = Object.assign({ Accept: "application/json" }, extra || {});
  const t = token();
  if (t) h.Authorization = "Bearer " + t;
  return h;
}

async function api(path) {
  let resp;
  try {
    resp = await fetch(path, { headers: headers(), cache: "no-store" });
  } catch (e) {
    return { status: 0, body: { error: "the scheduler does not answer (" + e.message + ")" } };
  }
  let body = null;
  try {
    body = await resp.json();
  } catch (e) {
    body = null;
  }
  return { status: resp.status, body: body };
}

function describeFailure(r) {
  if (r.status === 401 || r.status === 403) {
    return (r.body && r.body.error ? r.body.error : "not allowed") + " — enter an API token above";
  }
  if (r.body && r.body.error) return r.status + ": " + r.body.error;
  return "HTTP " + r.status;
}

// ---- DOM helpers (text only: nothing from the API becomes markup) ----

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") e.className = v;
    else if (k.startsWith("data-")) e.setAttribute(k, v);
    else if (k === "title") e.title = v;
    else e.setAttribute(k, v);
  }
  for (const c of children) {
    if (c === undefined || c === null || c === "") continue;
    e.append(c instanceof Node ? c : String(c));
  }
  return e;
}

function badge(text, field) {
  return el("span", { class: "badge s-" + String(text).replace(/[^A-Za-z0-9_-]/g, ""), "data-field": field }, text);
}

function $(id) {
  return document.getElementById(id);
}

function clock(t) {
  const d = t ? new Date(t) : new Date();
  return isNaN(d) ? "" : d.toLocaleTimeString([], { hour12: false });
}

// ---- health ----

async function refreshHealth() {
  const r = await api("/v1/health");
  const h = $("health");
  const problems = $("problems");
  problems.replaceChildren();
  if (!r.body || !r.body.status) {
    h.replaceWith(Object.assign(badge(r.status === 401 || r.status === 403 ? "unauthorized" : "unreachable", "health"), { id: "health" }));
    problems.hidden = false;
    problems.append(describeFailure(r));
    return;
  }
  h.replaceWith(Object.assign(badge(r.body.status, "health"), { id: "health", title: "GET /v1/health" }));
  const rt = r.body.runtime;
  $("runtime").textContent = rt ? "runtime " + rt.configured + (rt.configured === "auto" ? " → " + rt.chosen : "") : "";
  $("runtime").title = rt && rt.reason ? rt.reason : "";
  const list = r.body.problems || [];
  problems.hidden = list.length === 0;
  for (const p of list) problems.append(el("div", {}, el("b", {}, p.component + ": "), p.message));
}

// ---- instances ----

async function refreshAll() {
  const r = await api("/v1/instances");
  if (r.status !== 200) {
    showAPIError(describeFailure(r));
    return;
  }
  showAPIError("");
  const names = new Set(r.body.map((i) => i.name));
  for (const name of [...state.instances.keys()]) {
    if (!names.has(name)) state.instances.delete(name);
  }
  await Promise.all(r.body.map((i) => loadInstance(i.name)));
  render();
}

async function loadInstance(name) {
  const r = await api("/v1/instances/" + encodeURIComponent(name));
  if (r.status === 200) state.instances.set(name, r.body);
  else if (r.status === 404) state.instances.delete(name);
  else showAPIError(describeFailure(r));
}

// refreshSoon reloads an instance shortly after its events: a burst of
// events (a failover writes several documents) costs one request.
function refreshSoon(name) {
  if (state.gone.has(name)) return;
  state.pending.add(name);
  if (state.pendingTimer) return;
  state.pendingTimer = setTimeout(async () => {
    const names = [...state.pending];
    state.pending.clear();
    state.pendingTimer = 0;
    await Promise.all(names.filter((n) => !state.gone.has(n)).map(loadInstance));
    render();
  }, 150);
}

function showAPIError(msg) {
  const e = $("api-error");
  e.textContent = msg;
  e.hidden = !msg;
}

function running(inst) {
  return (inst.tasks || []).filter((t) => t.state === "TASK_RUNNING").length;
}

function masterOf(inst) {
  if (inst.type === "C") return "peers";
  const m = (inst.tasks || []).find((t) => t.role === "master");
  return m ? m.name : inst.name + "-" + inst.master_ordinal;
}

function render() {
  const names = [...state.instances.keys()].sort();
  if (!state.instances.has(state.selected)) state.selected = names[0] || "";
  $("instance-count").textContent = names.length ? "(" + names.length + ")" : "";
  $("no-instances").hidden = names.length > 0;
  const body = $("instances").tBodies[0];
  body.replaceChildren(
    ...names.map((name) => {
      const inst = state.instances.get(name);
      const total = inst.masters + inst.slaves;
      const tr = el(
        "tr",
        { "data-instance": name, class: name === state.selected ? "selected" : "" },
        el("td", {}, el("b", {}, name)),
        el("td", {}, inst.type),
        el("td", { "data-field": "running" }, running(inst) + "/" + total + " running"),
        el("td", {}, badge(inst.status || "?", "status")),
        el("td", { "data-field": "master", class: "mono" }, masterOf(inst)),
        el("td", {}, inst.generation),
        el("td", { class: "muted" }, inst.message || ""),
      );
      tr.addEventListener("click", () => {
        state.selected = name;
        render();
      });
      return tr;
    }),
  );
  const inst = state.instances.get(state.selected);
  $("details").replaceChildren(inst ? details(inst) : "");
}

// Instance fields the page knows; any other one (plan progress, when the
// API has it) is shown as it comes.
const KNOWN = new Set([
  "name", "type", "masters", "slaves", "status", "generation", "spec", "master_ordinal",
  "message", "created_at", "updated_at", "tasks",
]);

function details(inst) {
  const spec = inst.spec || {};
  const box = el(
    "div",
    { class: "instance-detail", "data-detail": inst.name },
    el("h3", {}, inst.name + " ", badge(inst.status || "?")),
    el(
      "div",
      { class: "meta muted" },
      el("span", {}, "type " + inst.type + ", " + inst.masters + " master(s), " + inst.slaves + " slave(s)"),
      el("span", {}, "generation " + inst.generation),
      el("span", { class: "mono" }, [spec.image, spec.command].filter(Boolean).join(" · ")),
      el("span", {}, "cpu " + spec.cpu + ", mem " + spec.mem + " MB, disk " + spec.disk + " MB"),
      inst.created_at ? el("span", {}, "created " + new Date(inst.created_at).toLocaleString()) : "",
    ),
  );
  for (const [k, v] of Object.entries(inst)) {
    if (!KNOWN.has(k)) box.append(extra(k, v));
  }
  box.append(el("div", { class: "scroll" }, tasksTable(inst)));
  return box;
}

// extra renders a field the page does not know, e.g. a plan's progress:
// a bar for {done|completed, total}, else its keys and values.
function extra(name, v) {
  const wrap = el("div", { class: "extra", "data-extra": name }, el("h3", {}, name.replace(/_/g, " ")));
  if (v && typeof v === "object" && !Array.isArray(v)) {
    const done = v.done !== undefined ? v.done : v.completed;
    if (typeof done === "number" && typeof v.total === "number") {
      wrap.append(el("progress", { max: v.total, value: done }), " " + done + "/" + v.total);
    }
    const kv = el("div", { class: "kv" });
    for (const [k, x] of Object.entries(v)) {
      kv.append(el("span", { class: "muted" }, k), el("span", { class: "mono" }, typeof x === "object" ? JSON.stringify(x) : String(x)));
    }
    wrap.append(kv);
  } else {
    wrap.append(el("div", { class: "mono" }, typeof v === "object" ? JSON.stringify(v) : String(v)));
  }
  return wrap;
}

// Task fields the page shows in their own columns or leaves out (the
// scheduler's bookkeeping); any other one (a last failure, say, when the
// API has it) is shown under the task's message.
const KNOWN_TASK = new Set([
  "instance", "ordinal", "name", "role", "state", "healthy", "task_id", "attempt", "agent_id", "host",
  "ports", "stats", "message", "reason", "generation", "sticky_agent_id", "sticky_host", "queued_at",
  "unplaced", "updated_at", "prepared_attempt", "notified_attempt", "relaunch",
]);

function taskExtras(t) {
  const out = [];
  for (const [k, v] of Object.entries(t)) {
    if (KNOWN_TASK.has(k) || v === null || v === "" || v === undefined) continue;
    out.push(el("div", { class: "extra muted", "data-extra": k }, k.replace(/_/g, " ") + ": " + (typeof v === "object" ? JSON.stringify(v) : String(v))));
  }
  return out;
}

function tasksTable(inst) {
  const tasks = inst.tasks || [];
  return el(
    "table",
    { class: "tasks" },
    el("thead", {}, el("tr", {}, ...["Task", "Role", "State", "Health", "Where", "Attempt", "Last message", "Stats"].map((h) => el("th", {}, h)))),
    el(
      "tbody",
      {},
      ...tasks.map((t) => {
        const ports = Object.entries(t.ports || {}).map(([k, v]) => k + " " + v).join(", ");
        const where = t.host ? t.host + (ports ? " (" + ports + ")" : "") : t.sticky_host ? "(volume on " + t.sticky_host + ")" : "";
        const reason = t.reason ? el("div", { class: "reason muted", title: "Mesos reason" }, t.reason.replace(/^REASON_/, "").toLowerCase().replace(/_/g, " ")) : "";
        const stats = el("div", { class: "stats mono" });
        for (const k of Object.keys(t.stats || {}).sort()) stats.append(el("span", {}, k + "=" + t.stats[k]));
        return el(
          "tr",
          { "data-task": t.name, "data-role": t.role, "data-state": t.state },
          el("td", { class: "mono" }, t.name),
          el("td", { class: "role-" + t.role, "data-field": "role" }, t.role),
          el("td", {}, badge(t.state, "state")),
          t.state === "TASK_RUNNING"
            ? el("td", { class: t.healthy ? "health-yes" : "health-no", "data-field": "health" }, t.healthy ? "healthy" : "not healthy")
            : el("td", { class: "muted", "data-field": "health" }, "—"),
          el("td", { class: "mono" }, where),
          el("td", {}, t.attempt),
          el("td", { class: "message", "data-field": "message" }, t.message || "", reason,
            t.unplaced ? el("div", { class: "why", "data-field": "unplaced" }, "not placed: " + t.unplaced) : "",
            ...taskExtras(t)),
          el("td", {}, stats),
        );
      }),
    ),
  );
}

// ---- live events ----

function setFeed(status) {
  const b = $("feed-status");
  b.textContent = status;
  b.className = "badge s-" + status;
}

function summarize(ev) {
  const d = ev.details || {};
  switch (ev.type) {
    case "task.state":
      return (d.from ? d.from + " → " : "") + d.to + (d.host ? " on " + d.host : "") + (d.message ? " — " + d.message : "");
    case "instance.status":
      return d.from + " → " + d.to + (d.message ? " — " + d.message : "");
    case "instance.failover":
      return "master " + d.from_task + " → " + d.to_task;
    case "task.promoted":
    case "task.role":
      return d.from + " → " + d.to;
    case "task.health":
      return d.healthy ? "healthy" : "not healthy";
    default:
      return Object.keys(d).length ? JSON.stringify(d) : "";
  }
}

function showEvent(ev) {
  const li = el(
    "li",
    { "data-type": ev.type, "data-instance": ev.instance || "", class: "t-" + ev.type.replace(/\./g, "-") },
    el("span", { class: "time" }, clock(ev.time)),
    el("span", { class: "type" }, ev.type),
    " ",
    el("span", { class: "mono" }, ev.task || ev.instance || ""),
    el("div", { class: "details" }, summarize(ev)),
  );
  const list = $("events");
  list.prepend(li);
  while (list.children.length > MAX_EVENTS) list.lastElementChild.remove();
}

function handleBlock(block) {
  let id = "";
  const data = [];
  for (const line of block.split("\n")) {
    if (line === "" || line.startsWith(":")) continue;
    const i = line.indexOf(":");
    const field = i < 0 ? line : line.slice(0, i);
    let value = i < 0 ? "" : line.slice(i + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "id") id = value;
    else if (field === "data") data.push(value);
  }
  if (id) state.lastEventId = id;
  if (data.length === 0) return;
  let ev;
  try {
    ev = JSON.parse(data.join("\n"));
  } catch (e) {
    console.warn("unreadable event", id, e);
    return;
  }
  showEvent(ev);
  if (ev.type === "resync") {
    state.gone.clear();
    refreshAll();
  } else if (ev.type === "instance.deleted") {
    state.gone.add(ev.instance);
    state.instances.delete(ev.instance);
    render();
  } else if (ev.instance) {
    if (ev.type === "instance.created") state.gone.delete(ev.instance);
    refreshSoon(ev.instance);
  }
}

// pause waits ms, or less if signal is aborted (a new token was entered:
// try it at once rather than after the wait).
function pause(ms, signal) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => {
      clearTimeout(timer);
      resolve();
    }, { once: true });
  });
}

// followEvents reads GET /v1/events for as long as the page is open,
// reconnecting with the last event ID after an error or a drop.
async function followEvents() {
  let backoff = 1000;
  for (;;) {
    const ctrl = new AbortController();
    state.feed = ctrl;
    try {
      const h = headers({ Accept: "text/event-stream" });
      if (state.lastEventId) h["Last-Event-ID"] = state.lastEventId;
      const resp = await fetch("/v1/events", { headers: h, signal: ctrl.signal, cache: "no-store" });
      if (resp.status === 401 || resp.status === 403) {
        setFeed("unauthorized");
        await pause(5000, ctrl.signal);
        continue;
      }
      if (!resp.ok || !resp.body) throw new Error("HTTP " + resp.status);
      setFeed("live");
      backoff = 1000;
      // What happened while not connected is in the state, not the feed.
      refreshAll();
      const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += value.replace(/\r\n?/g, "\n");
        let i;
        while ((i = buf.indexOf("\n\n")) >= 0) {
          handleBlock(buf.slice(0, i));
          buf = buf.slice(i + 2);
        }
      }
    } catch (e) {
      if (ctrl.signal.aborted) continue; // a new token: reconnect at once
    }
    setFeed("reconnecting");
    await pause(backoff, ctrl.signal);
    backoff = Math.min(2 * backoff, 15000);
  }
}

// ---- start ----

function useToken(t) {
  if (t) sessionStorage.setItem(TOKEN_KEY, t);
  else sessionStorage.removeItem(TOKEN_KEY);
  $("token").value = "";
  $("token").placeholder = t ? "set (hidden)" : "none";
  if (state.feed) state.feed.abort();
  refreshHealth();
  refreshAll();
}

function start() {
  $("token").placeholder = token() ? "set (hidden)" : "none";
  $("token-form").addEventListener("submit", (e) => {
    e.preventDefault();
    useToken($("token").value.trim());
  });
  $("token-clear").addEventListener("click", () => useToken(""));
  refreshHealth();
  refreshAll();
  followEvents();
  setInterval(() => {
    refreshHealth();
    refreshAll();
  }, POLL_MS);
}

start();
