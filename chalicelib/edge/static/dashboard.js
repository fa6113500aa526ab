// Docora's operator dashboard: self-refreshing pages, copy buttons and confirmations. No inline script anywhere,
// so the Content-Security-Policy allows scripts from this origin only.
"use strict";

function refreshEvery(main) {
  const seconds = Number(main.dataset.refresh);
  if (!seconds) return;
  window.setTimeout(async function refresh() {
    const busy = main.contains(document.activeElement) && document.activeElement.matches("input, select, textarea");
    if (!busy && !document.hidden) {
      const response = await fetch(window.location.href, { headers: { Accept: "text/html" }, credentials: "same-origin" });
      if (!response.ok || response.redirected) {
        window.location.reload();
        return;
      }
      const page = new DOMParser().parseFromString(await response.text(), "text/html");
      const fresh = page.getElementById("main");
      if (!fresh) return;
      main.replaceChildren(...fresh.childNodes);
      main.dataset.refresh = fresh.dataset.refresh || "";
      if (!main.dataset.refresh) return;
    }
    window.setTimeout(refresh, seconds * 1000);
  }, seconds * 1000);
}

async function copy(button) {
  const field = document.getElementById(button.dataset.copy);
  try {
    await navigator.clipboard.writeText(field.value);
  } catch (refused) {
    field.select();
    document.execCommand("copy");
  }
  button.textContent = "Copied";
  window.setTimeout(() => { button.textContent = "Copy"; }, 2000);
}

document.addEventListener("click", (event) => {
  const button = event.target.closest("button[data-copy]");
  if (button) copy(button);
});

document.addEventListener("submit", (event) => {
  const form = event.target.closest("form[data-confirm]");
  if (form && !window.confirm(form.dataset.confirm)) event.preventDefault();
});

document.addEventListener("DOMContentLoaded", () => {
  const main = document.getElementById("main");
  if (main) refreshEvery(main);
});
