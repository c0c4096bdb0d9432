// The drawing page: wires the sketchpad (or, for clothing models, a gallery and an upload), the
// chosen model (?model=ID&snapshot=STEP) and the layer views together. Layers, colour scales and
// explanations are built from the model's description, for any architecture; the DOM of a layer and of
// a cell's worked sum is digits-draw.js's.

import { models } from "./api.js";
import {
  cellDetail, convDetail, describeMoreMaps, layerSection, mergeDetail, moreMapsButton, normDetail, poolDetail, samplePhotos,
} from "./digits-draw.js";
import { modelCard, pickerGroups } from "./models-draw.js";
import { scaleFor, sequential } from "./colors.js";
import { extent, legend, outlineCells, paintGrid } from "./draw.js";
import { setupExplain } from "./explain.js";
import { showImportReport } from "./import-model.js";
import { CARRIED_INPUT, setupLearned } from "./learned.js";
import { geometry, inputField, mergeSources, windowOf, windowSpan } from "./network.js";
import { buildNetworkView, linkNetworkView, paintNetworkView } from "./network-view-draw.js";
import { Sketchpad } from "./sketchpad.js";
import { gallery, probabilityBars } from "./train-draw.js";
import { cellAt, cellCursor, formatNumber, formatPercent, h, readDataUrl, showError } from "./ui.js";

const DEBOUNCE_MS = 90;
const MAPS_PAGE = 16; // a layer shows this many maps at first, then "more" adds as many again

const el = {
  canvas: document.getElementById("draw-canvas"),
  clear: document.getElementById("clear"),
  undo: document.getElementById("undo"),
  samples: document.getElementById("sample-buttons"),
  prompt: document.getElementById("prompt"),
  announcer: document.getElementById("guess-announcer"),
  error: document.getElementById("error"),
  prediction: document.getElementById("prediction"),
  liveGuess: document.getElementById("live-guess"),
  predictionProbability: document.getElementById("prediction-probability"),
  second: document.getElementById("second-guess"),
  bars: document.getElementById("probability-bars"),
  independentNote: document.getElementById("independent-note"),
  downsampled: document.getElementById("downsampled"),
  inputAbout: document.getElementById("input-about"),
  toggles: document.getElementById("layer-toggles"),
  layers: document.getElementById("layers"),
  network: document.getElementById("network-view"),
  unitCard: document.getElementById("unit-card"),
  detailPanel: document.getElementById("unit-detail"),
  detail: document.getElementById("unit-detail-body"),
  detailInput: document.getElementById("detail-input"),
  detailInputCaption: document.querySelector(".detail-input figcaption"),
  picker: document.getElementById("model-picker"),
  pageTitle: document.getElementById("page-title"),
  pageIntro: document.getElementById("page-intro"),
  trueLabel: document.getElementById("true-label"),
  undoEdit: document.getElementById("undo-edit"),
  share: document.getElementById("share-model"),
  copy: document.getElementById("copy-model"),
  exportOnnx: document.getElementById("export-onnx"),
  exportPytorch: document.getElementById("export-pytorch"),
  shareResult: document.getElementById("share-result"),
  modelAbout: document.getElementById("model-about"),
  modelError: document.getElementById("model-error"),
  drawBox: document.getElementById("draw-box"),
  pictureBox: document.getElementById("picture-box"),
  gallery: document.getElementById("gallery"),
  upload: document.getElementById("upload"),
};

const params = new URLSearchParams(location.search);
const query = { model: params.get("model") || "lenet" };
if (params.has("snapshot")) query.snapshot = params.get("snapshot");

const state = {
  info: null, // GET /api/model: layers, labels, meta
  layers: [], // geometry(): the named layers in order
  result: null, // the last prediction applied to the page
  weights: {}, // conv layers' weights, fetched once for the unit details
  inputImage: null, // painted ImageData of the network's input
  views: {}, // per layer: { layer, section, tiles: [{canvas, image}], values }
  network: null, // the whole network in one view: buildNetworkView()
  inFlight: false,
  pending: null,
  epoch: 0, // bumped by clear: answers to older drawings are dropped
  timer: null,
  inspected: null, // the unit under the pointer: { view, channel, row, col }
  source: "pad", // where the input came from: the pad (or gallery), or the frame editor
  lastInput: null, // the last pad or gallery request, to go back to from the frame editor
  explainer: null,
  learned: null, // the unit cards and the class map (not for a training snapshot: they read the final model)
};

