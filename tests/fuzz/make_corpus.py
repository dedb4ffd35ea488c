#!/usr/bin/python3
"""make_corpus.py - writes the hand-made seeds of tests/fuzz/corpus/<target>/.

Run from anywhere: /usr/bin/python3 tests/fuzz/make_corpus.py.  Each target
gets a handful of small valid inputs and invalid ones near the edges of what
its parser accepts.  Inputs found by fuzzing (crash-*, named after what they
break) are added by hand and kept; this script only (re)writes the seed-*
files.  Input layouts are described at the top of each fuzz_<target>.c."""
import gzip
import json
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, '..', 'fixtures')


def put(target, name, data):
    d = os.path.join(HERE, 'corpus', target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, 'seed-' + name), 'wb') as f:
        f.write(data)


def fixture(*parts):
    with open(os.path.join(FIXTURES, *parts), 'rb') as f:
        return f.read()


# --- template: template line, then "epoch batch loss accuracy val_loss val_accuracy"
V = '\n33 0 0.4231 0.8125 0.55462 0.80125'
for name, text in [
        ('keras', 'weights-{epoch:03d}-{val_loss:.4f}.hdf5' + V),
        ('batch', 'ckpt/e{epoch}-b{batch:04d}-{loss:.3f}.h5\n2 150 0.4 0.8 0.5 0.8'),
        ('alias', 'run_1/{epoch:03d}/acc={acc:.3f}_vacc={val_acc:.4f}.keras' + V),
        ('grouping', 'm{epoch:,}.h5\n1234567 0 1 1 1 1'),
        ('escape', '{{literal}}-{epoch}.h5'),
        ('spec-full', 'w-{val_loss:0=+20,.3f}-{loss:_<12g}.h5\n1 0 1e300 1 -1e300 1'),
        ('percent-nan', 'w-{val_loss:%}-{loss:E}.h5\n1 0 inf 1 nan 1'),
        ('repr', 'w-{val_loss}-{loss:.0e}.h5\n7 0 1e-300 0 2.675 0'),
        ('bad-parent', '../{epoch}.h5'),
        ('bad-absolute', '/abs/{epoch}.h5'),
        ('bad-key', 'w-{val_los}.h5'),
        ('bad-unclosed', 'w-{epoch:.2f'),
        ('bad-type', 'w-{epoch:x}.h5'),
        ('bad-depth', 'a/b/c/d/e.h5'),
        ('bad-dot', '.hidden-{epoch}.h5'),
        ('bad-width', 'w-{loss:300f}.h5'),
        ('bad-batch', 'w-{batch}.h5'),
]:
    put('template', name, text)

# --- job_spec: the request body
for f in sorted(os.listdir(os.path.join(FIXTURES, 'jobs'))):
    put('job_spec', f, fixture('jobs', f))
inline_model = {"class_name": "Sequential", "config": {"name": "sequential", "layers": [
    {"class_name": "Flatten", "config": {"batch_input_shape": [None, 8, 8, 1]}},
    {"class_name": "Dense", "config": {"units": 10, "activation": "softmax"}}]}}
put('job_spec', 'inline-model.json', json.dumps(
    {"dataset": "fashion-mnist", "model": inline_model, "epochs": 2,
     "optimizer": {"name": "adam", "learning_rate": 0.001},
     "checkpoints": [{"filepath": "e{epoch}-b{batch}.h5", "save_freq": 10, "monitor": "loss",
                      "save_top_k": 3, "mode": "min"}]}))
put('job_spec', 'minimal.json', '{"dataset": "fashion-mnist", "model": "lenet"}')
put('job_spec', 'callbacks.json', json.dumps({
    "dataset": "fashion-mnist", "model": "mlp",
    "optimizer": {"name": "adamw", "amsgrad": True, "global_clipnorm": 1.0,
                  "learning_rate": {"class_name": "CosineDecayRestarts",
                                    "config": {"initial_learning_rate": 0.01,
                                               "first_decay_steps": 100}}},
    "callbacks": {"early_stopping": {"monitor": "val_accuracy", "patience": 3,
                                     "start_from_epoch": 2, "restore_best_weights": True},
                  "terminate_on_nan": True}}))
