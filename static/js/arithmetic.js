// The convolution-arithmetic stepper: numbers from /api/arithmetic, /api/convolve and /api/pool,
// drawn as grids, one output cell at a time. The URL holds the whole state.

import { api } from "./api.js";
import { CONFIG } from "./config.js";
import {
  MIN_CELL,
  MIN_LABELLED_CELL,
  cellSize,
  channelSlices,
  drawGrid,
  filterStacks,
  directInput,
  linkCells,
  outputMaps,
  outputPlane,
  scatterPlanes,
  slidingInput,
  windowOrigin,
} from "./arithmetic-draw.js";
import { cellCursor, formatNumber, h, showError as showErrorIn } from "./ui.js";

/** 4 -> "4", 2.3333 -> "2.33" */
function num(v) {
  return Number.isInteger(v) ? String(v) : formatNumber(v, 2);
}

const LECTURE_IMAGE = CONFIG.lectureImage;
const LECTURE_POOL = CONFIG.lecturePool;
const BOUNDS = { n: [1, 32], f: [1, 11], s: [1, 8], p: [0, 8], d: [1, 5], c: [1, 4096], k: [1, 4096] };
// the volume stage draws at most this many input channels and filters; the layer's fields keep theirs
const DRAWN = { c: 4, k: 6 };
// which field of the page each of /api/arithmetic's parameters is, to put its error beside it
const QUERY_FIELDS = {
  input_size: "input-size", kernel_size: "kernel-size", stride: "stride", padding: "padding", dilation: "dilation",
  in_channels: "in-channels", filters: "filters", groups: "groups",
};
// a volume whose every step would make too long an answer is fetched a window of steps at a time
const STEP_WINDOW = 256;
const VOLUME_WINDOW = 7; // a larger slice is shown as a window around the kernel (at least 7x7), numbers and all
const PRESETS = {
  "lecture-5x5": { mode: "conv", n: 5, f: 3, s: 1, p: 0, d: 1 },
  "stride-1": { mode: "conv", n: 7, f: 3, s: 1, p: 0, d: 1 },
  "stride-2": { mode: "conv", n: 7, f: 3, s: 2, p: 0, d: 1 },
  "stride-3": { mode: "conv", n: 7, f: 3, s: 3, p: 0, d: 1 },
  "pad-1": { mode: "conv", n: 7, f: 3, s: 1, p: 1, d: 1 },
  "dilation-2": { mode: "conv", n: 7, f: 3, s: 1, p: 0, d: 2 },
  "pool-4x4": { mode: "max", n: 4, f: 2, s: 2, p: 0, d: 1 },
  transposed: { mode: "transposed", n: 2, f: 3, s: 2, p: 0, d: 1 },
  // cs231n's animated demo: 5x5x3 padded by 1, two 3x3x3 filters, stride 2 -> 3x3x2
  cs231n: { mode: "volume", n: 5, f: 3, s: 2, p: 1, d: 1, c: 3, k: 2 },
  "lecture-volume-1": { mode: "volume", n: 32, f: 5, s: 1, p: 0, d: 1, c: 3, k: 1 },
  "lecture-volume-6": { mode: "volume", n: 32, f: 5, s: 1, p: 0, d: 1, c: 3, k: 6 },
};
const FIELDS = { n: "input_size", f: "kernel_size", s: "stride", p: "padding", d: "dilation" };
const WIDTH_IDS = { n: "input-size-w", f: "kernel-size-w", s: "stride-w", p: "padding-w", d: "dilation-w" };

const el = {
  mode: document.getElementById("mode"),
  n: document.getElementById("input-size"),
  f: document.getElementById("kernel-size"),
  s: document.getElementById("stride"),
  p: document.getElementById("padding"),
  d: document.getElementById("dilation"),
  showValues: document.getElementById("show-values"),
  square: document.getElementById("square"),
  rectOnly: document.querySelectorAll(".rect-only"),
  widths: Object.fromEntries(Object.entries(WIDTH_IDS).map(([key, id]) => [key, document.getElementById(id)])),
  trueConvolution: document.getElementById("true-convolution"),
  convOnly: document.querySelectorAll(".conv-only"),
  transposedOnly: document.querySelectorAll(".transposed-only"),
  directView: document.getElementById("direct-view"),
  inputValues: document.getElementById("input-values"),
  kernelValues: document.getElementById("kernel-values"),
  formula: document.getElementById("formula"),
  outputSize: document.getElementById("output-size"),
  fitMessage: document.getElementById("fit-message"),
  error: document.getElementById("error"),
  prev: document.getElementById("step-prev"),
  next: document.getElementById("step-next"),
  play: document.getElementById("play"),
  speed: document.getElementById("speed"),
  counter: document.getElementById("step-counter"),
  inputGrid: document.getElementById("input-grid"),
  outputGrid: document.getElementById("output-grid"),
  kernelFigure: document.getElementById("kernel-figure"),
  kernelGrid: document.getElementById("kernel-grid"),
  kernelCaption: document.getElementById("kernel-caption"),
  linkOverlay: document.getElementById("link-overlay"),
  inputCaption: document.getElementById("input-caption"),
  outputCaption: document.getElementById("output-caption"),
  numbersHidden: document.getElementById("numbers-hidden"),
  detail: document.getElementById("step-detail"),
  inChannels: document.getElementById("in-channels"),
  filters: document.getElementById("filters"),
  groups: document.getElementById("groups"),
  parameters: document.getElementById("parameters"),
  channels: document.getElementById("channels"),
  volumeOnly: document.querySelectorAll(".volume-only"),
  volumeStage: document.getElementById("volume-stage"),
  planeStage: document.getElementById("plane-stage"),
  channelSlices: document.getElementById("channel-slices"),
  filterStacks: document.getElementById("filter-stacks"),
  outputMaps: document.getElementById("output-maps"),
  volumeSum: document.getElementById("volume-sum"),
  volumeNote: document.getElementById("volume-note"),
  jumpForm: document.getElementById("jump-form"),
  jumpMap: document.getElementById("jump-map"),
  jumpRow: document.getElementById("jump-row"),
  jumpCol: document.getElementById("jump-col"),
  pytorchLine: document.getElementById("pytorch-line"),
  pytorchOutput: document.getElementById("pytorch-output"),
  copyPytorch: document.getElementById("copy-pytorch"),
};

