"""Datasets: a name -> uint8 images, int64 labels, class names and a fingerprint.

``load_dataset(name)`` resolves (``curriculum datasets`` lists them, see ``list_datasets``):

* built in, no network: ``digits`` (the default; scikit-learn's 8x8 digits, values 0..16 scaled
  to uint8 by round(v * 255 / 16), a stratified seeded split of 1347 train / 450 test),
  ``gabor``, ``gabor-overlap`` and ``gaussian`` (Hacohen et al.'s synthetic sets, see
  ``curriculum.data.synthetic``: the paper's Gabor description does not add up, read it there);
  ``shapes`` (ten procedural shapes, 32x32x3, 5000 / 1000) and ``shapes:N[/T][-seedS]`` (any
  size and seed), whose examples carry their difficulty factors (see ``curriculum.data.shapes``);
* Hugging Face ``datasets`` by name: ``cifar10``, ``cifar100``, ``cifar100:<super-class>`` (the
  5 fine classes of one of the 20 coarse classes, e.g. ``cifar100:small-mammals`` as in seed
  000; labels re-indexed 0..4 in fine-label order, classes named by their fine labels),
  ``mnist``, ``fashion-mnist``, ``svhn`` (cropped digits; the 'extra' split is not used); with
  ``data_dir`` (``--data-dir``) the same names are read from their original files there instead
  (:mod:`curriculum.data.originals`), with the hub's row order, ids and class names;
* ``hf:<repo id>[:<config>]`` or ``hf:<path>`` (a ``save_to_disk`` folder, or anything
  ``datasets.load_dataset(path)`` reads): the image column (a ``datasets.Image`` feature) and
  the label column (a ``ClassLabel``) are found automatically;
* ``torchvision:<ClassName>`` (downloaded into ``<cache>/torchvision``);
* ``folder:<path>``: ``path/train/<class>/*`` + ``path/test/<class>/*``, or ``path/<class>/*``
  split 80/20 per class with seed 0.

Every example has a stable ``id`` (the source's identity: the index in ``load_digits()``, a
folder's relative path, a Hugging Face ``<split>/<row>`` or ``id`` column, torchvision's
``<split>/<index>``, the synthetic sets' draw index) and a ``content_hash`` of its pixels; see
``scoring.ids``. Both are columns of ``scores.parquet``.

Decoded sources are cached as ``<cache>/<safe name>/arrays[-sizeS].npz`` (written atomically),
so only the first load decodes (processes loading together wait for the first to write it); local
sources are re-read when their files change, and a cache whose local source was deleted still
loads. Images of different sizes are resized to ``image_size`` or to the most common size (see
``curriculum.data.sources``).

Label noise (``label_noise=P``, as in Zhang et al. 2017): a fraction P of the train labels,
chosen with ``noise_seed``, is replaced by labels drawn uniformly from all K classes, so a
replaced label equals the original with probability 1/K and about P (K - 1) / K of the labels
change; P = 1 gives labels independent of the images. Test labels are never touched. The name
records it (``digits+noise0.2``, ``+noise0.2-seed3`` for another seed; ``+size32`` for
``image_size=32``) and ``load_dataset`` accepts such names back.

Train partitions (Hacohen et al. 2020, Fig. 22): ``digits+part0of2`` keeps part 0 of 2 disjoint random
halves of the train split (:func:`train_part`) and the whole test split, so collections trained
on different parts are compared (``curriculum compare``) on the test split they share.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from curriculum.config.constraints import SEED_RANGE, Interval
from curriculum.data import originals
from curriculum.data import sources as src
from curriculum.data.shapes import make_shapes, parse_shapes_name, shapes_name
from curriculum.data.synthetic import make_gabor, make_gaussian
from scoring.errors import UserError
from scoring.ids import as_ids, content_hashes

__all__ = [
    "Split",
    "Dataset",
    "load_dataset",
    "list_datasets",
    "default_cache_dir",
    "compute_fingerprint",
    "image_fingerprints",
    "apply_label_noise",
    "CIFAR100_SUPERCLASSES",
]


@dataclass(frozen=True, eq=False)
class Split:
    """One split; treat the arrays as read-only (the fingerprint describes them). ``ids`` are
    the examples' source ids (``scoring.ids``; default: the positions); ``content_hashes`` are
    computed on first use.

    ``factors``: for generated datasets (``gabor``, ``gaussian``, ``shapes``), the value of each
    generating factor for every example, name -> numeric array ``[M]`` aligned with ``labels``
    (e.g. ``shapes``' ``size``, ``contrast``, ``clutter``, ``occlusion``, ``noise``), so that a
    score can be correlated with a difficulty known by construction. Empty for other sources.
    Factors are not part of the fingerprint: they are a deterministic function of the same
    generator as the images. Under ``image_size`` resizing they keep the generated image's units.
    """

    images: np.ndarray  # uint8 [M, H, W, C], C in {1, 3}
    labels: np.ndarray  # int64 [M]
    ids: np.ndarray | None = None  # str [M]
    factors: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        im, lab = self.images, self.labels
        object.__setattr__(self, "ids", as_ids(np.arange(len(lab)) if self.ids is None else self.ids))
        if len(self.ids) != len(lab):
            raise ValueError(f"ids must be one per example ({len(lab)}), got {len(self.ids)}")
        if im.dtype != np.uint8 or im.ndim != 4 or im.shape[3] not in (1, 3):
            raise ValueError(f"images must be uint8 [M, H, W, C] with C in (1, 3), got {im.dtype} {im.shape}")
        if lab.dtype != np.int64 or lab.shape != (len(im),):
            raise ValueError(f"labels must be int64 [{len(im)}], got {lab.dtype} {lab.shape}")
        for name, values in self.factors.items():
            v = np.asarray(values)
            if v.shape != (len(im),) or v.dtype.kind not in "biuf":
                raise ValueError(f"factor {name!r} must be a numeric array [{len(im)}], got {v.dtype} {v.shape}")

    def __len__(self) -> int:
        return len(self.labels)

    @functools.cached_property
    def content_hashes(self) -> np.ndarray:
        return content_hashes(self.images)


@dataclass(frozen=True, eq=False)
class Dataset:
    name: str  # canonical name, e.g. "digits", "cifar100:small-mammals", "digits+noise0.2"
    train: Split
    test: Split
    classes: tuple[str, ...]
    fingerprint: str  # compute_fingerprint(train, test)
    # The train labels before label noise (None without noise), to tell which were replaced.
    clean_train_labels: np.ndarray | None = None

    def split(self, name: str) -> Split:
        if name == "train":
            return self.train
        if name == "test":
            return self.test
        raise UserError(f"Unknown split {name!r}; use 'train' or 'test'.")

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.train.images.shape[1:])  # type: ignore[return-value]

    @classmethod
    def build(cls, name: str, train: Split, test: Split, classes, **kw) -> Dataset:
        """A Dataset with its fingerprint computed (for data made in memory)."""
        return cls(name, train, test, tuple(classes), compute_fingerprint(train, test), **kw)


def compute_fingerprint(train: Split, test: Split) -> str:
    """sha256 (hex) over the shapes, labels and image bytes of both splits."""
    h = hashlib.sha256(b"curriculum-dataset-v1\n")
    for tag, s in (("train", train), ("test", test)):
        h.update(f"{tag} {tuple(s.images.shape)} {len(s.labels)}\n".encode())
        h.update(np.ascontiguousarray(s.labels, dtype="<i8").tobytes())
        h.update(memoryview(np.ascontiguousarray(s.images)).cast("B"))
    return h.hexdigest()


def image_fingerprints(dataset: Dataset) -> dict[str, str]:
    """Per split, sha256 (hex) over the shape and image bytes only: the same images under other
    labels (a label-noise variant) share it, which is how ``curriculum compare`` recognises runs
    it may put side by side."""
    out = {}
    for name in ("train", "test"):
        images = dataset.split(name).images
        h = hashlib.sha256(f"curriculum-images-v1 {tuple(images.shape)}\n".encode())
        h.update(memoryview(np.ascontiguousarray(images)).cast("B"))
        out[name] = h.hexdigest()
    return out


def default_cache_dir() -> Path:
    """``$CURRICULUM_CACHE``, else ``~/.cache/curriculum``."""
    env = os.environ.get("CURRICULUM_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "curriculum"


# name -> (hub id, config, description)
HF_NAMED = {
    "cifar10": ("uoft-cs/cifar10", None, "CIFAR-10, 32x32x3, 10 classes, 50000 / 10000"),
    "cifar100": ("uoft-cs/cifar100", None, "CIFAR-100 fine labels, 32x32x3, 100 classes, 50000 / 10000"),
    "mnist": ("ylecun/mnist", None, "MNIST, 28x28 grey, 10 classes, 60000 / 10000"),
    "fashion-mnist": ("zalando-datasets/fashion_mnist", None, "Fashion-MNIST, 28x28 grey, 10 classes, 60000 / 10000"),
    "svhn": (
        "ufldl-stanford/svhn",
        "cropped_digits",
        "SVHN cropped digits, 32x32x3, 10 classes, 73257 / 26032 ('extra' unused)",
    ),
}
ALIASES = {
    "fashion_mnist": "fashion-mnist",
    "fashionmnist": "fashion-mnist",
    "cifar-10": "cifar10",
    "cifar-100": "cifar100",
}

# The 20 CIFAR-100 coarse classes (Hugging Face's names with '_' -> '-') and their fine classes.
CIFAR100_SUPERCLASSES = {
    "aquatic-mammals": ("beaver", "dolphin", "otter", "seal", "whale"),
    "fish": ("aquarium_fish", "flatfish", "ray", "shark", "trout"),
    "flowers": ("orchid", "poppy", "rose", "sunflower", "tulip"),
    "food-containers": ("bottle", "bowl", "can", "cup", "plate"),
    "fruit-and-vegetables": ("apple", "mushroom", "orange", "pear", "sweet_pepper"),
    "household-electrical-devices": ("clock", "keyboard", "lamp", "telephone", "television"),
    "household-furniture": ("bed", "chair", "couch", "table", "wardrobe"),
    "insects": ("bee", "beetle", "butterfly", "caterpillar", "cockroach"),
    "large-carnivores": ("bear", "leopard", "lion", "tiger", "wolf"),
    "large-man-made-outdoor-things": ("bridge", "castle", "house", "road", "skyscraper"),
    "large-natural-outdoor-scenes": ("cloud", "forest", "mountain", "plain", "sea"),
    "large-omnivores-and-herbivores": ("camel", "cattle", "chimpanzee", "elephant", "kangaroo"),
    "medium-mammals": ("fox", "porcupine", "possum", "raccoon", "skunk"),
    "non-insect-invertebrates": ("crab", "lobster", "snail", "spider", "worm"),
    "people": ("baby", "boy", "girl", "man", "woman"),
    "reptiles": ("crocodile", "dinosaur", "lizard", "snake", "turtle"),
    "small-mammals": ("hamster", "mouse", "rabbit", "shrew", "squirrel"),
    "trees": ("maple_tree", "oak_tree", "palm_tree", "pine_tree", "willow_tree"),
    "vehicles-1": ("bicycle", "bus", "motorcycle", "pickup_truck", "train"),
    "vehicles-2": ("lawn_mower", "rocket", "streetcar", "tank", "tractor"),
}
_SUPER_ALIASES = {
    "mediumsizedmammals": "medium-mammals",
    "vehicle1": "vehicles-1",
    "vehicle2": "vehicles-2",
    "insect": "insects",
    "reptile": "reptiles",
    "tree": "trees",
    "flower": "flowers",
    "smallmammal": "small-mammals",
}
_FINE_NAME_FIXES = {"cra": "crab"}  # a typo in the Hugging Face ClassLabel names


def _super_key(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def _resolve_superclass(name: str) -> str | None:
    key = _super_key(name)
    for canonical in CIFAR100_SUPERCLASSES:
        if _super_key(canonical) == key:
            return canonical
    return _SUPER_ALIASES.get(key)


def list_datasets() -> list[tuple[str, str]]:
    """(name or name pattern, one-line description), for ``curriculum datasets``."""
    rows = [
        (
            "digits",
            "scikit-learn handwritten digits, 8x8 grey, 10 classes, 1347 / 450 "
            "(stratified, seed 0); built in, the default",
        ),
        (
            "gabor",
            "Gabor patches (Hacohen et al. 2020), 32x32x3, 12 non-overlapping classes (RGB channel "
            "x parity x two base orientations 90 deg apart, each +-30 deg), 960 / 240; "
            "built in",
        ),
        (
            "gabor-overlap",
            "Gabor patches, 12 classes read literally from Hacohen et al. 2020 (same-colour "
            "same-parity ranges overlap: ~1/4 of images ambiguous), 960 / 240; "
            "built in",
        ),
        (
            "gaussian",
            "two overlapping Gaussians (Hacohen et al. 2020), N(0, I) vs N(0.1, I) in 3072 dims "
            "as 32x32x3, 5000 / 1000; built in",
        ),
        (
            "shapes",
            "ten procedural shapes, 32x32x3, 5000 / 1000, with their difficulty "
            "factors (size, contrast, clutter, occlusion, noise); built in",
        ),
        (
            "shapes:<N>[/<T>][-seed<S>]",
            "the same with N train, T test (default N // 5) images, from seed S (default 0)",
        ),
    ]
    rows += [
        (n, f"{d} (Hugging Face {hub}; its original files with --data-dir)") for n, (hub, _, d) in HF_NAMED.items()
    ]
    rows += [
        (f"cifar100:{s}", f"CIFAR-100 super-class, 5 classes ({', '.join(f)}), 2500 / 500")
        for s, f in CIFAR100_SUPERCLASSES.items()
    ]
    rows += [
        (
            "hf:<repo id>[:<config>]",
            "a Hugging Face image-classification dataset on the Hub (Image + ClassLabel columns found automatically)",
        ),
        ("hf:<path>", "a folder written by datasets' save_to_disk (splits train + test)"),
        (
            "torchvision:<ClassName>",
            "a torchvision dataset, e.g. torchvision:CIFAR10, downloaded into the cache folder",
        ),
        (
            "folder:<path>",
            "images in path/train/<class>/ + path/test/<class>/, or in path/<class>/ split 80/20 per class (seed 0)",
        ),
    ]
    return rows


def apply_label_noise(labels: np.ndarray, fraction: float, num_classes: int, seed: int = 0) -> np.ndarray:
    """A copy of ``labels`` with round(fraction * M) of them (chosen by ``seed``) replaced by
    labels drawn uniformly from 0..K-1 (a replacement may equal the original)."""
    rng = np.random.default_rng(seed)
    m = len(labels)
    n = int(round(fraction * m))
    out = np.array(labels, dtype=np.int64, copy=True)
    idx = rng.choice(m, size=n, replace=False)
    out[idx] = rng.integers(0, num_classes, size=n)
    return out


_SUFFIX = re.compile(
    r"\+(?:noise(?P<p>[0-9.eE+-]+?)(?:-seed(?P<s>\d+))?|size(?P<size>\d+)|part(?P<part>\d+)of(?P<parts>\d+))$"
)


def _split_suffixes(name: str) -> tuple[str, dict]:
    found: dict = {}
    while (m := _SUFFIX.search(name)) is not None:
        if m.group("size"):
            found.setdefault("image_size", int(m.group("size")))
        elif m.group("parts"):
            found.setdefault("part", (int(m.group("part")), int(m.group("parts"))))
        else:
            found.setdefault("label_noise", float(m.group("p")))
            found.setdefault("noise_seed", int(m.group("s") or 0))
        name = name[: m.start()]
    return name, found


def train_part(count: int, part: int, parts: int) -> np.ndarray:
    """Sorted positions of part ``part`` of ``parts`` disjoint, near-equal random parts of a train
    split of ``count`` examples (one fixed permutation, seed 0), for Hacohen et al.'s collections
    trained on different parts of the train set (its Fig. 22)."""
    if not (parts >= 2 and 0 <= part < parts and parts <= count):
        raise UserError(
            f"A train part is +part<k>of<P> with P >= 2, 0 <= k < P and P at most the {count} train "
            f"examples; got part {part} of {parts}."
        )
    return np.sort(np.array_split(np.random.default_rng(0).permutation(count), parts)[part])


def _is_local_path(text: str) -> bool:
    """A path (exists, or starts with / . ~, or has more than one '/'), not a Hub id."""
    return text.startswith(("/", ".", "~")) or text.count("/") > 1 or Path(text).expanduser().exists()


def _read_original(key: str, data_dir: Path, cache_dir: Path, image_size: int | None) -> src.RawData:
    """Dataset ``key`` read from its original files under ``data_dir`` (see
    :mod:`curriculum.data.originals`), cached under its own key and re-read when a file changes."""
    cache_key = f"{key}@{data_dir}"
    try:
        found = originals.locate(key, data_dir)
    except UserError:
        if not src.cache_path(cache_dir, cache_key, image_size).exists():
            raise
        found = None  # read before and since deleted: the cache is what is left (as for folder:)

    def build() -> src.RawData:
        if found is None:
            originals.locate(key, data_dir)  # raises: the files and the cache are both gone
        raw = found.read()
        if image_size is not None:
            raw.train_images = src.resize_images(raw.train_images, image_size)
            raw.test_images = src.resize_images(raw.test_images, image_size)
        return raw

    signature = None if found is None else src.files_signature(found.files, data_dir)
    return src.cached(cache_key, cache_dir, image_size, build, signature)


def _read(base: str, cache_dir: Path, image_size: int | None, data_dir: Path | None = None) -> tuple[str, src.RawData]:
    """Canonical base name and the raw arrays of a name without suffixes (from the original files
    under ``data_dir`` where given)."""
    canonical, read = _resolve(base, cache_dir, image_size, data_dir)
    return canonical, read()


def _resolve(
    base: str, cache_dir: Path, image_size: int | None, data_dir: Path | None = None
) -> tuple[str, Callable[[], src.RawData]]:
    """Canonical base name of a name without suffixes, and how to read its raw arrays: a name that
    cannot resolve fails here, before anything is read (see :func:`dataset_name`)."""
    if data_dir is not None:
        prefix = base.partition(":")[0].strip().lower().replace("_", "-")
        if ALIASES.get(prefix, prefix) not in originals.ORIGINALS:
            raise UserError(
                f"--data-dir reads the original files of {', '.join(originals.ORIGINALS)} "
                f"(and CIFAR-100's super-classes), not {base!r}; leave --data-dir out for it."
            )
    shapes = parse_shapes_name(base)
    if shapes is not None:  # generated in seconds: not cached
        return shapes_name(*shapes), lambda: make_shapes(*shapes)
    prefix, sep, rest = base.partition(":")
    prefix = prefix.strip().lower()
    if not sep:
        key = ALIASES.get(prefix.replace("_", "-"), prefix.replace("_", "-"))
        if key == "digits":
            return key, src.read_digits
        if key in ("gabor", "gabor-overlap"):
            return key, lambda: make_gabor(overlap=key == "gabor-overlap")
        if key == "gaussian":
            return key, make_gaussian
        if key in HF_NAMED and data_dir is not None:
            return key, lambda: _read_original(key, data_dir, cache_dir, image_size)
        if key in HF_NAMED:
            hub, config, _ = HF_NAMED[key]
            extra = ("coarse_label",) if key == "cifar100" else ()

            def read_named() -> src.RawData:
                raw = src.cached(
                    key,
                    cache_dir,
                    image_size,
                    lambda: src.hf_to_raw(src.load_hf_source(hub, config, local=False), key, image_size, extra),
                )
                if key == "cifar100":
                    raw.classes = tuple(_FINE_NAME_FIXES.get(c, c) for c in raw.classes)
                return raw

            return key, read_named
    elif prefix in ("cifar100", "cifar-100"):
        superclass = _resolve_superclass(rest)
        if superclass is None:
            raise UserError(
                f"CIFAR-100 has no super-class {rest!r}; run `curriculum datasets` "
                f"for the 20 names (e.g. cifar100:small-mammals)."
            )
        return f"cifar100:{superclass}", lambda: _superclass_subset(
            _read("cifar100", cache_dir, image_size, data_dir)[1], superclass
        )
    elif prefix == "hf" and rest:
        local = _is_local_path(rest)
        if local:
            path = Path(rest).expanduser().resolve()
            key = f"hf:{path}"
            if not path.exists() and not src.cache_path(cache_dir, key, image_size).exists():
                raise UserError(
                    f"No dataset at {path}; pass a folder written by "
                    f"datasets.save_to_disk, or a Hub id like hf:uoft-cs/cifar10."
                )
            return key, lambda: src.cached(
                key,
                cache_dir,
                image_size,
                lambda: src.hf_to_raw(src.load_hf_source(str(path), None, local=True), key, image_size),
                src.tree_signature(path) if path.exists() else None,
            )
        repo, _, config = rest.partition(":")
        key = f"hf:{rest}"
        return key, lambda: src.cached(
            key,
            cache_dir,
            image_size,
            lambda: src.hf_to_raw(src.load_hf_source(repo, config or None, local=False), key, image_size),
        )
    elif prefix == "torchvision" and rest:
        key = f"torchvision:{rest}"
        return key, lambda: src.cached(
            key, cache_dir, image_size, lambda: src.read_torchvision(rest, cache_dir / "torchvision", image_size)
        )
    elif prefix == "folder" and rest:
        path = Path(rest).expanduser().resolve()
        key = f"folder:{path}"
        if not path.is_dir() and not src.cache_path(cache_dir, key, image_size).exists():
            raise UserError(
                f"No folder {path}; pass folder:PATH with PATH/<class>/*.png or "
                f"PATH/train/<class>/*.png + PATH/test/<class>/*.png."
            )
        return key, lambda: src.cached(
            key,
            cache_dir,
            image_size,
            lambda: src.read_folder(path, image_size),
            src.tree_signature(path, only_images=True) if path.is_dir() else None,
        )
    raise UserError(f"Unknown dataset {base!r}; run `curriculum datasets` to list the names.")


def _superclass_subset(full: src.RawData, superclass: str) -> src.RawData:
    coarse_names = [str(c) for c in full.extras["coarse_label_names"]]
    matches = [i for i, c in enumerate(coarse_names) if _resolve_superclass(c) == superclass]
    if len(matches) != 1:
        raise UserError(
            f"The cached CIFAR-100 has no coarse class {superclass!r} "
            f"({coarse_names}); delete the cache folder and load it again."
        )
    coarse = matches[0]
    tr = full.extras["train_coarse_label"] == coarse
    te = full.extras["test_coarse_label"] == coarse
    fine = np.unique(full.train_labels[tr])  # ascending fine-label order
    remap = np.full(len(full.classes), -1, np.int64)
    remap[fine] = np.arange(len(fine))
    return src.RawData(
        full.train_images[tr],
        remap[full.train_labels[tr]],
        full.test_images[te],
        remap[full.test_labels[te]],
        tuple(full.classes[i] for i in fine),
        train_ids=full.ids("train")[tr],
        test_ids=full.ids("test")[te],
    )


FRACTION = Interval("[0, 1]")
SEED = Interval(SEED_RANGE, whole=True)
IMAGE_SIZE = Interval("[1, 4096]", whole=True)


def _parse(
    name: str, label_noise: float, noise_seed: int, image_size: int | None, data_dir: str | Path | None
) -> tuple[str, float, int, int | None, dict, Path | None]:
    """A dataset name's base, label-noise fraction, noise seed and image size (from its suffixes or
    the arguments, which must agree), its suffixes and the original files' folder, checked."""
    if not isinstance(name, str) or not name.strip():
        raise UserError("Give a dataset name; run `curriculum datasets` to list them.")
    base, found = _split_suffixes(name.strip())
    for arg, given, default in (
        ("label_noise", label_noise, 0.0),
        ("noise_seed", noise_seed, 0),
        ("image_size", image_size, None),
    ):
        if arg in found and given != default and given != found[arg]:
            raise UserError(f"The name {name!r} says {arg}={found[arg]} but {arg}={given} was passed; give it once.")
    label_noise = found.get("label_noise", label_noise)
    noise_seed = found.get("noise_seed", noise_seed)
    image_size = found.get("image_size", image_size)
    label_noise = FRACTION.check(label_noise, "label_noise")
    noise_seed = SEED.check(noise_seed, "noise_seed")
    if image_size is not None:
        image_size = IMAGE_SIZE.check(image_size, "image_size")
    local = None
    if data_dir is not None:
        local = Path(data_dir).expanduser().resolve()
        if not local.is_dir():
            raise UserError(
                f"--data-dir {data_dir} is not a folder; pass the folder that holds the dataset's original files."
            )
    return base, label_noise, int(noise_seed), image_size, found, local


