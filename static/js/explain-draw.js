// Drawing for the "why" panels: signed heat maps, an explanation with its checks, the frame brush, amplified
// perturbations and layer change strips, and the words that say what an attack did.

import { scaleFor, sequential } from "./colors.js";
import { extent, legend, paintGrid } from "./draw.js";
import { formatPercent, h } from "./ui.js";

/** A signed map (raw values) painted with a diverging scale centred on zero; non-negative maps get a
 * sequential one. Returns the scale so a legend can explain it. */
export function heatmap(canvas, grid, legendBox) {
  const [min, max] = extent(grid);
  const scale = scaleFor(min, max);
  paintGrid(canvas, grid, scale.color);
  if (legendBox) legend(legendBox, scale, 3);
  return scale;
}

/**
 * A heat map laid over the input it explains: each cell mixes the input's gray with the map's colour, the
 * colour's share growing with the value's size (times `opacity`, 0..1), so where the map is near zero the
 * digit shows through. `frame` is the input's H x W plane in [0, 1]; the legend is the map's own scale.
 */
export function overlayHeatmap(canvas, grid, frame, opacity, legendBox) {
  const [min, max] = extent(grid);
  const scale = scaleFor(min, max);
  const top = Math.max(Math.abs(min), Math.abs(max)) || 1;
  const pairs = grid.map((row, r) => row.map((v, c) => [v, frame?.[r]?.[c] ?? 0]));
  paintGrid(canvas, pairs, ([v, ink]) => {
    const share = opacity * Math.sqrt(Math.min(1, Math.abs(v) / top)); // the square root lifts the middling values
    const heat = scale.color(v);
    const gray = Math.min(Math.max(ink, 0), 1) * 255;
    return heat.map((channel) => Math.round(gray * (1 - share) + channel * share));
  });
  if (legendBox) legend(legendBox, scale, 3);
  return scale;
}

/** A frame (H x W in [0, 1]) in gray. */
export function paintFrame(canvas, grid) {
  return paintGrid(canvas, grid, (v) => {
    const g = Math.round(Math.min(Math.max(v, 0), 1) * 255);
    return [g, g, g];
  });
}

/** The perturbation, amplified so its largest change is full scale; says the scale in the caption. */
export function perturbation(canvas, grid, caption) {
  const [min, max] = extent(grid);
  const bound = Math.max(Math.abs(min), Math.abs(max)) || 1;
  heatmap(canvas, grid, null);
  caption.textContent = `change, ×${(1 / bound).toFixed(1)} (largest ${bound.toFixed(3)})`;
}

/** One small map per layer: where its output moved, with the relative size of the change. */
export function layerChanges(container, layers) {
  const words = "How far each layer's output moved: the size of the change as a share of the output's own size " +
    "(‖after − before‖ / ‖before‖), and where it moved, brighter where more.";
  container.replaceChildren(
    h("p", { class: "hint", "data-testid": "layer-change-words", text: words }),
    ...layers.map(({ name, relative_change: relative, map }, k) => {
      // the last layer is the output, as the maps above call it
      const label = k === layers.length - 1 ? "output" : name;
      const grid = Array.isArray(map[0]) ? map : [map];
      const canvas = h("canvas", { class: grid.length > 1 ? "change-map" : "change-strip", "aria-label": `${label} change` });
      const top = Math.max(...grid.flat()) || 1;
      paintGrid(canvas, grid, (v) => sequential(v / top));
      return h("figure", { "data-testid": "layer-change" }, canvas, h("figcaption", { text: `${label}: ${(100 * relative).toFixed(0)}%` }));
    }),
  );
}

/** One method's answer (POST /api/explain) laid over the input (`frame`, at `opacity`), with Grad-CAM's maps
 * per layer, the integrated gradients' completeness check in words, and a caption naming the class explained
 * (and Grad-CAM's layer). `grid2d` takes a frame's only plane. */
