// The class page's DOM: the members table (each student's jobs, live), the leaderboard, the challenge
// in words, and the lists a lecturer publishes from.

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
  const id = encodeURIComponent(job.id);
  return h(
    "li",
    { class: `job-chip ${job.status}`, "data-testid": "member-job", "data-status": job.status },
    h("strong", { text: job.name }),
    ` — ${state}${parameters ? ` · ${parameters}` : ""} `,
    job.status === "done" ? h("a", { href: `/?model=${id}`, text: "draw" }) : null,
    " ",
    h("a", { href: `/train?model=${id}`, text: "training" }),
  );
}

/** The members table: name, role, and jobs (newest first). */
export function membersTable(table, members) {
  const head = h("tr", {}, h("th", { text: "Name" }), h("th", { text: "Role" }), h("th", { text: "Jobs and models" }));
  const rows = members.map((member) =>
    h(
      "tr",
      { "data-testid": "member-row" },
      h("td", { text: member.name }),
      h("td", { text: member.role }),
      h("td", {}, member.jobs.length ? h("ul", { class: "job-chips" }, ...member.jobs.map(jobChip)) : h("span", { class: "hint", text: "nothing yet" })),
    ),
  );
  table.replaceChildren(h("thead", {}, head), h("tbody", {}, ...rows));
}

/** The leaderboard, best first: rank, student, score, parameters, the layers in one line, and a link. */
export function leaderboardTable(table, entries) {
  const head = h("tr", {}, ...["#", "Student", "Score", "Parameters", "Layers", ""].map((t) => h("th", { text: t })));
  const rows = entries.map((entry, k) =>
    h(
      "tr",
      { "data-testid": "leaderboard-row" },
      h("td", { text: String(k + 1) }),
      h("td", { text: entry.student }),
      h("td", { text: formatPercent(entry.score) }),
      h("td", { text: entry.parameters.toLocaleString("en") }),
      h("td", { class: "layers-line", text: entry.layers }),
      h("td", {}, h("a", { href: entry.url, text: "open" })),
    ),
  );
  const empty = h("tr", {}, h("td", { colspan: 6, class: "hint", text: "No entries yet." }));
  table.replaceChildren(h("thead", {}, head), h("tbody", {}, ...(rows.length ? rows : [empty])));
}

/** The challenge in one sentence. */
export function challengeWords(challenge) {
  if (!challenge) return "No challenge yet.";
  const data = challenge.dataset === "digits" ? "handwritten digits" : "clothing";
  const deadline = challenge.deadline ? `, before ${new Date(challenge.deadline * 1000).toLocaleTimeString()}` : "";
  return `Best accuracy on ${challenge.test_size} held-out ${data} test pictures with at most ${challenge.max_parameters.toLocaleString("en")} parameters and ${challenge.max_epochs} epochs${deadline}.`;
}

/** <option>s for a list of [value, label] pairs. */
export function options(pairs) {
  return pairs.map(([value, label]) => h("option", { value, text: label }));
}

/** The classes a workspace is in, as links. */
export function classLinks(list) {
  if (!list.length) return [h("li", { class: "hint", text: "None yet." })];
  return list.map((c) => h("li", {}, h("a", { href: `/class?class=${encodeURIComponent(c.id)}`, text: `${c.name} (${c.role})` })));
}

/** What the lecturer published: models open on the drawing page, designs on the training page. */
export function publicationItems(publications) {
  return publications.map((p) =>
    p.kind === "model"
      ? h("li", {}, `the model “${p.name}”: `, h("a", { href: `/?model=${encodeURIComponent(p.model)}`, text: "open it" }))
      : h("li", {}, `the design “${p.name}”: `, h("a", { href: `/train?spec=${encodeURIComponent(JSON.stringify(p.architecture))}`, text: "train it" })),
  );
}