// -- talking to the model -----------------------------------------------------------

function schedule(delay = DEBOUNCE_MS) {
  clearTimeout(state.timer);
  state.source = "pad";
  state.timer = setTimeout(() => (pad.isEmpty ? showEmpty() : send({ image: pad.toDataURL() })), delay);
}

function sendInput(body) {
  // a drawing, a sample or a gallery picture: the frame editor starts again from what it gives
  state.source = "pad";
  state.lastInput = body;
  send(body);
}

function sendFrame(frame) {
  state.source = "frame";
  state.epoch++;
  send({ frame });
}

async function send(body) {
  if (state.inFlight) {
    state.pending = body; // at most one request at a time; the latest input goes next
    return;
  }
  state.inFlight = true;
  const epoch = state.epoch;
  try {
    const result = await models.predict(query, body);
    if (epoch === state.epoch) {
      showError(el.error, "");
      render(result);
    }
  } catch (error) {
    if (epoch === state.epoch) showError(el.error, `The network could not read the input: ${error.message}`);
  } finally {
    state.inFlight = false;
    if (state.pending) {
      const next = state.pending;
      state.pending = null;
      if (!(next.image && pad.isEmpty)) send(next);
    }
  }
}

// -- the guess ------------------------------------------------------------------------

function showEmpty() {
  state.result = null;
  el.prompt.hidden = false;
  el.prediction.textContent = "";
  el.liveGuess.textContent = "";
  el.predictionProbability.textContent = "";
  el.second.textContent = "";
  if (state.info) probabilityBars(el.bars, state.info.labels.map(() => 0), state.info.labels);
  el.bars.querySelectorAll("li").forEach((li) => li.classList.remove("top"));
  paintInput(null);
  for (const view of Object.values(state.views)) view.section.classList.add("stale");
  state.network?.root.classList.add("stale");
  state.pinned = null;
  el.detailPanel.classList.remove("pinned");
  clearDetail();
  state.explainer?.update(null, true, false);
  state.learned?.update(null, true);
}

/** Tells a screen reader the guess once it has held still for a second, not on every update while drawing. */
function announce(text) {
  clearTimeout(state.announceTimer);
  state.announceTimer = setTimeout(() => (el.announcer.textContent = text), 1000);
}

function render(result) {
  if (result.empty || result.too_small) {
    showEmpty();
    el.prompt.textContent = result.too_small
      ? "Too small to read: the network would blow this dot up to fill its 20 px box and guess with false confidence. Draw the digit bigger."
      : isDigits() ? "No ink found yet: draw a bigger or darker digit." : "This picture is blank.";
    if (result.too_small) paintInput(result.input); // what the blown-up dot would look like to the network
    announce(el.prompt.textContent);
    return;
  }
  state.result = result;
  el.prompt.hidden = true;
  const [first, second] = result.top;
  el.prediction.textContent = first.label;
  el.liveGuess.textContent = `Guess: ${first.label} (${formatPercent(first.probability)})`;
  el.predictionProbability.textContent = `${formatPercent(first.probability)} sure`;
  el.second.textContent = second ? `${second.label} (${formatPercent(second.probability)})` : "";
  announce(`First guess ${first.label}, ${formatPercent(first.probability)} sure` + (second ? `; then ${second.label}` : ""));
  probabilityBars(el.bars, result.probabilities, result.labels);
  el.independentNote.hidden = !result.independent;
  paintInput(result.input);
  renderLayers(result.layers);
  // a new guess repaints the maps: the unit being looked at stays outlined and explained
  if (state.inspected) highlight(state.inspected);
  state.explainer?.update(result.input, false, state.source === "frame");
  state.learned?.update(result.input, false);
}

function inputGrid(input) {
  // the network's input, one channel (H x W) or the first of several (C x H x W)
  return Array.isArray(input[0][0]) ? input[0] : input;
}

