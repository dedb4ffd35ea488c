// submit.js - the submit page: a JSON editor prefilled with the reference
// job, pickers fed by /v1/models and /v1/datasets, and the server's
// validation error shown at the field its JSON pointer names.

import {api} from "./api.js";
import {lineOf, locate} from "./jsonpos.js";
import {clear, el} from "./util.js";

// The reference job (README, DESIGN.md): MiniVGGNet on Fashion-MNIST.
export const REFERENCE_JOB = {
  name: "fashion-minivggnet",
  dataset: "fashion-mnist",
  model: "minivggnet",
  optimizer: {name: "sgd", learning_rate: 0.01, decay: 0.00025, momentum: 0.9, nesterov: true},
  batch_size: 64,
  epochs: 40,
  seed: 1,
  checkpoints: [{filepath: "weights-{epoch:03d}-{val_loss:.4f}.hdf5", monitor: "val_loss",
                 mode: "min", save_best_only: true, verbose: 1}],
};

function names(body, key) {
  const items = Array.isArray(body) ? body : (body && body[key]) || [];
  return items.map((x) => (typeof x === "string" ? x : x.name)).filter(Boolean);
}

export function submitPage(main, {navigate}) {
  const editor = el("textarea", {id: "spec", spellcheck: "false", "aria-describedby": "spec-help spec-error",
                                 autocomplete: "off", autocapitalize: "off"});
  editor.value = JSON.stringify(REFERENCE_JOB, null, 2);
  const errorBox = el("div", {id: "spec-error", class: "field-error", role: "alert", hidden: true});
  const dsSelect = el("select", {id: "pick-dataset", "aria-describedby": "pick-dataset-error"});
  const modelSelect = el("select", {id: "pick-model", "aria-describedby": "pick-model-error"});
  const dsError = el("div", {id: "pick-dataset-error", class: "field-error", hidden: true});
  const modelError = el("div", {id: "pick-model-error", class: "field-error", hidden: true});
  const submitBtn = el("button", {type: "submit", id: "submit-job"}, "Submit job");
  const resetBtn = el("button", {type: "button", class: "secondary", id: "reset-job"}, "Reference job");
  const status = el("p", {id: "submit-status", role: "status", class: "muted"});

  const form = el("form", {id: "submit-form", novalidate: true},
    el("div", {class: "editor-row"},
      el("div", {},
        el("label", {for: "spec"}, el("strong", {}, "Job spec (JSON)")),
        el("p", {id: "spec-help", class: "muted"},
           "Keras vocabulary; unknown fields are rejected. The server checks every field."),
        errorBox, editor),
      el("div", {class: "pickers panel"},
        el("label", {for: "pick-dataset"}, "Data set", dsSelect), dsError,
        el("label", {for: "pick-model"}, "Model", modelSelect), modelError,
        el("div", {class: "actions"}, submitBtn, resetBtn),
        status)));
  clear(main).append(el("h1", {}, "Submit a job"), form);

  function currentSpec() {
    try { return JSON.parse(editor.value); } catch { return null; }
  }

  function setField(key, value) {
    const spec = currentSpec();
    if (!spec || typeof spec !== "object" || Array.isArray(spec)) {
      showError(null, "the editor does not hold a JSON object; fix it before using the pickers");
      return;
    }
    if (key === "dataset" && spec.dataset && typeof spec.dataset === "object") spec.dataset.name = value;
    else spec[key] = value;
    editor.value = JSON.stringify(spec, null, 2);
    clearError();
  }

  function fill(select, values, current) {
    clear(select).append(...values.map((v) => el("option", {value: v}, v)));
    if (values.includes(current)) select.value = current;
  }

  function clearError() {
    errorBox.hidden = true;
    clear(errorBox);
    dsError.hidden = modelError.hidden = true;
    editor.removeAttribute("aria-invalid");
    delete editor.dataset.errorPointer;
  }

  // Show message at pointer: the box above the editor names the pointer and
  // line, the editor selects the member, a picker shows it too.
  function showError(pointer, message) {
    clearError();
    const text = editor.value;
    let where = "";
    if (pointer !== null && pointer !== undefined) {
      const loc = locate(text, pointer);
      where = ` (line ${lineOf(text, loc.keyStart)})`;
      editor.setAttribute("aria-invalid", "true");
      editor.dataset.errorPointer = pointer;
      editor.focus();
      editor.setSelectionRange(loc.keyStart, loc.end);
      // scroll the selection into view: the line's share of the height
      const lines = text.split("\n").length;
      editor.scrollTop = Math.max(0, (lineOf(text, loc.keyStart) - 3) / lines * editor.scrollHeight);
      errorBox.append(el("code", {class: "pointer"}, pointer || "/"), ": ", message, where);
      errorBox.dataset.pointer = pointer;
      const top = pointer.split("/")[1];
      const picker = top === "dataset" ? dsError : top === "model" ? modelError : null;
      if (picker) { picker.textContent = message; picker.hidden = false; }
    } else {
      errorBox.append(message);
      errorBox.dataset.pointer = "";
    }
    errorBox.hidden = false;
  }

  dsSelect.addEventListener("change", () => setField("dataset", dsSelect.value));
  modelSelect.addEventListener("change", () => setField("model", modelSelect.value));
  resetBtn.addEventListener("click", () => { editor.value = JSON.stringify(REFERENCE_JOB, null, 2); clearError(); });

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    clearError();
    try {
      JSON.parse(editor.value);
    } catch (err) {
      showError(null, `not valid JSON: ${err.message}`);
      editor.focus();
      return;
    }
    submitBtn.disabled = true;
    status.textContent = "Submitting…";
    try {
      const job = await api("POST", "/v1/jobs", editor.value);
      status.textContent = `Submitted ${job.id}`;
      navigate(`#/jobs/${job.id}`);
    } catch (err) {
      status.textContent = "";
      showError(err.field, err.message);
    } finally {
      submitBtn.disabled = false;
    }
  });

  Promise.all([api("GET", "/v1/datasets"), api("GET", "/v1/models")]).then(([ds, models]) => {
    const spec = currentSpec() || {};
    const dsName = spec.dataset && typeof spec.dataset === "object" ? spec.dataset.name : spec.dataset;
    fill(dsSelect, names(ds, "datasets"), dsName);
    fill(modelSelect, names(models, "models"), spec.model);
  }).catch((err) => { status.textContent = `Could not load data sets and models: ${err.message}`; });

  return () => {};
}
