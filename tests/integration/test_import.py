"""Data set importers (core/import*.c), driven through tests/unit/import_tool.

Every fixture is written here, at test time, by the libraries users write
them with: numpy.savez / savez_compressed, h5py, PIL images packed with
tarfile and zipfile.  The tensor file that comes out is read back with numpy
from its documented layout (core/tensorfile.h) and compared with the source
arrays; refused inputs must name what is wrong and leave no file behind.
"""
import io
import json
import os
import struct
import subprocess
import tarfile
import zipfile

import h5py
import numpy as np
import pytest
from PIL import Image

TOOL = os.environ.get("IMPORT_TOOL")
HEADER = struct.Struct("<8sIIIIIIQQQQQQQQQI")


def run_tool(src, out, *opts):
    if not TOOL or not os.path.exists(TOOL):
        pytest.fail("IMPORT_TOOL must name the import_tool program (set by meson)")
    p = subprocess.run([TOOL, str(src), str(out), "ds.tensor", *opts], capture_output=True,
                       text=True, timeout=300)
    assert p.returncode in (0, 1), p.stderr
    return json.loads(p.stdout)


def read_tensor(path):
    raw = open(path, "rb").read()
    (magic, version, dtype, h, w, c, classes, n_train, n_test, x0, y0, x1, y1, names_off,
     names_len, file_bytes, y_width) = HEADER.unpack_from(raw)
    # version 1: uint8 class labels; version 2: (n, K) float32 regression targets
    assert magic == b"TRDSET\r\n" and file_bytes == len(raw)
    assert (version, y_width == 0) in ((1, True), (2, False)), (version, y_width)
    dt = np.uint8 if dtype == 1 else np.float32
    isz = np.dtype(dt).itemsize
    t = {"classes": raw[names_off:names_off + names_len].split(b"\0")[:-1], "y_width": y_width}
    for split, n, xo, yo in (("train", n_train, x0, y0), ("test", n_test, x1, y1)):
        t["x_" + split] = np.frombuffer(raw, dt, n * h * w * c, xo).reshape(n, h, w, c)
        t["y_" + split] = (np.frombuffer(raw, "<f4", n * y_width, yo).reshape(n, y_width)
                           if y_width else np.frombuffer(raw, np.uint8, n, yo))
    assert len(t["classes"]) == classes
    return t


def imported(tmp_path, src, *opts):
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    r = run_tool(src, out, *opts)
    assert "error" not in r, r
    return r, read_tensor(out / "ds.tensor")


def refused(tmp_path, src, *opts, field=None, words=()):
    out = tmp_path / "refused"
    out.mkdir(exist_ok=True)
    r = run_tool(src, out, *opts)
    assert "error" in r, r
    assert r["error"] < 0
    if field is not None:
        assert r["field"] == field, r
    for w in words:
        assert w in r["message"], r
    assert os.listdir(out) == [], "a refused import left files behind"
    return r


# --- npz ------------------------------------------------------------------------------

def mnist_like(n=50, m=20, shape=(28, 28), dtype=np.uint8, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (n,) + shape).astype(dtype)
    xt = rng.integers(0, 256, (m,) + shape).astype(dtype)
    return x, rng.integers(0, 10, n).astype(np.uint8), xt, rng.integers(0, 10, m).astype(np.uint8)


@pytest.mark.parametrize("save", [np.savez, np.savez_compressed])
def test_npz_keras_layout(tmp_path, save):
    x, y, xt, yt = mnist_like()
    y[3] = 9  # ten classes whatever the draw
    src = tmp_path / "mnist.npz"
    save(src, x_train=x, y_train=y.astype(np.int64), x_test=xt, y_test=yt)
    r, t = imported(tmp_path, src)
    assert r["format"] == "npz" and r["dtype"] == "uint8"
    assert (r["n_train"], r["n_test"], r["shape"]) == (50, 20, [28, 28, 1])
    assert np.array_equal(t["x_train"][..., 0], x) and np.array_equal(t["x_test"][..., 0], xt)
    assert np.array_equal(t["y_train"], y) and np.array_equal(t["y_test"], yt)
    assert t["classes"] == [str(k).encode() for k in range(10)]


