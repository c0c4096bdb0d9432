// The whole network in one view, as CNN Explainer draws it: the input on the left, then every layer as a
// column of its maps (a dense layer as a strip of units), and lines from the selected unit to the window it
// reads in the layer before. The thumbnails copy the big maps' canvases, so whatever is outlined there
// (the unit, its window, its receptive field on the input) shows here too.

import { h } from "./ui.js";

const SVG = "http://www.w3.org/2000/svg";
const HEADER = 44; // px above the columns: each layer's name and shape, or on a phone three staggered lines of names
const HEADER_WIDTH = 112; // px of a column's name and shape: 14 px type, legible on a projector
const HEADER_ROOM = 72; // px between columns' centres below which their names and shapes (up to 8 characters) would touch
const NAME_LINE = 13; // px, one line of names on a phone
// a layer with more maps than this gets side-by-side sub-columns (16 on a phone, where width is short)
const MAPS_PER_COLUMN = { wide: 8, narrow: 16 };
const STRIP = 10; // width of a dense layer's strip of units
const SKIP_ROOM = 24; // px under the maps for skip connections' lines
const CYAN = "#22d3ee"; // the selected unit's colour on the big maps too

function svgElement(tag, attributes) {
  const element = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, String(value));
  return element;
}

/**
 * Builds one column for the input and one per layer (`layers` from geometry()), into `root`.
 * Returns the view: its columns (each with its thumbnails' canvases) and the SVG the links go in.
 */
export function buildNetworkView(root, layers, inputShape, labels) {
  const columns = [
    { name: "input", label: "input", kind: "input", shape: inputShape, inputs: [] },
    ...layers.map((l) => ({ name: l.name, label: l.label, kind: l.kind, shape: l.shape, inputs: l.inputs ?? [] })),
  ];
  const links = svgElement("svg", { class: "network-links" });
  const skips = svgElement("svg", { class: "network-skips", "aria-hidden": "true" });
  root.replaceChildren();
  for (const column of columns) {
    // the input is shown as the network reads its first channel; a dense layer is one strip
    const count = column.kind !== "input" && column.shape.length === 3 ? column.shape[0] : 1;
    column.header = h(
      "div",
      { class: "network-header", "data-testid": "network-column", dataset: { layer: column.name } },
      column.label,
      h("span", { text: column.shape.join("×") }),
    );
    column.canvases = Array.from({ length: count }, (_, k) =>
      h("canvas", { class: `network-map network-${column.kind}`, dataset: { layer: column.name, channel: String(k) } }),
    );
    column.labels = column.label === "output" ? labels.map((name) => h("span", { class: "network-label", text: name })) : [];
    root.append(column.header, ...column.canvases, ...column.labels);
  }
  root.append(skips, links);
  const view = { root, links, skips, columns, selection: null };
  new ResizeObserver(() => layoutNetworkView(view)).observe(root);
  return view;
}

/** Places the columns across the view's width: maps as large as the height and width allow, gaps for the links. */
function layoutNetworkView(view) {
  const { root, columns } = view;
  const width = root.clientWidth;
  if (!width) return;
  // a narrow view (a phone, or a deep network whose columns are closer than a name is long) names its
  // columns in three staggered lines
  const narrow = width < 600 || width / columns.length < HEADER_ROOM;
  root.classList.toggle("narrow", narrow);
  // the maps' height: the page's --network-height (a projector's short screen asks for less), or by width
  const asked = Number.parseFloat(getComputedStyle(root).getPropertyValue("--network-height"));
  const height = asked > 0 ? asked : width < 600 ? 220 : 300;
  const minGap = narrow ? 8 : 36; // room for the links between columns
  const charWidth = narrow ? 6.5 : 8.5; // the class labels' monospace at 11 px (phone) or 14 px
  const labelWidth = Math.max(0, ...columns.flatMap((c) => c.labels.map((l) => l.textContent.length))) * charWidth + 4;
  const frame = { width, height, narrow, labelWidth };
  sizeColumns(columns, frame, minGap);
  const used = columns.reduce((n, c) => n + c.width, 0) + labelWidth;
  const gap = columns.length > 1 ? Math.max(minGap, (width - used) / (columns.length - 1)) : 0;
  let x = 0;
  columns.forEach((column, i) => {
    placeColumn(column, x, i, frame);
    x += column.width + gap;
  });
  // room under the maps for the skip connections' lines, when the network has any
  const skipping = columns.some((c, i) => c.inputs.some((name) => name !== columns[i - 1]?.name));
  const total = HEADER + height + 4 + (skipping ? SKIP_ROOM : 0);
  root.style.height = `${total}px`;
  view.links.setAttribute("viewBox", `0 0 ${width} ${total}`);
  view.skips.setAttribute("viewBox", `0 0 ${width} ${total}`);
  drawSkips(view, HEADER + height);
  linkNetworkView(view, view.selection);
}

