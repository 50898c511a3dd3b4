"""Readers behind ``curriculum.data.datasets``: they turn a source into uint8 arrays.

Sources: scikit-learn's digits, Hugging Face ``datasets`` (hub id or a local folder), torchvision
dataset classes, and image folders. Everything that decodes image files goes through
``decode_images`` (all images of both splits in one go, in a thread pool) and is cached on disk
as one ``.npz`` by ``cached``, so only the first load of a dataset pays for decoding.

Every reader also returns each example's ``id`` (see ``scoring.ids``): the source's own identity,
so scores survive re-splitting and reordering.

Image mode: a dataset whose images are all grey (PIL modes 1, L, LA, I, I;16, F) becomes
C = 1; anything else is converted to RGB (alpha dropped), C = 3.
Image size: with ``image_size = S`` every image is resized to S x S; otherwise, if the images
differ in size, every image is resized to the most common (height, width) over both splits (ties:
the larger area, then the smaller height). Resizing is PIL bilinear, antialiased when shrinking;
aspect ratio is not kept. Decoding uses OpenCV (PIL for what OpenCV cannot read); 16-bit
images keep their high byte.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import io
import json
import logging
import os
import re
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from scoring.errors import UserError
from scoring.files import atomic_write
from scoring.ids import as_ids

log = logging.getLogger("curriculum.data.datasets")

CACHE_FORMAT = 2  # 2: example ids
IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"}
GREY_MODES = {"1", "L", "LA", "I", "I;16", "I;16L", "I;16B", "F"}
TEST_SPLIT_NAMES = ("test", "validation", "valid", "val")
SPLIT_SEED = 0
SPLIT_TEST_FRACTION = 0.2
DIGITS_TEST_SIZE = 450


@dataclass
class RawData:
    """What a reader returns: both splits as arrays, class names, optional extra label arrays,
    the example ids of each split (None: positions, ``<split>/<i>``) and, for generated data,
    each split's generating factors (name -> 1-D array, one value an example; see
    ``curriculum.data.Split.factors``). Factors are not cached: only generated sources, which
    are not cached, have them."""

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    classes: tuple[str, ...]
    extras: dict[str, np.ndarray] = field(default_factory=dict)
    train_ids: np.ndarray | None = None
    test_ids: np.ndarray | None = None

    def ids(self, split: str) -> np.ndarray:
        stored = self.train_ids if split == "train" else self.test_ids
        size = len(self.train_labels if split == "train" else self.test_labels)
        return as_ids(stored) if stored is not None else np.array([f"{split}/{i}" for i in range(size)], dtype=object)

    train_factors: dict[str, np.ndarray] = field(default_factory=dict)
    test_factors: dict[str, np.ndarray] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------
# splitting, decoding, resizing


def stratified_split(
    labels: np.ndarray, *, n_test: int | None = None, test_fraction: float = SPLIT_TEST_FRACTION, seed: int = SPLIT_SEED
) -> tuple[np.ndarray, np.ndarray]:
    """Seeded stratified split -> (train indices, test indices), each in ascending order.

    The test set has ``n_test`` (default ``round(test_fraction * M)``) examples, allotted to the
    classes in proportion to their sizes by largest remainder (ties: lower class first); every
    class keeps at least one training example. Within a class the test examples are the first
    of ``rng.permutation`` (``rng = np.random.default_rng(seed)``, classes in ascending order).
    """
    labels = np.asarray(labels)
    m = len(labels)
    n_test = int(round(test_fraction * m)) if n_test is None else int(n_test)
    classes, counts = np.unique(labels, return_counts=True)
    quota = counts * n_test / max(m, 1)
    take = np.floor(quota).astype(np.int64)
    order = sorted(range(len(classes)), key=lambda k: (-(quota[k] - take[k]), k))
    for k in order[: n_test - int(take.sum())]:
        take[k] += 1
    take = np.minimum(take, np.maximum(counts - 1, 0))
    rng = np.random.default_rng(seed)
    test = []
    for cls, t in zip(classes, take):
        members = np.flatnonzero(labels == cls)
        test.append(rng.permutation(members)[:t])
    test_idx = np.sort(np.concatenate(test)) if test else np.zeros(0, np.int64)
    train_mask = np.ones(m, bool)
    train_mask[test_idx] = False
    return np.flatnonzero(train_mask), test_idx


def resize_images(images: np.ndarray, size: int | tuple[int, int]) -> np.ndarray:
    """Resize uint8 [M, H, W, C] to (size, size) or (h, w) with PIL bilinear."""
    from PIL import Image

    h, w = (size, size) if isinstance(size, int) else size
    if images.shape[1:3] == (h, w):
        return images
    out = np.empty((len(images), h, w, images.shape[3]), np.uint8)
    for i, img in enumerate(images):
        pil = Image.fromarray(img[..., 0] if img.shape[2] == 1 else img)
        arr = np.asarray(pil.resize((w, h), Image.BILINEAR))
        out[i] = arr.reshape(h, w, -1)
    return out


def _pil_to_array(img) -> np.ndarray:
    """A PIL image -> uint8 [H, W, 1] (grey modes) or [H, W, 3] (everything else)."""
    if img.mode in GREY_MODES:
        return np.asarray(img.convert("L"), dtype=np.uint8)[..., None]
    if img.mode == "P":
        img = img.convert("RGBA")  # palette transparency, without PIL's warning
    return np.asarray(img.convert("RGB"), dtype=np.uint8)


def _decode_one(item: Any) -> np.ndarray:
    """OpenCV for PNG, JPEG, BMP and WebP (several times faster than PIL, and it releases the
    GIL so threads help); PIL for other formats, for anything OpenCV reads oddly, and for PIL
    images. Both give the same pixels for those formats."""
    import cv2
    from PIL import Image

    if isinstance(item, Image.Image):
        return _pil_to_array(item)
    data = bytes(item) if isinstance(item, (bytes, bytearray, memoryview)) else Path(item).read_bytes()
    png = data[:8] == b"\x89PNG\r\n\x1a\n"
    webp = data[:4] == b"RIFF" and data[8:12] == b"WEBP"
    fast = png or webp or data[:2] in (b"\xff\xd8", b"BM")
    arr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED) if fast else None
    if arr is not None and arr.dtype == np.uint16:
        arr = (arr >> 8).astype(np.uint8)  # 16-bit: keep the high byte (PIL would clip)
    channels = 1 if arr is None or arr.ndim == 2 else arr.shape[2]
    if (
        arr is None
        or arr.dtype != np.uint8
        or arr.ndim not in (2, 3)
        or channels not in (1, 3, 4)
        or (channels == 4 and data[:2] == b"\xff\xd8")
    ):
        with Image.open(io.BytesIO(data)) as img:
            return _pil_to_array(img)
    if channels == 1:
        return arr.reshape(arr.shape[0], arr.shape[1], 1)
    if png and len(data) > 25 and data[25] == 4:  # PNG colour type 4: grey + alpha
        return np.ascontiguousarray(arr[..., :1])
    code = cv2.COLOR_BGR2RGB if channels == 3 else cv2.COLOR_BGRA2RGB  # alpha dropped
    return cv2.cvtColor(arr, code)


def _resize_one(arr: np.ndarray, h: int, w: int) -> np.ndarray:
    from PIL import Image

    if arr.shape[:2] == (h, w):
        return arr
    img = Image.fromarray(arr[..., 0] if arr.shape[2] == 1 else arr)
    return np.asarray(img.resize((w, h), Image.BILINEAR)).reshape(h, w, arr.shape[2])


def _workers() -> int:
    return max(1, min(16, os.cpu_count() or 1))


def decode_images(items: Sequence[Any], image_size: int | None = None) -> np.ndarray:
    """Decode encoded images (bytes, paths or PIL images) into one uint8 [M, H, W, C] array.

    Grey images become C = 1 when all images are grey, else RGB (grey ones replicated);
    sizes as the module docstring says. Work is split into chunks over a thread pool.
    """
    if len(items) == 0:
        raise UserError("The dataset has no images; check its source.")
    arrays: list[np.ndarray | None] = [None] * len(items)

    def work(lo: int, hi: int) -> None:
        for i in range(lo, hi):
            a = _decode_one(items[i])
            arrays[i] = a if image_size is None else _resize_one(a, image_size, image_size)

    step = max(64, -(-len(items) // (_workers() * 8)))
    with ThreadPoolExecutor(_workers()) as pool:
        jobs = [pool.submit(work, lo, min(lo + step, len(items))) for lo in range(0, len(items), step)]
        for job in jobs:
            job.result()
    channels = 3 if any(a.shape[2] == 3 for a in arrays) else 1
    sizes = Counter(a.shape[:2] for a in arrays)
    h, w = min(sizes, key=lambda s: (-sizes[s], -s[0] * s[1], s[0]))
    out = np.empty((len(items), h, w, channels), np.uint8)
    for i, a in enumerate(arrays):
        a = _resize_one(a, h, w)
        out[i] = np.repeat(a, 3, axis=2) if a.shape[2] != channels else a
        arrays[i] = None
    return out


# ---------------------------------------------------------------------------------------------
# the on-disk cache


def safe_name(key: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", key).strip("._")[:80] or "dataset"
    return safe if safe == key else f"{safe}-{hashlib.sha256(key.encode()).hexdigest()[:10]}"


def files_signature(paths: Sequence[Path], root: Path) -> str:
    """Hash of (path relative to root, size, mtime, ctime, inode) of each file: it changes when a
    file is rewritten or replaced, even by one of the same size whose mtime was set back (a
    copy that keeps times, an extracted archive), since the system sets ctime and the inode."""
    h = hashlib.sha256()
    for path in paths:
        st = path.stat()
        h.update(
            f"{path.relative_to(root).as_posix()}\0{st.st_size}\0{st.st_mtime_ns}\0{st.st_ctime_ns}"
            f"\0{st.st_ino}\n".encode()
        )
    return h.hexdigest()


def tree_signature(root: Path, only_images: bool = False) -> str:
    """:func:`files_signature` of every file under root (of every image file, ``only_images``)."""
    paths = sorted(
        p for p in root.rglob("*") if p.is_file() and (not only_images or p.suffix.lower() in IMAGE_EXTENSIONS)
    )
    return files_signature(paths, root)


def cache_path(cache_dir: Path, key: str, image_size: int | None) -> Path:
    suffix = "" if image_size is None else f"-size{int(image_size)}"
    return Path(cache_dir) / safe_name(key) / f"arrays{suffix}.npz"


def _read_cache(path: Path, signature: str | None, image_size: int | None) -> RawData | None:
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            if meta.get("format") != CACHE_FORMAT or meta.get("image_size") != image_size:
                return None
            if signature is not None and meta.get("signature") != signature:
                log.info("%s is stale (its source changed); rebuilding", path)
                return None
            extras = {k[len("extra_") :]: z[k] for k in z.files if k.startswith("extra_")}
            return RawData(
                z["train_images"],
                z["train_labels"].astype(np.int64),
                z["test_images"],
                z["test_labels"].astype(np.int64),
                tuple(str(c) for c in z["classes"]),
                extras,
                z["train_ids"].astype(object),
                z["test_ids"].astype(object),
            )
    except FileNotFoundError:
        return None
    except Exception as err:  # a truncated or foreign file: rebuild it
        log.warning("ignoring unreadable cache %s (%s)", path, err)
        return None


def _write_cache(path: Path, raw: RawData, signature: str | None, key: str, image_size: int | None) -> None:
    meta = {"format": CACHE_FORMAT, "key": key, "signature": signature, "image_size": image_size}
    arrays = {
        "train_images": raw.train_images,
        "train_labels": raw.train_labels,
        "test_images": raw.test_images,
        "test_labels": raw.test_labels,
        "classes": np.array(raw.classes, dtype=str),
        "meta": np.array(json.dumps(meta)),
        "train_ids": raw.ids("train").astype(str),
        "test_ids": raw.ids("test").astype(str),
        **{f"extra_{k}": v for k, v in raw.extras.items()},
    }
    atomic_write(path, lambda handle: np.savez(handle, **arrays))


def cached(
    key: str, cache_dir: Path, image_size: int | None, build: Callable[[], RawData], signature: str | None = None
) -> RawData:
    """Load ``key`` from the cache, or build it and write the cache atomically.

    ``signature`` (for local sources that still exist) must match the one stored with the cache,
    otherwise the source changed and the arrays are rebuilt.
    """
    path = cache_path(cache_dir, key, image_size)
    raw = _read_cache(path, signature, image_size)
    if raw is None:
        with _building(path):  # a process that waited here finds the cache the first one wrote
            raw = _read_cache(path, signature, image_size)
            if raw is None:
                raw = build()
                _write_cache(path, raw, signature, key, image_size)
                log.info("cached %s at %s", key, path)
                return raw
    log.debug("loaded %s from cache %s", key, path)
    return raw


@contextlib.contextmanager
def _building(path: Path):
    """Hold an exclusive lock beside the cache ``path`` while it is built, so that processes loading
    a dataset for the first time together decode it once. The cache is correct without it (it is
    written atomically); without ``fcntl`` (Windows) each process builds it."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.parent / f".{path.name}.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# ---------------------------------------------------------------------------------------------
