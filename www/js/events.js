// events.js - follow a job's Server-Sent Events with fetch (so that the
// token goes in the Authorization header, never in the URL) and reconnect
// with Last-Event-ID after a network drop or a daemon restart.
//
// Only stored events move the resume point: "progress" events are not
// written to events.ndjson, so after a restart their sequence numbers are
// given out again; resuming after a progress event could skip a stored
// event.  Stored events already seen are dropped by sequence number, so a
// replay never doubles a point.

import {authHeaders} from "./api.js";

const TERMINAL = new Set(["succeeded", "failed", "cancelled"]);

export class EventStream {
  // onEvent(ev) for every new event; onStatus({state, reconnects, lastId})
  constructor(jobId, {onEvent, onStatus}) {
    this.jobId = jobId;
    this.onEvent = onEvent;
    this.onStatus = onStatus || (() => {});
    this.lastId = 0;          // last stored event seen (the resume point)
    this.seen = new Set();    // seqs of stored events delivered
    this.reconnects = 0;
    this.finished = false;
    this.stopped = false;
    this.controller = null;
    this.delay = 500;
  }

  start() {
    this.loop();
    return this;
  }

  stop() {
    this.stopped = true;
    if (this.controller) this.controller.abort();
  }

  status(state) {
    this.onStatus({state, reconnects: this.reconnects, lastId: this.lastId});
  }

  async loop() {
    while (!this.stopped && !this.finished) {
      try {
        this.status(this.reconnects ? "reconnecting" : "connecting");
        await this.once();
      } catch (e) {
        if (this.stopped) return;
      }
      if (this.stopped || this.finished) break;
      this.reconnects++;
      this.status("reconnecting");
      await new Promise((res) => setTimeout(res, this.delay));
      this.delay = Math.min(this.delay * 2, 4000);
    }
    if (this.finished) this.status("ended");
  }

  async once() {
    this.controller = new AbortController();
    const headers = authHeaders({Accept: "text/event-stream"});
    if (this.lastId > 0) headers["Last-Event-ID"] = String(this.lastId);
    const r = await fetch(`/v1/jobs/${this.jobId}/events`,
                          {headers, cache: "no-store", signal: this.controller.signal});
    if (r.status === 404 || r.status === 401) {
      // nothing to follow (deleted job, wrong token): stop, say why
      this.finished = true;
      this.status(r.status === 404 ? "gone" : "unauthorized");
      if (r.status === 401) window.dispatchEvent(new CustomEvent("traind-unauthorized"));
      return;
    }
    if (!r.ok || !r.body) throw new Error(`HTTP ${r.status}`);
    this.status("live");
    this.delay = 500;
    const reader = r.body.getReader();
    const decoder = new TextDecoder();
    let buf = "";
    for (;;) {
      const {value, done} = await reader.read();
      if (done) break;
      buf += decoder.decode(value, {stream: true});
      let cut;
      while ((cut = buf.search(/\r?\n\r?\n/)) >= 0) {
        const frame = buf.slice(0, cut);
        buf = buf.slice(cut).replace(/^\r?\n\r?\n/, "");
        this.frame(frame);
      }
    }
    // the server ends the stream after the terminal state; anything else
    // is a drop and the loop reconnects
  }

  frame(text) {
    let data = "";
    let type = "message";
    for (const line of text.split(/\r?\n/)) {
      if (!line || line.startsWith(":")) continue;
      const i = line.indexOf(":");
      const field = i < 0 ? line : line.slice(0, i);
      let value = i < 0 ? "" : line.slice(i + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (field === "data") data += (data ? "\n" : "") + value;
      else if (field === "event") type = value;
    }
    if (!data) return;
    let ev;
    try { ev = JSON.parse(data); } catch { return; }
    if (!ev.type) ev.type = type;
    const stored = ev.type !== "progress";
    if (stored) {
      if (this.seen.has(ev.seq)) return;
      this.seen.add(ev.seq);
      if (ev.seq > this.lastId) this.lastId = ev.seq;
    }
    this.onEvent(ev);
    if (ev.type === "state" && TERMINAL.has(ev.state)) this.finished = true;
  }
}
