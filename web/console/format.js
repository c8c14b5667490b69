// @ts-check
// Formatting for people: durations, times, counts and JSON.

/**
 * A duration in seconds as "3d 4h 5m 6s", leaving out the leading zero
 * units ("5m 6s", "6s").
 * @param {number} seconds
 */
export function duration(seconds) {
  let s = Math.max(0, Math.floor(seconds));
  const d = Math.floor(s / 86400);
  s -= d * 86400;
  const hr = Math.floor(s / 3600);
  s -= hr * 3600;
  const m = Math.floor(s / 60);
  s -= m * 60;
  const parts = [];
  if (d) parts.push(`${d}d`);
  if (d || hr) parts.push(`${hr}h`);
  if (d || hr || m) parts.push(`${m}m`);
  parts.push(`${s}s`);
  return parts.join(" ");
}

/**
 * An RFC 3339 time as the reader's local date and time, to the second.
 * @param {string} iso
 */
export function dateTime(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return d.toLocaleString(undefined, { year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

/**
 * An RFC 3339 time as the reader's local time of day, to the millisecond.
 * @param {string} iso
 */
export function timeOfDay(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  const ms = String(d.getMilliseconds()).padStart(3, "0");
  return `${d.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false })}.${ms}`;
}

/** The time now, as timeOfDay gives it. */
export function now() {
  return timeOfDay(new Date().toISOString());
}

/**
 * "1 publication", "2 publications".
 * @param {number} n
 * @param {string} one
 * @param {string} [many]
 */
export function count(n, one, many = one + "s") {
  return `${n} ${n === 1 ? one : many}`;
}

/**
 * A JSON value indented for reading, as text.
 * @param {unknown} value
 */
export function pretty(value) {
  return JSON.stringify(value, null, 2) ?? String(value);
}

/**
 * A rate for the charts: one decimal below 10, none above.
 * @param {number} n
 */
export function rate(n) {
  return n < 10 ? n.toFixed(1) : Math.round(n).toString();
}
