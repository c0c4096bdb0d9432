// The digit-drawing page: wires the sketchpad, the API and the layer views together.

import { api } from "./api.js";
import { cssColor, diverging, scaleFor, sequential } from "./colors.js";
import { cellAt, extent, formatNumber, legend, outlineCells, paintGrid } from "./draw.js";
import { LAYERS, crop, receptiveField, weightedSum } from "./network.js";
import { Sketchpad } from "./sketchpad.js";

const DEBOUNCE_MS = 90;

const el = {
  canvas: document.getElementById("draw-canvas"),
  clear: document.getElementById("clear"),
  undo: document.getElementById("undo"),
  samples: document.getElementById("sample-buttons"),
  prompt: document.getElementById("prompt"),
  error: document.getElementById("error"),
  prediction: document.getElementById("prediction"),
  predictionProbability: document.getElementById("prediction-probability"),
  second: document.getElementById("second-guess"),
  bars: [...document.querySelectorAll("[data-testid=probability-bar]")],
  downsampled: document.getElementById("downsampled"),
  toggles: document.getElementById("layer-toggles"),
  layers: document.getElementById("layers"),
  detail: document.getElementById("unit-detail"),
};

const state = {
  result: null, // the last prediction applied to the page
  weights: {}, // conv1 / conv2 weights, fetched once for the unit details
  inputImage: null, // painted ImageData of the downsampled input
  views: {}, // per layer: { section, tiles: [{canvas, image}] }
  inFlight: false,
  pending: false,
  epoch: 0, // bumped by clear: answers to older drawings are dropped
  timer: null,
};

// -- talking to the model -----------------------------------------------------------

function schedule(delay = DEBOUNCE_MS) {
  clearTimeout(state.timer);
  state.timer = setTimeout(send, delay);
}

async function send() {
  if (pad.isEmpty) {
    showEmpty();
    return;
  }
  if (state.inFlight) {
    state.pending = true; // at most one request at a time; the latest drawing goes next
    return;
  }
  state.inFlight = true;
  const epoch = state.epoch;
  try {
    const result = await api.predict(pad.toDataURL());
    if (epoch === state.epoch && !pad.isEmpty) {
      hideError();
      render(result);
    }
  } catch (error) {
    if (epoch === state.epoch) showError(`The network could not read the drawing: ${error.message}`);
  } finally {
    state.inFlight = false;
    if (state.pending) {
      state.pending = false;
      send();
    }
  }
}

function showError(message) {
  el.error.textContent = message;
  el.error.hidden = false;
}

function hideError() {
  el.error.hidden = true;
  el.error.textContent = "";
}

// -- the guess ------------------------------------------------------------------------

function showEmpty() {
  state.result = null;
  el.prompt.hidden = false;
  el.prediction.textContent = "";
  el.predictionProbability.textContent = "";
  el.second.textContent = "";
  for (const bar of el.bars) setBar(bar, 0, false);
  paintInput(null);
  for (const view of Object.values(state.views)) view.section.classList.add("stale");
  clearDetail();
}

function setBar(bar, probability, isTop) {
  bar.querySelector(".bar-fill").style.width = `${(probability * 100).toFixed(1)}%`;
  bar.querySelector(".bar-value").textContent = probability ? `${(probability * 100).toFixed(1)}%` : "–";
  bar.classList.toggle("top", isTop);
  bar.setAttribute("aria-label", `${bar.dataset.digit}: ${(probability * 100).toFixed(1)} percent`);
}

function render(result) {
  if (result.empty) {
    showEmpty();
    el.prompt.textContent = "No ink found yet: draw a bigger or darker digit.";
    return;
  }
  state.result = result;
  el.prompt.hidden = true;
  const [first, second] = result.top;
  el.prediction.textContent = String(first.digit);
  el.predictionProbability.textContent = `${(first.probability * 100).toFixed(1)}% sure`;
  el.second.textContent = `${second.digit} (${(second.probability * 100).toFixed(1)}%)`;
  result.probabilities.forEach((p, d) => setBar(el.bars[d], p, d === first.digit));
  paintInput(result.input);
  renderLayers(result.layers);
}

function paintInput(input) {
  const grid = input ?? Array.from({ length: 32 }, () => new Array(32).fill(0));
  state.inputImage = paintGrid(el.downsampled, grid, (v) => {
    const g = Math.round(v * 255);
    return [g, g, g];
  });
}

// -- layer views ------------------------------------------------------------------------

function buildLayerViews() {
  for (const layer of LAYERS) {
    const toggle = document.createElement("label");
    toggle.className = "toggle";
    const box = document.createElement("input");
    box.type = "checkbox";
    box.checked = true;
    box.dataset.layer = layer.name;
    box.addEventListener("change", () => {
      state.views[layer.name].section.hidden = !box.checked;
    });
    toggle.append(box, ` ${layer.label}`);
    el.toggles.append(toggle);

    const section = document.createElement("section");
    section.className = `layer layer-${layer.kind}`;
    section.setAttribute("data-testid", "layer");
    section.dataset.layer = layer.name;
    const title = document.createElement("h3");
    title.textContent = layer.label;
    const scale = document.createElement("div");
    scale.className = "legend";
    const tiles = document.createElement("div");
    tiles.className = "tiles";
    section.append(title, scale, tiles);
    if (layer.name === "fc3") {
      // the output units are the digits 0-9: label them under the strip
      const labels = document.createElement("div");
      labels.className = "unit-labels";
      for (let d = 0; d < 10; d++) {
        const span = document.createElement("span");
        span.textContent = String(d);
        labels.append(span);
      }
      section.append(labels);
    }
    el.layers.append(section);
    state.views[layer.name] = { layer, section, title, scale, tilesBox: tiles, tiles: [] };
  }
}