def test_npz_nhwc_float32_onehot(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.random((12, 8, 6, 3), dtype=np.float32)
    labels = rng.integers(0, 4, 12)
    src = tmp_path / "f.npz"
    np.savez(src, x_train=x, y_train=np.eye(4, dtype=np.float32)[labels])
    r, t = imported(tmp_path, src)
    assert r["dtype"] == "float32" and r["shape"] == [8, 6, 3] and r["n_test"] == 0
    assert r["classes"] == 4
    assert np.array_equal(t["x_train"], x) and np.array_equal(t["y_train"], labels)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_npz_float_targets(tmp_path, dtype):
    """A float y that is not one-hot is kept as float32 regression targets:
    (n, K) as given, (n,) and (n, 1) as K = 1; no classes, no names."""
    x, _, xt, _ = mnist_like(n=9, m=4, shape=(1, 5))
    rng = np.random.default_rng(3)
    y, yt = rng.normal(size=(9, 3)).astype(dtype), rng.normal(size=(4, 3)).astype(dtype)
    src = tmp_path / "reg.npz"
    np.savez(src, x_train=x, y_train=y, x_test=xt, y_test=yt)
    r, t = imported(tmp_path, src)
    assert (r["classes"], r["target_width"]) == (0, 3) and t["classes"] == []
    assert np.array_equal(t["y_train"], y.astype(np.float32))
    assert np.array_equal(t["y_test"], yt.astype(np.float32))
    assert np.array_equal(t["x_train"][..., 0], x)
    for shape in ((9,), (9, 1)):
        np.savez(src, x_train=x, y_train=y[:, 0].reshape(shape))
        r, t = imported(tmp_path, src)
        assert r["target_width"] == 1 and t["y_width"] == 1
        assert np.array_equal(t["y_train"][:, 0], y[:, 0].astype(np.float32))
    # rows that are all one-hot stay class labels
    np.savez(src, x_train=x, y_train=np.eye(3, dtype=dtype)[np.arange(9) % 3])
    r, t = imported(tmp_path, src)
    assert (r["classes"], r["target_width"]) == (3, 0)
    assert np.array_equal(t["y_train"], np.arange(9) % 3)


def test_npz_column_labels(tmp_path):
    x, y, _, _ = mnist_like(n=7)
    src = tmp_path / "c.npz"
    np.savez(src, x_train=x, y_train=y.reshape(-1, 1).astype(np.int32))
    r, t = imported(tmp_path, src)
    assert np.array_equal(t["y_train"], y)


def npy_bytes(arr, header=None):
    buf = io.BytesIO()
    np.save(buf, arr)
    raw = buf.getvalue()
    if header is None:
        return raw
    hl = struct.unpack_from("<H", raw, 8)[0]
    text = header.ljust(hl - 1) + "\n"
    assert len(text) == hl
    return raw[:8] + struct.pack("<H", hl) + text.encode() + raw[10 + hl:]


def write_zip(path, members, compression=zipfile.ZIP_STORED):
    with zipfile.ZipFile(path, "w", compression) as z:
        for name, data in members:
            z.writestr(name, data)


@pytest.mark.parametrize("case,field,words", [
    ("fortran", "x_train", ["fortran_order"]),
    ("bigendian", "x_train", ["'>f4'", "not supported"]),
    ("extra_key", "x_train", ["unexpected or repeated key 'foo'"]),
    ("short_shape", "x_train", ["truncated"]),
    ("long_shape", "x_train", ["trailing data"]),
    ("int16_images", "x_train", ["uint8 or float32"]),
    ("missing_y", "y_train", ["no y_train"]),
    ("x_test_only", "y_test", ["no y_test"]),
    ("count_mismatch", "y_train", ["examples"]),
    ("negative_label", "y_train", ["-1", "example 2"]),
    ("nan_target", "y_train", ["finite", "example 1"]),
    ("huge_target", "y_train", ["finite float32", "example 2"]),
    ("mixed_targets", "y_test", ["same kind of targets"]),
    ("unexpected_member", "notes.npy", ["unexpected member"]),
    ("zero_images", "x_train", ["zero images"]),
    ("test_shape", "x_test", ["differ"]),
])
def test_npz_refused(tmp_path, case, field, words):
    x = np.zeros((4, 5, 5), np.uint8)
    y = np.array([0, 1, 2, 3], np.uint8)
    m = {"x_train.npy": npy_bytes(x), "y_train.npy": npy_bytes(y)}
    if case == "fortran":
        m["x_train.npy"] = npy_bytes(np.asfortranarray(np.zeros((4, 5, 5, 2), np.uint8)))
    elif case == "bigendian":
        m["x_train.npy"] = npy_bytes(np.zeros((4, 5, 5), ">f4"))
    elif case == "extra_key":
        m["x_train.npy"] = npy_bytes(x, "{'descr': '|u1', 'fortran_order': False, "
                                        "'shape': (4, 5, 5), 'foo': 1, }")
    elif case == "short_shape":
        m["x_train.npy"] = npy_bytes(x, "{'descr': '|u1', 'fortran_order': False, "
                                        "'shape': (5, 5, 5), }")
    elif case == "long_shape":
        m["x_train.npy"] = npy_bytes(x, "{'descr': '|u1', 'fortran_order': False, "
                                        "'shape': (3, 5, 5), }")
    elif case == "int16_images":
        m["x_train.npy"] = npy_bytes(x.astype(np.int16))
    elif case == "missing_y":
        del m["y_train.npy"]
    elif case == "x_test_only":
        m["x_test.npy"] = npy_bytes(x)
    elif case == "count_mismatch":
        m["y_train.npy"] = npy_bytes(y[:3])
    elif case == "negative_label":
        m["y_train.npy"] = npy_bytes(np.array([0, 1, -1, 3], np.int64))
    elif case == "nan_target":
        m["y_train.npy"] = npy_bytes(np.array([[1, 0], [np.nan, 1], [0, 1], [1, 0]], np.float32))
    elif case == "huge_target":
        m["y_train.npy"] = npy_bytes(np.array([0.5, 1.5, 1e300, 2.0]))
    elif case == "mixed_targets":
        m["y_train.npy"] = npy_bytes(np.array([0.5, 1.5, 1.0, 2.0], np.float32))
        m["x_test.npy"] = npy_bytes(x[:2])
        m["y_test.npy"] = npy_bytes(y[:2])
    elif case == "unexpected_member":
        m["notes.npy"] = npy_bytes(y)
    elif case == "zero_images":
        m = {"x_train.npy": npy_bytes(x[:0]), "y_train.npy": npy_bytes(y[:0])}
    elif case == "test_shape":
        m["x_test.npy"] = npy_bytes(np.zeros((2, 5, 6), np.uint8))
        m["y_test.npy"] = npy_bytes(y[:2])
    src = tmp_path / "bad.npz"
    write_zip(src, sorted(m.items()))
    refused(tmp_path, src, field=field, words=words)


def test_npz_truncated_and_corrupted(tmp_path):
    x, y, xt, yt = mnist_like(n=40)
    good = tmp_path / "good.npz"
    np.savez_compressed(good, x_train=x, y_train=y, x_test=xt, y_test=yt)
    raw = good.read_bytes()
    for cut in (len(raw) // 3, len(raw) - 30, 20):
        src = tmp_path / "cut.npz"
        src.write_bytes(raw[:cut])
        refused(tmp_path, src, "format=npz")
    # flip bytes inside the first member's compressed data: inflate or CRC fails
    bad = bytearray(raw)
    for i in range(200, 260):
        bad[i] ^= 0x5A
    src = tmp_path / "flip.npz"
    src.write_bytes(bytes(bad))
    refused(tmp_path, src)


# --- image folders ----------------------------------------------------------------------

def png(arr):
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "PNG")
    return buf.getvalue()


def jpeg(arr):
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def write_tar(path, members, mode="w", dirs=()):
    with tarfile.open(path, mode) as t:
        for d in dirs:
            info = tarfile.TarInfo(d)
            info.type = tarfile.DIRTYPE
            info.mode = 0o755
            t.addfile(info)
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))