function paintInput(input) {
  const [channels, height, width] = state.info?.input_shape ?? [1, 32, 32];
  if (channels === 3 && input) {
    // a colour input: its three channels are the photo's red, green and blue
    const rgb = input[0].map((row, r) => row.map((_, c) => [0, 1, 2].map((k) => Math.round(input[k][r][c] * 255))));
    state.inputImage = paintGrid(el.downsampled, rgb, (pixel) => pixel);
  } else {
    const grid = input ? inputGrid(input) : Array.from({ length: height }, () => new Array(width).fill(0));
    state.inputImage = paintGrid(el.downsampled, grid, (v) => {
      const g = Math.round(v * 255);
      return [g, g, g];
    });
  }
  mirrorInput();
}

// -- layer views ------------------------------------------------------------------------

function buildLayerViews() {
  el.toggles.replaceChildren();
  el.layers.replaceChildren(el.unitCard); // the unit card stays, hidden, until a map is clicked
  for (const layer of state.layers) {
    const box = h("input", { type: "checkbox", checked: true, dataset: { layer: layer.name } });
    box.addEventListener("change", () => (state.views[layer.name].section.hidden = !box.checked));
    el.toggles.append(h("label", { class: "toggle" }, box, ` ${layer.label}`));

    const { section, title, scale, tiles } = layerSection(layer, state.info.labels);
    el.layers.append(section);
    const view = { layer, section, title, scale, tilesBox: tiles, tiles: [], shown: MAPS_PAGE };
    view.more = moreMapsButton(() => showMaps(view, view.shown + MAPS_PAGE));
    tiles.after(view.more);
    state.views[layer.name] = view;
  }
  buildOverview();
}

/** The whole network in one view above the layers: pointing at its thumbnails works as on the big maps. */
function buildOverview() {
  state.network = buildNetworkView(el.network, state.layers, state.info.input_shape, state.info.labels);
  for (const column of state.network.columns.slice(1)) {
    // a dense layer's strip stands upright here
    column.canvases.forEach((canvas, channel) => listenToPointer(canvas, state.views[column.name], channel, true));
  }
}

/**
 * Pointing at `canvas` (a map, or its thumbnail in the whole-network view) explains the cell under the
 * pointer; a click or tap pins it. A dense layer's units run along its strip: x, or y when `upright`.
 */
function listenToPointer(canvas, view, channel, upright = false) {
  if (view.layer.kind === "fc") {
    canvas.addEventListener("pointermove", (e) => {
      const cell = state.result && !state.pinned && cellAt(canvas, e);
      if (cell) describeUnitAt(view, upright ? cell.row : cell.col);
    });
  } else {
    canvas.addEventListener("pointermove", (e) => state.pinned || inspect(view, channel, cellAt(canvas, e)));
    canvas.addEventListener("pointerdown", (e) => togglePin(view, channel, cellAt(canvas, e)));
  }
  canvas.addEventListener("pointerleave", leaveCell);
}

/** Copies the input and the big maps, with whatever is outlined on them, into the whole-network view. */
function syncOverview() {
  paintNetworkView(state.network, (name, k) => (name === "input" ? el.downsampled : state.views[name].tiles[k]?.canvas));
}

function renderLayers(layers) {
  for (const { name, shape, values } of layers ?? []) {
    const view = state.views[name];
    if (!view) continue;
    view.section.classList.remove("stale");
    view.title.textContent = `${view.layer.label} · ${shape.join(" × ")}`;
    view.values = values;
    // the output strip is coloured by probability, so the eye goes to the likely classes, not the
    // most negative logit; the logits stay in view.values for the hover text
    const probabilities = view.layer.label === "output" ? state.result?.probabilities : null;
    const shown = probabilities ?? values;
    const [min, max] = extent(shown);
    const scale = probabilities ? { kind: "sequential", min: 0, max: 1, color: sequential } : scaleFor(min, max);
    legend(view.scale, scale);
    if (probabilities) view.scale.prepend(h("span", { class: "legend-name", text: "probability" }));
    const maps = view.layer.kind === "fc" ? [[shown]] : shown; // a dense layer is one strip of units
    while (view.tiles.length < maps.length) view.tiles.push(makeTile(view, view.tiles.length));
    maps.forEach((grid, channel) => {
      const tile = view.tiles[channel];
      tile.image = paintGrid(tile.canvas, grid, scale.color);
    });
    showMaps(view, view.shown);
  }
  state.network.root.classList.remove("stale");
  syncOverview();
}