function renderLayers(layers) {
  for (const { name, shape, values } of layers) {
    const view = state.views[name];
    view.section.classList.remove("stale");
    view.title.textContent = `${view.layer.label} · ${shape.join(" × ")}`;
    view.values = values;
    const [min, max] = extent(values);
    const scale = scaleFor(min, max);
    legend(view.scale, scale);
    const maps = view.layer.kind === "fc" ? [[values]] : values; // a dense layer is one strip of units
    while (view.tiles.length < maps.length) view.tiles.push(makeTile(view, view.tiles.length));
    maps.forEach((grid, channel) => {
      const tile = view.tiles[channel];
      tile.image = paintGrid(tile.canvas, grid, scale.color);
    });
  }
}

function makeTile(view, channel) {
  const canvas = document.createElement("canvas");
  canvas.setAttribute("data-testid", "activation-map");
  canvas.dataset.channel = String(channel);
  canvas.className = "activation-map";
  const kind = view.layer.kind;
  canvas.setAttribute("aria-label", kind === "fc" ? `${view.layer.label} units` : `${view.layer.label} channel ${channel}`);
  if (kind === "fc") {
    canvas.addEventListener("pointermove", (e) => describeUnit(view, e));
  } else {
    canvas.addEventListener("pointermove", (e) => inspect(view, channel, e));
    canvas.addEventListener("pointerdown", (e) => inspect(view, channel, e));
  }
  canvas.addEventListener("pointerleave", () => restoreHighlights());
  view.tilesBox.append(canvas);
  return { canvas, image: null };
}

// -- receptive fields and unit details ----------------------------------------------------

function restoreHighlights() {
  if (state.inputImage) el.downsampled.getContext("2d").putImageData(state.inputImage, 0, 0);
  for (const view of Object.values(state.views)) {
    for (const tile of view.tiles) if (tile.image) tile.canvas.getContext("2d").putImageData(tile.image, 0, 0);
    for (const tile of view.tiles) tile.canvas.classList.remove("focused");
  }
}

function inspect(view, channel, event) {
  if (!state.result) return;
  const cell = cellAt(view.tiles[channel].canvas, event);
  if (!cell) return;
  const { row, col } = cell;
  const { layer } = view;
  restoreHighlights();

  const field = receptiveField(layer.name, row, col, "input");
  outlineCells(el.downsampled, state.inputImage, ...field);
  const tile = view.tiles[channel];
  outlineCells(tile.canvas, tile.image, row, col, row + 1, col + 1, "#f97316");
  tile.canvas.classList.add("focused");

  const previous = receptiveField(layer.name, row, col, layer.from);
  if (layer.from !== "input") {
    const prevView = state.views[layer.from];
    // a convolution looks through every channel of the layer before; pooling only through its own
    const channels = layer.kind === "conv" ? prevView.tiles.map((_, c) => c) : [channel];
    for (const c of channels) outlineCells(prevView.tiles[c].canvas, prevView.tiles[c].image, ...previous);
  }
  showDetail(view, channel, row, col, previous);
}

function describeUnit(view, event) {
  if (!state.result) return;
  const cell = cellAt(view.tiles[0].canvas, event);
  if (!cell) return;
  const value = view.values[cell.col];
  const name = view.layer.name === "fc3" ? `digit ${cell.col}` : `unit ${cell.col}`;
  clearDetail(`${view.layer.label}, ${name}`, `value ${formatNumber(value, 3)}${view.layer.name === "fc3" ? " (logit: softmax turns these into probabilities)" : ""}`);
}

function clearDetail(title = "Hover a cell", text = "Point at (or tap) any cell of a convolution or pooling map to see how it was computed.") {
  const heading = document.createElement("h3");
  heading.textContent = title;
  const p = document.createElement("p");
  p.className = "hint";
  p.textContent = text;
  el.detail.replaceChildren(heading, p);
}

function previousMaps(layer) {
  if (layer.from === "input") return [state.result.input];
  return state.views[layer.from].values;
}

