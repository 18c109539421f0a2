// orch web UI: actions, live updates, the lineage graph, log streaming. No dependencies.
"use strict";

// Script errors, failed loads and blocked content, for people (the console) and for the
// browser tests (which require it to stay empty).
window.orchErrors = [];
addEventListener("error", (e) => {
  window.orchErrors.push(e.message || `failed to load ${e.target?.src || e.target?.href || e.target?.tagName}`);
}, true);
addEventListener("unhandledrejection", (e) => window.orchErrors.push(String(e.reason)));
document.addEventListener("securitypolicyviolation", (e) => {
  window.orchErrors.push(`blocked by the content security policy: ${e.violatedDirective} ${e.blockedURI}`);
});

const csrf = () => document.querySelector('meta[name="csrf"]')?.content || "";

function toast(text, bad) {
  const box = document.getElementById("toast");
  if (!box) return;
  const msg = document.createElement("div");
  msg.className = "msg" + (bad ? " bad" : "");
  msg.textContent = text;
  box.appendChild(msg);
  setTimeout(() => msg.remove(), bad ? 9000 : 4000);
}

async function post(url, body, retried) {
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", "x-orch-csrf": csrf() },
    body: JSON.stringify(body ?? {}),
  });
  let data = {};
  try { data = await response.json(); } catch (_) { /* empty body */ }
  if (response.status === 403 && !retried && /CSRF/.test(data.error || "")) {
    // The server restarted since this page loaded: take its new token and try once more.
    const session = await (await fetch("/api/session")).json();
    document.querySelector('meta[name="csrf"]').content = session.csrf;
    return post(url, body, true);
  }
  if (!response.ok) throw new Error(data.error || `${response.status} ${response.statusText}`);
  return data;
}

function localTimes(root) {
  for (const t of root.querySelectorAll("time[datetime]")) {
    const d = new Date(t.getAttribute("datetime"));
    if (!isNaN(d)) { t.title = t.getAttribute("datetime"); t.textContent = d.toLocaleString(); }
  }
}

// ---- selection (asset list and graph) ----
const selected = new Set();

function selectionChanged() {
  for (const b of document.querySelectorAll('[data-action="materialize-selected"]')) {
    b.disabled = selected.size === 0;
    b.textContent = selected.size ? `Materialize selected (${selected.size})` : "Materialize selected";
  }
  for (const box of document.querySelectorAll("input.pick")) box.checked = selected.has(box.value);
  for (const n of document.querySelectorAll(".node")) n.classList.toggle("selected", selected.has(n.dataset.key));
}

function toggleSelected(key) {
  if (selected.has(key)) selected.delete(key); else selected.add(key);
  selectionChanged();
}

// ---- actions ----
async function runAction(button) {
  if (button.dataset.confirm && !confirm(button.dataset.confirm)) return;
  button.disabled = true;
  try {
    const body = button.dataset.body ? JSON.parse(button.dataset.body) : {};
    const data = await post(button.dataset.post, body);
    if (button.dataset.go === "run" && data.run_id) { location.href = `/runs/${data.run_id}`; return; }
    if (button.dataset.show === "preview") {
      const pre = button.closest("article")?.querySelector("pre.preview");
      if (pre) {
        pre.hidden = false;
        pre.textContent = data.decision === "run"
          ? `Tick ${data.tick} would run (nothing launched):\n\n` + data.runs.map((r) => r.plan).join("\n")
          : `Tick ${data.tick ?? "none"}: ${data.decision}${data.reason ? ": " + data.reason : ""}`;
      }
      return;
    }
    const what = data.outcome || data.status || (data.paused !== undefined ? (data.paused ? "paused" : "resumed") : "done");
    toast(`${what}${data.runs && data.runs.length ? ": " + data.runs.length + " run(s)" : ""}`);
    refresh();
  } catch (e) {
    toast(e.message, true);
  } finally {
    button.disabled = false;
  }
}

