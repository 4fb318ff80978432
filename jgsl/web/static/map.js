// The live world map: one SVG per world, a tile per node, a dot per agent, moved as the
// gateway pushes a snapshot each second (/map/events, Server-Sent Events). No library.
"use strict";
const SVG = "http://www.w3.org/2000/svg";
const worlds = new Map();  // worldpath -> {figure, svg, tiles: Map, dots: Map, box}
let selected = null;       // {kind: "node"|"agent", key}
let last = null;

function el(name, attrs, parent) {
  const node = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  if (parent) parent.appendChild(node);
  return node;
}

function worldView(path) {
  let view = worlds.get(path);
  if (view) return view;
  const figure = document.createElement("figure");
  figure.className = "world";
  figure.dataset.world = path;
  const caption = document.createElement("figcaption");
  caption.textContent = path;
  figure.appendChild(caption);
  const svg = el("svg", {class: "map", role: "img", "aria-label": "map of " + path}, figure);
  const tiles = el("g", {class: "tiles"}, svg);
  const agents = el("g", {class: "agents"}, svg);
  document.getElementById("worlds").appendChild(figure);
  view = {figure, svg, tilesLayer: tiles, agentsLayer: agents, tiles: new Map(),
          dots: new Map()};
  worlds.set(path, view);
  return view;
}

function nodeKey(n) { return n.grid + "/" + n.id; }

function draw(snap) {
  last = snap;
  const seen = new Set();
  const byWorld = new Map();
  for (const n of snap.nodes) {
    if (!byWorld.has(n.world)) byWorld.set(n.world, {nodes: [], agents: []});
    byWorld.get(n.world).nodes.push(n);
  }
  for (const a of snap.agents) {
    if (!byWorld.has(a.world)) byWorld.set(a.world, {nodes: [], agents: []});
    byWorld.get(a.world).agents.push(a);
  }
  for (const [path, content] of byWorld) {
    seen.add(path);
    const view = worldView(path);
    // the view box: every tile of this world, with a margin
    let x0 = Infinity, z0 = Infinity, x1 = -Infinity, z1 = -Infinity;
    for (const n of content.nodes) {
      const size = n.size || 200;
      x0 = Math.min(x0, n.gx * size); z0 = Math.min(z0, n.gy * size);
      x1 = Math.max(x1, (n.gx + 1) * size); z1 = Math.max(z1, (n.gy + 1) * size);
    }
    for (const a of content.agents) {
      x0 = Math.min(x0, a.x); z0 = Math.min(z0, a.z); x1 = Math.max(x1, a.x); z1 = Math.max(z1, a.z);
    }
    if (!isFinite(x0)) continue;
    const span = Math.max(x1 - x0, z1 - z0, 1), pad = span * 0.04;
    view.svg.setAttribute("viewBox", `${x0 - pad} ${z0 - pad} ${span + 2 * pad} ${span + 2 * pad}`);
    const unit = span / 100;
    const keep = new Set();
    for (const n of content.nodes) {
      const key = nodeKey(n);
      keep.add(key);
      let tile = view.tiles.get(key);
      if (!tile) {
        const rect = el("rect", {class: "tile"}, view.tilesLayer);
        const label = el("text", {class: "tile-label"}, view.tilesLayer);
        rect.addEventListener("click", () => select("node", key));
        tile = {rect, label};
        view.tiles.set(key, tile);
      }
      const size = n.size || 200;
      Object.entries({x: n.gx * size, y: n.gy * size, width: size, height: size})
        .forEach(([k, v]) => tile.rect.setAttribute(k, v));
      tile.rect.setAttribute("class", "tile " + n.state + (isSelected("node", key) ? " selected" : ""));
      tile.rect.dataset.node = key;
      tile.label.setAttribute("x", n.gx * size + unit);
      tile.label.setAttribute("y", n.gy * size + 3 * unit);
      tile.label.setAttribute("font-size", Math.min(2.2 * unit, size / 18));
      tile.label.textContent = `${n.gx},${n.gy} · ${n.grid.split(".")[0]} · ${n.users} users` +
        (n.load !== null ? ` · ${(n.load * 100).toFixed(1)}%` : "");
    }
    for (const [key, tile] of view.tiles) {
      if (!keep.has(key)) { tile.rect.remove(); tile.label.remove(); view.tiles.delete(key); }
    }
    const here = new Set();
    for (const a of content.agents) {
      here.add(a.jid);
      let dot = view.dots.get(a.jid);
      if (!dot) {
        const circle = el("circle", {class: "agent"}, view.agentsLayer);
        const name = el("text", {class: "agent-name"}, view.agentsLayer);
        circle.addEventListener("click", () => select("agent", a.jid));
        dot = {circle, name};
        view.dots.set(a.jid, dot);
      }
      dot.circle.setAttribute("cx", a.x);
      dot.circle.setAttribute("cy", a.z);
      dot.circle.setAttribute("r", 1.2 * unit);
      dot.circle.setAttribute("stroke-width", 0.3 * unit);
      dot.circle.setAttribute("class", "agent" + (a.npc ? " npc" : "") +
                              (isSelected("agent", a.jid) ? " selected" : ""));
      dot.circle.dataset.jid = a.jid;
      dot.name.setAttribute("x", a.x + 1.8 * unit);
      dot.name.setAttribute("y", a.z + 0.8 * unit);
      dot.name.setAttribute("font-size", 2.4 * unit);
      dot.name.textContent = a.name;
    }
    for (const [jid, dot] of view.dots) {
      if (!here.has(jid)) { dot.circle.remove(); dot.name.remove(); view.dots.delete(jid); }
    }
  }
  for (const [path, view] of worlds) {
    if (!seen.has(path)) { view.figure.remove(); worlds.delete(path); }
  }
  const users = snap.agents.filter(a => !a.npc).length;
  document.getElementById("summary").textContent =
    `${snap.grids.length} grid process(es) · ${snap.nodes.length} node(s) · ${users} user(s) · ` +
    `${snap.agents.length - users} NPC(s)`;
  showDetails();
}

function isSelected(kind, key) { return selected && selected.kind === kind && selected.key === key; }

function select(kind, key) { selected = {kind, key}; if (last) draw(last); }

function showDetails() {
  const fields = document.getElementById("fields");
  fields.replaceChildren();
  if (!selected || !last) return;
  let item = null;
  if (selected.kind === "node") item = last.nodes.find(n => nodeKey(n) === selected.key);
  else item = last.agents.find(a => a.jid === selected.key);
  if (!item) return;
  for (const [k, v] of Object.entries(item)) {
    const dt = document.createElement("dt"), dd = document.createElement("dd");
    dt.textContent = k;
    dd.textContent = typeof v === "number" ? String(Math.round(v * 100) / 100) : String(v);
    fields.append(dt, dd);
  }
}

function connect() {
  const status = document.getElementById("status");
  const events = new EventSource("/map/events");
  events.addEventListener("map", (e) => {
    status.textContent = "live";
    status.className = "status live";
    draw(JSON.parse(e.data));
  });
  events.onerror = () => { status.textContent = "reconnecting…"; status.className = "status down"; };
}

connect();
