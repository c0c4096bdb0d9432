// The filter playground: picture in, kernel and padding chosen, filtered picture out (computed by the API),
// the weighted sum of any output pixel worked out, and the padding modes compared at the border.

import { api } from "./api.js";
import { CONFIG } from "./config.js";
import { borderCropFigure, channelTable, outputCaption, windowZoom } from "./playground-draw.js";
import { cellAt, cellCursor, showError as showErrorIn } from "./ui.js";
import { filterImage, outputSize, parseScale, pixelSum, samePadding } from "./kernels.js";

const MODES = CONFIG.paddingModes;
const OUTPUTS = CONFIG.outputMappings;
const MAX_SIDE = CONFIG.maxFilterSide; // the API's limit: bigger pictures are scaled down here first, so the page and server agree
const MAX_FILE_BYTES = CONFIG.maxBodyBytes - 1024 * 1024; // the form's other fields need a little room
// border comparison: the output's top-left corner, two padding widths and a few pixels more, so the
// strip where the modes differ fills a good part of the crop (a 3x3 kernel: 6 px; a 7x7: 12 px)
const cropSide = (kernel) => Math.min(20, 2 * samePadding(kernel.length, Number(el.dilation.value)) + 4);

const el = {
  preset: document.getElementById("preset"),
  presetDescription: document.getElementById("preset-description"),
  kernelSize: document.getElementById("kernel-size"),
  kernelScale: document.getElementById("kernel-scale"),
  kernelBias: document.getElementById("kernel-bias"),
  kernelGrid: document.getElementById("kernel-grid"),
  paddingMode: document.getElementById("padding-mode"),
  outputMapping: document.getElementById("output-mapping"),
  outputFrame: document.getElementById("output-frame"),
  outputCaption: document.getElementById("output-caption"),
  inputWindow: document.getElementById("input-window"),
  outputMarker: document.getElementById("output-marker"),
  stride: document.getElementById("stride"),
  dilation: document.getElementById("dilation"),
  grayscale: document.getElementById("grayscale"),
  outputSize: document.getElementById("output-size"),
  error: document.getElementById("error"),
  upload: document.getElementById("upload"),
  dropZone: document.getElementById("drop-zone"),
  inputImage: document.getElementById("input-image"),
  inputCaption: document.getElementById("input-caption"),
  outputImage: document.getElementById("output-image"),
  pixelDetail: document.getElementById("pixel-detail"),
  borderCrops: document.getElementById("border-crops"),
};

const pixelHint = el.pixelDetail.firstElementChild; // "point at a pixel", shown again when its pixel is gone

const state = {
  presets: {},
  picture: null, // { blob, width, height, rgba: Uint8ClampedArray } as sent to the API
  output: null, // { width, height, rgba }
  sum: null, // what the output was made with: { weights, scale, scaleText, output mapping, range }
  seq: 0,
  timer: null,
  urls: [],
  pixel: null, // the output pixel explained: { row, col }
  pinned: false, // a click, a tap or Enter pins it: pointing elsewhere no longer moves it, a new kernel re-explains it
};

// -- kernel editing ------------------------------------------------------------------------

function setGrid(weights) {
  const k = weights.length;
  el.kernelSize.value = String(k);
  // the columns share the width the panel has: a 7x7 grid's last column is never cut off
  el.kernelGrid.style.gridTemplateColumns = `repeat(${k}, minmax(0, 3.2rem))`;
  const cells = [];
  for (let r = 0; r < k; r++) {
    for (let c = 0; c < k; c++) {
      const input = document.createElement("input");
      input.type = "text";
      input.inputMode = "decimal";
      input.value = String(weights[r][c]);
      input.setAttribute("data-testid", "kernel-cell");
      input.setAttribute("aria-label", `weight row ${r + 1}, column ${c + 1}`);
      input.addEventListener("input", onKernelEdited);
      cells.push(input);
    }
  }
  el.kernelGrid.replaceChildren(...cells);
}

