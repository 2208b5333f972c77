// The flow as a graph: nodes laid out in columns by distance from the start, edges from every
// transition field (next, on_fail, options.*.next, …). Drawn as SVG by hand; each node is a
// focusable button for keyboard users.

const NS = "http://www.w3.org/2000/svg";
const EDGE_KEYS = new Set(["next", "on_fail", "on_limit", "on_error", "default", "open", "closed"]);
const W = 150;
const H = 46;
const GAP_X = 70;
const GAP_Y = 26;

/** [{from, to, label}] for every transition of every node. */
export function edgesOf(nodes) {
  const edges = [];
  const walk = (from, value, path) => {
    if (Array.isArray(value)) value.forEach((v, i) => walk(from, v, [...path, String(i)]));
    else if (value && typeof value === "object") for (const [k, v] of Object.entries(value)) walk(from, v, [...path, k]);
    else if (typeof value === "string" && EDGE_KEYS.has(path[path.length - 1]) && value in nodes) {
      const label = path.length > 1 ? path.slice(0, -1).filter((p) => p !== "options" && p !== "rules").join(".") || path[path.length - 1] : path[0];
      edges.push({ from, to: value, label });
    }
  };
  for (const [id, node] of Object.entries(nodes)) walk(id, node, []);
  return edges;
}

/** {id: {x, y}}: breadth-first columns from the start; unreachable nodes in a last column. */
export function layout(doc) {
  const nodes = doc.nodes || {};
  const edges = edgesOf(nodes);
  const depth = {};
  const queue = doc.start in nodes ? [doc.start] : [];
  if (queue.length) depth[doc.start] = 0;
  while (queue.length) {
    const id = queue.shift();
    for (const e of edges.filter((x) => x.from === id)) {
      if (!(e.to in depth)) {
        depth[e.to] = depth[id] + 1;
        queue.push(e.to);
      }
    }
  }
  const maxDepth = Math.max(-1, ...Object.values(depth));
  const columns = {};
  for (const id of Object.keys(nodes)) {
    const col = id in depth ? depth[id] : maxDepth + 1;
    (columns[col] ||= []).push(id);
  }
  const pos = {};
  for (const [col, ids] of Object.entries(columns)) {
    ids.forEach((id, row) => {
      pos[id] = { x: 16 + Number(col) * (W + GAP_X), y: 16 + row * (H + GAP_Y) };
    });
  }
  return pos;
}

function svg(tag, attrs = {}, text) {
  const node = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

/**
 * Draw *doc* into *box*. opts: selected id, errors {id: [messages]}, path [ids on the simulated
 * path], onSelect(id), label(id, node) for the accessible name.
 */
export function drawGraph(box, doc, opts) {
  const nodes = doc.nodes || {};
  const pos = layout(doc);
  const xs = Object.values(pos).map((p) => p.x + W);
  const ys = Object.values(pos).map((p) => p.y + H);
  const width = Math.max(320, ...xs) + 16;
  const height = Math.max(120, ...ys) + 16;
  const root = svg("svg", { class: "flow-graph", width, height, viewBox: `0 0 ${width} ${height}`, role: "group", "aria-label": opts.title });
  const defs = svg("defs");
  const marker = svg("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 10, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" });
  marker.append(svg("path", { d: "M 0 0 L 10 5 L 0 10 z", fill: "#4a5563" }));
  defs.append(marker);
  root.append(defs);
  const merged = new Map();
  for (const e of edgesOf(nodes)) {
    const key = `${e.from}\u0000${e.to}`;
    if (merged.has(key)) merged.get(key).label += `, ${e.label}`;
    else merged.set(key, { ...e });
  }
  for (const e of merged.values()) {
    const a = pos[e.from];
    const b = pos[e.to];
    if (!a || !b) continue;
    const x1 = a.x + W;
    const y1 = a.y + H / 2;
    const back = b.x <= a.x;
    const x2 = back ? b.x + W / 2 : b.x;
    const y2 = back ? b.y + (b.y >= a.y ? 0 : H) : b.y + H / 2;
    const mx = (x1 + x2) / 2;
    const d = back ? `M ${x1} ${y1} C ${x1 + 40} ${y1}, ${x2} ${y2 + (b.y >= a.y ? -40 : 40)}, ${x2} ${y2}` : `M ${x1} ${y1} C ${mx} ${y1}, ${mx} ${y2}, ${x2} ${y2}`;
    root.append(svg("path", { class: "edge", d, "marker-end": "url(#arrow)" }));
    root.append(svg("text", { class: "edge-label", x: mx, y: (y1 + y2) / 2 - 4, "text-anchor": "middle" }, e.label));
  }
  for (const [id, node] of Object.entries(nodes)) {
    const p = pos[id];
    const classes = ["node"];
    if (id === doc.start) classes.push("start");
    if (id === opts.selected) classes.push("selected");
    if (opts.errors[id]?.length) classes.push("invalid");
    if (opts.path.includes(id)) classes.push("on-path");
    const g = svg("g", {
      class: classes.join(" "),
      transform: `translate(${p.x} ${p.y})`,
      tabindex: 0,
      role: "button",
      "data-node": id,
      "aria-pressed": id === opts.selected ? "true" : "false",
    });
    g.append(svg("desc", {}, opts.label(id, node)));
    g.append(svg("rect", { width: W, height: H, rx: 6 }));
    g.append(svg("text", { x: 10, y: 19 }, `${id.length > 18 ? `${id.slice(0, 17)}…` : id} `));
    g.append(svg("text", { class: "type", x: 10, y: 36 }, node?.type || "?"));
    if (opts.errors[id]?.length) g.append(svg("text", { class: "err-mark", x: W - 22, y: 20 }, `!${opts.errors[id].length}`));
    g.addEventListener("click", () => opts.onSelect(id));
    g.addEventListener("keydown", (ev) => {
      if (ev.key === "Enter" || ev.key === " ") {
        ev.preventDefault();
        opts.onSelect(id);
      }
    });
    root.append(g);
  }
  box.replaceChildren(root);
}
