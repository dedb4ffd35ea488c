"""Weight files written by traind, checked from the outside with h5py/numpy.

tests/unit/h5_writer (path in $H5_WRITER) trains a built-in model a few steps
and writes the tf.keras weights-only file, the tf.keras full-model file, the
Keras 3 .weights.h5 file, the resume file and the Keras 3 .keras archive
(zip members read with zipfile), plus raw dumps of the weights
and optimizer slots.  Each file is compared object by object (groups,
datasets, attributes with their HDF5 string types) with a file that a
reference writer produces here by making the same h5py calls Keras makes
(tf.keras legacy hdf5_format: save_weights_to_hdf5_group,
save_model_to_hdf5, save_optimizer_weights_to_hdf5_group; Keras 3
saving_lib H5IOStore), and its values with the dumps.  A numpy forward pass
over the weights read with h5py must give the C model's predictions.
"""
import hashlib
import json
import os
import re
import struct
import subprocess
import zipfile

import h5py
import numpy as np
import pytest

WRITER = os.environ.get("H5_WRITER")


class Run:
    pass


@pytest.fixture(scope="module", params=[("minivggnet", "sgd"), ("lenet", "adam")],
                ids=["minivggnet-sgd", "lenet-adam"])
def run(request, tmp_path_factory):
    if not WRITER or not os.path.exists(WRITER):
        pytest.fail("H5_WRITER must name the h5_writer program (set by meson)")
    model, opt = request.param
    out = tmp_path_factory.mktemp(f"{model}-{opt}")
    subprocess.run([WRITER, str(out), model, opt, "3"], check=True, timeout=300)
    r = Run()
    r.dir = out
    r.meta = json.loads((out / "meta.json").read_text())
    params = np.fromfile(out / "params.bin", dtype="<f4")
    slots = np.fromfile(out / "slots.bin", dtype="<f4")
    r.weights = {}  # (layer, weight) -> array
    r.trainable = []  # [(layer, weight)] in layer order
    for layer in r.meta["layers"]:
        for w in layer["weights"]:
            n = int(np.prod(w["shape"])) if w["shape"] else 1
            r.weights[(layer["name"], w["name"])] = params[w["offset"]:w["offset"] + n].reshape(w["shape"])
            if w["trainable"]:
                r.trainable.append((layer["name"], w["name"]))
    assert sum(a.size for a in r.weights.values()) == params.size
    # slots.bin: slot-major, then trainable weights in layer order.
    r.slots = []
    off = 0
    for _ in r.meta["optimizer"]["slots"]:
        per = {}
        for key in r.trainable:
            shape = r.weights[key].shape
            n = int(np.prod(shape))
            per[key] = slots[off:off + n].reshape(shape)
            off += n
        r.slots.append(per)
    assert off == slots.size
    return r


# --- reference writer: the h5py calls Keras makes ---------------------------------

HDF5_OBJECT_HEADER_LIMIT = 64512


def save_attributes(group, name, data):
    """tf.keras save_attributes_to_hdf5_group with its list stored as the numpy
    array np.asarray(data): fixed-length byte strings ('S<longest>'), as
    h5py 2 stored the list (tf.keras up to 2.4, Keras 2.0-2.3) and as every
    version stores the parts of a list split over the header limit."""
    data_npy = np.asarray(data)
    num_chunks = 1
    chunked = np.array_split(data_npy, num_chunks)
    while any(x.nbytes > HDF5_OBJECT_HEADER_LIMIT for x in chunked):
        num_chunks += 1
        chunked = np.array_split(data_npy, num_chunks)
    if num_chunks > 1:
        for i, part in enumerate(chunked):
            group.attrs["%s%d" % (name, i)] = part
    else:
        group.attrs[name] = data_npy


def ref_weights_group(f, r):
    """tf.keras save_weights_to_hdf5_group."""
    save_attributes(f, "layer_names", [l["name"].encode("utf8") for l in r.meta["layers"]])
    f.attrs["backend"] = "tensorflow".encode("utf8")
    f.attrs["keras_version"] = str(r.meta["keras_version"]).encode("utf8")
    for layer in sorted(r.meta["layers"], key=lambda l: l["name"]):
        g = f.create_group(layer["name"])
        names = [f"{layer['name']}/{w['name']}:0".encode("utf8") for w in layer["weights"]]
        save_attributes(g, "weight_names", names)
        for name, w in zip(names, layer["weights"]):
            val = r.weights[(layer["name"], w["name"])]
            ds = g.create_dataset(name, val.shape, dtype=val.dtype)
            ds[:] = val


