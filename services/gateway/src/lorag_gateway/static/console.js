// lorag console: vanilla JS over the gateway's /api; the token lives in localStorage.
"use strict";
const $ = (sel, root = document) => root.querySelector(sel);
const esc = (v) => String(v ?? "").replace(/[&<>"']/g, (c) =>
  ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
const view = () => $("#view");
const token = () => localStorage.getItem("lorag.token");
const fmtSecs = (s) => s == null ? "" : s < 90 ? `${Math.round(s)} s` : s < 5400 ? `${Math.round(s / 60)} min` : `${(s / 3600).toFixed(1)} h`;
let stopWatch = null;

class ApiError extends Error {
  constructor(status, detail) {
    super(typeof detail === "string" ? detail : (detail || []).map((e) => e.msg).join("; "));
    this.status = status; this.detail = detail;
  }
}

async function api(path, { method = "GET", body, form } = {}) {
  const headers = { Authorization: `Bearer ${token()}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(path, { method, headers, body: form || (body !== undefined ? JSON.stringify(body) : undefined) });
  const data = await res.json().catch(() => ({}));
  if (res.status === 401) { signOut(data.detail || "please sign in"); throw new ApiError(401, data.detail); }
  if (!res.ok) throw new ApiError(res.status, data.detail);
  return data;
}

// ---- sign in ---------------------------------------------------------------------------------
async function signIn(value) {
  localStorage.setItem("lorag.token", value);
  const me = await api("/api/me");
  $("#owner").textContent = `signed in as ${me.owner}`;
  $("#signin").hidden = true; $("#nav").hidden = false; $("#who").hidden = false;
  if (!location.hash || location.hash === "#/") location.hash = "#/new"; else route();
}
function signOut(message) {
  localStorage.removeItem("lorag.token");
  $("#signin").hidden = false; $("#nav").hidden = true; $("#who").hidden = true;
  view().innerHTML = "";
  $("#token-error").textContent = message || "";
  $("#token").focus();
}

// ---- routing ---------------------------------------------------------------------------------
const routes = [
  [/^#\/new$/, newJob], [/^#\/jobs$/, jobList], [/^#\/jobs\/([\w-]+)$/, watchJob],
  [/^#\/adapters$/, adapters], [/^#\/kbs$/, kbs], [/^#\/minions$/, minions],
];
function route() {
  if (!token()) return signOut();
  if (stopWatch) { stopWatch(); stopWatch = null; }
  for (const a of document.querySelectorAll("nav a"))
    a.toggleAttribute("aria-current", location.hash.startsWith(a.getAttribute("href")));
  for (const [re, fn] of routes) {
    const m = location.hash.match(re);
    if (m) return fn(...m.slice(1)).catch(showError);
  }
  location.hash = "#/new";
}
function showError(err) {
  if (err.status === 401) return;
  view().insertAdjacentHTML("beforeend", `<p class="error" role="alert">${esc(err.message)}</p>`);
}

// ---- new job: dataset, recommendation, type and parameters -----------------------------------
let types = null;
async function newJob() {
  types = types || await api("/api/training-types");
  const datasets = await api("/api/datasets");
  view().innerHTML = `<h2>New job</h2>
  <fieldset><legend>1. Dataset</legend>
    <label for="files">Upload files</label>
    <input id="files" type="file" multiple accept=".jsonl,.json,.csv,.md,.markdown,.txt,.html,.htm,.pdf">
    <button type="button" id="upload">Upload</button>
    <label for="dataset">or pick an uploaded dataset / give an s3:// URI</label>
    <input id="dataset" list="known-datasets" placeholder="s3://lorag-datasets/…">
    <datalist id="known-datasets">${datasets.map((d) => `<option value="${esc(d.uri)}">${esc(d.files.join(", "))}</option>`).join("")}</datalist>
    <p class="error" id="dataset-error" role="alert"></p>
    <button type="button" id="recommend" class="secondary">Recommend a type</button>
  </fieldset>
  <div id="recommendations"></div>
  <form id="job-form" novalidate><fieldset><legend>2. Type and parameters</legend>
    <label for="training_type">Training type</label>
    <select id="training_type">${Object.keys(types).map((t) => `<option>${t}</option>`).join("")}</select>
    <p class="error" id="training_type-error" role="alert"></p>
    <label for="minion_id">Minion (optional)</label><input id="minion_id" maxlength="128">
    <div id="params" class="grid"></div>
    <button type="submit" id="submit">Submit job</button>
    <p class="error" id="form-error" role="alert"></p>
  </fieldset></form>`;
  $("#training_type").addEventListener("change", renderParams);
  renderParams();
  $("#upload").addEventListener("click", upload);
  $("#recommend").addEventListener("click", recommend);
  $("#job-form").addEventListener("submit", submitJob);
}

async function upload() {
  const files = $("#files").files;
  $("#dataset-error").textContent = "";
  if (!files.length) { $("#dataset-error").textContent = "choose one or more files first"; return; }
  const form = new FormData();
  for (const f of files) form.append("files", f, f.name);
  $("#upload").disabled = true;
  try {
    const ds = await api("/api/datasets", { method: "POST", form });
    $("#dataset").value = ds.uri;
    await recommend();
  } catch (err) { $("#dataset-error").textContent = err.message; }
  finally { $("#upload").disabled = false; }
}

async function recommend() {
  const uri = $("#dataset").value.trim();
  $("#dataset-error").textContent = "";
  if (!uri) { $("#dataset-error").textContent = "upload or give a dataset first"; return; }
  $("#recommendations").innerHTML = "<p>Profiling the dataset…</p>";
  try {
    const r = await api("/api/recommend", { method: "POST", body: { dataset: uri } });
    const p = r.profile;
    $("#recommendations").innerHTML = `<h3>Recommendations</h3>
    <p class="hint">${esc(p.records)} records, ~${esc(p.tokens)} tokens, mostly ${esc(p.shape)}; model ${esc(r.model)}</p>
    <table id="recommendation-table"><caption class="hint">Best first; refused types last.</caption>
    <thead><tr><th scope="col">type</th><th scope="col">score</th><th scope="col">memory</th>
    <th scope="col">time</th><th scope="col">cost</th><th scope="col">why</th><th scope="col"></th></tr></thead><tbody>
    ${r.recommendations.map((x) => `<tr class="${x.refused ? "refused" : ""}"><td>${esc(x.training_type)}</td>
      <td>${x.refused ? "refused" : esc(x.score)}</td><td>${esc(x.peak_memory_gb)} GB</td>
      <td>${fmtSecs(x.seconds)}</td><td>$${Number(x.cost_usd || 0).toFixed(2)}</td>
      <td>${esc(x.refused || x.reasons.join("; "))}</td>
      <td>${x.refused ? "" : `<button type="button" class="secondary" data-type="${esc(x.training_type)}">Use</button>`}</td></tr>`).join("")}
    </tbody></table>`;
    for (const b of document.querySelectorAll("#recommendation-table button"))
      b.addEventListener("click", () => { $("#training_type").value = b.dataset.type; renderParams(); $("#training_type").focus(); });
  } catch (err) { $("#recommendations").innerHTML = ""; $("#dataset-error").textContent = err.message; }
}

function scalar(prop) {
  const options = prop.anyOf ? prop.anyOf.filter((o) => o.type !== "null") : [prop];
  return options.length === 1 && ["string", "integer", "number", "boolean"].includes(options[0].type) ? options[0] : null;
}
function renderParams() {
  const schema = types[$("#training_type").value];
  $("#params").innerHTML = Object.entries(schema.properties || {}).map(([name, prop]) => {
    const s = scalar(prop);
    if (name === "kind" || !s) return "";
    const id = `param-${name}`, def = prop.default ?? "";
    const help = `<p class="hint" id="${id}-hint">${esc(prop.description)}</p><p class="error" id="${id}-error" role="alert"></p>`;
    let input;
    if (s.enum) input = `<select id="${id}" data-param="${name}">${s.enum.map((v) => `<option${v === def ? " selected" : ""}>${esc(v)}</option>`).join("")}</select>`;
    else if (s.type === "boolean") input = `<input type="checkbox" id="${id}" data-param="${name}"${def ? " checked" : ""}>`;
    else {
      const num = s.type !== "string";
      const attrs = num ? `type="number" step="${s.type === "integer" ? 1 : "any"}"` + ("minimum" in s ? ` min="${s.minimum}"` : "") + ("maximum" in s ? ` max="${s.maximum}"` : "") : 'type="text"';
      input = `<input ${attrs} id="${id}" data-param="${name}" data-kind="${s.type}" value="${esc(def)}" aria-describedby="${id}-hint ${id}-error">`;
    }
    return `<div><label for="${id}">${esc(prop.title || name)}</label>${input}${help}</div>`;
  }).join("");
}
function readParams() {
  const schema = types[$("#training_type").value], params = {};
  for (const el of document.querySelectorAll("[data-param]")) {
    const name = el.dataset.param, def = schema.properties[name].default;
    let value = el.type === "checkbox" ? el.checked : el.value.trim();
    if (value === "" && def == null) continue;
    if (el.dataset.kind === "integer" || el.dataset.kind === "number") value = value === "" ? null : Number(value);
    if (value !== def) params[name] = value;
  }
  return params;
}
async function submitJob(ev) {
  ev.preventDefault();
  for (const e of document.querySelectorAll("#view .error")) e.textContent = "";
  for (const e of document.querySelectorAll("[aria-invalid]")) e.removeAttribute("aria-invalid");
  const uri = $("#dataset").value.trim();
  if (!uri) { $("#dataset-error").textContent = "upload or give a dataset first"; $("#dataset").focus(); return; }
  const body = { training_type: $("#training_type").value, datasets: [uri], parameters: readParams() };
  if ($("#minion_id").value.trim()) body.minion_id = $("#minion_id").value.trim();
  $("#submit").disabled = true;
  try {
    const job = await api("/api/jobs", { method: "POST", body });
    location.hash = `#/jobs/${job.job_id}`;
  } catch (err) {
    if (err.status === 422 && Array.isArray(err.detail)) showFieldErrors(err.detail);
    else $("#form-error").textContent = err.message;
  } finally { $("#submit").disabled = false; }
}
function showFieldErrors(detail) {
  let first = null;
  for (const e of detail) {
    const [, where, field] = e.loc;
    const id = where === "parameters" && field !== undefined ? `param-${field}` : where === "datasets" ? "dataset" : where;
    const slot = $(`#${CSS.escape(id)}-error`) || $("#form-error");
    slot.textContent = [slot.textContent, e.msg].filter(Boolean).join("; ");
    const input = $(`#${CSS.escape(id)}`);
    if (input) { input.setAttribute("aria-invalid", "true"); first = first || input; }
  }
  if (first) first.focus();
}

// ---- jobs ------------------------------------------------------------------------------------
async function jobList() {
  const q = new URLSearchParams(sessionStorage.getItem("lorag.jobFilter") || "");
  const states = ["", "QUEUED", "VALIDATING", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED"];
  const rows = await api(`/api/jobs?${q}`);
  view().innerHTML = `<h2>Jobs</h2><form id="filters" class="grid">
    <div><label for="f-state">State</label><select id="f-state">${states.map((s) => `<option value="${s}"${q.get("state") === s ? " selected" : ""}>${s || "any"}</option>`).join("")}</select></div>
    <div><label for="f-type">Type</label><select id="f-type">${["", ...Object.keys(types || {})].map((t) => `<option value="${t}"${q.get("type") === t ? " selected" : ""}>${t || "any"}</option>`).join("")}</select></div>
    <div><button type="submit">Filter</button></div></form>
    <table id="jobs-table"><thead><tr><th scope="col">job</th><th scope="col">type</th><th scope="col">state</th><th scope="col">stage</th><th scope="col">%</th><th scope="col">created</th></tr></thead><tbody>
    ${rows.map((j) => `<tr><td><a href="#/jobs/${esc(j.job_id)}">${esc(j.job_id)}</a></td><td>${esc(j.effective_type)}</td>
      <td class="state ${esc(j.state)}">${esc(j.state)}</td><td>${esc(j.stage)}</td><td>${j.percent == null ? "" : Math.round(j.percent)}</td><td>${esc(new Date(j.created_at).toLocaleString())}</td></tr>`).join("")}
    </tbody></table>${rows.length ? "" : "<p>No jobs yet.</p>"}`;
  $("#filters").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const f = new URLSearchParams();
    if ($("#f-state").value) f.set("state", $("#f-state").value);
    if ($("#f-type").value) f.set("type", $("#f-type").value);
    sessionStorage.setItem("lorag.jobFilter", f.toString());
    jobList().catch(showError);
  });
}

async function watchJob(jobId) {
  const job = await api(`/api/jobs/${encodeURIComponent(jobId)}`);
  view().innerHTML = `<h2>Job <code>${esc(jobId)}</code></h2>
    <p>${esc(job.effective_type)} · <span id="job-state" class="state ${esc(job.state)}">${esc(job.state)}</span>
    · stage <span id="job-stage">${esc(job.stage || "-")}</span> · ETA <span id="job-eta">-</span>
    · <span id="job-rate"></span></p>
    <progress id="job-progress" max="100" value="${job.percent || 0}" aria-label="percent done">${job.percent || 0}%</progress>
    <p id="job-percent">${Math.round(job.percent || 0)}%</p>
    <div id="job-outcome"></div>
    <h3>Loss</h3><svg id="loss-chart" class="chart" width="420" height="120" role="img" aria-label="training loss over steps"></svg>
    <button type="button" id="cancel" class="secondary">Cancel job</button>
    <h3>Progress log</h3><ol class="log" id="job-log"></ol>`;
  $("#cancel").addEventListener("click", () => api(`/api/jobs/${encodeURIComponent(jobId)}/cancel`, { method: "POST" }).catch(showError));
  const losses = [];
  const controller = new AbortController();
  stopWatch = () => controller.abort();
  sse(`/api/jobs/${encodeURIComponent(jobId)}/events`, controller.signal, (event, data) => {
    if (event === "progress") {
      $("#job-log").insertAdjacentHTML("beforeend", `<li>#${esc(data.seq)} ${esc(data.state)} ${esc(data.stage || "")} ${data.percent == null ? "" : Math.round(data.percent) + "%"} ${esc(data.message || "")}</li>`);
      const m = data.metrics || {};
      if (m.loss != null) { losses.push(m.loss); drawLoss(losses); }
      if (m.chunks_per_s != null) $("#job-rate").textContent = `${m.chunks_per_s.toFixed(1)} chunks/s`;
      if (m.tokens_per_s != null) $("#job-rate").textContent = `${m.tokens_per_s.toFixed(0)} tokens/s`;
    } else if (event === "job") {
      const st = $("#job-state"); st.textContent = data.state; st.className = `state ${data.state}`;
      $("#job-stage").textContent = data.stage || "-";
      $("#job-eta").textContent = data.eta_seconds == null ? "-" : fmtSecs(data.eta_seconds);
      $("#job-progress").value = data.percent || 0;
      $("#job-percent").textContent = `${Math.round(data.percent || 0)}%`;
      if (data.error) $("#job-outcome").innerHTML = `<p class="error" role="alert">${esc(data.error.code)}: ${esc(data.error.message)}</p>`;
      if (data.result) $("#job-outcome").innerHTML = `<p>Result: ${(data.result.artifacts || []).map((a) => `${esc(a.kind)} <code>${esc(a.uri)}</code>`).join(", ")}</p>`;
    } else if (event === "end") { $("#cancel").hidden = true; }
  }).catch((err) => { if (err.name !== "AbortError") showError(err); });
}

async function sse(path, signal, onEvent) {
  // EventSource cannot send an Authorization header: read the stream with fetch instead.
  const res = await fetch(path, { headers: { Authorization: `Bearer ${token()}`, Accept: "text/event-stream" }, signal });
  if (!res.ok) throw new ApiError(res.status, (await res.json().catch(() => ({}))).detail);
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value.replace(/\r\n/g, "\n");
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, cut); buffer = buffer.slice(cut + 2);
      let event = "message", data = "";
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) event = line.slice(6).trim();
        else if (line.startsWith("data:")) data += line.slice(5).trim();
      }
      if (data) onEvent(event, JSON.parse(data));
    }
  }
}