/** A skip connection (a layer that reads a layer other than the one before it, as a residual block's add
 * reads the block's input) as a line arching over the columns it skips, from the layer it reads. */
function drawSkips({ skips, columns }, bottom) {
  skips.replaceChildren();
  columns.forEach((column, i) => {
    for (const name of column.inputs) {
      const source = columns.findIndex((c) => c.name === name);
      if (source < 0 || source === i - 1 || !columns[source].rects) continue;
      const from = columns[source].rects.at(-1);
      const to = column.rects.at(-1);
      const x1 = from.x + from.w;
      const x2 = to.x;
      const y = Math.min(bottom, Math.max(from.y + from.h, to.y + to.h)) + 2;
      const dip = 10 + 4 * ((i - source) % 3);
      skips.append(
        svgElement("path", {
          d: `M ${x1} ${y} C ${x1 + 20} ${y + dip}, ${x2 - 20} ${y + dip}, ${x2} ${y}`,
          class: "network-skip",
          "data-testid": "network-skip",
          "data-from": name,
          "data-to": column.name,
        }),
      );
    }
  });
}

/** Each column's grid of maps (sub-columns, rows, gaps) and map size; a fully connected layer is a strip. */
function sizeColumns(columns, { width, height, narrow, labelWidth }, minGap) {
  for (const column of columns) {
    column.subColumns = Math.ceil(column.canvases.length / MAPS_PER_COLUMN[narrow ? "narrow" : "wide"]);
    column.rows = Math.ceil(column.canvases.length / column.subColumns);
    column.gap = column.rows > 8 ? 2 : 4;
  }
  const spatial = columns.filter((c) => c.kind !== "fc");
  const strips = columns.length - spatial.length;
  // the input, where every explanation ends, may take twice a map's share of the width
  const shares = spatial.reduce((n, c) => n + (c.kind === "input" ? 2 : c.subColumns), 0);
  const share = (width - strips * STRIP - labelWidth - minGap * (columns.length - 1)) / shares;
  for (const column of spatial) {
    const [, rows, cols] = column.shape.length === 3 ? column.shape : [1, ...column.shape];
    const fromHeight = (height - (column.rows - 1) * column.gap) / column.rows;
    const fromWidth = column.kind === "input" ? 2 * share : share;
    const side = Math.max(4, Math.floor(Math.min(column.kind === "input" ? 96 : 64, fromHeight, fromWidth)));
    column.mapHeight = side;
    column.mapWidth = Math.max(4, Math.round((side * cols) / rows));
    column.width = column.subColumns * column.mapWidth + (column.subColumns - 1) * 2;
  }
  for (const column of columns.filter((c) => c.kind === "fc")) column.width = STRIP;
}

/** Puts column ``i``'s name, maps (or strip and class labels) at ``x``. */
function placeColumn(column, x, i, { width, height, narrow, labelWidth }) {
  // centred over the column and its class labels, never cut off at either edge; on a phone the names
  // take three staggered lines, so that neighbours do not run into each other
  const centre = x + (column.width + (column.labels.length ? labelWidth : 0)) / 2;
  const line = narrow ? (i % 3) * NAME_LINE : 0;
  // a name that would run past an edge is set flush with that edge instead of centred, so it stays
  // over its own column rather than drifting over its neighbour's
  const headerWidth = narrow ? 80 : HEADER_WIDTH;
  const left = Math.min(Math.max(centre - headerWidth / 2, 0), width - headerWidth);
  column.header.style.textAlign = left === 0 && centre < headerWidth / 2 ? "left" : left < centre - headerWidth / 2 ? "right" : "center";
  place(column.header, left, line, headerWidth, HEADER - line);
  if (column.kind === "fc") {
    column.rects = [{ x, y: HEADER, w: STRIP, h: height }];
    column.labels.forEach((label, u) => {
      const step = height / column.labels.length;
      place(label, x + STRIP + 3, HEADER + u * step, labelWidth, step);
      label.style.fontSize = `${Math.min(narrow ? 11 : 14, step)}px`;
    });
  } else {
    const block = column.rows * column.mapHeight + (column.rows - 1) * column.gap;
    const top = HEADER + (height - block) / 2;
    column.rects = column.canvases.map((_, k) => ({
      x: x + Math.floor(k / column.rows) * (column.mapWidth + 2),
      y: top + (k % column.rows) * (column.mapHeight + column.gap),
      w: column.mapWidth,
      h: column.mapHeight,
    }));
  }
  column.canvases.forEach((canvas, k) => place(canvas, column.rects[k].x, column.rects[k].y, column.rects[k].w, column.rects[k].h));
}

function place(element, x, y, w, hgt) {
  Object.assign(element.style, { left: `${x}px`, top: `${y}px`, width: `${w}px`, height: `${hgt}px` });
}