# scikit-learn digits


def read_digits() -> RawData:
    """8x8 grey digits; values 0..16 -> uint8 round(v * 255 / 16); stratified 1347 / 450 split
    (seed 0, see ``stratified_split``); ids are the indices in ``load_digits()``."""
    table = _digits_table()
    images = np.rint(table[:, :-1].reshape(-1, 8, 8) * (255.0 / 16.0)).astype(np.uint8)[..., None]
    labels = table[:, -1].astype(np.int64)
    train, test = stratified_split(labels, n_test=DIGITS_TEST_SIZE)
    classes = tuple(str(c) for c in range(10))
    return RawData(images[train], labels[train], images[test], labels[test], classes, train_ids=train, test_ids=test)


def _digits_table() -> np.ndarray:
    """``load_digits()``'s rows (64 pixels, then the label) read from the file scikit-learn ships,
    without importing scikit-learn (a second per process, most of a small run's start-up)."""
    import gzip
    import importlib.util

    spec = importlib.util.find_spec("sklearn")  # finds the package without running it
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = Path(folder) / "datasets" / "data" / "digits.csv.gz"
        if path.is_file():
            with gzip.open(path, "rt") as handle:
                return np.loadtxt(handle, delimiter=",")
    from sklearn.datasets import load_digits  # a layout this does not know: ask scikit-learn

    data, target = load_digits(return_X_y=True)
    return np.column_stack([data, target])


