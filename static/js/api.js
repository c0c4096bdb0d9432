// The only module that talks to the server. Every call resolves to parsed JSON
// (or a Blob for images) or throws an ApiError whose message a person can read.

export class ApiError extends Error {
  constructor(message, status) {
    super(message);
    this.name = "ApiError";
    this.status = status;
  }
}

async function request(path, options = {}) {
  let response;
  try {
    response = await fetch(path, options);
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError("The server could not be reached. Is convscope still running?", 0);
  }
  if (!response.ok) {
    let detail = `${response.status} ${response.statusText}`;
    try {
      const body = await response.json();
      if (body && body.detail) detail = typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail);
    } catch {
      // not JSON: keep the status line
    }
    throw new ApiError(detail, response.status);
  }
  return response;
}

export async function getJSON(path, { signal } = {}) {
  return (await request(path, { signal })).json();
}

export async function postJSON(path, body, { signal } = {}) {
  const response = await request(path, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
    signal,
  });
  return response.json();
}

export async function sendJSON(method, path, body) {
  const options = body === undefined ? { method } : { method, headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) };
  return (await request(path, options)).json();
}

/** A request answered 204 (a delete): resolves to nothing, or throws the server's words. */
export async function sendEmpty(method, path) {
  await request(path, { method });
}

export async function getBlob(path) {
  return (await request(path)).blob();
}

/** POST multipart form data; resolves to { blob, headers }. */
export async function postForm(path, formData, { signal } = {}) {
  const response = await request(path, { method: "POST", body: formData, signal });
  return { blob: await response.blob(), headers: response.headers };
}

// Named endpoints, so pages never spell URLs themselves.
export const api = {
  filters: () => getJSON("/api/filters"),
  samplePhoto: () => getBlob("/static/samples/cat.jpg"),
  applyFilter: (formData, { signal } = {}) => postForm("/api/filters/apply", formData, { signal }),
  convolve: (body, { signal } = {}) => postJSON("/api/convolve", body, { signal }),
  pool: (body, { signal } = {}) => postJSON("/api/pool", body, { signal }),
  arithmetic: (params, { signal } = {}) => getJSON(`/api/arithmetic?${new URLSearchParams(params)}`, { signal }),
};

// Training, models and data sets.
export const models = {
  list: () => getJSON("/api/models"),
  get: (id) => getJSON(`/api/models/${encodeURIComponent(id)}`),
  submit: (body) => postJSON("/api/models", body),
  cancel: (id) => postJSON(`/api/models/${encodeURIComponent(id)}/cancel`, {}),
  share: (id) => postJSON(`/api/models/${encodeURIComponent(id)}/share`, {}),
  copy: (id) => postJSON(`/api/models/${encodeURIComponent(id)}/copy`, {}),
  workspace: () => getJSON("/api/workspace"),
  importOnnx: async (formData) => (await postForm("/api/models/import", formData)).blob.text().then(JSON.parse),
  exportUrl: (id, format) => `/api/models/${encodeURIComponent(id)}/export?format=${format}`,
  weightsUrl: (id) => `/api/models/${encodeURIComponent(id)}/weights`,
  eventsUrl: (id) => `/api/models/${encodeURIComponent(id)}/events`,
  architectures: () => getJSON("/api/architectures"),
  layerTypes: () => getJSON("/api/architectures/layers"),
  addBlock: (architecture, block, filters, stride) => postJSON("/api/architectures/blocks", { architecture, block, filters, stride }),
  check: (architecture, dataset, { signal } = {}) =>
    postJSON("/api/architectures/check", { architecture, dataset }, { signal }),
  info: (query) => getJSON(`/api/model?${new URLSearchParams(query)}`),
  layerWeights: (name, query) => getJSON(`/api/model/layers/${encodeURIComponent(name)}/weights?${new URLSearchParams(query)}`),
  predict: (query, body, { signal } = {}) =>
    postJSON(`/api/predict?${new URLSearchParams({ activations: "true", ...query })}`, body, { signal }),
  images: (dataset, params) => getJSON(`/api/datasets/${dataset}/images?${new URLSearchParams(params)}`),
  labels: (dataset) => getJSON(`/api/datasets/${dataset}/labels`),
};

// Data sets of your own.
export const datasets = {
  mine: () => getJSON("/api/datasets"),
  create: (body) => postJSON("/api/datasets", body),
  get: (id) => getJSON(`/api/datasets/${encodeURIComponent(id)}`),
  add: (id, examples) => postJSON(`/api/datasets/${encodeURIComponent(id)}/images`, { examples }),
  remove: (id, example) => sendJSON("DELETE", `/api/datasets/${encodeURIComponent(id)}/images/${encodeURIComponent(example)}`),
  // a deletion made while the page is being left: the browser finishes it after the page is gone
  removeSoon: (id, example) =>
    fetch(`/api/datasets/${encodeURIComponent(id)}/images/${encodeURIComponent(example)}`, { method: "DELETE", keepalive: true }),
  importZip: async (formData) => (await postForm("/api/datasets/import", formData)).blob.text().then(JSON.parse),
};

// A class: codes, the lecturer's view, publications, the challenge.
export const classes = {
  mine: () => getJSON("/api/classes"),
  create: (name) => postJSON("/api/classes", { name }),
  join: (body) => postJSON("/api/classes/join", body),
  get: (id) => getJSON(`/api/classes/${encodeURIComponent(id)}`),
  publications: () => getJSON("/api/classes/publications"),
  publish: (id, body) => postJSON(`/api/classes/${encodeURIComponent(id)}/publish`, body),
  setChallenge: (id, body) => sendJSON("PUT", `/api/classes/${encodeURIComponent(id)}/challenge`, body),
  enter: (id, model) => postJSON(`/api/classes/${encodeURIComponent(id)}/entries`, { model }),
  leaderboard: (id, round = null, { signal } = {}) =>
    getJSON(`/api/classes/${encodeURIComponent(id)}/leaderboard${round ? `?round=${round}` : ""}`, { signal }),
  rename: (id, name) => sendJSON("PUT", `/api/classes/${encodeURIComponent(id)}/me`, { name }),
  newSecret: (id) => postJSON(`/api/classes/${encodeURIComponent(id)}/lecturer-token`, {}),
  removeMember: (id, member) =>
    sendEmpty("DELETE", `/api/classes/${encodeURIComponent(id)}/members/${encodeURIComponent(member)}`),
  leave: (id) => sendEmpty("DELETE", `/api/classes/${encodeURIComponent(id)}/me`),
  end: (id) => sendEmpty("DELETE", `/api/classes/${encodeURIComponent(id)}`),
  qrUrl: (id) => `/api/classes/${encodeURIComponent(id)}/qr.svg`,
  eventsUrl: (id) => `/api/classes/${encodeURIComponent(id)}/events`,
};

// What a model learned.
export const learned = {
  unit: (model, layer, unit, k = 9) =>
    getJSON(`/api/models/${encodeURIComponent(model)}/units/${encodeURIComponent(layer)}/${unit}?k=${k}`),
  embedding: (model) => getJSON(`/api/models/${encodeURIComponent(model)}/embedding`),
  neighbours: (model, body, { signal } = {}) =>
    postJSON(`/api/models/${encodeURIComponent(model)}/neighbours`, body, { signal }),
  edit: (model, edits) => postJSON(`/api/models/${encodeURIComponent(model)}/edit`, { edits }),
};