def ref_optimizer_names(r):
    cls = r.meta["optimizer"]["class_name"]
    names = [f"{cls}/iter:0"]
    for slot in r.meta["optimizer"]["slots"]:
        names += [f"{cls}/{l}/{w}/{slot}:0" for (l, w) in r.trainable]
    return names


def ref_model_file(f, r, model_config, training_config):
    """tf.keras save_model_to_hdf5 (model_metadata, then weights, then optimizer)."""
    f.attrs["keras_version"] = str(r.meta["keras_version"])
    f.attrs["backend"] = "tensorflow"
    f.attrs["model_config"] = model_config.encode("utf8")
    f.attrs["training_config"] = training_config.encode("utf8")
    ref_weights_group(f.create_group("model_weights"), r)
    og = f.create_group("optimizer_weights")
    names = [n.encode("utf8") for n in ref_optimizer_names(r)]
    save_attributes(og, "weight_names", names)
    values = [np.int64(r.meta["optimizer"]["iterations"])]
    for per in r.slots:
        values += [per[k] for k in r.trainable]
    for name, val in zip(names, values):
        ds = og.create_dataset(name, val.shape, dtype=val.dtype)
        if not val.shape:
            ds[()] = val
        else:
            ds[:] = val


def keras3_keys(r):
    keys, seen = [], {}
    snake = {"Conv2D": "conv2d", "Dense": "dense", "BatchNormalization": "batch_normalization",
             "Activation": "activation", "MaxPooling2D": "max_pooling2d",
             "AveragePooling2D": "average_pooling2d", "Dropout": "dropout", "Flatten": "flatten"}
    for layer in r.meta["layers"]:
        base = snake[layer["class_name"]]
        if base in seen:
            seen[base] += 1
            keys.append(f"{base}_{seen[base]}")
        else:
            seen[base] = 0
            keys.append(base)
    return keys


def ref_keras3_file(f, r, optimizer=True):
    """Keras 3 saving_lib.save_weights_only: H5IOStore/H5Entry for a compiled Sequential."""
    f.create_group("vars")  # the model's own variables: none
    for layer, key in zip(r.meta["layers"], keras3_keys(r)):
        g = f.create_group(f"layers/{key}").create_group("vars")
        for i, w in enumerate(layer["weights"]):
            g[f"{i}"] = r.weights[(layer["name"], w["name"])]
    if not optimizer:
        return
    g = f.create_group("optimizer").create_group("vars")
    values = [np.int64(r.meta["optimizer"]["iterations"]),
              np.float32(r.meta["optimizer"]["learning_rate"])]
    # each optimizer creates its variables per model variable, slot by slot
    # (BaseOptimizer.add_optimizer_variables: for var in var_list: for name in names)
    for k in r.trainable:
        values += [per[k] for per in r.slots]
    for i, v in enumerate(values):
        g[f"{i}"] = v


# --- comparison ----------------------------------------------------------------------

def describe_attr(obj, name):
    a = obj.attrs.get_id(name)
    t, s = a.get_type(), a.get_space()
    d = {"class": t.get_class(), "shape": s.shape, "space": s.get_simple_extent_type()}
    if t.get_class() == h5py.h5t.STRING:
        d["vlen"] = bool(t.is_variable_str())
        d["cset"] = t.get_cset()
        d["strpad"] = t.get_strpad()
        if not t.is_variable_str():
            d["size"] = t.get_size()
    else:
        d["size"] = t.get_size()
    return d


def walk(f):
    items = {"/": f}
    f.visititems(lambda name, obj: items.__setitem__(name, obj))
    return items


