// The job list (filters, older pages) and one job's live progress over Server-Sent Events.
import { $, $$, esc, fmtSecs, sse } from "./api.js";
import { trainingTypes } from "./params.js";

const PAGE = 20;
const STATES = ["", "QUEUED", "VALIDATING", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED"];
const submitted = new Set();  // jobs this console just submitted: the tracker may not know them yet

/** Remember a job just submitted, so its page waits for it rather than saying "not found". */
export function justSubmitted(jobId) { submitted.add(jobId); }

function pause(ms, signal) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => { clearTimeout(timer); reject(signal.reason); }, { once: true });
  });
}

/** The job; one just submitted is asked for again (up to half a minute) while it is not found. */
async function fetchJob(nav, jobId) {
  for (let wait = 250, waited = 0; ; waited += wait, wait = Math.min(wait * 1.5, 2000)) {
    try { return await nav.api(`/api/jobs/${encodeURIComponent(jobId)}`); } catch (err) {
      if (err.status !== 404 || !submitted.has(jobId) || waited > 30_000) throw err;
      if (!waited) nav.draw(`<h2>Job <code>${esc(jobId)}</code></h2>
        <p role="status">Submitted; waiting for the job tracker to record it…</p>`, `Job ${jobId}`);
      await pause(wait, nav.signal);
    }
  }
}

const row = (j) => `<tr data-job="${esc(j.job_id)}"><td><a href="#/jobs/${esc(j.job_id)}">${esc(j.job_id)}</a></td>
  <td>${esc(j.effective_type)}</td><td class="state ${esc(j.state)}">${esc(j.state)}</td><td>${esc(j.stage)}</td>
  <td>${j.percent == null ? "" : Math.round(j.percent)}</td><td>${esc(new Date(j.created_at).toLocaleString())}</td></tr>`;

/** One page of the caller's jobs, newest first: the first, or the one after job `before`. */
function page(nav, filter, before) {
  const q = new URLSearchParams(filter);
  q.set("limit", PAGE);
  if (before) q.set("before", before);
  return nav.api(`/api/jobs?${q}`);
}

export async function jobList(nav) {
  const filter = new URLSearchParams(sessionStorage.getItem("lorag.jobFilter") || "");
  const [types, rows] = await Promise.all([trainingTypes(nav), page(nav, filter)]);
  const option = (value, label, key) => `<option value="${esc(value)}"${filter.get(key) === value ? " selected" : ""}>${esc(label || "any")}</option>`;
  nav.draw(`<h2>Jobs</h2><form id="filters" class="grid">
    <div><label for="f-state">State</label><select id="f-state">${STATES.map((s) => option(s, s, "state")).join("")}</select></div>
    <div><label for="f-type">Type</label><select id="f-type">${["", ...Object.keys(types)].map((t) => option(t, t, "type")).join("")}</select></div>
    <div><button type="submit" id="filter">Filter</button></div></form>
    ${rows.length ? "" : "<p>No jobs yet.</p>"}
    <table id="jobs-table"${rows.length ? "" : " hidden"}><thead><tr><th scope="col">job</th><th scope="col">type</th>
    <th scope="col">state</th><th scope="col">stage</th><th scope="col">%</th><th scope="col">created</th></tr></thead>
    <tbody>${rows.map(row).join("")}</tbody></table>
    <button type="button" id="older" class="secondary"${rows.length < PAGE ? " hidden" : ""}>Older jobs</button>
    <p id="jobs-status" class="hint" role="status"></p>`, "Jobs");
  $("#filters").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const f = new URLSearchParams();
    if ($("#f-state").value) f.set("state", $("#f-state").value);
    if ($("#f-type").value) f.set("type", $("#f-type").value);
    sessionStorage.setItem("lorag.jobFilter", f.toString());
    nav.reload();
  });
  $("#older").addEventListener("click", () => older(nav, filter));
}

async function older(nav, filter) {
  const button = $("#older"), last = $$("#jobs-table tbody tr").at(-1)?.dataset.job;
  button.disabled = true;
  try {
    const rows = await page(nav, filter, last);
    nav.check();
    $("#jobs-table tbody").insertAdjacentHTML("beforeend", rows.map(row).join(""));
    button.hidden = rows.length < PAGE;
    $("#jobs-status").textContent = rows.length ? `${rows.length} older jobs shown` : "no older jobs";
    // Keep the keyboard where the new rows are when the button it was on goes away.
    if (button.hidden && rows.length) $(`#jobs-table tr[data-job="${CSS.escape(rows[0].job_id)}"] a`).focus();
  } catch (err) { nav.fail(err); } finally { button.disabled = false; }
}