# ---------------------------------------------------------------------------------------------
# Hugging Face datasets


def _pick(names: Sequence[str], preferred: Sequence[str]) -> str | None:
    for p in preferred:
        if p in names:
            return p
    return names[0] if names else None


def _hf_columns(features, what: str) -> tuple[str, str]:
    import datasets

    images = [k for k, f in features.items() if isinstance(f, datasets.Image)]
    labels = [k for k, f in features.items() if isinstance(f, datasets.ClassLabel)]
    image_col = _pick(images, ("image", "img"))
    label_col = _pick(labels, ("label", "labels", "fine_label"))
    if label_col is None:
        ints = [
            k
            for k, f in features.items()
            if isinstance(f, datasets.Value) and "int" in f.dtype and k in ("label", "labels")
        ]
        label_col = ints[0] if ints else None
    if image_col is None or label_col is None:
        raise UserError(
            f"{what} needs an image column (datasets.Image) and a label column "
            f"(datasets.ClassLabel), but its columns are {list(features)}; "
            f"use folder:PATH or torchvision:NAME for other layouts."
        )
    return image_col, label_col


def _hf_split_arrays(ds, image_col: str, label_col: str, extra_cols: Sequence[str], split: str):
    """Encoded images, labels, extra label columns and ids (an ``id`` column, else
    ``<split>/<row>``) of one split."""
    import datasets

    ids = (
        as_ids(ds["id"])
        if "id" in ds.column_names
        else np.array([f"{split}/{row}" for row in range(len(ds))], dtype=object)
    )
    ds = ds.select_columns([image_col, label_col, *extra_cols])
    ds = ds.cast_column(image_col, datasets.Image(decode=False))
    table = ds.with_format("arrow")[:]
    cells = table.column(image_col).to_pylist()
    items = [c["bytes"] if c.get("bytes") is not None else c["path"] for c in cells]
    labels = np.asarray(table.column(label_col).to_numpy(), dtype=np.int64)
    extras = {c: np.asarray(table.column(c).to_numpy(), dtype=np.int64) for c in extra_cols}
    return items, labels, extras, ids


