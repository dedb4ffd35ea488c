# kerasfile.py - reading the weight files of daemon jobs in the integration
# tests: train a job to its best checkpoint and fetch it, read a tf.keras
# weight group layer by layer (checking Keras' names, order and shapes), and
# predict random images with the best checkpoint, against a numpy forward
# pass over its weights.

import io

import h5py
import numpy as np

from conftest import TERMINAL, tiny_spec

# A checkpoint that keeps the weights of the best val_loss in best.hdf5.
BEST_CHECKPOINT = [{"filepath": "best.hdf5", "monitor": "val_loss", "mode": "min",
                    "save_best_only": True}]


def attr_str(v):
    return v.decode() if isinstance(v, bytes) else str(v)


def train_best(daemon, spec, folder):
    """Runs spec (its checkpoint writes the best weights) to success and
    downloads /best into folder/best.hdf5: (job id, path)."""
    c = daemon.client
    job = c.submit(spec)
    final = c.wait_state(job["id"], TERMINAL, daemon=daemon)
    assert final["state"] == "succeeded", final
    r = c.get(f"/v1/jobs/{job['id']}/best")
    assert r.status == 200, r
    path = folder / "best.hdf5"
    path.write_bytes(r.body)
    return job["id"], path


def train_tiny_best(daemon, tmp_path_factory, name, model, epochs=2):
    """tiny_spec training model with BEST_CHECKPOINT, run to success, its
    best weights downloaded into a new temp folder: (daemon, job id, path)."""
    spec = tiny_spec(name=name, model=model, epochs=epochs, checkpoints=BEST_CHECKPOINT)
    job_id, path = train_best(daemon, spec, tmp_path_factory.mktemp(name))
    return daemon, job_id, path


def read_keras_weights(g, layers, weights):
    """{layer: {weight: float64 array}} of the tf.keras weight group g, which
    must hold exactly `layers` (in that order), each with the weights
    weights[layer] = [(name, shape)] (none when absent) named
    "<layer>/<name>:0", float32."""
    assert [attr_str(n) for n in g.attrs["layer_names"]] == layers
    out = {}
    for layer in layers:
        names = [attr_str(n) for n in g[layer].attrs["weight_names"]]
        want = weights.get(layer, [])
        assert names == [f"{layer}/{w}:0" for w, _ in want], (layer, names)
        out[layer] = {}
        for (w, shape), n in zip(want, names):
            ds = g[layer][n]
            assert ds.shape == shape and ds.dtype == np.float32, (n, ds.shape, ds.dtype)
            out[layer][w] = ds[()].astype(np.float64)
    return out


def predict_random_images(daemon, job_id, seed, n):
    """n random 28x28 uint8 images through /predict of the job's best
    checkpoint: (images, float64 probabilities)."""
    x = np.random.default_rng(seed).integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    buf = io.BytesIO()
    np.save(buf, x)
    r = daemon.client.request("POST", f"/v1/jobs/{job_id}/predict?checkpoint=best",
                              body=buf.getvalue(), headers={"Content-Type": "application/x-npy"})
    assert r.status == 200, r
    return x, np.array(r.json()["probabilities"], dtype=np.float64)


def softmax(z):
    """Row-wise softmax of logits (n, classes), float64."""
    z = np.exp(z - z.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def assert_predict_matches(trained, layers, weights, numpy_predict, seed, n):
    """/predict of n random images with the best checkpoint of trained
    (daemon, job id, path) equals numpy_predict(W, images in [0, 1] as
    (n, 28, 28, 1) float64), W read from the checkpoint's model_weights with
    read_keras_weights(layers, weights)."""
    d, job_id, path = trained
    with h5py.File(path, "r") as f:
        W = read_keras_weights(f["model_weights"], layers, weights)
    x, got = predict_random_images(d, job_id, seed=seed, n=n)
    want = numpy_predict(W, x[..., None].astype(np.float64) / 255.0)
    np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-5)
