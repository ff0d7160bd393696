// The stack drawn as boxes (health, replicas, uptime) and edges (the caller's breaker).
"use strict";
const BOXES = {
  gateway: [95, 150], orders: [400, 150], inventory: [795, 50], payments: [795, 150], notifications: [795, 250],
  postgres: [140, 355], redis: [350, 355], prometheus: [560, 355], alertmanager: [770, 355],
};
const BOX_W = 170, BOX_H = 70;

function uptimeText(seconds) {
  if (seconds < 90) return `${Math.round(seconds)}s`;
  if (seconds < 5400) return `${Math.round(seconds / 60)}m`;
  return `${(seconds / 3600).toFixed(1)}h`;
}

function drawTopology(svg, boxes, edges) {
  svg.replaceChildren();
  for (const edge of edges) {
    const [x1, y1] = BOXES[edge.from], [x2, y2] = BOXES[edge.to];
    const g = svgEl("g", { class: "edge", "data-edge": `${edge.from}-${edge.to}`, "data-state": edge.state });
    const [a, b] = [x1 + BOX_W / 2, x2 - BOX_W / 2];
    g.appendChild(svgEl("line", { x1: a, y1, x2: b, y2 }));
    const state = edge.state.replace("_", "-");
    g.appendChild(svgEl("text", { x: (a + b) / 2, y: (y1 + y2) / 2 - 10 }, `${edge.label}: ${state}`));
    svg.appendChild(g);
  }
  const byName = Object.fromEntries(boxes.map((b) => [b.name, b]));
  for (const [name, [x, y]] of Object.entries(BOXES)) {
    const box = byName[name];
    const health = box ? box.health : "unknown";
    const g = svgEl("g", { class: "box", "data-box": name, "data-health": health });
    g.appendChild(svgEl("rect", { x: x - BOX_W / 2, y: y - BOX_H / 2, width: BOX_W, height: BOX_H }));
    g.appendChild(svgEl("text", { class: "name", x, y: y - 8 }, name));
    const detail = box
      ? `${health} · ${box.running}/${box.replicas} · ${box.running ? uptimeText(box.uptime_s) : "down"}`
      : "not running here";
    g.appendChild(svgEl("text", { x, y: y + 20 }, detail));
    svg.appendChild(g);
  }
}
