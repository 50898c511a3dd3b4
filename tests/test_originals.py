"""curriculum.data.originals: the standard datasets read from their original files (--data-dir).

Each format is written here, small, with the original's byte layout: idx headers (gzipped or not),
Python 2 pickles with the authors' keys (in a folder, and in a .tar.gz whose members come in the
authors' order), Matlab 5 files with SVHN's variables. The tests at the end read the real
Fashion-MNIST of Debian's dataset-fashion-mnist package and skip where it is not installed.
"""

from __future__ import annotations

import gzip
import io
import os
import pickle
import struct
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, run_cli, run_clis

from curriculum.data import originals
from curriculum.data.datasets import CIFAR100_SUPERCLASSES, load_dataset
from scoring.errors import UserError

PACKAGE = Path("/usr/share/datasets/fashion-mnist")
needs_package = pytest.mark.skipif(
    not (PACKAGE / "train-images-idx3-ubyte.gz").is_file(),
    reason="needs Debian's dataset-fashion-mnist (apt-get install it)",
)


# ---------------------------------------------------------------------------------------------
# writers of the original formats


def write_idx(path: Path, array: np.ndarray, gz: bool = False) -> Path:
    """LeCun's idx: 0x00 0x00, type 0x08 (unsigned byte), the number of dimensions, each dimension
    as a big-endian int32, then the values."""
    header = bytes([0, 0, 8, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    data = header + array.astype(np.uint8).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    if gz:  # compressed here, by this gzip: other bytes than the authors' file, the same content
        path = path.with_name(path.name + ".gz")
        data = gzip.compress(data, compresslevel=9, mtime=0)
    path.write_bytes(data)
    return path


def idx_set(folder: Path, n_train: int = 12, n_test: int = 5, gz=(True, False, False, True), seed: int = 0):
    rng = np.random.default_rng(seed)
    arrays = [
        rng.integers(0, 256, (n_train, 28, 28)),
        rng.integers(0, 10, n_train),
        rng.integers(0, 256, (n_test, 28, 28)),
        rng.integers(0, 10, n_test),
    ]
    for name, array, z in zip(originals.IDX_FILES, arrays, gz):
        write_idx(folder / name, array, z)
    return arrays


class Py2Pickler(pickle._Pickler):
    """Writes what Python 2's cPickle wrote for the CIFAR batches (protocol 2): strings as
    BINSTRING opcodes, numpy arrays through ``numpy.core.multiarray._reconstruct``."""

    dispatch = dict(pickle._Pickler.dispatch)

    def save_py2_str(self, obj):
        data = obj.encode("latin1") if isinstance(obj, str) else obj
        if len(data) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(data)]) + data)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(data)) + data)
        self.memoize(obj)

    dispatch[bytes] = save_py2_str
    dispatch[str] = save_py2_str

    def save_global(self, obj, name=None):
        if getattr(obj, "__name__", None) == "_reconstruct":
            self.write(pickle.GLOBAL + b"numpy.core.multiarray\n_reconstruct\n")
            self.memoize(obj)
            return
        super().save_global(obj, name)


def py2_pickle(obj) -> bytes:
    out = io.BytesIO()
    Py2Pickler(out, protocol=2).dump(obj)
    return out.getvalue()


def cifar_batch(rng, n: int, labels: dict, label: str) -> dict:
    return {
        "batch_label": f"{label} of 1",
        "data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
        "filenames": [f"img_{label}_{i:06d}.png" for i in range(n)],
        **labels,
    }


