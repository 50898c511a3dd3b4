"""``shapes``: a procedural, CIFAR-shaped dataset whose difficulty is known by construction.

32x32 RGB images of one of ten shapes on a cluttered background, generated from a seed (about a
second per 10,000 images) with the factors that made each example (size, contrast, clutter,
occlusion, noise; x and y as nuisances), so scores and image statistics can be correlated with
a difficulty the generator chose. Names: ``shapes``, ``shapes:N``, ``shapes:N/T``, ``-seedS``.
The classes, the factors' ranges and the block seeding: docs/REFERENCE.md, "The shapes set".
"""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np

from curriculum.data.sources import RawData
from scoring.errors import UserError

SHAPES_SEED = 0
SHAPES_SIZE = 32
SHAPES_TRAIN = 5000
SHAPES_TEST = 1000
SHAPES_MAX = 1_000_000
BLOCK = 1000
SIZE_RANGE = (5.0, 13.0)  # px, half the width of the bounding box
JITTER = 3.0  # px, largest offset of the shape's centre from the image centre
BACKGROUND_RANGE = (48.0, 208.0)  # grey levels, per channel
CONTRAST_RANGE = (40.0, 128.0)  # grey levels, RGB distance
CLUTTER_RANGE = (0.0, 32.0)  # grey levels, std of the background field
CLUTTER_GRID = 8
OCCLUDER_DEPTH = (0.0, 0.4)  # fraction of the shape's bounding box
NOISE_RANGE = (0.0, 24.0)  # grey levels, std
FACTORS = ("size", "contrast", "clutter", "occlusion", "noise", "x", "y")
# Which direction of each factor makes an example easier ("higher" or "lower"; None: nuisance).
EASIER = {
    "size": "higher",
    "contrast": "higher",
    "clutter": "lower",
    "occlusion": "lower",
    "noise": "lower",
    "x": None,
    "y": None,
}

_SQ2 = np.float32(np.sqrt(2.0))


def _box(u, v, a, b):
    """Distance-like function of the axis-aligned box |u| <= a, |v| <= b."""
    return np.maximum(np.abs(u) - a, np.abs(v) - b)


def _triangle(u, v):  # apex (0, -1), base v = 0.75 from u = -1 to 1 (v points down)
    return np.maximum(v - 0.75, (1.75 * np.abs(u) - v - 1.0) / np.float32(np.hypot(1.75, 1.0)))


def _plus(u, v):
    return np.minimum(_box(u, v, 0.3, 1.0), _box(u, v, 1.0, 0.3))


def _star(u, v):  # five points of radius 1 (one straight up), valleys at radius 0.4
    rho, phi = np.hypot(u, v), np.arctan2(v, u)
    return 0.6 * (rho - (0.7 + 0.3 * np.cos(5.0 * (phi + np.pi / 2))))


_SHAPES: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "disk": lambda u, v: np.hypot(u, v) - 1.0,
    "square": lambda u, v: _box(u, v, 0.8, 0.8),
    "diamond": lambda u, v: (np.abs(u) + np.abs(v) - 1.0) / _SQ2,
    "triangle-up": _triangle,
    "triangle-down": lambda u, v: _triangle(u, -v),
    "plus": _plus,
    "x-cross": lambda u, v: _plus((u + v) / _SQ2, (u - v) / _SQ2),
    "ring": lambda u, v: np.abs(np.hypot(u, v) - 0.75) - 0.25,
    "frame": lambda u, v: np.abs(np.maximum(np.abs(u), np.abs(v)) - 0.65) - 0.2,
    "star": _star,
}
CLASSES = tuple(_SHAPES)

_NAME = re.compile(r"shapes(?::(?P<n>\d+)(?:/(?P<t>\d+))?)?(?:-seed(?P<s>\d+))?")


