"""Synthetic datasets of seed 000 ("Let's agree to agree", section 5 and Appendix C).

Both are generated from fixed seeds, so every call returns the same bytes and the same
fingerprint. They exist to show where agreement breaks down: the ensemble's members no longer
learn the examples in one shared order.

``gabor``: 12 classes of Gabor patches, 32x32x3, 100 images a class.
    The paper's description does not add up: "12 classes" that differ in parity (2), RGB channel
    (3) and base orientation (4 of 45, 90, 135, 180 degrees) would be 24 crossed. We keep the
    12 classes and 100 images a class and take every (channel, base orientation) pair once, with
    parity chosen so that each channel has two adjacent orientations even and two odd:
    ``odd = ((o - c) mod 4) >= 2`` (o = orientation index, c = channel index), i.e.
    R: even 45/90, odd 135/180; G: even 90/135, odd 180/45; B: even 135/180, odd 45/90.
    Then, as the paper says, some classes are not separable (same channel and parity, adjacent
    orientations: their +-30 degree ranges overlap) while others are (other channel or parity).
    ``gabor-full`` is the full 2 x 3 x 4 crossing (24 classes, 100 images a class).
    Classes are ordered channel-major, named ``<channel>-<angle>-<parity>`` (e.g. ``R-45-even``;
    ``gabor-full``: parity-major, then channel, then angle).
    Parity: even = cosine carrier, odd = sine carrier; the patch is drawn in one channel only.
    Per image, drawn from ``np.random.default_rng(GABOR_SEED)`` in class order:
      * orientation = base + U(-30, 30) degrees (the carrier's wave vector, counter-clockwise
        from the horizontal axis, y pointing up);
      * size: envelope sigma ~ U(3, 7) px and wavelength = 2 * sigma (a pure change of scale).
    Pixel value of the drawn channel: round(128 + 127 * g), g = exp(-r^2 / 2 sigma^2) *
    cos|sin(2 pi u / wavelength), centred on the image; the other two channels stay at 128 (grey
    background). The paper gives no split and no code ("will be published upon acceptance");
    we take the first 80 images of every class for train and the last 20 for test
    (960 / 240; gabor-full 1920 / 480), then shuffle each split with the same generator.

``gaussian``: two overlapping Gaussians in 3072 dimensions reshaped (C order) to 32x32x3:
    class 0 ~ N(0, I), class 1 ~ N(0.1 * 1, I); 2500 train + 500 test per class, drawn from
    ``np.random.default_rng(GAUSSIAN_SEED)``. Stored as uint8 by ``clip(round(128 + 32 x), 0,
    255)``: a quantisation step of 1/32 standard deviation, clipping below -4 and above
    +3.97 standard deviations (probability ~6e-5 a coordinate). The class-mean difference is
    0.1 * 32 = 3.2 grey levels.
"""

from __future__ import annotations

import numpy as np

from .data_sources import RawData

GABOR_SEED = 0
GABOR_SIZE = 32
GABOR_PER_CLASS = 100
GABOR_TRAIN_PER_CLASS = 80
GABOR_ORIENTATIONS = (45, 90, 135, 180)
GABOR_JITTER_DEG = 30.0
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


def gabor_specs(full: bool = False) -> list[tuple[str, int, int, bool]]:
    """(class name, channel index, base orientation in degrees, odd parity) for every class."""
    if full:
        return [(f"{par}-{GABOR_CHANNELS[c]}-{a}", c, a, par == "odd")
                for par in GABOR_PARITIES for c in range(3) for a in GABOR_ORIENTATIONS]
    specs = []
    for c in range(3):
        for o, a in enumerate(GABOR_ORIENTATIONS):
            odd = (o - c) % 4 >= 2
            specs.append((f"{GABOR_CHANNELS[c]}-{a}-{'odd' if odd else 'even'}", c, a, odd))
    return specs


def gabor_patch(size: int, theta_deg: float, sigma: float, wavelength: float,
                odd: bool) -> np.ndarray:
    """One Gabor patch in [-1, 1], float64 [size, size], centred on the image."""
    c = (size - 1) / 2.0
    rows, cols = np.mgrid[0:size, 0:size].astype(np.float64)
    x, y = cols - c, c - rows
    theta = np.deg2rad(theta_deg)
    u = x * np.cos(theta) + y * np.sin(theta)
    envelope = np.exp(-(x * x + y * y) / (2.0 * sigma * sigma))
    carrier = np.sin if odd else np.cos
    return envelope * carrier(2.0 * np.pi * u / wavelength)


def make_gabor(full: bool = False) -> RawData:
    rng = np.random.default_rng(GABOR_SEED)
    specs = gabor_specs(full)
    n_train, per, size = GABOR_TRAIN_PER_CLASS, GABOR_PER_CLASS, GABOR_SIZE
    images = np.full((len(specs), per, size, size, 3), 128, dtype=np.uint8)
    for k, (_, channel, base, odd) in enumerate(specs):
        for j in range(per):
            theta = base + rng.uniform(-GABOR_JITTER_DEG, GABOR_JITTER_DEG)
            sigma = rng.uniform(3.0, 7.0)
            g = gabor_patch(size, theta, sigma, 2.0 * sigma, odd)
            images[k, j, :, :, channel] = np.rint(128.0 + 127.0 * g).astype(np.uint8)
    labels = np.repeat(np.arange(len(specs), dtype=np.int64)[:, None], per, axis=1)
    train_x = images[:, :n_train].reshape(-1, size, size, 3)
    train_y = labels[:, :n_train].reshape(-1)
    test_x = images[:, n_train:].reshape(-1, size, size, 3)
    test_y = labels[:, n_train:].reshape(-1)
    p_train, p_test = rng.permutation(len(train_y)), rng.permutation(len(test_y))
    classes = tuple(name for name, *_ in specs)
    draw = np.arange(len(specs) * per).reshape(len(specs), per)  # the id: the generator's draw index
    return RawData(train_x[p_train], train_y[p_train], test_x[p_test], test_y[p_test], classes,
                   train_ids=draw[:, :n_train].reshape(-1)[p_train],
                   test_ids=draw[:, n_train:].reshape(-1)[p_test])


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
    return RawData(train_x, train_y, test_x, test_y, classes,
                   train_ids=[f"train/{i}" for i in train_draw], test_ids=[f"test/{i}" for i in test_draw])