put('job_spec', 'reduce-lr.json', json.dumps({
    "dataset": "fashion-mnist", "model": "mlp", "optimizer": {"name": "rmsprop", "centered": True},
    "callbacks": {"reduce_lr_on_plateau": {"factor": 0.5, "cooldown": 1, "min_lr": 1e-5},
                  "lr_scheduler": {"schedule": "step_decay", "initial_learning_rate": 0.01,
                                   "factor": 0.25, "drop_every": 5}}}))
put('job_spec', 'losses.json', json.dumps({
    "dataset": "fashion-mnist", "model": "mlp",
    "loss": {"module": "keras.losses", "class_name": "CategoricalCrossentropy",
             "config": {"from_logits": False, "label_smoothing": 0.1,
                        "reduction": "sum_over_batch_size", "axis": -1},
             "registered_name": None},
    "metrics": [{"class_name": "TopKCategoricalAccuracy", "config": {"k": 3, "name": "top3"}}],
    "class_weight": {"0": 1.0, "3": 2.5}}))
put('job_spec', 'bad-empty.json', '{}')
put('job_spec', 'bad-epochs.json', '{"dataset": "fashion-mnist", "model": "mlp", "epochs": -1}')
put('job_spec', 'bad-unknown-field.json', '{"dataset": "fashion-mnist", "model": "mlp", "epoch": 1}')
put('job_spec', 'bad-truncated.json', '{"dataset": "fashion-mnist", "model": ')
put('job_spec', 'bad-trailing.json', '{"dataset": "fashion-mnist", "model": "mlp"} x')
put('job_spec', 'bad-filepath.json',
    '{"dataset": "fashion-mnist", "model": "mlp", "checkpoints": [{"filepath": "../w.h5"}]}')

# --- model_json: Keras Sequential JSON ('{' first: input shape (28, 28, 1) given)
for f in sorted(os.listdir(os.path.join(FIXTURES, 'models'))):
    put('model_json', f, fixture('models', f))
small = {"class_name": "Sequential", "config": {"name": "sequential", "layers": [
    {"class_name": "Conv2D", "config": {"name": "conv2d", "batch_input_shape": [None, 12, 12, 3],
                                        "filters": 4, "kernel_size": 3, "padding": "same"}},
    {"class_name": "BatchNormalization", "config": {"axis": -1, "momentum": 0.9}},
    {"class_name": "Activation", "config": {"activation": "relu"}},
    {"class_name": "MaxPooling2D", "config": {"pool_size": [2, 2]}},
    {"class_name": "AveragePooling2D", "config": {"pool_size": [2, 2], "strides": [1, 1],
                                                  "padding": "valid"}},
    {"class_name": "Dropout", "config": {"rate": 0.25}},
    {"class_name": "Flatten", "config": {}},
    {"class_name": "Dense", "config": {"units": 10}},
    {"class_name": "Activation", "config": {"activation": "softmax"}}]},
    "keras_version": "2.2.4", "backend": "tensorflow"}
put('model_json', 'small-cnn.json', json.dumps(small))
put('model_json', 'no-shape.json', ' ' + json.dumps({"class_name": "Sequential", "config": {
    "layers": [{"class_name": "Flatten", "config": {}},
               {"class_name": "Dense", "config": {"units": 3, "activation": "softmax"}}]}}))
put('model_json', 'bad-class.json', '{"class_name": "Functional", "config": {}}')
put('model_json', 'kernel-larger-than-input.json', json.dumps({"class_name": "Sequential", "config": {"layers": [
    {"class_name": "Conv2D", "config": {"batch_input_shape": [None, 4, 4, 1], "filters": 2,
                                        "kernel_size": [9, 9]}},
    {"class_name": "Flatten", "config": {}},
    {"class_name": "Dense", "config": {"units": 2, "activation": "softmax"}}]}}))
put('model_json', 'bad-huge.json', json.dumps({"class_name": "Sequential", "config": {"layers": [
    {"class_name": "Flatten", "config": {"batch_input_shape": [None, 65536, 65536, 3]}},
    {"class_name": "Dense", "config": {"units": 2147483647, "activation": "softmax"}}]}}))
put('model_json', 'bad-duplicate-key.json',
    '{"class_name": "Sequential", "class_name": "Sequential", "config": {"layers": []}}')