def hf_to_raw(dsd, what: str, image_size: int | None, extra_label_cols: Sequence[str] = ()) -> RawData:
    """A ``datasets.DatasetDict`` (or one ``Dataset``) -> RawData, decoding all images at once.

    Splits: ``train``, and the first of test / validation / valid / val whose labels are all
    set; with no such split, a seeded stratified 80/20 split of train (``stratified_split``).
    """
    import datasets

    if isinstance(dsd, datasets.Dataset):
        dsd = {"train": dsd}
    splits = list(dsd.keys())
    if "train" not in splits:
        raise UserError(
            f"{what} has no 'train' split (it has {splits}); save one with DatasetDict(train=..., test=...)."
        )
    train = dsd["train"]
    image_col, label_col = _hf_columns(train.features, what)
    feature = train.features[label_col]
    extras_cols = [c for c in extra_label_cols if c in train.features]
    tr_items, tr_labels, tr_extra, tr_ids = _hf_split_arrays(train, image_col, label_col, extras_cols, "train")
    if (tr_labels < 0).any():
        raise UserError(f"{what}: some train labels are missing (-1); use a labelled dataset.")
    te_items = None
    for name in TEST_SPLIT_NAMES:
        if name in dsd:
            items, labels, extra, ids = _hf_split_arrays(dsd[name], image_col, label_col, extras_cols, name)
            if len(labels) and (labels >= 0).all():
                te_items, te_labels, te_extra, te_ids = items, labels, extra, ids
                break
    if te_items is None:
        log.info("%s has no labelled test split; splitting train 80/20 (seed %d)", what, SPLIT_SEED)
        tr_idx, te_idx = stratified_split(tr_labels)
        te_items, te_labels, te_ids = [tr_items[i] for i in te_idx], tr_labels[te_idx], tr_ids[te_idx]
        te_extra = {k: v[te_idx] for k, v in tr_extra.items()}
        tr_items, tr_labels, tr_ids = [tr_items[i] for i in tr_idx], tr_labels[tr_idx], tr_ids[tr_idx]
        tr_extra = {k: v[tr_idx] for k, v in tr_extra.items()}
    log.info("decoding %d images of %s", len(tr_items) + len(te_items), what)
    images = decode_images(tr_items + te_items, image_size)
    if isinstance(feature, datasets.ClassLabel):
        classes = tuple(feature.names)
    else:
        classes = tuple(str(i) for i in range(int(max(tr_labels.max(), te_labels.max())) + 1))
    extras: dict[str, np.ndarray] = {}
    for col in extras_cols:
        extras[f"train_{col}"], extras[f"test_{col}"] = tr_extra[col], te_extra[col]
        f = train.features[col]
        if isinstance(f, datasets.ClassLabel):
            extras[f"{col}_names"] = np.array(f.names, dtype=str)
    n = len(tr_items)
    return RawData(images[:n], tr_labels, images[n:], te_labels, classes, extras, tr_ids, te_ids)


