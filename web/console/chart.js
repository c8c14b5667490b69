// @ts-check
// A small live line chart in SVG, built with createElementNS: the last
// 60 values, scaled to the largest of them.

import { h, svg, replace } from "./dom.js";
import { rate } from "./format.js";

const width = 240;
const height = 60;
const points = 60;

/**
 * A chart titled title, of values in unit ("calls/s"). push(value) adds a
 * point; null is a poll that gave no value, drawn as a break.
 * @param {string} title
 * @param {string} unit
 */
export function sparkline(title, unit) {
  /** @type {(number | null)[]} */
  const values = [];
  const line = svg("path", { class: "chart-line", d: "", "vector-effect": "non-scaling-stroke" });
  const area = svg("path", { class: "chart-area", d: "" });
  const chart = svg("svg", {
    class: "chart", viewBox: `0 0 ${width} ${height}`, preserveAspectRatio: "none",
    role: "img", "aria-label": `${title}: no data yet`,
  },
    svg("line", { class: "chart-base", x1: 0, y1: height - 0.5, x2: width, y2: height - 0.5, "vector-effect": "non-scaling-stroke" }),
    area, line,
  );
  const current = h("span", { class: "chart-now" }, "–");
  const peak = h("span", { class: "chart-peak" });
  const el = h("figure", { class: "chart-box" },
    h("figcaption", null, h("span", { class: "chart-title" }, title), " ", current, " ", h("span", { class: "chart-unit" }, unit)),
    chart,
    h("p", { class: "chart-scale" }, peak),
  );

  /** @param {number | null} value */
  function push(value) {
    values.push(value);
    if (values.length > points) values.shift();
    const known = /** @type {number[]} */ (values.filter((v) => v !== null));
    const max = Math.max(1, ...known);
    const step = width / (points - 1);
    const x0 = width - (values.length - 1) * step;
    let d = "";
    let fill = "";
    let run = /** @type {string[]} */ ([]);
    const flush = () => {
      if (run.length) {
        d += "M" + run.join("L");
        const first = run[0]?.split(",")[0];
        const last = run[run.length - 1]?.split(",")[0];
        fill += `M${first},${height}L${run.join("L")}L${last},${height}Z`;
      }
      run = [];
    };
    values.forEach((v, i) => {
      if (v === null) return flush();
      const x = (x0 + i * step).toFixed(1);
      const y = (height - 2 - (v / max) * (height - 4)).toFixed(1);
      run.push(`${x},${y}`);
    });
    flush();
    line.setAttribute("d", d);
    area.setAttribute("d", fill);
    replace(current, value === null ? "–" : rate(value));
    replace(peak, known.length ? `peak ${rate(Math.max(0, ...known))} ${unit} over the last ${values.length} s` : "");
    chart.setAttribute("aria-label", value === null ? `${title}: no value` : `${title}: ${rate(value)} ${unit} now, peak ${rate(Math.max(0, ...known))}`);
  }

  return { el, push };
}
