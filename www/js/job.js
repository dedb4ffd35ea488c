// job.js - one job: live charts (loss / val_loss and accuracy /
// val_accuracy per epoch, the running epoch per batch, the learning rate),
// the checkpoint timeline with the exact Keras lines, the weight files with
// download links, the event log and the CSV history.  Everything is built
// from the event stream (events.js); the job resource fills the summary
// and the file table.

import {api, download} from "./api.js";
import {EventStream} from "./events.js";
import {clear, el, fmtBytes, fmtDuration, fmtNum, progressFraction, progressText, stateBadge} from "./util.js";

const LOG_MAX = 400;
const COLORS = ["#0b5cad", "#d9480f", "#1a7f37", "#8250df", "#9a6700"];

function lineChart(canvas, datasets, {y1 = false, xTitle = "epoch"} = {}) {
  const cfg = {
    type: "line",
    data: {labels: [], datasets: datasets.map((d, i) => ({
      label: d.label, data: [], borderColor: COLORS[i % COLORS.length],
      backgroundColor: COLORS[i % COLORS.length], pointRadius: 2, borderWidth: 2,
      yAxisID: d.axis || "y", spanGaps: true, tension: 0}))},
    options: {
      animation: false, responsive: true, maintainAspectRatio: false, normalized: true,
      interaction: {mode: "index", intersect: false},
      scales: {x: {title: {display: true, text: xTitle}}, y: {beginAtZero: false}},
      plugins: {legend: {position: "bottom"}},
    },
  };
  if (y1) cfg.options.scales.y1 = {position: "right", grid: {drawOnChartArea: false}};
  return new window.Chart(canvas, cfg);
}

function chartBox(id, title) {
  const canvas = el("canvas", {id, role: "img", "aria-label": title});
  return {canvas, node: el("section", {class: "panel", "aria-labelledby": `${id}-h`},
    el("h2", {id: `${id}-h`}, title), el("div", {class: "chart-box"}, canvas))};
}

// The metric's log key: "accuracy", or the name Keras gives the job's
// metric ("sparse_categorical_accuracy", "top_k_categorical_accuracy", ...).
function accuracyKey(logs) {
  if (!logs || typeof logs !== "object" || "accuracy" in logs) return "accuracy";
  return Object.keys(logs).find((k) => k !== "loss" && !k.startsWith("val_")) || "accuracy";
}

function metricOf(ev, key) {
  if (ev.logs && typeof ev.logs === "object" && key in ev.logs) return ev.logs[key];
  if (key in ev) return ev[key];
  return undefined;
}

