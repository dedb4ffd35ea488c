// jobs.js - the jobs page: every job with its state, progress (epoch,
// batch, ETA, images/s), the best value of each checkpoint policy, and
// cancel / delete buttons that ask for confirmation.  Polls while shown.

import {api} from "./api.js";
import {clear, el, fmtNum, progressFraction, progressText, stateBadge} from "./util.js";

const POLL_MS = 2000;
const DETAIL_LIMIT = 50; // best values are fetched for the newest jobs only

export function jobsPage(main, {showError}) {
  let timer = null;
  let stopped = false;
  const details = new Map(); // id -> {key, best}: best values change only at epoch ends

  const tbody = el("tbody", {id: "jobs-body"});
  const empty = el("p", {id: "jobs-empty", class: "muted", hidden: true},
                   "No jobs yet. ", el("a", {href: "#/submit"}, "Submit one."));
  const status = el("p", {id: "jobs-status", class: "muted", role: "status"});
  clear(main).append(
    el("h1", {}, "Jobs"),
    el("div", {class: "panel table-wrap"},
       el("table", {class: "jobs", "aria-describedby": "jobs-status"},
          el("thead", {}, el("tr", {},
             el("th", {scope: "col"}, "Job"), el("th", {scope: "col"}, "State"),
             el("th", {scope: "col"}, "Progress"), el("th", {scope: "col"}, "Best"),
             el("th", {scope: "col"}, "Created"), el("th", {scope: "col"}, "Actions"))),
          tbody),
       empty),
    status);

  async function bestOf(job) {
    const key = `${job.state}:${job.progress ? job.progress.epoch : 0}`;
    const d = details.get(job.id);
    if (d && d.key === key) return d.best;
    const full = await api("GET", `/v1/jobs/${job.id}`);
    details.set(job.id, {key, best: full.best || []});
    return full.best || [];
  }

  async function act(job, what) {
    const question = what === "cancel"
      ? `Cancel job "${job.name}" (${job.id})? Training stops after the current batch.`
      : `Delete job "${job.name}" (${job.id}) and all its weight files? This cannot be undone.`;
    if (!window.confirm(question)) return;
    try {
      if (what === "cancel") await api("POST", `/v1/jobs/${job.id}/cancel`);
      else await api("DELETE", `/v1/jobs/${job.id}`);
      await refresh();
    } catch (e) {
      showError(`${what} failed: ${e.message}`);
    }
  }

  function row(job, best) {
    const running = job.state === "running" || job.state === "queued";
    const frac = progressFraction(job.progress, job.state);
    const bestCell = el("td", {"data-label": "Best", class: "best"});
    for (const b of best || []) {
      bestCell.append(el("div", {class: "mono", "data-policy": b.policy},
        `${b.monitor} (${b.mode}): ${fmtNum(b.value)}`,
        b.epoch !== null && b.epoch !== undefined ? el("span", {class: "muted"}, ` @${b.epoch}`) : ""));
    }
    if (!best || !best.length) bestCell.append(el("span", {class: "muted"}, "–"));
    const label = `Progress of ${job.name}`;
    return el("tr", {"data-job": job.id},
      el("td", {"data-label": "Job"},
         el("a", {href: `#/jobs/${job.id}`}, job.name || job.id),
         el("div", {class: "mono muted"}, job.id)),
      el("td", {"data-label": "State"}, stateBadge(job.state),
         job.error ? el("div", {class: "muted"}, job.error) : ""),
      el("td", {"data-label": "Progress", class: "progress-cell"},
         el("progress", {max: "1", value: frac.toFixed(4), "aria-label": label}),
         el("div", {class: "progress-text"}, progressText(job.progress, job.state))),
      bestCell,
      el("td", {"data-label": "Created", class: "muted"}, (job.created || "").replace("T", " ").slice(0, 19)),
      el("td", {"data-label": "Actions"}, el("div", {class: "actions"},
         el("button", {type: "button", class: "secondary", disabled: !running,
                       "aria-label": `Cancel ${job.name}`, onclick: () => act(job, "cancel")}, "Cancel"),
         el("button", {type: "button", class: "danger", disabled: running,
                       "aria-label": `Delete ${job.name}`, onclick: () => act(job, "delete")}, "Delete"))));
  }

  async function refresh() {
    try {
      const body = await api("GET", "/v1/jobs");
      const jobs = (body && body.jobs) || [];
      jobs.sort((a, b) => (b.created || "").localeCompare(a.created || ""));
      const bests = await Promise.all(jobs.map((j, i) =>
        i < DETAIL_LIMIT ? bestOf(j).catch(() => []) : Promise.resolve([])));
      if (stopped) return;
      // keep keyboard focus on the same button across the redraw
      const focused = document.activeElement;
      const focusKey = focused && focused.closest && focused.closest("tr[data-job]")
        ? [focused.closest("tr[data-job]").dataset.job, focused.textContent] : null;
      clear(tbody).append(...jobs.map((j, i) => row(j, bests[i])));
      if (focusKey) {
        const again = [...tbody.querySelectorAll(`tr[data-job="${focusKey[0]}"] a, tr[data-job="${focusKey[0]}"] button`)]
          .find((n) => n.textContent === focusKey[1]);
        if (again) again.focus();
      }
      empty.hidden = jobs.length > 0;
      status.textContent = `${jobs.length} job${jobs.length === 1 ? "" : "s"}, updated ${new Date().toLocaleTimeString()}`;
    } catch (e) {
      if (!stopped) status.textContent = `Could not load jobs: ${e.message}`;
    }
  }

  async function poll() {
    await refresh();
    if (!stopped) timer = setTimeout(poll, POLL_MS);
  }
  poll();
  return () => { stopped = true; clearTimeout(timer); };
}
