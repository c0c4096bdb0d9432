// The drawing page's DOM builders: a layer's section, and the worked explanation of one cell (a pooling
// window, or a convolution's patch times weights, channel by channel). Pure: digits.js wires them.

import { cssColor, diverging, sequential } from "./colors.js";
import { weightedSum } from "./network.js";
import { formatNumber, h } from "./ui.js";

/** A layer's section: its title, its colour legend, a box for its maps, and (for the output) the class names. */
export function layerSection(layer, labels) {
  const title = h("h3", { text: layer.label });
  const scale = h("div", { class: "legend" });
  const tiles = h("div", { class: "tiles" });
  const kind = layer.label === "output" ? "layer-fc layer-output" : `layer-${layer.kind}`;
  const section = h("section", { class: `layer ${kind}`, "data-testid": "layer", dataset: { layer: layer.name } }, title, scale, tiles);
  // many maps are drawn smaller, so that a layer of 32 still fits a projector's width
  const maps = layer.kind === "fc" ? 1 : layer.shape[0];
  section.style.setProperty("--map-size", maps <= 8 ? "84px" : maps <= 16 ? "60px" : "44px");
  if (layer.label === "output") {
    // the output units are the classes: label them under the strip
    // names longer than a digit stand upright, so "Ankle boot" is read whole under its narrow column
    const long = labels.some((name) => name.length > 3);
    const names = h("div", { class: `unit-labels${long ? " long" : ""}` }, ...labels.map((name) => h("span", { title: name, text: name })));
    names.style.setProperty("--units", String(labels.length));
    section.append(names);
  }
  return { section, title, scale, tiles };
}

/** A pooling cell: its window, the tap the engine picked for max pooling, and the max or mean written out. */
export function poolDetail(layer, channel, windows, value, where) {
  const grid = windows[0].map((r) => r.map((t) => t.value));
  const taps = grid.flat();
  const verb = layer.type === "maxpool" ? "max" : "mean";
  // the engine sends the gradient to the first tap equal to the maximum (PyTorch's rule): mark that one only
  const winner = layer.type === "maxpool" ? taps.indexOf(Math.max(...taps)) : -1;
  return [
    h("p", { text: `${layer.k.join("×")} ${verb} pooling of ${layer.from} channel ${channel}, ${where}:` }),
    numberGrid(grid, false, winner),
    h("p", { text: `${verb}(${taps.map((v) => formatNumber(v)).join(", ")}) = ${formatNumber(value, 3)}` }),
  ];
}

/** A convolution cell: one row per input channel (the patch it sees, the weights on it, each product in
 * its cell's tooltip, the channel's sum), then the whole sum with the bias and the activation. */
export function convDetail(layer, channel, windows, channels, weights, where, value) {
  const filter = weights.weight[channel];
  const bias = weights.bias[channel];
  const { perChannel, ratio, total } = weightedSum(windows, filter, bias, layer.mode);
  const colour = layer.from === "input" && channels === 3;
  const source = colour ? "the input's red, green and blue channels" : layer.from === "input" ? "the input" : `all ${channels} channels of ${layer.from}`;
  const size = `${layer.k.join("×")}${channels > 1 ? `×${channels}` : ""}`;
  const intro = h("p", { text: `Filter ${channel} (${size}), which makes channel ${channel}, over ${source}, ${where}${layer.p[0] ? `, ${layer.mode} padding` : ""}.` });
  const rows = h("div", { class: "channel-rows", "data-testid": "channel-rows" });
  filter.forEach((w, c) => rows.append(channelRow(layer, c, windows[c].map((r) => r.map((t) => t.value)), w, perChannel[c], colour)));
  const terms = channels > 1
    ? perChannel.map((v) => formatNumber(v, 2)).join(" + ")
    : windows[0].flat().map((t, k) => `${formatNumber(filter[0].flat()[k], 2)}·${formatNumber(t.value, 2)}`).join(" + ");
  const scaled = ratio !== 1 ? ` (× ${formatNumber(ratio, 3)}, partial padding)` : "";
  const after = afterActivation(layer, value);
  const sum = h("p", { class: "dot-product", text: `${terms}${scaled} + bias ${formatNumber(bias, 2)} = ${formatNumber(total, 3)}${after}` });
  return [intro, rows, sum];
}

/** A merge's cell: the cell of each input it adds (or, for a concat, the one it copies), and the sum. */
export function mergeDetail(layer, sources, value, row, col) {
  const terms = sources.map((source) => `${source.name} ${source.channel} (${formatNumber(source.value, 3)})`);
  const said = layer.type === "concat"
    ? `Channel copied from ${terms[0]}: the inputs' channels are stacked.`
    : `${terms.join(" + ")} = ${formatNumber(sources.reduce((n, t) => n + t.value, 0), 3)}`;
  const after = afterActivation(layer, value);
  return [
    h("p", { text: `The same cell (${row}, ${col}) of each input, ${layer.type === "concat" ? "copied" : "added number by number"}:` }),
    h("p", { class: "dot-product", "data-testid": "merge-sum", text: `${said}${after}` }),
  ];
}