def rgb(seed, h, w, c=3):
    rng = np.random.default_rng(seed)
    shape = (h, w) if c == 1 else (h, w, c)
    return rng.integers(0, 256, shape).astype(np.uint8)


def keras_order(paths_by_class, seed):
    """Keras index_directory: classes sorted, files sorted, RandomState(seed).shuffle."""
    order = [(cls, p) for cls in sorted(paths_by_class) for p in sorted(paths_by_class[cls])]
    rng = np.random.RandomState(seed)
    rng.shuffle(order)
    return order


def tf_resize_bilinear(img, oh, ow):
    """tf.image.resize(method='bilinear'): half-pixel centres, float32."""
    img = img.astype(np.float32)
    ih, iw = img.shape[:2]

    def weights(o, i):
        scale = np.float32(i) / np.float32(o)
        pos = (np.arange(o, dtype=np.float32) + np.float32(0.5)) * scale - np.float32(0.5)
        lo = np.floor(pos)
        return (np.maximum(lo, 0).astype(int), np.minimum(np.ceil(pos), i - 1).astype(int),
                (pos - lo).astype(np.float32))

    y0, y1, ty = weights(oh, ih)
    x0, x1, tx = weights(ow, iw)
    tx = tx[None, :, None]
    top = img[y0][:, x0] + (img[y0][:, x1] - img[y0][:, x0]) * tx
    bot = img[y1][:, x0] + (img[y1][:, x1] - img[y1][:, x0]) * tx
    return top + (bot - top) * ty[:, None, None]