def parse_shapes_name(name: str) -> tuple[int, int, int] | None:
    """``(n_train, n_test, seed)`` for a ``shapes`` name, None if the name is not one.

    Raises ``UserError`` for a malformed ``shapes...`` name or sizes out of range."""
    name = name.strip().lower()
    if not name.startswith("shapes"):
        return None
    m = _NAME.fullmatch(name)
    if m is None:
        raise UserError(
            f"Cannot read the dataset name {name!r}; write shapes, shapes:N (N train, "
            f"N // 5 test), shapes:N/T, optionally ending in -seedS."
        )
    n = int(m.group("n")) if m.group("n") else SHAPES_TRAIN
    t = int(m.group("t")) if m.group("t") else (n // 5 if m.group("n") else SHAPES_TEST)
    for what, k in (("train", n), ("test", t)):
        if not 10 <= k <= SHAPES_MAX:
            raise UserError(f"{name}: the {what} size must be in 10..{SHAPES_MAX:,}, got {k}.")
    return n, t, int(m.group("s") or SHAPES_SEED)


def shapes_name(n_train: int = SHAPES_TRAIN, n_test: int = SHAPES_TEST, seed: int = SHAPES_SEED) -> str:
    """The canonical (shortest) name of these sizes and seed."""
    name = "shapes"
    if (n_train, n_test) != (SHAPES_TRAIN, SHAPES_TEST):
        name += f":{n_train}" if n_test == n_train // 5 else f":{n_train}/{n_test}"
    return name + (f"-seed{seed}" if seed != SHAPES_SEED else "")


def draw_parameters(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """The per-image draws of one block of ``n`` images, in the documented order."""
    p: dict[str, np.ndarray] = {}
    k = len(CLASSES)
    groups = np.argsort(rng.random((-(-n // k), k)), axis=1)  # a permutation of 0..9 a row
    p["label"] = groups.reshape(-1)[:n].astype(np.int64)
    p["size"] = rng.uniform(*SIZE_RANGE, size=n)
    centre, room = (SHAPES_SIZE - 1) / 2, np.minimum(JITTER, (SHAPES_SIZE - 1) / 2 - p["size"])
    p["x"] = centre + rng.uniform(-1, 1, size=n) * room
    p["y"] = centre + rng.uniform(-1, 1, size=n) * room
    p["background"] = rng.uniform(*BACKGROUND_RANGE, size=(n, 3))
    d = rng.standard_normal((n, 3))
    d = np.abs(d) / np.linalg.norm(d, axis=1, keepdims=True)
    p["direction"] = np.where(p["background"] < 127.5, d, -d)
    p["contrast"] = rng.uniform(*CONTRAST_RANGE, size=n)
    p["clutter"] = rng.uniform(*CLUTTER_RANGE, size=n)
    p["depth"] = rng.uniform(*OCCLUDER_DEPTH, size=n)
    p["side"] = rng.integers(0, 4, size=n)  # 0 left, 1 right, 2 top, 3 bottom
    p["noise"] = rng.uniform(*NOISE_RANGE, size=n)
    p["clutter_grid"] = rng.standard_normal((n, CLUTTER_GRID, CLUTTER_GRID, 3), np.float32)
    p["pixel_noise"] = rng.standard_normal((n, SHAPES_SIZE, SHAPES_SIZE, 3), np.float32)
    return p


def _upsample_matrix(src: int, dst: int) -> np.ndarray:
    """[dst, src] bilinear interpolation weights (pixel centres aligned, edges clamped)."""
    pos = np.clip((np.arange(dst) + 0.5) * src / dst - 0.5, 0, src - 1)
    lo = np.floor(pos).astype(int)
    hi = np.minimum(lo + 1, src - 1)
    w = np.zeros((dst, src), np.float32)
    np.add.at(w, (np.arange(dst), lo), 1 - (pos - lo))
    np.add.at(w, (np.arange(dst), hi), pos - lo)
    return w


def render(p: dict[str, np.ndarray]) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """Images of one block of parameters -> (uint8 [n, 32, 32, 3], factors, shape coverage,
    occluder coverage), the coverages float32 [n, 32, 32] in [0, 1]."""
    n, s = len(p["label"]), SHAPES_SIZE
    grid = np.arange(s, dtype=np.float32)
    r = p["size"].astype(np.float32)[:, None, None]
    u = (grid[None, None, :] - p["x"].astype(np.float32)[:, None, None]) / r
    v = (grid[None, :, None] - p["y"].astype(np.float32)[:, None, None]) / r
    u, v = np.broadcast_to(u, (n, s, s)), np.broadcast_to(v, (n, s, s))
    dist = np.empty((n, s, s), np.float32)
    for k, fn in enumerate(_SHAPES.values()):
        idx = np.flatnonzero(p["label"] == k)
        if len(idx):
            dist[idx] = fn(u[idx], v[idx])
    shape = np.clip(0.5 - r * dist, 0.0, 1.0)

    # occluder: a band of the shape's bounding box [c - r, c + r], `depth` deep from one side
    depth = (2.0 * p["depth"] * p["size"]).astype(np.float32)[:, None, None]
    x0 = (p["x"] - p["size"]).astype(np.float32)[:, None, None]
    y0 = (p["y"] - p["size"]).astype(np.float32)[:, None, None]
    x1, y1 = x0 + 2 * r, y0 + 2 * r
    gx, gy = grid[None, None, :], grid[None, :, None]
    cover = lambda lo, hi, g: np.clip(np.minimum(g - lo, hi - g) + 0.5, 0.0, 1.0)  # noqa: E731
    side = p["side"][:, None, None]
    band_x = np.where(side == 0, cover(x0 - 1, x0 + depth, gx), cover(x1 - depth, x1 + 1, gx))
    band_y = np.where(side == 2, cover(y0 - 1, y0 + depth, gy), cover(y1 - depth, y1 + 1, gy))
    across_x, across_y = cover(x0 - 1, x1 + 1, gx), cover(y0 - 1, y1 + 1, gy)
    occ = np.where(side < 2, band_x * across_y, band_y * across_x)
    occ = np.where(depth > 0, occ, 0.0).astype(np.float32)

    w = _upsample_matrix(CLUTTER_GRID, s)
    field = np.einsum("hi,nijc,wj->nhwc", w, p["clutter_grid"], w, optimize=True)
    field /= field.reshape(n, -1).std(axis=1)[:, None, None, None] + 1e-6
    bg = (
        p["background"].astype(np.float32)[:, None, None, :]
        + p["clutter"].astype(np.float32)[:, None, None, None] * field
    )
    fg = (p["background"] + p["contrast"][:, None] * p["direction"]).astype(np.float32)
    visible = shape * (1.0 - occ)
    img = bg + visible[..., None] * (fg[:, None, None, :] - bg)
    img += p["noise"].astype(np.float32)[:, None, None, None] * p["pixel_noise"]
    images = np.clip(np.rint(img), 0, 255).astype(np.uint8)

    area = shape.reshape(n, -1).sum(axis=1)
    hidden = (shape * occ).reshape(n, -1).sum(axis=1)
    factors = {
        "size": p["size"],
        "contrast": p["contrast"],
        "clutter": p["clutter"],
        "occlusion": (hidden / np.maximum(area, 1e-6)).astype(np.float64),
        "noise": p["noise"],
        "x": p["x"],
        "y": p["y"],
    }
    return images, factors, shape, occ


def _split(seed: int, split: int, n: int) -> tuple[np.ndarray, np.ndarray, dict]:
    images, labels, factors = [], [], {f: [] for f in FACTORS}
    for b in range(-(-n // BLOCK)):
        rng = np.random.default_rng([seed, split, b])
        p = draw_parameters(rng, BLOCK)
        take = min(BLOCK, n - b * BLOCK)
        if take < BLOCK:
            p = {k: a[:take] for k, a in p.items()}
        x, f, _, _ = render(p)
        images.append(x)
        labels.append(p["label"])
        for k in FACTORS:
            factors[k].append(f[k])
    return (np.concatenate(images), np.concatenate(labels), {k: np.concatenate(a) for k, a in factors.items()})


def make_shapes(n_train: int = SHAPES_TRAIN, n_test: int = SHAPES_TEST, seed: int = SHAPES_SEED) -> RawData:
    """``shapes`` with these sizes and seed (see the module docstring)."""
    tr_x, tr_y, tr_f = _split(seed, 0, n_train)
    te_x, te_y, te_f = _split(seed, 1, n_test)
    return RawData(tr_x, tr_y, te_x, te_y, CLASSES, train_factors=tr_f, test_factors=te_f)