export async function watchJob(nav, jobId) {
  const job = await fetchJob(nav, jobId);
  submitted.delete(jobId);
  nav.draw(`<h2>Job <code>${esc(jobId)}</code></h2>
    <p>${esc(job.effective_type)} · <span id="job-state" class="state ${esc(job.state)}">${esc(job.state)}</span>
    · stage <span id="job-stage">${esc(job.stage || "-")}</span> · ETA <span id="job-eta">-</span>
    · <span id="job-rate"></span></p>
    <progress id="job-progress" max="100" value="${job.percent || 0}" aria-label="percent done">${job.percent || 0}%</progress>
    <p id="job-percent">${Math.round(job.percent || 0)}%</p>
    <div id="job-outcome"></div>
    <section id="stages-section" aria-labelledby="stages-title" hidden><h3 id="stages-title">Stages</h3>
      <ul id="job-stages" class="stages"></ul></section>
    <section id="loss-section" aria-labelledby="loss-title" hidden><h3 id="loss-title">Loss</h3>
      <svg id="loss-chart" class="chart" width="420" height="120" role="img" aria-label="training loss over steps"></svg></section>
    <button type="button" id="cancel" class="secondary">Cancel job</button>
    <h3 id="log-title">Progress log</h3><ol class="log" id="job-log" tabindex="0" aria-labelledby="log-title"></ol>`, `Job ${jobId}`);
  $("#cancel").addEventListener("click", () =>
    nav.api(`/api/jobs/${encodeURIComponent(jobId)}/cancel`, { method: "POST" }).catch(nav.fail));
  const losses = [];
  sse(`/api/jobs/${encodeURIComponent(jobId)}/events`, nav.signal, (event, data) => {
    if (event === "progress") {
      $("#job-log").insertAdjacentHTML("beforeend", `<li>#${esc(data.seq)} ${esc(data.state)} ${esc(data.stage || "")} ${data.percent == null ? "" : Math.round(data.percent) + "%"} ${esc(data.message || "")}</li>`);
      const m = data.metrics || {};
      if (m.loss != null) { losses.push(m.loss); drawLoss(losses); }
      if (m.chunks_per_s != null) $("#job-rate").textContent = `${m.chunks_per_s.toFixed(1)} chunks/s`;
      if (m.tokens_per_s != null) $("#job-rate").textContent = `${m.tokens_per_s.toFixed(0)} tokens/s`;
      drawStages(m);
    } else if (event === "job") {
      const st = $("#job-state"); st.textContent = data.state; st.className = `state ${data.state}`;
      $("#job-stage").textContent = data.stage || "-";
      $("#job-eta").textContent = data.eta_seconds == null ? "-" : fmtSecs(data.eta_seconds);
      $("#job-progress").value = data.percent || 0;
      $("#job-percent").textContent = `${Math.round(data.percent || 0)}%`;
      if (data.error) $("#job-outcome").innerHTML = `<p class="error" role="alert">${esc(data.error.code)}: ${esc(data.error.message)}</p>`;
      if (data.result) $("#job-outcome").innerHTML = `<p>Result: ${(data.result.artifacts || []).map((a) => `${esc(a.kind)} <code>${esc(a.uri)}</code>`).join(", ")}</p>`;
    } else if (event === "end") { $("#cancel").hidden = true; }
  }).catch(nav.fail);
}

/** A hybrid reports each stage's percent as <stage>_percent: one bar per stage. */
function drawStages(metrics) {
  const stages = Object.entries(metrics).filter(([k]) => k.endsWith("_percent"));
  if (!stages.length) return;
  $("#stages-section").hidden = false;
  $("#job-stages").innerHTML = stages.map(([k, v]) => {
    const name = k.slice(0, -"_percent".length);
    return `<li data-stage="${esc(name)}"><span class="stage-name">${esc(name)}</span>
      <progress max="100" value="${Number(v)}" aria-label="${esc(name)} stage percent done"></progress>
      <span>${Math.round(v)}%</span></li>`;
  }).join("");
}

function drawLoss(values) {
  const w = 420, h = 120, pad = 8, max = Math.max(...values), min = Math.min(...values);
  const x = (i) => pad + (i * (w - 2 * pad)) / Math.max(1, values.length - 1);
  const y = (v) => h - pad - ((v - min) / (max - min || 1)) * (h - 2 * pad);
  $("#loss-section").hidden = false;
  $("#loss-chart").innerHTML = `<polyline fill="none" stroke="#0b5cad" stroke-width="2" points="${values.map((v, i) => `${x(i)},${y(v)}`).join(" ")}"/>
    <text x="${w - pad}" y="14" text-anchor="end" font-size="11">last ${values[values.length - 1].toFixed(3)}</text>`;
}
