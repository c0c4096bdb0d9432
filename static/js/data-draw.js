// The data page's DOM: class chips while naming classes, a tab per class with its count, the gallery of
// a class's examples (each with a delete button), and the summary of how many more each class needs.

import { h } from "./ui.js";

/** The classes named so far, each removable. */
export function classChips(names, onRemove) {
  return names.map((name, k) =>
    h("li", { class: "class-chip" }, name, h("button", { type: "button", "aria-label": `Remove ${name}`, text: "✕", onclick: () => onRemove(k) })),
  );
}

/** One tab per class: its name and how many examples it has. */
export function classTabs(view, current, onChoose) {
  return view.classes.map((name, k) => {
    const count = view.counts[name].train + view.counts[name].test;
    return h(
      "button",
      { type: "button", role: "tab", class: "class-tab", "data-testid": "class-tab", "aria-selected": String(k === current), onclick: () => onChoose(k) },
      `${name} `,
      h("span", { class: "example-count", "data-testid": "example-count", text: String(count) }),
    );
  });
}

/** The examples of one class: thumbnails marked train or held out, each with a small delete button under
 * it (never over the picture). */
export function exampleGallery(view, label, onDelete) {
  const examples = view.examples.filter((e) => e.label === label);
  if (!examples.length) return [h("p", { class: "hint", text: "No examples yet: draw one above and add it." })];
  return examples.map((example, k) => {
    const split = example.split === "test" ? "held out" : "train";
    return h(
      "figure",
      { class: `example-thumb ${example.split}`, "data-testid": "example-thumb", "data-split": example.split },
      h("img", { src: example.thumbnail, alt: `${example.class}, ${example.split === "test" ? "held out" : "for training"}`, width: 56, height: 56 }),
      h(
        "figcaption",
        {},
        h("span", { text: split }),
        h("button", { type: "button", class: "delete-example", "data-testid": "delete-example", "aria-label": `Delete ${example.class} example ${k + 1}`, title: "Delete (you can undo it)", text: "✕", onclick: () => onDelete(example.id) }),
      ),
    );
  });
}

/** The line that says what was deleted, with the button that brings it back. */
export function undoLine(example, onUndo) {
  return [
    `Deleted a ${example.class} example${example.split === "test" ? " (held out)" : ""}. `,
    h("button", { type: "button", "data-testid": "undo-delete", onclick: onUndo, text: "Undo" }),
  ];
}

/** How many examples the data set has, and how many more each class needs before it can train. */
export function summaryWords(view, needed) {
  const lacking = view.classes
    .map((name) => [name, needed - view.counts[name].train - view.counts[name].test])
    .filter(([, more]) => more > 0);
  const held = view.classes.reduce((n, name) => n + view.counts[name].test, 0);
  const total = view.examples.length;
  const ready = lacking.length
    ? `Still needed: ${lacking.map(([name, more]) => `${more} more ${name}`).join(", ")}.`
    : "Every class has enough examples: it is ready to train.";
  return `${view.classes.length} classes, ${total} examples (${total - held} to train, ${held} held out to test). ${ready}`;
}

export function datasetLinks(list) {
  if (!list.length) return [h("li", { class: "hint", text: "None yet." })];
  return list.map((d) => h("li", {}, h("a", { href: `/data?dataset=${encodeURIComponent(d.id)}`, text: `${d.name} (${d.classes.join(", ")}; ${d.examples} examples)` })));
}
