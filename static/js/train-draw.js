// The training page's DOM and canvas drawing: layer rows, the shape table, charts, filters,
// the confusion matrix. Pure builders: state and events live in train.js.

import { cssColor, diverging, inkOn, sequential } from "./colors.js";
import { paintPicture } from "./draw.js";
import { formatPercent, h } from "./ui.js";

const LABELS = { kernel_size: "kernel", padding_mode: "padding mode", units: "units", rate: "rate" };

function pairText(value) {
  return Array.isArray(value) ? value.join(",") : String(value ?? "");
}

function fieldValue(key, text, numeric) {
  if (key === "stride" && text.trim() === "") return null; // follows the kernel size
  return numeric ? Number(text) : parseSize(text);
}

/** "2 pictures of “7” read as “9”": a count never runs into a digit class's name. */
export function readAs(count, truth, guess) {
  return `${count} picture${count === 1 ? "" : "s"} of “${truth}” read as “${guess}”`;
}

/** "3" -> 3, "3,5" -> [3, 5], "0,1,0,1" -> [0, 1, 0, 1] (a pad's four sides); anything else is kept as typed
 * so the API names the problem. */
export function parseSize(text) {
  const parts = text.split(",").map((p) => p.trim());
  const numbers = parts.map(Number);
  if (parts.length === 1 && parts[0] !== "" && Number.isInteger(numbers[0])) return numbers[0];
  if ((parts.length === 2 || parts.length === 4) && numbers.every(Number.isInteger)) return numbers;
  return text;
}

/** A size as people write it: 5 -> "5×5", [3, 2] -> "3×2". */
function square(value) {
  return Array.isArray(value) && value.length === 2 ? `${value[0]}×${value[1]}` : Array.isArray(value) ? value.join(",") : `${value}×${value}`;
}

/** A layer in a few words, for its collapsed row, from its type's fields as the API lists them: the ones it
 * must have, its stride and padding (the lecture's arithmetic) and any other that differs from its default
 * (all of them when none would be said); sizes as "5×5", a pooling stride left to follow its window said
 * so, and where it reads from when that is not the layer before it. */
export function layerSummary(layer, defaults) {
  const keys = Object.keys(defaults);
  const telling = keys.filter(
    (key) => defaults[key] === null || ["stride", "padding"].includes(key) || JSON.stringify(layer[key] ?? defaults[key]) !== JSON.stringify(defaults[key]),
  );
  const words = (telling.length ? telling : keys).map((key) => {
    const value = layer[key] ?? defaults[key];
    if (key === "stride" && value === null) return `stride = kernel (${pairText(layer.kernel_size).replace(",", "×")})`;
    const shown = key === "kernel_size" ? square(value) : pairText(value);
    return `${LABELS[key] ?? key.replace("_", " ")} ${shown}`;
  });
  if (layer.name) words.unshift(`“${layer.name}”`);
  if (layer.input) words.push(`reads ${layer.input}`);
  if (layer.inputs) words.push(`${layer.type === "add" ? "adds" : "stacks"} ${layer.inputs.join(" and ")}`);
  return words.length ? words.join(", ") : "no settings";
}

/** One <li> of the design: a type select, its fields (collapsed: its settings in one line), and move/remove
 * buttons. `catalogue` is the API's layer types (GET /api/architectures/layers): the types, each one's
 * fields and defaults, the padding modes. */
export function layerRow(layer, index, count, catalogue, { onType, onField, onMove, onRemove, onToggle }, expanded = true) {
  const number = index + 1;
  const type = h(
    "select",
    { class: "layer-type", "data-testid": "layer-type", "aria-label": `Layer ${number} type`, onchange: (e) => onType(index, e.target.value) },
    ...catalogue.types.map((t) => h("option", { value: t, selected: t === layer.type, text: t })),
  );
  const defaults = catalogue.fields[layer.type] ?? {};
  const fields = Object.keys(defaults).map((key) => layerField(layer, index, key, defaults, catalogue, onField));
  // every layer may have a name, and read another layer than the one before it (a merge: several)
  const link = catalogue.merges.includes(layer.type) ? "inputs" : "input";
  fields.push(linkField(layer, index, "name", onField), linkField(layer, index, link, onField));
  // a collapsed row is one line: its type and its settings in words, a click away from the fields
  const summary = h(
    "button",
    {
      type: "button",
      class: "layer-summary",
      "data-testid": "layer-summary",
      "aria-expanded": String(expanded),
      title: `${expanded ? "Hide" : "Show"} layer ${number}'s settings`,
      onclick: () => onToggle(index),
    },
    h("span", { class: "visually-hidden", text: `Layer ${number}: ` }),
    h("span", { "aria-hidden": "true", text: expanded ? "▾" : "▸" }),
    h("span", { class: "summary-text", text: ` ${layerSummary(layer, defaults)}` }),
  );
  return h(
    "li",
    { class: `layer-row ${expanded ? "expanded" : "collapsed"}`, "data-testid": "layer-row", dataset: { index: String(index) } },
    h("span", { class: "layer-number", text: String(number) }),
    type,
    summary,
    expanded ? h("span", { class: "layer-fields" }, ...fields) : null,
    h(
      "span",
      { class: "layer-actions" },
      h("button", { type: "button", "aria-label": `Move layer ${number} up`, disabled: index === 0, onclick: () => onMove(index, -1), text: "↑" }),
      h("button", { type: "button", "aria-label": `Move layer ${number} down`, disabled: index === count - 1, onclick: () => onMove(index, 1), text: "↓" }),
      h("button", { type: "button", "aria-label": `Remove layer ${number}`, onclick: () => onRemove(index), text: "✕" }),
    ),
  );
}