document.addEventListener("click", (event) => {
  const button = event.target.closest("button[data-post]");
  if (button) { event.preventDefault(); runAction(button); return; }
  const action = event.target.closest("[data-action]");
  if (!action) return;
  const what = action.dataset.action;
  if (what === "materialize-selected" && selected.size) {
    post("/api/materialize", { assets: [...selected] })
      .then((d) => { location.href = `/runs/${d.run_id}`; })
      .catch((e) => toast(e.message, true));
  } else if (graph && what === "expand-all") graph.setAll(false);
  else if (graph && what === "collapse-all") graph.setAll(true);
  else if (graph && what === "fit") graph.fit();
});

document.addEventListener("change", (event) => {
  const box = event.target;
  if (box.matches("input.pick")) {
    if (box.checked) selected.add(box.value); else selected.delete(box.value);
    selectionChanged();
  } else if (box.id === "pick-all") {
    for (const b of document.querySelectorAll("input.pick")) {
      if (box.checked) selected.add(b.value); else selected.delete(b.value);
    }
    selectionChanged();
  }
});

document.addEventListener("submit", async (event) => {
  const form = event.target;
  if (form.matches("form.backfill")) {
    event.preventDefault();
    const f = new FormData(form);
    try {
      const d = await post("/api/backfill", { asset: form.dataset.asset, from: f.get("from"), to: f.get("to") });
      toast(`backfill ${d.backfill_id}: ${d.runs.length} run(s) queued`);
      if (d.runs.length === 1) location.href = `/runs/${d.runs[0]}`;
    } catch (e) { toast(e.message, true); }
  } else if (form.matches("form.launch")) {
    event.preventDefault();
    const tags = {};
    for (const pair of (new FormData(form).get("tags") || "").split(",")) {
      const [k, ...v] = pair.split("=");
      if (k.trim()) tags[k.trim()] = v.join("=").trim();
    }
    const body = { tags };
    const config = new FormData(form).get("config");
    if (config && config.trim()) body.config = config;
    try {
      const d = await post(`/api/jobs/${form.dataset.job}/launch`, body);
      location.href = `/runs/${d.run_id}`;
    } catch (e) { toast(e.message, true); }
  }
});

// ---- live updates: refetch the page and swap what changed ----
let refreshing = null;
let again = false;

// The refreshed part of the page as the server last sent it (before times were localised),
// so a refresh that changes nothing swaps nothing.
let served = null;
const refreshTarget = () => document.querySelector("[data-refresh]")?.dataset.refresh || "#main";

// Whether someone is typing in `root` (a swap would throw their input away).
function editing(root) {
  const a = document.activeElement;
  return !!a && root.contains(a) && /^(INPUT|TEXTAREA|SELECT)$/.test(a.tagName) && a.type !== "checkbox";
}

async function refresh() {
  if (refreshing) { again = true; return; }
  refreshing = (async () => {
    try {
      // A graph updates its nodes' classes; the lineage page needs nothing else (and is
      // large), a job's page also refreshes its runs.
      if (graph) await graph.updateStatus();
      if (graph && !document.querySelector("[data-refresh]")) return;
      // A stuck request must not stop every later refresh.
      const response = await fetch(location.href, {
        headers: { accept: "text/html" },
        signal: AbortSignal.timeout(10000),
      });
      if (!response.ok) return;
      const doc = new DOMParser().parseFromString(await response.text(), "text/html");
      const target = refreshTarget();
      const fresh = doc.querySelector(target);
      const old = document.querySelector(target);
      if (!fresh || !old || fresh.innerHTML === served) return;
      if (editing(old)) { setTimeout(soon, 1000); return; }
      // What the person opened or asked for stays: open <details>, previews shown.
      const open = [...old.querySelectorAll("details")].map((d) => d.open);
      const previews = new Map([...old.querySelectorAll("article[id] pre.preview:not([hidden])")]
        .map((p) => [p.closest("article").id, p.textContent]));
      served = fresh.innerHTML;
      old.innerHTML = fresh.innerHTML;
      old.querySelectorAll("details").forEach((d, i) => { if (open[i]) d.open = true; });
      for (const [id, text] of previews) {
        const p = document.getElementById(id)?.querySelector("pre.preview");
        if (p) { p.hidden = false; p.textContent = text; }
      }
      localTimes(old);
      selectionChanged();
    } catch (_) { /* next change retries */ }
  })();
  await refreshing;
  refreshing = null;
  if (again) { again = false; refresh(); }
}