const state = {
  mode: "conv", n: 7, f: 3, s: 1, p: 0, d: 1, c: 3, k: 10, seed: 1, step: 0,
  square: true, w: { n: 7, f: 3, s: 1, p: 0, d: 1 }, // the width's sizes when not square
  volume: null, // volume mode: { input (C, N, N), filters (K, C, F, F), biases (K) }
  input: null, kernel: null, customInput: false, customKernel: false,
  arithmetic: null, result: null, direct: null, playing: false, timer: null, seq: 0,
};

// -- values ---------------------------------------------------------------------------------

/** A size along the width: the height's when the set-up is square. */
function wide(key) {
  return state.square ? state[key] : state.w[key];
}

/** Whether this operation can take different sizes along height and width here. */
function canBeRectangular() {
  return state.mode === "conv" || state.mode === "max" || state.mode === "avg";
}

/** A size for the API: one number, or "height,width". */
function sizeParam(key) {
  return wide(key) === state[key] ? String(state[key]) : `${state[key]},${wide(key)}`;
}

/** A size for /api/convolve and /api/pool: one number, or [height, width]. */
function sizeValue(key) {
  return wide(key) === state[key] ? state[key] : [state[key], wide(key)];
}

/** Default numbers: the lecture's grids where sizes match, else a fixed 0/1 pattern (so links reproduce). */
function defaultInput(n, nw, mode) {
  if (n === 5 && nw === 5 && mode === "conv") return LECTURE_IMAGE.map((row) => [...row]);
  if (n === 4 && nw === 4 && mode !== "conv" && mode !== "transposed") return LECTURE_POOL.map((row) => [...row]);
  if (n === 2 && mode === "transposed") return [[1, 2], [3, 4]];
  let seed = 7 + n + 31 * (nw - n);
  const next = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
  const pooling = mode === "max" || mode === "avg";
  return Array.from({ length: n }, () => Array.from({ length: nw }, () => (pooling ? Math.floor(next() * 9) : next() < 0.5 ? 1 : 0)));
}

function defaultKernel(f, fw) {
  // the lecture's 3x3 filter is a checkerboard of ones; the same pattern at any size
  return Array.from({ length: f }, (_, u) => Array.from({ length: fw }, (_, v) => ((u + v) % 2 === 0 ? 1 : 0)));
}

/** Small random whole numbers, as cs231n's demo shows: the seed is in the URL, so a link reproduces them. */
function seededIntegers(seed, count, lo, hi) {
  let value = (seed * 2654435761) % 2147483648 || 1;
  return Array.from({ length: count }, () => {
    value = (value * 1103515245 + 12345) % 2147483648;
    return lo + Math.floor((value / 2147483648) * (hi - lo + 1));
  });
}

function reshape(flat, ...dims) {
  if (dims.length === 1) return flat.slice(0, dims[0]);
  const size = dims.slice(1).reduce((a, b) => a * b, 1);
  return Array.from({ length: dims[0] }, (_, k) => reshape(flat.slice(k * size, (k + 1) * size), ...dims.slice(1)));
}

/** The volume the stage draws: the layer's channels and filters, up to DRAWN of each. */
function volumeValues() {
  const { n, f, seed } = state;
  const [c, k] = [Math.min(state.c, DRAWN.c), Math.min(state.k, DRAWN.k)];
  return {
    input: reshape(seededIntegers(seed, c * n * n, 0, 2), c, n, n),
    filters: reshape(seededIntegers(seed + 1000, k * c * f * f, -1, 1), k, c, f, f),
    biases: Array.from({ length: k }, (_, j) => (j === 0 ? 1 : 0)),
  };
}

/** The kernel the window applies: as typed (cross-correlation), or turned by 180 degrees (true convolution). */
function appliedKernel() {
  const flip = state.mode === "conv" && el.trueConvolution.checked;
  return flip ? rotated(state.kernel) : state.kernel;
}

/** The kernel turned by 180°, as a true convolution (and a transposed one, written directly) reads it. */
function rotated(kernel) {
  return kernel.map((row) => [...row].reverse()).reverse();
}