/** A layer's name, or what it reads ("input": one layer's name; "inputs": names separated by commas); left
 * empty, the layer is named by its type and reads the layer before it. */
function linkField(layer, index, key, onField) {
  const value = key === "inputs" ? (layer.inputs ?? []).join(", ") : layer[key] ?? "";
  const label = key === "name" ? "name" : key === "inputs" ? "reads (names)" : "reads";
  const control = h("input", {
    "data-field": key,
    "aria-label": `Layer ${index + 1} ${label}`,
    size: 8,
    value,
    placeholder: key === "name" ? "automatic" : key === "inputs" ? "a, b" : "the layer before",
    oninput: (e) => {
      const text = e.target.value.trim();
      const parsed = key === "inputs" ? text.split(",").map((t) => t.trim()).filter(Boolean) : text;
      onField(index, key, text === "" ? undefined : parsed);
    },
  });
  return h("label", { class: "field" }, `${label} `, control);
}

/** One setting of layer ``index`` as a labelled control: the padding mode a list, the rest a text field. */
function layerField(layer, index, key, defaults, catalogue, onField) {
  const label = `${LABELS[key] ?? key}`;
  const ariaLabel = `Layer ${index + 1} ${label}`;
  if (key === "padding_mode") {
    const current = layer[key] ?? defaults[key];
    const control = h(
      "select",
      { "data-field": key, "aria-label": ariaLabel, onchange: (e) => onField(index, key, e.target.value) },
      ...catalogue.padding_modes.map((m) => h("option", { value: m, selected: m === current, text: m })),
    );
    return h("label", { class: "field" }, `${label} `, control);
  }
  const numeric = key === "rate";
  // a pooling stride left empty follows the kernel, as the engine's does: say so, with the number
  const follows = key === "stride" && defaults[key] === null ? `= kernel (${pairText(layer.kernel_size)})` : null;
  const control = h("input", {
    "data-field": key,
    "aria-label": ariaLabel,
    inputmode: numeric ? "decimal" : "numeric",
    size: follows ? follows.length : 4,
    value: pairText(layer[key] ?? defaults[key]),
    placeholder: follows,
    oninput: (e) => onField(index, key, fieldValue(key, e.target.value, numeric)),
  });
  return h("label", { class: "field" }, `${label} `, control);
}

/** The shape table's rows from the API's description; the row of a layer that does not fit is marked. */
export function shapeRows(tbody, rows, error) {
  const cells = rows.map((row) =>
    h(
      "tr",
      { "data-testid": "shape-row", dataset: { layer: row.name, index: row.index ?? "" } },
      h("th", { scope: "row", text: row.name + (row.activation ? ` + ${row.activation}` : "") }),
      h("td", { class: row.inputs?.length > 1 ? "reads merge" : "reads", text: (row.inputs ?? []).join(" + ") }),
      h("td", { class: "num", text: row.output_shape.join(" × ") }),
      h("td", { class: "formula", text: row.formula ?? "" }),
      h("td", { class: "formula", text: row.parameter_formula ?? String(row.parameters) }),
      h("td", { class: "num", text: row.receptive_field.join(" × ") }),
    ),
  );
  if (error?.layer) {
    cells.push(
      h(
        "tr",
        { "data-testid": "shape-row", class: "broken", dataset: { layer: error.layer.name ?? "", index: String(error.layer.index) } },
        h("th", { scope: "row", text: `layer ${error.layer.number} (${error.layer.name})` }),
        h("td", { colspan: "5", text: `does not fit: ${error.layer.reason}` }),
      ),
    );
  }
  tbody.replaceChildren(...cells);
}

