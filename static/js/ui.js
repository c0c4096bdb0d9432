// Small helpers every page uses: the error box, numbers in words, building elements, and which cell
// of a grid a pointer is on.

/** Shows `message` in an error box (role=alert), or hides the box when message is empty. */
export function showError(box, message) {
  box.textContent = message || "";
  box.hidden = !message;
}

/** A number with `digits` decimals, never "-0.00". */
export function formatNumber(v, digits = 2) {
  const s = Number(v).toFixed(digits);
  return s === `-${(0).toFixed(digits)}` ? (0).toFixed(digits) : s;
}

export function formatPercent(p, digits = 1) {
  return `${(p * 100).toFixed(digits)}%`;
}

export function formatDuration(seconds) {
  if (!Number.isFinite(seconds)) return "–";
  if (seconds < 60) return `${Math.max(0, Math.round(seconds))} s`;
  const m = Math.floor(seconds / 60);
  return `${m} min ${Math.round(seconds - 60 * m)} s`;
}

/** document.createElement with attributes, dataset entries and children in one call. */
export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "dataset") Object.assign(element.dataset, value);
    else if (key === "text") element.textContent = value;
    else if (key === "class") element.className = value;
    else if (key.startsWith("on")) element.addEventListener(key.slice(2), value);
    else element.setAttribute(key, value === true ? "" : value);
  }
  element.append(...children.filter((c) => c !== null && c !== undefined));
  return element;
}


/** Which grid cell (row, col) a pointer event falls in: on a canvas drawn at one pixel per cell, or on any
 * element showing a grid of `size.width` x `size.height` cells. */
export function cellAt(element, event, size = element) {
  const rect = element.getBoundingClientRect();
  const col = Math.floor(((event.clientX - rect.left) / rect.width) * size.width);
  const row = Math.floor(((event.clientY - rect.top) / rect.height) * size.height);
  if (row < 0 || col < 0 || row >= size.height || col >= size.width) return null;
  return { row, col };
}

/**
 * A keyboard cell cursor for a grid drawn on `element` (rows x cols, read when a key is pressed): arrow keys
 * move it, Home goes to the first cell, Enter calls `onEnter(cell)`, Escape `onLeave()`; each move calls
 * `onMove(cell)`. The element must be focusable; its focus style shows where the keyboard is.
 */
export function cellCursor(element, { size, onMove, onEnter = () => {}, onLeave = () => {} }) {
  let cell = null;
  const moves = { ArrowUp: [-1, 0], ArrowDown: [1, 0], ArrowLeft: [0, -1], ArrowRight: [0, 1] };
  element.addEventListener("keydown", (event) => {
    const { rows, cols } = size();
    if (!rows || !cols) return;
    if (event.key in moves || event.key === "Home") {
      event.preventDefault(); // the arrows move the cursor, not the page
      const [dr, dc] = moves[event.key] ?? [0, 0];
      const start = cell ?? { row: 0, col: 0 };
      cell = event.key === "Home" || !cell
        ? { row: 0, col: 0 }
        : { row: Math.min(Math.max(start.row + dr, 0), rows - 1), col: Math.min(Math.max(start.col + dc, 0), cols - 1) };
      onMove(cell);
    } else if (event.key === "Enter") {
      event.preventDefault();
      onEnter(cell ?? { row: 0, col: 0 });
    } else if (event.key === "Escape") {
      cell = null;
      onLeave();
    }
  });
  element.addEventListener("blur", () => (cell = null));
}

/** A picture file (an upload, a camera shot, a fetched sample) as a data URL, as the API takes pictures. */
export function readDataUrl(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result);
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(file);
  });
}
