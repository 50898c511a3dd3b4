"""Synthetic datasets of Hacohen et al. 2020 (section 5, appendix C): ``gabor``, ``gabor-overlap``
and ``gaussian``, generated from fixed seeds with their generating factors (``Split.factors``).

They show where agreement breaks down, so the class layout must not build a shared order in; how
the appendix's Gabor classes were made separable, and the literal reading kept as the
``gabor-overlap`` control: docs/REFERENCE.md, "Synthetic sets".
"""

from __future__ import annotations

import numpy as np

from curriculum.data.sources import RawData

GABOR_SEED = 0
GABOR_SIZE = 32
GABOR_PER_CLASS = 100
GABOR_TRAIN_PER_CLASS = 80
GABOR_ORIENTATIONS = (45, 90, 135, 180)
GABOR_JITTER_DEG = 30.0
GABOR_SIGMA = (3.0, 7.0)  # px, uniform
GABOR_CHANNELS = ("R", "G", "B")
GABOR_PARITIES = ("even", "odd")

GAUSSIAN_SEED = 0
GAUSSIAN_DIM = 3072
GAUSSIAN_SHAPE = (32, 32, 3)
GAUSSIAN_MEANS = (0.0, 0.1)
GAUSSIAN_TRAIN_PER_CLASS = 2500
GAUSSIAN_TEST_PER_CLASS = 500
GAUSSIAN_SCALE = 32.0  # grey levels per standard deviation
GAUSSIAN_OFFSET = 128.0


def gabor_specs(overlap: bool = False) -> list[tuple[str, int, int, bool]]:
    """(class name, channel index, base orientation in degrees, odd parity) for every class of
    ``gabor`` (default) or ``gabor-overlap``, in label order (see the module docstring)."""
    specs = []
    if overlap:
        for c in range(3):
            for o, a in enumerate(GABOR_ORIENTATIONS):
                odd = (o - c) % 4 >= 2
                specs.append((f"{GABOR_CHANNELS[c]}-{a}-{GABOR_PARITIES[odd]}", c, a, odd))
        return specs
    for c in range(3):
        for odd in (False, True):
            angles = (45, 135) if (c + odd) % 2 == 0 else (90, 180)
            for a in angles:
                specs.append((f"{GABOR_CHANNELS[c]}-{a}-{GABOR_PARITIES[odd]}", c, a, odd))
    return specs


def orientation_distance(a, b):
    """Distance between orientations in degrees modulo 180 (an even patch's period; the
    conservative one for odd patches too), in [0, 90]."""
    d = np.mod(np.asarray(a, np.float64) - np.asarray(b, np.float64), 180.0)
    return np.minimum(d, 180.0 - d)


def gabor_patches(size: int, theta_deg: np.ndarray, sigma: np.ndarray, wavelength: np.ndarray, odd: bool) -> np.ndarray:
    """Gabor patches in [-1, 1], float64 [n, size, size], centred on the image; one patch per
    entry of the 1-D parameter arrays."""
    c = (size - 1) / 2.0
    rows, cols = np.mgrid[0:size, 0:size].astype(np.float64)
    x, y = cols - c, c - rows
    theta = np.deg2rad(np.asarray(theta_deg, np.float64))[:, None, None]
    sigma = np.asarray(sigma, np.float64)[:, None, None]
    wavelength = np.asarray(wavelength, np.float64)[:, None, None]
    u = x * np.cos(theta) + y * np.sin(theta)
    envelope = np.exp(-(x * x + y * y) / (2.0 * sigma * sigma))
    carrier = np.sin if odd else np.cos
    return envelope * carrier(2.0 * np.pi * u / wavelength)


