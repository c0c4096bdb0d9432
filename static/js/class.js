// The class page: join with a code or start a class; then, for a lecturer, the members live, publishing
// and the challenge; for a student, the challenge and an entry form; the leaderboard for everyone.

import { classes, models } from "./api.js";
import { challengeWords, classLinks, leaderboardTable, membersTable, options, publicationItems } from "./class-draw.js";
import { formatPercent, showError } from "./ui.js";

const el = Object.fromEntries(
  [
    "start-panel", "join-form", "join-code", "join-name", "create-form", "class-name", "start-error", "my-classes",
    "class-panel", "class-title", "class-code", "class-qr", "join-where", "lecturer-token", "class-error",
    "lecturer-view", "class-members", "publish-model", "publish-model-button", "publish-design",
    "publish-design-button", "publish-result", "challenge-text", "challenge-form", "challenge-dataset",
    "challenge-parameters", "challenge-epochs", "challenge-minutes", "entry-form", "entry-model", "entry-result",
    "leaderboard", "rename-form", "member-name", "you-are", "publications-box", "publications", "train-first",
    "publish-error", "challenge-error", "code-box",
  ].map((id) => [id, document.getElementById(id)]),
);

const params = new URLSearchParams(location.search);
const state = { id: params.get("class"), view: null, stream: null, timer: null };

async function joinOrCreate(event, work) {
  event.preventDefault();
  showError(el["start-error"], "");
  try {
    const klass = await work();
    if (klass.lecturer_token) sessionStorage.setItem(`lecturer-token:${klass.id}`, klass.lecturer_token);
    location.search = new URLSearchParams({ class: klass.id }).toString();
  } catch (error) {
    showError(el["start-error"], error.message);
  }
}

el["join-form"].addEventListener("submit", (event) =>
  joinOrCreate(event, () => classes.join({ code: el["join-code"].value, ...(el["join-name"].value.trim() ? { name: el["join-name"].value } : {}) })),
);
el["create-form"].addEventListener("submit", (event) => joinOrCreate(event, () => classes.create(el["class-name"].value)));

/** The class as its member sees it; a lecturer's view then stays live through server-sent events. */
async function openClass() {
  el["class-panel"].hidden = false;
  el["start-panel"].hidden = true;
  try {
    state.view = await classes.get(state.id);
  } catch (error) {
    el["start-panel"].hidden = false;
    el["class-panel"].hidden = true;
    showError(el["start-error"], error.status === 404 ? "You are not in that class: join it with its code." : error.message);
    return;
  }
  const view = state.view;
  el["class-title"].textContent = view.name;
  document.title = `${view.name} · convscope`;
  el["class-code"].textContent = view.code;
  el["join-where"].textContent = `${location.host}/class`;
  el["class-qr"].src = classes.qrUrl(view.id);
  el["member-name"].value = view.member_name;
  el["you-are"].textContent = `You are “${view.member_name}”, a ${view.role} in this class (code ${view.code}).`;
  // the code large, with its QR code, is for the projector: the lecturer's screen
  el["code-box"].hidden = view.role !== "lecturer";
  el.publications.replaceChildren(...publicationItems(view.publications));
  el["publications-box"].hidden = view.publications.length === 0;
  showToken(view);
  el["challenge-text"].textContent = challengeWords(view.challenge);
  if (view.role === "lecturer") await openLecturerView(view);
  else await openStudentView();
  refreshLeaderboard();
}

function showToken(view) {
  const token = sessionStorage.getItem(`lecturer-token:${view.id}`);
  el["lecturer-token"].hidden = !(view.role === "lecturer" && token);
  if (token) el["lecturer-token"].textContent = `Lecturer token (secret, shown once here): ${token}. Another browser (the projector's) joins as a lecturer with the code and this token.`;
}

