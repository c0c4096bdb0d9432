// Any network's geometry, as pure functions over the API's description of its layers
// (GET /api/model): which cells of earlier layers a unit sees, and the window behind it.

import { sourceIndex } from "./kernels.js";

const pair = (v, fallback) => (v === undefined || v === null ? [fallback, fallback] : Array.isArray(v) ? v : [v, v]);

/**
 * The named layers in order, each with its kind (how the page draws it: conv, pool, norm, merge, pad, map, or
 * fc for flat units), its window on the layer it reads as the API works it out (k, s, p, d), padding mode,
 * activation, the layers it reads (from: the first; inputs: all, several for a merge), its output shape, and
 * its receptive field on the input (size, step between neighbouring units, first unit's start).
 */
export function geometry(layers) {
  const named = layers.filter((l) => l.type !== "input");
  return named.map((layer, i) => {
    const cfg = layer.config ?? {};
    const window = layer.window ?? {};
    const flat = layer.output_shape.length === 1;
    const inputs = layer.inputs?.length ? layer.inputs : [i === 0 ? "input" : named[i - 1].name];
    return {
      name: layer.name,
      type: layer.type,
      kind: flat ? "fc" : layer.draw ?? (layer.type === "conv" ? "conv" : "pool"),
      label: i === named.length - 1 ? "output" : layer.name,
      k: pair(window.kernel ?? cfg.kernel_size, 1),
      s: pair(window.stride ?? cfg.stride ?? cfg.kernel_size, 1),
      p: pair(window.padding ?? cfg.padding, 0),
      d: pair(window.dilation ?? cfg.dilation, 1),
      mode: cfg.padding_mode ?? "zeros",
      groups: cfg.groups ?? 1,
      activation: layer.activation,
      from: inputs[0],
      inputs,
      words: layer.words,
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

/** Which input, and which of its channels, channel `channel` of a merge reads: an add reads that channel of
 * every input; a concat one channel of one input, the inputs' channels laid end to end. */
export function mergeSources(layer, channel, channelsOf) {
  if (layer.type !== "concat") return layer.inputs.map((name) => ({ name, channel }));
  let start = 0;
  for (const name of layer.inputs) {
    const count = channelsOf(name);
    if (channel < start + count) return [{ name, channel: channel - start }];
    start += count;
  }
  return [];
}
