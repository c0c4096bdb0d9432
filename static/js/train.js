// The training page: wires the design, the live arithmetic, the training job's event stream,
// the results and the replay. Drawing and DOM-building live in train-draw.js; every number
// (shapes, parameters, receptive fields, accuracies) comes from the API.

import { classes, models } from "./api.js";
import { modelCard } from "./models-draw.js";
import { addOwnDatasets, defaultFrozen, fitToData, freezeBoxes, showComparison, weightedLayers } from "./train-data.js";
import {
  confusionTable,
  filterTiles,
  gallery,
  layerRow,
  layerSummary,
  lecturerPresets,
  lineChart,
  perClassList,
  probabilityBars,
  readAs,
  shapeRows,
} from "./train-draw.js";
import { formatDuration, formatPercent, h, showError } from "./ui.js";

const CHECK_DEBOUNCE_MS = 150;
const INPUT_FOR = { digits: [1, 28, 28], fashion: [1, 28, 28] };

const el = Object.fromEntries(
  [
    "layer-list", "add-layer", "add-type", "add-block", "block-type", "block-filters", "block-stride", "input-line", "shape-table", "param-count", "spec-error", "dataset", "epochs",
    "batch-size", "learning-rate", "optimizer", "train-size", "augment", "model-name", "train-button", "stop-button",
    "status", "progress", "error", "loss-chart", "accuracy-chart", "filters", "results", "test-accuracy", "try-model",
    "export-onnx", "export-pytorch", "export-weights",
    "confusion-matrix", "per-class", "misclassified", "replay", "time-scrubber", "replay-step", "replay-filters",
    "replay-gallery", "replay-prediction", "replay-bars", "replay-play", "fine-tune", "start-from", "freeze-list", "comparison",
    "comparison-grid", "training-defaults", "seed", "job-seed", "run-again", "live-heading",
  ].map((id) => [id, document.getElementById(id)]),
);

const state = {
  presets: {},
  catalogue: null, // GET /api/architectures/layers: types, fields and defaults, padding modes
  description: [], // the API's rows for the design as last checked: each named layer's name, type and index
  preset: "lenet",
  spec: null, // the design: { input, classes, layers }
  valid: false,
  checkTimer: null,
  checkAbort: null,
  job: null, // { id, status, dataset, classes }
  own: {}, // the workspace's own data sets, by id
  expanded: new Set(), // the layer rows showing their fields (the others are one line each)
  fineTune: false, // start from LeNet, keeping the `frozen` layers' weights
  frozen: [],
  twin: null, // the from-scratch twin of a fine-tune, trained for the comparison
  replaying: false, // the replay playing its snapshots one after another
  replayTimer: null,
  source: null, // the EventSource following the job
  history: [], // progress points
  epochs: [], // epoch rows
  snapshots: [], // { step, filters }
  steps: 0,
  replayPicture: 0,
  replayImages: null,
  defaultsFor: null, // the data set whose training defaults the fields are waiting for (on a change of data set)
};

// -- the design ------------------------------------------------------------------------------

function setDesign(spec, preset = null) {
  state.spec = structuredClone(spec);
  state.expanded.clear();
  state.preset = preset;
  renderDesign();
  scheduleCheck();
}

function renderDesign() {
  const { layers } = state.spec;
  const handlers = {
    onType: (i, type) => {
      layers[i] = newLayer(type);
      changed();
    },
    onField: (i, key, value) => {
      // a typed value changes the spec and the row's one-line summary, never the rows themselves: the field
      // a learner moves to next (by click, Tab or tap) keeps its focus and what they type into it
      layers[i][key] = value;
      state.preset = null;
      refreshSummary(i);
      scheduleCheck();
    },
    onMove: (i, step) => {
      const [layer] = layers.splice(i, 1);
      layers.splice(i + step, 0, layer);
      const [a, b] = [state.expanded.has(i), state.expanded.has(i + step)]; // open rows move with their layer
      for (const [k, open] of [[i + step, a], [i, b]]) open ? state.expanded.add(k) : state.expanded.delete(k);
      changed();
      el["layer-list"].querySelectorAll("li")[i + step]?.querySelector("select")?.focus();
    },
    onRemove: (i) => {
      layers.splice(i, 1);
      state.expanded.clear();
      changed();
    },
    onToggle: (i) => {
      if (state.expanded.has(i)) state.expanded.delete(i);
      else state.expanded.add(i);
      renderDesign();
      el["layer-list"].children[i]?.querySelector(".layer-summary")?.focus();
    },
  };
  const focus = focusedControl();
  el["layer-list"].replaceChildren(
    ...layers.map((layer, i) => layerRow(layer, i, layers.length, state.catalogue, handlers, state.expanded.has(i))),
  );
  restoreFocus(focus);
  markFrozen();
  el["input-line"].textContent = `Input: ${state.spec.input.join(" × ")} (channels × height × width); ${state.spec.classes} classes out.`;
}

