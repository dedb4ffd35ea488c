# test_api_callbacks.py - Keras callbacks, optimizers and learning-rate
# schedules through the HTTP API of the real daemon: a job with
# ReduceLROnPlateau reports each reduction as an lr_changed event with Keras'
# line and trains on at the float32 rate; the echoed spec has every default
# filled in; bad callback, optimizer and schedule fields are 400s naming the
# field as a JSON pointer.

import json
import socket
import struct
import time

import pytest

from conftest import assert_error, event_fields, long_spec, tiny_spec


def f32(x):
    """x rounded to float32, as Keras keeps the learning rate."""
    return struct.unpack("f", struct.pack("f", x))[0]


def py_repr(x):
    return repr(float(x))


@pytest.fixture(scope="module")
def plateau_job(module_traind):
    """RMSprop with ReduceLROnPlateau that never sees an improvement after
    epoch 1 (min_delta 100): Keras reduces at epochs 2, 3 and 4."""
    c = module_traind.client
    spec = tiny_spec(name="plateau", epochs=4,
                     optimizer={"name": "rmsprop", "learning_rate": 0.001, "centered": True},
                     callbacks={"reduce_lr_on_plateau": {"monitor": "loss", "min_delta": 100,
                                                         "patience": 1, "factor": 0.5},
                                "terminate_on_nan": True})
    job = c.submit(spec)
    c.wait_state(job["id"], "succeeded", daemon=module_traind)
    return job["id"]


def test_lr_changed_events(module_traind, plateau_job):
    r, events = module_traind.client.events(plateau_job, "?after=0", ndjson=True)
    assert r.status == 200
    changes = [event_fields(e) for e in events if e["type"] == "lr_changed"]
    assert [e["epoch"] for e in changes] == [2, 3, 4]
    lr = 0.001
    for e in changes:
        old = f32(lr)
        new = old * 0.5  # numpy.float32 * Python float is a float64 in Keras
        assert e["source"] == "ReduceLROnPlateau"
        assert e["message"] == (f"Epoch {e['epoch']}: ReduceLROnPlateau reducing learning "
                                f"rate to {py_repr(new)}.")
        assert e["previous"] == old and e["lr"] == f32(new)
        lr = f32(new)
    ends = [event_fields(e) for e in events if e["type"] == "epoch_end"]
    # epochs 1 and 2 train at 0.001; each later epoch at the rate the previous one set
    assert [e["lr"] for e in ends] == [0.001, 0.001] + [c["lr"] for c in changes][:2]
    assert not [e for e in events if e["type"] == "terminate_on_nan"]


def test_spec_echo_fills_defaults(module_traind, plateau_job):
    job = module_traind.client.job(plateau_job)
    cbs = job["spec"]["callbacks"]
    assert cbs["reduce_lr_on_plateau"] == {"monitor": "loss", "factor": 0.5, "patience": 1,
                                           "mode": "auto", "min_delta": 100, "cooldown": 0,
                                           "min_lr": 0, "verbose": 0}
    assert cbs["early_stopping"] is None and cbs["lr_scheduler"] is None
    assert cbs["terminate_on_nan"] is True
    opt = job["spec"]["optimizer"]
    assert opt["name"] == "rmsprop" and opt["rho"] == 0.9 and opt["centered"] is True
    assert opt["clipnorm"] is None and opt["weight_decay"] is None


SCHEDULE = {"module": "keras.optimizers.schedules", "class_name": "ExponentialDecay",
            "config": {"initial_learning_rate": 0.01, "decay_steps": 0, "decay_rate": 0.5,
                       "staircase": False, "name": "ExponentialDecay"},
            "registered_name": None}