put('model_json', 'bad-truncated.json', '{"class_name": "Sequential", "config": {"layers": [')
put('model_json', 'augment-factor-edges.json', json.dumps({"class_name": "Sequential", "config": {"layers": [
    {"class_name": "InputLayer", "config": {"batch_shape": [None, 8, 8, 1]}},
    {"class_name": "RandomZoom", "config": {"height_factor": 1.0, "width_factor": [-0.5, 1.0]}},
    {"class_name": "RandomTranslation", "config": {"height_factor": 0.0, "width_factor": -1.0}},
    {"class_name": "RandomRotation", "config": {"factor": [-3, 0.5], "fill_mode": "constant"}},
    {"class_name": "RandomContrast", "config": {"factor": [-2, 0.5], "value_range": [0, 0]}},
    {"class_name": "RandomCrop", "config": {"height": 65536, "width": 1}},
    {"class_name": "Flatten", "config": {}},
    {"class_name": "Dense", "config": {"units": 2, "activation": "softmax"}}]}}))


# --- idx: 4-byte big-endian images length, images file, labels file
def idx_images(n, rows, cols, pixels=None):
    if pixels is None:
        pixels = bytes((i * 37) & 0xff for i in range(n * rows * cols))
    return struct.pack('>IIII', 0x803, n, rows, cols) + pixels


def idx_labels(labels):
    return struct.pack('>II', 0x801, len(labels)) + bytes(labels)


def idx_pair(images, labels, flags=0):
    return struct.pack('>I', len(images) | flags) + images + labels


put('idx', 'raw', idx_pair(idx_images(3, 2, 2), idx_labels([0, 9, 4])))
put('idx', 'gzip', idx_pair(gzip.compress(idx_images(2, 3, 3), mtime=0),
                            gzip.compress(idx_labels([1, 2]), mtime=0)))
put('idx', 'fixture-gzip', idx_pair(fixture('data', 'tiny-images-idx3-ubyte.gz'),
                                    fixture('data', 'tiny-labels-idx1-ubyte')))
put('idx', 'target-gzips-both', idx_pair(idx_images(2, 2, 3), idx_labels([7, 8]), 0xc0000000))
put('idx', 'target-gzips-images-trailing', idx_pair(idx_images(1, 1, 2) + b'zz', idx_labels([1]),
                                                    0x80000000))
put('idx', 'bad-label', idx_pair(idx_images(2, 1, 1), idx_labels([3, 10])))
put('idx', 'bad-count', idx_pair(idx_images(2, 1, 1), idx_labels([3, 4, 5])))
put('idx', 'bad-truncated', idx_pair(idx_images(4, 2, 2)[:-3], idx_labels([0, 1, 2, 3])))
put('idx', 'bad-trailing', idx_pair(idx_images(1, 2, 2) + b'x', idx_labels([5])))
put('idx', 'bad-magic', idx_pair(struct.pack('>IIII', 0x802, 1, 1, 1) + b'\0', idx_labels([0])))
put('idx', 'bad-huge', idx_pair(struct.pack('>IIII', 0x803, 0x7fffffff, 65536, 65536),
                                idx_labels([0])))
put('idx', 'bad-gzip-crc', idx_pair(gzip.compress(idx_images(1, 2, 2), mtime=0)[:-8] + b'\0' * 8,
                                    idx_labels([0])))


# --- cifar: first byte % 3 = records_per_file (0 any), then the batch file
def cifar(labels):
    out = b''
    for k, lab in enumerate(labels):
        out += bytes([lab]) + bytes(((i + k * 7) * 13) & 0xff for i in range(3072))
    return out


put('cifar', 'one', b'\x01' + cifar([3]))
put('cifar', 'two-any', b'\x00' + cifar([0, 9]))
put('cifar', 'two', b'\x02' + cifar([5, 6]))
put('cifar', 'bad-label', b'\x00' + cifar([10]))
put('cifar', 'bad-partial', b'\x00' + cifar([1])[:-1])
put('cifar', 'bad-count', b'\x01' + cifar([1, 2]))
put('cifar', 'bad-empty', b'\x00')

# --- ckpt_state: policy byte, then the state JSON
state = {"version": 1, "best": 0.25, "best_file": "w-003.h5", "best_epoch": 3,
         "batches_since_last_save": 0, "last_batch_seen": 0, "saves": 4,
         "last_saved": "dir/w-004.h5",
         "kept": [{"file": "w-003.h5", "value": 0.25, "epoch": 3, "batch": 0, "seq": 3},
                  {"file": "dir/w-004.h5", "value": "nan", "epoch": 4, "batch": 0, "seq": 4}]}