/** The layer row's control that has the focus (its field, type or summary), with the caret, to put back
 * after the rows are built again. */
function focusedControl() {
  const active = document.activeElement;
  const row = active?.closest?.("#layer-list > li");
  if (!row) return null;
  const selector = active.dataset.field ? `[data-field="${active.dataset.field}"]` : active.matches(".layer-type") ? ".layer-type" : active.matches(".layer-summary") ? ".layer-summary" : null;
  return selector && { index: row.dataset.index, selector, start: active.selectionStart ?? null, end: active.selectionEnd ?? null };
}

function restoreFocus(focus) {
  const control = focus && el["layer-list"].querySelector(`li[data-index="${focus.index}"] ${focus.selector}`);
  if (!control) return;
  control.focus();
  if (focus.start !== null && control.setSelectionRange) control.setSelectionRange(focus.start, focus.end);
}

function refreshSummary(index) {
  const layer = state.spec.layers[index];
  const summary = el["layer-list"].querySelector(`li[data-index="${index}"] .layer-summary .summary-text`);
  if (summary) summary.textContent = ` ${layerSummary(layer, state.catalogue.fields[layer.type] ?? {})}`;
}

/** While fine-tuning the design is LeNet's: its rows are read-only, and the frozen ones say they are locked. */
function markFrozen() {
  el["layer-list"].inert = state.fineTune;
  if (!state.fineTune) return;
  for (const layer of weightedLayers(state.description)) {
    el["layer-list"].children[layer.index]?.classList.toggle("locked", state.frozen.includes(layer.name));
  }
}

/** The freeze checkboxes, from the API's names for the start model's layers (after its design is checked). */
function renderFreezeBoxes() {
  freezeBoxes(el["freeze-list"], state.description, state.frozen, (name, frozen) => {
    state.frozen = frozen ? [...state.frozen, name] : state.frozen.filter((n) => n !== name);
    markFrozen();
  });
}

/** The chosen data set's pictures and classes: a shipped one's, or one of yours. */
function dataInfo() {
  const own = state.own[el.dataset.value];
  return own ? { input: own.input, classes: own.classes.length, kind: own.kind } : { input: INPUT_FOR[el.dataset.value], classes: 10, kind: "digit" };
}

function onDatasetChange() {
  state.defaultsFor = el.dataset.value; // its check brings the data set's defaults into the fields
  const info = dataInfo();
  const own = Boolean(state.own[el.dataset.value]);
  // LeNet reads 1-channel pictures of up to 32x32: a drawn data set's, not a photo one's
  el["fine-tune"].hidden = !(own && info.kind === "digit");
  if (el["fine-tune"].hidden) setFineTune(false);
  if (state.fineTune) setDesign(fitToData(state.presets.lenet, info, true), null);
  else setDesign(fitToData(state.spec, info, false), state.preset);
}

function setFineTune(on) {
  state.fineTune = on;
  el["start-from"].checked = on;
  state.frozen = on ? defaultFrozen() : [];
  el["freeze-list"].hidden = !on;
  if (on) {
    el["freeze-list"].textContent = "Reading LeNet's layers…"; // the boxes come with the design's check
    setDesign(fitToData(state.presets.lenet, dataInfo(), true), null);
  } else {
    renderDesign();
  }
}

function changed() {
  state.preset = null;
  renderDesign();
  scheduleCheck();
}

function scheduleCheck() {
  clearTimeout(state.checkTimer);
  state.valid = false;
  updateTrainButton();
  state.checkTimer = setTimeout(check, CHECK_DEBOUNCE_MS);
  writeUrl();
}

