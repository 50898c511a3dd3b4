"""curriculum.data.datasets: built-in datasets, label noise, fingerprints, and the readers for real.

No network: the Hugging Face path reads a DatasetDict this file saves to disk, the folder path
reads PNGs this file writes, torchvision reads MNIST files this file writes in its raw format,
and CIFAR-100 super-classes are cut from a CIFAR-100-shaped cache this file writes.
"""

from __future__ import annotations

import math
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest

from curriculum.data import sources as data_sources
from curriculum.data.datasets import (
    CIFAR100_SUPERCLASSES,
    Dataset,
    Split,
    compute_fingerprint,
    default_cache_dir,
    list_datasets,
    load_dataset,
)
from scoring.errors import UserError

# ---------------------------------------------------------------------------------------------
# built-in datasets


def test_digits_shapes_split_and_classes():
    from sklearn.datasets import load_digits

    d = load_dataset()
    assert d.name == "digits"
    assert d.train.images.shape == (1347, 8, 8, 1) and d.test.images.shape == (450, 8, 8, 1)
    assert d.train.images.dtype == np.uint8 and d.train.labels.dtype == np.int64
    assert d.num_classes == 10 and d.classes == tuple(str(i) for i in range(10))
    assert d.image_shape == (8, 8, 1)
    assert d.train.images.max() == 255 and d.train.images.min() == 0
    # stratified: every class in both splits, the two splits add up to scikit-learn's counts
    full = np.bincount(load_digits().target)
    tr, te = np.bincount(d.train.labels, minlength=10), np.bincount(d.test.labels, minlength=10)
    assert (tr + te == full).all()
    assert np.abs(te - full * 450 / full.sum()).max() < 1
    assert d.split("train") is d.train and d.split("test") is d.test
    with pytest.raises(UserError):
        d.split("val")


@pytest.mark.parametrize("how", ["shipped file", "scikit-learn"])
def test_digits_are_scikit_learns_scaled_and_keyed_by_its_index(monkeypatch, how):
    """Read from the file scikit-learn ships (without importing it) or, where that file is not
    found, through ``load_digits``: either way each example is ``load_digits()``'s row ``id``,
    its pixels scaled from 0..16 to 0..255."""
    import importlib.util

    from sklearn.datasets import load_digits

    from curriculum.data import sources

    if how == "scikit-learn":
        find_spec = importlib.util.find_spec
        monkeypatch.setattr(importlib.util, "find_spec", lambda name: None if name == "sklearn" else find_spec(name))
    raw, bunch = sources.read_digits(), load_digits()
    for images, labels, ids in (
        (raw.train_images, raw.train_labels, raw.train_ids),
        (raw.test_images, raw.test_labels, raw.test_ids),
    ):
        assert np.array_equal(images[..., 0], np.rint(bunch.images[ids] * 255 / 16).astype(np.uint8))
        assert np.array_equal(labels, bunch.target[ids])
    assert sorted([*raw.train_ids, *raw.test_ids]) == list(range(1797))


def test_fingerprint_stable_and_changed_by_label_noise():
    a, b = load_dataset("digits"), load_dataset("digits")
    assert a.fingerprint == b.fingerprint == compute_fingerprint(a.train, a.test)
    assert len(a.fingerprint) == 64
    noisy = load_dataset("digits", label_noise=0.2)
    assert noisy.name == "digits+noise0.2"
    assert noisy.fingerprint != a.fingerprint
    other_seed = load_dataset("digits", label_noise=0.2, noise_seed=1)
    assert other_seed.name == "digits+noise0.2-seed1"
    assert other_seed.fingerprint != noisy.fingerprint
    assert (noisy.test.labels == a.test.labels).all()  # test labels untouched
    assert (noisy.clean_train_labels == a.train.labels).all()
    assert a.clean_train_labels is None
    # canonical names load back to the same data
    assert load_dataset(noisy.name).fingerprint == noisy.fingerprint
    assert load_dataset(other_seed.name).fingerprint == other_seed.fingerprint
    with pytest.raises(UserError):
        load_dataset("digits+noise0.2", label_noise=0.5)