def write_members(folder: Path, root: str, members: dict, archive: str | None) -> None:
    """The members as files under folder/root, or as folder/archive (a .tar.gz, members in the
    order given, as in the authors' archive)."""
    if archive is None:
        (folder / root).mkdir(parents=True)
        for name, data in members.items():
            (folder / root / name).write_bytes(data)
        return
    folder.mkdir(parents=True, exist_ok=True)
    with tarfile.open(folder / archive, "w:gz") as tar:
        info = tarfile.TarInfo(root)
        info.type = tarfile.DIRTYPE
        tar.addfile(info)
        for name, data in members.items():
            info = tarfile.TarInfo(f"{root}/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


CIFAR10_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def cifar10_files(folder: Path, archive: bool, n: int = 4) -> dict:
    rng = np.random.default_rng(1)
    batches = {
        name: cifar_batch(rng, n, {"labels": [int(v) for v in rng.integers(0, 10, n)]}, name)
        for name in (*(f"data_batch_{k}" for k in range(1, 6)), "test_batch")
    }
    meta = {"label_names": CIFAR10_NAMES, "num_cases_per_batch": n, "num_vis": 3072}
    order = [
        "data_batch_4",
        "readme.html",
        "test_batch",
        "data_batch_3",
        "batches.meta",
        "data_batch_2",
        "data_batch_5",
        "data_batch_1",
    ]  # the authors' archive lists its members so
    data = {
        "readme.html": b"<html></html>",
        "batches.meta": py2_pickle(meta),
        **{k: py2_pickle(v) for k, v in batches.items()},
    }
    write_members(
        folder, "cifar-10-batches-py", {k: data[k] for k in order}, "cifar-10-python.tar.gz" if archive else None
    )
    return batches


def image_of(row: np.ndarray) -> np.ndarray:
    """A CIFAR row (1024 red, 1024 green, 1024 blue values, each plane row-major) as H x W x RGB."""
    return np.stack([row[k * 1024 : (k + 1) * 1024].reshape(32, 32) for k in range(3)], axis=-1)


def cifar100_files(folder: Path, archive: bool) -> tuple[dict, list[str], list[str]]:
    fine = sorted(f for fines in CIFAR100_SUPERCLASSES.values() for f in fines)
    coarse = [c.replace("-", "_") for c in CIFAR100_SUPERCLASSES]
    coarse_of = {f: k for k, fines in enumerate(CIFAR100_SUPERCLASSES.values()) for f in fines}
    rng = np.random.default_rng(2)
    splits = {}
    for name, per in (("train", 2), ("test", 1)):
        fine_labels = [k for k in range(100) for _ in range(per)]
        labels = {"fine_labels": fine_labels, "coarse_labels": [coarse_of[fine[k]] for k in fine_labels]}
        splits[name] = cifar_batch(rng, 100 * per, labels, name)
    meta = {"fine_label_names": fine, "coarse_label_names": coarse}
    members = {name: py2_pickle(splits[name]) for name in ("train", "test")} | {"meta": py2_pickle(meta)}
    write_members(folder, "cifar-100-python", members, "cifar-100-python.tar.gz" if archive else None)
    return splits, fine, coarse


# ---------------------------------------------------------------------------------------------
# idx: MNIST and Fashion-MNIST


@pytest.mark.parametrize(
    "name, layout", [("mnist", "."), ("fashion-mnist", "FashionMNIST/raw"), ("fashion-mnist", "fashion-mnist")]
)
def test_idx_files_gzipped_or_not_read_with_the_hub_ids_and_classes(tmp_path, name, layout):
    tr_x, tr_y, te_x, te_y = idx_set(tmp_path / "data" / layout)
    d = load_dataset(name, data_dir=tmp_path / "data", cache_dir=tmp_path / "cache")
    assert d.name == name and d.image_shape == (28, 28, 1)
    assert (d.train.images[..., 0] == tr_x).all() and (d.test.images[..., 0] == te_x).all()
    assert (d.train.labels == tr_y).all() and (d.test.labels == te_y).all()
    assert list(d.train.ids) == [f"train/{i}" for i in range(12)]
    assert list(d.test.ids) == [f"test/{i}" for i in range(5)]
    assert d.classes == (originals.FASHION_CLASSES if name == "fashion-mnist" else tuple("0123456789"))
    assert d.classes[0] == "T - shirt / top" or name == "mnist"  # the hub's spelling, not torchvision's


def test_suffixes_apply_to_local_copies(tmp_path):
    tr_x, tr_y, _, _ = idx_set(tmp_path, n_train=12)
    d = load_dataset("fashion-mnist+part1of3+noise0.5", data_dir=tmp_path, cache_dir=tmp_path / "cache")
    assert d.name == "fashion-mnist+noise0.5+part1of3" and len(d.train) == 4 and len(d.test) == 5
    keep = [int(i.split("/")[1]) for i in d.train.ids]
    assert (d.train.images[..., 0] == tr_x[keep]).all() and (d.clean_train_labels == tr_y[keep]).all()
    small = load_dataset("fashion-mnist+size14", data_dir=tmp_path, cache_dir=tmp_path / "cache")
    assert small.name == "fashion-mnist+size14" and small.image_shape == (14, 14, 1)


def test_missing_files_are_named_in_one_sentence(tmp_path):
    idx_set(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(UserError) as err:
        load_dataset("mnist", data_dir=tmp_path, cache_dir=tmp_path / "cache")
    text = str(err.value)
    assert all(f in text for f in originals.IDX_FILES) and str(tmp_path) in text and text.count(". ") == 0
    with pytest.raises(UserError, match="not a folder"):
        load_dataset("mnist", data_dir=tmp_path / "nope", cache_dir=tmp_path / "cache")
    for name in ("cifar10", "cifar100:people", "svhn"):
        with pytest.raises(UserError, match="No copy of"):
            load_dataset(name, data_dir=tmp_path, cache_dir=tmp_path / "cache")


@pytest.mark.parametrize("name", ["digits", "shapes", "hf:foo/bar", "folder:x"])
def test_data_dir_is_refused_for_other_datasets(tmp_path, name):
    with pytest.raises(UserError, match="--data-dir reads the original files of mnist, fashion-mnist"):
        load_dataset(name, data_dir=tmp_path, cache_dir=tmp_path / "cache")


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda p: p.write_bytes(b"\x00\x00\x0d\x03" + bytes(20)), "not an idx file of unsigned bytes"),
        (lambda p: p.write_bytes(p.read_bytes()[:-7]), "truncated"),
        (lambda p: p.write_bytes(gzip.compress(p.read_bytes())[:-9]), "damaged gzip"),
    ],
)
def test_damaged_idx_files_are_user_errors(tmp_path, damage, message):
    idx_set(tmp_path, gz=(False,) * 4)
    damage(tmp_path / "train-images-idx3-ubyte")
    with pytest.raises(UserError, match=message):
        load_dataset("mnist", data_dir=tmp_path, cache_dir=tmp_path / "cache")


