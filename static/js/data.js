// The data page: name classes and make a data set (or upload an ImageFolder zip); then draw, photograph or
// upload examples class by class, see each class's gallery, delete bad ones, and go and train.

import { datasets } from "./api.js";
import { classChips, classTabs, datasetLinks, exampleGallery, summaryWords, undoLine } from "./data-draw.js";
import { Sketchpad } from "./sketchpad.js";
import { readDataUrl, showError } from "./ui.js";

const el = Object.fromEntries(
  [
    "new-dataset", "create-form", "dataset-name", "dataset-kind", "class-form", "class-name-input", "new-classes",
    "create-dataset", "dataset-upload", "new-error", "my-datasets", "dataset-panel", "dataset-title",
    "dataset-summary", "class-tabs", "draw-maker", "example-pad", "add-example", "clear-pad", "undo-pad",
    "example-upload", "example-camera", "dataset-error", "gallery-heading", "example-gallery", "train-link", "undo-line",
  ].map((id) => [id, document.getElementById(id)]),
);

const params = new URLSearchParams(location.search);
const state = { names: [], id: params.get("dataset"), view: null, label: 0, deleting: null };
const pad = new Sketchpad(el["example-pad"]);

// -- a new data set -----------------------------------------------------------------------------

function showNames() {
  el["new-classes"].replaceChildren(...classChips(state.names, (k) => {
    state.names.splice(k, 1);
    showNames();
  }));
  el["create-dataset"].disabled = state.names.length < 2;
}

el["class-form"].addEventListener("submit", (event) => {
  event.preventDefault();
  const name = el["class-name-input"].value.trim();
  if (!name) return;
  if (state.names.some((n) => n.toLowerCase() === name.toLowerCase())) {
    showError(el["new-error"], `There is a class “${name}” already.`);
    return;
  }
  showError(el["new-error"], "");
  state.names.push(name);
  el["class-name-input"].value = "";
  showNames();
  el["class-name-input"].focus();
});

el["create-dataset"].addEventListener("click", async () => {
  try {
    const made = await datasets.create({ name: el["dataset-name"].value, classes: state.names, kind: el["dataset-kind"].value });
    location.search = new URLSearchParams({ dataset: made.id }).toString();
  } catch (error) {
    showError(el["new-error"], `The data set could not be made: ${error.message}`);
  }
});

el["dataset-upload"].addEventListener("change", async () => {
  const file = el["dataset-upload"].files[0];
  if (!file) return;
  const form = new FormData();
  form.append("file", file);
  form.append("name", el["dataset-name"].value || file.name.replace(/\.zip$/i, ""));
  form.append("kind", el["dataset-kind"].value);
  try {
    const made = await datasets.importZip(form);
    if (made.skipped.length) sessionStorage.setItem(`skipped:${made.id}`, made.skipped.join("\n"));
    location.search = new URLSearchParams({ dataset: made.id }).toString();
  } catch (error) {
    showError(el["new-error"], `The zip could not be imported: ${error.message}`);
  }
});

// -- one data set --------------------------------------------------------------------------------

function render() {
  const view = state.view;
  el["dataset-title"].textContent = `${view.name} (${view.kind === "digit" ? "drawings" : "photos"})`;
  el["dataset-summary"].textContent = summaryWords(view, view.min_per_class);
  el["class-tabs"].replaceChildren(...classTabs(view, state.label, (k) => {
    state.label = k;
    render();
  }));
  const name = view.classes[state.label];
  el["add-example"].textContent = `Add this ${name}`;
  el["gallery-heading"].textContent = `Examples of ${name}`;
  el["example-gallery"].replaceChildren(...exampleGallery(view, state.label, remove));
  el["draw-maker"].hidden = view.kind !== "digit";
  el["train-link"].href = `/train?${new URLSearchParams({ dataset: view.id, ...(view.kind === "digit" ? { start: "lenet" } : {}) })}`;
}

async function reload() {
  await commitDeletion(); // a deletion still open to undo is made before the data set is read again
  state.view = await datasets.get(state.id);
  render();
  datasets.mine().then((list) => el["my-datasets"].replaceChildren(...datasetLinks(list.datasets)), () => {});
}

async function addExamples(examples) {
  showError(el["dataset-error"], "");
  try {
    await datasets.add(state.id, examples);
    await reload();
  } catch (error) {
    showError(el["dataset-error"], `The example could not be added: ${error.message}`);
  }
}

// -- deleting an example, with a moment to undo it ---------------------------------------------------------
// The example leaves the page at once; the server is told when the moment to undo has passed, when another is
// deleted, when the data set is read again, or when the page is left.

const UNDO_MS = 8000;

/** The view without one example: its gallery and its class's count. */
function withoutExample(view, example) {
  const name = view.classes[example.label];
  const counts = { ...view.counts, [name]: { ...view.counts[name], [example.split]: view.counts[name][example.split] - 1 } };
  return { ...view, counts, examples: view.examples.filter((e) => e.id !== example.id) };
}

async function remove(exampleId) {
  await commitDeletion();
  const example = state.view.examples.find((e) => e.id === exampleId);
  if (!example) return;
  state.deleting = { example, timer: setTimeout(commitDeletion, UNDO_MS) };
  state.view = withoutExample(state.view, example);
  el["undo-line"].replaceChildren(...undoLine(example, undoDeletion));
  el["undo-line"].hidden = false;
  render();
  el["undo-line"].querySelector("button").focus();
}

function undoDeletion() {
  if (!state.deleting) return;
  clearTimeout(state.deleting.timer);
  state.deleting = null; // the server never heard of it: reading the data set again brings it back in its place
  el["undo-line"].hidden = true;
  reload().catch((error) => showError(el["dataset-error"], error.message));
}

async function commitDeletion() {
  if (!state.deleting) return;
  const { example, timer } = state.deleting;
  clearTimeout(timer);
  state.deleting = null;
  el["undo-line"].hidden = true;
  try {
    await datasets.remove(state.id, example.id);
  } catch (error) {
    showError(el["dataset-error"], `The example could not be deleted: ${error.message}`);
  }
}

window.addEventListener("pagehide", () => {
  if (state.deleting) datasets.removeSoon(state.id, state.deleting.example.id);
});

el["add-example"].addEventListener("click", async () => {
  if (pad.isEmpty) {
    showError(el["dataset-error"], "Draw the example on the pad first.");
    return;
  }
  await addExamples([{ label: state.view.classes[state.label], image: pad.toDataURL() }]);
  pad.clear();
});
el["clear-pad"].addEventListener("click", () => pad.clear());
el["undo-pad"].addEventListener("click", () => pad.undo());

for (const input of [el["example-upload"], el["example-camera"]]) {
  input.addEventListener("change", async () => {
    const label = state.view.classes[state.label];
    const images = await Promise.all([...input.files].map(readDataUrl));
    await addExamples(images.map((image) => ({ label, image })));
    input.value = "";
  });
}

async function start() {
  try {
    el["my-datasets"].replaceChildren(...datasetLinks((await datasets.mine()).datasets));
  } catch (error) {
    showError(el["new-error"], `Your data sets could not be loaded: ${error.message}`);
  }
  if (!state.id) return;
  el["dataset-panel"].hidden = false;
  try {
    await reload();
  } catch (error) {
    el["dataset-panel"].hidden = true;
    showError(el["new-error"], error.status === 404 ? "That data set is not in your workspace." : error.message);
    return;
  }
  const skipped = sessionStorage.getItem(`skipped:${state.id}`);
  if (skipped) showError(el["dataset-error"], `Skipped while importing:\n${skipped}`);
}

start();
