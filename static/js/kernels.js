import { CONFIG } from "./config.js";

// Pure helpers for kernels on pictures: the output-size formula, padding index rules, the weighted sum
// of one output pixel. They mirror the engine (engine/padding.py, engine/filters.py) for display only:
// the server computes the pictures.

/** floor((N + 2P - D(K-1) - 1) / S) + 1 */
export function outputSize(n, k, stride, padding, dilation) {
  return Math.floor((n + 2 * padding - dilation * (k - 1) - 1) / stride) + 1;
}

/** "Same" padding per side: D(K-1)/2, rounded down. */
export function samePadding(k, dilation) {
  return Math.floor((dilation * (k - 1)) / 2);
}

/** Which input index an out-of-range index reads; null means a zero (zeros and partial padding). */
export function sourceIndex(i, size, mode) {
  if (i >= 0 && i < size) return i;
  switch (mode) {
    case "replicate":
      return Math.min(Math.max(i, 0), size - 1);
    case "circular":
      return ((i % size) + size) % size;
    case "reflect": {
      const period = 2 * (size - 1);
      const j = Math.abs(i) % period;
      return j >= size ? period - j : j;
    }
    default:
      return null;
  }
}

/** "1/9" -> 0.111..., "0.5" -> 0.5, "" or nonsense -> NaN */
export function parseScale(text) {
  const t = String(text).trim();
  const fraction = /^(-?\d+(?:\.\d+)?)\s*\/\s*(\d+(?:\.\d+)?)$/.exec(t);
  if (fraction) return Number(fraction[1]) / Number(fraction[2]);
  return t === "" ? NaN : Number(t);
}

/**
 * The weighted sum behind output pixel (row, col) of one channel: `scale × Σ weight × pixel`, re-weighted for
 * partial padding, then mapped to 0..255 by `output`. `kernel` holds the weights as typed (1 2 1 …) and `scale`
 * the factor in front (1/16), so the terms can be printed exactly. `pixel(r, c)` reads the input; returns
 * the taps with their positions, values and products, the unscaled sum `weighted`, and the pixel `result`.
 */
export function pixelSum({ pixel, width, height, kernel, scale = 1, bias = 0, row, col, stride, dilation, mode, output = "clip", range }) {
  const kh = kernel.length;
  const kw = kernel[0].length;
  const ph = samePadding(kh, dilation);
  const pw = samePadding(kw, dilation);
  const taps = [];
  let sum = 0;
  let inside = 0;
  for (let u = 0; u < kh; u++) {
    for (let v = 0; v < kw; v++) {
      const r = row * stride + u * dilation - ph;
      const c = col * stride + v * dilation - pw;
      const sr = sourceIndex(r, height, mode);
      const sc = sourceIndex(c, width, mode);
      const real = r >= 0 && r < height && c >= 0 && c < width;
      if (real) inside++;
      const value = sr === null || sc === null ? 0 : pixel(sr, sc);
      const product = value * kernel[u][v];
      sum += product;
      taps.push({ u, v, r, c, value, weight: kernel[u][v], product, padded: !real });
    }
  }
  const ratio = mode === "partial" ? (inside ? (kh * kw) / inside : 0) : 1;
  const value = sum * scale * ratio + bias;
  return { taps, weighted: sum, scale, ratio, bias, value, result: toPixel(value, output, range) };
}

/**
 * One filtered value as a pixel, as the server's `output` mapping does: "clip" rounds and cuts at 0 and 255,
 * "abs" takes |value| first, "stretch" takes |value| times the picture's `range.gain`, "rescale" stretches the
 * picture's range {low, high} to 0..255 (a flat picture is clipped).
 */
export function toPixel(value, output = "clip", range = null) {
  let v = value;
  if (output === "abs") v = Math.abs(v);
  else if (output === "stretch") v = Math.abs(v) * (range?.gain ?? 1);
  else if (output === "rescale" && range && range.high > range.low) v = ((v - range.low) / (range.high - range.low)) * 255;
  return Math.min(255, Math.max(0, roundHalfEven(v)));
}