function gridToText(grid) {
  return grid.map((row) => row.join(" ")).join("\n");
}

function parseGrid(text, size, width, what) {
  const rows = text.trim().split(/\n+/).map((line) => line.trim().split(/[\s,;]+/).filter(Boolean).map(Number));
  if (rows.length !== size || rows.some((row) => row.length !== width)) {
    throw new Error(`${what} must be ${size} rows of ${width} numbers (it follows the sizes set above)`);
  }
  if (rows.flat().some((v) => !Number.isFinite(v))) throw new Error(`${what} holds something that is not a number`);
  return rows;
}

function ensureValues() {
  const fits = (grid, rows, cols) => grid && grid.length === rows && grid[0].length === cols;
  if (!fits(state.input, state.n, wide("n")) || !state.customInput) {
    state.input = defaultInput(state.n, wide("n"), state.mode);
    state.customInput = false;
  }
  if (!fits(state.kernel, state.f, wide("f")) || !state.customKernel) {
    state.kernel = defaultKernel(state.f, wide("f"));
    state.customKernel = false;
  }
  el.inputValues.value = gridToText(state.input);
  el.kernelValues.value = gridToText(state.kernel);
}

// -- URL ------------------------------------------------------------------------------------

function clamp(key, value) {
  const [lo, hi] = BOUNDS[key];
  const v = Math.round(Number(value));
  return Number.isFinite(v) ? Math.min(hi, Math.max(lo, v)) : lo;
}

function readURL() {
  const params = new URLSearchParams(location.search);
  const mode = params.get("mode");
  if (["conv", "max", "avg", "transposed", "volume"].includes(mode)) state.mode = mode;
  if (params.has("channels")) state.c = clamp("c", params.get("channels"));
  if (params.has("filters")) state.k = clamp("k", params.get("filters"));
  if (params.has("groups")) el.groups.value = String(Math.max(1, Math.round(Number(params.get("groups"))) || 1));
  if (params.has("seed")) state.seed = Math.max(1, Math.round(Number(params.get("seed"))) || 1);
  for (const [key, name] of Object.entries(FIELDS)) {
    if (!params.has(name)) continue;
    const [height, width = height] = params.get(name).split(",");
    state[key] = clamp(key, height);
    state.w[key] = clamp(key, width);
    if (width !== height) state.square = false;
  }
  if (state.square) state.w = { n: state.n, f: state.f, s: state.s, p: state.p, d: state.d };
  state.step = Math.max(0, Math.round(Number(params.get("step")) || 0));
  for (const [key, flag, size] of [["input", "customInput", "n"], ["kernel", "customKernel", "f"]]) {
    if (!params.has(key)) continue;
    try {
      const grid = JSON.parse(params.get(key));
      if (grid.length === state[size] && grid.every((row) => row.length === wide(size) && row.every(Number.isFinite))) {
        state[key] = grid;
        state[flag] = true;
      }
    } catch {
      // ignore a damaged link's grid: defaults are used
    }
  }
  if (params.get("numbers") === "false") el.showValues.checked = false;
  el.trueConvolution.checked = params.get("flip") === "true";
  el.directView.checked = params.get("view") === "direct";
}

function writeURL() {
  const params = new URLSearchParams({ mode: state.mode });
  for (const [key, name] of Object.entries(FIELDS)) params.set(name, sizeParam(key));
  params.set("step", state.step);
  if (state.customInput) params.set("input", JSON.stringify(state.input));
  if (state.customKernel) params.set("kernel", JSON.stringify(state.kernel));
  params.set("channels", state.c);
  params.set("filters", state.k);
  if (el.groups.value !== "1") params.set("groups", el.groups.value);
  if (state.mode === "volume") params.set("seed", state.seed);
  if (!el.showValues.checked) params.set("numbers", "false");
  if (state.mode === "conv" && el.trueConvolution.checked) params.set("flip", "true");
  if (state.mode === "transposed" && el.directView.checked) params.set("view", "direct");
  history.replaceState(null, "", `${location.pathname}?${params}`);
}

function syncControls() {
  el.mode.value = state.mode;
  const volume = state.mode === "volume";
  el.volumeOnly.forEach((field) => (field.hidden = !volume));
  el.convOnly.forEach((field) => (field.hidden = state.mode !== "conv"));
  el.transposedOnly.forEach((field) => (field.hidden = state.mode !== "transposed"));
  if (!canBeRectangular()) state.square = true;
  el.square.checked = state.square;
  el.square.disabled = !canBeRectangular();
  el.rectOnly.forEach((field) => (field.hidden = state.square));
  for (const key of Object.keys(FIELDS)) el.widths[key].value = wide(key);
  el.volumeStage.hidden = !volume;
  el.planeStage.hidden = volume;
  // the layer's channels and filters are one pair of values in every mode: switching modes changes no field
  el.channels.value = state.c;
  el.inChannels.value = state.c;
  el.filters.value = state.k;
  for (const key of Object.keys(FIELDS)) el[key].value = state[key];
  const pooling = state.mode === "max" || state.mode === "avg";
  el.p.disabled = pooling;
  el.d.disabled = pooling;
}

// -- fetching ---------------------------------------------------------------------------------

function showError(message) {
  showErrorIn(el.error, message);
}