put('ckpt_state', 'topk', b'\x30' + json.dumps(state).encode())
fresh = dict(state, best="inf", best_file="", best_epoch=0, saves=0, last_saved="", kept=[])
put('ckpt_state', 'fresh', b'\x00' + json.dumps(fresh).encode())
put('ckpt_state', 'batches', b'\x02' + json.dumps(dict(fresh, batches_since_last_save=4,
                                                       last_batch_seen=17, best="-inf")).encode())
put('ckpt_state', 'bad-version', b'\x00{"version":2}')
put('ckpt_state', 'bad-best-nan', b'\x00' + json.dumps(dict(fresh, best="nan")).encode())
put('ckpt_state', 'bad-path', b'\x00' + json.dumps(dict(state, best_file="../x.h5")).encode())
put('ckpt_state', 'bad-seq', b'\x30' + json.dumps(dict(state, saves=2)).encode())
put('ckpt_state', 'bad-batches', b'\x01' + json.dumps(dict(fresh, batches_since_last_save=1)).encode())
put('ckpt_state', 'bad-kept-many', b'\x30' + json.dumps(dict(
    state, saves=100, kept=[dict(state["kept"][0], seq=i + 1) for i in range(18)])).encode())

# --- cb_state: selector byte (0 EarlyStopping, 1 ReduceLROnPlateau, 2 schedule), then JSON
es = {"wait": 2, "best": 0.3125, "best_epoch": 4, "stopped_epoch": 0, "has_best_weights": True,
      "stopped": False}
put('cb_state', 'es', b'\x00' + json.dumps(es).encode())
put('cb_state', 'es-fresh', b'\x00' + json.dumps(dict(es, best="inf", wait=0)).encode())
put('cb_state', 'bad-es-key', b'\x00' + json.dumps(dict(es, x=1)).encode())
put('cb_state', 'bad-es-nan', b'\x00' + json.dumps(dict(es, best="nan")).encode())
put('cb_state', 'rlrop', b'\x01{"best": "-inf", "wait": 3, "cooldown_counter": 1}')
put('cb_state', 'bad-rlrop-missing', b'\x01{"best": 1, "wait": 3}')
put('cb_state', 'bad-rlrop-negative', b'\x01{"best": 1, "wait": -3, "cooldown_counter": 0}')
for name, cls, cfg in [
        ('exp', 'ExponentialDecay', {"initial_learning_rate": 0.1, "decay_steps": 1000,
                                     "decay_rate": 0.96, "staircase": True,
                                     "name": "ExponentialDecay"}),
        ('piecewise', 'PiecewiseConstantDecay', {"boundaries": [100, 200],
                                                 "values": [0.1, 0.01, 0.001], "name": None}),
        ('inverse', 'InverseTimeDecay', {"initial_learning_rate": 0.1, "decay_steps": 1.0,
                                         "decay_rate": 0.5}),
        ('poly', 'PolynomialDecay', {"initial_learning_rate": 0.1, "decay_steps": 10000,
                                     "end_learning_rate": 0.01, "power": 0.5, "cycle": True}),
        ('cosine', 'CosineDecay', {"initial_learning_rate": 0.0, "decay_steps": 1000,
                                   "alpha": 0.1, "warmup_target": 0.1, "warmup_steps": 100}),
        ('restarts', 'CosineDecayRestarts', {"initial_learning_rate": 0.1,
                                             "first_decay_steps": 1000, "t_mul": 2.0,
                                             "m_mul": 0.9, "alpha": 0.0, "name": "SGDRDecay"}),
        ('bad-steps', 'CosineDecay', {"initial_learning_rate": 0.1, "decay_steps": 0}),
        ('bad-values', 'PiecewiseConstantDecay', {"boundaries": [1, 2], "values": [1.0]}),
        ('bad-class', 'StepDecay', {})]:
    put('cb_state', 'schedule-' + name, b'\x02' + json.dumps(
        {"module": "keras.optimizers.schedules", "class_name": cls, "config": cfg,
         "registered_name": None}).encode())