function drawLoss(values) {
  const w = 420, h = 120, pad = 8, max = Math.max(...values), min = Math.min(...values);
  const x = (i) => pad + (i * (w - 2 * pad)) / Math.max(1, values.length - 1);
  const y = (v) => h - pad - ((v - min) / (max - min || 1)) * (h - 2 * pad);
  $("#loss-chart").innerHTML = `<polyline fill="none" stroke="#0b5cad" stroke-width="2" points="${values.map((v, i) => `${x(i)},${y(v)}`).join(" ")}"/>
    <text x="${w - pad}" y="14" text-anchor="end" font-size="11">last ${values[values.length - 1].toFixed(3)}</text>`;
}

// ---- adapters, knowledge bases, minions ------------------------------------------------------
async function adapters() {
  const rows = await api("/api/adapters");
  view().innerHTML = `<h2>Adapters</h2><table id="adapters-table"><thead><tr><th scope="col">name</th><th scope="col">version</th><th scope="col">aliases</th><th scope="col">base model</th><th scope="col">eval loss</th><th scope="col">promote</th></tr></thead><tbody>
  ${rows.map((a) => `<tr><td>${esc(a.name)}</td><td>${esc(a.version)}</td><td>${esc(a.aliases.join(", "))}</td><td>${esc(a.base_model)}</td><td>${esc(a.metrics?.eval_loss?.toFixed?.(4) ?? "")}</td>
    <td><form class="promote" data-name="${esc(a.name)}" data-version="${esc(a.version)}"><label for="alias-${esc(a.name)}-${esc(a.version)}">alias</label>
    <input id="alias-${esc(a.name)}-${esc(a.version)}" value="production" required><button type="submit" class="secondary">Promote</button></form></td></tr>`).join("")}
  </tbody></table>${rows.length ? "" : "<p>No adapters yet: a LOCAL_LORA or hybrid job makes one.</p>"}`;
  for (const f of document.querySelectorAll("form.promote")) f.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    await api(`/api/adapters/${encodeURIComponent(f.dataset.name)}/promote`, { method: "POST", body: { version: Number(f.dataset.version), alias: $("input", f).value } }).catch(showError);
    adapters().catch(showError);
  });
}