// At most one refresh per quarter second however fast events come (a busy run records
// thousands), and always one after the last of them.
let pending = null;
function soon() {
  if (!pending) pending = setTimeout(() => { pending = null; refresh(); }, 250);
}

// Event streams are closed when the page is left: a browser allows six connections to one
// host, and a page kept in its back/forward cache would hold its stream open. A page shown
// again from that cache reloads (its data is old).
const streams = [];
function stream(url) {
  const source = new EventSource(url);
  streams.push(source);
  return source;
}
addEventListener("pagehide", () => { for (const s of streams.splice(0)) s.close(); });
addEventListener("pageshow", (e) => { if (e.persisted) location.reload(); });

function follow() {
  if (!document.body.dataset.live) return;
  const source = stream("/api/events");
  const conn = document.getElementById("conn");
  source.onopen = () => conn?.classList.add("live");
  source.onerror = () => conn?.classList.remove("live");
  source.addEventListener("change", soon);
  // Ticks that launch nothing and the daemon's heartbeat record no run event: these pages
  // also look again every few seconds.
  const tab = document.body.dataset.tab;
  if (tab === "schedules" || tab === "overview") setInterval(soon, 5000);
}

// ---- the run page: logs and events stream in ----
const MAX_LINES = 5000;

function logSpan(l) {
  const line = document.createElement("span");
  line.className = "line";
  line.dataset.id = l.id;
  const t = document.createElement("span"); t.className = "t"; t.textContent = l.at;
  const lv = document.createElement("span"); lv.className = `lv lv-${l.level.toLowerCase()}`; lv.textContent = l.level;
  const a = document.createElement("span"); a.className = "a"; a.textContent = l.asset;
  line.append(t, " ", lv, " ", a, " ", l.message + "\n");
  return line;
}

function runPage() {
  const logs = document.getElementById("logs");
  if (!logs) return;
  const followBox = document.getElementById("follow");
  const stick = () => { if (followBox?.checked) logs.scrollTop = logs.scrollHeight; };
  stick();
  const older = document.getElementById("older-logs");
  older?.addEventListener("click", async () => {
    const r = await fetch(`/api/runs/${logs.dataset.run}/logs?before=${older.dataset.before}&limit=500`);
    const lines = await r.json();
    const first = logs.firstChild;
    for (const l of lines) logs.insertBefore(logSpan(l), first);
    if (lines.length < 500) older.remove(); else older.dataset.before = lines[0].id;
  });
  if (logs.dataset.finished) return;
  const conn = document.getElementById("conn");
  const source = stream(`/api/runs/${logs.dataset.run}/stream?after=${logs.dataset.seq}-${logs.dataset.log}`);
  source.onopen = () => conn?.classList.add("live");
  source.onerror = () => conn?.classList.remove("live");
  source.addEventListener("log", (m) => {
    logs.appendChild(logSpan(JSON.parse(m.data)));
    while (logs.childElementCount > MAX_LINES) logs.firstElementChild.remove();
    stick();
  });
  source.addEventListener("event", (m) => {
    const e = JSON.parse(m.data);
    const body = document.querySelector("#events tbody");
    if (body && !body.querySelector(`tr[data-seq="${e.seq}"]`)) {
      const tr = document.createElement("tr");
      tr.dataset.seq = e.seq;
      for (const text of [new Date(e.at).toLocaleString(), (e.asset || "") + (e.partition ? ` [${e.partition}]` : ""), e.kind, e.message]) {
        const td = document.createElement("td"); td.textContent = text; tr.appendChild(td);
      }
      body.appendChild(tr);
    }
    soon();
  });
  source.addEventListener("end", () => { source.close(); conn?.classList.remove("live"); refresh(); });
}

// ---- the lineage graph ----
let graph = null;