async function check() {
  state.checkAbort?.abort();
  const abort = new AbortController();
  state.checkAbort = abort;
  try {
    const result = await models.check(state.spec, el.dataset.value, { signal: abort.signal });
    state.valid = result.valid;
    shapeRows(el["shape-table"].tBodies[0], result.layers, result.error);
    state.description = result.layers;
    if (state.fineTune) renderFreezeBoxes();
    markFrozen();
    el["param-count"].textContent = result.parameters.toLocaleString("en");
    showDefaults(result.training_defaults);
    showError(el["spec-error"], result.error?.detail ?? "");
    const broken = result.error?.layer?.index;
    if (broken !== undefined && broken !== null && !state.expanded.has(broken)) {
      state.expanded.add(broken); // the layer at fault opens, its fields in view
      renderDesign();
    }
    for (const row of el["layer-list"].children) {
      row.classList.toggle("broken", broken === Number(row.dataset.index));
    }
  } catch (error) {
    if (error.name === "AbortError") return;
    state.valid = false;
    showError(el["spec-error"], `The design could not be checked: ${error.message}`);
  }
  updateTrainButton();
}

/** The data set's training defaults in one line; the fields take them when the data set was just chosen. */
function showDefaults(defaults) {
  if (!defaults) return;
  const words = defaults.words[0].toUpperCase() + defaults.words.slice(1);
  el["training-defaults"].textContent = `${words} (${defaults.examples.toLocaleString("en")} training pictures).`;
  if (state.defaultsFor !== el.dataset.value) return;
  state.defaultsFor = null;
  el.epochs.value = String(defaults.epochs);
  el["batch-size"].value = String(defaults.batch_size);
  el["learning-rate"].value = String(defaults.learning_rate);
  el.augment.checked = defaults.augment;
  writeUrl();
}

function updateTrainButton() {
  const busy = state.job && ["queued", "running"].includes(state.job.status);
  el["train-button"].disabled = !state.valid || busy;
  el["stop-button"].disabled = !busy;
}

// -- the URL ---------------------------------------------------------------------------------

const SETTINGS = [
  ["dataset", "dataset"],
  ["epochs", "epochs"],
  ["batch_size", "batch-size"],
  ["learning_rate", "learning-rate"],
  ["optimizer", "optimizer"],
  ["train_size", "train-size"],
  ["seed", "seed"],
  ["name", "model-name"],
];

function writeUrl() {
  // a job's id comes first: reloading reconnects to it; the design follows for when it is edited
  const params = new URLSearchParams();
  if (state.job) params.set("model", state.job.id);
  if (!state.job || !["queued", "running"].includes(state.job.status)) {
    if (state.preset) params.set("preset", state.preset);
    else params.set("spec", JSON.stringify(state.spec));
    for (const [key, id] of SETTINGS) if (el[id].value !== "") params.set(key, el[id].value);
    if (el.augment.checked) params.set("augment", "1");
  }
  history.replaceState(null, "", `/train?${params}`);
}

function readSettings(params) {
  for (const [key, id] of SETTINGS) if (params.has(key)) el[id].value = params.get(key);
  el.augment.checked = params.get("augment") === "1" || params.get("augment") === "true";
}

function settingsBody() {
  const number = (id) => (el[id].value === "" ? undefined : Number(el[id].value));
  const design = state.fineTune ? { start_from: "lenet", freeze: state.frozen } : { architecture: state.spec };
  return {
    name: el["model-name"].value || "my network",
    dataset: el.dataset.value,
    ...design,
    epochs: number("epochs"),
    batch_size: number("batch-size"),
    learning_rate: number("learning-rate"),
    optimizer: el.optimizer.value,
    augment: el.augment.checked,
    train_size: number("train-size"),
    seed: number("seed"),
  };
}

// -- training --------------------------------------------------------------------------------

