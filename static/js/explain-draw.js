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

/** One method's answer (POST /api/explain) in the heat map, with Grad-CAM's maps per layer and the
 * integrated gradients' completeness check in words. `grid2d` takes a frame's only plane. */
export function paintExplanation(el, method, result, grid2d) {
  const name = result.labels[result.target];
  let map;
  el["explain-check"].textContent = "";
  el["gradcam-maps"].replaceChildren();
  if (method === "integrated_gradients") {
    const ig = result.integrated_gradients;
    map = grid2d(ig.attribution);
    el["explain-check"].textContent = `The shares add up to ${ig.completeness.sum.toFixed(3)}; the score of “${name}” went from the black picture to this one by ${ig.completeness.logit_difference.toFixed(3)}.`;
  } else if (method === "gradcam") {
    const layers = Object.entries(result.gradcam);
    map = layers[layers.length - 1][1].upsampled;
    el["gradcam-maps"].replaceChildren(
      ...layers.map(([layer, cam]) => {
        const canvas = h("canvas", { class: "gradcam-map", "aria-label": `Grad-CAM of ${layer}` });
        heatmap(canvas, cam.map, null);
        return h("figure", {}, canvas, h("figcaption", { text: `${layer} (${cam.map.length}×${cam.map[0].length})` }));
      }),
    );
  } else if (method === "occlusion") {
    map = result.occlusion.map;
  } else {
    map = grid2d(result[method]);
  }
  heatmap(el.heatmap, map, el["heat-legend"]);
  el.heatmap.dataset.target = name;
}

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
