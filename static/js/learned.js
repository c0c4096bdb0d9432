// The drawing page's "what did it learn" views: a unit's card (its favourite real pictures, a picture made
// for it, its weights, and surgery), and the class map with the input's nearest training pictures.

import { api, learned, models } from "./api.js";
import { paintPicture } from "./draw.js";
import { drawClassMap, mapLegend, mapScale, nearestPoint, neighbourTiles, unitCard } from "./learned-draw.js";
import { formatPercent, h, showError } from "./ui.js";

/** Where "Open the edited network" leaves the input for the page it opens (see digits.js). */
export const CARRIED_INPUT = "convscope-carried-input";

export function setupLearned({ modelId, info, layers, error }) {
  const el = Object.fromEntries(
    ["unit-card", "class-map", "map-legend", "map-hover", "neighbours"].map((id) => [id, document.getElementById(id)]),
  );
  // a model imported without a data set has no test pictures to map
  const dataset = info.meta && "dataset" in info.meta ? info.meta.dataset : "digits";
  const ctx = { el, modelId, layers, error, labels: info.labels, dataset };
  ctx.state = { map: null, scale: null, input: null, timer: null, inFlight: false, again: false, presets: null };
  const map = classMap(ctx);

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
    const parts = unitCard(data, { layerName, unit, layer, labels: ctx.labels, currentValue, onClose: () => (card.hidden = true) });
    if (data.weights) parts.push(surgeryControls(ctx, layerName, unit, layer));
    card.replaceChildren(...parts);
  }

  return {
    open,
    /** A new input was read: move its dot and find its neighbours. */
    update(input, empty) {
      ctx.state.input = empty ? null : input;
      clearTimeout(ctx.state.timer);
      if (ctx.state.input) ctx.state.timer = setTimeout(map.placeInput, 150);
      else map.clearInput(); // a cleared drawing: no ring on the map, no nearest pictures
    },
  };
}

/** The class map: every test picture by its features, the input's dot and its nearest training pictures,
 * and the test picture under the pointer. */
function classMap({ el, state, modelId, dataset, error }) {
  if (!dataset) {
    el["map-hover"].textContent = "This model was imported without a data set: there are no test pictures to map. Import it with one of the shipped data sets to see where its pictures sit.";
    el["class-map"].hidden = true;
    return { placeInput() {}, clearInput() {} };
  }
  learned.embedding(modelId).then(
    (map) => {
      state.map = map;
      state.scale = mapScale(map.points, el["class-map"].width, el["class-map"].height);
      drawClassMap(el["class-map"], map.points, map.labels, state.scale);
      mapLegend(el["map-legend"], map.classes);
      placeInput(); // an input read before the map arrived is placed now
    },
    (err) => showError(error, `The class map could not be loaded: ${err.message}`),
  );

  // Each placement is numbered: only the answer to the latest is drawn. An older drawing's answer that comes
  // late (a slower request, a busy server) is dropped, and its request is aborted when a newer one starts.
  let asked = 0;
  let pending = null;

  async function placeInput() {
    if (!state.input || !state.map) return;
    const mine = ++asked;
    pending?.abort();
    pending = new AbortController();
    try {
      const body = await learned.neighbours(modelId, { frame: state.input, k: 6 }, { signal: pending.signal });
      if (mine !== asked) return;
      drawClassMap(el["class-map"], state.map.points, state.map.labels, state.scale, body.position);
      neighbourTiles(el.neighbours, body);
    } catch (err) {
      if (err.name !== "AbortError" && mine === asked) showError(error, `Could not place the input on the map: ${err.message}`);
    }
  }

  let hoverIndex = null;
  el["class-map"].addEventListener("pointermove", async (event) => {
    if (!state.map) return;
    const best = nearestPoint(el["class-map"], event, state.map.points, state.scale);
    if (best === null || best === hoverIndex) return;
    hoverIndex = best;
    const words = ` test picture ${best}: ${state.map.classes[state.map.labels[best]]}`;
    if (state.map.pictures_note) {
      el["map-hover"].textContent = `${words.trim()} (its picture is not shown: ${state.map.pictures_note})`;
      return;
    }
    const data = await models.images(dataset, { indices: String(best) });
    if (hoverIndex !== best) return;
    const canvas = h("canvas", { class: "picture" });
    paintPicture(canvas, data.images[0]);
    el["map-hover"].replaceChildren(canvas, words);
  });
  function clearInput() {
    asked++; // an answer still on its way is for a drawing that is gone
    pending?.abort();
    if (state.map) drawClassMap(el["class-map"], state.map.points, state.map.labels, state.scale);
    el.neighbours.replaceChildren();
  }
  return { placeInput, clearInput };
}

/** Network surgery on the card: switch the unit off, or (first conv layer) put a playground kernel in its place. */
function surgeryControls(ctx, layerName, unit, layer) {
  const result = h("p", { class: "surgery-result", "data-testid": "surgery-result", "aria-live": "polite" });
  const off = h("button", {
    type: "button",
    "data-testid": "switch-off",
    text: layer.kind === "conv" ? "Switch off this filter" : "Switch off this unit",
    onclick: () => operate(ctx, [{ op: "zero", layer: layerName, unit }], result),
  });
  const controls = [off];
  const first = ctx.layers.find((l) => l.kind === "conv");
  if (first && first.name === layerName) {
    const select = h("select", { "aria-label": "A kernel to put in its place", "data-testid": "replace-kernel" });
    const replace = h("button", {
      type: "button",
      "data-testid": "replace-filter",
      text: "Replace with this kernel",
      onclick: () => {
        const preset = ctx.state.presets?.find((p) => p.name === select.value);
        if (preset) operate(ctx, [{ op: "set_filter", layer: layerName, unit, kernel: preset.kernel }], result);
      },
    });
    loadPresets(ctx.state, layer).then((presets) => {
      select.replaceChildren(...presets.map((p) => h("option", { value: p.name, text: p.label })));
      if (!presets.length) replace.disabled = true;
    });
    controls.push(select, replace);
  }
  return h("div", { class: "surgery" }, h("div", { class: "button-row" }, ...controls), result);
}

async function loadPresets(state, layer) {
  state.presets ??= await api.filters();
  // the playground's kernels that have this layer's filter size
  return state.presets.filter((p) => p.kernel.length === layer.k[0] && p.kernel[0].length === layer.k[1]);
}

async function operate({ modelId, state }, edits, result) {
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
    // the edited network opens on the same input: the drawing travels in this tab's session storage
    const carry = () => state.input && sessionStorage.setItem(CARRIED_INPUT, JSON.stringify(state.input));
    result.replaceChildren(
      `Test accuracy ${formatPercent(edit.accuracy_before)} → ${formatPercent(edit.accuracy_after)}.${comparison} `,
      h("a", { href: `/?model=${encodeURIComponent(edit.id)}`, text: "Open the edited network", onclick: carry }),
    );
  } catch (err) {
    result.textContent = `The edit failed: ${err.message}`;
  }
}
