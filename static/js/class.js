// The class page: join with a code (or, on a lecturer's second device, with the lecturer link) or start a
// class; then, for a lecturer, the room's counts, the challenge and the leaderboard on the projector's
// first screen, the members live below; for a student, the challenge and an entry form. The lecturer's
// secret is never written on the page unless its owner asks for the link, away from the projector.

import { classes, models } from "./api.js";
import {
  challengeWords,
  classLinks,
  entryOptions,
  leaderboardTable,
  membersTable,
  options,
  publicationItems,
  roundOptions,
  showCounts,
} from "./class-draw.js";
import { formatPercent, showError } from "./ui.js";

const el = Object.fromEntries(
  [
    "class-intro", "start-panel", "join-form", "join-code", "join-name", "join-lecturer", "lecturer-join",
    "create-form", "class-name", "start-error", "my-classes", "class-panel", "class-title", "class-code", "class-qr",
    "join-where", "reach-warning", "lecturer-token", "lecturer-link", "lecturer-link-row", "lecturer-link-missing",
    "lecturer-link-result", "show-lecturer-link", "hide-lecturer-link", "copy-lecturer-link", "new-lecturer-link",
    "leave-class", "end-class", "end-confirm", "end-confirm-text", "end-class-confirm", "end-class-cancel",
    "class-error", "room-counts", "count-joined", "count-training", "count-with-model", "count-entered",
    "lecturer-view", "class-members", "members-filter", "members-sort", "publish-model", "publish-model-button",
    "publish-design", "publish-design-button", "publish-result", "challenge-text", "challenge-form",
    "challenge-dataset", "challenge-parameters", "challenge-epochs", "challenge-minutes", "entry-form", "entry-model",
    "entry-result", "leaderboard", "round-pick", "round-select", "rename-form", "member-name", "you-are",
    "publications-box", "publications", "train-first", "publish-error", "challenge-error", "code-box",
  ].map((id) => [id, document.getElementById(id)]),
);
const countFields = { joined: el["count-joined"], training: el["count-training"], with_model: el["count-with-model"], entered: el["count-entered"] };

const params = new URLSearchParams(location.search);
// a lecturer link carries the secret in the fragment (never sent to the server): off the address bar at once
const arrivingSecret = new URLSearchParams(location.hash.slice(1)).get("lecturer");
if (arrivingSecret) history.replaceState(null, "", location.pathname + location.search);

const state = { id: params.get("class"), view: null, stream: null, timer: null, round: null, armed: null, boardRequest: null };
const secretKey = (id) => `convscope:lecturer-secret:${id}`;
const LOOPBACK = /^(localhost|127(\.\d+){3}|\[::1\])$/;

/** The code and the secret in what a lecturer pasted: a lecturer link, or the secret alone. */
function readSecret(text) {
  const value = text.trim();
  const at = value.indexOf("#lecturer=");
  if (at < 0) return { code: null, token: value || null };
  let code = null;
  try {
    code = new URL(value.slice(0, at), location.href).searchParams.get("code");
  } catch {
    // not a link: the code stays the typed one
  }
  return { code, token: decodeURIComponent(value.slice(at + "#lecturer=".length)) };
}

async function joinOrCreate(event, work) {
  event?.preventDefault();
  showError(el["start-error"], "");
  try {
    const klass = await work();
    if (klass.lecturer_token) localStorage.setItem(secretKey(klass.id), klass.lecturer_token);
    location.assign(`/class?${new URLSearchParams({ class: klass.id })}`);
  } catch (error) {
    showError(el["start-error"], error.message);
  }
}

function joinBody() {
  const secret = readSecret(el["join-lecturer"].value);
  const code = el["join-code"].value.trim() || secret.code;
  if (!code) throw new Error("Type the class code from the lecturer's screen (or paste the lecturer link).");
  const body = { code };
  if (el["join-name"].value.trim()) body.name = el["join-name"].value;
  if (secret.token) body.lecturer_token = secret.token;
  return body;
}

