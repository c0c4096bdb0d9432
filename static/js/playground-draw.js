// The playground's DOM building: the worked sum of one output pixel, the border comparison's figures.

import { formatNumber } from "./ui.js";

/** One padding mode's figure in the border comparison: a canvas for the crop, and the mode's name. */
export function borderCropFigure(mode) {
  const figure = document.createElement("figure");
  figure.dataset.mode = mode;
  figure.setAttribute("data-testid", "border-crop");
  const canvas = document.createElement("canvas");
  canvas.setAttribute("aria-label", `top-left corner with ${mode} padding`);
  const caption = document.createElement("figcaption");
  caption.textContent = mode;
  figure.append(canvas, caption);
  return figure;
}

/** One channel's products (weight × pixel, padding taps marked) and the sum they make. */
export function channelTable(name, result, actual, kernelWidth) {
  const figure = document.createElement("figure");
  const table = document.createElement("table");
  table.className = "products";
  const k = kernelWidth;
  for (let i = 0; i < result.taps.length; i += k) {
    const tr = document.createElement("tr");
    for (const tap of result.taps.slice(i, i + k)) {
      const td = document.createElement("td");
      td.textContent = `${formatNumber(tap.weight, 2)}×${tap.value}`;
      td.title = `input (${tap.r}, ${tap.c})${tap.padded ? " is padding" : ""}: ${formatNumber(tap.product, 2)}`;
      if (tap.padded) td.classList.add("padded");
      tr.append(td);
    }
    table.append(tr);
  }
  const caption = document.createElement("figcaption");
  const terms = result.taps.map((t) => `${formatNumber(t.weight, 2)}*${t.value}`).join(" + ");
  const reweight = result.ratio !== 1 ? ` × ${formatNumber(result.ratio, 3)} (window area / valid area)` : "";
  caption.className = "dot-product";
  caption.textContent = `${name}: ${terms} = ${formatNumber(result.sum, 2)}${reweight} → ${result.result}` +
    (actual !== undefined && actual !== result.result ? ` (server: ${actual})` : "");
  figure.append(table, caption);
  return figure;
}