@pytest.mark.parametrize("p", [0.1, 0.3, 0.6])
def test_label_noise_changes_about_p_times_k_minus_1_over_k(p):
    clean, noisy = load_dataset("digits"), load_dataset("digits", label_noise=p)
    changed = np.mean(noisy.train.labels != clean.train.labels)
    assert changed == pytest.approx(p * 9 / 10, abs=0.03)
    assert noisy.train.labels.min() >= 0 and noisy.train.labels.max() <= 9


def test_random_labels_are_independent_of_the_originals():
    for name, k in (("digits", 10), ("gaussian", 2)):
        clean, noisy = load_dataset(name), load_dataset(name, label_noise=1.0)
        assert noisy.name == f"{name}+noise1"
        m = len(clean.train)
        # agreement at chance level, and every (original, new) pair about equally often
        assert np.mean(noisy.train.labels == clean.train.labels) == pytest.approx(1 / k, abs=0.03)
        table = np.zeros((k, k))
        np.add.at(table, (clean.train.labels, noisy.train.labels), 1)
        expected = np.outer(np.bincount(clean.train.labels, minlength=k), np.ones(k) / k)
        chi2 = ((table - expected) ** 2 / expected).sum()
        dof = (k - 1) ** 2
        assert chi2 < dof + 5 * math.sqrt(2 * dof), (name, chi2)
        assert m == len(noisy.train)


@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan"), "lots"])
def test_bad_label_noise_is_a_user_error(bad):
    with pytest.raises(UserError):
        load_dataset("digits", label_noise=bad)


def test_bad_noise_seed_and_image_size_are_user_errors():
    with pytest.raises(UserError):
        load_dataset("digits", label_noise=0.1, noise_seed=-1)
    with pytest.raises(UserError):
        load_dataset("digits", image_size=0)


@pytest.mark.parametrize("name", ["nope", "cifar100:not-a-class", "torchvision:NoSuchSet", "", "hf:", "bogus:thing"])
def test_unknown_names_are_user_errors(name, tmp_path):
    with pytest.raises(UserError) as err:
        load_dataset(name, cache_dir=tmp_path)
    if name in ("nope", "bogus:thing"):
        assert "curriculum datasets" in str(err.value)


def test_missing_local_sources_are_user_errors(tmp_path):
    with pytest.raises(UserError):
        load_dataset(f"folder:{tmp_path / 'absent'}", cache_dir=tmp_path)
    with pytest.raises(UserError):
        load_dataset(f"hf:{tmp_path / 'absent'}", cache_dir=tmp_path)


def test_gabor_sizes_classes_and_channels():
    d = load_dataset("gabor")
    assert d.train.images.shape == (960, 32, 32, 3) and d.test.images.shape == (240, 32, 32, 3)
    assert d.num_classes == 12 and len(set(d.classes)) == 12
    assert (np.bincount(d.train.labels) == 80).all() and (np.bincount(d.test.labels) == 20).all()
    # each class is drawn in one channel on a grey (128) background; parity and angle in the name
    for k, cls in enumerate(d.classes):
        channel, angle, parity = cls.split("-")
        c = "RGB".index(channel)
        imgs = d.train.images[d.train.labels == k].astype(int)
        others = [i for i in range(3) if i != c]
        assert (imgs[..., others] == 128).all()
        assert np.abs(imgs[..., c] - 128).mean() > 5
        centre = imgs[:, 15:17, 15:17, c].mean()
        assert (centre > 200) if parity == "even" else (abs(centre - 128) < 40)
        assert int(angle) in (45, 90, 135, 180)
    # the class layout (no overlap) and the factors are checked in test_synthetic.py
    assert load_dataset("gabor").fingerprint == d.fingerprint
    assert load_dataset("gabor-overlap").num_classes == 12


def test_gaussian_sizes_quantisation_and_class_means():
    d = load_dataset("gaussian")
    assert d.train.images.shape == (5000, 32, 32, 3) and d.test.images.shape == (1000, 32, 32, 3)
    assert (np.bincount(d.train.labels) == 2500).all() and (np.bincount(d.test.labels) == 500).all()
    x = d.train.images.reshape(5000, -1).astype(np.float64)
    m0, m1 = x[d.train.labels == 0].mean(), x[d.train.labels == 1].mean()
    assert m0 == pytest.approx(128, abs=0.1)
    assert m1 - m0 == pytest.approx(0.1 * 32, abs=0.1)
    assert x[d.train.labels == 0].std() == pytest.approx(32, abs=0.3)
    assert load_dataset("gaussian").fingerprint == d.fingerprint


