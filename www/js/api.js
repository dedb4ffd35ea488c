// api.js - the dashboard's only way to the server: fetch with the bearer
// token from sessionStorage.  The token is never put into a URL or logged.

const KEY = "traind.token";

export function getToken() {
  return sessionStorage.getItem(KEY) || "";
}

export function setToken(t) {
  if (t) sessionStorage.setItem(KEY, t);
  else sessionStorage.removeItem(KEY);
  window.dispatchEvent(new CustomEvent("traind-token"));
}

export function authHeaders(extra = {}) {
  const h = {...extra};
  const t = getToken();
  if (t) h.Authorization = `Bearer ${t}`;
  return h;
}

// An error answer of the API: {"error": {"code", "message", "field"}}.
export class ApiError extends Error {
  constructor(status, body) {
    const err = (body && body.error) || {};
    super(err.message || `HTTP ${status}`);
    this.status = status;
    this.code = err.code || "http_error";
    this.field = err.field ?? null;
  }
}

// JSON request; resolves to the parsed body (null for 204), rejects with
// ApiError on a 4xx/5xx answer.
export async function api(method, path, body) {
  const init = {method, headers: authHeaders({Accept: "application/json"}), cache: "no-store"};
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = typeof body === "string" ? body : JSON.stringify(body);
  }
  const r = await fetch(path, init);
  const text = await r.text();
  let parsed = null;
  if (text) {
    try { parsed = JSON.parse(text); } catch { parsed = null; }
  }
  if (!r.ok) {
    if (r.status === 401) window.dispatchEvent(new CustomEvent("traind-unauthorized"));
    throw new ApiError(r.status, parsed);
  }
  return parsed;
}

// Download a file route with the token and hand it to the browser as a
// file; resolves to {name, etag, bytes}.
export async function download(path, fallbackName) {
  const r = await fetch(path, {headers: authHeaders(), cache: "no-store"});
  if (!r.ok) {
    let parsed = null;
    try { parsed = await r.json(); } catch { parsed = null; }
    throw new ApiError(r.status, parsed);
  }
  const blob = await r.blob();
  const disp = r.headers.get("Content-Disposition") || "";
  const m = /filename="([^"]+)"/.exec(disp);
  const name = (m && m[1]) || fallbackName || "download";
  const url = URL.createObjectURL(blob);
  const a = document.createElement("a");
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60000);
  return {name, etag: r.headers.get("ETag"), bytes: blob.size};
}
