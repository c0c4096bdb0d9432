// The drawing page's "why" panels: an attribution heat map, a frame editor (the counterfactual brush)
// and "fool the network". Wiring only: the maths is the server's, the drawing is explain-draw.js's.
// Each panel is set up on its own over one shared context ({ el, state, query, ... }).

import { postJSON } from "./api.js";
import { adversarialWords, heatmap, layerChanges, paintFrame, paintExplanation, perturbation, softBrush } from "./explain-draw.js";
import { cellAt, showError } from "./ui.js";

const IDS = [
  "explain-method", "explain-target", "explain-words", "heatmap", "heat-legend", "explain-check", "gradcam-maps",
  "heat-opacity", "heat-caption",
  "frame-editor", "frame-reset", "fool-target", "fool-method", "epsilon", "epsilon-value", "fool-run",
  "fool-original", "fool-perturbation", "perturbation-scale", "adversarial-image", "adversarial-guess", "fool-layers",
  "error",
];

const WORDS = {
  saliency: "How much each input pixel would move this class's score if it changed a little: the gradient. Red raises the score, blue lowers it.",
  smoothgrad: "The gradient averaged over 25 noisy copies of the input: the same question as saliency, with less speckle.",
  integrated_gradients: "Each pixel's share of the score, summed along a path from a black picture to this one: the shares add up to the score's change.",
  gradcam: "Where a convolution layer's maps matter for this class: each map weighted by its average gradient, negatives cut off.",
  occlusion: "How much the probability drops when a 6×6 black patch covers each place: red where hiding it hurts the guess.",
};

/** The frame as one H x W grid (a 1-channel C x H x W frame's only plane). */
function grid2d(frame) {
  return Array.isArray(frame[0][0]) ? frame[0] : frame;
}

export function setupExplain({ query, labels, sendFrame, readUrl, writeUrl }) {
  const el = Object.fromEntries(IDS.map((id) => [id, document.getElementById(id)]));
  const ctx = { el, query, sendFrame, state: { frame: null, timer: null, inFlight: false, again: false, painting: false } };
  restoreChoices(el, labels, readUrl);
  const save = () =>
    writeUrl({ method: el["explain-method"].value, target: el["fool-target"].value, epsilon: el.epsilon.value, attack: el["fool-method"].value });
  const heat = heatPanel(ctx, save);
  const editor = frameEditor(ctx);
  foolPanel(ctx, save);
  return {
    /** A new input was read: explain it, and show it in the editor (unless it came from there). */
    update(frame, empty, fromEditor) {
      ctx.state.frame = empty ? null : structuredClone(frame);
      if (!ctx.state.frame) {
        // a cleared drawing leaves nothing of the old one: no heat map, no frame to edit, no attack
        for (const id of ["heatmap", "frame-editor", "fool-original", "fool-perturbation", "adversarial-image"]) {
          el[id].getContext("2d").clearRect(0, 0, el[id].width, el[id].height);
        }
        el["explain-check"].textContent = "";
        el["heat-caption"].textContent = "";
        ctx.state.explained = null;
        el["gradcam-maps"].replaceChildren();
        el["adversarial-guess"].textContent = "";
        el["fool-layers"].replaceChildren();
        return;
      }
      if (!fromEditor) editor.paint();
      heat.schedule();
    },
    onReset(handler) {
      el["frame-reset"].addEventListener("click", handler);
    },
  };
}

function restoreChoices(el, labels, readUrl) {
  for (const select of [el["explain-target"], el["fool-target"]]) {
    select.append(...labels.map((name, k) => new Option(name, String(k))));
  }
  const saved = readUrl();
  if (saved.method in WORDS) el["explain-method"].value = saved.method;
  if (saved.target !== null && saved.target < labels.length) el["fool-target"].value = String(saved.target);
  if (saved.epsilon !== null) el.epsilon.value = String(saved.epsilon);
  if (saved.attack) el["fool-method"].value = saved.attack;
  el["epsilon-value"].textContent = Number(el.epsilon.value).toFixed(2);
}