def test_image_size_resizes_and_is_named():
    d = load_dataset("digits", image_size=16)
    assert d.name == "digits+size16" and d.image_shape == (16, 16, 1)
    assert load_dataset("digits+size16").fingerprint == d.fingerprint


def test_list_datasets_names_every_source():
    names = [n for n, _ in list_datasets()]
    for expected in (
        "digits",
        "gabor",
        "gabor-overlap",
        "gaussian",
        "shapes",
        "cifar10",
        "cifar100",
        "mnist",
        "fashion-mnist",
        "svhn",
        "cifar100:small-mammals",
        "cifar100:fish",
        "cifar100:insects",
    ):
        assert expected in names
    assert sum(n.startswith("cifar100:") for n in names) == 20
    assert any(n.startswith("hf:") for n in names)
    assert any(n.startswith("torchvision:") for n in names)
    assert any(n.startswith("folder:") for n in names)
    assert all(isinstance(desc, str) and desc for _, desc in list_datasets())


def test_default_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("CURRICULUM_CACHE", str(tmp_path))
    assert default_cache_dir() == tmp_path
    monkeypatch.delenv("CURRICULUM_CACHE")
    assert default_cache_dir() == Path.home() / ".cache" / "curriculum"


def test_dataset_build_and_split_validation():
    train = Split(np.zeros((4, 2, 2, 3), np.uint8), np.array([0, 1, 0, 1], np.int64))
    ds = Dataset.build("mine", train, train, ["a", "b"])
    assert ds.fingerprint == compute_fingerprint(train, train) and ds.num_classes == 2
    with pytest.raises(ValueError):
        Split(np.zeros((4, 2, 2, 2), np.uint8), np.zeros(4, np.int64))


# ---------------------------------------------------------------------------------------------
# Hugging Face datasets, for real, from a DatasetDict saved to disk


def _save_hf(path: Path, splits: dict[str, tuple[np.ndarray, np.ndarray]], names) -> None:
    import datasets

    features = datasets.Features(
        {
            "id": datasets.Value("string"),
            "picture": datasets.Image(),
            "kind": datasets.ClassLabel(names=list(names)),
        }
    )
    dd = datasets.DatasetDict(
        {
            split: datasets.Dataset.from_dict(
                {"id": [f"{split}{i}" for i in range(len(y))], "picture": list(x), "kind": y.tolist()},
                features=features,
            )
            for split, (x, y) in splits.items()
        }
    )
    dd.save_to_disk(str(path))


def test_hf_saved_dataset_round_trips_and_is_cached(tmp_path):
    rng = np.random.default_rng(1)
    tr_x = rng.integers(0, 256, (40, 7, 9, 3), dtype=np.uint8)
    te_x = rng.integers(0, 256, (12, 7, 9, 3), dtype=np.uint8)
    tr_y, te_y = rng.integers(0, 3, 40), rng.integers(0, 3, 12)
    src, cache = tmp_path / "saved", tmp_path / "cache"
    _save_hf(src, {"train": (tr_x, tr_y), "test": (te_x, te_y)}, ["ant", "bee", "cat"])

    d = load_dataset(f"hf:{src}", cache_dir=cache)
    assert d.name == f"hf:{src.resolve()}"
    assert d.classes == ("ant", "bee", "cat")
    assert (d.train.images == tr_x).all() and (d.test.images == te_x).all()
    assert (d.train.labels == tr_y).all() and (d.test.labels == te_y).all()
    files = list(cache.rglob("*.npz"))
    assert len(files) == 1 and not list(cache.rglob("*.tmp"))

    shutil.rmtree(src)  # the second load needs only the cache
    again = load_dataset(f"hf:{src}", cache_dir=cache)
    assert again.fingerprint == d.fingerprint and again.classes == d.classes

    # a changed source is read again, not served stale from the cache
    _save_hf(src, {"train": (tr_x[:20], tr_y[:20]), "test": (te_x, te_y)}, ["ant", "bee", "cat"])
    changed = load_dataset(f"hf:{src}", cache_dir=cache)
    assert len(changed.train) == 20 and changed.fingerprint != d.fingerprint


