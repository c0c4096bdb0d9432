// The class page's DOM: the room's counts, the members table (each member's role and jobs, live; sorted
// and filtered), the leaderboard, the challenge in words, and the lists a lecturer publishes from.

import { formatPercent, h } from "./ui.js";

/** One job as a lecturer sees it: its state (progress while running), and links for the projector. */
function jobChip(job) {
  const parameters = job.parameters ? `${job.parameters.toLocaleString("en")} parameters` : "";
  let state = job.status;
  if (job.status === "running" && job.progress?.steps) {
    state = `running ${Math.round((100 * job.progress.step) / job.progress.steps)}% (epoch ${job.progress.epoch})`;
  } else if (job.status === "done") {
    state = job.test_accuracy === null ? "done" : `done, ${formatPercent(job.test_accuracy)}`;
  }
  const made = job.origin && job.origin !== "trained" ? ` (${job.origin})` : "";
  const id = encodeURIComponent(job.id);
  return h(
    "li",
    { class: `job-chip ${job.status}`, "data-testid": "member-job", "data-status": job.status },
    h("strong", { text: job.name }),
    ` — ${state}${made}${parameters ? ` · ${parameters}` : ""} `,
    job.status === "done" ? h("a", { href: `/?model=${id}`, text: "draw" }) : null,
    " ",
    h("a", { href: `/train?model=${id}`, text: "training" }),
  );
}

const time = (seconds) => new Date(seconds * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });

/** A member's role in words: the owner, a lecturer who joined with the secret (and when), a student. */
export function roleWords(member) {
  if (member.owner) return "owner (lecturer)";
  if (member.role === "lecturer") {
    return member.via === "token" ? `lecturer, joined with the secret at ${time(member.lecturer_since)}` : "lecturer";
  }
  return "student";
}

const SORTS = {
  joined: (a, b) => a.joined - b.joined,
  name: (a, b) => a.name.localeCompare(b.name, undefined, { numeric: true }),
  best: (a, b) => (b.best_accuracy ?? -1) - (a.best_accuracy ?? -1) || a.name.localeCompare(b.name),
};

/** The members table: name, role, best accuracy, jobs (newest first) and, for a lecturer, a way to remove
 * a member (the `armed` one asks to be clicked again); `sort` and `filter` (part of a name) order and choose
 * the rows. */
export function membersTable(table, members, { sort = "joined", filter = "", me = null, onRemove = null, armed = null } = {}) {
  const words = ["Name", "Role", "Best", "Jobs and models", onRemove ? "Remove" : null].filter(Boolean);
  const head = h("tr", {}, ...words.map((t) => h("th", { scope: "col", text: t })));
  const wanted = filter.trim().toLowerCase();
  const shown = members.filter((m) => !wanted || m.name.toLowerCase().includes(wanted)).sort(SORTS[sort] ?? SORTS.joined);
  const rows = shown.map((member) =>
    h(
      "tr",
      { "data-testid": "member-row", "data-member": member.member_id },
      h("td", { text: member.name }),
      h("td", { class: "role-cell", text: roleWords(member) }),
      h("td", { text: member.best_accuracy === null ? "–" : formatPercent(member.best_accuracy) }),
      h("td", {}, member.jobs.length ? h("ul", { class: "job-chips" }, ...member.jobs.map(jobChip)) : h("span", { class: "hint", text: "nothing yet" })),
      onRemove
        ? h(
            "td",
            {},
            member.owner || member.member_id === me
              ? null
              : h("button", {
                  type: "button",
                  class: armed === member.member_id ? "small danger" : "small",
                  "data-testid": "member-remove",
                  onclick: () => onRemove(member),
                  text: armed === member.member_id ? `Click again to remove ${member.name}` : `Remove ${member.name}`,
                }),
          )
        : null,
    ),
  );
  const empty = h("tr", {}, h("td", { colspan: words.length, class: "hint", text: wanted ? "Nobody by that name." : "Nobody yet." }));
  table.replaceChildren(h("thead", {}, head), h("tbody", {}, ...(rows.length ? rows : [empty])));
}

/** The room at a glance, for the projector: who joined, who is training, who has a model, who entered. */
export function showCounts(fields, counts) {
  for (const [key, value] of Object.entries(counts)) fields[key].textContent = String(value);
}