def test_images_tar_keras_order_and_pixels(tmp_path):
    imgs = {("cat", f"c{i}.png"): rgb(i, 6, 5) for i in range(5)}
    imgs.update({("dog", f"d{i}.png"): rgb(10 + i, 6, 5) for i in range(4)})
    imgs[("dog", "sub/deep.png")] = rgb(99, 6, 5)
    members = [(f"./{c}/{n}", png(a)) for (c, n), a in imgs.items()]
    members.append(("./README.txt", b"not an image"))
    members.append(("./cat/notes.txt", b"not an image either"))
    src = tmp_path / "photos.tar"
    write_tar(src, members, dirs=["./", "./cat/", "./dog/", "./dog/sub/", "./empty/"])
    r, t = imported(tmp_path, src, "image_size=6x5", "seed=7")
    assert r["format"] == "images" and r["shape"] == [6, 5, 3] and r["skipped"] == 2
    assert t["classes"] == [b"cat", b"dog", b"empty"]  # an empty class folder is a class
    by_class = {"cat": [], "dog": []}
    for c, n in imgs:
        by_class[c].append(n)
    order = keras_order(by_class, 7)
    assert r["n_train"] == len(order) and r["n_test"] == 0
    names = [b"cat", b"dog", b"empty"]
    for i, (c, n) in enumerate(order):
        assert t["y_train"][i] == names.index(c.encode()), (i, c, n)
        assert np.array_equal(t["x_train"][i], imgs[(c, n)]), (i, c, n)


def test_images_validation_split_zip_jpeg_resize(tmp_path):
    imgs = {("a", f"{i}.jpg"): rgb(i, 20, 30) for i in range(6)}
    imgs.update({("b", f"{i}.JPEG"): rgb(50 + i, 20, 30) for i in range(4)})
    src = tmp_path / "photos.zip"
    write_zip(src, [(f"{c}/{n}", jpeg(a)) for (c, n), a in imgs.items()], zipfile.ZIP_DEFLATED)
    r, t = imported(tmp_path, src, "image_size=8x12", "validation_split=0.3", "seed=3")
    assert (r["n_train"], r["n_test"]) == (7, 3)
    by_class = {"a": [n for c, n in imgs if c == "a"], "b": [n for c, n in imgs if c == "b"]}
    order = keras_order(by_class, 3)
    xs = np.concatenate([t["x_train"], t["x_test"]])
    ys = np.concatenate([t["y_train"], t["y_test"]])
    for i, (c, n) in enumerate(order):
        assert ys[i] == "ab".index(c)
        decoded = np.asarray(Image.open(io.BytesIO(jpeg(imgs[(c, n)]))).convert("RGB"))
        want = tf_resize_bilinear(decoded, 8, 12)
        # rounding of the float result to uint8 may differ by one step
        assert np.abs(xs[i].astype(np.float32) - want).max() <= 1.0


