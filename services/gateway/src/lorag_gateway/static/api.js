// The gateway's /api as the console calls it, and the navigation each view runs under.
export const $ = (sel, root = document) => root.querySelector(sel);
export const $$ = (sel, root = document) => [...root.querySelectorAll(sel)];
export const esc = (v) => String(v ?? "").replace(/[&<>"']/g, (c) =>
  ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
export const fmtSecs = (s) => s == null ? "" : s < 1 ? "under 1 s" : s < 90 ? `${Math.round(s)} s`
  : s < 5400 ? `${Math.round(s / 60)} min` : `${(s / 3600).toFixed(1)} h`;
export const token = () => localStorage.getItem("lorag.token");

export class ApiError extends Error {
  constructor(status, detail) {
    super(typeof detail === "string" ? detail : (detail || []).map((e) => e.msg).join("; "));
    this.status = status; this.detail = detail;
  }
}

let unauthorised = () => {};
/** What a 401 does (sign out): set once by the console. */
export function onUnauthorised(fn) { unauthorised = fn; }

/** Call the API with the token; JSON in and out; ApiError on a non-2xx answer. */
export async function api(path, { method = "GET", body, form, signal } = {}) {
  const headers = { Authorization: `Bearer ${token()}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const payload = form || (body !== undefined ? JSON.stringify(body) : undefined);
  const res = await fetch(path, { method, headers, body: payload, signal });
  const data = await res.json().catch((err) => { if (err.name === "AbortError") throw err; return {}; });
  if (res.status === 401) { unauthorised(data.detail || "please sign in"); throw new ApiError(401, data.detail); }
  if (!res.ok) throw new ApiError(res.status, data.detail);
  return data;
}

/** Read a text/event-stream with fetch (EventSource cannot send an Authorization header). */
export async function sse(path, signal, onEvent) {
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

/**
 * One navigation: the signal that the next navigation aborts, and the only ways a view writes.
 * A view that finishes after the user moved on must not overwrite the newer view, so every
 * request of the view carries the signal, and draw() refuses once it is aborted.
 */
export function navigation(signal, { reload, focus }) {
  let drawn = false;
  const nav = {
    signal, reload,
    check() { if (signal.aborted) throw signal.reason; },
    api: (path, options = {}) => api(path, { ...options, signal }),
    draw(html, title) {
      nav.check();
      const active = document.activeElement?.id;  // a redraw in place keeps the keyboard there
      $("#view").innerHTML = html;
      drawn = true;
      document.title = `${title} · lorag console`;
      const heading = $("#view h2"), again = !focus && active && document.getElementById(active);
      if (again) again.focus();
      else if (heading && (focus || document.activeElement === document.body)) { heading.tabIndex = -1; heading.focus(); }
    },
    /** An error of this view: under it, or in its place when it never drew (not found…). */
    fail(err) {
      if (signal.aborted || err.name === "AbortError" || err.status === 401) return;
      const message = `<p class="error" role="alert">${esc(err.message)}</p>`;
      if (drawn) $("#view").insertAdjacentHTML("beforeend", message);
      else nav.draw(`<h2>${err.status === 404 ? "Not found" : "Something went wrong"}</h2>${message}`, "Error");
    },
  };
  return nav;
}