function resizeGrid(k) {
  const old = readGridWeights();
  const offset = Math.floor((k - old.length) / 2);
  const weights = Array.from({ length: k }, (_, r) =>
    Array.from({ length: k }, (_, c) => old[r - offset]?.[c - offset] ?? 0));
  setGrid(weights);
}

/** The grid's weights, each cell read as the scale is (a number, or a fraction such as 1/2); NaN where it is neither. */
function readGridWeights() {
  const cells = [...el.kernelGrid.querySelectorAll("input")];
  const k = Math.round(Math.sqrt(cells.length));
  return Array.from({ length: k }, (_, r) => Array.from({ length: k }, (_, c) => parseScale(cells[r * k + c].value)));
}

/** The kernel to apply, or an error message saying what to fix (a bad cell by its row and column, and marked). */
function currentKernel() {
  const scale = parseScale(el.kernelScale.value);
  if (!Number.isFinite(scale)) return { error: `Scale "${el.kernelScale.value}" is not a number or a fraction such as 1/9.` };
  const bias = parseScale(el.kernelBias.value);
  if (!Number.isFinite(bias)) return { error: `Bias "${el.kernelBias.value}" is not a number (0 for none, 128 for mid-grey).` };
  const weights = readGridWeights();
  const cells = [...el.kernelGrid.querySelectorAll("input")];
  const flat = weights.flat();
  cells.forEach((cell, k) => cell.setAttribute("aria-invalid", String(!Number.isFinite(flat[k]))));
  const bad = flat.findIndex((w) => !Number.isFinite(w));
  if (bad >= 0) {
    const [row, col] = [Math.floor(bad / weights.length) + 1, (bad % weights.length) + 1];
    return { error: `Row ${row}, column ${col}: "${cells[bad].value}" is not a number or a fraction such as 1/2.` };
  }
  return { kernel: weights.map((row) => row.map((w) => w * scale)), weights, scale, bias };
}

function choosePreset(name) {
  const preset = state.presets[name];
  if (!preset) return;
  el.preset.value = name;
  el.presetDescription.textContent = preset.description;
  setGrid(preset.weights);
  el.kernelScale.value = preset.divisor === 1 ? "1" : `1/${preset.divisor}`;
  el.kernelBias.value = String(preset.bias ?? 0);
  el.outputMapping.value = preset.output; // the mapping that shows this kernel's effect
}

function onKernelEdited() {
  el.preset.value = "custom";
  el.presetDescription.textContent = "Your own kernel.";
  schedule();
}

// -- URL state ------------------------------------------------------------------------------

function readURL() {
  const params = new URLSearchParams(location.search);
  const mode = params.get("padding_mode");
  if (MODES.includes(mode)) el.paddingMode.value = mode;
  for (const name of ["stride", "dilation"]) {
    const v = Number(params.get(name));
    if (Number.isInteger(v) && v >= 1 && v <= 8) el[name].value = String(v);
  }
  el.grayscale.checked = params.get("grayscale") === "true";
  const output = OUTPUTS.includes(params.get("output")) ? params.get("output") : null;
  readKernelFromURL(params);
  if (output) el.outputMapping.value = output; // after the preset, which brings its own
}

function readKernelFromURL(params) {
  const kernel = params.get("kernel");
  if (kernel) {
    try {
      const weights = JSON.parse(kernel);
      const k = weights.length;
      if (k >= 1 && k <= 7 && weights.every((row) => Array.isArray(row) && row.length === k && row.every(Number.isFinite))) {
        setGrid(weights);
        el.kernelScale.value = "1";
        el.kernelBias.value = Number.isFinite(Number(params.get("bias"))) ? String(Number(params.get("bias"))) : "0";
        el.preset.value = "custom";
        el.presetDescription.textContent = "A kernel from the link.";
        return;
      }
    } catch {
      // fall through to the preset
    }
    showError("The link's kernel is not a square 2-D list of numbers up to 7×7; showing a preset instead.");
  }
  choosePreset(state.presets[params.get("preset")] ? params.get("preset") : "edge_detection");
}

