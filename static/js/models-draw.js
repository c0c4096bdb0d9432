// The model picker's options, grouped as a class sees them: the workspace's own models, the ones
// shared with it, and the shipped ones.

import { formatPercent, h } from "./ui.js";

const GROUPS = [
  ["yours", "Yours"],
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
  return h("option", { value: model.id, selected: model.id === chosen, text: `${model.name} (${model.dataset}${accuracy}${state})` });
}