async function train() {
  showError(el.error, "");
  el["train-button"].disabled = true;
  try {
    const body = settingsBody();
    const job = await models.submit(body);
    state.twin = null;
    if (state.fineTune) {
      // the same network from random weights, for the side-by-side comparison
      const { start_from: _, freeze: __, ...rest } = body;
      state.twin = (await models.submit({ ...rest, architecture: state.spec, name: `${body.name} (from scratch)` })).id;
    }
    follow({ id: job.id, status: "queued", dataset: el.dataset.value, epochs: Number(el.epochs.value) || 1, seed: job.seed });
    // the curves are what to watch now: on a projector they come into the first screen
    el["live-heading"].closest("section").scrollIntoView({ block: "start", behavior: "smooth" });
  } catch (error) {
    const advice = error.status === 429 ? " (the server is busy: wait a little and try again)" : "";
    showError(el.error, `Training could not start: ${error.message}${advice}`);
    updateTrainButton();
  }
}

function resetLive() {
  state.history = [];
  state.epochs = [];
  state.snapshots = [];
  state.steps = 0;
  el.results.hidden = true;
  el.replay.hidden = true;
  el.misclassified.replaceChildren();
  filterTiles(el.filters, []);
  drawCharts();
}

function follow(job) {
  state.source?.close();
  state.job = job;
  resetLive();
  writeUrl();
  setStatus(`Queued…`);
  updateTrainButton();
  el["try-model"].href = `/?model=${encodeURIComponent(job.id)}`;
  el["export-onnx"].href = models.exportUrl(job.id, "onnx");
  el["export-pytorch"].href = models.exportUrl(job.id, "pytorch");
  el["export-weights"].href = models.weightsUrl(job.id);
  // EventSource reconnects by itself (sending Last-Event-ID), so a dropped connection resumes
  const source = new EventSource(models.eventsUrl(job.id));
  state.source = source;
  const on = (type, handler) => source.addEventListener(type, (e) => handler(JSON.parse(e.data)));
  on("queued", (d) => setStatus(queueWords(d)));
  on("started", () => setStatus("Training started…"));
  on("progress", onProgress);
  on("epoch", (d) => {
    state.epochs.push(d);
    drawCharts();
  });
  on("snapshot", (d) => {
    state.snapshots.push(d);
    filterTiles(el.filters, d.filters, { since: state.snapshots[0]?.filters });
    updateScrubber();
  });
  on("done", (d) => finish("done", `Done: ${formatPercent(d.test_accuracy)} of the test pictures read correctly.`));
  on("failed", (d) => {
    finish("failed", "Training failed.");
    showError(el.error, d.message);
  });
  on("cancelled", () => finish("cancelled", "Stopped. The snapshots so far can still be replayed."));
  source.onerror = () => {
    if (source.readyState === EventSource.CLOSED && !["done", "failed", "cancelled"].includes(state.job?.status)) {
      showError(el.error, "Lost the connection to the server; reload the page to follow the job again.");
    }
  };
}

/** "3rd in line, about 40 s": a queued job's place and its predicted wait. */
function queueWords({ position, wait_seconds: wait }) {
  if (!position) return "Queued…";
  const place = position === 1 ? "Next in line" : `${ordinal(position)} in line`;
  return wait ? `${place}, about ${formatDuration(wait)} until it starts.` : `${place}.`;
}

function ordinal(n) {
  const tens = n % 100;
  const suffix = tens >= 11 && tens <= 13 ? "th" : ({ 1: "st", 2: "nd", 3: "rd" }[n % 10] || "th");
  return `${n}${suffix}`;
}

function onProgress(p) {
  state.job.status = "running";
  state.history.push(p);
  state.steps = p.steps;
  const share = p.step / p.steps;
  el.progress.setAttribute("aria-valuenow", String(Math.round(share * 100)));
  el.progress.querySelector(".progress-fill").style.width = `${(share * 100).toFixed(1)}%`;
  el.progress.querySelector(".progress-text").textContent =
    `step ${p.step} of ${p.steps} · epoch ${p.epoch} · about ${formatDuration(p.eta_seconds)} left`;
  setStatus(`Training: loss ${p.loss.toFixed(3)}, accuracy ${formatPercent(p.accuracy)} on this epoch's batches so far (${Math.round(p.examples_per_second)} pictures a second).`);
  updateTrainButton();
  drawCharts();
}

async function finish(status, words) {
  state.source?.close();
  state.job.status = status;
  setStatus(words);
  updateTrainButton();
  if (status === "done") el.progress.querySelector(".progress-fill").style.width = "100%";
  if (state.snapshots.length) showReplay();
  if (status === "done") await showResults();
}

