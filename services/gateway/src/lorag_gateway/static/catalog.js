// What jobs made: adapters (promote to an alias), knowledge bases (query), minions (ask, compare).
import { $, $$, esc } from "./api.js";

const th = (...names) => `<thead><tr>${names.map((n) => `<th scope="col">${n}</th>`).join("")}</tr></thead>`;

export async function adapters(nav) {
  const rows = await nav.api("/api/adapters");
  nav.draw(`<h2>Adapters</h2>${rows.length ? `<table id="adapters-table">
    ${th("name", "version", "aliases", "base model", "eval loss", "promote")}<tbody>
    ${rows.map((a) => {
      const id = esc(`alias-${a.name}-${a.version}`);
      return `<tr><td>${esc(a.name)}</td><td>${esc(a.version)}</td><td class="aliases">${esc(a.aliases.join(", "))}</td>
      <td>${esc(a.base_model)}</td><td>${esc(a.metrics?.eval_loss?.toFixed?.(4) ?? "")}</td>
      <td><form class="promote" data-name="${esc(a.name)}" data-version="${esc(a.version)}">
      <label for="${id}">alias for ${esc(a.name)} v${esc(a.version)}</label>
      <input id="${id}" value="production" required>
      <button type="submit" class="secondary">Promote</button></form></td></tr>`;
    }).join("")}</tbody></table>` : "<p>No adapters yet: a LOCAL_LORA or hybrid job makes one.</p>"}
    <p id="adapters-status" role="status"></p>`, "Adapters");
  for (const f of $$("form.promote")) f.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const alias = $("input", f).value.trim(), body = { version: Number(f.dataset.version), alias };
    try {
      await nav.api(`/api/adapters/${encodeURIComponent(f.dataset.name)}/promote`, { method: "POST", body });
      sessionStorage.setItem("lorag.adapterStatus", `${f.dataset.name} v${f.dataset.version} is now ${alias}`);
      nav.reload();
    } catch (err) { nav.fail(err); }
  });
  $("#adapters-status").textContent = sessionStorage.getItem("lorag.adapterStatus") || "";
  sessionStorage.removeItem("lorag.adapterStatus");
}

export async function kbs(nav) {
  const rows = await nav.api("/api/kbs");
  nav.draw(`<h2>Knowledge bases</h2>${rows.length ? `<table id="kbs-table">
    ${th("name", "version", "model", "chunks", "hit rate", "MRR")}<tbody>
    ${rows.map((k) => `<tr><td>${esc(k.name)}</td><td>${esc(k.version)}</td><td>${esc(k.embedding_model)}</td>
      <td>${esc(k.chunk_count)}</td><td>${esc(k.hit_rate ?? "-")}</td><td>${esc(k.mrr ?? "-")}</td></tr>`).join("")}</tbody></table>
    <form id="kb-query"><label for="kb-name">Knowledge base</label>
    <select id="kb-name">${rows.map((k) => `<option>${esc(k.name)}</option>`).join("")}</select>
    <label for="kb-question">Question</label><input id="kb-question" required>
    <button type="submit">Query</button></form><div id="kb-hits" aria-live="polite"></div>`
    : "<p>No knowledge bases yet: an EXTERNAL_RAG or hybrid job makes one.</p>"}`, "Knowledge bases");
  $("#kb-query")?.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    if (!$("#kb-question").value.trim()) { $("#kb-question").focus(); return; }
    $("#kb-hits").innerHTML = "<p>Searching…</p>";
    try {
      const r = await nav.api(`/api/kbs/${encodeURIComponent($("#kb-name").value)}/query`,
        { method: "POST", body: { question: $("#kb-question").value } });
      $("#kb-hits").innerHTML = r.hits.length ? `<ol>${r.hits.map((h) => `<li><strong>${esc(h.source)}</strong>
        (${esc(Number(h.score).toFixed(3))}): ${esc(h.text.slice(0, 300))}</li>`).join("")}</ol>` : "<p>No hits.</p>";
    } catch (err) { if (!nav.signal.aborted) $("#kb-hits").innerHTML = ""; nav.fail(err); }
  });
}

const scores = (m) => Object.entries(m.scores || {}).map(([k, v]) => `${k} ${Number(v).toFixed(2)}`).join(", ");

export async function minions(nav) {
  const rows = await nav.api("/api/minions");
  nav.draw(`<h2>Minions</h2>${rows.length ? `<table id="minions-table">
    ${th("minion", "type", "kb", "adapter", "best", "scores")}<tbody>
    ${rows.map((m) => `<tr><td>${esc(m.name)}</td><td>${esc(m.training_type)}</td><td>${esc(m.kb)}</td>
      <td>${esc(m.adapter)}</td><td>${esc(m.best_variant)}</td><td>${esc(scores(m))}</td></tr>`).join("")}</tbody></table>
    <form id="ask-form"><label for="minion">Minion</label><select id="minion">${rows.map((m) => `<option>${esc(m.name)}</option>`).join("")}</select>
    <label for="question">Question</label><input id="question" required>
    <button type="submit" id="ask">Ask</button> <button type="button" id="compare" class="secondary">Compare variants</button></form>
    <div id="answers" class="cards" aria-live="polite"></div>`
    : "<p id=\"no-minions\">No minions yet: a hybrid job makes one.</p>"}`, "Minions");
  const ask = async (compare) => {
    if (!$("#question").value.trim()) { $("#question").focus(); return; }
    $("#answers").innerHTML = "<p>Asking…</p>";
    try {
      const r = await nav.api(`/api/minions/${encodeURIComponent($("#minion").value)}/ask`,
        { method: "POST", body: { question: $("#question").value, compare } });
      $("#answers").innerHTML = r.replies.map((x) => card(x, r.best_variant)).join("");
    } catch (err) { if (!nav.signal.aborted) $("#answers").innerHTML = ""; nav.fail(err); }
  };
  $("#ask-form")?.addEventListener("submit", (ev) => { ev.preventDefault(); ask(false); });
  $("#compare")?.addEventListener("click", () => ask(true));
}

const card = (x, best) => `<article class="card" data-variant="${esc(x.variant)}">
  <h3>${esc(x.variant)}${x.variant === best ? " (best)" : ""}</h3>
  ${x.error ? `<p class="error">${esc(x.error)}</p>` : `<p class="answer">${esc(x.answer)}</p>`}
  ${(x.sources || []).length ? `<h4>Sources</h4><ol class="sources">${x.sources.map((s) =>
    `<li><strong>${esc(s.source)}</strong> <span class="snippet">${esc((s.text || "").slice(0, 160))}</span></li>`).join("")}</ol>` : ""}
</article>`;
