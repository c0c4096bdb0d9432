// The drawing page's "why" panels: an attribution heat map, a frame editor (the counterfactual brush)
// and "fool the network". Wiring only: the maths is the server's, the drawing is explain-draw.js's.

import { postJSON } from "./api.js";
import { heatmap, layerChanges, paintFrame, perturbation } from "./explain-draw.js";
import { cellAt, formatPercent, h, showError } from "./ui.js";

const WORDS = {
  saliency: "How much each input pixel would move this class's score if it changed a little: the gradient. Red raises the score, blue lowers it.",
  smoothgrad: "The gradient averaged over 25 noisy copies of the input: the same question as saliency, with less speckle.",
  integrated_gradients: "Each pixel's share of the score, summed along a path from a black picture to this one: the shares add up to the score's change.",
  gradcam: "Where a convolution layer's maps matter for this class: each map weighted by its average gradient, negatives cut off.",
  occlusion: "How much the probability drops when a 6×6 black patch covers each place: red where hiding it hurts the guess.",
};

export function setupExplain({ query, labels, sendFrame, readUrl, writeUrl }) {
  const el = Object.fromEntries(
    [
      "explain-method", "explain-target", "explain-words", "heatmap", "heat-legend", "explain-check", "gradcam-maps",
      "frame-editor", "frame-reset", "fool-target", "fool-method", "epsilon", "epsilon-value", "fool-run",
      "fool-original", "fool-perturbation", "perturbation-scale", "adversarial-image", "adversarial-guess", "fool-layers",
      "error",
    ].map((id) => [id, document.getElementById(id)]),
  );
  const state = { frame: null, timer: null, inFlight: false, again: false, painting: false };

  for (const select of [el["explain-target"], el["fool-target"]]) {
    select.append(...labels.map((name, k) => h("option", { value: String(k), text: name })));
  }
  const saved = readUrl();
  if (saved.method in WORDS) el["explain-method"].value = saved.method;
  if (saved.target !== null && saved.target < labels.length) el["fool-target"].value = String(saved.target);
  if (saved.epsilon !== null) el.epsilon.value = String(saved.epsilon);
  if (saved.attack) el["fool-method"].value = saved.attack;
  el["epsilon-value"].textContent = Number(el.epsilon.value).toFixed(2);

  function save() {
    writeUrl({
      method: el["explain-method"].value,
      target: el["fool-target"].value,
      epsilon: el.epsilon.value,
      attack: el["fool-method"].value,
    });
  }

  function grid2d(frame) {
    return Array.isArray(frame[0][0]) ? frame[0] : frame;
  }

  // -- the heat map ------------------------------------------------------------------------

  function schedule() {
    clearTimeout(state.timer);
    state.timer = setTimeout(explain, 120);
  }

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
      showExplanation(method, result);
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

  function showExplanation(method, result) {
    const name = result.labels[result.target];
    let map;
    el["explain-check"].textContent = "";
    el["gradcam-maps"].replaceChildren();
    if (method === "integrated_gradients") {
      const ig = result.integrated_gradients;
      map = grid2d(ig.attribution);
      el["explain-check"].textContent = `The shares add up to ${ig.completeness.sum.toFixed(3)}; the score of “${name}” went from the black picture to this one by ${ig.completeness.logit_difference.toFixed(3)}.`;
    } else if (method === "gradcam") {
      const layers = Object.entries(result.gradcam);
      map = layers[layers.length - 1][1].upsampled;
      el["gradcam-maps"].replaceChildren(
        ...layers.map(([layer, cam]) => {
          const canvas = h("canvas", { class: "gradcam-map", "aria-label": `Grad-CAM of ${layer}` });
          heatmap(canvas, cam.map, null);
          return h("figure", {}, canvas, h("figcaption", { text: `${layer} (${cam.map.length}×${cam.map[0].length})` }));
        }),
      );
    } else if (method === "occlusion") {
      map = result.occlusion.map;
    } else {
      map = grid2d(result[method]);
    }
    heatmap(el.heatmap, map, el["heat-legend"]);
    el.heatmap.dataset.target = name;
  }

  // -- the frame editor ---------------------------------------------------------------------

  function paintEditor() {
    if (state.frame) paintFrame(el["frame-editor"], grid2d(state.frame));
  }

  function brush(event) {
    if (!state.frame) return;
    const cell = cellAt(el["frame-editor"], event);
    if (!cell) return;
    const value = document.querySelector("input[name=brush]:checked").value === "paint" ? 1 : 0;
    const grid = grid2d(state.frame);
    // a soft round brush of radius ~1.5 px, like a pen stroke on MNIST's scale
    for (let dr = -2; dr <= 2; dr++) {
      for (let dc = -2; dc <= 2; dc++) {
        const r = cell.row + dr;
        const c = cell.col + dc;
        if (r < 0 || c < 0 || r >= grid.length || c >= grid[0].length) continue;
        const weight = Math.max(0, 1 - Math.hypot(dr, dc) / 2.2);
        grid[r][c] = value ? Math.max(grid[r][c], weight) : Math.min(grid[r][c], 1 - weight);
      }
    }
    paintEditor();
    sendFrame(state.frame);
  }

  const editor = el["frame-editor"];
  editor.addEventListener("pointerdown", (e) => {
    state.painting = true;
    editor.setPointerCapture(e.pointerId);
    brush(e);
  });
  editor.addEventListener("pointermove", (e) => state.painting && brush(e));
  editor.addEventListener("pointerup", () => (state.painting = false));
  editor.addEventListener("pointercancel", () => (state.painting = false));

  // -- fooling it ---------------------------------------------------------------------------

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
      const before = `${result.original.label} (${formatPercent(result.original.probabilities[result.original.class])})`;
      const after = `${result.result.label} (${formatPercent(result.result.probabilities[result.result.class])})`;
      el["adversarial-guess"].textContent = result.flipped
        ? `Fooled: ${before} became ${after}, changing no pixel by more than ${result.linf.toFixed(3)} (${result.steps_taken} step${result.steps_taken > 1 ? "s" : ""}).`
        : `Not fooled at ε = ${body.epsilon}: still ${after}. Allow a larger change.`;
      el["adversarial-guess"].dataset.flipped = String(result.flipped);
      layerChanges(el["fool-layers"], result.layers);
    } catch (error) {
      showError(el.error, `The attack failed: ${error.message}`);
    } finally {
      el["fool-run"].disabled = false;
    }
  }

  el["explain-method"].addEventListener("change", () => {
    save();
    explain();
  });
  el["explain-target"].addEventListener("change", explain);
  el["fool-target"].addEventListener("change", save);
  el["fool-method"].addEventListener("change", save);
  el.epsilon.addEventListener("input", () => {
    el["epsilon-value"].textContent = Number(el.epsilon.value).toFixed(2);
    save();
  });
  el["fool-run"].addEventListener("click", fool);

  return {
    /** A new input was read: explain it, and show it in the editor (unless it came from there). */
    update(frame, empty, fromEditor) {
      state.frame = empty ? null : structuredClone(frame);
      if (!state.frame) {
        el.heatmap.getContext("2d").clearRect(0, 0, el.heatmap.width, el.heatmap.height);
        return;
      }
      if (!fromEditor) paintEditor();
      schedule();
    },
    onReset(handler) {
      el["frame-reset"].addEventListener("click", handler);
    },
  };
}