/** The first `count` maps of a layer in view (a page of MAPS_PAGE at a time), the others behind "more". */
function showMaps(view, count) {
  view.shown = Math.min(Math.max(count, MAPS_PAGE), Math.max(view.tiles.length, MAPS_PAGE));
  view.tiles.forEach((tile, k) => (tile.canvas.hidden = k >= view.shown));
  describeMoreMaps(view.more, view.shown, view.tiles.length, MAPS_PAGE);
}

function makeTile(view, channel) {
  const kind = view.layer.kind;
  const canvas = h("canvas", {
    "data-testid": "activation-map",
    class: "activation-map",
    dataset: { channel: String(channel) },
    "aria-label": kind === "fc" ? `${view.layer.label} units` : `${view.layer.label} channel ${channel}`,
  });
  // a click (or Enter on a focused map) pins the cell and opens the unit's card: what it responds to.
  // One tab stop a layer (its first map); Page Down and Page Up walk its other maps
  canvas.tabIndex = channel === 0 ? 0 : -1;
  canvas.setAttribute("aria-describedby", "maps-keys");
  canvas.addEventListener("keydown", (event) => {
    const step = { PageDown: 1, PageUp: -1 }[event.key];
    const next = step && view.tiles[channel + step];
    if (!next) return;
    event.preventDefault();
    if (next.canvas.hidden) showMaps(view, view.shown + MAPS_PAGE); // walking on past the page opens the next
    next.canvas.focus();
  });
  canvas.addEventListener("click", (e) => {
    const unit = kind === "fc" ? cellAt(canvas, e)?.col : channel;
    if (unit !== undefined) openCard(view, unit);
  });
  // the keyboard's way in: arrows move a cell cursor (its explanation follows, a pin moves with it),
  // Enter pins the cell and opens the unit's card, as a click does; Escape lets go
  cellCursor(canvas, {
    size: () => ({ rows: canvas.height, cols: canvas.width }),
    onMove: ({ row, col }) => {
      if (!state.result) return;
      if (kind === "fc") {
        describeUnitAt(view, col);
        return;
      }
      state.inspected = { view, channel, row, col };
      if (state.pinned) state.pinned = state.inspected;
      highlight(state.inspected);
    },
    onEnter: (cell) => {
      if (kind !== "fc") togglePin(view, channel, cell);
      if (kind === "fc" || state.pinned) openCard(view, kind === "fc" ? cell.col : channel);
    },
    onLeave: unpin,
  });
  listenToPointer(canvas, view, channel);
  view.tilesBox.append(canvas);
  return { canvas, image: null };
}

// -- unit cards -----------------------------------------------------------------------------

function openCard(view, unit) {
  if (!state.learned) return;
  // the card opens just below the layer it belongs to: beside what was clicked, and without pushing it away
  view.section.after(el.unitCard);
  const values = view.values;
  let current = null;
  if (values && state.result) current = view.layer.kind === "fc" ? values[unit] : Math.max(...values[unit].flat());
  state.learned.open(view.layer.name, unit, current);
}

// -- receptive fields and unit details ----------------------------------------------------

function restoreHighlights() {
  if (state.inputImage) el.downsampled.getContext("2d").putImageData(state.inputImage, 0, 0);
  for (const view of Object.values(state.views)) {
    for (const tile of view.tiles) if (tile.image) tile.canvas.getContext("2d").putImageData(tile.image, 0, 0);
    for (const tile of view.tiles) tile.canvas.classList.remove("focused");
  }
  mirrorInput();
  syncOverview();
  linkNetworkView(state.network, null);
  el.detailPanel.classList.remove("selected");
}

function leaveCell() {
  if (state.pinned) return; // a pinned cell stays outlined and explained when the pointer or finger leaves
  state.inspected = null;
  restoreHighlights();
}

/** Copies the input, with whatever is outlined on it, into the detail panel beside the maps. */
function mirrorInput() {
  const { width, height } = el.downsampled;
  el.detailInput.width = width;
  el.detailInput.height = height;
  el.detailInput.getContext("2d").drawImage(el.downsampled, 0, 0);
}

