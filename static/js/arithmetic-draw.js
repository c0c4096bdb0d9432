// SVG drawing for the arithmetic page: grids of cells, the kernel window, the output being filled.

import { formatNumber } from "./ui.js";

const SVG = "http://www.w3.org/2000/svg";

function node(name, attributes = {}, text = null) {
  const element = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, value);
  if (text !== null) element.textContent = text;
  return element;
}

/** Cells smaller than this (in px) are drawn without their numbers: a number is never under 12 px, and one
 * too wide for its cell at 12 px (-12 in a 20 px cell) is left out too. */
export const MIN_LABELLED_CELL = 20;
const DIGIT_PX = 7.4; // a digit's width at 12 px, with room to spare
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
  const fontSize = Math.max(12, Math.min(15, s * 0.45));
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
      if (value !== null && value !== undefined && s >= MIN_LABELLED_CELL && label(value).length * DIGIT_PX + 4 <= s) {
        const text = node("text", { x: c * s + 1 + s / 2, y: r * s + 1 + s / 2 + fontSize * 0.35, "text-anchor": "middle", "font-size": fontSize }, label(value));
        text.dataset.cell = `${r},${c}`;
        svg.append(text);
      }
    }
  }
  return s;
}

/** The input of a sliding window (padded): the taps, max pooling's winner, cells no window covers (past
 * `reach` rows and columns), the padding; and the window with each tap's weight. Returns the cell size. */
export function slidingInput(svg, grid, { step, reach: [rh, rw], pad: [p, pw], winner, weights, show, size }) {
  const np = grid.length;
  const npw = grid[0]?.length ?? 0;
  const taps = new Set((step?.positions ?? []).map(([r, c]) => `${r},${c}`));
  const cell = drawGrid(svg, np, npw, {
    size,
    classOf: (r, c) => {
      if (`${r},${c}` === winner) return "tap winner";
      if (taps.has(`${r},${c}`)) return "tap";
      if (r >= rh || c >= rw) return "uncovered";
      return r < p || c < pw || r >= np - p || c >= npw - pw ? "pad" : "";
    },
    valueOf: (r, c) => (show ? grid[r][c] : null),
  });
  if (step) drawWindow(svg, cell, step.positions, weights ?? [], show && weights !== null);
  return cell;
}

/** A transposed convolution's input as a direct one reads it: `q` zeros around, S − 1 inserted between. */
export function directInput(svg, grid, { q, s, step, show, size }) {
  const side = grid.length;
  const taps = new Set((step?.positions ?? []).map(([r, c]) => `${r},${c}`));
  const cell = drawGrid(svg, side, side, {
    size,
    classOf: (r, c) => {
      if (taps.has(`${r},${c}`)) return "tap";
      if (r < q || c < q || r >= side - q || c >= side - q) return "pad";
      return (r - q) % s === 0 && (c - q) % s === 0 ? "" : "inserted";
    },
    valueOf: (r, c) => (show ? grid[r][c] : null),
  });
  if (step) drawWindow(svg, cell, step.positions, step.weights, show);
  return cell;
}

/** The output as the steps fill it: the cells `done` with their numbers, the `step`'s own marked, each cell
 * a click away (`onPick` with its step number). */
export function outputPlane(svg, out, { step, done, show, size, onPick }) {
  const width = out.length ? out[0].length : 0;
  drawGrid(svg, out.length, width, {
    classOf: (r, c) => (step && step.output[0] === r && step.output[1] === c ? "current" : done.has(`${r},${c}`) ? "filled" : ""),
    valueOf: (r, c) => (show && done.has(`${r},${c}`) ? out[r][c] : null),
    onClick: (r, c) => onPick(r * width + c),
    testid: "output-cell",
    size,
  });
}

/**
 * A transposed convolution as it scatters: each input cell (a click away) adds value × kernel onto the
 * full `full` x `full` output, whose outer `p` ring padding crops; the output holds the sums of the `steps`
 * done so far, the current `step`'s cells marked.
 */
export function scatterPlanes(inputSvg, outputSvg, { input, steps, step, full, p, show, size, onPick }) {
  const n = input.length;
  drawGrid(inputSvg, n, n, {
    classOf: (r, c) => (step && step.input[0] === r && step.input[1] === c ? "current" : ""),
    valueOf: (r, c) => (show ? input[r][c] : null),
    onClick: (r, c) => onPick(r * n + c),
    size,
  });
  const sums = Array.from({ length: full }, () => new Array(full).fill(0));
  for (const s of steps) s.positions.forEach(([r, c], k) => (sums[r + p][c + p] += s.products[k]));
  const scatter = new Set((step?.positions ?? []).map(([r, c]) => `${r + p},${c + p}`));
  drawGrid(outputSvg, full, full, {
    classOf: (r, c) => {
      if (scatter.has(`${r},${c}`)) return "scatter";
      return r < p || c < p || r >= full - p || c >= full - p ? "cropped" : "filled";
    },
    valueOf: (r, c) => (show ? sums[r][c] : null),
    size,
  });
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
  // the weight sits in the cell's top band and the cell's own number moves to the bottom band: both legible
  const markSize = Math.max(10, Math.round(size * 0.3));
  positions.forEach(([r, c], k) => {
    const value = svg.querySelector(`text[data-cell="${r},${c}"]`);
    if (value) {
      value.setAttribute("y", r * size + 1 + size - size * 0.12);
      value.setAttribute("font-size", Math.min(Number(value.getAttribute("font-size")), size * 0.38));
    }
    svg.append(node("text", { x: c * size + 3, y: r * size + 1 + markSize, class: "tap-weight", "font-size": markSize }, `×${label(weights[k])}`));
  });
}