/** The heat map: one method for one class, asked again (one request at a time) as the input changes. */
function heatPanel({ el, state, query }, save) {
  let timer = null;
  async function explain() {
    if (!state.frame) return;
    if (state.inFlight) {
      state.again = true;
      return;
    }
    state.inFlight = true;
    const method = el["explain-method"].value;
    const target = el["explain-target"].value;
    el["explain-words"].textContent = WORDS[method];
    try {
      const body = { frame: state.frame, methods: [method], ...(target === "" ? {} : { target: Number(target) }) };
      const result = await postJSON(`/api/explain?${new URLSearchParams(query)}`, body);
      state.explained = { method, result, frame: body.frame };
      repaint();
    } catch (error) {
      showError(el.error, `The explanation failed: ${error.message}`);
    } finally {
      state.inFlight = false;
      if (state.again) {
        state.again = false;
        explain();
      }
    }
  }
  /** The last answer again, over the input it explained, at the slider's opacity (no new request). */
  function repaint() {
    const last = state.explained;
    if (last) paintExplanation(el, last.method, last.result, grid2d, { frame: last.frame, opacity: el["heat-opacity"].value / 100 });
  }
  el["heat-opacity"].addEventListener("input", repaint);
  el["explain-method"].addEventListener("change", () => {
    save();
    explain();
  });
  el["explain-target"].addEventListener("change", explain);
  return {
    schedule() {
      clearTimeout(timer);
      timer = setTimeout(explain, 120);
    },
  };
}

/** The frame editor: paint or erase the network's input with a soft brush, and watch the guess move. */
function frameEditor({ el, state, sendFrame }) {
  const editor = el["frame-editor"];
  const paint = () => state.frame && paintFrame(editor, grid2d(state.frame));
  function brush(event) {
    if (!state.frame) return;
    const cell = cellAt(editor, event);
    if (!cell) return;
    const ink = document.querySelector("input[name=brush]:checked").value === "paint";
    softBrush(grid2d(state.frame), cell, ink);
    paint();
    sendFrame(state.frame);
  }
  editor.addEventListener("pointerdown", (e) => {
    state.painting = true;
    editor.setPointerCapture(e.pointerId);
    brush(e);
  });
  editor.addEventListener("pointermove", (e) => state.painting && brush(e));
  editor.addEventListener("pointerup", () => (state.painting = false));
  editor.addEventListener("pointercancel", () => (state.painting = false));
  return { paint };
}

/** "Fool the network": FGSM or PGD within ε, the change amplified, and how far each layer moved. */
function foolPanel({ el, state, query }, save) {
  async function fool() {
    if (!state.frame) {
      el["adversarial-guess"].textContent = "Draw something first.";
      return;
    }
    el["fool-run"].disabled = true;
    const target = el["fool-target"].value;
    const body = {
      frame: state.frame,
      method: el["fool-method"].value,
      epsilon: Number(el.epsilon.value),
      steps: 20,
      ...(target === "" ? {} : { target: Number(target) }),
    };
    try {
      const result = await postJSON(`/api/adversarial?${new URLSearchParams(query)}`, body);
      paintFrame(el["fool-original"], grid2d(result.input));
      perturbation(el["fool-perturbation"], grid2d(result.perturbation), el["perturbation-scale"]);
      paintFrame(el["adversarial-image"], grid2d(result.adversarial));
      el["adversarial-guess"].textContent = adversarialWords(result, body.epsilon);
      el["adversarial-guess"].dataset.flipped = String(result.flipped);
      layerChanges(el["fool-layers"], result.layers);
    } catch (error) {
      showError(el.error, `The attack failed: ${error.message}`);
    } finally {
      el["fool-run"].disabled = false;
    }
  }
  el["fool-target"].addEventListener("change", save);
  el["fool-method"].addEventListener("change", save);
  el.epsilon.addEventListener("input", () => {
    el["epsilon-value"].textContent = Number(el.epsilon.value).toFixed(2);
    save();
  });
  el["fool-run"].addEventListener("click", fool);
}
