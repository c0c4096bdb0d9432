// The playground's DOM building: the worked sum of one output pixel, the border comparison's figures.

import { CONFIG } from "./config.js";

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

/** A number as typed, without float noise: 0.1 + 0.2 prints 0.3, 1/9 of 1152 prints 128. */
export function exactNumber(v) {
  return String(Number(Number(v).toPrecision(10)));
}

const MAPPING_WORDS = {
  clip: (v, r) => (v < 0 || v > 255 ? `clipped to ${r}` : `rounded ${r}`),
  abs: (v, r) => `|${exactNumber(v)}| rounded and clipped: ${r}`,
  stretch: (v, r, range) => `|${exactNumber(v)}| × ${exactNumber(range.gain.toFixed(3))} (${gainWords(range.gain)}) = ${r}`,
  rescale: (v, r, range) =>
    `rescaled (v − ${exactNumber(range.low)}) / (${exactNumber(range.high)} − ${exactNumber(range.low)}) × 255 = ${r}`,
};

/**
 * One channel's products (weight × pixel, padding taps marked) and the sum they make, written exactly:
 * `1/16 × (1×12 + 2×30 + …) = 1/16 × 1234 = 77.125 → 77`, so the printed terms add up to the printed result.
 */
export function channelTable(name, result, actual, kernelWidth, { scaleText = "1", output = "clip", range = null } = {}) {
  const figure = document.createElement("figure");
  const table = document.createElement("table");
  table.className = "products";
  const k = kernelWidth;
  for (let i = 0; i < result.taps.length; i += k) {
    const tr = document.createElement("tr");
    for (const tap of result.taps.slice(i, i + k)) {
      const td = document.createElement("td");
      td.textContent = `${exactNumber(tap.weight)}×${tap.value}`;
      td.title = `input (${tap.r}, ${tap.c})${tap.padded ? " is padding" : ""}: ${exactNumber(tap.product)}`;
      if (tap.padded) td.classList.add("padded");
      tr.append(td);
    }
    table.append(tr);
  }
  const caption = document.createElement("figcaption");
  const terms = result.taps.map((t) => `${exactNumber(t.weight)}×${t.value}`).join(" + ");
  const weighted = exactNumber(result.weighted);
  let text = result.scale === 1 ? `${terms} = ${weighted}` : `${scaleText} × (${terms}) = ${scaleText} × ${weighted}`;
  if (result.scale !== 1) text += ` = ${exactNumber(result.weighted * result.scale)}`;
  if (result.ratio !== 1) text += ` × ${exactNumber(result.ratio)} (window area / valid area) = ${exactNumber(result.value - result.bias)}`;
  if (result.bias) text += ` + ${exactNumber(result.bias)} (bias) = ${exactNumber(result.value)}`;
  text += ` → ${MAPPING_WORDS[output](result.value, result.result, range)}`;
  caption.className = "dot-product";
  caption.dataset.weighted = weighted;
  caption.dataset.result = String(result.result);
  caption.textContent = `${name}: ${text}` + (actual !== undefined && actual !== result.result ? ` (server: ${actual})` : "");
  figure.append(table, caption);
  return figure;
}

/**
 * The kernel's window on the input, magnified: one canvas pixel per picture pixel (padding in gray), from the
 * taps of a worked sum; `window` is their bounds {r0, c0, r1, c1} and `picture` {width, rgba}.
 */
export function windowZoom(taps, window, picture, [kh, kw]) {
  const canvas = document.createElement("canvas");
  canvas.width = window.c1 - window.c0;
  canvas.height = window.r1 - window.r0;
  canvas.setAttribute("data-testid", "window-zoom");
  canvas.setAttribute("aria-label", `the ${kh}×${kw} window's input pixels, magnified`);
  const ctx = canvas.getContext("2d");
  ctx.fillStyle = "#9ca3af";
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  const { rgba } = picture;
  for (const tap of taps) {
    if (tap.padded) continue;
    const at = 4 * (tap.r * picture.width + tap.c);
    ctx.fillStyle = `rgb(${rgba[at]}, ${rgba[at + 1]}, ${rgba[at + 2]})`;
    ctx.fillRect(tap.c - window.c0, tap.r - window.r0, 1, 1);
  }
  const caption = document.createElement("span");
  caption.className = "hint";
  caption.textContent = `The window on the input (outlined orange on the picture; gray: padding, or skipped by dilation), magnified. ` +
    `Its sum is the output pixel outlined in cyan.`;
  const zoom = document.createElement("div");
  zoom.className = "window-zoom";
  zoom.append(canvas, caption);
  return zoom;
}

/** Why "stretch" multiplied by this much: to make the strongest edges white, or (at its bound) no more, so
 * that a photo's noise is not made into edges. */
function gainWords(gain) {
  return gain >= CONFIG.maxStretchGain
    ? `at most ×${CONFIG.maxStretchGain}: weaker values, a photo's noise among them, stay dark rather than pass for edges`
    : "the gain that makes the strongest edges white";
}

/** The output's caption: its size beside the input's, and how its values became pixels. */
export function outputCaption([ow, oh], [iw, ih], output, gain) {
  const how = {
    clip: "values rounded and clipped to 0..255",
    abs: "|value|, clipped to 0..255",
    stretch: `|value| × ${exactNumber(gain.toFixed(2))} (${gainWords(gain)})`,
    rescale: "the picture's lowest..highest value stretched to 0..255",
  }[output];
  const smaller = ow !== iw || oh !== ih ? `, drawn to scale (the input is ${iw} × ${ih})` : "";
  return `Output ${ow} × ${oh}${smaller}: ${how}.`;
}
