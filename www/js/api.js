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

// Upload a file as PUT path's body with XMLHttpRequest, whose upload
// events give the progress fetch cannot: onProgress(sent, total) as bytes
// leave.  Resolves to the parsed JSON answer, rejects with ApiError (status
// 0 with code "network" when the connection fails).  Returns
// {done, abort} so the page can offer a cancel button.
export function upload(path, file, onProgress) {
  const xhr = new XMLHttpRequest();
  const done = new Promise((resolve, reject) => {
    xhr.open("PUT", path);
    for (const [k, v] of Object.entries(authHeaders({Accept: "application/json"}))) xhr.setRequestHeader(k, v);
    xhr.setRequestHeader("Content-Type", "application/octet-stream");
    xhr.upload.addEventListener("progress", (e) => onProgress(e.loaded, e.lengthComputable ? e.total : file.size));
    xhr.addEventListener("load", () => {
      let parsed = null;
      try { parsed = xhr.responseText ? JSON.parse(xhr.responseText) : null; } catch { parsed = null; }
      if (xhr.status >= 200 && xhr.status < 300) { resolve(parsed); return; }
      if (xhr.status === 401) window.dispatchEvent(new CustomEvent("traind-unauthorized"));
      reject(new ApiError(xhr.status, parsed));
    });
    const fail = (what) => () => {
      const e = new ApiError(0, {error: {code: "network", message: what}});
      reject(e);
    };
    xhr.addEventListener("error", fail("the upload failed (connection closed)"));
    xhr.addEventListener("abort", fail("upload cancelled"));
    xhr.send(file);
  });
  return {done, abort: () => xhr.abort()};
}