export function paintExplanation(el, method, result, grid2d, { frame, opacity }) {
  const name = result.labels[result.target];
  let map;
  let caption = `${METHOD_NAMES[method]}, for the class “${name}”: red raises its score, blue lowers it.`;
  el["explain-check"].textContent = "";
  el["gradcam-maps"].replaceChildren();
  if (method === "integrated_gradients") {
    const ig = result.integrated_gradients;
    map = grid2d(ig.attribution);
    el["explain-check"].textContent = `The shares add up to ${ig.completeness.sum.toFixed(3)}; the score of “${name}” went from the black picture to this one by ${ig.completeness.logit_difference.toFixed(3)}.`;
  } else if (method === "gradcam") {
    const layers = Object.entries(result.gradcam);
    const [last, cam] = layers[layers.length - 1];
    map = cam.upsampled;
    caption = `Grad-CAM of ${last} (its ${cam.map.length}×${cam.map[0].length} maps, stretched over the input) for the class “${name}”: brighter where that layer's maps matter most for it.`;
    el["gradcam-maps"].replaceChildren(
      ...layers.map(([layer, cam]) => {
        const canvas = h("canvas", { class: "gradcam-map", "aria-label": `Grad-CAM of ${layer}` });
        heatmap(canvas, cam.map, null);
        return h("figure", {}, canvas, h("figcaption", { text: `${layer} (${cam.map.length}×${cam.map[0].length})` }));
      }),
    );
  } else if (method === "occlusion") {
    map = frame ? overInput(result.occlusion, grid2d(frame)) : result.occlusion.map;
    caption = `How much the probability of “${name}” drops when a 6×6 black patch covers each place: red where hiding it hurts “${name}”.`;
  } else {
    map = grid2d(result[method]);
  }
  overlayHeatmap(el.heatmap, map, frame ? grid2d(frame) : null, opacity, el["heat-legend"]);
  el.heatmap.dataset.target = name;
  el["heat-caption"].textContent = caption;
}

/** Occlusion's map (one value per patch position, `stride` apart) laid out over the input's pixels: each
 * pixel takes the value of the patch position centred nearest to it. */
function overInput({ map, patch, stride }, frame) {
  const place = (n, count) => Math.min(count - 1, Math.max(0, Math.round((n - (patch - 1) / 2) / stride)));
  return frame.map((row, y) => row.map((_, x) => map[place(y, map.length)][place(x, map[0].length)]));
}

const METHOD_NAMES = {
  saliency: "Saliency",
  smoothgrad: "SmoothGrad",
  integrated_gradients: "Integrated gradients",
  gradcam: "Grad-CAM",
  occlusion: "Occlusion",
};

/** A soft round brush of radius ~1.5 px (a pen stroke on MNIST's scale) painted (`ink`) or erased at `cell`. */
export function softBrush(grid, cell, ink) {
  for (let dr = -2; dr <= 2; dr++) {
    for (let dc = -2; dc <= 2; dc++) {
      const r = cell.row + dr;
      const c = cell.col + dc;
      if (r < 0 || c < 0 || r >= grid.length || c >= grid[0].length) continue;
      const weight = Math.max(0, 1 - Math.hypot(dr, dc) / 2.2);
      grid[r][c] = ink ? Math.max(grid[r][c], weight) : Math.min(grid[r][c], 1 - weight);
    }
  }
}

/** What an attack (POST /api/adversarial) did, in one sentence. */
export function adversarialWords(result, epsilon) {
  const said = (v) => `${v.label} (${formatPercent(v.probabilities[v.class])})`;
  const steps = `${result.steps_taken} step${result.steps_taken > 1 ? "s" : ""}`;
  return result.flipped
    ? `Fooled: ${said(result.original)} became ${said(result.result)}, changing no pixel by more than ${result.linf.toFixed(3)} (${steps}).`
    : `Not fooled at ε = ${epsilon}: still ${said(result.result)}. Allow a larger change.`;
}