def load_hf_source(source: str, config: str | None, local: bool):
    """``datasets.load_from_disk`` / ``datasets.load_dataset``, with errors as UserError."""
    import datasets

    if local:
        path = Path(source)
        try:
            if (path / "dataset_dict.json").exists() or (path / "state.json").exists():
                return datasets.load_from_disk(str(path))
            return datasets.load_dataset(str(path))
        except Exception as err:
            raise UserError(
                f"Could not read {path} as a Hugging Face dataset "
                f"({type(err).__name__}: {err}); pass a folder written by "
                f"DatasetDict.save_to_disk, or use folder:PATH for images."
            ) from None
    try:
        return datasets.load_dataset(source, config)
    except datasets.exceptions.DatasetNotFoundError as err:
        raise UserError(
            f"No Hugging Face dataset {source!r} ({err}); check the repo id, or pass a local path with hf:PATH."
        ) from None
    except Exception as err:  # network, auth, hub errors of every kind
        raise UserError(
            f"Could not download Hugging Face dataset {source!r} "
            f"({type(err).__name__}: {err}); check the network or pass a local path "
            f"with hf:PATH."
        ) from None


# ---------------------------------------------------------------------------------------------
# torchvision


def _tv_fast_arrays(ds) -> tuple[np.ndarray, np.ndarray] | None:
    """Use ``ds.data`` / ``ds.targets`` (or ``ds.labels``) when they hold the decoded images."""
    data = getattr(ds, "data", None)
    targets = getattr(ds, "targets", None)
    if targets is None:
        targets = getattr(ds, "labels", None)
    if data is None or targets is None:
        return None
    data = data.numpy() if hasattr(data, "numpy") else np.asarray(data)
    targets = np.asarray(targets.numpy() if hasattr(targets, "numpy") else targets, np.int64)
    if data.dtype != np.uint8 or len(data) != len(ds) or len(targets) != len(ds):
        return None
    if data.ndim == 3:
        data = data[..., None]
    elif data.ndim == 4 and data.shape[1] in (1, 3) and data.shape[3] not in (1, 3):
        data = data.transpose(0, 2, 3, 1)
    if data.ndim != 4 or data.shape[3] not in (1, 3):
        return None
    first = np.asarray(ds[0][0])  # check the guess against what the dataset itself returns
    if first.size != data[0].size or not np.array_equal(first.reshape(data.shape[1:]), data[0]):
        return None
    return np.ascontiguousarray(data), targets