def test_images_train_test_folders_targz_mixed(tmp_path):
    members = [
        ("train/x/gray.png", png(rgb(1, 9, 9, 1))),
        ("train/x/rgba.png", png(rgb(2, 4, 7, 4))),
        ("train/y/rgb.jpg", jpeg(rgb(3, 16, 16))),
        ("test/x/t.png", png(rgb(4, 5, 5))),
        ("test/y/u.png", png(rgb(5, 5, 5, 1))),
    ]
    src = tmp_path / "split.tar.gz"
    write_tar(src, members, "w:gz")
    for mode, ch in (("rgb", 3), ("grayscale", 1), ("rgba", 4)):
        r, t = imported(tmp_path, src, "image_size=5x5", f"color_mode={mode}")
        assert (r["n_train"], r["n_test"], r["shape"]) == (3, 2, [5, 5, ch])
        assert t["classes"] == [b"x", b"y"]
        assert sorted(t["y_test"].tolist()) == [0, 1]
    # the 5x5 test images are not resized: exact pixels
    r, t = imported(tmp_path, src, "image_size=5x5", "color_mode=rgb", "seed=0")
    i = t["y_test"].tolist().index(0)
    assert np.array_equal(t["x_test"][i], rgb(4, 5, 5))
    gray = rgb(5, 5, 5, 1)
    assert np.array_equal(t["x_test"][1 - i], np.repeat(gray[..., None], 3, axis=2))
    refused(tmp_path, src, "validation_split=0.5", field="validation_split")


def test_images_grayscale_matches_pil(tmp_path):
    a = rgb(8, 7, 7)
    src = tmp_path / "g.tar"
    write_tar(src, [("k/a.png", png(a)), ("k/b.png", png(a))])
    r, t = imported(tmp_path, src, "image_size=7x7", "color_mode=grayscale")
    want = np.asarray(Image.fromarray(a).convert("L")).astype(int)
    assert np.abs(t["x_train"][0][..., 0].astype(int) - want).max() <= 1


def test_images_grayscale_jpeg_is_the_luma_plane(tmp_path):
    """A colour JPEG read as grayscale is libjpeg's JCS_GRAYSCALE output, the
    file's own luma plane (what tf.io.decode_jpeg(channels=1) asks libjpeg
    for), not luma recomputed from the decoded RGB: exactly PIL's
    draft("L") decode, which asks libjpeg the same.  PIL's convert("L")
    rounds from RGB pixels that were clamped to [0, 255] first, so on
    saturated colours it may be several levels away."""
    imgs = [rgb(20 + i, 16, 24) for i in range(3)]
    gray_src = rgb(30, 16, 24, 1)
    src = tmp_path / "j.tar"
    write_tar(src, [(f"k/{i}.jpg", jpeg(a)) for i, a in enumerate(imgs)] +
              [("k/9.jpg", jpeg(gray_src))])
    r, t = imported(tmp_path, src, "image_size=16x24", "color_mode=grayscale", "seed=1")
    assert r["shape"] == [16, 24, 1] and r["n_train"] == 4
    got = {bytes(x[..., 0].tobytes()) for x in t["x_train"]}
    far_from_convert = 0
    for a in imgs + [gray_src]:
        im = Image.open(io.BytesIO(jpeg(a)))
        im.draft("L", im.size)
        assert im.mode == "L" and im.size == (24, 16)
        luma = np.asarray(im)
        assert luma.tobytes() in got
        conv = np.asarray(Image.open(io.BytesIO(jpeg(a))).convert("L")).astype(int)
        far_from_convert += int(np.abs(luma.astype(int) - conv).max() > 1)
    assert far_from_convert >= 1  # the two rules are told apart by these images
    # a grayscale JPEG read as rgb: its one plane in all three channels
    r, t = imported(tmp_path, src, "image_size=16x24", "color_mode=rgb", "seed=1")
    plain = np.asarray(Image.open(io.BytesIO(jpeg(gray_src))))
    assert any(np.array_equal(x, np.repeat(plain[..., None], 3, axis=2)) for x in t["x_train"])


