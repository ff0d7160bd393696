// Line charts as inline SVG: one series of {t, value} points, its latest value above it.
"use strict";
const SVG_NS = "http://www.w3.org/2000/svg";

function svgEl(name, attrs, text) {
  const el = document.createElementNS(SVG_NS, name);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, v);
  if (text !== undefined) el.textContent = text;
  return el;
}

function formatValue(value, format) {
  if (value === null || value === undefined) return format === "percent" ? "no order finished" : "no data";
  if (format === "percent") return (100 * value).toFixed(1) + " %";
  if (format === "seconds") return value < 1 ? (1000 * value).toFixed(0) + " ms" : value.toFixed(2) + " s";
  return String(Math.round(value));
}

function drawChart(container, points, key) {
  const format = container.dataset.format;
  const values = points.map((p) => p[key]).filter((v) => v !== null && v !== undefined);
  const latest = points.length ? points[points.length - 1][key] : null;
  const width = 300, height = 120;
  let low = 0, high = format === "percent" ? 1 : Math.max(1e-9, ...values) * 1.15;
  if (format !== "percent" && !values.length) high = 1;
  const t0 = points.length ? points[0].t : 0, t1 = points.length ? points[points.length - 1].t : 1;
  const span = Math.max(1, t1 - t0);
  const coords = points
    .filter((p) => p[key] !== null && p[key] !== undefined)
    .map((p) => `${(((p.t - t0) / span) * width).toFixed(1)},${(height - ((p[key] - low) / (high - low)) * height).toFixed(1)}`);
  container.replaceChildren();
  const head = document.createElement("div");
  head.innerHTML = `<span class="title"></span>: <span class="now"></span>`;
  head.querySelector(".title").textContent = container.dataset.title;
  head.querySelector(".now").textContent = formatValue(latest, format);
  container.appendChild(head);
  const svg = svgEl("svg", { viewBox: `0 0 ${width} ${height}`, preserveAspectRatio: "none" });
  svg.appendChild(svgEl("polyline", { points: coords.join(" ") }));
  container.appendChild(svg);
  const axis = document.createElement("div");
  axis.className = "hint";
  axis.textContent = `0 – ${formatValue(high, format)} over the last ${Math.round(span)} s`;
  container.appendChild(axis);
}
