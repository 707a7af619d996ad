// runner's web view: refresh the live parts of the page, and the action buttons.
// The pages read without this script; it only keeps them fresh and calls the API.
"use strict";

const REFRESH_MS = 5000;

function setState(text) {
  const state = document.getElementById("refresh-state");
  if (state) state.textContent = text;
}

// Fetch this page again and swap each [data-live] element for its new version, so open
// forms, focus and scroll position stay as they are.
async function refresh() {
  if (document.visibilityState !== "visible") return;
  try {
    const response = await fetch(location.href, { headers: { Accept: "text/html" }, cache: "no-store" });
    if (!response.ok && response.status !== 404) throw new Error(`HTTP ${response.status}`);
    const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
    for (const element of document.querySelectorAll("[data-live][id]")) {
      const replacement = fresh.getElementById(element.id);
      if (replacement) element.replaceWith(document.importNode(replacement, true));
    }
    setState("Refreshes itself every few seconds.");
  } catch (error) {
    setState(`Could not refresh (${error.message}); retrying.`);
  }
}

function errorMessage(body, status) {
  if (body && body.error && body.error.message) return body.error.message;
  return `the API answered ${status}`;
}

async function act(form, action) {
  const result = document.getElementById("action-result");
  const name = form.dataset.event;
  const token = form.elements.token.value.trim();
  result.className = "";
  result.textContent = `Sending ${action}…`;
  try {
    const response = await fetch(`/api/v1/scheduler/events/${encodeURIComponent(name)}/${action}`, {
      method: "POST",
      headers: token ? { Authorization: `Bearer ${token}` } : {},
    });
    const body = await response.json().catch(() => null);
    if (!response.ok) {
      result.className = "bad";
      result.textContent = `Refused: ${errorMessage(body, response.status)}`;
      return;
    }
    const done = { run: "Run requested", pause: "Paused", resume: "Resumed" }[action];
    result.className = "ok";
    result.textContent = `${done}: ${name} is ${body.data.status}.`;
    refresh();
  } catch (error) {
    result.className = "bad";
    result.textContent = `Could not reach the API: ${error.message}`;
  }
}

document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("actions");
  if (form) {
    form.querySelector("fieldset").disabled = false;
    document.getElementById("needs-script").hidden = true;
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      act(form, event.submitter ? event.submitter.value : "run");
    });
  }
  setState("Refreshes itself every few seconds.");
  setInterval(refresh, REFRESH_MS);
});