/** A click or tap pins `cell` (its explanation stays); the same cell again, or Escape, lets go. */
function togglePin(view, channel, cell) {
  if (!state.result || !cell) return;
  const pinned = state.pinned;
  if (pinned && pinned.view === view && pinned.channel === channel && pinned.row === cell.row && pinned.col === cell.col) {
    unpin();
    return;
  }
  state.inspected = { view, channel, row: cell.row, col: cell.col };
  state.pinned = state.inspected;
  el.detailPanel.classList.add("pinned");
  highlight(state.inspected);
}

function unpin() {
  state.pinned = null;
  state.inspected = null;
  el.detailPanel.classList.remove("pinned");
  restoreHighlights();
  clearDetail();
}

document.addEventListener("keydown", (event) => {
  if (event.key === "Escape" && state.pinned) unpin();
});

function inspect(view, channel, cell) {
  if (!state.result || !cell) return;
  state.inspected = { view, channel, row: cell.row, col: cell.col };
  highlight(state.inspected);
}

/** Outlines a unit, its receptive field on the input and its window on the layer before, and explains it. */
function highlight({ view, channel, row, col }) {
  const { layer } = view;
  restoreHighlights();

  const field = inputField(layer, row, col);
  outlineCells(el.downsampled, state.inputImage, ...field);
  mirrorInput();
  const tile = view.tiles[channel];
  // the cell itself in solid cyan, a colour the magma scale never uses, so it stands out on dark and bright
  outlineCells(tile.canvas, tile.image, row, col, row + 1, col + 1, "#22d3ee", 1);
  tile.canvas.classList.add("focused");

  const sources = readFrom(layer, channel, row, col, field);
  for (const source of sources.filter((s) => s.name !== "input")) {
    const view = state.views[source.name];
    for (const c of source.channels) outlineCells(view.tiles[c].canvas, view.tiles[c].image, ...source.window);
  }
  syncOverview();
  linkNetworkView(state.network, { name: layer.name, channel, row, col, sources, field });
  showDetail(view, channel, row, col);
  el.detailInputCaption.textContent = "input: the patch the unit sees";
  el.detailPanel.classList.add("selected");
}

/** The cells of the layers before that cell (row, col) of `channel` reads: a convolution looks through every
 * channel of its group (all of them without groups), pooling and BatchNorm through their own, a merge
 * through the same cell of each input (a concat: of the one input the channel comes from). */
function readFrom(layer, channel, row, col, field) {
  const channelsOf = (name) => (name === "input" ? state.info.input_shape[0] : state.views[name].tiles.length);
  if (layer.kind === "merge") {
    return mergeSources(layer, channel, channelsOf).map((s) => ({ name: s.name, channels: [s.channel], window: [row, col, row + 1, col + 1] }));
  }
  const window = layer.from === "input" && field ? field : windowSpan(layer, row, col);
  let channels = [channel];
  if (layer.kind === "conv") {
    const all = channelsOf(layer.from);
    const perGroup = all / layer.groups;
    const group = Math.floor(channel / (layer.shape[0] / layer.groups));
    channels = Array.from({ length: perGroup }, (_, k) => group * perGroup + k);
  }
  if (layer.from === "input") channels = channels.filter((c) => c < state.info.input_shape[0]);
  return [{ name: layer.from, channels, window }];
}

function describeUnitAt(view, col) {
  const value = view.values[col];
  const output = view.layer.label === "output";
  const name = output ? state.info.labels[col] : `unit ${col}`;
  const text = output
    ? `probability ${formatPercent(state.result.probabilities[col])}; logit ${formatNumber(value, 3)} (${state.result.independent ? "its own sigmoid" : "softmax"} turns the logits into the probabilities)`
    : `value ${formatNumber(value, 3)}`;
  clearDetail(`${view.layer.label}, ${name}`, text);
  linkNetworkView(state.network, { name: view.layer.name, unit: col });
  el.detailInputCaption.textContent = "input: a dense unit depends on all of it";
  el.detailPanel.classList.add("selected");
}

const TOUCH = matchMedia("(pointer: coarse)").matches;