def test_labels_that_do_not_match_the_images_are_user_errors(tmp_path):
    idx_set(tmp_path)
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(11, np.uint8))  # read before the .gz beside it
    with pytest.raises(UserError, match="11 labels for 12 images"):
        load_dataset("mnist", data_dir=tmp_path, cache_dir=tmp_path / "cache")


# ---------------------------------------------------------------------------------------------
# CIFAR-10 and CIFAR-100 pickles, extracted or archived


@pytest.mark.parametrize("archive", [False, True])
def test_cifar10_pickles_in_the_hub_row_order(tmp_path, archive):
    batches = cifar10_files(tmp_path, archive)
    d = load_dataset("cifar10", data_dir=tmp_path, cache_dir=tmp_path / "cache")
    assert d.classes == tuple(CIFAR10_NAMES) and d.image_shape == (32, 32, 3)
    order = originals.CIFAR10_TRAIN  # the hub's rows: data_batch_4, 3, 2, 5, 1
    assert order == ("data_batch_4", "data_batch_3", "data_batch_2", "data_batch_5", "data_batch_1")
    rows = np.concatenate([batches[b]["data"] for b in order])
    assert (d.train.labels == np.concatenate([batches[b]["labels"] for b in order])).all()
    assert all((d.train.images[i] == image_of(rows[i])).all() for i in range(len(rows)))
    assert (d.test.labels == batches["test_batch"]["labels"]).all()
    assert (d.test.images[3] == image_of(batches["test_batch"]["data"][3])).all()
    assert list(d.train.ids[:2]) == ["train/0", "train/1"] and len(d.train) == 20 and len(d.test) == 4


