// SVG drawing for the arithmetic page: grids of cells, the kernel window, the output being filled.

import { formatNumber } from "./ui.js";

const SVG = "http://www.w3.org/2000/svg";

function node(name, attributes = {}, text = null) {
  const element = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, value);
  if (text !== null) element.textContent = text;
  return element;
}

/** Cells smaller than this (in px) are drawn without their numbers, which would not fit. */
export const MIN_LABELLED_CELL = 16;
/** The smallest cell drawn at all: a 34-cell padded input beside its output on a phone. */
export const MIN_CELL = 4;

export function cellSize(count, room = 460) {
  return Math.max(10, Math.min(40, Math.floor(room / Math.max(count, 1))));
}

function label(value) {
  return Number.isInteger(value) ? String(value) : formatNumber(value, 2);
}

/**
 * Draws a rows x cols grid into `svg`. `classOf(r, c)` gives extra classes, `valueOf(r, c)` the number
 * shown (or null), `onClick(r, c)` makes cells clickable. Returns the cell size for overlays.
 */
export function drawGrid(svg, rows, cols, { classOf = () => "", valueOf = () => null, onClick = null, size = null, testid = null }) {
  const s = size ?? cellSize(Math.max(rows, cols));
  svg.replaceChildren();
  svg.setAttribute("viewBox", `0 0 ${cols * s + 2} ${rows * s + 2}`);
  svg.setAttribute("width", cols * s + 2);
  svg.setAttribute("height", rows * s + 2);
  const fontSize = Math.max(8, Math.min(14, s * 0.4));
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const rect = node("rect", { x: c * s + 1, y: r * s + 1, width: s, height: s, class: `cell ${classOf(r, c)}`.trim() });
      rect.dataset.row = r;
      rect.dataset.col = c;
      if (testid) rect.setAttribute("data-testid", testid);
      if (onClick) {
        rect.classList.add("output-cell");
        rect.addEventListener("click", () => onClick(r, c));
      }
      svg.append(rect);
      const value = valueOf(r, c);
      if (value !== null && value !== undefined && s >= MIN_LABELLED_CELL) {
        svg.append(node("text", { x: c * s + 1 + s / 2, y: r * s + 1 + s / 2 + fontSize * 0.35, "text-anchor": "middle", "font-size": fontSize }, label(value)));
      }
    }
  }
  return s;
}

/** A dashed box around the span the (dilated) kernel covers, and each tap's weight in its corner. */
export function drawWindow(svg, size, positions, weights, showWeights) {
  if (!positions.length) return;
  const rows = positions.map(([r]) => r);
  const cols = positions.map(([, c]) => c);
  const r0 = Math.min(...rows);
  const c0 = Math.min(...cols);
  const r1 = Math.max(...rows) + 1;
  const c1 = Math.max(...cols) + 1;
  svg.append(node("rect", { x: c0 * size + 1, y: r0 * size + 1, width: (c1 - c0) * size, height: (r1 - r0) * size, class: "window-span" }));
  if (!showWeights || size < 24) return;
  positions.forEach(([r, c], k) => {
    svg.append(node("text", { x: c * size + 3, y: r * size + 10, class: "tap-weight" }, `×${label(weights[k])}`));
  });
}

/** A dashed line in `overlay` (an SVG laid over both grids) from the right edge of `from` to a dot on the left edge of `to`. */
export function linkCells(overlay, from, to) {
  overlay.replaceChildren();
  if (!from || !to) return;
  const box = overlay.getBoundingClientRect();
  const a = from.getBoundingClientRect();
  const b = to.getBoundingClientRect();
  const x1 = a.right - box.left;
  const y1 = a.top + a.height / 2 - box.top;
  const x2 = b.left - box.left; // the edge, so the dot never covers the number
  const y2 = b.top + b.height / 2 - box.top;
  overlay.append(node("line", { x1, y1, x2, y2 }), node("circle", { cx: x2, cy: y2, r: 4 }));
}