def test_hf_grey_images_validation_split_and_noise(tmp_path):
    rng = np.random.default_rng(2)
    tr_x = rng.integers(0, 256, (30, 5, 5), dtype=np.uint8)
    va_x = rng.integers(0, 256, (10, 5, 5), dtype=np.uint8)
    tr_y, va_y = np.arange(30) % 2, np.arange(10) % 2
    _save_hf(tmp_path / "g", {"train": (tr_x, tr_y), "validation": (va_x, va_y)}, ["no", "yes"])
    d = load_dataset(f"hf:{tmp_path / 'g'}", cache_dir=tmp_path / "c", label_noise=0.5)
    assert d.image_shape == (5, 5, 1)
    assert (d.test.images[..., 0] == va_x).all() and (d.test.labels == va_y).all()
    assert (d.clean_train_labels == tr_y).all()
    assert d.name.endswith("+noise0.5")


def test_hf_train_only_is_split_80_20(tmp_path):
    rng = np.random.default_rng(3)
    x = rng.integers(0, 256, (50, 4, 4, 3), dtype=np.uint8)
    y = np.arange(50) % 5
    _save_hf(tmp_path / "t", {"train": (x, y)}, list("abcde"))
    d = load_dataset(f"hf:{tmp_path / 't'}", cache_dir=tmp_path / "c")
    assert len(d.train) == 40 and len(d.test) == 10
    assert (np.bincount(d.test.labels) == 2).all()


def test_hf_hub_offline_is_a_user_error(monkeypatch, tmp_path):
    import datasets
    import huggingface_hub.constants

    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(UserError) as err:
        load_dataset("hf:someone/not-there", cache_dir=tmp_path)
    assert "hf:PATH" in str(err.value)


def test_cifar100_superclass_from_a_cifar100_shaped_cache(tmp_path):
    # a stand-in for the cached uoft-cs/cifar100: Hugging Face's fine names (alphabetical,
    # with its "cra" typo) and coarse names, two train and one test image per fine class
    fine = sorted(f for fs in CIFAR100_SUPERCLASSES.values() for f in fs)
    fine_hf = ["cra" if f == "crab" else f for f in fine]
    coarse_names = [s.replace("-", "_") for s in CIFAR100_SUPERCLASSES]
    coarse_of = {f: i for i, fs in enumerate(CIFAR100_SUPERCLASSES.values()) for f in fs}
    rng = np.random.default_rng(4)

    def split(per):
        y = np.repeat(np.arange(100), per)
        return rng.integers(0, 256, (len(y), 32, 32, 3), dtype=np.uint8), y

    (tr_x, tr_y), (te_x, te_y) = split(2), split(1)
    raw = data_sources.RawData(
        tr_x,
        tr_y,
        te_x,
        te_y,
        tuple(fine_hf),
        {
            "train_coarse_label": np.array([coarse_of[fine[i]] for i in tr_y]),
            "test_coarse_label": np.array([coarse_of[fine[i]] for i in te_y]),
            "coarse_label_names": np.array(coarse_names),
        },
    )
    data_sources._write_cache(data_sources.cache_path(tmp_path, "cifar100", None), raw, None, "cifar100", None)

    d = load_dataset("cifar100:small_mammals", cache_dir=tmp_path)
    assert d.name == "cifar100:small-mammals"
    assert d.classes == ("hamster", "mouse", "rabbit", "shrew", "squirrel")
    assert (np.bincount(d.train.labels) == 2).all() and (np.bincount(d.test.labels) == 1).all()
    hamster = tr_x[tr_y == fine.index("hamster")]
    assert (d.train.images[d.train.labels == 0] == hamster).all()
    assert load_dataset("cifar100:Small Mammals", cache_dir=tmp_path).fingerprint == d.fingerprint
    inv = load_dataset("cifar100:non-insect-invertebrates", cache_dir=tmp_path)
    assert inv.classes[0] == "crab"
    assert "crab" in load_dataset("cifar100", cache_dir=tmp_path).classes