function writeURL(kernel) {
  const params = new URLSearchParams();
  if (el.preset.value !== "custom") params.set("preset", el.preset.value);
  else params.set("kernel", JSON.stringify(kernel));
  if (el.preset.value === "custom" && parseScale(el.kernelBias.value)) params.set("bias", String(parseScale(el.kernelBias.value)));
  params.set("padding_mode", el.paddingMode.value);
  params.set("stride", el.stride.value);
  params.set("dilation", el.dilation.value);
  params.set("grayscale", String(el.grayscale.checked));
  params.set("output", el.outputMapping.value);
  history.replaceState(null, "", `${location.pathname}?${params}`);
}

// -- pictures ------------------------------------------------------------------------------

/** Shows an error; `source` says what it is about, so that a late filter result clears only its own kind. */
function showError(message, source = "picture") {
  showErrorIn(el.error, message);
  el.error.dataset.source = source;
}

function hideError(source = null) {
  if (source === null || el.error.dataset.source === source) showErrorIn(el.error, "");
}

/** Decodes a file in the browser, scales it to at most 1024 px, and keeps its pixels and a PNG of them. */
async function usePicture(blob, name = "picture") {
  if (blob.size > MAX_FILE_BYTES) {
    showError(`${name} is ${(blob.size / 1048576).toFixed(1)} MB; pictures up to ${MAX_FILE_BYTES / 1048576} MB are accepted.`);
    return;
  }
  let bitmap;
  try {
    bitmap = await createImageBitmap(blob);
  } catch {
    showError(`${name} is not a picture this browser can read (or it is corrupt): use a PNG, JPEG or WebP file.`);
    return;
  }
  const scale = Math.min(1, MAX_SIDE / Math.max(bitmap.width, bitmap.height));
  const width = Math.max(1, Math.round(bitmap.width * scale));
  const height = Math.max(1, Math.round(bitmap.height * scale));
  const canvas = document.createElement("canvas");
  canvas.width = width;
  canvas.height = height;
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  ctx.drawImage(bitmap, 0, 0, width, height);
  const rgba = ctx.getImageData(0, 0, width, height).data;
  const png = await new Promise((resolve) => canvas.toBlob(resolve, "image/png"));
  state.picture = { blob: png, width, height, rgba };
  showURL(el.inputImage, png);
  el.inputCaption.textContent = `Input ${width} × ${height}` + (scale < 1 ? ` (scaled down from ${bitmap.width} × ${bitmap.height})` : "");
  hideError();
  schedule(0);
}

function showURL(img, blob) {
  const url = URL.createObjectURL(blob);
  state.urls.push(url);
  if (state.urls.length > 16) URL.revokeObjectURL(state.urls.shift());
  img.src = url;
  // a small picture shown larger keeps its pixels crisp: smoothing would hide what a kernel does to each one
  img.decode().then(() => img.classList.toggle("magnified", img.naturalWidth < img.clientWidth), () => {});
  return url;
}

async function pixelsOf(blob) {
  const bitmap = await createImageBitmap(blob);
  const canvas = document.createElement("canvas");
  canvas.width = bitmap.width;
  canvas.height = bitmap.height;
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  ctx.drawImage(bitmap, 0, 0);
  return { width: bitmap.width, height: bitmap.height, rgba: ctx.getImageData(0, 0, bitmap.width, bitmap.height).data, canvas };
}

// -- applying -------------------------------------------------------------------------------

function schedule(delay = 150) {
  // busy until the newest request has been drawn, and the border comparison made with it
  el.outputImage.setAttribute("aria-busy", "true");
  el.borderCrops.setAttribute("aria-busy", "true");
  // a request already on its way is now out of date: it must neither be drawn nor clear aria-busy
  state.seq++;
  clearTimeout(state.timer);
  state.timer = setTimeout(apply, delay);
}

/** Nothing more is coming for the last change (it was refused): neither the output nor the comparison is busy. */
function settled() {
  el.outputImage.setAttribute("aria-busy", "false");
  el.borderCrops.setAttribute("aria-busy", "false");
}