/** An error the API names a field for goes beside that field (marked invalid), and the figures computed from
 * the set-up are cleared rather than left showing the last good one; any other goes to the stage. */
function showSetupError(message) {
  clearFieldErrors();
  const name = message.match(/^(?:query\.)?([a-z_]+):/)?.[1];
  const input = name && QUERY_FIELDS[name] ? document.getElementById(QUERY_FIELDS[name]) : null;
  for (const figure of [el.formula, el.outputSize, el.fitMessage, el.parameters, el.pytorchLine, el.pytorchOutput]) figure.textContent = "";
  el.parameters.textContent = "No count: the set-up above has an error.";
  document.querySelector(".arith-stage").classList.add("invalid");
  if (!input) {
    showError(`Could not compute this set-up: ${message}`);
    return;
  }
  const box = document.getElementById(`${input.id}-error`) ?? h("p", { class: "error field-error", id: `${input.id}-error`, role: "alert" });
  box.textContent = message.replace(/^query\./, "");
  input.closest("label").after(box);
  input.setAttribute("aria-invalid", "true");
  input.setAttribute("aria-describedby", box.id);
  showErrorIn(el.error, "");
}

function clearFieldErrors() {
  document.querySelectorAll(".field-error").forEach((box) => box.remove());
  document.querySelectorAll("[aria-invalid=true]").forEach((input) => {
    input.removeAttribute("aria-invalid");
    input.removeAttribute("aria-describedby");
  });
  document.querySelector(".arith-stage").classList.remove("invalid");
}

async function refresh() {
  const seq = ++state.seq;
  const pooling = state.mode === "max" || state.mode === "avg";
  if (pooling) {
    state.p = 0;
    state.d = 1;
  }
  syncControls();
  ensureValues();
  const query = { input_size: sizeParam("n"), kernel_size: sizeParam("f"), stride: sizeParam("s"),
    padding: sizeParam("p"), dilation: sizeParam("d"),
    in_channels: el.inChannels.value, filters: el.filters.value, groups: el.groups.value,
    operation: state.mode === "volume" ? "conv" : state.mode };
  try {
    const arithmetic = await api.arithmetic(query);
    if (state.mode === "volume") {
      await refreshVolume(seq, arithmetic);
      return;
    }
    let result = null;
    if (arithmetic.output_size >= 1) {
      result = pooling
        ? await api.pool({ input: state.input, kernel_size: sizeValue("f"), stride: sizeValue("s"), mode: state.mode })
        : await api.convolve({ input: state.input, kernel: appliedKernel(), stride: sizeValue("s"), padding: sizeValue("p"),
          dilation: sizeValue("d"), transposed: state.mode === "transposed" });
    }
    if (seq !== state.seq) return;
    showErrorIn(el.error, "");
    clearFieldErrors();
    state.arithmetic = arithmetic;
    state.result = result;
    state.step = Math.min(state.step, Math.max(0, stepCount() - 1));
    render();
  } catch (error) {
    if (seq === state.seq) showSetupError(error.message);
  }
}

// -- rendering --------------------------------------------------------------------------------

function pretty(formula) {
  return formula.replaceAll("*", "·").replace(/(\d|\)) - /g, "$1 − ").replace(/\((\d+)-(\d+)\)/g, "($1−$2)");
}

async function refreshVolume(seq, arithmetic) {
  state.volume = volumeValues();
  const drawn = state.volume.filters.length;
  const total = arithmetic.output_size >= 1 ? drawn * arithmetic.output_shape[0] * arithmetic.output_shape[1] : 0;
  state.step = Math.min(state.step, Math.max(0, total - 1));
  const first = total > STEP_WINDOW ? Math.max(0, state.step - STEP_WINDOW / 2) : 0;
  let result = null;
  if (total) {
    result = await api.convolve({
      input: state.volume.input,
      kernel: state.volume.filters,
      bias: state.volume.biases,
      stride: state.s,
      padding: state.p,
      dilation: state.d,
      first_step: first,
      step_count: STEP_WINDOW,
    });
  }
  if (seq !== state.seq) return;
  showErrorIn(el.error, "");
  clearFieldErrors();
  state.arithmetic = arithmetic;
  state.result = result;
  state.window = { first, total };
  render();
}

function render() {
  const a = state.arithmetic;
  el.formula.textContent = pretty(a.formula);
  const size = `${a.output_shape[0]} × ${a.output_shape[1]}`;
  // a rectangle's two axes each have their own exact size: "2.5 × 3" rounds down to "2 × 3"
  const exact = a.height.exact === a.width.exact ? num(a.exact) : `${num(a.height.exact)} × ${num(a.width.exact)}`;
  const some = a.output_shape.every((v) => v >= 1);
  el.outputSize.textContent = a.fits ? size : some ? `${exact}: does not fit (frameworks round down to ${size})` : "does not fit at all";
  el.fitMessage.textContent = a.message;
  el.fitMessage.className = `fit-message ${a.fits ? "good" : "bad"}`;
  const pooling = state.mode === "max" || state.mode === "avg";
  el.parameters.textContent = pooling
    ? "Pooling has no parameters: it only takes the max or the mean of each window."
    : a.parameter_formula
      ? `${a.parameter_formula} parameters` + (a.output_volume ? `; output volume ${a.output_volume.join(" × ")}` : "")
      : "";
  el.pytorchLine.textContent = a.pytorch;
  el.pytorchOutput.textContent = a.pytorch_output ? `→ output ${a.pytorch_output}` : "";
  renderGrids();
  writeURL();
}

