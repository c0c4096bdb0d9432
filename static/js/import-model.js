// "Import a model (.onnx)" beside the drawing page's model picker: sends the file with its class names,
// preparation and data set, then opens the imported model, whose conversion report shows here.

import { models } from "./api.js";
import { importReport } from "./models-draw.js";
import { h, showError } from "./ui.js";

const el = Object.fromEntries(
  ["import-model", "import-form", "import-file", "import-labels", "import-preprocess", "import-dataset", "import-input-range",
    "import-mean", "import-std", "import-submit", "import-error", "import-report"].map((id) => [id, document.getElementById(id)]),
);

/** Class names as typed: a JSON list, or names separated by commas. */
function labelsJson(text) {
  const typed = text.trim();
  if (!typed) return null;
  if (typed.startsWith("[")) return typed;
  return JSON.stringify(typed.split(",").map((name) => name.trim()).filter(Boolean));
}

async function submit(event) {
  event.preventDefault();
  const file = el["import-file"].files[0];
  if (!file) {
    showError(el["import-error"], "Choose an .onnx file first.");
    return;
  }
  const form = new FormData();
  form.append("file", file);
  const labels = labelsJson(el["import-labels"].value);
  if (labels) form.append("labels", labels);
  for (const key of ["preprocess", "dataset", "input-range", "mean", "std"]) {
    const value = el[`import-${key}`].value.trim();
    if (value) form.append(key.replace("-", "_"), value);
  }
  el["import-submit"].disabled = true;
  el["import-submit"].textContent = "Importing…";
  showError(el["import-error"], "");
  try {
    const imported = await models.importOnnx(form);
    location.search = new URLSearchParams({ model: imported.id, imported: "1" }).toString();
  } catch (error) {
    showError(el["import-error"], `The model could not be imported: ${error.message}`);
  } finally {
    el["import-submit"].disabled = false;
    el["import-submit"].textContent = "Import";
  }
}

el["import-form"].addEventListener("submit", submit);

/** For an imported model, how it was converted (opened right after the import). */
export async function showImportReport(current, { justImported }) {
  if (current?.kind !== "imported") return;
  try {
    const record = await models.get(current.id);
    const another = h("button", { type: "button", text: "Import another model", onclick: () => (el["import-form"].hidden = false) });
    el["import-report"].replaceChildren(...importReport(record), another);
    el["import-report"].hidden = false;
    // right after an import: the report, not the form (the drawing pad stays in sight)
    el["import-form"].hidden = justImported;
    el["import-model"].open = justImported;
  } catch (error) {
    showError(el["import-error"], `How the model was converted could not be loaded: ${error.message}`);
  }
}