function formFor(kernel, mode) {
  const form = new FormData();
  form.append("file", state.picture.blob, "picture.png");
  if (el.preset.value !== "custom") form.append("preset", el.preset.value);
  else form.append("kernel", JSON.stringify(kernel));
  form.append("padding_mode", mode);
  form.append("stride", el.stride.value);
  form.append("dilation", el.dilation.value);
  form.append("grayscale", String(el.grayscale.checked));
  form.append("output", el.outputMapping.value);
  form.append("bias", String(currentKernel().bias ?? 0));
  return form;
}

function settings() {
  return { stride: Number(el.stride.value), dilation: Number(el.dilation.value), mode: el.paddingMode.value };
}

function describeSize(kernel) {
  const { stride, dilation } = settings();
  const { width, height } = state.picture;
  const k = kernel.length;
  const p = samePadding(k, dilation);
  const ow = outputSize(width, k, stride, p, dilation);
  const oh = outputSize(height, k, stride, p, dilation);
  // the lecture's (N − F + 2P)/S + 1 with this picture's numbers; a dilated kernel spans F' = D(F − 1) + 1
  const span = dilation * (k - 1) + 1;
  const f = dilation > 1 ? `${span}` : `${k}`;
  const side = (n, out) => {
    const exact = (n - span + 2 * p) / stride + 1;
    return `(${n} − ${f} + 2·${p})/${stride} + 1 = ${Number.isInteger(exact) ? out : `${+exact.toFixed(2)} → ${out}`}`;
  };
  const padding = k % 2
    ? `"same" padding ${p} for a ${k}×${k} kernel${dilation > 1 ? ` spanning ${span} with dilation ${dilation}` : ""}`
    : `padding ${p}: a ${k}×${k} kernel has no centre, so no padding keeps the size exactly`;
  el.outputSize.textContent =
    `Input ${width} × ${height} → output ${ow} × ${oh}: width ${side(width, ow)}, height ${side(height, oh)}, with ${padding}.`;
}

/** The output drawn at its true size next to the input's (stride 2: half as wide), captioned with both sizes. */
function showOutputScale(size) {
  const [ow, oh] = size.split("x").map(Number);
  const { width, height } = state.picture;
  el.outputFrame.style.width = `${Math.min(100, (100 * ow) / width)}%`;
  el.outputCaption.textContent = outputCaption([ow, oh], [width, height], state.sum.output, state.sum.range.gain);
}

async function apply() {
  if (!state.picture) return;
  const { kernel, weights, scale, bias, error } = currentKernel();
  if (error) {
    showError(error, "filter");
    settled();
    return;
  }
  const { stride, dilation } = settings();
  if (![stride, dilation].every((v) => Number.isInteger(v) && v >= 1 && v <= 8)) {
    showError(`Stride and dilation must be whole numbers from 1 to 8 (got stride ${el.stride.value}, dilation ${el.dilation.value}).`, "filter");
    settled();
    return;
  }
  writeURL(kernel);
  describeSize(kernel);
  for (const figure of el.borderCrops.children) figure.classList.toggle("current", figure.dataset.mode === el.paddingMode.value);
  const seq = ++state.seq;
  try {
    const { blob, headers } = await api.applyFilter(formFor(kernel, el.paddingMode.value));
    if (seq !== state.seq) return; // a newer request is on its way
    showURL(el.outputImage, blob);
    state.output = await pixelsOf(blob);
    // the worked sum prints the weights as typed and the scale in front, so its terms add up exactly
    state.sum = {
      weights, scale, bias, scaleText: el.kernelScale.value.trim(),
      output: headers.get("X-Output-Mapping") ?? el.outputMapping.value,
      range: {
        low: Number(headers.get("X-Output-Min")),
        high: Number(headers.get("X-Output-Max")),
        gain: Number(headers.get("X-Output-Gain") ?? 1),
      },
    };
    showOutputScale(headers.get("X-Output-Size"));
    await el.outputImage.decode();
    hideError("filter"); // an upload refused meanwhile keeps its message
    reexplainPixel();
  } catch (err) {
    if (seq === state.seq) {
      showError(`The filter could not be applied: ${err.message}`, "filter");
      settled();
    }
    return;
  }
  if (seq === state.seq) el.outputImage.setAttribute("aria-busy", "false");
  compareBorders(kernel, seq);
}

