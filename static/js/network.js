// Any network's geometry, as pure functions over the API's description of its layers
// (GET /api/model): which cells of earlier layers a unit sees, and the window behind it.

import { sourceIndex } from "./kernels.js";

const pair = (v, fallback) => (v === undefined || v === null ? [fallback, fallback] : Array.isArray(v) ? v : [v, v]);

/**
 * The named layers in order, each with its kind (conv, pool, fc), window (k), stride (s), padding (p),
 * dilation (d), padding mode, activation, the layer it reads (from), its output shape, and its receptive
 * field on the input as the API works it out (size, step between neighbouring units, first unit's start).
 */
export function geometry(layers) {
  const named = layers.filter((l) => l.type !== "input");
  return named.map((layer, i) => {
    const cfg = layer.config ?? {};
    const kind = layer.type === "conv" ? "conv" : layer.type === "linear" ? "fc" : "pool";
    return {
      name: layer.name,
      type: layer.type,
      kind,
      label: i === named.length - 1 ? "output" : layer.name,
      k: pair(cfg.kernel_size, 1),
      s: pair(cfg.stride ?? cfg.kernel_size, 1),
      p: pair(cfg.padding, 0),
      d: pair(cfg.dilation, 1),
      mode: cfg.padding_mode ?? "zeros",
      activation: layer.activation,
      from: i === 0 ? "input" : named[i - 1].name,
      inputShape: layer.input_shape,
      shape: layer.output_shape,
      field: { size: layer.receptive_field, step: layer.receptive_step, start: layer.receptive_start },
    };
  });
}

/**
 * Cells [r0, c0, r1, c1) of the input (end exclusive, possibly reaching into the padding) that unit
 * (row, col) of `layer` depends on: the API's receptive field, moved `step` cells per unit.
 */
export function inputField(layer, row, col) {
  const { size, step, start } = layer.field;
  const r0 = start[0] + row * step[0];
  const c0 = start[1] + col * step[1];
  return [r0, c0, r0 + size[0], c0 + size[1]];
}

/**
 * Cells [r0, c0, r1, c1) of the layer before that unit (row, col) of a conv or pooling `layer` reads:
 * [i*S - P, i*S - P + D(K-1) + 1) along each axis.
 */
export function windowSpan(layer, row, col) {
  const { k, s, p, d } = layer;
  const r0 = row * s[0] - p[0];
  const c0 = col * s[1] - p[1];
  return [r0, c0, r0 + d[0] * (k[0] - 1) + 1, c0 + d[1] * (k[1] - 1) + 1];
}

/**
 * The window unit (row, col) reads from each map of the layer before: per channel a KH x KW grid of
 * { value, inside } (inside = false for padding taps), as the engine pads for this layer's mode.
 */
export function windowOf(layer, maps, row, col) {
  const [kh, kw] = layer.k;
  const [sh, sw] = layer.s;
  const [ph, pw] = layer.p;
  const [dh, dw] = layer.d;
  return maps.map((map) => {
    const h = map.length;
    const w = map[0].length;
    return Array.from({ length: kh }, (_, u) =>
      Array.from({ length: kw }, (_, v) => {
        const r = row * sh - ph + u * dh;
        const c = col * sw - pw + v * dw;
        const inside = r >= 0 && r < h && c >= 0 && c < w;
        const sr = sourceIndex(r, h, layer.mode);
        const sc = sourceIndex(c, w, layer.mode);
        return { value: sr === null || sc === null ? 0 : map[sr][sc], inside };
      }),
    );
  });
}

/** Window times weights, summed per channel; partial padding rescales by taps / taps inside. */
export function weightedSum(windows, weights, bias, mode = "zeros") {
  let total = 0;
  let inside = 0;
  let taps = 0;
  const perChannel = windows.map((window, c) => {
    let sum = 0;
    window.forEach((row, u) =>
      row.forEach((tap, v) => {
        sum += tap.value * weights[c][u][v];
        if (c === 0) {
          taps += 1;
          inside += tap.inside ? 1 : 0;
        }
      }),
    );
    total += sum;
    return sum;
  });
  const ratio = mode === "partial" ? (inside ? taps / inside : 0) : 1;
  return { perChannel, ratio, total: total * ratio + bias };
}

export const ACTIVATIONS = {
  relu: (x) => Math.max(x, 0),
  tanh: Math.tanh,
  sigmoid: (x) => 1 / (1 + Math.exp(-x)),
};