async function stop() {
  if (!state.job) return;
  try {
    await models.cancel(state.job.id);
    setStatus("Stopping…");
  } catch (error) {
    showError(el.error, `Could not stop the job: ${error.message}`);
  }
}

function setStatus(text) {
  el.status.textContent = text;
}

// -- charts ----------------------------------------------------------------------------------

function drawCharts(marker = null) {
  const xMax = state.steps || 1;
  const loss = state.history.map((p) => [p.step, p.loss]);
  const lossMax = Math.max(2.5, ...loss.map(([, y]) => y));
  lineChart(el["loss-chart"], [{ points: loss, color: "#2563eb" }], { xMax, yMax: lossMax, marker });
  const stepsPerEpoch = state.steps / (state.job?.epochs || 1);
  const train = state.history.map((p) => [p.step, p.accuracy]);
  const val = state.epochs.filter((e) => e.val_accuracy !== null).map((e) => [Math.round(e.epoch * stepsPerEpoch), e.val_accuracy]);
  lineChart(
    el["accuracy-chart"],
    [
      { points: train, color: "#2563eb" },
      { points: val, color: "#dc2626", dots: true },
    ],
    { xMax, yMax: 1, yLabel: (v) => formatPercent(v, 0), marker },
  );
}

// -- results ---------------------------------------------------------------------------------

async function showResults() {
  let record;
  try {
    record = await models.get(state.job.id);
  } catch (error) {
    showError(el.error, `Could not load the results: ${error.message}`);
    return;
  }
  const { metrics, classes, dataset } = record;
  el["job-seed"].textContent = record.seed === null ? "" : `Trained with seed ${record.seed}.`;
  el["run-again"].hidden = record.seed === null || record.kind !== "trained";
  state.job.seed = record.seed;
  state.job.classes = classes;
  state.job.dataset = dataset;
  el.results.hidden = false;
  el["test-accuracy"].textContent = `${formatPercent(metrics.test_accuracy)} of ${metrics.test_size} pictures`;
  confusionTable(el["confusion-matrix"], metrics.confusion, classes, (t, g) => showCell(t, g, metrics.predictions));
  perClassList(el["per-class"], metrics.per_class_accuracy, classes);
  document.getElementById("model-card-box").replaceChildren(...(record.card ? [modelCard(record.card)] : []));
  if (state.twin) {
    showComparison(el.comparison, el["comparison-grid"], state.job.id, state.twin).catch((error) =>
      showError(el.error, `The comparison could not be shown: ${error.message}`),
    );
  }
}

let testLabels = null;

async function showCell(trueClass, guess, predictions) {
  const { dataset, classes } = state.job;
  testLabels ??= (await models.labels(dataset)).labels;
  const indices = predictions.flatMap((g, k) => (g === guess && testLabels[k] === trueClass ? [k] : []));
  const title = readAs(indices.length, classes[trueClass], classes[guess]);
  if (!indices.length) {
    el.misclassified.replaceChildren(h("h3", { text: title }));
    return;
  }
  if (state.job.pictures_note) {
    el.misclassified.replaceChildren(h("h3", { text: title }), h("p", { class: "hint", "data-testid": "pictures-note", text: `The pictures are not shown: ${state.job.pictures_note}.` }));
    return;
  }
  const shown = indices.slice(0, 48);
  const data = await models.images(dataset, { indices: shown.join(",") });
  const tiles = h("div", { class: "gallery" });
  gallery(tiles, data.images, data.labels, classes, () => {}, { testid: "misclassified-image" });
  const more = indices.length > shown.length ? h("p", { class: "hint", text: `The first ${shown.length} are shown.` }) : null;
  el.misclassified.replaceChildren(...[h("h3", { text: title }), tiles, more].filter(Boolean));
}

// -- replay ----------------------------------------------------------------------------------

function updateScrubber() {
  const scrubber = el["time-scrubber"];
  const atEnd = Number(scrubber.value) >= Number(scrubber.max);
  scrubber.max = String(Math.max(state.snapshots.length - 1, 0));
  if (atEnd) scrubber.value = scrubber.max;
  if (!el.replay.hidden) showSnapshot();
}