async function compareBorders(kernel, seq) {
  for (const mode of MODES) {
    let figure = el.borderCrops.querySelector(`[data-mode="${mode}"]`);
    if (!figure) {
      figure = borderCropFigure(mode);
      el.borderCrops.append(figure);
    }
    figure.classList.toggle("current", mode === el.paddingMode.value);
    try {
      const { blob } = await api.applyFilter(formFor(kernel, mode));
      if (seq !== state.seq) return;
      const { canvas: full, rgba } = await pixelsOf(blob);
      const crop = figure.querySelector("canvas");
      crop.width = Math.min(cropSide(kernel), full.width);
      crop.height = Math.min(cropSide(kernel), full.height);
      crop.getContext("2d").drawImage(full, 0, 0, crop.width, crop.height, 0, 0, crop.width, crop.height);
      // the corner pixel, where the modes disagree most, as numbers
      figure.querySelector("figcaption").textContent =
        `${mode}: corner ${el.grayscale.checked ? rgba[0] : `(${rgba[0]}, ${rgba[1]}, ${rgba[2]})`}`;
    } catch (err) {
      figure.querySelector("figcaption").textContent = `${mode}: ${err.message}`;
    }
  }
  if (seq === state.seq) el.borderCrops.setAttribute("aria-busy", "false");
}

// -- the sum behind one output pixel ----------------------------------------------------------

function channelsOfPicture() {
  if (el.grayscale.checked) return [{ name: "gray", read: (k) => grayAt(k) }];
  return ["R", "G", "B"].map((name, j) => ({ name, read: (k) => state.picture.rgba[k + j] }));
}

function grayAt(k) {
  // Pillow's convert("L"): L = R*299/1000 + G*587/1000 + B*114/1000, rounded
  const { rgba } = state.picture;
  return Math.round((rgba[k] * 299 + rgba[k + 1] * 587 + rgba[k + 2] * 114) / 1000);
}

function hoverPixel(event) {
  if (!state.output || state.pinned) return;
  const cell = cellAt(el.outputImage, event, state.output);
  if (cell) showPixel(cell.row, cell.col);
}

/** A click or tap (or Enter) pins `cell`'s explanation; the same pixel again, or Escape, lets go. */
function togglePin(cell) {
  if (!state.output || !cell) return;
  const same = state.pinned && state.pixel?.row === cell.row && state.pixel?.col === cell.col;
  setPinned(!same);
  showPixel(cell.row, cell.col);
}

function setPinned(pinned) {
  state.pinned = pinned;
  el.pixelDetail.classList.toggle("pinned", pinned);
  el.outputMarker.classList.toggle("pinned", pinned);
}

/** After a new output (another kernel, padding, mapping): the pixel explained is worked out again, if it still exists. */
function reexplainPixel() {
  const { pixel, output } = state;
  if (pixel && pixel.row < output.height && pixel.col < output.width) {
    showPixel(pixel.row, pixel.col);
  } else if (pixel) {
    state.pixel = null;
    setPinned(false);
    el.inputWindow.hidden = true;
    el.outputMarker.hidden = true;
    el.pixelDetail.replaceChildren(pixelHint);
  }
}