async function openLecturerView(view) {
  el["lecturer-view"].hidden = false;
  el["challenge-form"].hidden = false;
  membersTable(el["class-members"], view.members);
  const [list, presets] = await Promise.all([models.list(), models.architectures()]);
  el["publish-model"].replaceChildren(...options(list.filter((m) => m.status === "done").map((m) => [m.id, m.name])));
  el["publish-design"].replaceChildren(...options(Object.keys(presets).filter((k) => k !== "broken").map((k) => [k, k])));
  state.presets = presets;
  state.stream = new EventSource(classes.eventsUrl(view.id));
  state.stream.addEventListener("class", (event) => {
    state.view = JSON.parse(event.data);
    membersTable(el["class-members"], state.view.members);
    el["challenge-text"].textContent = challengeWords(state.view.challenge);
    el.publications.replaceChildren(...publicationItems(state.view.publications));
    el["publications-box"].hidden = state.view.publications.length === 0;
  });
  state.stream.addEventListener("ended", () => location.assign("/class"));
}

async function openStudentView() {
  el["entry-form"].hidden = !state.view.challenge;
  const list = await models.list();
  const mine = list.filter((m) => m.group === "yours" && m.kind === "trained" && m.status === "done");
  const chosen = el["entry-model"].value;
  el["entry-model"].replaceChildren(...options(mine.map((m) => [m.id, `${m.name} (${m.parameters.toLocaleString("en")} parameters)`])));
  if (mine.some((m) => m.id === chosen)) el["entry-model"].value = chosen;
  el["entry-model"].disabled = mine.length === 0;
  el["train-first"].hidden = mine.length > 0;
}

async function refreshLeaderboard() {
  clearTimeout(state.timer);
  try {
    const board = await classes.leaderboard(state.id);
    leaderboardTable(el.leaderboard, board.entries);
    el["challenge-text"].textContent = challengeWords(board.challenge);
    state.view.challenge = board.challenge;
    if (state.view.role === "student") await openStudentView(); // a model just trained, a challenge just set
  } catch (error) {
    showError(el["class-error"], `The leaderboard could not be loaded: ${error.message}`);
  }
  state.timer = setTimeout(refreshLeaderboard, 5000);
}

/** Runs `work`, saying its result in `box`, or its error (the server's words) in `errorBox` beside it. */
async function act(box, errorBox, work) {
  box.textContent = "";
  showError(errorBox, "");
  try {
    box.textContent = await work();
  } catch (error) {
    showError(errorBox, error.message);
  }
}

el["publish-model-button"].addEventListener("click", () =>
  act(el["publish-result"], el["publish-error"], async () => `Published “${(await classes.publish(state.id, { model: el["publish-model"].value })).name}”: students find it under “From your lecturer”.`),
);
el["publish-design-button"].addEventListener("click", () =>
  act(el["publish-result"], el["publish-error"], async () => {
    const key = el["publish-design"].value;
    const design = await classes.publish(state.id, { design: { name: key, architecture: state.presets[key] } });
    return `Published the design “${design.name}”: students find it among the training page's designs.`;
  }),
);
el["challenge-form"].addEventListener("submit", (event) => {
  event.preventDefault();
  const minutes = Number(el["challenge-minutes"].value);
  const body = {
    dataset: el["challenge-dataset"].value,
    max_parameters: Number(el["challenge-parameters"].value),
    max_epochs: Number(el["challenge-epochs"].value),
    deadline: minutes > 0 ? Date.now() / 1000 + 60 * minutes : null,
  };
  act(el["entry-result"], el["challenge-error"], async () => {
    el["challenge-text"].textContent = challengeWords(await classes.setChallenge(state.id, body));
    return "The challenge is set.";
  });
});
el["entry-form"].addEventListener("submit", (event) => {
  event.preventDefault();
  act(el["entry-result"], el["challenge-error"], async () => {
    const entry = await classes.enter(state.id, el["entry-model"].value);
    refreshLeaderboard();
    return `Entered: ${formatPercent(entry.score)} on the held-out pictures with ${entry.parameters.toLocaleString("en")} parameters.`;
  });
});
el["rename-form"].addEventListener("submit", (event) => {
  event.preventDefault();
  act(el["entry-result"], el["challenge-error"], async () => `You are “${(await classes.rename(state.id, el["member-name"].value)).member_name}” in this class.`);
});

async function start() {
  if (params.get("code")) el["join-code"].value = params.get("code");
  try {
    el["my-classes"].replaceChildren(...classLinks((await classes.mine()).classes));
  } catch (error) {
    showError(el["start-error"], `Your classes could not be loaded: ${error.message}`);
  }
  if (state.id) await openClass();
}

start();