/** The panel's words when no unit is explained (or `title` and `text` for a dense unit). */
function clearDetail(
  title = TOUCH ? "Tap a cell of any map" : "Hover a cell",
  text = "Point at (or tap) any cell of a convolution or pooling map to see how it was computed.",
) {
  el.detail.replaceChildren(h("h3", { text: title }), h("p", { class: "hint", text }));
  el.detailPanel.classList.remove("selected");
}

function previousMaps(layer) {
  if (layer.from === "input") {
    const input = state.result.input;
    return Array.isArray(input[0][0]) ? input : [input];
  }
  return state.views[layer.from].values;
}

function showDetail(view, channel, row, col) {
  const { layer } = view;
  const value = view.values[channel][row][col];
  const title = h("h3", { text: `${layer.label}, channel ${channel}, cell (${row}, ${col}) = ${formatNumber(value, 3)}` });
  el.detail.replaceChildren(title, ...detailParts(layer, channel, row, col, value));
}

/** How the cell was computed, as its layer's kind computes it. */
function detailParts(layer, channel, row, col, value) {
  const maps = previousMaps(layer);
  const [source] = readFrom(layer, channel, row, col, null);
  const where = `rows ${row * layer.s[0] - layer.p[0]}–${row * layer.s[0] - layer.p[0] + layer.d[0] * (layer.k[0] - 1)}`;
  const weights = state.weights[layer.name];
  if (layer.kind === "merge") {
    const sources = mergeSources(layer, channel, (name) => state.views[name].tiles.length);
    const values = sources.map((s) => ({ ...s, value: state.views[s.name].values[s.channel][row][col] }));
    return mergeDetail(layer, values, value, row, col);
  }
  const windows = windowOf(layer, source.channels.map((c) => maps[c]), row, col);
  if (layer.kind === "pool") return poolDetail(layer, channel, windows, value, where);
  if (!["conv", "norm"].includes(layer.kind)) return cellDetail(layer, channel, windows, value);
  if (!weights) return [h("p", { text: "Loading the layer's weights…" })];
  if (layer.kind === "norm") return normDetail(layer, channel, windows[0][0][0].value, weights, value);
  return convDetail(layer, channel, windows, source.channels.length, weights, where, value);
}

// -- inputs: the sketchpad and samples (digits), a gallery and an upload (pictures) --------

/** Whether the model reads drawn digits (a sketchpad) or pictures (a gallery and an upload). */
function isDigits() {
  const meta = state.info?.meta ?? {};
  if (meta.preprocess) return meta.preprocess === "digit"; // an imported model says how
  return (meta.dataset ?? "digits") === "digits";
}

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

async function showGallery() {
  el.drawBox.hidden = true;
  el.pictureBox.hidden = false;
  // a model of pictures, not digits: the page says so from its title on
  const title = "Show it a picture, watch the network read it";
  el.pageTitle.textContent = title;
  document.title = `${title} · convscope`;
  el.pageIntro.textContent = `${state.info.name} reads ${state.info.labels.length} kinds of picture (${state.info.labels.join(", ")}). Choose a test picture it never saw while training, or upload your own; below, every layer shows what it made of it: hover or tap a cell to see which pixels it looks at and the weighted sum that gave its value.`;
  const [, height, width] = state.info.input_shape;
  el.inputAbout.textContent = state.info.meta.preprocess === "none"
    ? `The picture only resized to ${height}×${width}, as this model's import asked.`
    : `The whole picture scaled to fit ${height}×${width} (a light background is turned dark), as Fashion-MNIST's pictures were.`;
  const dataset = state.info.meta.dataset;
  if (!dataset || state.info.input_shape[0] === 3) {
    // no shipped test pictures to click (an import without a data set, or colour photos of your own)
    el.gallery.replaceChildren(...samplePhotos(PHOTOS, showPhoto));
    el.gallery.before(h("p", { class: "hint", text: "Show it one of these photos, or one of your own." }));
    return;
  }
  if (state.info.pictures_note) {
    // a model shared from someone's own data set: its pictures stay with them
    el.gallery.replaceChildren(h("p", { class: "hint", "data-testid": "pictures-note", text: `Draw instead: ${state.info.pictures_note}.` }));
    return;
  }
  const data = await models.images(dataset, { count: 30, start: 0 });
  gallery(el.gallery, data.images, data.labels, data.classes, (k) => {
    for (const b of el.gallery.children) b.setAttribute("aria-pressed", String(Number(b.dataset.index) === k));
    el.trueLabel.hidden = false;
    el.trueLabel.textContent = `The test set says this is: ${data.classes[data.labels[k]]}.`;
    state.epoch++;
    sendInput({ pixels: data.images[k] });
  });
}

