// @ts-check
// The one way the console builds its DOM. h(tag, props, ...children)
// makes an element; string and number children become text nodes, so
// nothing the server sends is ever parsed as HTML. There is deliberately
// no way here to set innerHTML, outerHTML or inline styles (the
// Content-Security-Policy forbids those too): classes and text only.

/**
 * A child of h(): a node, text (strings and numbers become text nodes), a
 * nested list of children, or nothing (null, undefined and false are
 * skipped, for conditional children).
 * @typedef {Node | string | number | null | undefined | false | ReadonlyArray<any>} Child
 */

/**
 * Props of h(): `class`; `on` with event listeners by type; `dataset`;
 * properties the element has (value, checked, disabled, hidden, type …)
 * are set as properties; anything else (aria-*, role, for …) as an
 * attribute. null, undefined and false leave a prop out; true sets an
 * attribute to "".
 * @typedef {{ class?: string, on?: Record<string, EventListener>, dataset?: Record<string, string> } & Record<string, unknown>} Props
 */

// Props that would let markup or styles in: refused outright.
const forbidden = new Set(["innerHTML", "outerHTML", "srcdoc", "style", "insertAdjacentHTML"]);

// Props set as DOM properties rather than attributes.
const properties = new Set(["value", "checked", "disabled", "hidden", "readOnly", "required", "selected", "multiple", "tabIndex", "htmlFor", "type", "id", "name", "href", "title", "placeholder", "rows", "min", "max", "step", "open"]);

/**
 * Makes an HTML element.
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {Props | null} [props]
 * @param {...Child} children
 * @returns {HTMLElementTagNameMap[K]}
 */
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  setProps(el, props ?? {});
  append(el, children);
  return el;
}

const svgNS = "http://www.w3.org/2000/svg";

/**
 * Makes an SVG element; props are attributes (and `class`, `on`).
 * @template {keyof SVGElementTagNameMap} K
 * @param {K} tag
 * @param {Props | null} [props]
 * @param {...Child} children
 * @returns {SVGElementTagNameMap[K]}
 */
export function svg(tag, props, ...children) {
  const el = /** @type {SVGElementTagNameMap[K]} */ (document.createElementNS(svgNS, tag));
  for (const [k, v] of Object.entries(props ?? {})) {
    if (forbidden.has(k)) throw new Error(`svg(): ${k} is not allowed`);
    if (v === null || v === undefined || v === false) continue;
    if (k === "on") listen(el, /** @type {Record<string, EventListener>} */ (v));
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  append(el, children);
  return el;
}

/**
 * @param {Element} el
 * @param {Props} props
 */
function setProps(el, props) {
  for (const [k, v] of Object.entries(props)) {
    if (forbidden.has(k) || k.startsWith("on") && k !== "on") throw new Error(`h(): ${k} is not allowed; use on: { … } for listeners`);
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") el.setAttribute("class", String(v));
    else if (k === "on") listen(el, /** @type {Record<string, EventListener>} */ (v));
    else if (k === "dataset") Object.assign(/** @type {HTMLElement} */ (el).dataset, v);
    else if (properties.has(k)) /** @type {any} */ (el)[k] = v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
}

/**
 * @param {Element} el
 * @param {Record<string, EventListener>} listeners
 */
function listen(el, listeners) {
  for (const [type, fn] of Object.entries(listeners)) el.addEventListener(type, fn);
}

/**
 * Appends children to el: strings and numbers as text nodes.
 * @param {Node} el
 * @param {ReadonlyArray<Child>} children
 */
export function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else if (c instanceof Node) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }
}

/**
 * Replaces el's children with children.
 * @param {Node} el
 * @param {...Child} children
 */
export function replace(el, ...children) {
  while (el.firstChild) el.removeChild(el.firstChild);
  append(el, children);
}

/** A counter for ids that label and describe elements. */
let lastId = 0;

/**
 * A unique element id starting with prefix.
 * @param {string} prefix
 */
export function uid(prefix) {
  return `${prefix}-${++lastId}`;
}

/**
 * The view's heading: focusable by script (tabindex -1), so that moving
 * to a view moves the focus, and screen readers, to its title.
 * @param {...Child} children
 */
export function heading(...children) {
  return h("h1", { tabindex: "-1", class: "view-title" }, ...children);
}

/**
 * An error shown in a view: a role="alert" paragraph, empty and hidden
 * until set. show(err) and clear().
 */
export function alertBox() {
  const el = h("p", { role: "alert", class: "error", hidden: true });
  return {
    el,
    /** @param {unknown} err @param {string} [context] what was being done */
    show(err, context) {
      replace(el, context ? `${context}: ${describeError(err)}` : describeError(err));
      el.hidden = false;
    },
    clear() {
      replace(el);
      el.hidden = true;
    },
  };
}

/**
 * Describes an error for people: a JSON-RPC error with its code, others by
 * their message.
 * @param {unknown} err
 */
export function describeError(err) {
  if (err && typeof err === "object") {
    const e = /** @type {{ name?: unknown, code?: unknown, message?: unknown }} */ (err);
    if (e.name === "SwitchboardError" && typeof e.code === "number") return `${e.message} (error ${e.code})`;
    if (typeof e.message === "string") return e.message;
  }
  return String(err);
}