function currentStep() {
  if (state.mode === "volume") return state.result?.steps[state.step - (state.window?.first ?? 0)] ?? null;
  return steps()[state.step] ?? null;
}

function stepCount() {
  return state.mode === "volume" ? state.window?.total ?? 0 : steps().length;
}

/** The steps being walked: the server's, or the direct view's (one per output cell) for a transposed layer. */
function steps() {
  return directView() ? directSteps().steps : state.result?.steps ?? [];
}

function directView() {
  return state.mode === "transposed" && el.directView.checked && state.result !== null;
}

/**
 * A transposed convolution as a direct one, from the server (its `direct` view): the input with S − 1
 * zeros inserted between cells and q = D(F − 1) − P zeros around it, read by the flipped kernel at
 * stride 1 with dilation D, one step per output cell (no steps when P > D(F − 1): the padding would be negative).
 */
function directSteps() {
  // shaped once per server result: stepping and drawing ask for it many times
  if (state.direct?.result !== state.result) state.direct = { result: state.result, ...serverDirectView(state.result) };
  return state.direct;
}

function serverDirectView(result) {
  const { d, f, p } = state;
  const direct = result.direct;
  if (!direct) return { grid: null, q: d * (f - 1) - p, steps: [] };
  const weights = direct.kernel.flat();
  const steps = direct.steps.map((step) => ({ ...step, weights }));
  return { grid: direct.input, q: direct.padding, steps };
}

function renderGrids() {
  if (state.mode === "volume") {
    renderVolume();
    return;
  }
  const total = stepCount();
  el.counter.textContent = total ? `Step ${state.step + 1} of ${total}` : "No steps";
  el.prev.disabled = state.step <= 0;
  el.next.disabled = state.step >= total - 1;
  const size = state.mode === "transposed" ? renderTransposed() : renderSliding();
  el.numbersHidden.hidden = !(el.showValues.checked && size < MIN_LABELLED_CELL);
  el.numbersHidden.textContent = "The numbers are not drawn at this size (they would be under 12 px): choose a smaller input to read them.";
  renderKernel();
  drawLink();
}

/** The kernel as its own grid of weights, as the current view applies it (none for pooling). */
function renderKernel() {
  const pooling = state.mode === "max" || state.mode === "avg";
  el.kernelFigure.hidden = pooling;
  if (pooling) return;
  const direct = directView();
  const kernel = direct ? rotated(state.kernel) : appliedKernel();
  drawGrid(el.kernelGrid, kernel.length, kernel[0].length, {
    classOf: () => "kernel",
    valueOf: (r, c) => kernel[r][c],
    size: 32,
  });
  const flipped = direct || (state.mode === "conv" && el.trueConvolution.checked);
  el.kernelCaption.textContent = `kernel ${kernel.length} × ${kernel[0].length}${flipped ? " (flipped)" : ""}`;
}

/** Links the window on the input (or the scattering input cell) to the output cell it makes. */
function drawLink() {
  const from = el.inputGrid.querySelector(".window-span") ?? el.inputGrid.querySelector("rect.current");
  const to = el.outputGrid.querySelector("rect.current") ?? el.outputGrid.querySelector("rect.scatter");
  linkCells(el.linkOverlay, from, to);
}

function renderSliding() {
  const { result, arithmetic } = state;
  const show = el.showValues.checked;
  const pooling = state.mode !== "conv";
  // nothing computed (the kernel does not fit): the input as typed, with its padding, and never a fake zero
  const grid = result ? (pooling ? state.input : result.padded_input) : withPadding(state.input, pooling ? 0 : state.p, pooling ? 0 : wide("p"));
  const np = grid.length;
  const npw = grid[0]?.length ?? 0;
  const step = currentStep();
  // how far the windows reach along each axis: beyond it, cells are never covered
  const [oh, ow] = arithmetic.output_shape;
  // with no window at all, no cell is "never covered" by one: the caption says why nothing is computed
  const reach = oh >= 1 ? (oh - 1) * state.s + state.d * (state.f - 1) + 1 : np;
  const reachW = ow >= 1 ? (ow - 1) * wide("s") + wide("d") * (wide("f") - 1) + 1 : npw;
  const p = pooling ? 0 : state.p;
  const pw = pooling ? 0 : wide("p");
  const size = slidingInput(el.inputGrid, grid, {
    step,
    reach: [reach, reachW],
    pad: [p, pw],
    // max pooling: the cell the engine took (the first maximum, on ties)
    winner: state.mode === "max" && step?.source ? step.source.join(",") : null,
    weights: pooling ? null : appliedKernel().flat(),
    show,
    size: planeCellSize(Math.max(np, npw), npw, ow),
  });
  const uncovered = [arithmetic.height.uncovered, arithmetic.width.uncovered];
  const spans = `${state.d * (state.f - 1) + 1} × ${wide("d") * (wide("f") - 1) + 1}`;
  el.inputCaption.textContent = `Input ${state.n} × ${wide("n")}` + (p || pw ? `, padded to ${np} × ${npw}` : "") +
    (!result && !pooling || oh < 1 || ow < 1
      ? `: the kernel spans ${spans} cells and does not fit, so nothing is computed (the values stay as they are)`
      : uncovered[0] || uncovered[1] ? `: the last ${uncovered[0]} row(s) and ${uncovered[1]} column(s) are never covered` : "");

  const out = result?.output ?? [];
  const done = new Set((result?.steps ?? []).slice(0, state.step + 1).map((s) => s.output.join(",")));
  // the same cell size as the input's, so a smaller output looks smaller
  outputPlane(el.outputGrid, out, { step, done, show, size, onPick: jumpTo });
  el.outputCaption.textContent = out.length ? `Output ${out.length} × ${out[0].length}` : "No output";
  el.detail.textContent = step ? describeStep(step) : arithmetic.message;
  return size;
}