@pytest.mark.parametrize("archive", [False, True])
def test_cifar100_pickles_and_a_superclass(tmp_path, archive):
    splits, fine, coarse = cifar100_files(tmp_path / "cifar100", archive)  # in a folder named for the dataset
    d = load_dataset("cifar100", data_dir=tmp_path, cache_dir=tmp_path / "cache")
    assert d.classes == tuple(fine) and "crab" in d.classes and len(d.train) == 200 and len(d.test) == 100
    assert (d.train.labels == splits["train"]["fine_labels"]).all()
    assert (d.train.images[5] == image_of(splits["train"]["data"][5])).all()
    sub = load_dataset("cifar100:small-mammals", data_dir=tmp_path, cache_dir=tmp_path / "cache")
    assert sub.classes == CIFAR100_SUPERCLASSES["small-mammals"]
    assert (len(sub.train), len(sub.test)) == (10, 5)
    first = fine.index("hamster")
    assert list(sub.test.ids)[0] == f"test/{first}" and (sub.test.images[0] == d.test.images[first]).all()


def test_a_pickle_that_would_run_code_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.system, ("touch pwned",))

    folder = tmp_path / "cifar-10-batches-py"
    cifar10_files(tmp_path, archive=False)
    (folder / "data_batch_2").write_bytes(pickle.dumps({"data": Evil()}, protocol=2))
    with pytest.raises(UserError, match="not a CIFAR python pickle"):
        load_dataset("cifar10", data_dir=folder, cache_dir=tmp_path / "cache")  # DIR: the extracted folder
    assert not (tmp_path / "pwned").exists() and not Path("pwned").exists()


# ---------------------------------------------------------------------------------------------
# SVHN .mat


def test_svhn_mat_files(tmp_path):
    from scipy.io import savemat

    rng = np.random.default_rng(3)
    written = {}
    (tmp_path / "svhn").mkdir()
    for name, n in (("train_32x32.mat", 7), ("test_32x32.mat", 3)):
        x = rng.integers(0, 256, (32, 32, 3, n), dtype=np.uint8)  # as the authors store it: H, W, C, N
        y = rng.integers(1, 11, (n, 1)).astype(np.uint8)  # 1..10, 10 is the digit 0
        y[0] = 10
        savemat(tmp_path / "svhn" / name, {"X": x, "y": y})  # Matlab 5, as the authors' files
        written[name] = (x, y)
    d = load_dataset("svhn", data_dir=tmp_path, cache_dir=tmp_path / "cache")
    x, y = written["train_32x32.mat"]
    assert d.classes == tuple("0123456789") and len(d.train) == 7 and len(d.test) == 3
    assert (d.train.images[2] == x[..., 2]).all() and d.train.labels[0] == 0
    assert (d.train.labels == y[:, 0] % 10).all() and list(d.test.ids) == ["test/0", "test/1", "test/2"]


# ---------------------------------------------------------------------------------------------
# the cache


def test_a_changed_file_is_read_again_even_with_its_old_size_and_mtime(tmp_path):
    idx_set(tmp_path, gz=(False,) * 4)
    cache = tmp_path / "cache"
    first = load_dataset("mnist", data_dir=tmp_path, cache_dir=cache)
    labels = tmp_path / "t10k-labels-idx1-ubyte"
    before = labels.stat()
    changed = (first.test.labels + 1) % 10
    write_idx(labels, changed)  # same size
    os.utime(labels, ns=(before.st_atime_ns, before.st_mtime_ns))  # and the mtime set back, as cp -p would
    second = load_dataset("mnist", data_dir=tmp_path, cache_dir=cache)
    assert (second.test.labels == changed).all() and second.fingerprint != first.fingerprint
    assert load_dataset("mnist", data_dir=tmp_path, cache_dir=cache).fingerprint == second.fingerprint
    for path in tmp_path.glob("*-ubyte"):  # the files gone: the cache is what is left, as for folder:
        path.unlink()
    assert load_dataset("mnist", data_dir=tmp_path, cache_dir=cache).fingerprint == second.fingerprint