/** A BatchNorm cell: its affine map with this channel's numbers. */
export function normDetail(layer, channel, x, stats, value) {
  const gamma = stats.weight[channel];
  const beta = stats.bias[channel];
  const mean = stats.running_mean[channel];
  const variance = stats.running_var[channel];
  const y = (gamma * (x - mean)) / Math.sqrt(variance + stats.eps) + beta;
  const line = `γ·(x − μ)/√(σ² + ε) + β = ${formatNumber(gamma, 3)}·(${formatNumber(x, 3)} − ${formatNumber(mean, 3)})/√(${formatNumber(variance, 3)} + ${stats.eps}) + ${formatNumber(beta, 3)} = ${formatNumber(y, 3)}`;
  return [
    h("p", { text: `Channel ${channel} of ${layer.from}, cell value x = ${formatNumber(x, 3)}, normalised by the running mean μ and variance σ² of training, then scaled by γ and shifted by β:` }),
    h("p", { class: "dot-product", "data-testid": "norm-formula", text: `${line}${afterActivation(layer, value)}` }),
  ];
}

/** A cell that reads one cell of its input (a named activation, a pad) or a whole map (global pooling). */
export function cellDetail(layer, channel, windows, value) {
  const taps = windows[0].flat().map((t) => t.value);
  if (taps.length > 1) {
    return [h("p", { class: "dot-product", text: `mean of the ${taps.length} cells of ${layer.from} channel ${channel} = ${formatNumber(value, 3)}` })];
  }
  const words = layer.words ? `${layer.words.split(":")[0]}: ` : "";
  return [h("p", { class: "dot-product", text: `${words}${layer.from} channel ${channel}: ${formatNumber(taps[0], 3)} → ${formatNumber(value, 3)}` })];
}

/** "; relu → 0.731": the layer's activation and the cell's value after it (the value its map shows). */
function afterActivation(layer, value) {
  return layer.activation ? `; ${layer.activation} → ${formatNumber(value, 3)}` : "";
}

const RGB = ["red", "green", "blue"];

function channelRow(layer, c, patch, weights, channelSum, colour) {
  const [inputs, taps] = [patch.flat(), weights.flat()];
  const weightsGrid = numberGrid(weights, true);
  weightsGrid.querySelectorAll("td").forEach((td, k) => {
    td.title = `${formatNumber(taps[k], 3)} × ${formatNumber(inputs[k], 3)} = ${formatNumber(taps[k] * inputs[k], 3)}`;
  });
  const from = colour ? `input, ${RGB[c]}` : layer.from === "input" ? "input" : `${layer.from} channel ${c}`;
  return h(
    "div",
    { class: "channel-row", "data-testid": "channel-row" },
    h("figure", {}, numberGrid(patch, false), h("figcaption", { text: from })),
    h("span", { class: "times", text: "·" }),
    h("figure", {}, weightsGrid, h("figcaption", {}, `weights on channel ${c}, Σ `, h("span", { class: "channel-sum", text: `= ${formatNumber(channelSum, 2)}` }))),
  );
}

/** A small table of numbers; weights get a diverging background; the cell at flat index `winner` is marked. */
export function numberGrid(grid, signed, winner = -1) {
  const bound = Math.max(...grid.flat().map(Math.abs)) || 1;
  return h(
    "table",
    { class: "number-grid" },
    ...grid.map((rowValues, r) =>
      h(
        "tr",
        {},
        ...rowValues.map((v, c) => {
          const td = h("td", { text: formatNumber(v, 2) });
          td.style.background = cssColor(signed ? diverging(v / bound) : sequential(v / bound));
          if (!signed) td.style.color = v / bound > 0.6 ? "#111" : "#fff";
          if (r * rowValues.length + c === winner) {
            td.classList.add("winner");
            td.title = "the maximum the engine picked (the first one, on ties)";
          }
          return td;
        }),
      ),
    ),
  );
}

/** Buttons for the colour photos shipped with the app, for a model without a data set of its own. */
export function samplePhotos(photos, onChoose) {
  return photos.map(([file, caption]) =>
    h("button", { type: "button", class: "photo-sample", "data-testid": "sample-photo", "aria-label": `Show it the ${caption}`, onclick: () => onChoose(file) },
      h("img", { src: `/static/samples/${file}`, alt: "", width: 96 }), h("span", { text: caption })),
  );
}

/** The button under a layer's maps that shows the next page of them. */
export function moreMapsButton(onMore) {
  return h("button", { type: "button", class: "more-maps", "data-testid": "more-maps", hidden: true, onclick: onMore });
}

/** Says how many of a layer's maps are in view and what "more" adds; hidden once all are shown. */
export function describeMoreMaps(button, shown, total, page) {
  button.hidden = shown >= total;
  button.textContent = `Show ${Math.min(page, total - shown)} more maps (${shown} of ${total} shown)`;
}