# --- conf: INI text
put('conf', 'shipped.conf', open(os.path.join(HERE, '..', '..', 'config', 'traind.conf'), 'rb').read())
put('conf', 'datasets.conf', '[traind]\nlisten = [::1]:9000\nworkers = 2\nmax_body_bytes = 64k\n'
    'connection_memory_limit = 1M\n\n[dataset.mnist]\nformat = idx\npath = /data/mnist\n'
    '[dataset.cifar10]\nformat = cifar10\npath = /data/cifar\n')
put('conf', 'no-section.conf', 'threads = 4\n; comment\n# comment\nstate_dir = /tmp/traind\n')
put('conf', 'bad-key.conf', '[traind]\nworker = 2\n')
put('conf', 'bad-range.conf', '[traind]\nworkers = 65\nthreads = 0\n')
put('conf', 'bad-size.conf', '[traind]\nmax_body_bytes = 18446744073709551615G\n')
put('conf', 'bad-section.conf', '[server]\nlisten = 0.0.0.0:80\n')
put('conf', 'bad-dataset.conf', '[dataset.x]\nformat = png\npath = relative\n')
put('conf', 'bad-listen.conf', 'listen = 127.0.0.1:99999\n')
put('conf', 'bad-syntax.conf', '[traind\nlisten\n')

# --- route: the raw request target (first line also a method)
JOB = '/v1/jobs/0123456789abcdef'
for name, text in [
        ('jobs', '/v1/jobs'), ('health', '/v1/health'), ('metrics', '/metrics'),
        ('datasets', '/v1/datasets'), ('models', '/v1/models'), ('job', JOB),
        ('cancel', JOB + '/cancel'), ('events', JOB + '/events'), ('best', JOB + '/best'),
        ('checkpoints', JOB + '/checkpoints'),
        ('checkpoint', JOB + '/checkpoints/run_1/012/acc%3D0.812.keras'),
        ('checkpoint-deep', JOB + '/checkpoints/a/b/c/w-003-0.9848.hdf5'),
        ('bad-dotdot', JOB + '/checkpoints/..%2f..%2fetc/passwd'),
        ('bad-dot', JOB + '/checkpoints/./w.h5'),
        ('bad-tmp', JOB + '/checkpoints/w.h5.tmp-1234'),
        ('bad-escape', JOB + '/checkpoints/w%zz.h5'),
        ('bad-truncated-escape', JOB + '/checkpoints/w.h%5'),
        ('bad-nul', JOB + '/checkpoints/w%00.h5'),
        ('bad-id', '/v1/jobs/0123456789ABCDEF'),
        ('bad-deep', JOB + '/checkpoints/a/b/c/d/e.h5'),
        ('bad-empty-component', JOB + '/checkpoints/a//b.h5'),
        ('bad-method', 'PATCH\n/v1/jobs'),
]:
    put('route', name, text)
put('route', 'bad-raw-nul', JOB.encode() + b'/checkpoints/w\0.h5')

# --- http_range: size, Range, If-None-Match, entity tag (one per line)
for name, text in [
        ('first', '1000\nbytes=0-99\n"abc"\n"abc"'),
        ('open', '1000\nbytes=500-\nW/"abc", "def"\n"def"'),
        ('suffix', '1000\nbytes=-200\n*\n"x"'),
        ('suffix-large', '10\nbytes = -200\n"a" ,\t"b"\n"c"'),
        ('clamp', '10\nBYTES=5-99999999999999999999\n\n"a"'),
        ('max', '18446744073709551615\nbytes=18446744073709551614-\n"t"\n"t"'),
        ('bad-reversed', '1000\nbytes=99-0\n\n"a"'),
        ('bad-beyond', '1000\nbytes=1000-\n\n"a"'),
        ('bad-multi', '1000\nbytes=0-1,5-6\n\n"a"'),
        ('bad-empty-file', '0\nbytes=-1\n\n"a"'),
        ('bad-unit', '1000\nitems=0-1\n"a\n"a"'),
]:
    put('http_range', name, text)

# --- npy, tensorfile, import, multipart: the data set formats (needs numpy, PIL)
import io
import tarfile
import zipfile

import numpy as np
from PIL import Image


def npy(arr):
    buf = io.BytesIO()
    np.save(buf, arr)
    return buf.getvalue()


