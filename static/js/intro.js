// Every page's introduction, whole: on a projector-sized screen (wide and short) it folds to one line with a
// "More" button (a real button: Enter, Space, a click or a tap opens it); elsewhere it is shown in full.

import { h } from "./ui.js";

for (const [k, intro] of [...document.querySelectorAll(".intro")].entries()) {
  const text = intro.querySelector("p");
  if (!text) continue;
  text.id ||= `intro-text-${k}`;
  const button = h("button", { type: "button", class: "intro-more", "data-testid": "intro-more", "aria-controls": text.id, "aria-expanded": "false", text: "More" });
  button.addEventListener("click", () => {
    const open = intro.classList.toggle("folded") === false;
    button.setAttribute("aria-expanded", String(open));
    button.textContent = open ? "Less" : "More";
  });
  intro.classList.add("folded");
  text.after(button);
}