def make_gabor(overlap: bool = False) -> RawData:
    """``gabor`` (or ``gabor-overlap``): see the module docstring."""
    rng = np.random.default_rng(GABOR_SEED)
    specs = gabor_specs(overlap)
    k, n_train, per, size = len(specs), GABOR_TRAIN_PER_CLASS, GABOR_PER_CLASS, GABOR_SIZE
    offset = rng.uniform(-GABOR_JITTER_DEG, GABOR_JITTER_DEG, size=(k, per))
    sigma = rng.uniform(GABOR_SIGMA[0], GABOR_SIGMA[1], size=(k, per))
    base = np.array([a for _, _, a, _ in specs], np.float64)[:, None]
    theta = base + offset
    images = np.full((k, per, size, size, 3), 128, dtype=np.uint8)
    for j, (_, channel, _, odd) in enumerate(specs):
        g = gabor_patches(size, theta[j], sigma[j], 2.0 * sigma[j], odd)
        images[j, :, :, :, channel] = np.rint(128.0 + 127.0 * g).astype(np.uint8)
    factors = {"orientation": theta, "offset": offset, "sigma": sigma, "wavelength": 2.0 * sigma}
    if overlap:
        other = np.zeros((k, per), np.int64)
        for j, (_, c, a, odd) in enumerate(specs):
            for _, c2, a2, odd2 in specs:
                if (c2, odd2) == (c, odd) and a2 != a:
                    other[j] |= orientation_distance(theta[j], a2) <= GABOR_JITTER_DEG
        factors["in_other_range"] = other
    labels = np.repeat(np.arange(k, dtype=np.int64)[:, None], per, axis=1)
    p_train, p_test = rng.permutation(k * n_train), rng.permutation(k * (per - n_train))

    def split(part: slice, perm: np.ndarray):
        flat = lambda a: a[:, part].reshape(-1, *a.shape[2:])[perm]  # noqa: E731
        return flat(images), flat(labels), {n: flat(v) for n, v in factors.items()}

    tr_x, tr_y, tr_f = split(slice(0, n_train), p_train)
    te_x, te_y, te_f = split(slice(n_train, per), p_test)
    classes = tuple(name for name, *_ in specs)
    draw = np.arange(k * per).reshape(k, per)  # the id: the generator's draw index
    tr_ids, te_ids = draw[:, :n_train].reshape(-1)[p_train], draw[:, n_train:].reshape(-1)[p_test]
    return RawData(
        tr_x, tr_y, te_x, te_y, classes, train_ids=tr_ids, test_ids=te_ids, train_factors=tr_f, test_factors=te_f
    )


def gaussian_margin(images: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The Bayes classifier's signed margin of ``gaussian`` images (module docstring), float64."""
    x = (images.reshape(len(images), -1).astype(np.float64) - GAUSSIAN_OFFSET) / GAUSSIAN_SCALE
    mid = (GAUSSIAN_MEANS[0] + GAUSSIAN_MEANS[1]) / 2.0
    z = (x.sum(axis=1) - mid * x.shape[1]) / np.sqrt(x.shape[1])
    return np.where(np.asarray(labels) == 1, z, -z)


def _gaussian_split(rng: np.random.Generator, n_per_class: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Images, labels and draw indices (the ids), shuffled together."""
    parts, labels = [], []
    for k, mean in enumerate(GAUSSIAN_MEANS):
        x = rng.standard_normal((n_per_class, GAUSSIAN_DIM), dtype=np.float32) + np.float32(mean)
        q = np.clip(np.rint(GAUSSIAN_OFFSET + GAUSSIAN_SCALE * x), 0, 255)
        parts.append(q.astype(np.uint8))
        labels.append(np.full(n_per_class, k, dtype=np.int64))
    x = np.concatenate(parts).reshape(-1, *GAUSSIAN_SHAPE)
    y = np.concatenate(labels)
    perm = rng.permutation(len(y))
    return x[perm], y[perm], perm


def make_gaussian() -> RawData:
    rng = np.random.default_rng(GAUSSIAN_SEED)
    train_x, train_y, train_draw = _gaussian_split(rng, GAUSSIAN_TRAIN_PER_CLASS)
    test_x, test_y, test_draw = _gaussian_split(rng, GAUSSIAN_TEST_PER_CLASS)
    classes = tuple(f"mean-{m:g}" for m in GAUSSIAN_MEANS)
    return RawData(
        train_x,
        train_y,
        test_x,
        test_y,
        classes,
        train_ids=[f"train/{i}" for i in train_draw],
        test_ids=[f"test/{i}" for i in test_draw],
        train_factors={"margin": gaussian_margin(train_x, train_y)},
        test_factors={"margin": gaussian_margin(test_x, test_y)},
    )
