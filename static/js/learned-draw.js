// Drawing for "what did it learn": the class map's scatter, the unit card's pictures with the patch outlined.

import { diverging } from "./colors.js";
import { paintGrid, paintPicture } from "./draw.js";
import { formatNumber, h } from "./ui.js";

// ten colours a person can tell apart (Tableau 10)
export const CLASS_COLOURS = [
  "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac",
];

/** The scale that fits every point (and the input) in the canvas with a margin. */
export function mapScale(points, width, height, extra = []) {
  const all = [...points, ...extra];
  const xs = all.map((p) => p[0]);
  const ys = all.map((p) => p[1]);
  const [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
  const margin = 12;
  const sx = (width - 2 * margin) / Math.max(x1 - x0, 1e-9);
  const sy = (height - 2 * margin) / Math.max(y1 - y0, 1e-9);
  return {
    x: (v) => margin + (v - x0) * sx,
    y: (v) => height - margin - (v - y0) * sy,
  };
}

/** Every test picture as a dot of its class's colour, and the input as a ringed dot. */
export function drawClassMap(canvas, points, labels, scale, input = null) {
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  points.forEach(([x, y], k) => {
    ctx.fillStyle = CLASS_COLOURS[labels[k] % CLASS_COLOURS.length];
    ctx.globalAlpha = 0.75;
    ctx.fillRect(scale.x(x) - 2, scale.y(y) - 2, 4, 4);
  });
  ctx.globalAlpha = 1;
  if (input) {
    ctx.lineWidth = 3;
    ctx.strokeStyle = "#111";
    ctx.fillStyle = "#fff";
    ctx.beginPath();
    ctx.arc(scale.x(input[0]), scale.y(input[1]), 7, 0, 2 * Math.PI);
    ctx.fill();
    ctx.stroke();
  }
  canvas.dataset.input = input ? `${input[0].toFixed(3)},${input[1].toFixed(3)}` : "";
}

export function mapLegend(container, classes) {
  container.replaceChildren(
    ...classes.map((name, k) => {
      const swatch = h("span", { class: "swatch" });
      swatch.style.background = CLASS_COLOURS[k % CLASS_COLOURS.length];
      return h("span", { class: "legend-item" }, swatch, ` ${name}`);
    }),
  );
}

/** A test picture (its network input, 0..1) with the unit's receptive field outlined. */
export function pictureWithBox(input, box) {
  const canvas = h("canvas", { class: "picture" });
  paintPicture(canvas, input, { scale: 255 });
  const [y0, x0, y1, x1] = box;
  const ctx = canvas.getContext("2d");
  ctx.strokeStyle = "#f59e0b";
  ctx.lineWidth = 1;
  ctx.strokeRect(x0 + 0.5, y0 + 0.5, Math.max(x1 - x0 - 1, 1), Math.max(y1 - y0 - 1, 1));
  return canvas;
}

/** A frame (H x W, 0..1) magnified. */
export function frameCanvas(grid, label) {
  const canvas = h("canvas", { class: "picture", "aria-label": label });
  paintPicture(canvas, grid, { scale: 255 });
  return canvas;
}

/** A filter's weights (KH x KW) as a magnified signed image. */
export function weightCanvas(grid, label) {
  const bound = Math.max(...grid.flat().map(Math.abs)) || 1;
  const canvas = h("canvas", { class: "picture", "aria-label": label });
  paintGrid(canvas, grid, (v) => diverging(v / bound));
  return canvas;
}

/** A picture's place where its owner keeps it to themselves (a shared model of someone's own data set). */
function withheldPicture() {
  return h("span", { class: "picture picture-withheld", role: "img", "aria-label": "picture not shown: not yours", text: "not yours" });
}

/** The input's nearest training pictures, each with its class and distance (without the pictures when the
 * data set is someone else's: the note says why). */
export function neighbourTiles(container, body) {
  const tiles = body.neighbours.map((n, k) => {
    let picture = withheldPicture();
    if (body.images) {
      picture = h("canvas", { class: "picture" });
      paintPicture(picture, body.images[k]);
    }
    return h(
      "figure",
      { class: "neighbour", "data-testid": "neighbour" },
      picture,
      h("figcaption", { text: `${body.classes[n.label]} · ${formatNumber(n.distance, 2)}` }),
    );
  });
  const note = body.pictures_note ? [h("p", { class: "hint", "data-testid": "pictures-note", text: `Nearest by class and distance only: ${body.pictures_note}.` })] : [];
  container.replaceChildren(...note, ...tiles);
}


/** The index of the point of the class map nearest the pointer (within 8 px), or null. */
export function nearestPoint(canvas, event, points, scale) {
  const rect = canvas.getBoundingClientRect();
  const px = ((event.clientX - rect.left) / rect.width) * canvas.width;
  const py = ((event.clientY - rect.top) / rect.height) * canvas.height;
  let best = null;
  let bestDistance = 8;
  points.forEach(([x, y], k) => {
    const d = Math.hypot(scale.x(x) - px, scale.y(y) - py);
    if (d < bestDistance) [best, bestDistance] = [k, d];
  });
  return best;
}

/** A unit's card (GET /api/models/{id}/units/{layer}/{unit}): its 9 favourite test pictures with their
 * fields, a picture made to excite it, and a conv unit's filters. */
export function unitCard(data, { layerName, unit, layer, labels, currentValue, onClose }) {
  // one name for one thing: a conv or pool map is a "channel", as the maps and the explanations say
  const what = data.label !== null ? `the class “${data.label}”` : data.kind === "linear" ? `unit ${unit}` : `channel ${unit}`;
  const spatial = data.kind !== "linear";
  const yours = currentValue === null ? "–" : formatNumber(currentValue);
  const tops = data.top.map((t) =>
    h("figure", { "data-testid": "unit-top" }, t.picture ? pictureWithBox(t.picture, t.box) : withheldPicture(), h("figcaption", { text: `${labels[t.label]} · ${formatNumber(t.activation)}` })),
  );
  const synthetic = frameCanvas(data.synthetic, "made to excite it");
  const parts = [
    h("div", { class: "card-head" },
      h("h3", { text: `${layerName}: ${what}` }),
      h("button", { type: "button", class: "close", "aria-label": "Close the card", onclick: onClose, text: "✕" })),
    h("p", { class: "hint", text: (data.note
      ? `A picture made to excite it (${data.note}, so there are no test pictures to rank). `
      : data.pictures_note
        ? `The 9 test pictures where it fires most, by class and activation (${data.pictures_note}), and a picture made to excite it. `
        : `The 9 test pictures where it fires most (its field outlined), and a picture made to excite it. `) +
      (spatial ? `Its strongest cell for your input: ${yours} (the largest over the whole map, not the cell you point at)` : `Your input gives it ${yours}`) +
      (data.mean_activation === null ? "" : `; the test pictures ${formatNumber(data.mean_activation)} on average`) +
      `; the made-up one ${formatNumber(data.synthetic_activation)}.` }),
    h("div", { class: "card-row" },
      h("div", { class: "gallery" }, ...tops),
      h("figure", { class: "synthetic", "data-testid": "unit-synthetic" }, synthetic, h("figcaption", { text: `made for it: ${formatNumber(data.synthetic_activation)}` }))),
  ];
  if (data.weights && layer.kind === "conv") {
    const filters = data.weights.weight.slice(0, 16).map((w, c) => h("figure", {}, weightCanvas(w, `channel ${c}`), h("figcaption", { text: `on channel ${c}` })));
    parts.push(h("div", { class: "card-row weights", "data-testid": "unit-weights" }, ...filters, h("p", { class: "hint", text: `bias ${formatNumber(data.weights.bias, 3)}` })));
  }
  return parts;
}