function showDetail(view, channel, row, col, [r0, c0, r1, c1]) {
  const { layer } = view;
  const value = view.values[channel][row][col];
  const heading = document.createElement("h3");
  heading.textContent = `${layer.label}, channel ${channel}, cell (${row}, ${col}) = ${formatNumber(value, 3)}`;
  const parts = [heading];
  const maps = previousMaps(layer);

  if (layer.kind === "pool") {
    const window = crop(maps[channel], r0, c0, r1, c1);
    parts.push(paragraph(`2×2 max pooling of ${layer.from} channel ${channel}, rows ${r0}–${r1 - 1}, columns ${c0}–${c1 - 1}:`));
    parts.push(numberGrid(window, null, value));
    parts.push(paragraph(`max(${window.flat().map((v) => formatNumber(v)).join(", ")}) = ${formatNumber(value, 3)}`));
  } else {
    const weights = state.weights[layer.name];
    if (!weights) {
      parts.push(paragraph("Loading the filter's weights…"));
    } else {
      const filter = weights.weight[channel];
      const bias = weights.bias[channel];
      const windows = maps.map((m) => crop(m, r0, c0, r1, c1));
      const { perChannel, total } = weightedSum(windows, filter, bias);
      const source = layer.from === "input" ? "the 32×32 input" : `all ${maps.length} channels of ${layer.from}`;
      parts.push(paragraph(`Filter ${channel} (5×5${maps.length > 1 ? `×${maps.length}` : ""}) over ${source}, rows ${r0}–${r1 - 1}, columns ${c0}–${c1 - 1}.`));
      const grids = document.createElement("div");
      grids.className = maps.length > 1 ? "weight-grids compact" : "weight-grids";
      filter.forEach((w, c) => {
        const figure = document.createElement("figure");
        const caption = document.createElement("figcaption");
        caption.textContent = maps.length > 1 ? `ch ${c}: Σ = ${formatNumber(perChannel[c], 2)}` : "weights";
        figure.append(numberGrid(w, true), caption);
        grids.append(figure);
      });
      parts.push(grids);
      const terms = maps.length > 1
        ? perChannel.map((s) => formatNumber(s, 2)).join(" + ")
        : windows[0].flat().map((x, k) => `${formatNumber(filter[0].flat()[k], 2)}·${formatNumber(x, 2)}`).join(" + ");
      const sum = document.createElement("p");
      sum.className = "dot-product";
      sum.textContent = `${terms} + bias ${formatNumber(bias, 2)} = ${formatNumber(total, 3)}; ReLU → ${formatNumber(Math.max(total, 0), 3)}`;
      parts.push(sum);
    }
  }
  el.detail.replaceChildren(...parts);
}

function paragraph(text) {
  const p = document.createElement("p");
  p.textContent = text;
  return p;
}

/** A small table of numbers; weights get a diverging background, a pooling winner is marked. */
function numberGrid(grid, signed, highlight = null) {
  const table = document.createElement("table");
  table.className = "number-grid";
  const bound = Math.max(...grid.flat().map(Math.abs)) || 1;
  for (const rowValues of grid) {
    const tr = document.createElement("tr");
    for (const v of rowValues) {
      const td = document.createElement("td");
      td.textContent = formatNumber(v, 2);
      if (signed) {
        const color = diverging(v / bound);
        td.style.background = cssColor(color);
      } else {
        td.style.background = cssColor(sequential(v / bound));
        td.style.color = v / bound > 0.6 ? "#111" : "#fff";
      }
      if (highlight !== null && v === highlight) td.classList.add("winner");
      tr.append(td);
    }
    table.append(tr);
  }
  return table;
}

// -- samples ------------------------------------------------------------------------------

const sprite = new Image();
sprite.src = "/static/samples/mnist-digits.png";
const sampleCursor = new Array(10).fill(0);

function loadSample(digit) {
  const size = 28;
  const which = sampleCursor[digit]++ % 3;
  const tile = document.createElement("canvas");
  tile.width = size;
  tile.height = size;
  const ctx = tile.getContext("2d");
  ctx.drawImage(sprite, which * size, digit * size, size, size, 0, 0, size, size);
  const image = ctx.getImageData(0, 0, size, size);
  for (let k = 0; k < image.data.length; k += 4) {
    // MNIST is white ink on black; the pad is dark ink on white
    for (let j = 0; j < 3; j++) image.data[k + j] = 255 - image.data[k + j];
  }
  ctx.putImageData(image, 0, 0);
  pad.setBackdrop(tile);
  state.epoch++;
  schedule(0);
}

// -- wiring ---------------------------------------------------------------------------------

const pad = new Sketchpad(el.canvas, {
  onDraw: () => schedule(),
  onStroke: () => schedule(0),
});

el.clear.addEventListener("click", () => {
  pad.clear();
  state.epoch++;
  hideError();
  el.prompt.textContent = "Draw a digit to see what the network thinks it is.";
  showEmpty();
});
el.undo.addEventListener("click", () => {
  pad.undo();
  state.epoch++;
  schedule(0);
});
el.samples.addEventListener("click", (event) => {
  const button = event.target.closest("button[data-digit]");
  if (!button) return;
  if (sprite.complete) loadSample(Number(button.dataset.digit));
  else sprite.addEventListener("load", () => loadSample(Number(button.dataset.digit)), { once: true });
});

buildLayerViews();
showEmpty();
for (const name of ["conv1", "conv2"]) {
  api.layerWeights(name).then(
    (w) => (state.weights[name] = w),
    (error) => showError(`Could not load the ${name} weights: ${error.message}`),
  );
}