/**
 * One cell size for the input and output grids, so that a smaller output looks smaller: what the screen's
 * height leaves (a projector shows the grids and the worked sum at once), and no more than lets the input's
 * and the output's columns sit side by side on the stage's width (on a phone, smaller cells, not a stack).
 */
function planeCellSize(rows, inputCols, outputCols) {
  const room = Math.max(200, Math.min(460, window.innerHeight - 480));
  const gap = parseFloat(getComputedStyle(el.planeStage).columnGap) || 0;
  const across = Math.floor((el.planeStage.clientWidth - gap - 4) / (inputCols + outputCols));
  return Math.max(MIN_CELL, Math.min(cellSize(rows, room), across));
}

/** A grid with `p` rows and `pw` columns of zeros around it, as padding shows it. */
function withPadding(grid, p, pw) {
  const cols = grid[0].length + 2 * pw;
  const zeros = () => new Array(cols).fill(0);
  return [...Array.from({ length: p }, zeros), ...grid.map((row) => [...new Array(pw).fill(0), ...row, ...new Array(pw).fill(0)]), ...Array.from({ length: p }, zeros)];
}

function describeStep(step) {
  const [i, j] = step.output;
  if (state.mode === "max") return `output (${i}, ${j}) = max(${step.values.join(", ")}) = ${num(step.value)}`;
  if (state.mode === "avg") return `output (${i}, ${j}) = mean(${step.values.join(", ")}) = ${num(step.value)}`;
  const weights = appliedKernel().flat();
  const values = step.positions.map(([r, c]) => state.result.padded_input[r][c]);
  const terms = values.map((v, k) => `${v}*${weights[k]}`).join(" + ");
  return `output (${i}, ${j}) = ${terms} = ${num(step.value)}`;
}

function renderDirect() {
  const { n, s } = state;
  const { grid, q } = directSteps();
  const show = el.showValues.checked;
  const step = currentStep();
  if (!grid) {
    el.inputGrid.replaceChildren();
    el.inputCaption.textContent = `P = ${state.p} is more than D(F − 1) = ${state.d * (state.f - 1)}: the direct view would need negative padding (a crop); the scatter view shows it.`;
    return;
  }
  const side = grid.length;
  const out = state.result.output;
  const size = directInput(el.inputGrid, grid, { q, s, step, show, size: planeCellSize(side, side, out.length) });
  el.inputCaption.textContent = `Input ${n} × ${n} with ${s - 1} zero${s === 2 ? "" : "s"} between cells and ${q} around it: ${side} × ${side}`;
  const done = new Set(steps().slice(0, state.step + 1).map((t) => t.output.join(",")));
  outputPlane(el.outputGrid, out, { step, done, show, size, onPick: jumpTo });
  el.outputCaption.textContent = `Output ${out.length} × ${out.length}: the same numbers as the scatter view`;
  el.detail.textContent = step
    ? `output (${step.output[0]}, ${step.output[1]}) = ${step.positions.map(([r, c], k) => `${num(step.weights[k])}·${num(grid[r][c])}`).join(" + ")} = ${num(step.value)} (flipped kernel)`
    : "";
  return size;
}

function renderTransposed() {
  if (directView()) return renderDirect();
  const { result } = state;
  const show = el.showValues.checked;
  const step = currentStep();
  // the full frame before padding crops it: (N-1)S + D(F-1) + 1
  const full = (state.n - 1) * state.s + state.d * (state.f - 1) + 1;
  const size = planeCellSize(full, state.n, full);
  const p = state.p;
  scatterPlanes(el.inputGrid, el.outputGrid, {
    input: state.input, steps: (result?.steps ?? []).slice(0, state.step + 1), step, full, p, show, size, onPick: jumpTo,
  });
  el.inputCaption.textContent = `Input ${state.n} × ${state.n}: each cell scatters value × kernel`;
  el.outputCaption.textContent = `Output ${result?.output_size.join(" × ") ?? "–"}` + (p ? ` (the outer ${p} ring is cropped by padding ${p})` : "");
  el.detail.textContent = step
    ? `input (${step.input[0]}, ${step.input[1]}) = ${num(step.value)} adds ${num(step.value)} × kernel at output rows ${step.positions[0][0]}…${step.positions.at(-1)[0]}, columns ${step.positions[0][1]}…${step.positions.at(-1)[1]}`
    : "";
  return size;
}