put('npy', 'uint8-nhw', npy(np.zeros((3, 4, 5), np.uint8)))
put('npy', 'float32-onehot', npy(np.eye(3, dtype=np.float32)))
put('npy', 'int64-labels', npy(np.arange(7)))
put('npy', 'v2', npy(np.zeros(2, np.uint8))[:6] + b'\x02\x00' +
    struct.pack('<I', 118) + npy(np.zeros(2, np.uint8))[10:])
put('npy', 'bad-fortran', npy(np.asfortranarray(np.zeros((2, 3), np.uint8))))
put('npy', 'bad-bigendian', npy(np.zeros(2, '>f4')))
put('npy', 'bad-extra-key', b"\x93NUMPY\x01\x00\x46\x00{'descr': '|u1', 'fortran_order': False, "
    b"'shape': (2,), 'x': 1, }   \n\x00\x00")


def npz(**arrays):
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def png(arr):
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, 'PNG')
    return buf.getvalue()


def jpeg(arr):
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, 'JPEG')
    return buf.getvalue()


def tar(members, mode='w'):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as t:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def zipped(members):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, 'w', zipfile.ZIP_DEFLATED) as z:
        for name, data in members:
            z.writestr(name, data)
    return buf.getvalue()


g = np.arange(36, dtype=np.uint8).reshape(6, 6)
put('import', 'npz', npz(x_train=np.zeros((2, 3, 3), np.uint8), y_train=np.array([0, 1]),
                         x_test=np.ones((1, 3, 3), np.uint8), y_test=np.array([1])))
put('import', 'npz-float-onehot', npz(x_train=np.zeros((2, 2, 2, 3), np.float32),
                                      y_train=np.eye(2, dtype=np.float32)))
put('import', 'npz-float-targets', npz(x_train=np.zeros((2, 1, 3), np.float32),
                                       y_train=np.array([[0.5, -1.0], [2.0, 0.25]])))
put('import', 'tar-png', tar([('a/1.png', png(g)), ('b/2.png', png(np.stack([g] * 3, -1)))]))
put('import', 'targz-jpeg', tar([('train/a/1.jpg', jpeg(g)), ('test/a/2.jpg', jpeg(g))], 'w:gz'))
put('import', 'zip-png', zipped([('c/x.png', png(g)), ('d/y.png', png(g)), ('readme', b'hi')]))
put('import', 'cifar', tar([('cifar-10-batches-bin/batches.meta.txt',
                             b'\n'.join(b'c%d' % i for i in range(10)))] +
                           [('cifar-10-batches-bin/' + n, bytes(3073))
                            for n in ['data_batch_%d.bin' % i for i in range(1, 6)] +
                            ['test_batch.bin']], 'w:gz'))
put('import', 'bad-dotdot', tar([('a/../../x.png', png(g))]))
put('import', 'bad-truncated-png', tar([('a/1.png', png(g)[:40])]))

# tensorfile: a small file as the importer writes it (header, regions, names);
# with targets (K floats per example) a version 2 file of regression targets
def tensorfile(n_train, n_test, h, w, c, labels, names, targets=None, k=0):
    ex = h * w * c
    ey = 4 * k if targets is not None else 1
    al = lambda v: (v + 4095) // 4096 * 4096
    x0 = 4096
    x1 = al(x0 + n_train * ex)
    y0 = al(x1 + n_test * ex)
    y1 = al(y0 + n_train * ey)
    no = al(y1 + n_test * ey)
    blob = b''.join(n.encode() + b'\0' for n in names)
    size = no + len(blob)
    hdr = struct.pack('<8sIIIIIIQQQQQQQQQI', b'TRDSET\r\n', 2 if targets is not None else 1,
                      1, h, w, c, len(names), n_train, n_test, x0, y0, x1, y1, no, len(blob),
                      size, k)
    out = bytearray(size)
    out[:len(hdr)] = hdr
    if targets is not None:
        out[y0:y0 + n_train * ey] = struct.pack('<%df' % (n_train * k), *targets[:n_train * k])
        out[y1:y1 + n_test * ey] = struct.pack('<%df' % (n_test * k), *targets[n_train * k:])
    else:
        out[y0:y0 + n_train] = bytes(labels[:n_train])
        out[y1:y1 + n_test] = bytes(labels[n_train:])
    out[no:] = blob
    return bytes(out)


