// The digit network's geometry, as pure functions: which cells of earlier layers a unit sees.

// name, how it is shown, kind, and the window (k) and stride (s) that produced it from the layer before
export const LAYERS = [
  { name: "conv1", label: "conv1", kind: "conv", k: 5, s: 1, from: "input" },
  { name: "pool1", label: "pool1", kind: "pool", k: 2, s: 2, from: "conv1" },
  { name: "conv2", label: "conv2", kind: "conv", k: 5, s: 1, from: "pool1" },
  { name: "pool2", label: "pool2", kind: "pool", k: 2, s: 2, from: "conv2" },
  { name: "fc1", label: "fc1", kind: "fc", from: "pool2" },
  { name: "fc2", label: "fc2", kind: "fc", from: "fc1" },
  { name: "fc3", label: "output", kind: "fc", from: "fc2" },
];

export const SPATIAL = LAYERS.filter((layer) => layer.kind !== "fc");

/**
 * Cells [r0, c0, r1, c1) (end exclusive) of layer `target` that unit (row, col) of layer `name` depends on.
 * Walking back one layer maps a span [a, b) to [a*s, (b-1)*s + k).
 */
export function receptiveField(name, row, col, target = "input") {
  let span = [row, col, row + 1, col + 1];
  let layer = SPATIAL.find((l) => l.name === name);
  while (layer) {
    const { k, s } = layer;
    span = [span[0] * s, span[1] * s, (span[2] - 1) * s + k, (span[3] - 1) * s + k];
    if (layer.from === target) return span;
    layer = SPATIAL.find((l) => l.name === layer.from);
  }
  throw new Error(`${target} does not come before ${name}`);
}

/** The 32x32 input patch (or previous layer's window) times the weights, summed: the unit's pre-activation. */
export function weightedSum(windowsByChannel, weightsByChannel, bias) {
  let total = bias;
  const perChannel = windowsByChannel.map((window, c) => {
    let sum = 0;
    for (let r = 0; r < window.length; r++) {
      for (let q = 0; q < window[r].length; q++) sum += window[r][q] * weightsByChannel[c][r][q];
    }
    total += sum;
    return sum;
  });
  return { perChannel, total };
}

/** Rows r0..r1-1, columns c0..c1-1 of a 2-D array. */
export function crop(grid, r0, c0, r1, c1) {
  return grid.slice(r0, r1).map((row) => row.slice(c0, c1));
}
