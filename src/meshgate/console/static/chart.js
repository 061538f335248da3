// Small SVG charts: bars for one figure per label, lines for figures over time.
const NS = "http://www.w3.org/2000/svg";

function svg(width, height, label) {
  const el = document.createElementNS(NS, "svg");
  el.setAttribute("viewBox", `0 0 ${width} ${height}`);
  el.setAttribute("role", "img");
  el.setAttribute("aria-label", label);
  el.style.width = "100%";
  return el;
}

function add(parent, tag, attrs, text) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  if (text !== undefined) el.textContent = text;
  parent.append(el);
  return el;
}

export function bars(title, items) {
  const width = 320, row = 22, height = Math.max(1, items.length) * row + 8;
  const el = svg(width, height, `${title}: ` + items.map(([k, v]) => `${k} ${v}`).join(", "));
  const max = Math.max(1e-9, ...items.map(([, v]) => v || 0));
  items.forEach(([name, value], i) => {
    const y = 4 + i * row;
    add(el, "text", { x: 0, y: y + 14 }, name);
    add(el, "rect", { x: 90, y: y + 3, height: 14, fill: "#1f5fbf",
      width: Math.max(1, ((value || 0) / max) * 170) });
    add(el, "text", { x: 266, y: y + 14 }, value === null ? "-" : String(value));
  });
  return el;
}

export function lines(title, series) {
  const width = 320, height = 120;
  const el = svg(width, height, title);
  const points = series.flatMap((s) => s.points);
  const max = Math.max(1e-9, ...points.map((p) => p[1]));
  const t0 = Math.min(...points.map((p) => p[0]), 0);
  const t1 = Math.max(...points.map((p) => p[0]), t0 + 1);
  const colors = ["#1f5fbf", "#b3261e", "#1b7f3b", "#8a4fbf"];
  series.forEach((s, i) => {
    const d = s.points.map(([t, v], j) =>
      `${j ? "L" : "M"}${(10 + ((t - t0) / (t1 - t0)) * 300).toFixed(1)},` +
      `${(100 - (v / max) * 90).toFixed(1)}`).join(" ");
    if (d) add(el, "path", { d, fill: "none", stroke: colors[i % 4], "stroke-width": 2 });
    add(el, "text", { x: 10 + i * 80, y: 116, fill: colors[i % 4] }, s.name);
  });
  add(el, "text", { x: 270, y: 12 }, max.toFixed(max < 10 ? 2 : 0));
  return el;
}