/**
 * A line chart on a canvas. series: [{ points: [[x, y]...], color, dots }]; the x axis is the training step.
 * marker: an x to mark with a vertical line (the replay's step).
 */
/** The canvas's 2-D context, its backing store sized to the canvas as shown (CSS pixels times the screen's
 * pixel ratio, keeping the aspect of its width and height attributes), so that what is drawn at 12 px is
 * 12 px on the screen; and the shown width and height to draw in. A canvas not laid out keeps its size. */
function shownCanvas(canvas) {
  canvas.dataset.aspect ??= String(canvas.height / canvas.width);
  const shown = canvas.clientWidth;
  const ratio = window.devicePixelRatio || 1;
  if (shown > 0) {
    const width = Math.round(shown * ratio);
    const height = Math.round(shown * Number(canvas.dataset.aspect) * ratio);
    if (canvas.width !== width || canvas.height !== height) [canvas.width, canvas.height] = [width, height];
  }
  const scale = shown > 0 ? canvas.width / shown : 1;
  const ctx = canvas.getContext("2d");
  ctx.setTransform(scale, 0, 0, scale, 0, 0);
  return { ctx, width: canvas.width / scale, height: canvas.height / scale };
}

export function lineChart(canvas, series, { xMax, yMin = 0, yMax, yLabel = (v) => v.toFixed(2), marker = null, xName = "step" }) {
  const { ctx, width, height } = shownCanvas(canvas);
  const pad = { left: 46, right: 10, top: 10, bottom: 26 };
  ctx.clearRect(0, 0, width, height);
  ctx.font = "12px system-ui, sans-serif";
  ctx.fillStyle = "#5b6477";
  ctx.strokeStyle = "#c4cad6";
  const x = (v) => pad.left + ((width - pad.left - pad.right) * v) / Math.max(xMax, 1);
  const y = (v) => height - pad.bottom - ((height - pad.top - pad.bottom) * (v - yMin)) / Math.max(yMax - yMin, 1e-9);
  for (let k = 0; k <= 4; k++) {
    const v = yMin + ((yMax - yMin) * k) / 4;
    ctx.beginPath();
    ctx.moveTo(pad.left, y(v));
    ctx.lineTo(width - pad.right, y(v));
    ctx.stroke();
    ctx.fillText(yLabel(v), 4, y(v) + 4);
  }
  ctx.fillText(`${xName} 0`, pad.left, height - 6);
  ctx.textAlign = "right";
  ctx.fillText(`${xMax}`, width - pad.right, height - 6);
  ctx.textAlign = "left";
  for (const { points, color, dots } of series) {
    ctx.strokeStyle = color;
    ctx.fillStyle = color;
    ctx.lineWidth = 2;
    ctx.beginPath();
    points.forEach(([px, py], i) => (i ? ctx.lineTo(x(px), y(py)) : ctx.moveTo(x(px), y(py))));
    if (!dots) ctx.stroke();
    if (dots) for (const [px, py] of points) ctx.fillRect(x(px) - 3, y(py) - 3, 6, 6);
  }
  ctx.lineWidth = 1;
  canvas.dataset.points = String(series.reduce((n, { points }) => n + points.length, 0));
  if (marker !== null) {
    ctx.strokeStyle = "#f59e0b";
    ctx.lineWidth = 2;
    ctx.beginPath();
    ctx.moveTo(x(marker), pad.top);
    ctx.lineTo(x(marker), height - pad.bottom);
    ctx.stroke();
    ctx.lineWidth = 1;
  }
}

/** One magnified canvas per filter (F, C, KH, KW): the mean over its input channels, red above zero, blue below. */
export function filterTiles(container, filters, { since = null } = {}) {
  if (!filters) {
    container.replaceChildren(h("p", { class: "hint", text: "This network has no convolution layer, so no filters to show." }));
    return;
  }
  const tiles = filters.map((filter, f) => {
    const weights = meanOverChannels(filter);
    const figure = h("figure", { class: "filter-figure" }, tile(weights, `filter ${f}`, "filter-tile"));
    if (since?.[f]) {
      // what training changed: this filter minus itself at step 0, with its own contrast too
      const start = meanOverChannels(since[f]);
      figure.append(tile(weights.map((row, r) => row.map((v, c) => v - start[r][c])), `filter ${f}, change since step 0`, "filter-change"));
    }
    figure.append(h("figcaption", { text: `filter ${f}` }));
    return figure;
  });
  container.replaceChildren(...tiles);
}