async function showReplay() {
  el.replay.hidden = false;
  updateScrubber();
  if (state.job.pictures_note) {
    el["replay-gallery"].replaceChildren(h("p", { class: "hint", text: `Replay needs a test picture to show, and these are not shown: ${state.job.pictures_note}.` }));
    return;
  }
  if (!state.replayImages) {
    const dataset = state.job.dataset ?? el.dataset.value;
    // one test picture of each class (as many classes as the data set has; a class may have none held out)
    const first = await models.images(dataset, { label: 0, count: 1 });
    const rest = await Promise.all(first.classes.slice(1).map((_, k) => models.images(dataset, { label: k + 1, count: 1 })));
    const firsts = [first, ...rest].filter((d) => d.images.length);
    state.replayImages = {
      images: firsts.map((d) => d.images[0]),
      labels: firsts.map((d) => d.labels[0]),
      classes: firsts[0].classes,
    };
    gallery(el["replay-gallery"], state.replayImages.images, state.replayImages.labels, state.replayImages.classes, (k) => {
      state.replayPicture = k;
      showSnapshot();
    });
  }
  showSnapshot();
}

let replayAbort = null;

async function showSnapshot() {
  const snapshot = state.snapshots[Number(el["time-scrubber"].value)];
  if (!snapshot) return;
  el["replay-step"].textContent = `step ${snapshot.step} of ${state.steps || snapshot.step}`;
  filterTiles(el["replay-filters"], snapshot.filters, { since: state.snapshots[0]?.filters });
  drawCharts(snapshot.step);
  if (!state.replayImages) return;
  for (const button of el["replay-gallery"].children) {
    button.setAttribute("aria-pressed", String(Number(button.dataset.index) === state.replayPicture));
  }
  replayAbort?.abort();
  replayAbort = new AbortController();
  try {
    const picture = state.replayImages.images[state.replayPicture];
    const result = await models.predict(
      { model: state.job.id, snapshot: snapshot.step, activations: "false" },
      { pixels: picture },
      { signal: replayAbort.signal },
    );
    const truth = state.replayImages.classes[state.replayImages.labels[state.replayPicture]];
    el["replay-prediction"].textContent = `At step ${snapshot.step} the network reads this ${truth} as “${result.label}” (${formatPercent(result.top[0].probability)}).`;
    probabilityBars(el["replay-bars"], result.probabilities, result.labels);
  } catch (error) {
    if (error.name !== "AbortError") showError(el.error, `Could not replay this step: ${error.message}`);
  }
}

// -- start -----------------------------------------------------------------------------------

async function reopen(modelId) {
  try {
    const record = await models.get(modelId);
    el.dataset.value = record.dataset;
    el.epochs.value = record.settings.epochs;
    el["batch-size"].value = record.settings.batch_size;
    el["learning-rate"].value = record.settings.learning_rate;
    el.optimizer.value = record.settings.optimizer;
    el["train-size"].value = record.settings.train_size;
    el.augment.checked = record.settings.augment;
    el.seed.value = ""; // training it again is another run; "Run again with this seed" repeats this one
    el["model-name"].value = record.name;
    state.spec = structuredClone(record.architecture);
    renderDesign();
    await check();
    follow({ id: record.id, status: record.status, dataset: record.dataset, epochs: record.settings.epochs });
  } catch (error) {
    const missing = `There is no model “${modelId}” in your workspace (a model made in another browser opens with its share link). Design a new one below.`;
    showError(el.error, error.status === 404 ? missing : error.message);
    setDesign(state.presets.lenet, "lenet");
  }
}

/** A layer of `type` as the API says a new one starts (a pooling stride left to follow the kernel). */
function newLayer(type) {
  const fields = Object.entries(state.catalogue.new_layer[type] ?? {}).filter(([, value]) => value !== null);
  return { type, ...Object.fromEntries(fields) };
}

/** Designs the learner's lecturers published, as presets of their own (none outside a class). */
async function showLecturerPresets() {
  const box = document.getElementById("lecturer-presets");
  try {
    const designs = (await classes.publications()).publications.filter((p) => p.kind === "design");
    box.replaceChildren(...lecturerPresets(designs, (design) => setDesign(structuredClone(design.architecture), null)));
    box.hidden = designs.length === 0;
  } catch (error) {
    showError(el.error, `The designs from your lecturer could not be loaded: ${error.message}`);
  }
}

