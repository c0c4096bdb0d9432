// Drawing for the "why" panels: signed heat maps, amplified perturbations, layer change strips.

import { scaleFor, sequential } from "./colors.js";
import { extent, legend, paintGrid } from "./draw.js";
import { h } from "./ui.js";

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
  container.replaceChildren(
    ...layers.map(({ name, relative_change: relative, map }) => {
      const grid = Array.isArray(map[0]) ? map : [map];
      const canvas = h("canvas", { class: grid.length > 1 ? "change-map" : "change-strip", "aria-label": `${name} change` });
      const top = Math.max(...grid.flat()) || 1;
      paintGrid(canvas, grid, (v) => sequential(v / top));
      return h("figure", { "data-testid": "layer-change" }, canvas, h("figcaption", { text: `${name}: ${(100 * relative).toFixed(0)}%` }));
    }),
  );
}
