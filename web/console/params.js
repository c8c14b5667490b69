// @ts-check
// Form fields made from an OpenRPC method's params: a string is a text
// field, an integer or number a number field, a boolean a checkbox, an
// enum a select, and anything else (objects, arrays, any value) JSON in a
// textarea, checked with JSON.parse. Each field reads back as a value, or
// as absent when an optional one is left empty.

import { h, replace, uid } from "./dom.js";

/**
 * A JSON Schema, as much of it as the forms look at.
 * @typedef {{ type?: string | string[], enum?: unknown[], title?: string, description?: string, properties?: Record<string, Schema>, required?: string[], items?: Schema, minimum?: number, maximum?: number }} Schema
 */

/**
 * An OpenRPC content descriptor.
 * @typedef {{ name: string, description?: string, summary?: string, required?: boolean, schema?: Schema }} Param
 */

/**
 * A field of the form. read() gives { value } or {} when left out, and
 * throws an Error (already shown next to the field) when the input is
 * not valid.
 * @typedef {{ el: HTMLElement, name: string, read: () => { value?: unknown } }} Field
 */

/**
 * @param {Schema | undefined} schema
 * @returns {string} the schema's one type, or "" when it has none or several
 */
function typeOf(schema) {
  const t = schema?.type;
  if (Array.isArray(t)) {
    const notNull = t.filter((x) => x !== "null");
    return notNull.length === 1 ? notNull[0] ?? "" : "";
  }
  return t ?? "";
}

/**
 * A placeholder for a JSON field: a skeleton of the schema.
 * @param {Schema | undefined} schema
 * @param {unknown} [example]
 */
function skeleton(schema, example) {
  if (example !== undefined) return JSON.stringify(example);
  const t = typeOf(schema);
  if (t === "object" && schema?.properties) {
    /** @type {Record<string, unknown>} */
    const o = {};
    for (const [k, s] of Object.entries(schema.properties)) o[k] = sample(s);
    return JSON.stringify(o);
  }
  if (t === "array") return "[]";
  return "JSON";
}

/** @param {Schema} s */
function sample(s) {
  switch (typeOf(s)) {
    case "string": return "";
    case "integer": case "number": return s.minimum ?? 0;
    case "boolean": return false;
    case "array": return [];
    case "object": return {};
    default: return null;
  }
}

/**
 * The field for param; example, if given, is shown as a placeholder.
 * @param {Param} param
 * @param {unknown} [example]
 * @returns {Field}
 */
export function paramField(param, example) {
  const schema = param.schema ?? {};
  const type = typeOf(schema);
  const required = param.required === true;
  const id = uid(`param-${param.name}`);
  const hintId = `${id}-hint`;
  const errorId = `${id}-error`;
  const describedBy = `${hintId} ${errorId}`;
  const error = h("p", { id: errorId, class: "field-error", hidden: true });
  const hint = h("p", { id: hintId, class: "hint" },
    param.description ?? schema.description ?? "",
    h("span", { class: "param-type" }, ` (${Array.isArray(schema.enum) ? "one of the values" : type || "any JSON value"})`));
  const label = h("label", { htmlFor: id }, param.name, required ? h("span", { class: "required" }, " (required)") : null);
  const placeholder = example === undefined ? undefined : typeof example === "string" ? example : JSON.stringify(example);

  /** @type {HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement} */
  let input;
  /** @type {() => { value?: unknown }} */
  let parse;

  if (Array.isArray(schema.enum)) {
    const options = schema.enum.map((v, i) => h("option", { value: String(i) }, JSON.stringify(v)));
    const select = h("select", { id, name: param.name, "aria-describedby": describedBy },
      required ? null : h("option", { value: "" }, "(not set)"),
      options);
    input = select;
    parse = () => (select.value === "" ? {} : { value: schema.enum?.[Number(select.value)] });
  } else if (type === "string") {
    const text = h("input", { type: "text", id, name: param.name, autocomplete: "off", spellcheck: "false", placeholder, "aria-describedby": describedBy });
    input = text;
    parse = () => {
      if (text.value === "") {
        if (required) throw new Error(`${param.name} is required`);
        return {};
      }
      return { value: text.value };
    };
  } else if (type === "integer" || type === "number") {
    const num = h("input", {
      type: "number", id, name: param.name, step: type === "integer" ? "1" : "any", placeholder, "aria-describedby": describedBy,
      min: schema.minimum, max: schema.maximum,
    });
    input = num;
    parse = () => {
      if (num.validity.badInput) throw new Error(`${param.name} must be a number`);
      if (num.value === "") {
        if (required) throw new Error(`${param.name} is required`);
        return {};
      }
      const n = Number(num.value);
      if (!Number.isFinite(n)) throw new Error(`${param.name} must be a number`);
      if (type === "integer" && !Number.isInteger(n)) throw new Error(`${param.name} must be a whole number`);
      return { value: n };
    };
  } else if (type === "boolean") {
    const box = h("input", { type: "checkbox", id, name: param.name, "aria-describedby": describedBy });
    input = box;
    // A checkbox cannot say "not set": unchecked leaves an optional one out.
    parse = () => (box.checked ? { value: true } : required ? { value: false } : {});
  } else {
    const area = h("textarea", {
      id, name: param.name, rows: 3, spellcheck: "false", placeholder: skeleton(schema, example), "aria-describedby": describedBy,
    });
    input = area;
    parse = () => {
      const text = area.value.trim();
      if (text === "") {
        if (required) throw new Error(`${param.name} is required (as JSON)`);
        return {};
      }
      let value;
      try {
        value = JSON.parse(text);
      } catch (err) {
        throw new Error(`${param.name} is not JSON: ${err instanceof Error ? err.message : String(err)}`);
      }
      if (type === "object" && (value === null || typeof value !== "object" || Array.isArray(value))) throw new Error(`${param.name} must be a JSON object`);
      if (type === "array" && !Array.isArray(value)) throw new Error(`${param.name} must be a JSON array`);
      return { value };
    };
  }
  if (required) input.setAttribute("aria-required", "true");

  const el = type === "boolean" && !Array.isArray(schema.enum)
    ? h("div", { class: "field field-check" }, h("div", { class: "check" }, input, label), hint, error)
    : h("div", { class: "field" }, label, input, hint, error);

  input.addEventListener("input", () => {
    if (input.hasAttribute("aria-invalid")) {
      input.removeAttribute("aria-invalid");
      error.hidden = true;
    }
  });

  return {
    el,
    name: param.name,
    read() {
      try {
        const r = parse();
        input.removeAttribute("aria-invalid");
        error.hidden = true;
        return r;
      } catch (err) {
        input.setAttribute("aria-invalid", "true");
        replace(error, err instanceof Error ? err.message : String(err));
        error.hidden = false;
        throw err;
      }
    },
  };
}

/**
 * Reads every field into params by name, leaving out the optional ones
 * left empty. Throws, having shown the errors and focused the first
 * field at fault, when one is not valid.
 * @param {Field[]} fields
 * @returns {Record<string, unknown>}
 */
export function readParams(fields) {
  /** @type {Record<string, unknown>} */
  const params = {};
  /** @type {Error | null} */
  let first = null;
  for (const f of fields) {
    try {
      const r = f.read();
      if ("value" in r) params[f.name] = r.value;
    } catch (err) {
      if (!first) {
        first = err instanceof Error ? err : new Error(String(err));
        /** @type {HTMLElement | null} */ (f.el.querySelector("input, select, textarea"))?.focus();
      }
    }
  }
  if (first) throw first;
  return params;
}
