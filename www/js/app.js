// app.js - the dashboard's entry point: the token form, the error banner
// and a hash router over the three pages (#/jobs, #/jobs/{id}, #/submit).

import {getToken, setToken} from "./api.js";
import {jobPage} from "./job.js";
import {jobsPage} from "./jobs.js";
import {submitPage} from "./submit.js";

const main = document.getElementById("main");
const banner = document.getElementById("banner");
const tokenForm = document.getElementById("token-form");
const tokenInput = document.getElementById("token-input");
const tokenState = document.getElementById("token-state");
let leave = null;

function showError(message) {
  banner.textContent = message;
  banner.hidden = false;
}

function navigate(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

function route() {
  banner.hidden = true;
  if (leave) leave();
  leave = null;
  const hash = location.hash || "#/jobs";
  let m;
  const ctx = {showError, navigate};
  if ((m = /^#\/jobs\/([0-9a-f]{16})$/.exec(hash))) {
    leave = jobPage(main, m[1], ctx);
  } else if (hash === "#/submit") {
    leave = submitPage(main, ctx);
  } else {
    leave = jobsPage(main, ctx);
  }
  for (const a of document.querySelectorAll(".top nav a")) {
    const current = (hash === "#/submit") === (a.id === "nav-submit");
    if (current) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
}

function showTokenState() {
  tokenState.textContent = getToken() ? "token set" : "no token";
}

tokenForm.addEventListener("submit", (e) => {
  e.preventDefault();
  setToken(tokenInput.value.trim());
  tokenInput.value = "";
  showTokenState();
  route();
});
window.addEventListener("traind-unauthorized", () => {
  showError("The server asks for a token: enter it above (it stays in this tab only).");
  tokenInput.focus();
});
window.addEventListener("hashchange", route);
showTokenState();
route();
