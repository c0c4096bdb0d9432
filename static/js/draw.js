// Drawing helpers shared by the pages: grids of numbers as pixels, outlines, legends.

import { cssColor } from "./colors.js";

export function flatten(values) {
  return Array.isArray(values) ? values.flat(Infinity) : [values];
}

export function extent(values) {
  let min = Infinity;
  let max = -Infinity;
  for (const v of flatten(values)) {
    if (v < min) min = v;
    if (v > max) max = v;
  }
  return [min, max];
}

/** Paints a 2-D array into a canvas of the same size, one canvas pixel per value. */
export function paintGrid(canvas, grid, color) {
  const h = grid.length;
  const w = grid[0].length;
  canvas.width = w;
  canvas.height = h;
  const ctx = canvas.getContext("2d");
  const image = ctx.createImageData(w, h);
  for (let r = 0; r < h; r++) {
    for (let c = 0; c < w; c++) {
      const [red, green, blue] = color(grid[r][c]);
      const k = 4 * (r * w + c);
      image.data[k] = red;
      image.data[k + 1] = green;
      image.data[k + 2] = blue;
      image.data[k + 3] = 255;
    }
  }
  ctx.putImageData(image, 0, 0);
  return image;
}

/** Restores a painted grid and marks cells [r0, r1) x [c0, c1) on top (in grid units), see-through by default. */
export function outlineCells(canvas, image, r0, c0, r1, c1, color = "#22d3ee", alpha = 0.35) {
  const ctx = canvas.getContext("2d");
  ctx.putImageData(image, 0, 0);
  const rows = Math.max(r1 - r0, 1);
  const cols = Math.max(c1 - c0, 1);
  ctx.save();
  ctx.globalAlpha = alpha;
  ctx.fillStyle = color;
  ctx.fillRect(c0, r0, cols, rows);
  ctx.restore();
}


/** A horizontal gradient bar explaining a colour scale, with its end values. */
export function legend(element, scale, digits = 2) {
  element.replaceChildren();
  const bar = document.createElement("canvas");
  bar.width = 64;
  bar.height = 1;
  bar.className = "legend-bar";
  const ctx = bar.getContext("2d");
  for (let x = 0; x < 64; x++) {
    ctx.fillStyle = cssColor(scale.color(scale.min + ((scale.max - scale.min) * x) / 63));
    ctx.fillRect(x, 0, 1, 1);
  }
  const lo = document.createElement("span");
  lo.textContent = scale.min.toFixed(digits);
  const hi = document.createElement("span");
  hi.textContent = scale.max.toFixed(digits);
  element.append(lo, bar, hi);
}

/** Paints a picture at one pixel per cell: H x W gray (white on black), 1 x H x W, or 3 x H x W in colour;
 * values 0..255, or 0..1 with `scale` 255. */
export function paintPicture(canvas, picture, { scale = 1 } = {}) {
  const byte = (v) => Math.round(Math.min(Math.max(v * scale, 0), 255));
  if (Array.isArray(picture[0][0]) && picture.length === 3) {
    // a colour picture, channels first: its red, green and blue planes
    const [red, green, blue] = picture;
    return paintGrid(canvas, red.map((row, r) => row.map((v, c) => [v, green[r][c], blue[r][c]])), (rgb) => rgb.map(byte));
  }
  return paintGrid(canvas, Array.isArray(picture[0][0]) ? picture[0] : picture, (v) => [byte(v), byte(v), byte(v)]);
}