def assert_same_file(ours_path, ref_path):
    with h5py.File(ours_path, "r") as ours, h5py.File(ref_path, "r") as ref:
        a, b = walk(ours), walk(ref)
        assert sorted(a) == sorted(b), f"objects differ: only ours {sorted(set(a) - set(b))}, only Keras {sorted(set(b) - set(a))}"
        for name in b:
            oa, ob = a[name], b[name]
            assert type(oa) is type(ob), name
            assert sorted(oa.attrs) == sorted(ob.attrs), f"attributes of {name}"
            for k in ob.attrs:
                assert describe_attr(oa, k) == describe_attr(ob, k), f"type of {name}@{k}"
                va, vb = oa.attrs[k], ob.attrs[k]
                if isinstance(vb, np.ndarray):
                    assert va.dtype == vb.dtype and va.shape == vb.shape, f"{name}@{k}"
                    assert list(va) == list(vb), f"{name}@{k}"
                else:
                    assert va == vb, f"{name}@{k}"
            if isinstance(ob, h5py.Dataset):
                assert oa.shape == ob.shape, name
                assert oa.dtype == ob.dtype, name
                assert oa.id.get_create_plist().get_layout() == h5py.h5d.CONTIGUOUS, name
                assert np.array_equal(oa[()], ob[()]), name


# --- tests ---------------------------------------------------------------------------

def test_tf_weights_file_is_keras_layout(run, tmp_path):
    ref = tmp_path / "ref.h5"
    with h5py.File(ref, "w") as f:
        ref_weights_group(f, run)
    assert_same_file(run.dir / "weights.h5", ref)
    with h5py.File(run.dir / "weights.h5", "r") as f:
        names = [n.decode("utf8") for n in f.attrs["layer_names"]]
        assert names == [l["name"] for l in run.meta["layers"]]
        assert f.attrs["backend"] == "tensorflow"
        for layer in run.meta["layers"]:
            wn = f[layer["name"]].attrs["weight_names"]
            if not layer["weights"]:
                assert wn.dtype == np.float64 and wn.shape == (0,)
                continue
            assert [n.decode("utf8") for n in wn] == [f"{layer['name']}/{w['name']}:0" for w in layer["weights"]]
            for w, n in zip(layer["weights"], wn):
                ds = f[layer["name"]][n]
                assert ds.dtype == np.float32 and list(ds.shape) == w["shape"]
                np.testing.assert_array_equal(ds[()], run.weights[(layer["name"], w["name"])])
            if layer["class_name"] == "Conv2D":
                kh, kw, cin, cout = f[layer["name"]][wn[0]].shape  # HWIO
                assert (kh, kw) == (3, 3) or (kh, kw) == (5, 5)
                assert f[layer["name"]][wn[1]].shape == (cout,)
            if layer["class_name"] == "BatchNormalization":
                assert [w["name"] for w in layer["weights"]] == ["gamma", "beta", "moving_mean", "moving_variance"]


def test_tf_model_file_is_keras_layout(run, tmp_path):
    path = run.dir / "model.hdf5"
    with h5py.File(path, "r") as f:
        model_config = f.attrs["model_config"]
        training_config = f.attrs["training_config"]
    cfg = json.loads(model_config)
    assert cfg["class_name"] == "Sequential"
    layer_cfgs = [l for l in cfg["config"]["layers"] if l["class_name"] != "InputLayer"]
    assert [l["config"]["name"] for l in layer_cfgs] == [l["name"] for l in run.meta["layers"]]
    assert [l["class_name"] for l in layer_cfgs] == [l["class_name"] for l in run.meta["layers"]]
    tc = json.loads(training_config)
    assert tc["loss"] == "categorical_crossentropy"
    assert tc["metrics"] == ["accuracy"]
    assert tc["weighted_metrics"] is None and tc["loss_weights"] is None
    assert tc["optimizer_config"]["class_name"] == run.meta["optimizer"]["class_name"]
    assert abs(tc["optimizer_config"]["config"]["learning_rate"] - run.meta["optimizer"]["learning_rate"]) < 1e-12
    ref = tmp_path / "ref.h5"
    with h5py.File(ref, "w") as f:
        ref_model_file(f, run, model_config, training_config)
    assert_same_file(path, ref)
    with h5py.File(path, "r") as f:
        og = f["optimizer_weights"]
        names = [n.decode("utf8") for n in og.attrs["weight_names"]]
        assert names == ref_optimizer_names(run)
        it = og[names[0]]
        assert it.shape == () and it.dtype == np.int64
        assert int(it[()]) == run.meta["optimizer"]["iterations"] == 3


