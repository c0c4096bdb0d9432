// The model picker's options, grouped as a class sees them: the workspace's own models, the ones
// shared with it, and the shipped ones.

import { formatPercent, h } from "./ui.js";

const GROUPS = [
  ["yours", "Yours"],
  ["lecturer", "From your lecturer"],
  ["shared", "Shared with you"],
  ["shipped", "Shipped"],
];

/** <optgroup>s of <option>s for the models in `list` (GET /api/models), `chosen` selected. */
export function pickerGroups(list, chosen) {
  return GROUPS.map(([group, label]) => [label, list.filter((m) => (m.group || "shipped") === group)])
    .filter(([, members]) => members.length)
    .map(([label, members]) => {
      const optgroup = h("optgroup", { label });
      optgroup.append(...members.map((m) => option(m, chosen)));
      return optgroup;
    });
}

function option(model, chosen) {
  const accuracy = model.test_accuracy ? `, ${formatPercent(model.test_accuracy)}` : "";
  const state = model.status === "done" ? "" : `, ${model.status}`;
  const data = model.dataset ?? "no data set";
  return h("option", { value: model.id, selected: model.id === chosen, text: `${model.name} (${data}${accuracy}${state})` });
}

/** What an import made of the file: its layers, what was folded or dropped, and how pictures are prepared. */
export function importReport(record) {
  const { settings, layers, parameters } = record;
  const preparation = { digit: "as a digit (MNIST's crop and centring)", picture: "as a whole picture", none: "only resized" };
  const spec = layers.map((layer) => layer.name).join(" → ");
  return [
    h("h3", { text: `${record.name}: imported from ${settings.imported_from}` }),
    h("p", { text: `${parameters.toLocaleString("en")} parameters: ${spec}. Drawings are prepared ${preparation[settings.preprocess]}.` }),
    ...numbersIn(settings),
    h("ul", { class: "import-lines" }, ...settings.report.map((line) => h("li", { text: line }))),
    record.dataset
      ? h("p", { text: `Tested on the ${record.dataset} test pictures: ${formatPercent(record.test_accuracy ?? 0)}.` })
      : h("p", { class: "hint", text: "No data set was given, so the unit cards show the synthetic picture only and the class map is off." }),
  ];
}

/** How an imported model's pictures reach it (range, mean, std) and what its probabilities are. */
function numbersIn(settings) {
  const lines = [];
  const p = settings.preparation;
  if (p) {
    const list = (values) => values.map((v) => String(v)).join(", ");
    lines.push(h("p", { "data-testid": "import-preparation", text: `Pictures reach it in the range ${p.input_range}, then (x − mean) / std with mean ${list(p.mean)} and std ${list(p.std)}.` }));
  }
  const outputs = {
    binary: "One sigmoid score, read as two classes: its probability of “yes” and the rest for “no”.",
    independent: "A sigmoid a class: each probability is its own, and they need not add up to 100%.",
  }[settings.outputs];
  if (outputs) lines.push(h("p", { text: outputs }));
  return lines;
}

/** A model trained on your own data: its data set, examples per class, how it was trained, and its
 * accuracy per class on the held-out examples. */
export function modelCard(card) {
  const rows = card.classes.map((name) => {
    const n = card.examples[name];
    const accuracy = card.held_out_accuracy ? formatPercent(card.held_out_accuracy[name], 0) : "–";
    return h("tr", {}, h("td", { text: name }), h("td", { text: String(n.train) }), h("td", { text: String(n.test) }), h("td", { text: accuracy }));
  });
  return h(
    "div",
    { class: "model-card", "data-testid": "model-card" },
    h("p", { text: `Trained on your data set “${card.dataset}”, ${card.trained}, ${card.epochs} epochs.` }),
    h("table", { class: "card-table" },
      h("thead", {}, h("tr", {}, ...["class", "train", "held out", "held-out accuracy"].map((t) => h("th", { text: t })))),
      h("tbody", {}, ...rows)),
  );
}