// -- volume mode --------------------------------------------------------------------------------

function renderVolume() {
  const { result, arithmetic, volume } = state;
  const step = currentStep();
  const total = stepCount();
  el.counter.textContent = total ? `Step ${state.step + 1} of ${total}` : "No steps";
  el.prev.disabled = state.step <= 0;
  el.next.disabled = state.step >= total - 1;
  const padded = result?.padded_input ?? [];
  const np = state.n + 2 * state.p;
  const side = Math.min(np, Math.max(VOLUME_WINDOW, state.f + 2));
  const origin = step && np > side ? windowOrigin(step.positions, np, side) : [0, 0];
  const taps = new Set((step?.positions ?? []).map(([r, c]) => `${r},${c}`));
  const show = el.showValues.checked;
  el.channelSlices.replaceChildren(...channelSlices(padded, {
    p: state.p, size: np > side ? MIN_LABELLED_CELL : Math.max(MIN_LABELLED_CELL, cellSize(side, 180)), taps, show, positions: step?.positions, origin, side,
  }));
  el.filterStacks.replaceChildren(...filterStacks(volume, { current: step?.filter ?? 0, f: state.f, c: volume.input.length }));
  const [oh, ow] = arithmetic.output_shape;
  const maps = arithmetic.output_size >= 1 ? volume.filters.length : 0;
  const mapCell = outputCellSize(oh, ow);
  const values = show && result && mapCell >= MIN_LABELLED_CELL ? result.output : null;
  el.outputMaps.replaceChildren(...outputMaps(maps, oh, ow, { step: state.step, values, onClick: jumpTo, size: mapCell }));
  el.volumeNote.textContent = volumeWords(np, side);
  const unreadable = [state.f > 5 && "the filters' weights", maps && mapCell < MIN_LABELLED_CELL && `the ${oh}×${ow} output maps`];
  const hidden = show ? unreadable.filter(Boolean) : [];
  el.numbersHidden.hidden = hidden.length === 0;
  el.numbersHidden.textContent = `At this size the numbers of ${hidden.join(" and ")} are not drawn (they would be under 12 px); the sum above gives every value the step uses.`;
  describeVolumeStep(step, arithmetic);
}

/** What the volume stage draws of the layer as set: a window of a large slice, and at most DRAWN channels
 * and filters (the layer's own fields, and the parameter count, keep their values). */
function volumeWords(np, side) {
  const words = [];
  if (np > side) words.push(`Each ${np}×${np} slice is shown as the ${side}×${side} window around the kernel (its rows and columns under it); jump to any output cell above.`);
  if (state.k > DRAWN.k) words.push(`The layer has ${state.k} filters; the stage draws the first ${DRAWN.k}.`);
  if (state.c > DRAWN.c) words.push(`The layer reads ${state.c} input channels; the stage draws a volume of ${DRAWN.c}.`);
  if (Number(el.groups.value) > 1) words.push(`The stage draws groups = 1 (every filter across every channel); the count below uses groups = ${el.groups.value}.`);
  if (words.length > 1 || state.k > DRAWN.k || state.c > DRAWN.c) words.push("The parameter count below is for the layer as set.");
  return words.join(" ");
}

/** An output map's cell: big enough for its number when the map is small, a few pixels when it is 28×28. */
function outputCellSize(oh, ow) {
  return Math.max(Math.min(cellSize(Math.max(oh, ow), 160), Math.floor(120 / Math.max(oh, ow, 1))), 3);
}

function describeVolumeStep(step, arithmetic) {
  if (!step) {
    el.volumeSum.textContent = arithmetic.message;
    el.detail.textContent = "";
    return;
  }
  const [i, j] = step.output;
  [el.jumpMap.value, el.jumpRow.value, el.jumpCol.value] = [step.filter, i, j];
  const sums = step.channel_sums.map((v) => num(v));
  el.volumeSum.textContent = `map ${step.filter}, cell (${i}, ${j}): ${sums.join(" + ")} + ${num(step.bias)} = ${num(step.value)}`;
  el.detail.textContent =
    `Filter ${step.filter} over all ${state.volume.input.length} channels at output (${i}, ${j}): ` +
    step.channel_sums.map((v, c) => `channel ${c} gives ${num(v)}`).join(", ") +
    `; their sum plus the bias b${step.filter} = ${num(step.bias)} is w·x + b = ${num(step.value)}, written to map ${step.filter}, cell (${i}, ${j}).`;
}

// -- stepping ---------------------------------------------------------------------------------

function jumpTo(step) {
  const count = stepCount();
  if (!count) return;
  state.step = Math.min(Math.max(step, 0), count - 1);
  if (state.mode === "volume" && !currentStep()) {
    refresh(); // outside the window of steps fetched: fetch the window around it
    return;
  }
  renderGrids();
  writeURL();
}

function setPlaying(playing) {
  state.playing = playing;
  el.play.textContent = playing ? "❚❚ Pause" : "▶ Play";
  el.play.setAttribute("aria-label", playing ? "Pause" : "Play");
  clearTimeout(state.timer);
  if (playing) tick();
}