def _canonical(base_canonical: str, label_noise: float, noise_seed: int, image_size: int | None, found: dict) -> str:
    """The dataset's name: the canonical base name and, in this order, its size, noise and part."""
    canonical = base_canonical
    if image_size is not None:
        canonical += f"+size{int(image_size)}"
    if label_noise > 0:
        canonical += f"+noise{label_noise:g}" + (f"-seed{int(noise_seed)}" if noise_seed else "")
    if "part" in found:
        canonical += "+part{}of{}".format(*found["part"])
    return canonical


def dataset_name(
    name: str = "digits",
    *,
    label_noise: float = 0.0,
    noise_seed: int = 0,
    cache_dir: str | Path | None = None,
    image_size: int | None = None,
    data_dir: str | Path | None = None,
) -> str:
    """The name :func:`load_dataset` gives the dataset, with the same errors for a name that
    does not resolve, but without reading any data: a launcher checks a name this way once
    before it starts the processes that load it."""
    base, label_noise, noise_seed, image_size, found, local = _parse(
        name, label_noise, noise_seed, image_size, data_dir
    )
    cache = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    return _canonical(_resolve(base, cache, image_size, local)[0], label_noise, noise_seed, image_size, found)


def load_dataset(
    name: str = "digits",
    *,
    label_noise: float = 0.0,
    noise_seed: int = 0,
    cache_dir: str | Path | None = None,
    image_size: int | None = None,
    data_dir: str | Path | None = None,
) -> Dataset:
    """Resolve ``name`` (see the module docstring and ``list_datasets``) to a ``Dataset``;
    ``data_dir``: read a standard dataset from its original files there instead of the hub."""
    base, label_noise, noise_seed, image_size, found, local = _parse(
        name, label_noise, noise_seed, image_size, data_dir
    )
    cache = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    base_canonical, raw = _read(base, cache, image_size, local)
    canonical = _canonical(base_canonical, label_noise, noise_seed, image_size, found)
    train_x, test_x = raw.train_images, raw.test_images
    if image_size is not None:  # sources decoded at this size already return it unchanged
        train_x = src.resize_images(train_x, image_size)
        test_x = src.resize_images(test_x, image_size)
    classes = tuple(str(c) for c in raw.classes)
    train_y = np.asarray(raw.train_labels, np.int64)
    clean = None
    if label_noise > 0:
        clean = train_y
        train_y = apply_label_noise(train_y, label_noise, len(classes), int(noise_seed))
    train_ids, train_factors = raw.ids("train"), dict(raw.train_factors)
    if "part" in found:
        keep = train_part(len(train_y), *found["part"])
        train_x, train_y, train_ids = train_x[keep], train_y[keep], np.asarray(train_ids)[keep]
        train_factors = {name: np.asarray(values)[keep] for name, values in train_factors.items()}
        clean = None if clean is None else clean[keep]
    train = Split(np.ascontiguousarray(train_x), train_y, train_ids, train_factors)
    test = Split(
        np.ascontiguousarray(test_x), np.asarray(raw.test_labels, np.int64), raw.ids("test"), dict(raw.test_factors)
    )
    for split in (train, test):
        if len(split) and (split.labels.min() < 0 or split.labels.max() >= len(classes)):
            raise UserError(f"{canonical} has labels outside 0..{len(classes) - 1}; check its label column.")
    return Dataset.build(canonical, train, test, classes, clean_train_labels=clean)