/** Rounds like NumPy's rint: halves go to the even neighbour. */
export function roundHalfEven(x) {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * The whole picture through a kernel, for live video: the same rules as pixelSum (padding modes, partial
 * re-weighting, then toPixel's output mapping), on every colour channel of an RGBA ImageData.
 * Returns a new ImageData of the output size; alpha is kept at 255.
 */
export function filterImage(image, kernel, { stride = 1, dilation = 1, mode = "zeros", grayscale = false, output = "clip", bias = 0 } = {}) {
  const { width, height, data } = image;
  const kh = kernel.length;
  const kw = kernel[0].length;
  const ph = samePadding(kh, dilation);
  const pw = samePadding(kw, dilation);
  const oh = outputSize(height, kh, stride, ph, dilation);
  const ow = outputSize(width, kw, stride, pw, dilation);
  const out = new ImageData(Math.max(ow, 1), Math.max(oh, 1));
  const values = new Float32Array(out.data.length); // raw sums first: "rescale" needs the whole range
  const source = grayscale ? grayPlane(data, width * height) : null;
  const rowIndex = new Int32Array(kh);
  const colIndex = new Int32Array(kw);
  for (let i = 0; i < oh; i++) {
    let insideRows = 0;
    for (let u = 0; u < kh; u++) {
      const r = i * stride + u * dilation - ph;
      const sr = sourceIndex(r, height, mode);
      rowIndex[u] = sr === null ? -1 : sr;
      if (r >= 0 && r < height) insideRows++;
    }
    for (let j = 0; j < ow; j++) {
      let insideCols = 0;
      for (let v = 0; v < kw; v++) {
        const c = j * stride + v * dilation - pw;
        const sc = sourceIndex(c, width, mode);
        colIndex[v] = sc === null ? -1 : sc;
        if (c >= 0 && c < width) insideCols++;
      }
      const inside = insideRows * insideCols;
      const ratio = mode === "partial" ? (inside ? (kh * kw) / inside : 0) : 1;
      const k = 4 * (i * ow + j);
      for (let channel = 0; channel < 3; channel++) {
        let sum = 0;
        for (let u = 0; u < kh; u++) {
          if (rowIndex[u] < 0) continue;
          for (let v = 0; v < kw; v++) {
            if (colIndex[v] < 0) continue;
            const at = rowIndex[u] * width + colIndex[v];
            sum += kernel[u][v] * (source ? source[at] : data[4 * at + channel]);
          }
        }
        values[k + channel] = sum * ratio + bias;
        if (source) {
          values[k + 1] = values[k + 2] = values[k];
          break;
        }
      }
    }
  }
  const range = mappingRange(values, output);
  for (let k = 0; k < values.length; k += 4) {
    for (let c = 0; c < 3; c++) out.data[k + c] = toPixel(values[k + c], output, range);
    out.data[k + 3] = 255;
  }
  return out;
}

/** What a mapping needs of the whole picture: "stretch" its gain, "rescale" its lowest and highest value
 * (`values` holds RGBA quadruples; alpha is left out). */
function mappingRange(values, output) {
  if (output === "stretch") return { gain: stretchGain(values) };
  if (output !== "rescale") return null;
  const range = { low: Infinity, high: -Infinity };
  for (let k = 0; k < values.length; k += 4) {
    for (let c = 0; c < 3; c++) {
      range.low = Math.min(range.low, values[k + c]);
      range.high = Math.max(range.high, values[k + c]);
    }
  }
  return range;
}

// the engine's STRETCH_PERCENTILE: the strongest 2% of edges saturate
const STRETCH_PERCENTILE = 98;

/** What "stretch" multiplies |value| by: 255 over the 98th percentile of |value|, from 1 to the engine's
 * MAX_STRETCH_GAIN, as its stretch_gain works it out. `values` holds RGBA quadruples; alpha is left out. */
export function stretchGain(values) {
  const magnitudes = new Float32Array((values.length / 4) * 3);
  let n = 0;
  for (let k = 0; k < values.length; k += 4) for (let c = 0; c < 3; c++) magnitudes[n++] = Math.abs(values[k + c]);
  magnitudes.sort();
  if (!n) return 1;
  // NumPy's default percentile: linear between the two nearest ranks
  const rank = (STRETCH_PERCENTILE / 100) * (n - 1);
  const low = Math.floor(rank);
  const top = magnitudes[low] + (magnitudes[Math.min(low + 1, n - 1)] - magnitudes[low]) * (rank - low);
  return top > 0 ? Math.min(CONFIG.maxStretchGain, Math.max(1, 255 / top)) : 1;
}

function grayPlane(data, count) {
  // Pillow's convert("L"), as the server does: R*299/1000 + G*587/1000 + B*114/1000, rounded
  const plane = new Uint8ClampedArray(count);
  for (let k = 0; k < count; k++) {
    plane[k] = Math.round((data[4 * k] * 299 + data[4 * k + 1] * 587 + data[4 * k + 2] * 114) / 1000);
  }
  return plane;
}
