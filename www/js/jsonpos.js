// jsonpos.js - where a JSON pointer (RFC 6901, "/checkpoints/0/monitor")
// points in a JSON text: the offsets of the member's key and value, so the
// editor can select the field a server error names.  A small scanner over
// well-formed JSON (the text was parsed before it was sent).

function unescape(tok) {
  return tok.replace(/~1/g, "/").replace(/~0/g, "~");
}

export function pointerTokens(pointer) {
  if (!pointer) return [];
  return pointer.split("/").slice(1).map(unescape);
}

// -> {start, end, keyStart} of the deepest existing location on the path
//    and found (true when the whole pointer exists).
export function locate(text, pointer) {
  const tokens = pointerTokens(pointer);
  let i = 0;
  const ws = () => { while (i < text.length && /\s/.test(text[i])) i++; };
  function skipString() {
    i++; // opening quote
    while (i < text.length && text[i] !== '"') i += text[i] === "\\" ? 2 : 1;
    i++;
  }
  function readString() {
    const s = i;
    skipString();
    return JSON.parse(text.slice(s, i));
  }
  function skipValue() {
    ws();
    const c = text[i];
    if (c === '"') { skipString(); return; }
    if (c === "{" || c === "[") {
      const close = c === "{" ? "}" : "]";
      i++;
      ws();
      if (text[i] === close) { i++; return; }
      for (;;) {
        ws();
        if (c === "{") { skipString(); ws(); i++; }
        skipValue();
        ws();
        if (text[i] === ",") { i++; continue; }
        i++; // close
        return;
      }
    }
    while (i < text.length && !/[\s,\]}]/.test(text[i])) i++;
  }
  ws();
  let best = {start: i, end: i, keyStart: i};
  const valueEnd = () => { const s = i; skipValue(); const e = i; i = s; return e; };
  best.end = valueEnd();
  for (const tok of tokens) {
    ws();
    const open = text[i];
    if (open !== "{" && open !== "[") return {...best, found: false};
    const close = open === "{" ? "}" : "]";
    i++;
    let found = false;
    for (let k = 0; ; k++) {
      ws();
      if (text[i] === close) break;
      const keyStart = i;
      let key = String(k);
      if (open === "{") {
        key = readString();
        ws(); i++; ws(); // colon
      }
      if (key === tok) {
        best = {start: i, end: valueEnd(), keyStart};
        found = true;
        break;
      }
      skipValue();
      ws();
      if (text[i] !== ",") break;
      i++;
    }
    if (!found) return {...best, found: false};
  }
  return {...best, found: true};
}

// 1-based line of offset in text.
export function lineOf(text, offset) {
  let n = 1;
  for (let k = 0; k < offset && k < text.length; k++) if (text[k] === "\n") n++;
  return n;
}