/** The layers of an entry in one line, cut with an ellipsis on a narrow screen; a tap (or Enter) shows it whole. */
function layersButton(text) {
  return h("button", {
    type: "button",
    class: "layers-line",
    "aria-expanded": "false",
    title: text,
    text,
    onclick: (event) => {
      const button = event.currentTarget;
      button.setAttribute("aria-expanded", String(button.getAttribute("aria-expanded") !== "true"));
    },
  });
}

/** The leaderboard, best first: one row per student (their best entry, and how many they entered). */
export function leaderboardTable(table, entries) {
  const head = h("tr", {}, ...["#", "Student", "Score", "Entries", "Parameters", "Layers", "Model"].map((t) => h("th", { scope: "col", text: t })));
  const rows = entries.map((entry, k) =>
    h(
      "tr",
      { "data-testid": "leaderboard-row" },
      h("td", { text: String(k + 1) }),
      h("td", { class: "student-cell", text: entry.student }),
      h("td", { text: formatPercent(entry.score) }),
      h("td", { text: String(entry.attempts) }),
      h("td", { text: entry.parameters.toLocaleString("en") }),
      h("td", { class: "layers-cell" }, layersButton(entry.layers)),
      h("td", {}, h("a", { href: entry.url, text: "open", "aria-label": `Open ${entry.student}'s model` })),
    ),
  );
  const empty = h("tr", {}, h("td", { colspan: 7, class: "hint", text: "No entries yet." }));
  table.replaceChildren(h("thead", {}, head), h("tbody", {}, ...(rows.length ? rows : [empty])));
}

/** The challenge in one sentence, with its round. */
export function challengeWords(challenge) {
  if (!challenge) return "No challenge yet.";
  const data = challenge.dataset === "digits" ? "handwritten digits" : "clothing";
  const deadline = challenge.deadline ? `, before ${new Date(challenge.deadline * 1000).toLocaleTimeString()}` : "";
  return `Round ${challenge.round}: best accuracy on ${challenge.test_size} held-out ${data} test pictures with at most ${challenge.max_parameters.toLocaleString("en")} parameters and ${challenge.max_epochs} epochs${deadline}.`;
}

/** The rounds to pick from: the current one first. */
export function roundOptions(count, current) {
  const pairs = [];
  for (let round = count; round >= 1; round -= 1) pairs.push([String(round), round === current ? `${round} (now)` : String(round)]);
  return options(pairs);
}

/** <option>s for a list of [value, label] pairs. */
export function options(pairs) {
  return pairs.map(([value, label]) => h("option", { value, text: label }));
}

/** A student's models for the entry form: their own trained ones first; copies, edits and imports are listed
 * with why they do not count, so that entering one says the server's reason. */
export function entryOptions(models) {
  const words = { copy: "a copy", edit: "an edit", import: "an import" };
  const label = (m) => `${m.name} (${m.parameters.toLocaleString("en")} parameters)`;
  const mine = models.filter((m) => m.origin === "trained").map((m) => [m.id, label(m)]);
  const others = models.filter((m) => m.origin !== "trained").map((m) => [m.id, `${label(m)}: ${words[m.origin] ?? m.origin}, not your training`]);
  return options([...mine, ...others]);
}

/** The classes a workspace is in, as links. */
export function classLinks(list) {
  if (!list.length) return [h("li", { class: "hint", text: "None yet." })];
  const role = (c) => (c.owner ? "owner" : c.role);
  return list.map((c) => h("li", {}, h("a", { href: `/class?class=${encodeURIComponent(c.id)}`, text: `${c.name} (${role(c)})` })));
}

/** What the lecturer published: models open on the drawing page, designs on the training page. */
export function publicationItems(publications) {
  return publications.map((p) =>
    p.kind === "model"
      ? h("li", {}, `the model “${p.name}”: `, h("a", { href: `/?model=${encodeURIComponent(p.model)}`, text: "open it" }))
      : h("li", {}, `the design “${p.name}”: `, h("a", { href: `/train?spec=${encodeURIComponent(JSON.stringify(p.architecture))}`, text: "train it" })),
  );
}