/**
 * A dashed bracket in `overlay` (an SVG laid over both grids) from above the window `from` to above the
 * output cell `to`: it runs over the grids' top edges, never across a cell, so it crosses no number.
 */
export function linkCells(overlay, from, to) {
  overlay.replaceChildren();
  if (!from || !to) return;
  const box = overlay.getBoundingClientRect();
  const a = from.getBoundingClientRect();
  const b = to.getBoundingClientRect();
  const topA = (from.ownerSVGElement ?? from).getBoundingClientRect().top - box.top;
  const topB = (to.ownerSVGElement ?? to).getBoundingClientRect().top - box.top;
  const x1 = a.left + a.width / 2 - box.left;
  const x2 = b.left + b.width / 2 - box.left;
  const above = Math.min(topA, topB) - 8;
  const points = `${x1},${topA} ${x1},${above} ${x2},${above} ${x2},${topB}`;
  overlay.append(node("polyline", { points, fill: "none" }), node("circle", { cx: x2, cy: topB, r: 4 }));
}

// -- volume mode: the input's channels, the filters as stacks, one output map per filter --------------

/** One figure per channel of the padded input, the current window's taps marked on every channel. A large
 * slice is shown as the `side` x `side` window from `origin` (row, column) around the taps, captioned with
 * where it lies, so its numbers stay readable on a projector. */
export function channelSlices(padded, { p, size, taps, show, positions, origin = [0, 0], side = null }) {
  const np = padded[0]?.length ?? 0;
  const [r0, c0] = origin;
  const n = side ?? np;
  const where = n < np ? ` · rows ${r0}–${r0 + n - 1}, cols ${c0}–${c0 + n - 1}` : "";
  return padded.map((slice, c) =>
    volumeFigure(`channel ${c}${where}`, "channel-slice", (svg) => {
      const cellPx = drawGrid(svg, n, n, {
        classOf: (r, q) => {
          const [R, Q] = [r + r0, q + c0];
          return taps.has(`${R},${Q}`) ? "tap" : R < p || Q < p || R >= np - p || Q >= np - p ? "pad" : "";
        },
        valueOf: (r, q) => (show ? slice[r + r0][q + c0] : null),
        size,
      });
      if (positions) drawWindow(svg, cellPx, positions.map(([r, q]) => [r - r0, q - c0]), [], false);
    }),
  );
}

/** Where a `side` x `side` window of an `np` x `np` slice starts so the taps sit in its middle. */
export function windowOrigin(positions, np, side) {
  const start = (axis) => {
    const values = positions.map((pos) => pos[axis]);
    const low = Math.min(...values);
    const span = Math.max(...values) - low + 1;
    return Math.min(Math.max(low - Math.floor((side - span) / 2), 0), np - side);
  };
  return positions.length ? [start(0), start(1)] : [0, 0];
}

/** Each filter as a stack of its channels' weights and its bias; the `current` one outlined. */
export function filterStacks(volume, { current, f, c }) {
  return volume.filters.map((filter, k) => {
    const stack = document.createElement("div");
    stack.className = `filter-stack${k === current ? " current" : ""}`;
    stack.setAttribute("data-testid", "filter-stack");
    const title = document.createElement("p");
    title.textContent = `filter ${k} (${f}×${f}×${c})`;
    const channels = document.createElement("div");
    channels.className = "filter-channels";
    stack.append(title, channels);
    filter.forEach((weights, channel) => {
      channels.append(
        volumeFigure(`ch ${channel}`, null, (svg) =>
          drawGrid(svg, f, f, { valueOf: (r, q) => (f <= 5 ? weights[r][q] : null), size: f <= 5 ? MIN_LABELLED_CELL : Math.max(6, Math.floor(96 / f)) }),
        ),
      );
    });
    const bias = document.createElement("p");
    bias.textContent = `bias b${k} = ${volume.biases[k]}`;
    stack.append(bias);
    return stack;
  });
}

/** `maps` output maps of oh × ow, cells numbered map by map: those before `step` filled, `step` current. */
export function outputMaps(maps, oh, ow, { step, values, onClick, size }) {
  const cells = oh * ow;
  return Array.from({ length: maps }, (_, k) =>
    volumeFigure(`map ${k}`, "output-map", (svg) => {
      drawGrid(svg, oh, ow, {
        classOf: (r, q) => (k * cells + r * ow + q === step ? "current" : k * cells + r * ow + q < step ? "filled" : ""),
        valueOf: (r, q) => (values && k * cells + r * ow + q <= step ? values[k][r][q] : null),
        onClick: (r, q) => onClick(k * cells + r * ow + q),
        testid: "output-cell",
        size,
      });
    }),
  );
}

function volumeFigure(caption, testid, draw) {
  const figure = document.createElement("figure");
  if (testid) figure.setAttribute("data-testid", testid);
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  draw(svg);
  const text = document.createElement("figcaption");
  text.textContent = caption;
  figure.append(svg, text);
  return figure;
}
