// Colour scales for activations and weights.
// Non-negative values (after ReLU or max pooling) use a sequential scale from dark to bright;
// signed values (weights, logits) use a diverging scale: blue below zero, white at zero, red above.

const SEQUENTIAL = [
  [13, 8, 35], [59, 15, 112], [140, 41, 129], [222, 73, 104], [254, 159, 109], [252, 253, 191],
]; // magma, sampled

function lerp(a, b, t) {
  return Math.round(a + (b - a) * t);
}

function sample(stops, t) {
  const x = Math.min(Math.max(t, 0), 1) * (stops.length - 1);
  const i = Math.min(Math.floor(x), stops.length - 2);
  const f = x - i;
  return [lerp(stops[i][0], stops[i + 1][0], f), lerp(stops[i][1], stops[i + 1][1], f), lerp(stops[i][2], stops[i + 1][2], f)];
}

/** t in [0, 1] -> [r, g, b] */
export function sequential(t) {
  return sample(SEQUENTIAL, t);
}

/** t in [-1, 1] -> [r, g, b] */
export function diverging(t) {
  const c = Math.min(Math.max(t, -1), 1);
  const blue = [33, 102, 172];
  const red = [178, 24, 43];
  const white = [247, 247, 247];
  return c < 0 ? sample([white, blue], -c) : sample([white, red], c);
}

/** Picks a scale for a set of values: sequential when none is negative, diverging otherwise. */
export function scaleFor(min, max) {
  if (min >= 0) {
    const top = max > 0 ? max : 1;
    return { kind: "sequential", min: 0, max: top, color: (v) => sequential(v / top) };
  }
  const bound = Math.max(Math.abs(min), Math.abs(max)) || 1;
  return { kind: "diverging", min: -bound, max: bound, color: (v) => diverging(v / bound) };
}

export function cssColor([r, g, b]) {
  return `rgb(${r}, ${g}, ${b})`;
}

/** WCAG's relative luminance of an sRGB colour [r, g, b] (0..255 each). */
function luminance(rgb) {
  const linear = rgb.map((v) => {
    const c = v / 255;
    return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
  });
  return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2];
}

/** Text on a coloured background: black or white, whichever contrasts more (magma's pinks take black). */
export function inkOn(rgb) {
  const l = luminance(rgb);
  return (l + 0.05) / 0.05 >= 1.05 / (l + 0.05) ? "#000" : "#fff"; // the better of the two is always >= 4.58:1
}