/** The worked sum behind output pixel (row, col), with its window outlined on the input and magnified. */
function showPixel(row, col) {
  if (!state.output || !state.sum) return;
  state.pixel = { row, col };
  const { stride, dilation, mode } = settings();
  const { width, height } = state.picture;
  const heading = document.createElement("h3");
  heading.textContent = `Output pixel (row ${row}, column ${col})`;
  const box = document.createElement("div");
  box.className = "channels";
  const k = 4 * (row * state.output.width + col);
  const { weights, scale, bias, scaleText, output, range } = state.sum;
  let taps = [];
  channelsOfPicture().forEach((channel, index) => {
    const result = pixelSum({
      pixel: (r, c) => channel.read(4 * (r * width + c)),
      width, height, kernel: weights, scale, bias, row, col, stride, dilation, mode, output, range,
    });
    taps = result.taps;
    const actual = state.output.rgba[k + (el.grayscale.checked ? 0 : index)];
    box.append(channelTable(channel.name, result, actual, weights[0].length, { scaleText, output, range }));
  });
  const window = windowBounds(taps);
  placeMarker(el.inputWindow, el.inputImage, window, width, height);
  placeMarker(el.outputMarker, el.outputImage, { r0: row, c0: col, r1: row + 1, c1: col + 1 }, state.output.width, state.output.height);
  el.pixelDetail.replaceChildren(heading, windowZoom(taps, window, state.picture, [weights.length, weights[0].length]), box);
}

/** The rows and columns [r0, r1) x [c0, c1) the kernel's taps reach on the (padded) input. */
function windowBounds(taps) {
  const rows = taps.map((t) => t.r);
  const cols = taps.map((t) => t.c);
  return { r0: Math.min(...rows), c0: Math.min(...cols), r1: Math.max(...rows) + 1, c1: Math.max(...cols) + 1 };
}

/** Outlines [r0, r1) x [c0, c1) of a width x height picture on the marker laid over `img`, in percent. */
function placeMarker(marker, img, { r0, c0, r1, c1 }, width, height) {
  const clamp = (v, n) => Math.min(Math.max(v, 0), n);
  marker.style.left = `${(clamp(c0, width) / width) * 100}%`;
  marker.style.top = `${(clamp(r0, height) / height) * 100}%`;
  marker.style.width = `${((clamp(c1, width) - clamp(c0, width)) / width) * 100}%`;
  marker.style.height = `${((clamp(r1, height) - clamp(r0, height)) / height) * 100}%`;
  marker.hidden = !img.naturalWidth;
}

// -- the camera: live video through the kernel, computed here; a frozen frame goes to the server --

const camera = {
  button: document.getElementById("camera"),
  freeze: document.getElementById("freeze"),
  rate: document.getElementById("camera-rate"),
  error: document.getElementById("camera-error"),
  view: document.getElementById("camera-view"),
  video: document.getElementById("camera-video"),
  output: document.getElementById("camera-output"),
  stream: null,
  frames: 0,
  since: 0,
};
const grab = document.createElement("canvas");

async function startCamera() {
  showErrorIn(camera.error, "");
  if (!navigator.mediaDevices?.getUserMedia) {
    showErrorIn(camera.error, "This browser gives pages no camera (it needs a secure page, https or localhost).");
    return;
  }
  try {
    camera.stream = await navigator.mediaDevices.getUserMedia({ video: { width: 320, height: 240 }, audio: false });
  } catch (err) {
    const words = err.name === "NotAllowedError"
      ? "The camera was not allowed: allow it in the browser's address bar to filter it live."
      : err.name === "NotFoundError"
        ? "No camera was found on this device."
        : `The camera could not be started (${err.name}).`;
    showErrorIn(camera.error, words);
    return;
  }
  camera.video.srcObject = camera.stream;
  await camera.video.play();
  camera.view.hidden = false;
  camera.freeze.hidden = false;
  camera.button.textContent = "Stop camera";
  camera.frames = 0;
  camera.since = performance.now();
  requestAnimationFrame(filterFrame);
}

function stopCamera() {
  camera.stream?.getTracks().forEach((track) => track.stop());
  camera.stream = null;
  camera.view.hidden = true;
  camera.freeze.hidden = true;
  camera.button.textContent = "Use camera";
  camera.rate.textContent = "";
}