// colour photos shipped with the app (static/samples/README.md says whose they are)
const PHOTOS = [["cat.jpg", "cat"], ["astronaut.jpg", "astronaut"], ["coffee.jpg", "coffee"], ["rocket.jpg", "rocket"]];

async function showPhoto(file) {
  const blob = await (await fetch(`/static/samples/${file}`)).blob();
  readPicture(blob);
}

function readUpload(event) {
  const file = event.target.files[0];
  if (file) readPicture(file);
}

async function readPicture(file) {
  const image = await readDataUrl(file);
  state.epoch++;
  sendInput({ image });
}

// -- the model --------------------------------------------------------------------------

async function fillPicker() {
  try {
    // opening a share link lists it under "shared with you" (GET /api/models/{id} remembers it)
    if (query.model.startsWith("s")) await models.get(query.model).catch(() => null);
    const list = await models.list();
    const usable = list.filter((m) => m.status === "done" || m.id === query.model);
    el.picker.replaceChildren(...pickerGroups(usable, query.model));
    const current = list.find((m) => m.id === query.model);
    showModelActions(current, list);
    showImportReport(current, { justImported: params.get("imported") === "1" });
    if (current?.dataset?.startsWith("d") && current.group === "yours") showCard(current.id);
  } catch (error) {
    showError(el.modelError, `The list of models could not be loaded: ${error.message}`);
  }
}

function showModelActions(current, list) {
  const edited = current?.origin === "edit" && current.base; // a copy or a fine-tune has a base too: no undo
  const base = edited ? list.find((m) => m.id === current.base) : null;
  el.undoEdit.hidden = !edited;
  if (edited) {
    el.undoEdit.href = `/?${new URLSearchParams({ model: current.base })}`;
    el.undoEdit.textContent = `Undo the edit: open ${base ? base.name : current.base}`;
  }
  el.share.hidden = current?.group !== "yours";
  el.copy.hidden = current?.group !== "shared";
  el.exportOnnx.href = models.exportUrl(query.model, "onnx");
  el.exportPytorch.href = models.exportUrl(query.model, "pytorch");
}

/** The card of a model trained on your own data, under the picker. */
async function showCard(modelId) {
  try {
    const record = await models.get(modelId);
    if (record.card) document.getElementById("model-card-box").replaceChildren(modelCard(record.card));
  } catch (error) {
    showError(el.modelError, `The model's card could not be loaded: ${error.message}`);
  }
}

el.share.addEventListener("click", async () => {
  try {
    const link = await models.share(query.model);
    const url = new URL(link.url, location.href).href;
    el.shareResult.hidden = false;
    el.shareResult.replaceChildren(h("a", { href: url, text: url }), h("br"), link.travels);
    await navigator.clipboard?.writeText(url).catch(() => {});
  } catch (error) {
    showError(el.modelError, `The model could not be shared: ${error.message}`);
  }
});

el.copy.addEventListener("click", async () => {
  try {
    const copy = await models.copy(query.model);
    location.search = new URLSearchParams({ model: copy.id }).toString();
  } catch (error) {
    showError(el.modelError, `The model could not be copied: ${error.message}`);
  }
});