function meanOverChannels(filter) {
  return filter[0].map((row, r) => row.map((_, c) => filter.reduce((s, channel) => s + channel[r][c], 0) / filter.length));
}

/** One filter's weights with its own contrast (its largest |weight| is full colour), so a small filter's
 * pattern shows as clearly as a large one's. */
function tile(grid, label, testid) {
  const kh = grid.length;
  const kw = grid[0].length;
  const bound = Math.max(...grid.flat().map(Math.abs)) || 1;
  const canvas = h("canvas", { class: testid, width: kw, height: kh, "data-testid": testid, "aria-label": label });
  const ctx = canvas.getContext("2d");
  const image = ctx.createImageData(kw, kh);
  grid.forEach((row, r) => row.forEach((v, c) => image.data.set([...diverging(v / bound), 255], 4 * (r * kw + c))));
  ctx.putImageData(image, 0, 0);
  return canvas;
}

/** The confusion matrix as a table of buttons, each cell coloured by its count. */
export function confusionTable(table, confusion, classes, onPick) {
  const max = Math.max(...confusion.flat()) || 1;
  const short = (name) => (name.length > 8 ? `${name.slice(0, 7)}…` : name);
  const head = h("tr", {}, h("th", { scope: "col", text: "true \\ guess" }), ...classes.map((c) => h("th", { scope: "col", title: c, text: short(c) })));
  const body = confusion.map((row, t) =>
    h(
      "tr",
      {},
      h("th", { scope: "row", title: classes[t], text: short(classes[t]) }),
      ...row.map((count, g) => {
        const t01 = count / max;
        const button = h("button", {
          type: "button",
          class: "confusion-cell" + (t === g ? " diagonal" : ""),
          "data-testid": "confusion-cell",
          dataset: { true: String(t), guess: String(g), count: String(count) },
          "aria-label": readAs(count, classes[t], classes[g]),
          text: String(count),
          onclick: () => onPick(t, g),
        });
        const background = sequential(0.15 + 0.85 * t01);
        button.style.background = cssColor(background);
        button.style.color = inkOn(background);
        return h("td", {}, button);
      }),
    ),
  );
  table.replaceChildren(h("thead", {}, head), h("tbody", {}, ...body));
}

export function perClassList(list, perClass, classes) {
  list.replaceChildren(
    ...perClass.map((p, k) =>
      h("li", {}, h("span", { text: classes[k] }), h("span", { class: "bar-track" }, barFill(p)), h("span", { class: "num", text: formatPercent(p) })),
    ),
  );
}

function barFill(p) {
  const fill = h("span", { class: "bar-fill" });
  fill.style.width = `${(p * 100).toFixed(1)}%`;
  return fill;
}

/** Probability bars for any model's classes; the best one is marked. */
export function probabilityBars(list, probabilities, labels) {
  const best = probabilities.indexOf(Math.max(...probabilities));
  // one label column for every bar, as wide as the longest class name
  list.style.setProperty("--label-width", `${Math.min(Math.max(...labels.map((l) => l.length)), 12) + 0.5}ch`);
  list.replaceChildren(
    ...probabilities.map((p, k) =>
      h(
        "li",
        { class: k === best ? "top" : "", "data-testid": "probability-bar", dataset: { digit: String(k) }, "aria-label": `${labels[k]}: ${formatPercent(p)}` },
        h("span", { class: "bar-digit", text: labels[k] }),
        h("span", { class: "bar-track" }, barFill(p)),
        h("span", { class: "bar-value", text: formatPercent(p) }),
      ),
    ),
  );
}

/** Clickable pictures of a data set (28x28, white on black), magnified. */
export function gallery(container, images, labels, classes, onPick, { testid = "gallery-image" } = {}) {
  container.replaceChildren(
    ...images.map((picture, k) => {
      const canvas = h("canvas", { class: "picture" });
      paintPicture(canvas, picture);
      return h(
        "button",
        { type: "button", class: "picture-button", "data-testid": testid, dataset: { index: String(k) }, "aria-label": `A test picture of ${classes[labels[k]]}`, onclick: () => onPick(k) },
        canvas,
      );
    }),
  );
}

/** Buttons for the designs a lecturer published to the learner's classes. */
export function lecturerPresets(designs, onPick) {
  return designs.map((design) =>
    h("button", { type: "button", "data-testid": "lecturer-preset", title: `From ${design.class_name}`, text: `From your lecturer: ${design.name}`, onclick: () => onPick(design) }),
  );
}