def test_images_one_class(tmp_path):
    src = tmp_path / "one.tar"
    write_tar(src, [("only/a.png", png(rgb(1, 3, 3))), ("only/b.png", png(rgb(2, 3, 3)))])
    r, t = imported(tmp_path, src, "image_size=3x3")
    assert r["classes"] == 1 and r["n_train"] == 2


@pytest.mark.parametrize("case,field,words", [
    ("dotdot", "cat/../../etc/x.png", ["'..'"]),
    ("absolute", "/etc/x.png", ["absolute"]),
    ("symlink", "cat/link.png", ["symbolic link"]),
    ("hardlink", "cat/hard.png", ["hard link"]),
    ("fifo", "cat/fifo", ["not a file or folder"]),
    ("duplicate", "cat/a.png", ["duplicate entry"]),
    ("not_png", "cat/b.png", ["not a PNG or JPEG"]),
    ("truncated_png", "cat/b.png", ["corrupt PNG"]),
    ("truncated_jpeg", "cat/b.jpg", ["corrupt JPEG"]),
    ("no_images", "images", ["no images found"]),
    ("empty_archive", "images", ["no images found"]),
])
def test_images_refused(tmp_path, case, field, words):
    good = png(rgb(1, 4, 4))
    src = tmp_path / "bad.tar"
    members = [("cat/a.png", good)]
    extra = []
    if case == "dotdot":
        members.append(("cat/../../etc/x.png", good))
    elif case == "absolute":
        members.append(("/etc/x.png", good))
    elif case in ("symlink", "hardlink", "fifo"):
        info = tarfile.TarInfo({"symlink": "cat/link.png", "hardlink": "cat/hard.png",
                                "fifo": "cat/fifo"}[case])
        info.type = {"symlink": tarfile.SYMTYPE, "hardlink": tarfile.LNKTYPE,
                     "fifo": tarfile.FIFOTYPE}[case]
        info.linkname = "cat/a.png" if case != "fifo" else ""
        extra.append(info)
    elif case == "duplicate":
        members.append(("cat/a.png", good))
    elif case == "not_png":
        members.append(("cat/b.png", b"GIF89a not really"))
    elif case == "truncated_png":
        members.append(("cat/b.png", good[:len(good) - 20]))
    elif case == "truncated_jpeg":
        j = jpeg(rgb(2, 32, 32))
        members.append(("cat/b.jpg", j[:len(j) // 2]))
    elif case == "no_images":
        members = [("cat/readme.txt", b"hello"), ("top.png", good)]
    elif case == "empty_archive":
        members = []
    with tarfile.open(src, "w") as t:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
        for info in extra:
            t.addfile(info)
    refused(tmp_path, src, "format=images", "image_size=4x4", field=field, words=words)


def test_zip_bombs(tmp_path):
    # ratio: 40 MB of zeros deflate to ~40 KB (about 1000:1, the limit is 200:1)
    src = tmp_path / "bomb.zip"
    write_zip(src, [("a/x.png", b"\0" * (40 << 20))], zipfile.ZIP_DEFLATED)
    refused(tmp_path, src, "format=images", words=["zip bomb"])
    # total: a plain, incompressible archive larger than max_total_bytes
    src = tmp_path / "big.tar"
    write_tar(src, [(f"a/{i}.png", png(rgb(i, 64, 64))) for i in range(30)])
    refused(tmp_path, src, "format=images", "max_total_bytes=100000", words=["zip bomb"])
    # the same archive is fine with the default limits
    imported(tmp_path, src, "image_size=8x8")


def test_tar_gz_bomb(tmp_path):
    src = tmp_path / "bomb.tar.gz"
    write_tar(src, [("a/zeros.txt", b"\0" * (40 << 20)), ("a/x.png", png(rgb(1, 4, 4)))],
              "w:gz")
    refused(tmp_path, src, words=["zip bomb"])


# --- HDF5 -----------------------------------------------------------------------------

def test_hdf5(tmp_path):
    x, y, xt, yt = mnist_like(n=30, m=10, shape=(8, 8, 3))
    src = tmp_path / "d.h5"
    with h5py.File(src, "w") as f:
        f["x_train"] = x
        f["y_train"] = y.astype(np.int64)
        f["x_test"] = xt
        f["y_test"] = np.eye(10, dtype=np.float32)[yt]
        f["extra"] = np.arange(3)
    r, t = imported(tmp_path, src)
    assert r["format"] == "hdf5" and (r["n_train"], r["n_test"]) == (30, 10)
    assert np.array_equal(t["x_train"], x) and np.array_equal(t["x_test"], xt)
    assert np.array_equal(t["y_train"], y) and np.array_equal(t["y_test"], yt)


def test_hdf5_float_targets(tmp_path):
    x, _, xt, _ = mnist_like(n=12, m=5, shape=(4, 4))
    rng = np.random.default_rng(5)
    y, yt = rng.normal(size=(12, 2)), rng.normal(size=(5, 2))  # float64
    src = tmp_path / "reg.h5"
    with h5py.File(src, "w") as f:
        f["x_train"], f["y_train"], f["x_test"], f["y_test"] = x, y, xt, yt
    r, t = imported(tmp_path, src)
    assert r["format"] == "hdf5" and (r["classes"], r["target_width"]) == (0, 2)
    assert np.array_equal(t["y_train"], y.astype(np.float32))
    assert np.array_equal(t["y_test"], yt.astype(np.float32))
    with h5py.File(src, "w") as f:
        f["x_train"], f["y_train"] = x, y[:, 0]
        f["x_test"], f["y_test"] = xt, yt  # 2 targets against 1
    refused(tmp_path, src, field="y_test", words=["2 targets per example, y_train 1"])
    y[4, 1] = np.inf
    with h5py.File(src, "w") as f:
        f["x_train"], f["y_train"] = x, y
    refused(tmp_path, src, field="y_train", words=["example 4", "finite"])


def test_hdf5_refused(tmp_path):
    x, y, _, _ = mnist_like(n=30, shape=(8, 8))
    src = tmp_path / "d.h5"
    with h5py.File(src, "w") as f:
        f["x_train"] = x
    refused(tmp_path, src, field="y_train", words=["no dataset y_train"])
    with h5py.File(src, "w") as f:
        f["x_train"] = x.astype(np.int32)
        f["y_train"] = y
    refused(tmp_path, src, field="x_train", words=["uint8 or float32"])
    with h5py.File(src, "w") as f:
        f["x_train"] = x
        f["y_train"] = y
    raw = src.read_bytes()
    cut = tmp_path / "cut.h5"
    cut.write_bytes(raw[:len(raw) // 2])
    refused(tmp_path, cut, "format=hdf5")


# --- CIFAR-10 tarball --------------------------------------------------------------------

NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
         "truck"]


def cifar_batch(seed, n):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n).astype(np.uint8)
    planes = rng.integers(0, 256, (n, 3, 32, 32)).astype(np.uint8)
    raw = b"".join(bytes([labels[i]]) + planes[i].tobytes() for i in range(n))
    return raw, labels, planes.transpose(0, 2, 3, 1)


def cifar_tar(path, batches, meta="\n".join(NAMES) + "\n\n"):
    members = [("cifar-10-batches-bin/batches.meta.txt", meta.encode()),
               ("cifar-10-batches-bin/readme.html", b"<html></html>")]
    for name, raw in batches:
        members.append((f"cifar-10-batches-bin/{name}", raw))
    write_tar(path, members, "w:gz")


def test_cifar10_tarball(tmp_path):
    batches, xs, ys = [], [], []
    for k, name in enumerate([f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]):
        raw, labels, images = cifar_batch(k, 3)
        batches.append((name, raw))
        xs.append(images)
        ys.append(labels)
    src = tmp_path / "cifar-10-binary.tar.gz"
    cifar_tar(src, batches)
    r, t = imported(tmp_path, src)
    assert r["format"] == "cifar10" and (r["n_train"], r["n_test"]) == (15, 3)
    assert t["classes"] == [n.encode() for n in NAMES]
    assert np.array_equal(t["x_train"], np.concatenate(xs[:5]))
    assert np.array_equal(t["y_train"], np.concatenate(ys[:5]))
    assert np.array_equal(t["x_test"], xs[5]) and np.array_equal(t["y_test"], ys[5])
    # missing batch, partial record, bad label, bad meta
    cifar_tar(src, batches[:4] + batches[5:])
    refused(tmp_path, src, "format=cifar10", field="data_batch_5.bin")
    cifar_tar(src, batches[:5] + [("test_batch.bin", batches[5][1][:-1])])
    refused(tmp_path, src, "format=cifar10", words=["whole number"])
    bad = bytearray(batches[2][1])
    bad[3073] = 10
    cifar_tar(src, batches[:2] + [("data_batch_3.bin", bytes(bad))] + batches[3:])
    refused(tmp_path, src, "format=cifar10", words=["label 10 of record 1"])
    cifar_tar(src, batches, meta="a\nb\n")
    refused(tmp_path, src, "format=cifar10", field="batches.meta.txt")


# --- the tensor file, mapped --------------------------------------------------------------

def test_map_and_corrupt_tensor_file(tmp_path):
    x, y, xt, yt = mnist_like(n=10, m=4)
    src = tmp_path / "m.npz"
    np.savez(src, x_train=x, y_train=y, x_test=xt, y_test=yt)
    imported(tmp_path, src)
    path = tmp_path / "out" / "ds.tensor"
    p = subprocess.run([TOOL, "--map", str(path), "train"], capture_output=True, text=True)
    m = json.loads(p.stdout)
    assert (m["n"], m["h"], m["w"], m["c"]) == (10, 28, 28, 1)
    assert m["label_sum"] == int(y.sum()) and m["split"] == [5, 5]
    raw = bytearray(path.read_bytes())
    y0 = HEADER.unpack_from(raw)[10]
    raw[y0 + 2] = 200
    bad = tmp_path / "bad.tensor"
    bad.write_bytes(bytes(raw))
    p = subprocess.run([TOOL, "--map", str(bad), "train"], capture_output=True, text=True)
    assert p.returncode == 1 and "label 200 of example 2" in p.stdout
    bad.write_bytes(bytes(raw[:-3]))
    p = subprocess.run([TOOL, "--map", str(bad), "test"], capture_output=True, text=True)
    assert p.returncode == 1 and "header describes" in p.stdout


def test_map_float_targets_and_corrupt_target(tmp_path):
    x, _, xt, _ = mnist_like(n=10, m=4, shape=(2, 3))
    y = np.arange(20, dtype=np.float32).reshape(10, 2) / 4
    src = tmp_path / "r.npz"
    np.savez(src, x_train=x, y_train=y, x_test=xt, y_test=y[:4])
    imported(tmp_path, src)
    path = tmp_path / "out" / "ds.tensor"
    p = subprocess.run([TOOL, "--map", str(path), "train"], capture_output=True, text=True)
    m = json.loads(p.stdout)
    assert (m["n"], m["classes"], m["target_width"]) == (10, 0, 2)
    assert m["target_sum"] == float(y.astype(np.float64).sum()) and m["split"] == [5, 5]
    raw = bytearray(path.read_bytes())
    y0 = HEADER.unpack_from(raw)[10]
    raw[y0 + 12:y0 + 16] = struct.pack("<f", float("nan"))  # example 1, target 1
    bad = tmp_path / "bad.tensor"
    bad.write_bytes(bytes(raw))
    p = subprocess.run([TOOL, "--map", str(bad), "train"], capture_output=True, text=True)
    assert p.returncode == 1 and "target 1 of example 1 is not finite" in p.stdout, p.stdout
    raw = bytearray(path.read_bytes())
    struct.pack_into("<I", raw, 28, 3)  # a class count in a float-target file
    bad.write_bytes(bytes(raw))
    p = subprocess.run([TOOL, "--map", str(bad), "train"], capture_output=True, text=True)
    assert p.returncode == 1 and "target width" in p.stdout, p.stdout