def test_name_lists_are_fixed_length_byte_strings(run):
    """layer_names and weight_names are numpy 'S' arrays, one byte string per
    name, as wide as the longest (HDF5: fixed-length, NUL-padded ASCII), so
    that the loaders of Keras 2.0-2.3 (which call .decode() on each) read
    them with h5py 3 too."""
    def check(attrs, key, want):
        a = attrs.get_id(key)
        t = a.get_type()
        assert t.get_class() == h5py.h5t.STRING and not t.is_variable_str(), key
        assert t.get_strpad() == h5py.h5t.STR_NULLPAD and t.get_cset() == h5py.h5t.CSET_ASCII, key
        v = attrs[key]
        assert v.dtype.kind == "S" and v.dtype.itemsize == max(len(n.encode()) for n in want), key
        assert t.get_size() == v.dtype.itemsize, key
        assert [n.decode("utf8") for n in v] == want, key  # Keras 2.0-2.3 load_weights

    for path, root in [("weights.h5", "/"), ("model.hdf5", "model_weights"),
                       ("resume.h5", "model_weights")]:
        with h5py.File(run.dir / path, "r") as f:
            g = f[root]
            check(g.attrs, "layer_names", [l["name"] for l in run.meta["layers"]])
            for layer in run.meta["layers"]:
                if layer["weights"]:
                    check(g[layer["name"]].attrs, "weight_names",
                          [f"{layer['name']}/{w['name']}:0" for w in layer["weights"]])
            if root != "/":
                check(f["optimizer_weights"].attrs, "weight_names", ref_optimizer_names(run))


def test_keras3_weights_file_is_keras_layout(run, tmp_path):
    ref = tmp_path / "ref.weights.h5"
    with h5py.File(ref, "w") as f:
        ref_keras3_file(f, run)
    assert_same_file(run.dir / "model.weights.h5", ref)
    with h5py.File(run.dir / "model.weights.h5", "r") as f:
        assert sorted(f.keys()) == ["layers", "optimizer", "vars"]
        assert len(f["vars"]) == 0
        assert len(f["layers"]) == len(run.meta["layers"])
        assert f["optimizer/vars/0"].dtype == np.int64
        assert int(f["optimizer/vars/0"][()]) == 3


def test_resume_file(run, tmp_path):
    path = run.dir / "resume.h5"
    raw = path.read_bytes()
    head = b"TRAIND-H5\nsha256 "
    assert raw.startswith(head)
    assert raw[len(head):len(head) + 64].decode() == hashlib.sha256(raw[512:]).hexdigest()
    assert raw[len(head) + 64:512] == b"\n" + bytes(512 - len(head) - 65)
    with h5py.File(path, "r") as f:
        assert f.userblock_size == 512
        assert int(f.attrs["traind_resume_version"]) == 1
        assert int(f.attrs["epoch"]) == run.meta["epoch"]
        assert json.loads(f.attrs["state_json"]) == json.loads(run.meta["state_json"])
        checksum = f.attrs["traind_checksum"]
        # SHA-256 of the weights in layer order, the trainable optimizer slots
        # (slot-major), iterations and epoch (int64 little-endian), state_json
        want = hashlib.sha256()
        want.update((run.dir / "params.bin").read_bytes())
        want.update((run.dir / "slots.bin").read_bytes())
        want.update(struct.pack("<qq", run.meta["optimizer"]["iterations"], run.meta["epoch"]))
        want.update(run.meta["state_json"].encode("utf-8"))
        assert checksum == want.hexdigest()
        model_config = f.attrs["model_config"]
        training_config = f.attrs["training_config"]
    # Apart from the four resume attributes, it is the tf.keras full-model file.
    ref = tmp_path / "ref.h5"
    with h5py.File(ref, "w") as f:
        ref_model_file(f, run, model_config, training_config)
        f.attrs["traind_resume_version"] = np.int64(1)
        f.attrs["epoch"] = np.int64(run.meta["epoch"])
        f.attrs["state_json"] = run.meta["state_json"]
        f.attrs["traind_checksum"] = checksum.encode("ascii")
    assert_same_file(path, ref)