/**
 * Copies each column's source canvas into its thumbnails: `source(name, k)` gives the big map's canvas
 * (one pixel per cell); a dense layer's horizontal strip is turned upright.
 */
export function paintNetworkView(view, source) {
  for (const column of view.columns) {
    column.canvases.forEach((canvas, k) => {
      const from = source(column.name, k);
      if (!from || !from.width) return;
      const upright = column.kind === "fc";
      const [width, height] = upright ? [from.height, from.width] : [from.width, from.height];
      // resized only when the map's size changes (a new model): the opaque copy covers the rest
      if (canvas.width !== width || canvas.height !== height) Object.assign(canvas, { width, height });
      const ctx = canvas.getContext("2d");
      ctx.setTransform(...(upright ? [0, 1, 1, 0, 0, 0] : [1, 0, 0, 1, 0, 0])); // upright: unit u goes to row u
      ctx.drawImage(from, 0, 0);
    });
  }
}

/** The rectangle of cells [r0, c0, r1, c1) of a thumbnail, in the view's pixels, clipped to the map. */
function cellsRect(column, k, [r0, c0, r1, c1]) {
  const rect = column.rects[k];
  const canvas = column.canvases[k];
  const [rows, cols] = column.kind === "fc" ? [canvas.height, 1] : [canvas.height, canvas.width];
  const clip = (v, n) => Math.min(Math.max(v, 0), n);
  const top = rect.y + (clip(r0, rows) / rows) * rect.h;
  const left = rect.x + (clip(c0, cols) / cols) * rect.w;
  return { x: left, y: top, w: rect.x + (clip(c1, cols) / cols) * rect.w - left, h: rect.y + (clip(r1, rows) / rows) * rect.h - top };
}

/**
 * Draws the links for `selection` (null clears them):
 *  - a map's unit { name, channel, row, col, sources, field }: the unit outlined, its window outlined on each
 *    map it reads (`sources`: each layer's name, channels and window; a merge reads several layers), a line
 *    from each window to the unit, and its receptive field on the input (dashed, when it does not read the
 *    input itself);
 *  - a dense unit { name, unit }: it reads every value of the layer before, so lines fan out to all of it.
 */
export function linkNetworkView(view, selection) {
  view.selection = selection;
  const { links, columns } = view;
  links.replaceChildren();
  if (!selection || !columns[0].rects) return;
  const column = columns.find((c) => c.name === selection.name);
  const previous = columns[columns.indexOf(column) - 1];
  const add = (tag, attributes) => links.append(svgElement(tag, { stroke: CYAN, fill: "none", "stroke-width": 1.5, ...attributes }));
  const box = (r, attributes = {}) => add("rect", { x: r.x, y: r.y, width: Math.max(r.w, 2), height: Math.max(r.h, 2), ...attributes });

  if (selection.unit !== undefined) {
    const unit = cellsRect(column, 0, [selection.unit, 0, selection.unit + 1, 1]);
    box(unit, { "data-testid": "network-unit", "stroke-width": 2 });
    const left = Math.min(...previous.rects.map((r) => r.x + r.w));
    const right = Math.max(...previous.rects.map((r) => r.x + r.w));
    const top = Math.min(...previous.rects.map((r) => r.y));
    const bottom = Math.max(...previous.rects.map((r) => r.y + r.h));
    for (const y of [top, bottom]) {
      add("line", { x1: Math.max(left, right), y1: y, x2: unit.x, y2: unit.y + unit.h / 2, "data-testid": "network-link", opacity: 0.8 });
    }
    return;
  }
  const unit = cellsRect(column, selection.channel, [selection.row, selection.col, selection.row + 1, selection.col + 1]);
  // the cells it reads: in the layer before, or (a merge, a skip) in each layer it names
  const sources = selection.sources ?? [{ name: previous.name, channels: selection.channels, window: selection.window }];
  for (const source of sources) {
    const from = columns.find((c) => c.name === source.name) ?? previous;
    for (const k of source.channels) {
      const patch = cellsRect(from, Math.min(k, from.canvases.length - 1), source.window);
      box(patch, { "data-testid": "network-patch" });
      add("line", { x1: patch.x + patch.w, y1: patch.y + patch.h / 2, x2: unit.x, y2: unit.y + unit.h / 2, "data-testid": "network-link", opacity: 0.8 });
    }
  }
  if (!sources.every((source) => source.name === "input")) {
    const field = cellsRect(columns[0], 0, selection.field);
    box(field, { "data-testid": "network-field", "stroke-dasharray": "3 2" });
    add("line", {
      x1: field.x + field.w, y1: field.y + field.h / 2, x2: unit.x, y2: unit.y + unit.h / 2,
      "stroke-dasharray": "3 3", opacity: 0.6,
    });
  }
  box(unit, { "data-testid": "network-unit", "stroke-width": 2, stroke: "#f97316" });
}
