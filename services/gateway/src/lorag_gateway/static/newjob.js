// New job: upload or pick a dataset, see the recommendation, choose a type and parameters, submit.
import { $, $$, esc, fmtSecs } from "./api.js";
import { justSubmitted } from "./jobs.js";
import { paramFields, readParams, showFieldErrors, trainingTypes } from "./params.js";

const ACCEPT = ".jsonl,.json,.csv,.md,.markdown,.txt,.html,.htm,.pdf";

export async function newJob(nav) {
  const [types, datasets] = await Promise.all([trainingTypes(nav), nav.api("/api/datasets")]);
  nav.draw(`<h2>New job</h2>
  <fieldset><legend>1. Dataset</legend>
    <label for="files">Upload files</label>
    <input id="files" type="file" multiple accept="${ACCEPT}" aria-describedby="files-hint">
    <p class="hint" id="files-hint">JSONL, JSON, CSV, Markdown, text, HTML or PDF.</p>
    <button type="button" id="upload">Upload</button>
    <label for="dataset">or pick an uploaded dataset / give an s3:// URI</label>
    <input id="dataset" list="known-datasets" placeholder="s3://lorag-datasets/…" aria-describedby="dataset-error">
    <datalist id="known-datasets">${datasets.map((d) => `<option value="${esc(d.uri)}">${esc(d.files.join(", "))}</option>`).join("")}</datalist>
    <p class="error" id="dataset-error" role="alert"></p>
    <button type="button" id="recommend" class="secondary">Recommend a type</button>
  </fieldset>
  <div id="recommendations"></div>
  <form id="job-form" novalidate><fieldset><legend>2. Type and parameters</legend>
    <label for="training_type">Training type</label>
    <select id="training_type" aria-describedby="training_type-error">${Object.keys(types).map((t) => `<option>${esc(t)}</option>`).join("")}</select>
    <p class="error" id="training_type-error" role="alert"></p>
    <div id="minion-row"><label for="minion_id">Minion this job trains (optional)</label>
      <input id="minion_id" maxlength="128" aria-describedby="minion_id-error">
      <p class="error" id="minion_id-error" role="alert"></p></div>
    <div id="params"></div>
    <button type="submit" id="submit">Submit job</button>
    <p class="error" id="form-error" role="alert"></p>
  </fieldset></form>`, "New job");
  const schema = () => types[$("#training_type").value];
  const renderParams = () => {
    $("#params").innerHTML = paramFields(schema(), $("#training_type").value);
    $("#minion-row").hidden = "minion" in (schema().properties || {});  // the type names its own
  };
  $("#training_type").addEventListener("change", renderParams);
  renderParams();
  const recommend = () => recommendFor(nav, (type) => {
    $("#training_type").value = type; renderParams(); $("#training_type").focus();
  });
  $("#upload").addEventListener("click", () => upload(nav, recommend));
  $("#recommend").addEventListener("click", recommend);
  $("#job-form").addEventListener("submit", (ev) => { ev.preventDefault(); submit(nav, schema()); });
}

async function upload(nav, recommend) {
  const files = $("#files").files;
  $("#dataset-error").textContent = "";
  if (!files.length) { $("#dataset-error").textContent = "choose one or more files first"; $("#files").focus(); return; }
  const form = new FormData();
  for (const f of files) form.append("files", f, f.name);
  $("#upload").disabled = true;
  try {
    const ds = await nav.api("/api/datasets", { method: "POST", form });
    $("#dataset").value = ds.uri;
    await recommend();
  } catch (err) {
    if (!nav.signal.aborted) $("#dataset-error").textContent = err.message;
  } finally { if (!nav.signal.aborted) $("#upload").disabled = false; }
}

async function recommendFor(nav, use) {
  const uri = $("#dataset").value.trim();
  $("#dataset-error").textContent = "";
  if (!uri) { $("#dataset-error").textContent = "upload or give a dataset first"; $("#dataset").focus(); return; }
  $("#recommendations").innerHTML = `<p role="status">Profiling the dataset…</p>`;
  let r;
  try { r = await nav.api("/api/recommend", { method: "POST", body: { dataset: uri } }); } catch (err) {
    if (nav.signal.aborted) return;
    $("#recommendations").innerHTML = ""; $("#dataset-error").textContent = err.message; return;
  }
  const p = r.profile;
  $("#recommendations").innerHTML = `<h3>Recommendations</h3>
    <p class="hint">${esc(p.records)} records, ~${esc(p.tokens)} tokens, mostly ${esc(p.shape)}; model ${esc(r.model)}</p>
    <table id="recommendation-table"><caption class="hint">Best first; refused types last.</caption>
    <thead><tr><th scope="col">type</th><th scope="col">score</th><th scope="col">memory</th>
    <th scope="col">time</th><th scope="col">cost</th><th scope="col">why</th><th scope="col"><span class="sr-only">choose</span></th></tr></thead><tbody>
    ${r.recommendations.map((x) => `<tr class="${x.refused ? "refused" : ""}"><td>${esc(x.training_type)}</td>
      <td>${x.refused ? "refused" : esc(x.score)}</td><td>${esc(x.peak_memory_gb)} GB</td>
      <td>${fmtSecs(x.seconds)}</td><td>$${Number(x.cost_usd || 0).toFixed(2)}</td>
      <td>${esc(x.refused || x.reasons.join("; "))}</td>
      <td>${x.refused ? "" : `<button type="button" class="secondary" data-type="${esc(x.training_type)}" aria-label="Use ${esc(x.training_type)}">Use</button>`}</td></tr>`).join("")}
    </tbody></table>`;
  for (const b of $$("#recommendation-table button")) b.addEventListener("click", () => use(b.dataset.type));
}

async function submit(nav, schema) {
  for (const e of $$("#view .error")) e.textContent = "";
  for (const e of $$("#view [aria-invalid]")) e.removeAttribute("aria-invalid");
  const uri = $("#dataset").value.trim();
  if (!uri) {
    showFieldErrors([{ loc: ["body", "datasets"], msg: "upload or give a dataset first" }], $("#form-error"));
    return;
  }
  const { params, problems } = readParams($("#params"), schema);
  if (problems.length) { showFieldErrors(problems, $("#form-error")); return; }
  const body = { training_type: $("#training_type").value, datasets: [uri], parameters: params };
  if (!$("#minion-row").hidden && $("#minion_id").value.trim()) body.minion_id = $("#minion_id").value.trim();
  $("#submit").disabled = true;
  try {
    const job = await nav.api("/api/jobs", { method: "POST", body });
    justSubmitted(job.job_id);
    location.hash = `#/jobs/${job.job_id}`;
  } catch (err) {
    if (nav.signal.aborted) return;
    if (err.status === 422 && Array.isArray(err.detail)) showFieldErrors(err.detail, $("#form-error"));
    else $("#form-error").textContent = err.message;
  } finally { if (!nav.signal.aborted) $("#submit").disabled = false; }
}
