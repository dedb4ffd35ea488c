// submit.js - the submit page: a JSON editor prefilled with the reference
// job, pickers fed by /v1/models and /v1/datasets, the server's validation
// error shown at the field its JSON pointer names, and the upload of a data
// set (PUT /v1/datasets/{name}) with a progress bar.

import {api, upload} from "./api.js";
import {lineOf, locate} from "./jsonpos.js";
import {clear, el, fmtBytes} from "./util.js";

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
  const uploadPanel = uploadSection({
    onUploaded: (ds) => loadPickers(ds.name).then(() => setField("dataset", ds.name)),
  });
  clear(main).append(el("h1", {}, "Submit a job"), form, uploadPanel);

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

  // Fill the pickers from the server; select wanted (a data set just
  // uploaded) or what the editor names.
  function loadPickers(wanted) {
    return Promise.all([api("GET", "/v1/datasets"), api("GET", "/v1/models")]).then(([ds, models]) => {
      const spec = currentSpec() || {};
      const dsName = wanted || (spec.dataset && typeof spec.dataset === "object" ? spec.dataset.name : spec.dataset);
      fill(dsSelect, names(ds, "datasets"), dsName);
      fill(modelSelect, names(models, "models"), spec.model);
    }).catch((err) => { status.textContent = `Could not load data sets and models: ${err.message}`; });
  }
  loadPickers();

  return () => uploadPanel.cancelUpload();
}

// The upload form: name, file, the options image folders take, a progress
// bar fed by the request's upload events, and the server's error shown at
// the input its field names.
function uploadSection({onUploaded}) {
  const nameInput = el("input", {id: "upload-name", type: "text", required: true, spellcheck: "false",
                                 autocomplete: "off", "aria-describedby": "upload-name-help"});
  const fileInput = el("input", {id: "upload-file", type: "file", required: true,
                                 accept: ".npz,.tar,.tar.gz,.tgz,.zip,.h5,.hdf5"});
  const sizeInput = el("input", {id: "upload-image-size", type: "text", placeholder: "256x256",
                                 spellcheck: "false", autocomplete: "off"});
  const colorSelect = el("select", {id: "upload-color-mode"},
    el("option", {value: ""}, "rgb (default)"), el("option", {value: "grayscale"}, "grayscale"),
    el("option", {value: "rgb"}, "rgb"), el("option", {value: "rgba"}, "rgba"));
  const splitInput = el("input", {id: "upload-validation-split", type: "text", inputmode: "decimal",
                                  placeholder: "0", autocomplete: "off"});
  const inputs = {name: nameInput, body: fileInput, "Content-Type": fileInput, format: fileInput,
                  image_size: sizeInput, color_mode: colorSelect, validation_split: splitInput};
  const bar = el("progress", {id: "upload-progress", max: "1", value: "0", "aria-label": "Upload progress",
                              hidden: true});
  const barText = el("span", {id: "upload-progress-text", class: "progress-text", "aria-live": "polite"});
  const errorBox = el("div", {id: "upload-error", class: "field-error", role: "alert", hidden: true});
  const status = el("p", {id: "upload-status", role: "status", class: "muted"});
  const goBtn = el("button", {type: "submit", id: "upload-start"}, "Upload");
  const stopBtn = el("button", {type: "button", class: "secondary", id: "upload-cancel", disabled: true}, "Cancel upload");
  let current = null;

  const form = el("form", {id: "upload-form", class: "panel upload", novalidate: true},
    el("h2", {}, "Upload a data set"),
    el("p", {class: "muted"}, ".npz as keras.datasets ships them, image folders as .tar, .tar.gz or .zip " +
       "(one folder per class), HDF5, or the CIFAR-10 tarball. Uploaded sets appear in the data set picker."),
    el("div", {class: "upload-fields"},
      el("label", {for: "upload-name"}, "Name", nameInput),
      el("label", {for: "upload-file"}, "File", fileInput),
      el("label", {for: "upload-image-size"}, "Image size (images only)", sizeInput),
      el("label", {for: "upload-color-mode"}, "Colour mode (images only)", colorSelect),
      el("label", {for: "upload-validation-split"}, "Validation split (images only)", splitInput)),
    el("p", {id: "upload-name-help", class: "muted"}, "Letters, digits, '-', '_' and '.'; up to 63."),
    errorBox,
    el("div", {class: "upload-progress"}, bar, barText),
    el("div", {class: "actions"}, goBtn, stopBtn),
    status);

  function clearError() {
    errorBox.hidden = true;
    clear(errorBox);
    for (const i of Object.values(inputs)) i.removeAttribute("aria-invalid");
  }

  function showError(field, message) {
    clearError();
    const input = field ? inputs[field] : null;
    errorBox.append(field ? el("code", {class: "pointer"}, field) : "", field ? ": " : "", message);
    errorBox.dataset.field = field || "";
    errorBox.hidden = false;
    if (input) { input.setAttribute("aria-invalid", "true"); input.focus(); }
  }

  fileInput.addEventListener("change", () => {
    const f = fileInput.files[0];
    if (f && !nameInput.value) nameInput.value = f.name.replace(/\.(tar\.gz|tgz|npz|tar|zip|hdf5|h5)$/i, "")
      .replace(/[^A-Za-z0-9._-]/g, "-").replace(/^\.+/, "").slice(0, 63);
  });
  stopBtn.addEventListener("click", () => { if (current) current.abort(); });

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    clearError();
    const file = fileInput.files[0];
    if (!nameInput.value) { showError("name", "name the data set"); return; }
    if (!file) { showError("body", "choose a file"); return; }
    const q = new URLSearchParams();
    if (sizeInput.value.trim()) q.set("image_size", sizeInput.value.trim());
    if (colorSelect.value) q.set("color_mode", colorSelect.value);
    if (splitInput.value.trim()) q.set("validation_split", splitInput.value.trim());
    const query = q.toString() ? `?${q}` : "";
    bar.hidden = false;
    bar.value = 0;
    goBtn.disabled = true;
    stopBtn.disabled = false;
    status.textContent = `Uploading ${file.name}…`;
    current = upload(`/v1/datasets/${encodeURIComponent(nameInput.value)}${query}`, file, (sent, total) => {
      bar.max = Math.max(total, 1);
      bar.value = sent;
      barText.textContent = `${fmtBytes(sent)} of ${fmtBytes(total)}` +
        (sent >= total ? " sent; the server converts it…" : "");
    });
    try {
      const ds = await current.done;
      bar.value = bar.max;
      barText.textContent = `${fmtBytes(file.size)} uploaded`;
      status.textContent = `Data set ${ds.name}: ${ds.train} training and ${ds.test} test examples, ` +
        `shape ${(ds.input_shape || []).join("×")}, ` +
        (ds.targets && ds.targets.kind === "float32"
          ? `${ds.targets.shape[0]} float regression targets per example`
          : `${(ds.classes || []).length} classes`);
      status.className = "ok-msg";
      form.dataset.uploaded = ds.name;
      await onUploaded(ds);
    } catch (err) {
      status.textContent = "";
      status.className = "muted";
      // the name is the only part of the path the form sets
      showError(err.field || (err.code === "invalid_path" ? "name" : null), err.message);
    } finally {
      current = null;
      goBtn.disabled = false;
      stopBtn.disabled = true;
    }
  });
  form.cancelUpload = () => { if (current) current.abort(); };
  return form;
}