function lineage() {
  const box = document.getElementById("graph");
  const svg = box?.querySelector("svg");
  if (!svg) return null;
  const full = { w: +svg.dataset.width, h: +svg.dataset.height };
  let view = { x: 0, y: 0, w: full.w, h: full.h };
  const apply = () => svg.setAttribute("viewBox", `${view.x} ${view.y} ${view.w} ${view.h}`);
  const groups = [...svg.querySelectorAll(".group")];
  // What is drawn so far (a collapsed group's members arrive when it opens), indexed.
  let nodes = [], edges = [], byIndex = new Map(), byKey = new Map(), up = new Map(), down = new Map();
  function index() {
    nodes = [...svg.querySelectorAll(".node")];
    edges = [...svg.querySelectorAll(".edges path")];
    byIndex = new Map(nodes.map((n) => [+n.dataset.i, n]));
    byKey = new Map(nodes.map((n) => [n.dataset.key, n]));
    up = new Map(); down = new Map();
    for (const e of edges) {
      (up.get(+e.dataset.b) ?? up.set(+e.dataset.b, []).get(+e.dataset.b)).push(e);
      (down.get(+e.dataset.a) ?? down.set(+e.dataset.a, []).get(+e.dataset.a)).push(e);
    }
  }

  // Fetches a lazy group's members and edges and draws them (each edge once).
  async function load(group) {
    if (!group.dataset.lazy) return;
    delete group.dataset.lazy;
    const response = await fetch(`/api/graph/groups/${group.dataset.g}`);
    if (!response.ok) { group.dataset.lazy = "1"; throw new Error(`group ${group.dataset.name}: ${response.status}`); }
    const part = new DOMParser().parseFromString(await response.text(), "image/svg+xml");
    const drawn = new Set(edges.map((e) => `${e.dataset.a}-${e.dataset.b}`));
    const layer = (name) => svg.querySelector(`.viewport > .${name}`);
    for (const e of part.querySelectorAll(".edges path")) {
      const id = `${e.dataset.a}-${e.dataset.b}`;
      if (!drawn.has(id)) { drawn.add(id); layer("edges").appendChild(document.importNode(e, true)); }
    }
    for (const n of part.querySelectorAll(".node")) layer("nodes").appendChild(document.importNode(n, true));
    index();
  }

  function fit() {
    const r = box.getBoundingClientRect();
    // Never larger than life: a small graph sits in the middle at its own size.
    const scale = Math.max(full.w / r.width, full.h / r.height, 1);
    view = { w: r.width * scale, h: r.height * scale, x: 0, y: 0 };
    view.x = (full.w - view.w) / 2; view.y = (full.h - view.h) / 2;
    apply();
  }

  function layoutCollapsed() {
    const collapsed = new Set(groups.filter((g) => g.classList.contains("collapsed")).map((g) => g.dataset.g));
    for (const n of nodes) n.classList.toggle("hidden", collapsed.has(n.dataset.g));
    for (const e of edges) e.classList.toggle("hidden", collapsed.has(e.dataset.ga) || collapsed.has(e.dataset.gb));
    for (const e of svg.querySelectorAll(".group-edges path")) {
      e.classList.toggle("shown", collapsed.has(e.dataset.a) || collapsed.has(e.dataset.b));
    }
  }

  async function setCollapsed(list, collapsed) {
    if (!collapsed) await Promise.all(list.map(load));
    for (const g of list) g.classList.toggle("collapsed", collapsed);
    layoutCollapsed();
    if (!collapsed) await updateStatus();
  }
  const toggle = (group) =>
    setCollapsed([group], !group.classList.contains("collapsed")).catch((e) => toast(e.message, true));

  function highlight(i) {
    box.classList.add("hovering");
    const seen = new Set([i]);
    for (const [adj, end] of [[up, "a"], [down, "b"]]) {
      const stack = [i];
      while (stack.length) {
        for (const e of adj.get(stack.pop()) ?? []) {
          e.classList.add("hl");
          const next = +e.dataset[end];
          if (!seen.has(next)) { seen.add(next); stack.push(next); }
        }
      }
    }
    for (const j of seen) byIndex.get(j)?.classList.add("hl");
  }
  function clearHighlight() {
    box.classList.remove("hovering");
    for (const el of svg.querySelectorAll(".hl")) el.classList.remove("hl");
  }

  svg.addEventListener("mouseover", (e) => { const n = e.target.closest(".node"); if (n) highlight(+n.dataset.i); });
  svg.addEventListener("mouseout", (e) => { if (e.target.closest(".node")) clearHighlight(); });
  svg.addEventListener("focusin", (e) => { const n = e.target.closest(".node"); if (n) highlight(+n.dataset.i); });
  svg.addEventListener("focusout", clearHighlight);

  let drag = null;
  let moved = false;
  svg.addEventListener("pointerdown", (e) => {
    drag = { x: e.clientX, y: e.clientY, view: { ...view } };
    moved = false;
  });
  svg.addEventListener("pointermove", (e) => {
    if (!drag) return;
    const dx = e.clientX - drag.x, dy = e.clientY - drag.y;
    if (!moved && Math.abs(dx) + Math.abs(dy) < 4) return;
    if (!moved) { moved = true; svg.setPointerCapture(e.pointerId); svg.classList.add("panning"); }
    const r = box.getBoundingClientRect();
    view.x = drag.view.x - dx * (view.w / r.width);
    view.y = drag.view.y - dy * (view.h / r.height);
    apply();
  });
  svg.addEventListener("pointerup", () => { drag = null; svg.classList.remove("panning"); });
  svg.addEventListener("wheel", (e) => {
    e.preventDefault();
    const r = box.getBoundingClientRect();
    const k = Math.exp(e.deltaY * 0.0015);
    const px = view.x + (e.clientX - r.left) / r.width * view.w;
    const py = view.y + (e.clientY - r.top) / r.height * view.h;
    view = { x: px - (px - view.x) * k, y: py - (py - view.y) * k, w: view.w * k, h: view.h * k };
    apply();
  }, { passive: false });

  function open(node, e) {
    if (e && (e.ctrlKey || e.metaKey || e.shiftKey)) toggleSelected(node.dataset.key);
    else if (box.dataset.nolink === undefined) location.href = `/assets/${node.dataset.key}`;
  }
  svg.addEventListener("click", (e) => {
    if (moved) return;
    const label = e.target.closest(".group-label");
    if (label) { toggle(label.parentNode); return; }
    const n = e.target.closest(".node");
    if (n) open(n, e);
  });
  svg.addEventListener("keydown", (e) => {
    const label = e.target.closest(".group-label");
    if (label && (e.key === "Enter" || e.key === " ")) {
      e.preventDefault(); toggle(label.parentNode); return;
    }
    const n = e.target.closest(".node");
    if (!n) return;
    if (e.key === "Enter") open(n, e);
    else if (e.key === " ") { e.preventDefault(); toggleSelected(n.dataset.key); }
  });

  const filter = document.getElementById("graph-filter");
  filter?.addEventListener("input", () => {
    const q = filter.value.trim().toLowerCase();
    for (const n of nodes) n.classList.toggle("match", q !== "" && n.dataset.key.toLowerCase().includes(q));
    const hit = q && nodes.find((n) => n.classList.contains("match"));
    const g = hit && groups.find((g) => g.dataset.g === hit.dataset.g);
    if (g?.classList.contains("collapsed")) toggle(g);
  });

  async function updateStatus() {
    try {
      const assets = await (await fetch("/api/assets", { signal: AbortSignal.timeout(10000) })).json();
      for (const a of assets) {
        const n = byKey.get(a.key);
        if (!n) continue;
        n.classList.remove("st-materialized", "st-failed", "st-running", "st-never");
        n.classList.add(`st-${a.status}`);
        n.classList.toggle("stale", !!a.stale);
        n.setAttribute("aria-label", `${a.key}: ${a.status}${a.stale ? ", stale" : ""}`);
      }
      box.dataset.ready = "1";
    } catch (_) { /* the next change retries */ }
  }

  index();
  layoutCollapsed();
  fit();
  updateStatus();
  return {
    fit, updateStatus,
    setAll(collapsed) { setCollapsed(groups, collapsed).catch((e) => toast(e.message, true)); },
  };
}

// ---- partition bar: a click fills the backfill range ----
document.addEventListener("click", (e) => {
  const rect = e.target.closest("svg.partitions rect");
  if (!rect) return;
  const form = document.querySelector("form.backfill");
  if (!form) return;
  form.querySelector('[name="from"]').value = rect.dataset.first;
  form.querySelector('[name="to"]').value = rect.dataset.last;
});

document.addEventListener("DOMContentLoaded", () => {
  served = document.querySelector(refreshTarget())?.innerHTML ?? null;
  localTimes(document);
  graph = lineage();
  runPage();
  follow();
  selectionChanged();
});
