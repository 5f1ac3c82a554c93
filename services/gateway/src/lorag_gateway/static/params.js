// A training type's parameters as a form, from the JSON Schema of GET /api/training-types:
// scalars become labelled fields, nested objects (a hybrid's rag and lora) their own fieldsets.
// Field ids follow the parameter's path (param-rag.chunk_tokens), as do 422 error locations.
import { $$, esc } from "./api.js";

const SCALARS = ["string", "integer", "number", "boolean"];
const NUMERIC = ["integer", "number"];
let types = null;

/** Every training type's parameter schema, fetched once. */
export async function trainingTypes(nav) {
  types = types || await nav.api("/api/training-types");
  return types;
}

function deref(prop, root) {
  const ref = prop.$ref ?? (prop.allOf?.length === 1 ? prop.allOf[0].$ref : undefined);
  return ref ? root.$defs?.[ref.split("/").pop()] ?? {} : prop;
}
function scalar(prop) {
  const options = prop.anyOf ? prop.anyOf.filter((o) => o.type !== "null") : [prop];
  return options.length === 1 && SCALARS.includes(options[0].type) ? options[0] : null;
}
const isGroup = (prop) => prop.type === "object" && prop.properties;

/** The form's fields for a type's schema: scalars in a grid, then one fieldset per nested
 * object. A field that names the types it applies to (x-lorag-types) shows only for those. */
export function paramFields(schema, type) { return fields(schema, schema, [], type); }

function fields(schema, root, path, type) {
  const scalars = [], groups = [];
  for (const [name, raw] of Object.entries(schema.properties || {})) {
    if (name === "kind") continue;  // the discriminator: fixed by the type
    if (raw["x-lorag-types"] && !raw["x-lorag-types"].includes(type)) continue;
    const prop = deref(raw, root), at = [...path, name];
    if (isGroup(prop)) groups.push(group(raw, prop, root, at, type));
    else if (scalar(prop)) scalars.push(field(prop, scalar(prop), at.join(".")));
  }
  return `<div class="grid">${scalars.join("")}</div>${groups.join("")}`;
}

function group(raw, prop, root, at, type) {
  const id = `param-${at.join(".")}`;
  const legend = (raw.description || prop.title || at.join(".")).replace(/\.$/, "");
  return `<fieldset class="params" id="${esc(id)}"><legend>${esc(legend)}</legend>
    <p class="hint"><code>${esc(at.join("."))}.*</code> · ${esc(prop.description)}</p>
    <p class="error" id="${esc(id)}-error" role="alert"></p>${fields(prop, root, at, type)}</fieldset>`;
}

function field(prop, s, key) {
  const id = esc(`param-${key}`), def = prop.default ?? "";
  const attrs = `id="${id}" data-param="${esc(key)}" data-kind="${s.type}" aria-describedby="${id}-hint ${id}-error"`;
  let input;
  if (s.enum) {
    input = `<select ${attrs}>${s.enum.map((v) => `<option${v === def ? " selected" : ""}>${esc(v)}</option>`).join("")}</select>`;
  } else if (s.type === "boolean") {
    input = `<input type="checkbox" ${attrs}${def ? " checked" : ""}>`;
  } else if (NUMERIC.includes(s.type)) {
    const bounds = ("minimum" in s ? ` min="${s.minimum}"` : "") + ("maximum" in s ? ` max="${s.maximum}"` : "");
    input = `<input type="number" inputmode="decimal" step="${s.type === "integer" ? 1 : "any"}"${bounds} ${attrs} value="${esc(def)}">`;
  } else {
    input = `<input type="text" ${attrs} value="${esc(def)}"${s.maxLength ? ` maxlength="${s.maxLength}"` : ""}>`;
  }
  const hint = prop.description + (prop.default == null ? "" : ` Default: ${prop.default}.`);
  return `<div class="field"><label for="${id}">${esc(prop.title || key)}</label>${input}
    <p class="hint" id="${id}-hint">${esc(hint)}</p><p class="error" id="${id}-error" role="alert"></p></div>`;
}

function propAt(schema, path) {
  let prop = schema;
  for (const name of path) prop = deref(prop.properties[name], schema);
  return prop;
}

/**
 * The parameters as a nested object holding only what differs from the defaults, and the
 * fields the browser already knows are wrong, located like the API's 422 errors.
 */
export function readParams(root, schema) {
  const params = {}, problems = [];
  for (const el of $$("[data-param]", root)) {
    const path = el.dataset.param.split("."), def = propAt(schema, path).default;
    if (el.validity?.badInput) { problems.push({ loc: ["body", "parameters", ...path], msg: "enter a number" }); continue; }
    let value = el.type === "checkbox" ? el.checked : el.value.trim();
    if (value === "" && def == null) continue;
    if (NUMERIC.includes(el.dataset.kind)) value = value === "" ? null : Number(value);
    if (value === def) continue;
    let into = params;
    for (const name of path.slice(0, -1)) into = into[name] ??= {};
    into[path.at(-1)] = value;
  }
  return { params, problems };
}

/** The element a 422 error's loc points at: the field, or the nearest group holding it. */
function target(loc) {
  const [, where, ...rest] = loc;
  if (where !== "parameters") {
    return { el: document.getElementById(where === "datasets" ? "dataset" : where), extra: "" };
  }
  for (let n = rest.length; n > 0; n--) {
    const el = document.getElementById(`param-${rest.slice(0, n).join(".")}`);
    if (el) return { el, extra: rest.slice(n).join(".") };
  }
  return { el: null, extra: rest.join(".") };
}
const inOrder = (a, b) => a.compareDocumentPosition(b) & Node.DOCUMENT_POSITION_FOLLOWING ? -1 : 1;

/** Each error next to its field (aria-invalid), the rest under the form; focus the first. */
export function showFieldErrors(detail, fallback) {
  const marked = [];
  for (const e of detail) {
    const { el, extra } = target(e.loc || []);
    const slot = (el && document.getElementById(`${el.id}-error`)) || fallback;
    const msg = extra ? `${extra}: ${e.msg}` : e.msg;
    slot.textContent = [slot.textContent, msg].filter(Boolean).join("; ");
    if (el?.tagName === "FIELDSET") marked.push($$("[data-param]", el)[0]);  // a group's own error
    else if (el) { el.setAttribute("aria-invalid", "true"); marked.push(el); }
  }
  marked.filter(Boolean).sort(inOrder)[0]?.focus();
}