function tick() {
  const count = stepCount();
  if (!state.playing || !count) return;
  if (state.step >= count - 1) state.step = -1; // loop from the start
  jumpTo(state.step + 1);
  state.timer = setTimeout(tick, 1400 / Number(el.speed.value));
}

// -- wiring -----------------------------------------------------------------------------------

/** The field's value within its bounds; a value that had to change is written back and said, not swallowed. */
function boundedField(key, input) {
  const value = clamp(key, input.value);
  const typed = input.value;
  input.value = String(value);
  const [lo, hi] = BOUNDS[key];
  const name = input.labels?.[0]?.textContent.trim().split("\n")[0] ?? key;
  const note = String(value) === typed.trim() ? "" : `${name} is ${lo} to ${hi} here: ${typed.trim() || "an empty field"} became ${value}.`;
  return { value, note };
}

for (const key of Object.keys(FIELDS)) {
  for (const [input, put] of [
    [el[key], (v) => (state[key] = v)],
    [el.widths[key], (v) => (state.w[key] = v)],
  ]) {
    input.addEventListener("change", async () => {
      const { value, note } = boundedField(key, input);
      put(value);
      state.step = 0;
      await refresh();
      if (note) showError(note);
    });
  }
}
el.square.addEventListener("change", () => {
  state.square = el.square.checked;
  state.w = { n: state.n, f: state.f, s: state.s, p: state.p, d: state.d }; // start from the same sizes
  state.step = 0;
  refresh();
});
el.mode.addEventListener("change", () => {
  state.mode = el.mode.value;
  state.step = 0;
  state.customInput = false;
  refresh();
});
el.trueConvolution.addEventListener("change", () => refresh());
el.directView.addEventListener("change", () => {
  state.step = 0; // the two views walk different cells: input cells, or output cells
  renderGrids();
  writeURL();
});
el.showValues.addEventListener("change", () => {
  renderGrids();
  writeURL();
});
for (const [key, flag, size, what] of [["input", "customInput", "n", "Input"], ["kernel", "customKernel", "f", "Kernel"]]) {
  el[`${key}Values`].addEventListener("change", () => {
    try {
      state[key] = parseGrid(el[`${key}Values`].value, state[size], wide(size), what);
      state[flag] = true;
      refresh();
    } catch (error) {
      showError(error.message);
    }
  });
}
for (const field of [el.inChannels, el.filters, el.groups, el.channels]) {
  field.addEventListener("change", () => {
    state.c = clamp("c", (field === el.channels ? el.channels : el.inChannels).value);
    state.k = clamp("k", el.filters.value);
    if (state.mode === "volume") state.step = 0;
    refresh();
  });
}
el.copyPytorch.addEventListener("click", async () => {
  try {
    await navigator.clipboard.writeText(el.pytorchLine.textContent);
    el.copyPytorch.textContent = "Copied";
  } catch {
    el.copyPytorch.textContent = "Select and copy it";
  }
  setTimeout(() => (el.copyPytorch.textContent = "Copy"), 1500);
});
document.querySelectorAll("[data-preset]").forEach((button) => {
  button.addEventListener("click", () => {
    Object.assign(state, PRESETS[button.dataset.preset], { step: 0, customInput: false, customKernel: false });
    state.square = true;
    if (state.mode === "volume") el.showValues.checked = true; // a large volume shows a readable window
    setPlaying(false);
    refresh();
  });
});
el.jumpForm.addEventListener("submit", (event) => {
  event.preventDefault();
  // the steps go map by map, row by row: map k's cell (i, j) is step k·OH·OW + i·OW + j
  const [oh, ow] = state.arithmetic.output_shape;
  const bounded = (input, most) => Math.min(Math.max(Math.round(Number(input.value)) || 0, 0), most);
  const map = bounded(el.jumpMap, state.volume.filters.length - 1);
  jumpTo(map * oh * ow + bounded(el.jumpRow, oh - 1) * ow + bounded(el.jumpCol, ow - 1));
});
el.prev.addEventListener("click", () => jumpTo(state.step - 1));
el.next.addEventListener("click", () => jumpTo(state.step + 1));
el.play.addEventListener("click", () => setPlaying(!state.playing));
// a focused output grid takes the arrows in two dimensions: up and down move a row
el.outputGrid.setAttribute("tabindex", "0");
cellCursor(el.outputGrid, {
  size: () => {
    const out = state.result?.output;
    const walksOutputCells = state.mode !== "volume" && (state.mode !== "transposed" || directView());
    return walksOutputCells && out?.length ? { rows: out.length, cols: out[0].length } : { rows: 0, cols: 0 };
  },
  onMove: ({ row, col }) => jumpTo(row * state.result.output[0].length + col),
});
document.addEventListener("keydown", (event) => {
  if (event.target.closest("input, textarea, select, #output-grid")) return;
  if (event.key === "ArrowRight") jumpTo(state.step + 1);
  else if (event.key === "ArrowLeft") jumpTo(state.step - 1);
  else if (event.key === " ") {
    if (event.target.closest("button")) return; // the button's own click handles space
    event.preventDefault();
    setPlaying(!state.playing);
  } else return;
});

window.addEventListener("resize", () => state.result && drawLink());

readURL();
refresh();