el["join-form"].addEventListener("submit", (event) => joinOrCreate(event, () => classes.join(joinBody())));
el["create-form"].addEventListener("submit", (event) => joinOrCreate(event, () => classes.create(el["class-name"].value)));

/** Where students reach the server: the public URL, this page's own address, or (opened at a loopback
 * address) one the server listens on that others can reach, with a plain warning when there is none. */
function reachFor(view) {
  if (/^https?:/.test(view.join_url)) return { base: new URL(view.join_url).origin, warning: "" };
  if (!LOOPBACK.test(location.hostname)) return { base: location.origin, warning: "" };
  const room = view.room ?? { join_bases: [], listening: location.host, restart: "scripts/serve.sh --host 0.0.0.0" };
  if (room.join_bases.length) {
    return { base: room.join_bases[0], warning: `Phones cannot reach ${location.host}, the address this page was opened at; students join at ${room.join_bases.join(" or ")}.` };
  }
  return {
    base: location.origin,
    warning: `Phones cannot reach this server: it listens on ${room.listening}, this computer only. Restart it with “${room.restart}” (or set CONVSCOPE_PUBLIC_URL to the address students reach), then open this page at the address it prints.`,
  };
}

/** The class as its member sees it; a lecturer's view then stays live through server-sent events. */
async function openClass() {
  try {
    state.view = await classes.get(state.id);
  } catch (error) {
    showError(el["start-error"], error.status === 404 ? "You are not in that class: join it with its code." : error.message);
    return;
  }
  const view = state.view;
  el["class-panel"].hidden = false;
  el["start-panel"].hidden = true;
  el["class-intro"].hidden = true; // the projector's first screen is the class's
  el["class-title"].textContent = view.name;
  document.title = `${view.name} · convscope`;
  el["class-code"].textContent = view.code;
  const reach = reachFor(view);
  el["join-where"].textContent = `${reach.base.replace(/^https?:\/\//, "")}/class`;
  showError(el["reach-warning"], view.role === "lecturer" ? reach.warning : "");
  el["class-qr"].src = classes.qrUrl(view.id);
  el["member-name"].value = view.member_name;
  const role = view.owner ? "the owner (a lecturer)" : `a ${view.role}`;
  el["you-are"].textContent = `You are “${view.member_name}”, ${role} in this class (code ${view.code}).`;
  el["code-box"].hidden = view.role !== "lecturer"; // the code large, with its QR code, is for the projector
  el["show-lecturer-link"].hidden = !view.owner;
  el["end-class"].hidden = !view.owner;
  el["leave-class"].hidden = view.owner;
  showPublications(view.publications);
  fillChallengeForm(view.challenge);
  el["challenge-text"].textContent = challengeWords(view.challenge);
  if (view.role === "lecturer") await openLecturerView(view);
  else await openStudentView();
  refreshLeaderboard();
}

function showPublications(publications) {
  el.publications.replaceChildren(...publicationItems(publications));
  el["publications-box"].hidden = publications.length === 0;
}

/** The challenge form shows the challenge as it is (after a reload too), never the form's defaults. */
function fillChallengeForm(challenge) {
  if (!challenge) return;
  el["challenge-dataset"].value = challenge.dataset;
  el["challenge-parameters"].value = String(challenge.max_parameters);
  el["challenge-epochs"].value = String(challenge.max_epochs);
  const left = challenge.deadline ? Math.max(0, Math.round((challenge.deadline - Date.now() / 1000) / 60)) : null;
  el["challenge-minutes"].value = left === null ? "" : String(left);
}

function showMembers() {
  membersTable(el["class-members"], state.view.members, {
    sort: el["members-sort"].value,
    filter: el["members-filter"].value,
    me: state.view.member_id,
    onRemove: removeMember,
    armed: state.armed,
  });
}