put('tensorfile', 'small', tensorfile(2, 1, 2, 2, 1, [0, 1, 1], ['cat', 'dog']))
put('tensorfile', 'bad-label', tensorfile(2, 1, 2, 2, 1, [0, 5, 1], ['cat', 'dog']))
put('tensorfile', 'bad-truncated', tensorfile(2, 1, 2, 2, 1, [0, 1, 1], ['cat', 'dog'])[:-2])
put('tensorfile', 'targets', tensorfile(2, 1, 2, 2, 1, None, [], [0.5, -1, 2, 0, 1.5, 3], 2))
put('tensorfile', 'bad-target-nan',
    tensorfile(2, 1, 2, 2, 1, None, [], [0.5, -1, float('nan'), 0, 1.5, 3], 2))

# multipart: Content-Type line, then the body
put('multipart', 'two', b'multipart/form-data; boundary=XyZ\n'
    b'--XyZ\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n'
    b'Content-Type: image/png\r\n\r\nAAAA\r\n--XyZ\r\nContent-Disposition: form-data; '
    b'name="b"\r\n\r\nBB\r\n--XyZ--\r\n')
put('multipart', 'bad-unterminated', b'multipart/form-data; boundary="q"\n--q\r\n\r\nAAAA')

# recovery: events.ndjson [NUL job.json [NUL seq.reserved [NUL resume.h5]]]
# resume_tiny.h5 is the resume.h5 that `traind run --dir out
# tests/fixtures/h5/resume_tiny.job.json` wrote (2 epochs of 2 steps; the
# model fuzz_recovery.c builds), with the daemon's checksummed header.
EVENTS = fixture('..', 'fuzz', 'corpus', 'recovery', 'four-events.ndjson')
SPEC = json.loads(fixture('h5', 'resume_tiny.job.json'))
RESUME = fixture('h5', 'resume_tiny.h5')


def job_record(state, **extra):
    rec = {'id': '0123456789abcdef', 'state': state, 'created': '2026-11-28T08:01:02.345Z',
           'spec': SPEC}
    rec.update(extra)
    return json.dumps(rec).encode()


def recovery(events, record, seq=None, resume=None):
    parts = [events, record] + ([seq] if seq is not None else []) + \
        ([resume] if resume is not None else [])
    return b'\0'.join(parts)


put('recovery', 'job-running', recovery(EVENTS, job_record('running',
                                                             started='2026-11-28T08:01:03.000Z')))
put('recovery', 'job-failed', recovery(EVENTS, job_record('failed', error='resume.h5: write: '
                                                            'No space left on device')))
put('recovery', 'job-seq-reserved', recovery(EVENTS, job_record('running'), b'264\n'))
put('recovery', 'job-seq-below-events', recovery(EVENTS, job_record('running'), b'2\n'))
put('recovery', 'bad-seq-text', recovery(EVENTS, job_record('running'), b'-5x'))
put('recovery', 'bad-seq-huge', recovery(EVENTS, job_record('running'),
                                         b'99999999999999999999999\n'))
put('recovery', 'bad-job-state', recovery(EVENTS, job_record('sleeping')))
put('recovery', 'bad-job-spec', recovery(EVENTS, json.dumps(
    {'state': 'queued', 'spec': {'dataset': 'fashion-mnist', 'epochs': -1}}).encode()))
put('recovery', 'bad-job-torn', recovery(EVENTS, job_record('queued')[:57]))
put('recovery', 'resume', recovery(EVENTS, job_record('running'), b'264\n', RESUME))
put('recovery', 'bad-resume-flipped', recovery(EVENTS, job_record('running'), b'4\n',
                                               RESUME[:3000] + bytes([RESUME[3000] ^ 1]) +
                                               RESUME[3001:]))
put('recovery', 'bad-resume-header', recovery(EVENTS, job_record('running'), b'4\n',
                                              RESUME[:20] + b'0' * 8 + RESUME[28:]))
put('recovery', 'bad-resume-truncated', recovery(EVENTS, job_record('running'), b'4\n',
                                                 RESUME[:len(RESUME) // 2]))
put('recovery', 'bad-resume-not-hdf5', recovery(EVENTS, job_record('running'), b'4\n',
                                                b'TRAIND-H5\nsha256 ' + b'0' * 64))