export function jobPage(main, jobId, {showError}) {
  let stream = null;
  let job = null;
  const epochs = new Map();   // epoch -> {logs, lr, seconds}: one point per epoch
  const timeline = new Map(); // "policy:epoch:batch" -> li
  let batchEpoch = null;
  let refreshTimer = null;

  const title = el("h1", {}, `Job ${jobId}`);
  const summary = el("dl", {class: "summary", id: "job-summary"});
  const bar = el("progress", {max: "1", value: "0", id: "job-progress", "aria-label": "Job progress"});
  const barText = el("div", {class: "progress-text", id: "job-progress-text"});
  const streamState = el("span", {id: "stream-state", class: "stream-state muted", role: "status",
                                  "data-state": "connecting", "data-reconnects": "0"}, "connecting");
  const cancelBtn = el("button", {type: "button", class: "secondary", id: "job-cancel"}, "Cancel job");
  const csvLink = el("a", {href: `/v1/jobs/${jobId}/metrics?format=csv`, id: "csv-link"},
                     "Epoch history (CSV)");
  const bestLinks = el("span", {id: "best-links", class: "actions"});
  const lossBox = chartBox("chart-loss", "Loss per epoch");
  const accBox = chartBox("chart-accuracy", "Accuracy per epoch");
  const batchBox = chartBox("chart-batch", "Running epoch, per batch");
  const lrBox = chartBox("chart-lr", "Learning rate");
  const timelineList = el("ol", {class: "timeline", id: "timeline"});
  const filesBody = el("tbody", {id: "files-body"});
  const epochBody = el("tbody", {id: "epoch-body"});
  const log = el("pre", {class: "log mono", id: "event-log", tabindex: "0", "aria-label": "Event log"});

  clear(main).append(
    el("p", {}, el("a", {href: "#/jobs"}, "← All jobs")),
    title,
    el("section", {class: "panel", "aria-label": "Summary"},
       summary, bar, barText,
       el("div", {class: "actions"}, cancelBtn, csvLink, bestLinks),
       el("p", {}, "Event stream: ", streamState)),
    el("div", {class: "grid"}, lossBox.node, accBox.node, batchBox.node, lrBox.node),
    el("section", {class: "panel", "aria-labelledby": "epochs-h"},
       el("details", {}, el("summary", {id: "epochs-h"}, "Epoch table"),
          el("div", {class: "table-wrap hidden-table"}, el("table", {id: "epoch-table"},
             el("thead", {}, el("tr", {}, ...["epoch", "loss", "accuracy", "val_loss", "val_accuracy", "lr", "seconds"]
               .map((h) => el("th", {scope: "col", class: h === "epoch" ? "" : "num"}, h)))),
             epochBody)))),
    el("section", {class: "panel", "aria-labelledby": "timeline-h"},
       el("h2", {id: "timeline-h"}, "Checkpoint timeline"), timelineList),
    el("section", {class: "panel", "aria-labelledby": "files-h"},
       el("h2", {id: "files-h"}, "Weight files"),
       el("div", {class: "table-wrap"}, el("table", {id: "files-table"},
          el("thead", {}, el("tr", {}, ...["File", "Epoch", "Policy", "Metrics", "Bytes", "SHA-256", "Best"]
            .map((h) => el("th", {scope: "col", class: h === "Bytes" || h === "Epoch" ? "num" : ""}, h)))),
          filesBody))),
    el("section", {class: "panel", "aria-labelledby": "log-h"},
       el("h2", {id: "log-h"}, "Event log"), log));

  const lossChart = lineChart(lossBox.canvas, [{label: "loss"}, {label: "val_loss"}]);
  const accChart = lineChart(accBox.canvas, [{label: "accuracy"}, {label: "val_accuracy"}]);
  const batchChart = lineChart(batchBox.canvas,
    [{label: "loss"}, {label: "accuracy"}, {label: "images/s", axis: "y1"}], {y1: true, xTitle: "batch"});
  const lrChart = lineChart(lrBox.canvas, [{label: "learning rate"}]);

  function onDownload(e, path, name) {
    e.preventDefault();
    download(path, name).catch((err) => showError(`Download failed: ${err.message}`));
  }
  csvLink.addEventListener("click", (e) => onDownload(e, csvLink.getAttribute("href"), `${jobId}.csv`));

  cancelBtn.addEventListener("click", async () => {
    if (!window.confirm(`Cancel job ${jobId}? Training stops after the current batch.`)) return;
    try { await api("POST", `/v1/jobs/${jobId}/cancel`); } catch (e) { showError(`Cancel failed: ${e.message}`); }
  });

  function renderSummary() {
    if (!job) return;
    title.textContent = `${job.name} `;
    title.append(stateBadge(job.state));
    const items = [["Id", job.id], ["Data set", job.dataset], ["Model", job.model],
      ["Epoch", `${job.progress.epoch ?? 0} / ${job.progress.epochs ?? "?"}`],
      ["Batch", job.state === "running" ? `${job.progress.batch ?? 0} / ${job.progress.batches ?? "?"}` : "–"],
      ["Images/s", job.state === "running" && job.progress.images_per_s ? Math.round(job.progress.images_per_s) : "–"],
      ["ETA", job.state === "running" ? fmtDuration(job.progress.eta_s) : "–"],
      ["Created", (job.created || "").replace("T", " ").slice(0, 19)]];
    if (job.error) items.push(["Error", job.error]);
    clear(summary).append(...items.map(([k, v]) => el("div", {}, el("dt", {}, k), el("dd", {}, String(v)))));
    bar.value = progressFraction(job.progress, job.state);
    barText.textContent = progressText(job.progress, job.state);
    cancelBtn.disabled = !(job.state === "running" || job.state === "queued");
  }

  function renderFiles(ck) {
    clear(filesBody);
    for (const f of ck.checkpoints || []) {
      const path = `/v1/jobs/${jobId}/checkpoints/${f.name.split("/").map(encodeURIComponent).join("/")}`;
      const link = el("a", {href: path, class: "download", "data-name": f.name}, f.name);
      link.addEventListener("click", (e) => onDownload(e, path, f.name.split("/").pop()));
      const metrics = Object.entries(f.metrics || {}).map(([k, v]) => `${k} ${fmtNum(v)}`).join(", ");
      filesBody.append(el("tr", {"data-file": f.name},
        el("td", {}, link), el("td", {class: "num"}, f.epoch), el("td", {}, f.policy),
        el("td", {class: "mono"}, metrics), el("td", {class: "num"}, fmtBytes(f.bytes)),
        el("td", {class: "mono"}, el("span", {class: "hash", title: f.sha256}, f.sha256)),
        el("td", {}, f.best ? el("span", {class: "best-mark", "aria-label": "best"}, "★ best") : "")));
    }
    if (!filesBody.firstChild)
      filesBody.append(el("tr", {}, el("td", {colspan: "7", class: "muted"}, "No weight files yet.")));
    clear(bestLinks);
    for (const b of ck.best || []) {
      if (!b.file) continue;
      const path = `/v1/jobs/${jobId}/best?policy=${b.policy}`;
      const a = el("a", {href: path, class: "download-best", id: `download-best-${b.policy}`},
                   `Best file, policy ${b.policy} (${b.monitor} ${fmtNum(b.value)})`);
      a.addEventListener("click", (e) => onDownload(e, path, b.file.split("/").pop()));
      bestLinks.append(a);
    }
  }

  async function refresh() {
    try {
      job = await api("GET", `/v1/jobs/${jobId}`);
      renderSummary();
      renderFiles(job);
    } catch (e) {
      if (e.status === 404) { clear(main).append(el("h1", {}, "No such job"), el("p", {}, el("a", {href: "#/jobs"}, "All jobs"))); stop(); }
      else showError(`Could not load the job: ${e.message}`);
    }
  }
  function refreshSoon() {
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(refresh, 150);
  }

  function drawEpochs() {
    const keys = [...epochs.keys()].sort((a, b) => a - b);
    lossChart.data.labels = keys;
    accChart.data.labels = keys;
    lrChart.data.labels = keys;
    const get = (k, name) => { const v = metricOf(epochs.get(k), name); return typeof v === "number" ? v : null; };
    lossChart.data.datasets[0].data = keys.map((k) => get(k, "loss"));
    lossChart.data.datasets[1].data = keys.map((k) => get(k, "val_loss"));
    const acc = accuracyKey(keys.length ? epochs.get(keys[0]).logs : null);
    accChart.data.datasets[0].label = acc;
    accChart.data.datasets[1].label = `val_${acc}`;
    accChart.data.datasets[0].data = keys.map((k) => get(k, acc));
    accChart.data.datasets[1].data = keys.map((k) => get(k, `val_${acc}`));
    const lrs = keys.map((k) => epochs.get(k).lr ?? null);
    lrChart.data.datasets[0].data = lrs;
    // a constant rate would sit on an axis from -1 to 1: frame it from 0
    const top = Math.max(0, ...lrs.filter((v) => typeof v === "number"));
    lrChart.options.scales.y.min = 0;
    lrChart.options.scales.y.suggestedMax = top > 0 ? top * 1.1 : 1;
    lossChart.update("none"); accChart.update("none"); lrChart.update("none");
    clear(epochBody).append(...keys.map((k) => {
      const e = epochs.get(k);
      return el("tr", {"data-epoch": k}, el("td", {}, k),
        ...["loss", "accuracy", "val_loss", "val_accuracy"].map((m) => el("td", {class: "num"}, fmtNum(metricOf(e, m)))),
        el("td", {class: "num"}, fmtNum(e.lr, 6)), el("td", {class: "num"}, fmtNum(e.seconds, 1)));
    }));
  }

  function onBatch(ev) {
    if (ev.epoch !== batchEpoch) {
      batchEpoch = ev.epoch;
      batchChart.data.labels = [];
      for (const d of batchChart.data.datasets) d.data = [];
      batchBox.node.querySelector("h2").textContent = `Epoch ${ev.epoch}, per batch`;
    }
    const labels = batchChart.data.labels;
    if (labels.length && ev.batch <= labels[labels.length - 1]) return; // replayed
    labels.push(ev.batch);
    const [loss, acc, ips] = batchChart.data.datasets;
    const l = metricOf(ev, "loss"), a = metricOf(ev, accuracyKey(ev.logs));
    loss.data.push(typeof l === "number" ? l : null);
    acc.data.push(typeof a === "number" ? a : null);
    ips.data.push(typeof ev.images_per_s === "number" ? ev.images_per_s : null);
    batchChart.update("none");
  }

  function addTimeline(ev) {
    const key = `${ev.type}:${ev.policy}:${ev.epoch}:${ev.batch ?? 0}`;
    if (timeline.has(key)) return;
    let text = ev.message;
    if (!text && ev.type === "checkpoint_error") text = `Epoch ${ev.epoch}: could not write ${ev.file || "the file"}: ${ev.error || ev.step || "error"}`;
    if (!text && ev.type === "early_stopping") text = `Epoch ${ev.epoch}: early stopping`;
    if (!text && ev.type === "lr_changed") text = `Epoch ${ev.epoch}: learning rate ${fmtNum(ev.old_lr ?? ev.previous, 6)} → ${fmtNum(ev.lr ?? ev.value, 6)}`;
    if (!text) return;
    const li = el("li", {class: ev.decision || ev.type, "data-type": ev.type, "data-epoch": ev.epoch},
                  el("span", {class: "mono keras-line"}, text),
                  ev.restore_message ? el("span", {class: "mono keras-line"}, ev.restore_message) : null);
    timeline.set(key, li);
    timelineList.append(li);
  }

  function appendLog(ev) {
    const line = `${ev.seq ?? ""} ${ev.time ?? ""} ${ev.type} ${JSON.stringify(ev)}\n`;
    log.append(document.createTextNode(line));
    while (log.childNodes.length > LOG_MAX) log.removeChild(log.firstChild);
    log.scrollTop = log.scrollHeight;
  }

  function onEvent(ev) {
    if (ev.type !== "progress") appendLog(ev);
    switch (ev.type) {
      case "progress":
        onBatch(ev);
        if (job) { Object.assign(job.progress, ev); renderSummary(); }
        break;
      case "epoch_end":
        if (!epochs.has(ev.epoch)) {
          epochs.set(ev.epoch, ev);
          drawEpochs();
        }
        if (job) { job.progress.epoch = Math.max(job.progress.epoch || 0, ev.epoch); renderSummary(); }
        break;
      case "checkpoint":
        addTimeline(ev);
        refreshSoon();
        break;
      case "checkpoint_error":
      case "early_stopping":
      case "lr_changed":
      case "lr_kept":
      case "terminate_on_nan":
        addTimeline(ev);
        break;
      case "state":
        if (job) { job.state = ev.state; if (ev.error) job.error = ev.error; renderSummary(); }
        refreshSoon();
        break;
      default:
        break;
    }
  }

  function stop() {
    if (stream) stream.stop();
    clearTimeout(refreshTimer);
    for (const c of [lossChart, accChart, batchChart, lrChart]) c.destroy();
  }

  refresh().then(() => {
    if (!job) return;
    stream = new EventStream(jobId, {
      onEvent,
      onStatus: (s) => {
        streamState.dataset.state = s.state;
        streamState.dataset.reconnects = String(s.reconnects);
        streamState.textContent = s.state === "reconnecting" ? `reconnecting (attempt ${s.reconnects})`
          : s.reconnects ? `${s.state} (after ${s.reconnects} reconnect${s.reconnects > 1 ? "s" : ""})` : s.state;
        if (s.state === "live" && s.reconnects) refreshSoon();
      },
    }).start();
  });
  return stop;
}