@pytest.mark.parametrize("change,field", [
    ({"callbacks": {"reduce_lr_on_plateau": {"factor": 1.5}}},
     "/callbacks/reduce_lr_on_plateau/factor"),
    ({"callbacks": {"reduce_lr_on_plateau": {"monitor": "val_f1"}}},
     "/callbacks/reduce_lr_on_plateau/monitor"),
    ({"callbacks": {"early_stopping": {"start_from_epoch": -2}}},
     "/callbacks/early_stopping/start_from_epoch"),
    ({"callbacks": {"lr_scheduler": {"schedule": "step_decay", "factor": 0.5,
                                     "drop_every": 5}}},
     "/callbacks/lr_scheduler/initial_learning_rate"),
    ({"callbacks": {"terminate_on_nan": "yes"}}, "/callbacks/terminate_on_nan"),
    ({"optimizer": {"name": "sgd", "learning_rate": SCHEDULE}},
     "/optimizer/learning_rate/config/decay_steps"),
    ({"optimizer": {"name": "adam", "clipnorm": 1, "clipvalue": 1}}, "/optimizer/clipnorm"),
    ({"optimizer": {"name": "adagrad", "momentum": 0.9}}, "/optimizer/momentum"),
    ({"optimizer": {"name": "lion"}}, "/optimizer/name"),
    ({"loss": "binary_crossentropy"}, "/loss"),
    ({"metrics": ["f1_score"]}, "/metrics/0"),
    ({"metrics": ["sparse_categorical_accuracy"],
      "callbacks": {"early_stopping": {"monitor": "val_accuracy"}}},
     "/callbacks/early_stopping/monitor"),
])
def test_bad_fields_are_400(module_traind, change, field):
    r = module_traind.client.post("/v1/jobs", tiny_spec(**change))
    assert_error(r, 400, field=field)


def test_progress_events_carry_running_logs(traind):
    """Live progress events (rate-limited, not stored) carry the epoch's
    running loss and every metric: read the stream until one arrives."""
    c = traind.client
    job = c.submit(long_spec(metrics=["accuracy", "mae"]))
    c.wait_state(job["id"], "running", daemon=traind)
    s = socket.create_connection(("127.0.0.1", traind.port), timeout=60)
    found = None
    try:
        s.sendall(f"GET /v1/jobs/{job['id']}/events?after=0 HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                  f"Accept: application/x-ndjson\r\nConnection: close\r\n\r\n".encode())
        buf = b""
        deadline = time.monotonic() + 120
        while found is None and time.monotonic() < deadline:
            part = s.recv(65536)
            if not part:
                break
            buf += part
            *lines, buf = buf.split(b"\n")
            for line in lines:
                line = line.strip()
                if line.startswith(b"{"):
                    e = json.loads(line)
                    if e.get("type") == "progress":
                        found = event_fields(e)
                        break
    finally:
        s.close()
    c.post(f"/v1/jobs/{job['id']}/cancel")
    c.wait_state(job["id"], "cancelled", timeout=60, daemon=traind)
    assert found is not None, "no progress event"
    assert set(found["logs"]) == {"loss", "accuracy", "mae"}, found
    assert found["logs"]["loss"] > 0 and 0 <= found["logs"]["accuracy"] <= 1
    assert 0 < found["logs"]["mae"] < 1  # softmax outputs against one-hot rows
    assert 1 <= found["batch"] <= found["batches"]


def test_metric_names_its_log_keys(module_traind):
    """compile()'s metric names the logs as Keras does: epoch_end logs,
    checkpoint filepath templates and monitors use
    val_sparse_categorical_accuracy; the echoed spec has loss and metrics."""
    c = module_traind.client
    spec = tiny_spec(name="sparse", epochs=3, loss="sparse_categorical_crossentropy",
                     metrics=["sparse_categorical_accuracy"],
                     checkpoints=[{"filepath": "w-{epoch:02d}-{val_sparse_categorical_accuracy:.4f}"
                                               ".weights.h5",
                                   "monitor": "val_sparse_categorical_accuracy",
                                   "save_weights_only": True}],
                     callbacks={"early_stopping": {"monitor": "val_sparse_categorical_accuracy",
                                                   "patience": 5}})
    job = c.submit(spec)
    c.wait_state(job["id"], "succeeded", daemon=module_traind)
    r, events = c.events(job["id"], "?after=0", ndjson=True)
    assert r.status == 200
    ends = [event_fields(e) for e in events if e["type"] == "epoch_end"]
    assert len(ends) == 3
    for e in ends:
        assert set(e["logs"]) == {"loss", "sparse_categorical_accuracy", "val_loss",
                                  "val_sparse_categorical_accuracy"}, e
    saved = [event_fields(e) for e in events if e["type"] == "checkpoint"]
    assert [e["epoch"] for e in saved] == [1, 2, 3]
    for e, end in zip(saved, ends):
        v = end["logs"]["val_sparse_categorical_accuracy"]
        assert e["file"] == f"w-{end['epoch']:02d}-{v:.4f}.weights.h5"
        assert e["monitor"] == "val_sparse_categorical_accuracy"
    echo = c.job(job["id"])["spec"]
    assert echo["loss"] == "sparse_categorical_crossentropy"
    assert echo["metrics"] == ["sparse_categorical_accuracy"]
    assert echo["callbacks"]["early_stopping"]["monitor"] == "val_sparse_categorical_accuracy"
