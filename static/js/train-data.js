// The training page and your own data: your data sets in the data set list, "start from the digit
// network" with the layers to freeze, and the fine-tuned run side by side with a from-scratch twin.

import { datasets, models } from "./api.js";
import { lineChart } from "./train-draw.js";
import { formatPercent, h } from "./ui.js";

const FROZEN_BY_DEFAULT = ["conv1", "conv2"];

/** Adds the workspace's own data sets to the select; returns them by id. */
export async function addOwnDatasets(select) {
  const own = (await datasets.mine()).datasets;
  if (own.length) {
    const group = h("optgroup", { label: "Your data sets" });
    group.append(...own.map((d) => h("option", { value: d.id, text: `${d.name} (${d.classes.length} classes, ${d.examples} examples)` })));
    select.append(group);
  }
  return Object.fromEntries(own.map((d) => [d.id, d]));
}

/** The spec made to fit a data set: its input (unless fine-tuning keeps LeNet's) and one output per class. */
export function fitToData(spec, { input, classes }, keepInput) {
  const fitted = structuredClone(spec);
  if (!keepInput) fitted.input = input;
  fitted.classes = classes;
  const last = [...fitted.layers].reverse().find((layer) => layer.type === "linear");
  if (last) last.units = classes;
  return fitted;
}

/** The layers with weights in the API's description of a design (its shape table's rows): conv and linear. */
export function weightedLayers(description) {
  return description.filter((row) => row.type === "conv" || row.type === "linear");
}

/** Checkboxes for the layers that may keep their weights (all but the output layer, which is new). */
export function freezeBoxes(container, description, frozen, onChange) {
  const names = weightedLayers(description).slice(0, -1).map((row) => row.name);
  container.replaceChildren(
    h("span", { class: "hint", text: "Keep the weights of: " }),
    ...names.map((name) =>
      h("label", { class: "inline" }, h("input", { type: "checkbox", "data-testid": "freeze-layer", value: name, checked: frozen.includes(name), onchange: (e) => onChange(name, e.target.checked) }), ` ${name} `),
    ),
  );
}

export function defaultFrozen() {
  return [...FROZEN_BY_DEFAULT];
}

async function finished(id) {
  for (;;) {
    const record = await models.get(id);
    if (!["queued", "running"].includes(record.status)) return record;
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

/** One run of the comparison: its held-out accuracy, how it trained, and its curves (loss by step, held-out
 * accuracy by epoch), drawn once the figure is on the page (the charts take its width). */
function column(record, title) {
  const chart = (what) => h("canvas", { width: 360, height: 150, role: "img", "aria-label": `${title}: ${what}` });
  const loss = chart("training loss by step");
  const accuracy = chart("held-out accuracy after each epoch");
  const shown = record.status === "done" ? formatPercent(record.test_accuracy) : record.status;
  const card = record.card;
  const how = card ? `${card.trained}, ${record.settings.epochs} epochs of ${record.settings.batch_size}` : "";
  const figure = h(
    "figure",
    { class: "comparison-run", "data-testid": "comparison-run" },
    h("h3", { text: title }),
    h("p", { class: "big-number" }, "Held-out accuracy: ", h("strong", { "data-testid": "comparison-accuracy", text: shown })),
    loss,
    accuracy,
    h("figcaption", { class: "hint", text: `${how}. Above: the loss on the training batches; below: the held-out accuracy after each epoch.` }),
  );
  const draw = () => {
    const points = record.history.map((p) => [p.step, p.loss]);
    const xMax = Math.max(1, ...points.map(([x]) => x));
    const color = title.startsWith("Fine") ? "#2563eb" : "#dc2626";
    lineChart(loss, [{ points, color }], { xMax, yMax: Math.max(1.2, ...points.map(([, y]) => y)) });
    const epochs = record.epochs.filter((e) => e.val_accuracy !== null).map((e) => [e.epoch, e.val_accuracy]);
    lineChart(accuracy, [{ points: epochs, color, dots: true }], { xMax: Math.max(1, epochs.length), yMax: 1, yLabel: (v) => formatPercent(v, 0), xName: "epoch" });
  };
  return { figure, draw };
}

/** Waits for both runs and shows them side by side. */
export async function showComparison(panel, grid, fineTunedId, scratchId) {
  panel.hidden = false;
  grid.replaceChildren(h("p", { class: "hint", text: "The from-scratch twin is training…" }));
  const [fine, scratch] = await Promise.all([finished(fineTunedId), finished(scratchId)]);
  const runs = [column(fine, "Fine-tuned from LeNet"), column(scratch, "From scratch")];
  grid.replaceChildren(...runs.map((run) => run.figure));
  for (const run of runs) run.draw();
}