function filterFrame() {
  if (!camera.stream) return;
  const { videoWidth: w, videoHeight: h } = camera.video;
  const { kernel, bias } = currentKernel();
  if (w && h && kernel) {
    grab.width = w;
    grab.height = h;
    const ctx = grab.getContext("2d", { willReadFrequently: true });
    ctx.drawImage(camera.video, 0, 0, w, h);
    const { stride, dilation, mode } = settings();
    const filtered = filterImage(ctx.getImageData(0, 0, w, h), kernel, {
      stride, dilation, mode, grayscale: el.grayscale.checked, output: el.outputMapping.value, bias,
    });
    camera.output.width = filtered.width;
    camera.output.height = filtered.height;
    camera.output.getContext("2d").putImageData(filtered, 0, 0);
    camera.frames++;
    const seconds = (performance.now() - camera.since) / 1000;
    if (seconds > 1) {
      camera.rate.textContent = `${(camera.frames / seconds).toFixed(0)} frames a second`;
      camera.output.dataset.fps = (camera.frames / seconds).toFixed(1);
      camera.frames = 0;
      camera.since = performance.now();
    }
  }
  requestAnimationFrame(filterFrame);
}

camera.button.addEventListener("click", () => (camera.stream ? stopCamera() : startCamera()));
camera.freeze.addEventListener("click", () => {
  // the frame as it is now becomes the picture: the server filters it exactly, and the sums follow
  grab.toBlob((blob) => blob && usePicture(blob, "camera frame"), "image/png");
});

// -- wiring ----------------------------------------------------------------------------------

el.preset.addEventListener("change", () => {
  if (el.preset.value !== "custom") choosePreset(el.preset.value);
  schedule(0);
});
el.kernelSize.addEventListener("change", () => {
  resizeGrid(Number(el.kernelSize.value));
  onKernelEdited();
});
el.kernelScale.addEventListener("input", onKernelEdited);
el.kernelBias.addEventListener("input", onKernelEdited);
for (const control of [el.paddingMode, el.outputMapping, el.stride, el.dilation, el.grayscale]) control.addEventListener("change", () => schedule(0));
el.upload.addEventListener("change", () => {
  const [file] = el.upload.files;
  if (file) usePicture(file, file.name);
});
el.dropZone.addEventListener("dragover", (e) => {
  e.preventDefault();
  el.dropZone.classList.add("over");
});
el.dropZone.addEventListener("dragleave", () => el.dropZone.classList.remove("over"));
el.dropZone.addEventListener("drop", (e) => {
  e.preventDefault();
  el.dropZone.classList.remove("over");
  const [file] = e.dataTransfer.files;
  if (file) usePicture(file, file.name);
});
document.addEventListener("paste", (e) => {
  const item = [...(e.clipboardData?.items ?? [])].find((i) => i.type.startsWith("image/"));
  if (item) usePicture(item.getAsFile(), "the pasted picture");
});
el.outputImage.addEventListener("pointermove", hoverPixel);
el.outputImage.addEventListener("pointerdown", (event) => togglePin(cellAt(el.outputImage, event, state.output)));
// the keyboard's way in: arrows walk the output pixels (a pin moves with them), the sum and the markers
// follow; Enter pins, Escape lets go
cellCursor(el.outputImage, {
  size: () => ({ rows: state.output?.height ?? 0, cols: state.output?.width ?? 0 }),
  onMove: ({ row, col }) => showPixel(row, col),
  onEnter: togglePin,
  onLeave: () => {
    setPinned(false);
    state.pixel = null; // let go: a new kernel does not bring the markers back
    el.inputWindow.hidden = true;
    el.outputMarker.hidden = true;
  },
});
document.addEventListener("keydown", (event) => {
  if (event.key === "Escape" && state.pinned) setPinned(false);
});

async function start() {
  try {
    const presets = await api.filters();
    for (const preset of presets) {
      state.presets[preset.name] = preset;
      const option = document.createElement("option");
      option.value = preset.name;
      option.textContent = preset.label;
      el.preset.append(option);
    }
  } catch (error) {
    showError(`Could not load the kernel presets: ${error.message}`);
    return;
  }
  readURL();
  try {
    await usePicture(await api.samplePhoto(), "the sample photo");
  } catch (error) {
    showError(`Could not load the sample photo: ${error.message}. Upload a picture instead.`);
  }
}

start();
