// The drawing page's "what did it learn" views: a unit's card (its favourite real pictures, a picture made
// for it, its weights, and surgery), and the class map with the input's nearest training pictures.

import { api, learned, models } from "./api.js";
import { paintPicture } from "./draw.js";
import {
  drawClassMap,
  frameCanvas,
  mapLegend,
  mapScale,
  neighbourTiles,
  pictureWithBox,
  weightCanvas,
} from "./learned-draw.js";
import { formatNumber, formatPercent, h, showError } from "./ui.js";

export function setupLearned({ modelId, info, layers, error }) {
  const el = Object.fromEntries(
    ["unit-card", "class-map", "map-legend", "map-hover", "neighbours"].map((id) => [id, document.getElementById(id)]),
  );
  const state = { map: null, scale: null, input: null, timer: null, inFlight: false, again: false, presets: null };
  const labels = info.labels;
  const dataset = info.meta?.dataset ?? "digits";

  // -- the class map ------------------------------------------------------------------------

  learned.embedding(modelId).then(
    (map) => {
      state.map = map;
      state.scale = mapScale(map.points, el["class-map"].width, el["class-map"].height);
      drawClassMap(el["class-map"], map.points, map.labels, state.scale);
      mapLegend(el["map-legend"], map.classes);
    },
    (err) => showError(error, `The class map could not be loaded: ${err.message}`),
  );

  async function placeInput() {
    if (!state.input || !state.map) return;
    if (state.inFlight) {
      state.again = true;
      return;
    }
    state.inFlight = true;
    try {
      const body = await learned.neighbours(modelId, { frame: state.input, k: 6 });
      drawClassMap(el["class-map"], state.map.points, state.map.labels, state.scale, body.position);
      neighbourTiles(el.neighbours, body);
    } catch (err) {
      showError(error, `Could not place the input on the map: ${err.message}`);
    } finally {
      state.inFlight = false;
      if (state.again) {
        state.again = false;
        placeInput();
      }
    }
  }

  let hoverIndex = null;
  el["class-map"].addEventListener("pointermove", async (event) => {
    if (!state.map) return;
    const rect = el["class-map"].getBoundingClientRect();
    const px = ((event.clientX - rect.left) / rect.width) * el["class-map"].width;
    const py = ((event.clientY - rect.top) / rect.height) * el["class-map"].height;
    let best = null;
    let bestDistance = 8;
    state.map.points.forEach(([x, y], k) => {
      const d = Math.hypot(state.scale.x(x) - px, state.scale.y(y) - py);
      if (d < bestDistance) [best, bestDistance] = [k, d];
    });
    if (best === null || best === hoverIndex) return;
    hoverIndex = best;
    const data = await models.images(dataset, { indices: String(best) });
    if (hoverIndex !== best) return;
    const canvas = h("canvas", { class: "picture" });
    paintPicture(canvas, data.images[0]);
    el["map-hover"].replaceChildren(canvas, ` test picture ${best}: ${state.map.classes[state.map.labels[best]]}`);
  });

  // -- unit cards -----------------------------------------------------------------------------

  async function open(layerName, unit, currentValue) {
    const card = el["unit-card"];
    card.hidden = false;
    card.replaceChildren(h("p", { class: "hint", text: `Loading ${layerName}, unit ${unit}…` }));
    let data;
    try {
      data = await learned.unit(modelId, layerName, unit, 9);
    } catch (err) {
      card.replaceChildren(h("p", { class: "error", text: `The card could not be made: ${err.message}` }));
      return;
    }
    const layer = layers.find((l) => l.name === layerName);
    const what = data.label !== null ? `the class “${data.label}”` : `${data.kind} unit ${unit}`;
    const tops = data.top.map((t) =>
      h("figure", { "data-testid": "unit-top" }, pictureWithBox(t.picture, t.box), h("figcaption", { text: `${labels[t.label]} · ${formatNumber(t.activation)}` })),
    );
    const synthetic = frameCanvas(Array.isArray(data.synthetic[0][0]) ? data.synthetic[0] : data.synthetic, "made to excite it");
    const parts = [
      h("div", { class: "card-head" },
        h("h3", { text: `${layerName}: ${what}` }),
        h("button", { type: "button", class: "close", "aria-label": "Close the card", onclick: () => (el["unit-card"].hidden = true), text: "✕" })),
      h("p", { class: "hint", text: `The 9 test pictures where it fires most (its field outlined), and a picture made to excite it. ` +
        `Your input gives it ${currentValue === null ? "–" : formatNumber(currentValue)}; the test pictures ${formatNumber(data.mean_activation)} on average, the made-up one ${formatNumber(data.synthetic_activation)}.` }),
      h("div", { class: "card-row" },
        h("div", { class: "gallery" }, ...tops),
        h("figure", { class: "synthetic", "data-testid": "unit-synthetic" }, synthetic, h("figcaption", { text: `made for it: ${formatNumber(data.synthetic_activation)}` }))),
    ];
    if (data.weights && layer.kind === "conv") {
      const filters = data.weights.weight.slice(0, 16).map((w, c) => h("figure", {}, weightCanvas(w, `channel ${c}`), h("figcaption", { text: `ch ${c}` })));
      parts.push(h("div", { class: "card-row weights", "data-testid": "unit-weights" }, ...filters, h("p", { class: "hint", text: `bias ${formatNumber(data.weights.bias, 3)}` })));
    }
    if (data.weights) parts.push(surgeryControls(layerName, unit, layer));
    card.replaceChildren(...parts);
  }

  function surgeryControls(layerName, unit, layer) {
    const result = h("p", { class: "surgery-result", "data-testid": "surgery-result", "aria-live": "polite" });
    const off = h("button", {
      type: "button",
      "data-testid": "switch-off",
      text: layer.kind === "conv" ? "Switch off this filter" : "Switch off this unit",
      onclick: () => operate([{ op: "zero", layer: layerName, unit }], result),
    });
    const controls = [off];
    const first = layers.find((l) => l.kind === "conv");
    if (first && first.name === layerName) {
      const select = h("select", { "aria-label": "A kernel to put in its place", "data-testid": "replace-kernel" });
      const replace = h("button", {
        type: "button",
        "data-testid": "replace-filter",
        text: "Replace with this kernel",
        onclick: () => {
          const preset = state.presets?.find((p) => p.name === select.value);
          if (preset) operate([{ op: "set_filter", layer: layerName, unit, kernel: preset.kernel }], result);
        },
      });
      loadPresets(layer).then((presets) => {
        select.replaceChildren(...presets.map((p) => h("option", { value: p.name, text: p.label })));
        if (!presets.length) replace.disabled = true;
      });
      controls.push(select, replace);
    }
    return h("div", { class: "surgery" }, h("div", { class: "button-row" }, ...controls), result);
  }

  async function loadPresets(layer) {
    state.presets ??= await api.filters();
    // the playground's kernels that have this layer's filter size
    return state.presets.filter((p) => p.kernel.length === layer.k[0] && p.kernel[0].length === layer.k[1]);
  }

  async function operate(edits, result) {
    result.textContent = "Editing a copy of the network and testing it…";
    try {
      const edit = await learned.edit(modelId, edits);
      let comparison = "";
      if (state.input) {
        const [before, after] = await Promise.all([
          models.predict({ model: modelId, activations: "false" }, { frame: state.input }),
          models.predict({ model: edit.id, activations: "false" }, { frame: state.input }),
        ]);
        comparison = ` Your input: “${before.label}” (${formatPercent(before.top[0].probability)}) before, “${after.label}” (${formatPercent(after.top[0].probability)}) after.`;
      }
      result.replaceChildren(
        `Test accuracy ${formatPercent(edit.accuracy_before)} → ${formatPercent(edit.accuracy_after)}.${comparison} `,
        h("a", { href: `/?model=${encodeURIComponent(edit.id)}`, text: "Open the edited network" }),
      );
    } catch (err) {
      result.textContent = `The edit failed: ${err.message}`;
    }
  }

  return {
    open,
    /** A new input was read: move its dot and find its neighbours. */
    update(input, empty) {
      state.input = empty ? null : input;
      clearTimeout(state.timer);
      if (state.input) state.timer = setTimeout(placeInput, 150);
    },
  };
}
