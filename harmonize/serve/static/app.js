// The harmonize review page: plain JavaScript over the JSON API under /api/.
// Every text from the workspace goes into the page as a text node (never as HTML).
"use strict";

const TOKEN = document.querySelector('meta[name="harmonize-token"]').content;
const state = {
  pair: null, rows: [], coverage: null, filter: "all", text: "", selected: null,
  hits: [], busy: false,
};
const $ = (id) => document.getElementById(id);

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function say(text, kind) {
  const box = $("message");
  box.textContent = text || "";
  box.className = kind || "";
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// One API call; a busy workspace (503: another harmonize process is writing) is retried.
async function api(method, path, body) {
  const options = { method, headers: { "X-Harmonize-Token": TOKEN } };
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  for (let attempt = 1; ; attempt++) {
    const response = await fetch(path, options);
    const data = await response.json().catch(() => ({ error: response.statusText }));
    if (response.status === 503 && attempt < 6) {
      say(`Workspace busy (${data.error}); retrying (${attempt} of 5)...`, "warn");
      await sleep(1000 * Number(response.headers.get("Retry-After") || 1));
      continue;
    }
    if (!response.ok) throw new Error(data.error || `HTTP ${response.status}`);
    return data;
  }
}

const fmt = (x) => (x === null || x === undefined ? "–" : Number(x).toFixed(3));
const certainty = (row) => {
  if (!row.target) return null;
  return row.target.confidence ?? row.target.score;
};
const threshold = () => Number($("threshold").value || 0);

function matches(row, f = state.filter) {
  if (f === "undecided" && row.status !== "undecided") return false;
  if (f === "decided" && !["accepted", "set", "rejected"].includes(row.status)) return false;
  if (f === "rejected" && row.status !== "rejected") return false;
  if (f === "low") {
    const c = certainty(row);
    if (c === null || c >= threshold()) return false;  // unmapped, or set by hand unranked
  }
  if (!state.text) return true;
  const hay = [row.code, row.description, ...(row.synonyms || [])];
  if (row.target) hay.push(row.target.code, row.target.description);
  return hay.some((t) => t && String(t).toLowerCase().includes(state.text));
}

const visible = () => state.rows.filter((row) => matches(row));

const PARTS = ["approved", "rejected", "undecided", "unmapped"];

// Coverage (the review helper's): per status the source concepts and their occurrences.
function renderCoverage() {
  const box = $("coverage");
  box.replaceChildren();
  const cov = state.coverage;
  if (!cov) return;
  const units = cov.counted ? ["concepts", "occurrences"] : ["concepts"];
  for (const unit of units) {
    const n = (part) => Number(cov.statuses[part][unit] || 0);
    const total = PARTS.reduce((sum, part) => sum + n(part), 0);
    const bar = el("div", { class: "bar" });
    for (const part of PARTS) {
      const seg = el("span", { class: `seg ${part}`, title: `${part}: ${n(part)}` });
      seg.style.width = `${total ? (100 * n(part)) / total : 0}%`;
      bar.append(seg);
    }
    box.append(el("div", { class: "cov", dataset: { unit } },
      el("strong", {}, unit), bar,
      el("span", {}, `${total} · `,
        el("b", { class: "approved-text" }, `${n("approved")} approved`), " · ",
        el("b", { class: "rejected-text" }, `${n("rejected")} rejected`), " · ",
        `${n("undecided")} undecided · ${n("unmapped")} unmapped`)));
  }
  box.append(el("div", { class: "cov", dataset: { unit: "mapped" } },
    `${(100 * cov.mapped_share).toFixed(1)}% mapped`, el("small", {}, cov.counted ? " (of occurrences)" : " (of concepts)")));
}

// What a vocabulary target adds: the synonym the match was on, the 'Maps to' it came
// through, its vocabulary, domain and class, and its own synonyms.
function targetNotes(t) {
  const notes = [];
  if (t.matched_text) notes.push(`matched “${t.matched_text}”`);
  if (t.via_code) notes.push(`via ${t.via_code} (Maps to)`);
  const omop = [t.target_concept_code, t.target_vocabulary, t.target_domain, t.target_class].filter(Boolean);
  if (omop.length) notes.push(omop.join(" "));
  if (t.synonyms && t.synonyms.length) notes.push(`synonyms: ${t.synonyms.join("; ")}`);
  return notes.join(" · ");
}

function decisionCell(row) {
  const d = row.decision;
  if (!d) return el("span", { class: "badge undecided" }, "undecided");
  return el("span", {},
    el("span", { class: `badge ${row.status}` }, row.status),
    el("small", {}, ` ${d.reviewer} · ${d.decided_at}`));
}

function renderTable() {
  const body = document.querySelector("#queue tbody");
  const rows = visible();
  body.replaceChildren(...rows.map((row, i) => {
    const next = row.candidates.filter((c) => !row.target || c.code !== row.target.code).slice(0, 2);
    const extra = [];
    if (row.parent) extra.push(`parent ${row.parent.code}${row.parent.description ? " " + row.parent.description : ""}`);
    if (row.synonyms.length) extra.push(`synonyms: ${row.synonyms.join("; ")}`);
    const tr = el("tr", {
      dataset: { code: row.code, status: row.status },
      class: row.code === state.selected ? "selected" : null,
      onclick: () => select(row.code),
    },
    el("td", { class: "num" }, i + 1),
    el("td", { class: "code" }, row.code),
    el("td", {}, row.description, extra.length ? el("div", { class: "sub" }, extra.join(" · ")) : null),
    el("td", { class: "num" }, row.occurrences ?? "", row.frequency !== null ? el("div", { class: "sub" }, `freq ${row.frequency}`) : null),
    el("td", { class: "target" }, row.target
      ? [el("span", { class: "code" }, row.target.code), " ", row.target.description,
        targetNotes(row.target) ? el("div", { class: "sub" }, targetNotes(row.target)) : null]
      : el("i", {}, "no mapping")),
    el("td", { class: "num" }, row.target ? fmt(row.target.score) : ""),
    el("td", { class: "num" }, row.target && row.target.confidence !== null ? fmt(row.target.confidence) : "–"),
    el("td", { class: "sub" }, next.map((c) => el("div", {}, `${c.code} ${c.description ?? ""} (${fmt(c.score)})`))),
    el("td", {}, decisionCell(row)));
    return tr;
  }));
  $("bulk-accept").textContent = `Accept ${bulkRows().length} visible ≥ ${threshold()}`;
  for (const b of document.querySelectorAll("#filters button")) {
    const n = state.rows.filter((r) => matches(r, b.dataset.filter)).length;
    b.classList.toggle("active", b.dataset.filter === state.filter);
    b.textContent = `${b.dataset.label || (b.dataset.label = b.textContent)} (${n})`;
  }
}

function selectedRow() {
  return state.rows.find((r) => r.code === state.selected) || null;
}

function select(code, focusTable) {
  state.selected = code;
  state.hits = [];
  for (const tr of document.querySelectorAll("#queue tbody tr")) {
    tr.classList.toggle("selected", tr.dataset.code === code);
    if (tr.dataset.code === code) tr.scrollIntoView({ block: "nearest" });
  }
  renderDetail();
  if (focusTable && document.activeElement) document.activeElement.blur();
}

function move(step) {
  const rows = visible();
  if (!rows.length) return;
  const i = rows.findIndex((r) => r.code === state.selected);
  const j = i < 0 ? 0 : Math.min(rows.length - 1, Math.max(0, i + step));
  select(rows[j].code);
}

function hitList(hits, row) {
  return el("ul", { class: "hits" }, hits.map((h, i) => el("li", {},
    el("button", { type: "button", class: "set", dataset: { code: h.code },
      title: i === 0 ? "Enter in the search box sets this one" : null,
      onclick: () => decide("set", h.code) }, "Set"),
    " ", el("span", { class: "code" }, h.code), " ", h.description ?? "",
    h.matched_synonym ? el("small", {}, ` (synonym “${h.matched_synonym}”)`) : null,
    h.score !== undefined ? el("small", {}, ` (${fmt(h.score)})`) : null,
    row.target && row.target.code === h.code ? el("small", {}, " · chosen") : null)));
}

function renderDetail() {
  const box = $("detail");
  const row = selectedRow();
  if (!row) { box.replaceChildren(el("p", {}, "Select a row.")); return; }
  const d = row.decision;
  const keepPredicate = $("predicate") ? $("predicate").value : "";
  box.replaceChildren(...[
    el("h2", {}, el("span", { class: "code" }, row.code), " ", row.description),
    el("p", { class: "sub" },
      row.occurrences !== null ? `${row.occurrences} occurrences` : "no occurrences counted",
      row.frequency !== null ? ` · frequency ${row.frequency}` : "",
      row.parent ? ` · parent ${row.parent.code} ${row.parent.description ?? ""}` : ""),
    row.synonyms.length ? el("p", { class: "sub" }, `Synonyms: ${row.synonyms.join("; ")}`) : null,
    el("p", { id: "current" }, d
      ? [el("span", { class: `badge ${row.status}` }, row.status), ` ${d.target_code ?? ""} by ${d.reviewer} at ${d.decided_at}`,
        d.predicate ? ` as ${d.predicate}` : "", d.note ? el("span", { class: "note" }, ` — ${d.note}`) : null]
      : "Nobody has decided on this mapping yet."),
    el("h3", {}, "Chosen target"),
    row.target
      ? el("p", {}, el("span", { class: "code" }, row.target.code), " ", row.target.description ?? "",
        el("small", {}, ` score ${fmt(row.target.score)} · confidence ${fmt(row.target.confidence)} · ${row.target.predicate ?? "no predicate"} · ${row.target.method}`),
        targetNotes(row.target) ? el("div", { class: "sub", id: "target-notes" }, targetNotes(row.target)) : null)
      : el("p", {}, el("i", {}, "none")),
    el("div", { class: "form" },
      el("label", {}, "Predicate ", el("select", { id: "predicate" },
        ["", "exact", "close", "broad", "narrow", "related"].map((p) =>
          el("option", { value: p }, p || "(keep / none)")))),
      el("label", {}, "Note ", el("input", { id: "note", size: 28, autocomplete: "off" }))),
    el("div", { class: "actions" },
      el("button", { type: "button", id: "accept", disabled: !row.target, onclick: () => decide("accept") }, "Accept (a)"),
      el("button", { type: "button", id: "reject", disabled: !row.target, onclick: () => decide("reject") }, "Reject (r)"),
      el("button", { type: "button", id: "next", onclick: () => move(1) }, "Next (j)")),
    el("h3", {}, "Candidates"),
    row.candidates.length ? hitList(row.candidates, row) : el("p", {}, el("i", {}, "none stored")),
    el("h3", {}, `Search ${state.pair.target}`),
    el("input", { id: "search", type: "search", placeholder: "code or description (s)", autocomplete: "off",
      oninput: onSearch, onkeydown: onSearchKey }),
    el("div", { id: "hits" }, hitList(state.hits, row))].filter(Boolean));
  $("predicate").value = keepPredicate;
}

let searchSeq = 0;
async function onSearch(event) {
  const q = event.target.value.trim();
  const seq = ++searchSeq;
  if (!q) { state.hits = []; $("hits").replaceChildren(); return; }
  try {
    const params = new URLSearchParams({ site: state.pair.target, q });
    const data = await api("GET", `/api/search?${params}`);
    if (seq !== searchSeq) return;
    state.hits = data.hits;
    $("hits").replaceChildren(hitList(state.hits, selectedRow()));
  } catch (err) { say(err.message, "error"); }
}

function onSearchKey(event) {
  if (event.key === "Enter" && state.hits.length) {
    event.preventDefault();
    decide("set", state.hits[0].code);
  }
}

// Records one decision, updates its row in place and moves on to the next visible row.
async function decide(action, targetCode) {
  const row = selectedRow();
  if (!row || state.busy) return;
  const before = visible().map((r) => r.code);
  const body = {
    source: state.pair.source, target: state.pair.target, code: row.code, action,
    reviewer: $("reviewer").value.trim() || null, note: $("note").value.trim() || null,
  };
  if (action === "set") body.target_code = targetCode;
  if (action !== "reject" && $("predicate").value) body.predicate = $("predicate").value;
  state.busy = true;
  try {
    const data = await api("POST", "/api/decisions", body);
    state.rows = state.rows.map((r) => (r.code === row.code ? data.row : r));
    state.coverage = data.coverage;
    say(data.message, "ok");
    $("predicate").value = "";
    const after = visible().map((r) => r.code);
    const i = before.indexOf(row.code);
    const next = before.slice(i + 1).find((c) => after.includes(c)) || after[Math.min(i, after.length - 1)];
    renderCoverage();
    renderTable();
    select(next ?? row.code, true);
  } catch (err) {
    say(err.message, "error");
  } finally {
    state.busy = false;
  }
}

function bulkRows() {
  const t = threshold();
  return visible().filter((r) => r.status === "undecided" && r.target && certainty(r) !== null && certainty(r) >= t);
}

async function bulkAccept() {
  const rows = bulkRows();
  if (!rows.length) { say("No visible undecided row at or above the confidence threshold.", "warn"); return; }
  try {
    const data = await api("POST", "/api/decisions/bulk", {
      source: state.pair.source, target: state.pair.target, codes: rows.map((r) => r.code),
      reviewer: $("reviewer").value.trim() || null, order: $("order").value,
    });
    state.rows = data.rows;
    state.coverage = data.coverage;
    say(`Accepted ${data.accepted} mappings.`, "ok");
    renderCoverage();
    renderTable();
    renderDetail();
  } catch (err) { say(err.message, "error"); }
}

async function loadPair() {
  const [source, target] = $("pair").value.split("\u0000");
  state.pair = { source, target };
  history.replaceState(null, "", `#${new URLSearchParams({ source, target })}`);
  try {
    const params = new URLSearchParams({ source, target, order: $("order").value });
    const data = await api("GET", `/api/review?${params}`);
    state.rows = data.rows;
    state.coverage = data.coverage;
    state.selected = null;
    renderCoverage();
    renderTable();
    move(0);
    say(`${data.rows.length} mappings of ${source} onto ${target}.`);
  } catch (err) { say(err.message, "error"); }
}

async function init() {
  $("reviewer").value = document.querySelector('meta[name="harmonize-reviewer"]').content;
  try {
    const { pairs } = await api("GET", "/api/pairs");
    if (!pairs.length) { say("No mappings yet: run 'harmonize map' first.", "warn"); return; }
    $("pair").replaceChildren(...pairs.map((p) =>
      el("option", { value: `${p.source}\u0000${p.target}` }, `${p.source} → ${p.target} (${p.n_mapped} mapped)`)));
    // The pair named in the address (#source=S&target=T), else the one with most mappings.
    const wanted = new URLSearchParams(location.hash.slice(1));
    const named = pairs.find((p) => p.source === wanted.get("source") && p.target === wanted.get("target"));
    const pick = named || pairs.reduce((a, b) => (b.n_mapped > a.n_mapped ? b : a));
    $("pair").value = `${pick.source}\u0000${pick.target}`;
  } catch (err) { say(err.message, "error"); return; }
  $("pair").addEventListener("change", loadPair);
  $("order").addEventListener("change", loadPair);
  for (const b of document.querySelectorAll("#filters button")) {
    b.addEventListener("click", () => { state.filter = b.dataset.filter; renderTable(); });
  }
  $("filter-text").addEventListener("input", (e) => { state.text = e.target.value.trim().toLowerCase(); renderTable(); });
  $("threshold").addEventListener("input", renderTable);
  $("bulk-accept").addEventListener("click", bulkAccept);
  document.addEventListener("keydown", onKey);
  await loadPair();
}

function onKey(event) {
  const typing = ["INPUT", "SELECT", "TEXTAREA"].includes(document.activeElement?.tagName);
  if (event.key === "Escape") { document.activeElement?.blur(); return; }
  if (typing || event.ctrlKey || event.metaKey || event.altKey) return;
  const keys = {
    a: () => decide("accept"), r: () => decide("reject"),
    j: () => move(1), ArrowDown: () => move(1), k: () => move(-1), ArrowUp: () => move(-1),
    s: () => $("search")?.focus(), n: () => $("note")?.focus(), "/": () => $("filter-text").focus(),
  };
  const row = selectedRow();
  if (/^[1-9]$/.test(event.key) && row && row.candidates[Number(event.key) - 1]) {
    event.preventDefault();  // 1-9: set the candidate of that rank
    decide("set", row.candidates[Number(event.key) - 1].code);
    return;
  }
  if (keys[event.key]) { event.preventDefault(); keys[event.key](); }
}

document.addEventListener("DOMContentLoaded", init);