async function kbs() {
  const rows = await api("/api/kbs");
  view().innerHTML = `<h2>Knowledge bases</h2><table id="kbs-table"><thead><tr><th scope="col">name</th><th scope="col">version</th><th scope="col">model</th><th scope="col">chunks</th><th scope="col">hit rate</th><th scope="col">MRR</th></tr></thead><tbody>
  ${rows.map((k) => `<tr><td>${esc(k.name)}</td><td>${esc(k.version)}</td><td>${esc(k.embedding_model)}</td><td>${esc(k.chunk_count)}</td><td>${esc(k.hit_rate ?? "-")}</td><td>${esc(k.mrr ?? "-")}</td></tr>`).join("")}</tbody></table>
  <form id="kb-query"><label for="kb-name">Knowledge base</label><select id="kb-name">${rows.map((k) => `<option>${esc(k.name)}</option>`).join("")}</select>
  <label for="kb-question">Question</label><input id="kb-question" required><button type="submit">Query</button></form><div id="kb-hits"></div>`;
  $("#kb-query").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const r = await api(`/api/kbs/${encodeURIComponent($("#kb-name").value)}/query`, { method: "POST", body: { question: $("#kb-question").value } }).catch(showError);
    if (r) $("#kb-hits").innerHTML = `<ol>${r.hits.map((h) => `<li><strong>${esc(h.source)}</strong> (${esc(h.score)}): ${esc(h.text.slice(0, 300))}</li>`).join("")}</ol>`;
  });
}