def _tv_make(cls, root: Path, split: str, label: str):
    params = inspect.signature(cls.__init__).parameters
    kwargs: dict[str, Any] = {"download": True} if "download" in params else {}
    if "train" in params:
        candidates = [{"train": split == "train"}]
    elif "split" in params:
        candidates = [{"split": s} for s in (("train",) if split == "train" else TEST_SPLIT_NAMES)]
    else:
        raise UserError(
            f"{label} has neither a 'train' nor a 'split' argument; wrap it as a "
            f"Hugging Face dataset (hf:PATH) or an image folder (folder:PATH)."
        )
    for i, extra in enumerate(candidates):
        try:
            return cls(str(root), **kwargs, **extra)
        except ValueError as err:
            if "Unknown value" in str(err) and i + 1 < len(candidates):
                continue
            raise UserError(f"Could not open {label} ({err}); check the dataset name.") from None
        except Exception as err:
            raise UserError(
                f"Could not download {label} into {root} ({type(err).__name__}: "
                f"{err}); check the network or place the dataset files there."
            ) from None
    raise AssertionError("unreachable")


def read_torchvision(class_name: str, root: Path, image_size: int | None) -> RawData:
    import torchvision.datasets as tvd

    label = f"torchvision:{class_name}"
    cls = getattr(tvd, class_name, None)
    if not (isinstance(cls, type) and issubclass(cls, tvd.VisionDataset)):
        raise UserError(
            f"torchvision has no dataset class {class_name!r}; use a class name from "
            f"torchvision.datasets such as CIFAR10, MNIST, FashionMNIST or SVHN."
        )
    root.mkdir(parents=True, exist_ok=True)
    parts = [_tv_make(cls, root, s, label) for s in ("train", "test")]
    fast = [_tv_fast_arrays(ds) for ds in parts]
    if all(f is not None for f in fast) and fast[0][0].shape[1:] == fast[1][0].shape[1:]:
        (tr_x, tr_y), (te_x, te_y) = fast
        if image_size is not None:
            tr_x, te_x = resize_images(tr_x, image_size), resize_images(te_x, image_size)
    else:
        items, labels = [], []
        for ds in parts:
            samples = getattr(ds, "samples", None) or getattr(ds, "imgs", None)
            if samples is not None and len(samples) == len(ds):
                its, lab = [s[0] for s in samples], [s[1] for s in samples]
            else:
                pairs = [ds[i] for i in range(len(ds))]
                its, lab = [p[0] for p in pairs], [int(p[1]) for p in pairs]
            items.append(its)
            labels.append(np.asarray(lab, np.int64))
        images = decode_images(items[0] + items[1], image_size)
        n = len(items[0])
        tr_x, te_x, (tr_y, te_y) = images[:n], images[n:], labels
    k = int(max(tr_y.max(), te_y.max())) + 1
    classes = getattr(parts[0], "classes", None)
    classes = tuple(str(c) for c in classes) if classes and len(classes) >= k else tuple(str(i) for i in range(k))
    return RawData(tr_x, tr_y, te_x, te_y, classes)  # ids: <split>/<index in that split>


