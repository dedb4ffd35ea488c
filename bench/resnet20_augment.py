#!/usr/bin/python3
"""resnet20_augment - He et al.'s CIFAR ResNet-20 behind RandomFlip and
RandomTranslation, trained on Fashion-MNIST: the accuracy benchmark of the
functional-model work (bar: val_accuracy >= 0.935 within 30 epochs).

Writes the model as Keras 3 prints it with `model.to_json()` (the built-in
`resnet20`'s layers, in Keras' order and auto names, with the two
augmentation layers after the input), runs it with `traind run` and prints
each epoch's val_accuracy, val_loss and wall time, then one JSON line with the
series, the first epoch reaching the bar and the CPU.

Recipe (a usual one for ResNet-20): SGD momentum 0.9 Nesterov, the
learning rate a Keras 3 CosineDecay from --lr to 0 over all steps, Keras 3's
decoupled weight_decay, batch 128, RandomFlip("horizontal"),
RandomTranslation(0.1, 0.1) with Keras 3's default fill (reflect).

    bench/resnet20_augment.py [--build build] [--epochs 30] [--threads 2]
                              [--lr 0.05] [--weight-decay 2e-4]
                              [--batch-size 128] [--seed 1] [--workdir DIR]
                              [--print-model]
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EPOCH_LINE = re.compile(r"val_loss: ([0-9.]+) - val_accuracy: ([0-9.]+)")
BAR = 0.935
TRAIN_IMAGES = 60000


class Graph:
    """Keras 3 functional config under construction: auto names per class
    as Keras gives them (conv2d, conv2d_1, ...)."""

    def __init__(self, shape):
        self.layers = []
        self.used = {}
        self.shape = {}
        name = self._name("input_layer")
        self.layers.append({"module": "keras.layers", "class_name": "InputLayer",
                            "config": {"batch_shape": [None] + shape, "dtype": "float32",
                                       "sparse": False, "name": name},
                            "registered_name": None, "name": name, "inbound_nodes": []})
        self.shape[name] = shape
        self.input = name

    def _name(self, base):
        n = self.used.get(base, 0)
        self.used[base] = n + 1
        return base if n == 0 else f"{base}_{n}"

    def _tensor(self, src):
        return {"class_name": "__keras_tensor__",
                "config": {"shape": [None] + self.shape[src], "dtype": "float32",
                           "keras_history": [src, 0, 0]}}

    def add(self, class_name, base, config, inputs, out_shape):
        name = self._name(base)
        cfg = {"name": name, "trainable": True,
               "dtype": {"module": "keras", "class_name": "DTypePolicy",
                         "config": {"name": "float32"}, "registered_name": None}}
        cfg.update(config)
        args = ([self._tensor(s) for s in inputs],) if len(inputs) > 1 else (self._tensor(inputs[0]),)
        self.layers.append({"module": "keras.layers", "class_name": class_name, "config": cfg,
                            "registered_name": None,
                            "build_config": {"input_shape": [None] + self.shape[inputs[0]]},
                            "name": name,
                            "inbound_nodes": [{"args": list(args), "kwargs": {}}]})
        self.shape[name] = out_shape
        return name

    def conv(self, src, filters, kernel, stride):
        h, w, _ = self.shape[src]
        out = [(h + stride - 1) // stride, (w + stride - 1) // stride, filters]
        return self.add("Conv2D", "conv2d", {
            "filters": filters, "kernel_size": [kernel, kernel], "strides": [stride, stride],
            "padding": "same", "data_format": "channels_last", "dilation_rate": [1, 1],
            "groups": 1, "activation": "linear", "use_bias": True,
            "kernel_initializer": {"module": "keras.initializers", "class_name": "GlorotUniform",
                                   "config": {"seed": None}, "registered_name": None},
            "bias_initializer": {"module": "keras.initializers", "class_name": "Zeros",
                                 "config": {}, "registered_name": None},
            "kernel_regularizer": None, "bias_regularizer": None, "activity_regularizer": None,
            "kernel_constraint": None, "bias_constraint": None}, [src], out)

    def bn(self, src):
        return self.add("BatchNormalization", "batch_normalization",
                        {"axis": -1, "momentum": 0.99, "epsilon": 0.001, "center": True,
                         "scale": True}, [src], self.shape[src])

    def relu(self, src):
        return self.add("Activation", "activation", {"activation": "relu"}, [src],
                        self.shape[src])

    def model(self, output):
        return {"module": "keras.src.models.functional", "class_name": "Functional",
                "config": {"name": "functional", "trainable": True, "layers": self.layers,
                           "input_layers": [[self.input, 0, 0]],
                           "output_layers": [[output, 0, 0]]},
                "registered_name": "Functional"}


def resnet20_augmented(shape, classes):
    """The built-in resnet20 (core/model_builtin.c) with RandomFlip and
    RandomTranslation after the input; Keras creates the layers in this
    order, which fixes the auto names."""
    g = Graph(shape)
    x = g.add("RandomFlip", "random_flip",
              {"seed": None, "mode": "horizontal", "data_format": "channels_last"},
              [g.input], shape)
    x = g.add("RandomTranslation", "random_translation",
              {"height_factor": 0.1, "width_factor": 0.1, "fill_mode": "reflect",
               "interpolation": "bilinear", "seed": None, "fill_value": 0.0,
               "data_format": "channels_last"}, [x], shape)
    x = g.relu(g.bn(g.conv(x, 16, 3, 1)))
    for stage in range(3):
        filters = 16 << stage
        for block in range(3):
            project = stage > 0 and block == 0
            y = g.relu(g.bn(g.conv(x, filters, 3, 2 if project else 1)))
            y = g.conv(y, filters, 3, 1)
            shortcut = g.conv(x, filters, 1, 2) if project else x
            y = g.bn(y)
            x = g.relu(g.add("Add", "add", {}, [shortcut, y], g.shape[y]))
    x = g.add("GlobalAveragePooling2D", "global_average_pooling2d",
              {"data_format": "channels_last", "keepdims": False}, [x], [g.shape[x][2]])
    out = g.add("Dense", "dense", {
        "units": classes, "activation": "softmax", "use_bias": True,
        "kernel_initializer": {"module": "keras.initializers", "class_name": "GlorotUniform",
                               "config": {"seed": None}, "registered_name": None},
        "bias_initializer": {"module": "keras.initializers", "class_name": "Zeros",
                             "config": {}, "registered_name": None}}, [x], [classes])
    return g.model(out)


def job_spec(args):
    steps = args.epochs * -(-TRAIN_IMAGES // args.batch_size)
    return {
        "name": "resnet20-augment",
        "dataset": "fashion-mnist",
        "model": resnet20_augmented([28, 28, 1], 10),
        "optimizer": {"name": "sgd", "momentum": 0.9, "nesterov": True,
                      "weight_decay": args.weight_decay,
                      "learning_rate": {"module": "keras.optimizers.schedules",
                                        "class_name": "CosineDecay",
                                        "config": {"initial_learning_rate": args.lr,
                                                   "decay_steps": steps, "alpha": 0.0,
                                                   "name": "CosineDecay",
                                                   "warmup_target": None,
                                                   "warmup_steps": 0},
                                        "registered_name": None}},
        "batch_size": args.batch_size,
        "epochs": args.epochs,
        "threads": args.threads,
        "seed": args.seed,
        "checkpoints": [{"filepath": "best.hdf5", "monitor": "val_accuracy", "mode": "max",
                         "save_best_only": True, "verbose": 1}],
    }


def cpu_name():
    out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    fields = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
    flags = fields.get("Flags", "")
    return {"model": fields.get("Model name", "").strip(),
            "family": fields.get("CPU family", "").strip(),
            "model_number": fields.get("Model", "").strip(),
            "avx512f": " avx512f" in flags}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default="build")
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--weight-decay", type=float, default=2e-4)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--workdir")
    ap.add_argument("--print-model", action="store_true",
                    help="print the job spec and exit")
    args = ap.parse_args()
    spec = job_spec(args)
    if args.print_model:
        json.dump(spec, sys.stdout, indent=1)
        print()
        return 0
    traind = os.path.join(ROOT, args.build, "daemon", "traind")
    workdir = args.workdir or tempfile.mkdtemp(prefix="resnet20-augment-")
    os.makedirs(workdir, exist_ok=True)
    job = os.path.join(workdir, "job.json")
    with open(job, "w") as f:
        json.dump(spec, f)
    print(f"# {workdir}; {cpu_name()}", flush=True)
    t0 = time.monotonic()
    p = subprocess.Popen([traind, "run", "--dir", os.path.join(workdir, "run"), job],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    acc, loss, secs, load = [], [], [], []
    last = t0
    with open(os.path.join(workdir, "output.txt"), "w") as log:
        for line in p.stdout:
            log.write(line)
            log.flush()
            m = EPOCH_LINE.search(line)
            if not m:
                continue
            now = time.monotonic()
            loss.append(float(m.group(1)))
            acc.append(float(m.group(2)))
            secs.append(round(now - last, 1))
            load.append(os.getloadavg()[0])
            last = now
            print(f"epoch {len(acc):2d}  val_accuracy {acc[-1]:.4f}  val_loss {loss[-1]:.4f}  "
                  f"{secs[-1]:6.1f} s  load {load[-1]:.1f}", flush=True)
    rc = p.wait()
    if rc != 0:
        print(f"traind run failed ({rc}); see {workdir}/output.txt", file=sys.stderr)
        return 1
    reached = next((i + 1 for i, a in enumerate(acc) if a >= BAR), None)
    print(json.dumps({"bench": "resnet20_augment", "cpu": cpu_name(), "epochs": args.epochs,
                      "threads": args.threads, "batch_size": args.batch_size, "lr": args.lr,
                      "weight_decay": args.weight_decay, "seed": args.seed,
                      "val_accuracy": acc, "val_loss": loss, "epoch_seconds": secs,
                      "load_avg_1min": load, "best_val_accuracy": max(acc) if acc else None,
                      "bar": BAR, "first_epoch_at_bar": reached,
                      "total_seconds": round(time.monotonic() - t0, 1)}))
    return 0 if reached else 2


if __name__ == "__main__":
    sys.exit(main())