def test_keras_archive_is_keras_layout(run, tmp_path):
    """model.keras as Keras 3 saving_lib._save_model_to_fileobj writes it: a
    zip (zipfile.ZipFile(f, "w"): members stored) of metadata.json,
    config.json (serialize_keras_object(model)) and model.weights.h5."""
    path = run.dir / "model.keras"
    with zipfile.ZipFile(path) as z:
        assert z.testzip() is None
        infos = z.infolist()
        assert [i.filename for i in infos] == ["metadata.json", "config.json", "model.weights.h5"]
        assert all(i.compress_type == zipfile.ZIP_STORED for i in infos)
        meta = json.loads(z.read("metadata.json"))
        config = json.loads(z.read("config.json"))
        (tmp_path / "inner.weights.h5").write_bytes(z.read("model.weights.h5"))
    assert sorted(meta) == ["date_saved", "keras_version"]
    assert meta["keras_version"].startswith("3.")
    assert re.fullmatch(r"\d{4}-\d\d-\d\d@\d\d:\d\d:\d\d", meta["date_saved"])

    # config.json: every Keras object as module / class_name / config / registered_name
    assert list(config)[:4] == ["module", "class_name", "config", "registered_name"]
    assert (config["module"], config["class_name"], config["registered_name"]) == ("keras", "Sequential", None)
    layers = config["config"]["layers"]
    shape = layers[0]["config"]["batch_shape"]
    assert layers[0]["class_name"] == "InputLayer" and shape[0] is None and len(shape) == 4
    assert "batch_input_shape" not in layers[0]["config"]
    assert config["build_config"] == {"input_shape": shape}
    assert [l["class_name"] for l in layers[1:]] == [l["class_name"] for l in run.meta["layers"]]
    assert [l["config"]["name"] for l in layers[1:]] == [l["name"] for l in run.meta["layers"]]
    n_init = 0
    for l in layers:
        assert list(l)[:4] == ["module", "class_name", "config", "registered_name"]
        assert (l["module"], l["registered_name"]) == ("keras.layers", None)
        for k, v in l["config"].items():
            if k.endswith("_initializer"):
                n_init += 1
                assert (v["module"], v["registered_name"]) == ("keras.initializers", None), k
                assert "class_name" in v and "config" in v
    assert n_init > 0
    cc = config["compile_config"]
    assert cc["optimizer"]["module"] == "keras.optimizers"
    assert cc["optimizer"]["class_name"] == run.meta["optimizer"]["class_name"]
    assert cc["optimizer"]["registered_name"] is None
    assert cc["optimizer"]["config"]["learning_rate"] == pytest.approx(run.meta["optimizer"]["learning_rate"])
    assert cc["loss"] == "categorical_crossentropy" and cc["metrics"] == ["accuracy"]
    assert (cc["run_eagerly"], cc["steps_per_execution"], cc["jit_compile"]) == (False, 1, False)

    # model.weights.h5: the Keras 3 layout of the model's variables, no optimizer
    ref = tmp_path / "ref.weights.h5"
    with h5py.File(ref, "w") as f:
        ref_keras3_file(f, run, optimizer=False)
    assert_same_file(tmp_path / "inner.weights.h5", ref)
    # the same values as the tf.keras weights file of the same step
    with h5py.File(tmp_path / "inner.weights.h5", "r") as inner, \
            h5py.File(run.dir / "weights.h5", "r") as tf:
        for layer, key in zip(run.meta["layers"], keras3_keys(run)):
            for i, w in enumerate(layer["weights"]):
                a = inner[f"layers/{key}/vars/{i}"]
                b = tf[layer["name"]][f"{layer['name']}/{w['name']}:0"]
                assert a.dtype == np.float32 and a.shape == tuple(w["shape"])
                np.testing.assert_array_equal(a[()], b[()])


FILES = ["weights.h5", "model.hdf5", "model.weights.h5", "resume.h5", "model.keras"]