async function minions() {
  const rows = await api("/api/minions");
  view().innerHTML = `<h2>Minions</h2><table id="minions-table"><thead><tr><th scope="col">minion</th><th scope="col">type</th><th scope="col">kb</th><th scope="col">adapter</th><th scope="col">best</th><th scope="col">scores</th></tr></thead><tbody>
  ${rows.map((m) => `<tr><td>${esc(m.name)}</td><td>${esc(m.training_type)}</td><td>${esc(m.kb)}</td><td>${esc(m.adapter)}</td><td>${esc(m.best_variant)}</td><td>${esc(Object.entries(m.scores || {}).map(([k, v]) => `${k} ${Number(v).toFixed(2)}`).join(", "))}</td></tr>`).join("")}</tbody></table>
  <form id="ask-form"><label for="minion">Minion</label><select id="minion">${rows.map((m) => `<option>${esc(m.name)}</option>`).join("")}</select>
  <label for="question">Question</label><input id="question" required>
  <button type="submit" id="ask">Ask</button> <button type="button" id="compare" class="secondary">Compare variants</button></form>
  <div id="answers" class="cards" aria-live="polite"></div>`;
  const ask = async (compare) => {
    if (!$("#question").value.trim()) { $("#question").focus(); return; }
    $("#answers").innerHTML = "<p>Asking…</p>";
    const r = await api(`/api/minions/${encodeURIComponent($("#minion").value)}/ask`, { method: "POST", body: { question: $("#question").value, compare } }).catch((e) => { $("#answers").innerHTML = ""; showError(e); });
    if (r) $("#answers").innerHTML = r.replies.map((x) => `<article class="card"><h3>${esc(x.variant)}${x.variant === r.best_variant ? " (best)" : ""}</h3>
      ${x.error ? `<p class="error">${esc(x.error)}</p>` : `<p class="answer">${esc(x.answer)}</p>`}
      <ol>${(x.sources || []).map((s) => `<li>${esc(s.source)}</li>`).join("")}</ol></article>`).join("");
  };
  $("#ask-form").addEventListener("submit", (ev) => { ev.preventDefault(); ask(false); });
  $("#compare").addEventListener("click", () => ask(true));
}

// ---- start -----------------------------------------------------------------------------------
window.addEventListener("hashchange", route);
document.addEventListener("DOMContentLoaded", () => {
  $("#signin-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const value = $("#token").value.trim();
    if (!value) { $("#token-error").textContent = "enter a token"; return; }
    signIn(value).catch((err) => { if (err.status !== 401) $("#token-error").textContent = err.message; });
  });
  $("#signout").addEventListener("click", () => signOut());
  if (token()) signIn(token()).catch(() => {}); else signOut();
});