async function loadModel() {
  try {
    state.info = await models.info(query);
  } catch (error) {
    const words = error.status === 404
      ? `There is no model “${query.model}”${query.snapshot ? ` at step ${query.snapshot}` : ""} in your workspace. Pick one from the list; a model made in another browser opens with its share link.`
      : error.status === 409
        ? `That model cannot be used yet: ${error.message}`
        : `The model could not be loaded: ${error.message}`;
    showError(el.modelError, words);
    el.drawBox.hidden = true;
    return false;
  }
  state.layers = geometry(state.info.layers);
  const snapshot = query.snapshot ? ` at training step ${query.snapshot}` : "";
  el.modelAbout.textContent = `${state.info.name}${snapshot}: ${state.info.total_parameters.toLocaleString("en")} parameters, input ${state.info.input_shape.join(" × ")}.`;
  buildLayerViews();
  probabilityBars(el.bars, state.info.labels.map(() => 0), state.info.labels);
  el.bars.querySelectorAll("li").forEach((li) => li.classList.remove("top"));
  for (const layer of state.layers.filter((l) => l.kind === "conv" || l.kind === "norm")) {
    models.layerWeights(layer.name, query).then(
      (w) => (state.weights[layer.name] = w),
      (error) => showError(el.error, `Could not load the ${layer.name} weights: ${error.message}`),
    );
  }
  return true;
}

// -- wiring ---------------------------------------------------------------------------------

const pad = new Sketchpad(el.canvas, {
  onDraw: () => schedule(),
  onStroke: () => schedule(0),
});

el.clear.addEventListener("click", () => {
  pad.clear();
  state.epoch++;
  showError(el.error, "");
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
el.upload.addEventListener("change", readUpload);
document.getElementById("camera").addEventListener("change", readUpload);
el.picker.addEventListener("change", () => {
  location.search = new URLSearchParams({ model: el.picker.value }).toString();
});

function readUrl() {
  const number = (key) => (params.get(key) === null || params.get(key) === "" ? null : Number(params.get(key)));
  return { method: params.get("method"), target: number("target"), epsilon: number("epsilon"), attack: params.get("attack") };
}

function writeUrl(values) {
  for (const [key, value] of Object.entries(values)) {
    if (value === "" || value === null) params.delete(key);
    else params.set(key, value);
  }
  history.replaceState(null, "", `${location.pathname}?${params}`);
}

fillPicker();
if (await loadModel()) {
  state.explainer = setupExplain({ query, labels: state.info.labels, sendFrame, readUrl, writeUrl });
  if (!query.snapshot) {
    state.learned = setupLearned({ modelId: query.model, info: state.info, layers: state.layers, error: el.error });
  } else {
    document.querySelector(".map-panel").hidden = true;
  }
  state.explainer.onReset(() => {
    state.epoch++;
    if (isDigits()) schedule(0);
    else if (state.lastInput) sendInput(state.lastInput);
  });
  showEmpty();
  if (!isDigits()) {
    el.prompt.textContent = "Choose a picture to see what the network thinks it is.";
    await showGallery();
  } else {
    const [, height, width] = state.info.input_shape;
    el.inputAbout.textContent = `Your drawing cropped, scaled into a 20 px box and centred by its centre of mass in 28×28${height === 28 && width === 28 ? "" : `, then fitted to ${height}×${width}`}, as MNIST's digits were.`;
    if (state.info.labels.some((label, k) => label !== String(k))) titleForClasses(state.info.labels);
  }
  takeCarriedInput();
}

/** A drawing model whose classes are not the digits (an imported one): the page names its classes. */
function titleForClasses(labels) {
  const named = labels.length <= 4 ? `${labels.slice(0, -1).join(", ")} or ${labels.at(-1)}` : "one of its classes";
  const title = `Draw a ${named}, watch the network read it`;
  el.pageTitle.textContent = title;
  document.title = `${title} · convscope`;
  el.pageIntro.textContent = `${state.info.name} tells ${labels.join(", ")} apart. Draw one; below, every layer shows what it made of your drawing: hover or tap a cell to see which pixels it looks at and the weighted sum that gave its value.`;
  document.getElementById("draw-heading").textContent = "Draw here";
  el.prompt.textContent = `Draw a ${named} to see what the network thinks it is.`;
}

/** The input a page opened with "Open the edited network" was looking at: read it again here, once. */
function takeCarriedInput() {
  const carried = sessionStorage.getItem(CARRIED_INPUT);
  sessionStorage.removeItem(CARRIED_INPUT);
  if (!carried) return;
  try {
    sendFrame(JSON.parse(carried));
  } catch {
    // a frame of another shape or a broken value: start empty, as without one
  }
}