async function start() {
  try {
    [state.presets, state.catalogue] = await Promise.all([models.architectures(), models.layerTypes()]);
    el["add-type"].replaceChildren(...state.catalogue.types.map((t) => h("option", { value: t, text: t })));
  } catch (error) {
    showError(el.error, `The ready-made designs could not be loaded: ${error.message}`);
    return;
  }
  showLecturerPresets();
  try {
    state.own = await addOwnDatasets(el.dataset);
  } catch (error) {
    showError(el.error, `Your data sets could not be listed: ${error.message}`);
  }
  const params = new URLSearchParams(location.search);
  readSettings(params);
  if (!params.has("epochs") && !params.has("model")) state.defaultsFor = el.dataset.value;
  if (state.own[el.dataset.value] && !params.has("model")) {
    setDesign(state.presets.lenet, "lenet");
    onDatasetChange();
    if (params.has("epochs")) state.defaultsFor = null; // settings in the address win over the defaults
    if (params.get("start") === "lenet" && !el["fine-tune"].hidden) setFineTune(true);
    return;
  }
  if (params.has("model")) {
    await reopen(params.get("model"));
    return;
  }
  let spec = null;
  if (params.has("spec")) {
    try {
      spec = JSON.parse(params.get("spec"));
    } catch {
      showError(el["spec-error"], "The design in the address could not be read; starting from LeNet.");
    }
  }
  const preset = params.get("preset") in state.presets ? params.get("preset") : "lenet";
  if (spec) setDesign(spec, null);
  else setDesign(state.presets[preset], preset);
}

for (const button of document.querySelectorAll("[data-preset]")) {
  button.addEventListener("click", () => {
    const spec = structuredClone(state.presets[button.dataset.preset]);
    setFineTune(false);
    const fitted = button.dataset.preset === "lenet" && !state.own[el.dataset.value] ? spec : fitToData(spec, dataInfo(), false);
    setDesign(fitted, button.dataset.preset);
  });
}
el["add-block"].addEventListener("click", async () => {
  showError(el["spec-error"], "");
  try {
    const filters = Number(el["block-filters"].value);
    const grown = await models.addBlock(state.spec, el["block-type"].value, filters, Number(el["block-stride"].value));
    state.spec = grown.architecture;
    state.expanded.clear();
    changed();
  } catch (error) {
    showError(el["spec-error"], `The block could not be added: ${error.message}`);
  }
});
el["add-layer"].addEventListener("click", () => {
  const type = el["add-type"].value;
  // a new layer goes before the last one (the output), where it usually belongs
  const at = Math.max(state.spec.layers.length - 1, 0);
  state.spec.layers.splice(at, 0, newLayer(type));
  state.expanded.add(at); // a new layer opens, to be set
  changed();
});
for (const id of ["dataset", "epochs", "batch-size", "learning-rate", "optimizer", "train-size", "augment", "seed", "model-name"]) {
  el[id].addEventListener("change", () => (id === "dataset" ? onDatasetChange() : writeUrl()));
}
el["train-button"].addEventListener("click", train);
el["run-again"].addEventListener("click", () => {
  el.seed.value = String(state.job.seed);
  train();
});
el["start-from"].addEventListener("change", () => setFineTune(el["start-from"].checked));
el["replay-play"].addEventListener("click", () => setReplaying(!state.replaying));

/** Plays the snapshots one after another (from the start when at the end), as the training went. */
function setReplaying(on) {
  state.replaying = on;
  el["replay-play"].textContent = on ? "❚❚ Pause" : "▶ Play";
  el["replay-play"].setAttribute("aria-label", on ? "Pause the replay" : "Play the training");
  clearTimeout(state.replayTimer);
  if (!on) return;
  const scrubber = el["time-scrubber"];
  if (Number(scrubber.value) >= Number(scrubber.max)) scrubber.value = "0";
  const advance = () => {
    showSnapshot();
    if (Number(scrubber.value) >= Number(scrubber.max)) {
      setReplaying(false);
      return;
    }
    state.replayTimer = setTimeout(() => {
      scrubber.value = String(Number(scrubber.value) + 1);
      advance();
    }, 700);
  };
  advance();
}
el["stop-button"].addEventListener("click", stop);
el["time-scrubber"].addEventListener("input", showSnapshot);
window.addEventListener("pagehide", () => state.source?.close());

start();
