// Small helpers every page uses: the error box, numbers in words, building elements.

/** Shows `message` in an error box (role=alert), or hides the box when message is empty. */
export function showError(box, message) {
  box.textContent = message || "";
  box.hidden = !message;
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

/** Paints a 28x28 uint8 picture (white on black) into a canvas of its size. */
export function paintPicture(canvas, picture) {
  const h = picture.length;
  const w = picture[0].length;
  canvas.width = w;
  canvas.height = h;
  const ctx = canvas.getContext("2d");
  const image = ctx.createImageData(w, h);
  for (let r = 0; r < h; r++) {
    for (let c = 0; c < w; c++) {
      const k = 4 * (r * w + c);
      image.data[k] = image.data[k + 1] = image.data[k + 2] = picture[r][c];
      image.data[k + 3] = 255;
    }
  }
  ctx.putImageData(image, 0, 0);
}