function showRoom(view) {
  showCounts(countFields, view.counts);
  showMembers();
  el["challenge-text"].textContent = challengeWords(view.challenge);
  showPublications(view.publications);
}

async function openLecturerView(view) {
  el["lecturer-view"].hidden = false;
  el["challenge-form"].hidden = false;
  el["room-counts"].hidden = false;
  showRoom(view);
  const [list, presets] = await Promise.all([models.list(), models.architectures()]);
  el["publish-model"].replaceChildren(...options(list.filter((m) => m.status === "done").map((m) => [m.id, m.name])));
  el["publish-design"].replaceChildren(...options(Object.keys(presets).filter((k) => k !== "broken").map((k) => [k, k])));
  state.presets = presets;
  state.stream = new EventSource(classes.eventsUrl(view.id));
  state.stream.addEventListener("class", (event) => {
    const room = JSON.parse(event.data);
    // rounds only go up: a reading begun before this page set a new round never takes it back
    if ((room.challenge?.round ?? 0) < (state.view.challenge?.round ?? 0)) room.challenge = state.view.challenge;
    state.view = { ...state.view, ...room };
    showRoom(state.view);
  });
  state.stream.addEventListener("ended", () => location.assign("/class"));
}

async function openStudentView() {
  el["entry-form"].hidden = !state.view.challenge;
  const list = await models.list();
  const mine = list.filter((m) => m.group === "yours" && m.status === "done");
  const chosen = el["entry-model"].value;
  el["entry-model"].replaceChildren(...entryOptions(mine));
  if (mine.some((m) => m.id === chosen)) el["entry-model"].value = chosen;
  el["entry-model"].disabled = mine.length === 0;
  el["train-first"].hidden = mine.some((m) => m.origin === "trained");
}

/** The leaderboard of the round picked (the current one by default). Each refresh is numbered and aborts the
 * one before it: an older answer (the current round's, asked before a past round was picked) that arrives
 * late never replaces the newer one. */
