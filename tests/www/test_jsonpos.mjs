// test_jsonpos.mjs - www/js/jsonpos.js (where a JSON pointer points in a
// JSON text, for the submit page's field errors), run by node's test runner.
import assert from "node:assert/strict";
import {test} from "node:test";

import {lineOf, locate, pointerTokens} from "../../www/js/jsonpos.js";

const text = JSON.stringify({
  name: "x", epochs: 0,
  checkpoints: [{filepath: "w-{epoch}.h5", mode: "sideways"}, {mode: "min", monitor: "a/b"}],
  "a/b": {"~k": [1, [2, 3]], "": true},
  s: "a \"quoted\" } ] , string",
}, null, 2);

const slice = (p) => {
  const l = locate(text, p);
  return [l.found, text.slice(l.keyStart, l.end)];
};

test("pointer tokens unescape ~1 and ~0", () => {
  assert.deepEqual(pointerTokens("/a~1b/~0k/0"), ["a/b", "~k", "0"]);
  assert.deepEqual(pointerTokens(""), []);
  assert.deepEqual(pointerTokens("/"), [""]);
});

test("members of objects and arrays, key through value", () => {
  assert.deepEqual(slice("/epochs"), [true, '"epochs": 0']);
  assert.deepEqual(slice("/checkpoints/0/mode"), [true, '"mode": "sideways"']);
  assert.deepEqual(slice("/checkpoints/1/monitor"), [true, '"monitor": "a/b"']);
  assert.deepEqual(slice("/a~1b/~0k/1/0"), [true, "2"]);
  assert.deepEqual(slice("/a~1b/"), [true, '"": true']);
  assert.deepEqual(slice("/s"), [true, '"s": "a \\"quoted\\" } ] , string"']);
});

test("the whole text for the root pointer", () => {
  assert.deepEqual(slice(""), [true, text]);
});

test("a missing member gives the deepest existing parent", () => {
  assert.deepEqual(slice("/checkpoints/7"), [false, text.slice(text.indexOf('"checkpoints"'), text.indexOf("],") + 1)]);
  assert.equal(slice("/nothing")[0], false);
  assert.deepEqual(slice("/epochs/x"), [false, '"epochs": 0']);
});

test("line numbers are 1-based", () => {
  const l = locate(text, "/checkpoints/0/mode");
  assert.equal(lineOf(text, l.keyStart), text.slice(0, l.keyStart).split("\n").length);
  assert.equal(lineOf(text, 0), 1);
});