def test_two_processes_loading_first_together_share_one_cache(tmp_path):
    idx_set(tmp_path / "data", n_train=3000, n_test=500)
    code = (
        "import sys; from curriculum.data.datasets import load_dataset; "
        "print(load_dataset('fashion-mnist', data_dir=sys.argv[1], cache_dir=sys.argv[2]).fingerprint)"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, tmp_path / "data", tmp_path / "cache"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outs = [proc.communicate(timeout=300) for proc in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert outs[0][0] == outs[1][0]
    caches = [p for p in (tmp_path / "cache").rglob("*") if p.is_file() and not p.name.endswith(".lock")]
    assert [p.name for p in caches] == ["arrays.npz"]  # no temporary file left behind
    again = load_dataset("fashion-mnist", data_dir=tmp_path / "data", cache_dir=tmp_path / "cache")
    assert again.fingerprint == outs[0][0].strip()


# ---------------------------------------------------------------------------------------------
# the command line


def test_cli_data_dir_flag_and_refusal(tmp_path):
    assert "--data-dir" in run_cli(["score", "--help"], tmp_path).stdout
    for stage in ("stats", "train", "learners"):
        assert "--data-dir" in run_cli([stage, "--help"], tmp_path).stdout
    proc = run_cli(["stats", "--dataset", "digits", "--data-dir", tmp_path], tmp_path, check=False)
    assert proc.returncode == 2 and "--data-dir reads the original files" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    idx_set(tmp_path / "data" / "mnist", n_train=30, n_test=10)
    data = tmp_path / "data"
    stats = run_cli(["stats", "--dataset", "mnist", "--data-dir", data, "--workers", 1], tmp_path)
    assert "segments" in stats.stdout and "No score run at" in stats.stdout


# ---------------------------------------------------------------------------------------------
# the real files of Debian's dataset-fashion-mnist


@needs_package
def test_the_packaged_fashion_mnist(tmp_path):
    d = load_dataset("fashion-mnist", data_dir=PACKAGE, cache_dir=tmp_path)
    assert d.image_shape == (28, 28, 1) and (len(d.train), len(d.test)) == (60000, 10000)
    assert (np.bincount(d.train.labels) == 6000).all() and (np.bincount(d.test.labels) == 1000).all()
    assert d.classes == originals.FASHION_CLASSES
    assert d.train.images.max() == 255 and d.train.images.min() == 0


@needs_package
def test_image_statistics_of_the_packaged_images_are_not_degenerate():
    """At 28x28 the segment count (Felzenszwalb's k 500, min size 20) and the 10x10-window entropy
    must still tell images apart for `curriculum stats` to relate them to the order."""
    from curriculum.stages.stats import ENTROPY_WINDOW
    from stats.images import compute_statistics

    images = load_dataset("fashion-mnist", data_dir=PACKAGE).test.images[:300]
    values = compute_statistics(images, workers=1, window=ENTROPY_WINDOW)
    counts = np.unique(values["segments"], return_counts=True)[1]
    assert len(counts) >= 4 and counts.max() <= 0.5 * len(images)  # several counts, none for most images
    entropy = values["entropy"]  # bits; a 10x10 window holds at most 100 values: log2(100)
    assert 0 < entropy.min() and entropy.max() < np.log2(100) and np.ptp(np.percentile(entropy, [5, 95])) > 1


@needs_package
def test_score_train_and_compare_on_the_packaged_files(tmp_path):
    part = "fashion-mnist+part0of60"  # 1,000 train images; all 10,000 test images
    common = ["--dataset", part, "--data-dir", PACKAGE, "--arch", "lenet5", "--quiet"]
    small = ["--members", "2", "--epochs", "0.25", "--eval-every", "0.25", "--processes", "1", *common]
    runs = [tmp_path / "a", tmp_path / "b"]
    run_clis([["score", "--seed", seed, "--out", run, *small] for run, seed in zip(runs, (0, 1))], tmp_path)
    run_cli(["compare", *runs, "--out", tmp_path / "cmp", "--quiet"], tmp_path)
    assert "Spearman" in (tmp_path / "cmp" / "report.md").read_text()
    run_cli(
        [
            "train",
            "--scores",
            runs[0],
            "--steps",
            "10",
            "--eval-every",
            "10",
            "--seeds",
            "1",
            "--orders",
            "curriculum",
            "--out",
            tmp_path / "train",
            *common,
        ],
        tmp_path,
    )
    assert (tmp_path / "train" / "results.csv").is_file()