# ---------------------------------------------------------------------------------------------
# image folders


def _class_files(root: Path) -> dict[str, list[Path]]:
    out = {}
    for d in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        files = sorted(p for p in d.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
        if files:
            out[d.name] = files
    return out


def read_folder(root: Path, image_size: int | None) -> RawData:
    """``root/train/<class>/*`` + ``root/test/<class>/*`` (or val/validation/valid), else
    ``root/<class>/*`` split by ``stratified_split`` (80/20 per class, seed 0). Classes are the
    sub-folder names that hold images, sorted; files are sorted by path. Ids are the paths
    relative to ``root`` (``train/cat/001.png`` or ``cat/001.png``)."""
    test_dir = next((root / n for n in TEST_SPLIT_NAMES if (root / n).is_dir()), None)
    if (root / "train").is_dir() and test_dir is not None:
        train_files, test_files = _class_files(root / "train"), _class_files(test_dir)
        classes = tuple(train_files)
        unknown = sorted(set(test_files) - set(train_files))
        if unknown:
            raise UserError(
                f"{test_dir} has classes that {root / 'train'} lacks ({unknown}); give every test class train images."
            )
        tr = [(f, k) for k, c in enumerate(classes) for f in train_files[c]]
        te = [(f, classes.index(c)) for c in test_files for f in test_files[c]]
    else:
        files = _class_files(root)
        classes = tuple(files)
        pairs = [(f, k) for k, c in enumerate(classes) for f in files[c]]
        labels = np.array([k for _, k in pairs], np.int64)
        tr_idx, te_idx = stratified_split(labels) if len(pairs) else ([], [])
        tr, te = [pairs[i] for i in tr_idx], [pairs[i] for i in te_idx]
    if not tr or not te:
        raise UserError(
            f"Found no train/test images under {root}; expected {root}/train/<class>/"
            f"*.png and {root}/test/<class>/*.png, or {root}/<class>/*.png."
        )
    log.info("decoding %d images under %s", len(tr) + len(te), root)
    images = decode_images([f for f, _ in tr] + [f for f, _ in te], image_size)

    def ids(pairs):
        return np.array([f.relative_to(root).as_posix() for f, _ in pairs], dtype=object)

    return RawData(
        images[: len(tr)],
        np.array([k for _, k in tr], np.int64),
        images[len(tr) :],
        np.array([k for _, k in te], np.int64),
        classes,
        train_ids=ids(tr),
        test_ids=ids(te),
    )