# ---------------------------------------------------------------------------------------------
# image folders, for real, on PNGs written here


def _write_png(path: Path, array: np.ndarray) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def test_folder_with_train_and_test_folders(tmp_path):
    rng = np.random.default_rng(5)
    root, written = tmp_path / "imgs", {}
    for split, n in (("train", 4), ("test", 2)):
        for cls in ("cat", "dog"):
            for i in range(n):
                img = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
                _write_png(root / split / cls / f"{i:03d}.png", img)
                written[(split, cls, i)] = img
    d = load_dataset(f"folder:{root}", cache_dir=tmp_path / "cache")
    assert d.name == f"folder:{root.resolve()}"
    assert d.classes == ("cat", "dog") and d.image_shape == (6, 8, 3)
    assert list(d.train.labels) == [0] * 4 + [1] * 4 and list(d.test.labels) == [0, 0, 1, 1]
    assert (d.train.images[5] == written[("train", "dog", 1)]).all()
    assert (d.test.images[0] == written[("test", "cat", 0)]).all()
    assert len(list((tmp_path / "cache").rglob("*.npz"))) == 1
    again = load_dataset(f"folder:{root}", cache_dir=tmp_path / "cache")
    assert again.fingerprint == d.fingerprint


def test_folder_of_classes_is_split_80_20_and_resized(tmp_path):
    rng = np.random.default_rng(6)
    root = tmp_path / "flat"
    for cls in ("a", "b", "c"):
        for i in range(10):
            size = (12, 10) if i == 0 else (8, 8)  # one odd size a class
            _write_png(root / cls / f"{i}.png", rng.integers(0, 256, size, dtype=np.uint8))
    d = load_dataset(f"folder:{root}", cache_dir=tmp_path / "cache")
    assert d.classes == ("a", "b", "c")
    assert d.image_shape == (8, 8, 1)  # grey PNGs, resized to the most common size
    assert (np.bincount(d.train.labels) == 8).all() and (np.bincount(d.test.labels) == 2).all()
    assert load_dataset(f"folder:{root}", cache_dir=tmp_path / "cache").fingerprint == d.fingerprint
    big = load_dataset(f"folder:{root}", cache_dir=tmp_path / "cache", image_size=12)
    assert big.image_shape == (12, 12, 1) and big.name.endswith("+size12")


# ---------------------------------------------------------------------------------------------
# torchvision, on MNIST files written here in its raw format (nothing downloaded)


def _write_idx(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    magic = 0x0803 if array.ndim == 3 else 0x0801
    path.write_bytes(
        struct.pack(">I", magic) + struct.pack(f">{array.ndim}I", *array.shape) + array.astype(np.uint8).tobytes()
    )


def test_torchvision_mnist_from_raw_files(tmp_path):
    rng = np.random.default_rng(7)
    raw = tmp_path / "torchvision" / "MNIST" / "raw"
    tr_x, te_x = (rng.integers(0, 256, (n, 28, 28), dtype=np.uint8) for n in (20, 6))
    tr_y, te_y = rng.integers(0, 10, 20), rng.integers(0, 10, 6)
    _write_idx(raw / "train-images-idx3-ubyte", tr_x)
    _write_idx(raw / "train-labels-idx1-ubyte", tr_y)
    _write_idx(raw / "t10k-images-idx3-ubyte", te_x)
    _write_idx(raw / "t10k-labels-idx1-ubyte", te_y)
    d = load_dataset("torchvision:MNIST", cache_dir=tmp_path)
    assert d.name == "torchvision:MNIST" and d.num_classes == 10
    assert (d.train.images[..., 0] == tr_x).all() and (d.test.labels == te_y).all()
    assert len(list(tmp_path.glob("torchvision_MNIST*/*.npz"))) == 1


def test_torchvision_missing_files_are_a_user_error(tmp_path):
    with pytest.raises(UserError):  # ImageNet cannot be downloaded: its archives are missing
        load_dataset("torchvision:ImageNet", cache_dir=tmp_path)
