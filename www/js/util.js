// util.js - small DOM and formatting helpers shared by the pages.

// el("td", {class: "num", "data-label": "Epoch"}, "3", child, ...)
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") node.addEventListener(k.slice(2), v);
    else if (k === "text") node.textContent = v;
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

export function clear(node) {
  while (node.firstChild) node.removeChild(node.firstChild);
  return node;
}

export function fmtNum(v, digits = 4) {
  if (v === null || v === undefined) return "–";
  if (typeof v === "string") return v;
  if (!Number.isFinite(v)) return String(v);
  return Number(v.toFixed(digits)).toString();
}

export function fmtDuration(s) {
  if (s === null || s === undefined || !Number.isFinite(s)) return "–";
  s = Math.max(0, Math.round(s));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
  if (h) return `${h}h ${String(m).padStart(2, "0")}m`;
  if (m) return `${m}m ${String(sec).padStart(2, "0")}s`;
  return `${sec}s`;
}

export function fmtBytes(n) {
  if (!Number.isFinite(n)) return "–";
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1048576).toFixed(2)} MiB`;
}

export function stateBadge(state) {
  return el("span", {class: `state state-${state}`, "data-state": state}, state);
}

// One line of progress: "epoch 3/40 · batch 311/938 · ETA 4m 10s · 1562 img/s"
export function progressText(p, state) {
  if (!p) return "";
  const parts = [];
  if (p.epochs) parts.push(`epoch ${p.epoch ?? 0}/${p.epochs}`);
  if (p.batches && state === "running") parts.push(`batch ${p.batch ?? 0}/${p.batches}`);
  if (state === "running" && p.eta_s !== null && p.eta_s !== undefined) parts.push(`ETA ${fmtDuration(p.eta_s)}`);
  if (state === "running" && p.images_per_s) parts.push(`${Math.round(p.images_per_s)} img/s`);
  return parts.join(" · ");
}

// Fraction of the whole job done, 0..1.
export function progressFraction(p, state) {
  if (state === "succeeded") return 1;
  if (!p || !p.epochs) return 0;
  const epochsDone = Math.max(0, (p.epoch ?? 0) - (state === "running" && p.batch < p.batches ? 1 : 0));
  const inEpoch = state === "running" && p.batches ? (p.batch ?? 0) / p.batches : 0;
  return Math.min(1, (epochsDone + (p.batch < p.batches ? inEpoch : 0)) / p.epochs);
}
