# kerasfile.py - reading the weight files of daemon jobs in the integration
# tests: train a job to its best checkpoint and fetch it, read a tf.keras
# weight group layer by layer (checking Keras' names, order and shapes), and
# predict random images with the best checkpoint.

import io

import numpy as np

from conftest import TERMINAL


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