async function refreshLeaderboard() {
  clearTimeout(state.timer);
  state.boardRequest?.abort();
  const request = (state.boardRequest = new AbortController());
  try {
    const board = await classes.leaderboard(state.id, state.round, { signal: request.signal });
    if (request !== state.boardRequest) return; // a newer refresh is on its way
    leaderboardTable(el.leaderboard, board.entries);
    el["round-pick"].hidden = board.rounds < 2;
    if (board.rounds >= 2) {
      el["round-select"].replaceChildren(...roundOptions(board.rounds, state.view.challenge?.round ?? board.rounds));
      el["round-select"].value = String(board.round);
    }
    if (state.round === null) {
      state.view.challenge = board.challenge;
      el["challenge-text"].textContent = challengeWords(board.challenge);
    }
    if (state.view.role === "student") await openStudentView(); // a model just trained, a challenge just set
  } catch (error) {
    if (request !== state.boardRequest) return; // aborted by a newer refresh, which sets the next timer
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

/** A first click on Remove asks again (the row says so); a second click within the moment removes. */
async function removeMember(member) {
  if (state.armed !== member.member_id) {
    state.armed = member.member_id;
    showMembers();
    setTimeout(() => {
      if (state.armed === member.member_id) (state.armed = null), showMembers();
    }, 6000);
    return;
  }
  state.armed = null;
  await act(el["publish-result"], el["class-error"], async () => {
    await classes.removeMember(state.id, member.member_id);
    state.view.members = state.view.members.filter((m) => m.member_id !== member.member_id);
    showMembers();
    return `${member.name} is no longer in the class; their models stay theirs.`;
  });
}

// -- the lecturer link for the owner's other device: shown on request, hidden with one click -------------

function showLecturerLink() {
  const token = localStorage.getItem(secretKey(state.id));
  const base = reachFor(state.view).base;
  el["lecturer-link"].value = token ? `${base}/class?code=${state.view.code}#lecturer=${encodeURIComponent(token)}` : "";
  el["lecturer-link-row"].hidden = !token;
  el["lecturer-link-missing"].hidden = Boolean(token);
  el["lecturer-link-result"].textContent = "";
  el["lecturer-token"].hidden = false;
  el["show-lecturer-link"].hidden = true;
}

function hideLecturerLink() {
  el["lecturer-link"].value = "";
  el["lecturer-token"].hidden = true;
  el["show-lecturer-link"].hidden = !state.view?.owner;
}

el["show-lecturer-link"].addEventListener("click", showLecturerLink);
el["hide-lecturer-link"].addEventListener("click", hideLecturerLink);
el["copy-lecturer-link"].addEventListener("click", async () => {
  el["lecturer-link"].select();
  try {
    await navigator.clipboard.writeText(el["lecturer-link"].value);
    el["lecturer-link-result"].textContent = "Copied. Open it on your other device, then hide the link here.";
  } catch {
    el["lecturer-link-result"].textContent = "Selected: copy it with Ctrl+C (or ⌘C).";
  }
});
el["new-lecturer-link"].addEventListener("click", () =>
  act(el["lecturer-link-result"], el["class-error"], async () => {
    const { lecturer_token: token } = await classes.newSecret(state.id);
    localStorage.setItem(secretKey(state.id), token);
    showLecturerLink();
    return "A new secret: the old link no longer works.";
  }),
);

// -- leaving (a member) and ending (the owner), each after a second, explicit step ----------------------

function askToEnd() {
  const owner = state.view.owner;
  el["end-confirm-text"].textContent = owner
    ? `End “${state.view.name}” for everyone? Members leave, the code stops working and the leaderboard goes; every model stays with whoever made it.`
    : `Leave “${state.view.name}”? Your entries leave with you; your models stay yours.`;
  el["end-class-confirm"].textContent = owner ? "End it for everyone" : "Leave the class";
  el["end-confirm"].hidden = false;
  el["end-class-confirm"].focus();
}

el["end-class"].addEventListener("click", askToEnd);
el["leave-class"].addEventListener("click", askToEnd);
el["end-class-cancel"].addEventListener("click", () => (el["end-confirm"].hidden = true));
el["end-class-confirm"].addEventListener("click", () =>
  act(el["entry-result"], el["class-error"], async () => {
    state.stream?.close();
    if (state.view.owner) await classes.end(state.id);
    else await classes.leave(state.id);
    localStorage.removeItem(secretKey(state.id));
    location.assign("/class");
    return "";
  }),
);

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
    const challenge = await classes.setChallenge(state.id, body);
    const fresh = challenge.round !== state.view.challenge?.round;
    state.view.challenge = challenge;
    state.round = null;
    el["challenge-text"].textContent = challengeWords(challenge);
    refreshLeaderboard();
    return fresh && challenge.round > 1 ? `Round ${challenge.round} starts: the leaderboard is empty again.` : "The challenge is set.";
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
el["round-select"].addEventListener("change", () => {
  const round = Number(el["round-select"].value);
  state.round = round === state.view.challenge?.round ? null : round;
  refreshLeaderboard();
});
el["members-filter"].addEventListener("input", showMembers);
el["members-sort"].addEventListener("change", showMembers);

async function start() {
  if (params.get("code")) el["join-code"].value = params.get("code");
  if (arrivingSecret) {
    el["lecturer-join"].open = true;
    if (params.get("code")) {
      await joinOrCreate(null, () => classes.join({ code: params.get("code"), lecturer_token: arrivingSecret }));
      return;
    }
  }
  try {
    el["my-classes"].replaceChildren(...classLinks((await classes.mine()).classes));
  } catch (error) {
    showError(el["start-error"], `Your classes could not be loaded: ${error.message}`);
  }
  if (state.id) await openClass();
}

start();