def test_files_load_back_in_c_with_same_predictions(run):
    probs = np.fromfile(run.dir / "reload.bin", dtype="<f4").reshape(len(FILES) + 1, run.meta["batch"], run.meta["classes"])
    for i, name in enumerate(FILES):
        np.testing.assert_array_equal(probs[i], probs[-1], err_msg=name)
    assert np.allclose(probs[-1].sum(axis=1), 1.0, atol=1e-5)


# --- numpy forward pass over the weights read with h5py ---------------------------------

def tf_same_pad(n, k, s):
    out = -(-n // s)
    total = max((out - 1) * s + k - n, 0)
    return total // 2, total - total // 2


def conv2d(x, kernel, bias, strides, padding):
    n, h, w, c = x.shape
    kh, kw, _, co = kernel.shape
    sh, sw = strides
    if padding == "same":
        (pt, pb), (pl, pr) = tf_same_pad(h, kh, sh), tf_same_pad(w, kw, sw)
        x = np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)))
    oh = (x.shape[1] - kh) // sh + 1
    ow = (x.shape[2] - kw) // sw + 1
    out = np.zeros((n, oh, ow, co), dtype=np.float64)
    for i in range(kh):
        for j in range(kw):
            patch = x[:, i:i + sh * oh:sh, j:j + sw * ow:sw, :]
            out += patch @ kernel[i, j].astype(np.float64)
    return out + bias


def pool(x, size, strides, padding, op):
    if padding == "same":
        raise NotImplementedError
    ph, pw = size
    sh, sw = strides
    oh = (x.shape[1] - ph) // sh + 1
    ow = (x.shape[2] - pw) // sw + 1
    win = [x[:, i:i + sh * oh:sh, j:j + sw * ow:sw, :] for i in range(ph) for j in range(pw)]
    return np.max(win, axis=0) if op == "max" else np.mean(win, axis=0)


def activation(x, name):
    if name == "relu":
        return np.maximum(x, 0)
    if name == "softmax":
        e = np.exp(x - x.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)
    if name == "sigmoid":
        return 1 / (1 + np.exp(-x))
    if name == "tanh":
        return np.tanh(x)
    assert name == "linear"
    return x


def numpy_predict(path, x):
    with h5py.File(path, "r") as f:
        cfg = json.loads(f.attrs["model_config"])
        mw = f["model_weights"]

        def weights(name):
            return [mw[name][n][()] for n in mw[name].attrs["weight_names"]]

        for layer in cfg["config"]["layers"]:
            c, kind = layer["config"], layer["class_name"]
            if kind == "InputLayer":
                continue
            if kind == "Conv2D":
                k, b = weights(c["name"])
                x = activation(conv2d(x, k, b, c["strides"], c["padding"]), c["activation"])
            elif kind == "Dense":
                k, b = weights(c["name"])
                x = activation(x @ k.astype(np.float64) + b, c["activation"])
            elif kind == "BatchNormalization":
                g, b, mean, var = weights(c["name"])
                x = (x - mean) / np.sqrt(var.astype(np.float64) + c["epsilon"]) * g + b
            elif kind == "Activation":
                x = activation(x, c["activation"])
            elif kind in ("MaxPooling2D", "AveragePooling2D"):
                x = pool(x, c["pool_size"], c["strides"] or c["pool_size"], c["padding"],
                         "max" if kind == "MaxPooling2D" else "avg")
            elif kind == "Flatten":
                x = x.reshape(x.shape[0], -1)
            elif kind == "Dropout":
                pass
            else:
                raise AssertionError(kind)
    return x


def test_numpy_forward_pass_matches_c_predictions(run):
    b = run.meta["batch"]
    h, w, c = run.meta["input_shape"]
    x = np.fromfile(run.dir / "inputs.bin", dtype="<f4").reshape(b, h, w, c).astype(np.float64)
    probs_c = np.fromfile(run.dir / "reload.bin", dtype="<f4").reshape(len(FILES) + 1, b, run.meta["classes"])[-1]
    probs = numpy_predict(run.dir / "model.hdf5", x)
    np.testing.assert_allclose(probs, probs_c, rtol=1e-3, atol=1e-5)
    assert (probs.argmax(axis=1) == probs_c.argmax(axis=1)).all()
