// lorag console: vanilla JS modules over the gateway's /api; the token lives in localStorage.
import { $, api, navigation, onUnauthorised, token } from "./api.js";
import { adapters, kbs, minions } from "./catalog.js";
import { jobList, watchJob } from "./jobs.js";
import { newJob } from "./newjob.js";

const routes = [
  [/^#\/new$/, newJob], [/^#\/jobs$/, jobList], [/^#\/jobs\/([\w.-]+)$/, watchJob],
  [/^#\/adapters$/, adapters], [/^#\/kbs$/, kbs], [/^#\/minions$/, minions],
];
let current = null;  // aborts the view on screen (its requests, its live stream) when we move on

/** Show the view of the location's hash; a reload redraws it in place without moving focus. */
function route({ reload = false } = {}) {
  if (!token()) return signOut();
  current?.abort();
  current = new AbortController();
  const nav = navigation(current.signal, { reload: () => route({ reload: true }), focus: !reload });
  for (const a of document.querySelectorAll("nav a")) {
    if (location.hash.startsWith(a.getAttribute("href"))) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  for (const [re, view] of routes) {
    const m = location.hash.match(re);
    if (m) return view(nav, ...m.slice(1)).catch(nav.fail);
  }
  location.hash = "#/new";
}

async function signIn(value) {
  localStorage.setItem("lorag.token", value);
  const me = await api("/api/me");
  $("#owner").textContent = `signed in as ${me.owner}`;
  $("#signin").hidden = true; $("#nav").hidden = false; $("#who").hidden = false;
  if (!location.hash || location.hash === "#/") location.hash = "#/new"; else route();
}

function signOut(message) {
  current?.abort(); current = null;
  localStorage.removeItem("lorag.token");
  $("#signin").hidden = false; $("#nav").hidden = true; $("#who").hidden = true;
  $("#view").innerHTML = "";
  document.title = "Sign in · lorag console";
  $("#token-error").textContent = message || "";
  $("#token").focus();
}

onUnauthorised(signOut);
window.addEventListener("hashchange", () => route());
$("#signin-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const value = $("#token").value.trim();
  if (!value) { $("#token-error").textContent = "enter a token"; return; }
  signIn(value).catch((err) => { if (err.status !== 401) $("#token-error").textContent = err.message; });
});
$("#signout").addEventListener("click", () => signOut());
// The skip link's #main is not a route: move focus instead of letting the hash change.
$(".skip").addEventListener("click", (ev) => { ev.preventDefault(); $("#main").focus(); });
if (token()) signIn(token()).catch(() => {}); else signOut();
