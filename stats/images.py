"""Per-image statistics of Pliushch et al. 2022 ("When deep classifiers agree"), fast over a whole dataset.

Four statistics (segment count, mean local entropy, DCT percentage, edge strength), each as a
function over one image and a batch function over ``[M, H, W, C]`` (uint8 0-255, or floats in
[0, 1] quantised to uint8 first). Where each follows the authors' code and where it departs, the
segmenter's transcription, compilation and speed: docs/REFERENCE.md, "Image statistics in this
toolkit". Bad input gets one ``ValueError`` sentence naming the fix; an empty batch gives an
empty array.
"""

from __future__ import annotations

import functools
import math
import multiprocessing
import os
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor

import numpy as np

__all__ = [
    "GREY_WEIGHTS",
    "grey",
    "SEGMENT_PARAMETERS",
    "STATISTICS",
    "compute_statistics",
    "dct_percentage",
    "dct_percentages",
    "edge_strength",
    "edge_strengths",
    "local_entropies",
    "local_entropy",
    "segment_count",
    "segment_counts",
]

#: Grey conversion of the seed code (MATLAB ``rgb2gray`` weights), applied to 0-255 values.
GREY_WEIGHTS = (0.2989, 0.5870, 0.1140)
#: Felzenszwalb-Huttenlocher parameters of the seed code (``segment 0.5 500 20``).
SEGMENT_PARAMETERS = {"sigma": 0.5, "k": 500.0, "min_size": 20}

_DEFAULT_WINDOW = 10
_DEFAULT_THRESHOLD = 0.9998
# Entropy: window positions per tile side (bounds the difference grids of large images), and the
# largest group of equal pixels done by inclusion-exclusion over its subsets (larger: a grid).
_ENTROPY_TILE = 32
_SUBSET_MAX = 6
# Pixels per sub-batch inside one process (bounds memory, keeps arrays in cache).
_PIXELS_PER_PASS = 1 << 18
# Rough single-core seconds per pixel, used only to decide whether a process pool pays off.
_SECONDS_PER_PIXEL = {"segments": 2e-7, "entropy": 1.5e-7, "dct": 2e-8, "edges": 2e-8}
_POOL_MIN_SECONDS = 2.0


# --------------------------------------------------------------------------------------------
# input checking
# --------------------------------------------------------------------------------------------


def _to_uint8(array: np.ndarray, what: str) -> np.ndarray:
    """Return ``array`` as uint8 pixels, or raise one clear ValueError."""
    kind = array.dtype.kind
    if array.dtype == np.uint8:
        return array
    if kind == "b":
        raise ValueError(
            f"{what} is boolean; pass uint8 (0-255) or float (0-1) pixels, e.g. mask.astype(np.uint8) * 255"
        )
    if kind in "iu":
        if array.size and (array.min() < 0 or array.max() > 255):
            raise ValueError(
                f"{what} holds integers in [{array.min()}, {array.max()}], outside 0-255; "
                "rescale to 0-255 and pass uint8"
            )
        return array.astype(np.uint8)
    if kind == "f":
        if array.size and not np.isfinite(array).all():
            raise ValueError(f"{what} contains NaN or infinite values; replace or drop those pixels first")
        if array.size and (array.min() < 0.0 or array.max() > 1.0):
            raise ValueError(
                f"float {what} must lie in [0, 1] but spans [{array.min():g}, {array.max():g}]; "
                "divide 0-255 data by 255 (or pass it as uint8)"
            )
        return np.rint(array * 255.0).astype(np.uint8)
    raise ValueError(f"{what} has dtype {array.dtype}; pass uint8 (0-255) or float (0-1) pixels")


def _as_image(image) -> np.ndarray:
    """One image -> uint8 ``[1, H, W, C]`` (C in {1, 3})."""
    array = np.asarray(image)
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or array.shape[2] not in (1, 3):
        hint = " (RGBA? drop the alpha channel: image[..., :3])" if array.ndim == 3 and array.shape[2] == 4 else ""
        raise ValueError(
            f"an image must be H x W, H x W x 1 or H x W x 3, got shape {array.shape}{hint}; "
            "use the batch functions for [M, H, W, C] arrays"
        )
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(f"the image has no pixels (shape {array.shape})")
    return _to_uint8(array, "the image")[None]


def _as_batch(images) -> np.ndarray:
    """A batch -> uint8 ``[M, H, W, C]`` (C in {1, 3}); an empty batch -> shape ``[0, 0, 0, 1]``."""
    try:
        array = np.asarray(images)
    except ValueError as exc:  # ragged lists
        raise ValueError(
            "the images of a batch must all have the same shape; call the per-image functions "
            f"(e.g. segment_count) on images of different sizes ({exc})"
        ) from None
    if array.dtype == object:
        raise ValueError(
            "the images of a batch must all have the same shape; call the per-image functions "
            "(e.g. segment_count) on images of different sizes"
        )
    if array.size == 0 and array.ndim >= 1 and array.shape[0] == 0:
        return np.zeros((0, 0, 0, 1), np.uint8)
    if array.ndim != 4 or array.shape[3] not in (1, 3):
        hint = ""
        if array.ndim == 3:
            hint = "; for a batch of grey images add a channel axis (images[..., None]); for one image use the per-image functions"
        elif array.ndim == 4 and array.shape[3] == 4:
            hint = "; drop the alpha channel (images[..., :3])"
        raise ValueError(f"a batch must be [M, H, W, C] with C 1 or 3, got shape {array.shape}{hint}")
    if array.shape[1] == 0 or array.shape[2] == 0:
        raise ValueError(f"the images have no pixels (batch shape {array.shape})")
    return _to_uint8(array, "the batch")


def _check_window(window, height: int, width: int) -> int:
    if isinstance(window, bool) or not isinstance(window, (int, np.integer)) or window < 1:
        raise ValueError(f"window must be a positive integer, got {window!r}")
    window = int(window)
    if height < window or width < window:
        raise ValueError(
            f"local entropy needs images of at least {window}x{window} pixels (the window) but got "
            f"{height}x{width}; pass window={min(height, width)} or smaller"
        )
    return window


def _check_threshold(threshold) -> float:
    try:
        value = float(threshold)
    except (TypeError, ValueError):
        raise ValueError(f"threshold must be a number in (0, 1], got {threshold!r}") from None
    if not 0.0 < value <= 1.0:
        raise ValueError(f"threshold must be in (0, 1] (a norm ratio such as 0.9998), got {threshold!r}")
    return value


def _check_workers(workers) -> int:
    if workers is None:
        return _available_cores()
    if isinstance(workers, bool) or not isinstance(workers, (int, np.integer)) or workers < 1:
        raise ValueError(f"workers must be a positive integer or None (all cores), got {workers!r}")
    return int(workers)


def _available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


# --------------------------------------------------------------------------------------------
# the four statistics over a checked uint8 batch, in this process
# --------------------------------------------------------------------------------------------


def grey(batch: np.ndarray) -> np.ndarray:
    """Grey levels on 0-255 of uint8 images [M, H, W, C]: the seed code's weighted sum in float64
    (:data:`GREY_WEIGHTS`, same operation order, not rounded), or the one channel."""
    if batch.shape[3] == 1:
        return batch[..., 0]
    r, g, b = GREY_WEIGHTS
    return r * batch[..., 0] + g * batch[..., 1] + b * batch[..., 2]


@functools.cache
def _segmenter() -> Callable[[np.ndarray], np.ndarray]:
    """This process's compiled segmenter, made on first use: importing numba and compiling take
    about 3.5 s (0.3 s from numba's cache), which ``import stats`` should not pay."""
    from stats import _felzenszwalb

    mask = _felzenszwalb.gaussian_mask(SEGMENT_PARAMETERS["sigma"])
    k, min_size = float(SEGMENT_PARAMETERS["k"]), int(SEGMENT_PARAMETERS["min_size"])
    return lambda batch: _felzenszwalb.segment_counts(batch, mask, k, min_size)


def _segments_serial(batch: np.ndarray) -> np.ndarray:
    segmenter = _segmenter()
    m_total, height, width, _ = batch.shape
    out = np.empty(m_total, np.float64)
    step = max(1, _PIXELS_PER_PASS // (height * width))
    for start in range(0, m_total, step):
        # the compiled code takes C-contiguous pixels; copy a sub-batch at a time (bounded memory)
        out[start : start + step] = segmenter(np.ascontiguousarray(batch[start : start + step]))
    return out


def _xlog2x_table(n: int) -> np.ndarray:
    """``F[c] = c * log2(c)`` for c = 0..n (F[0] = F[1] = 0)."""
    table = np.zeros(n + 1, np.float64)
    counts = np.arange(2, n + 1, dtype=np.float64)
    table[2:] = counts * np.log2(counts)
    return table


def _newton_coefficients(table: np.ndarray, up_to: int) -> np.ndarray:
    """``a[k]`` with ``F[c] = sum_k a[k] * C(c, k)`` (forward differences of F at 0), k = 0..up_to."""
    return np.array([sum((-1) ** (k - j) * math.comb(k, j) * table[j] for j in range(k + 1)) for k in range(up_to + 1)])


def _subset_extremes(values: np.ndarray, far: int) -> tuple[np.ndarray, np.ndarray]:
    """Min and max of ``values[:, members of T]`` for every subset T (bit mask) of the columns.

    ``values`` ``[groups, size]`` -> two ``[groups, 2**size]`` arrays; the empty subset gets
    ``far`` / ``-far``. Built bit by bit: the subsets whose highest bit is b extend those below it.
    """
    groups, size = values.shape
    low = np.empty((groups, 1 << size), values.dtype)
    high = np.empty((groups, 1 << size), values.dtype)
    low[:, 0], high[:, 0] = far, -far
    for bit in range(size):
        half = 1 << bit
        np.minimum(low[:, :half], values[:, bit : bit + 1], out=low[:, half : 2 * half])
        np.maximum(high[:, :half], values[:, bit : bit + 1], out=high[:, half : 2 * half])
    return low, high


def _group_window_sums(patch: np.ndarray, window: int, rows: int, cols: int, table: np.ndarray) -> np.ndarray:
    """For each image of ``patch`` ``[m, rows + window - 1, cols + window - 1]``: the sum over its
    ``rows x cols`` valid windows of ``sum_v F[count of value v in the window]``, F = ``table``.

    Work is done per value group (pixels of one image with the same value), never per window. A
    pixel at (y, x) lies in the windows of a rectangle R of window positions. A value seen once
    adds F[1] = 0 and is skipped. For a group S of up to ``_SUBSET_MAX`` pixels,
    ``sum over windows F[count] = sum over subsets T of S of a[|T|] * |intersection of R over T|``
    (``a``: Newton coefficients of F, a[0] = a[1] = 0; an intersection of rectangles is a
    rectangle). A larger group gets a difference grid over window positions (+1 on each pixel's
    rectangle) and two running sums give its count in every window.
    """
    m, patch_rows, patch_cols = patch.shape
    n = patch_rows * patch_cols
    flat = patch.reshape(m, n)
    order = np.argsort(flat, axis=1)
    ordered = np.take_along_axis(flat, order, axis=1)
    starts_mask = np.empty((m, n), bool)
    starts_mask[:, 0] = True
    np.not_equal(ordered[:, 1:], ordered[:, :-1], out=starts_mask[:, 1:])
    starts_mask = starts_mask.ravel()
    starts = np.flatnonzero(starts_mask)
    sizes = np.diff(starts, append=m * n)
    position = order.ravel()
    row_of = np.repeat(np.arange(patch_rows), patch_cols)
    col_of = np.tile(np.arange(patch_cols), patch_rows)
    out = np.zeros(m, np.float64)
    coefficients = _newton_coefficients(table, _SUBSET_MAX)
    far = patch_rows + patch_cols + window

    for size in range(2, _SUBSET_MAX + 1):
        first = starts[sizes == size]
        if not first.size:
            continue
        where = position[first[:, None] + np.arange(size)]
        y_low, y_high = _subset_extremes(row_of[where], far)
        x_low, x_high = _subset_extremes(col_of[where], far)
        np.minimum(y_low, rows - 1, out=y_low)
        np.maximum(y_high - (window - 1), 0, out=y_high)
        np.minimum(x_low, cols - 1, out=x_low)
        np.maximum(x_high - (window - 1), 0, out=x_high)
        n_rows = np.clip(y_low - y_high + 1, 0, None)
        n_cols = np.clip(x_low - x_high + 1, 0, None)
        popcount = np.array([bin(mask).count("1") for mask in range(1 << size)])
        # einsum, not @: no BLAS threads inside the pool's worker processes
        per_group = np.einsum("gs,s->g", n_rows * n_cols, coefficients[popcount])
        out += np.bincount(first // n, weights=per_group, minlength=m)

    big = sizes > _SUBSET_MAX
    n_big = int(np.count_nonzero(big))
    if n_big:
        group_of_entry = np.cumsum(starts_mask) - 1
        entry_big = big[group_of_entry]
        big_index = (np.cumsum(big) - 1)[group_of_entry[entry_big]]
        where = position[entry_big]
        y, x = row_of[where], col_of[where]
        r0 = np.maximum(y - window + 1, 0)
        r1 = np.minimum(y, rows - 1) + 1
        c0 = np.maximum(x - window + 1, 0)
        c1 = np.minimum(x, cols - 1) + 1
        grid_cols = cols + 1
        grid = (rows + 1) * grid_cols
        base = big_index * grid
        plus = np.concatenate([base + r0 * grid_cols + c0, base + r1 * grid_cols + c1])
        minus = np.concatenate([base + r1 * grid_cols + c0, base + r0 * grid_cols + c1])
        count_dtype = np.int16 if window * window < (1 << 15) else np.int32
        signs = np.concatenate([np.ones(plus.size), -np.ones(minus.size)])
        diff = np.bincount(np.concatenate([plus, minus]), weights=signs, minlength=n_big * grid).astype(count_dtype)
        diff = diff.reshape(n_big, rows + 1, grid_cols)
        for i in range(1, rows):
            diff[:, i] += diff[:, i - 1]
        for j in range(1, cols):
            diff[:, :rows, j] += diff[:, :rows, j - 1]
        per_group = table[diff[:, :rows, :cols]].sum(axis=(1, 2))
        out += np.bincount(starts[big] // n, weights=per_group, minlength=m)
    return out


def _entropy_serial(batch: np.ndarray, window: int) -> np.ndarray:
    m_total, height, width, _ = batch.shape
    window = _check_window(window, height, width)
    n_win_rows, n_win_cols = height - window + 1, width - window + 1
    table = _xlog2x_table(max(window * window, _SUBSET_MAX))
    totals = np.zeros(m_total, np.float64)
    tile = _ENTROPY_TILE
    patch_pixels = (min(tile, n_win_rows) + window - 1) * (min(tile, n_win_cols) + window - 1)
    step = max(1, _PIXELS_PER_PASS // patch_pixels)
    for start in range(0, m_total, step):
        levels = grey(batch[start : start + step])
        for top in range(0, n_win_rows, tile):
            rows = min(tile, n_win_rows - top)
            for left in range(0, n_win_cols, tile):
                cols = min(tile, n_win_cols - left)
                patch = levels[:, top : top + rows + window - 1, left : left + cols + window - 1]
                totals[start : start + step] += _group_window_sums(
                    np.ascontiguousarray(patch), window, rows, cols, table
                )
    n = window * window
    # entropy >= 0; clip the rounding (~1e-15) of a constant image's log2(n) - F[n] / n
    return np.maximum(math.log2(n) - totals / (n * n_win_rows * n_win_cols), 0.0)


def _dct_serial(batch: np.ndarray, threshold: float, seed_off_by_one: bool) -> np.ndarray:
    from scipy import fft  # on first use: importing stats costs no scipy

    m_total, height, width, _ = batch.shape
    n = height * width
    out = np.empty(m_total, np.float64)
    step = max(1, _PIXELS_PER_PASS // n)
    for start in range(0, m_total, step):
        levels = grey(batch[start : start + step]) / 255.0
        coefficients = fft.dctn(levels, type=2, axes=(1, 2), norm="ortho")
        energy = (coefficients * coefficients).reshape(len(levels), n)
        energy.sort(axis=1)
        cumulative = np.cumsum(energy[:, ::-1], axis=1)
        total = cumulative[:, -1:]
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = np.sqrt(cumulative) / np.sqrt(total)
        # ratio is non-decreasing and ratio[-1] == 1, so k = 1 + #(ratio < threshold) <= n
        k = 1 + np.count_nonzero(ratio < threshold, axis=1)
        k[total[:, 0] == 0] = 0  # an all-zero image needs no coefficient
        if seed_off_by_one:
            k = np.maximum(k - 1, 0)
        out[start : start + step] = 100.0 * k / n
    return out


def _edges_serial(batch: np.ndarray) -> np.ndarray:
    m_total, height, width, _ = batch.shape
    out = np.empty(m_total, np.float64)
    step = max(1, _PIXELS_PER_PASS // (height * width))
    for start in range(0, m_total, step):
        levels = grey(batch[start : start + step]) / 255.0
        # scipy's 'reflect' border (what skimage.filters.sobel uses) is numpy's 'symmetric'
        padded = np.pad(levels, ((0, 0), (1, 1), (1, 1)), mode="symmetric")
        smooth_cols = 0.25 * padded[:, :, :-2] + 0.5 * padded[:, :, 1:-1] + 0.25 * padded[:, :, 2:]
        d_rows = smooth_cols[:, 2:, :] - smooth_cols[:, :-2, :]
        smooth_rows = 0.25 * padded[:, :-2, :] + 0.5 * padded[:, 1:-1, :] + 0.25 * padded[:, 2:, :]
        d_cols = smooth_rows[:, :, 2:] - smooth_rows[:, :, :-2]
        magnitude = np.sqrt((d_rows * d_rows + d_cols * d_cols) * 0.5)
        out[start : start + step] = magnitude.sum(axis=(1, 2))
    return out


def _compute_serial(batch: np.ndarray, names: tuple, params: dict) -> dict:
    out = {}
    for name in names:
        if name == "segments":
            out[name] = _segments_serial(batch)
        elif name == "entropy":
            out[name] = _entropy_serial(batch, params["window"])
        elif name == "dct":
            out[name] = _dct_serial(batch, params["threshold"], params["seed_off_by_one"])
        else:
            out[name] = _edges_serial(batch)
    return out


# --------------------------------------------------------------------------------------------
# the process pool
# --------------------------------------------------------------------------------------------


def _pool_context():
    # fork where the platform has it (Linux): workers start at once and a script needs no
    # ``if __name__ == "__main__":`` guard. Workers use no threads, OpenMP or CUDA (the segmenter is
    # plain compiled numba), so forking a parent that holds torch's threads is safe for them.
    # Elsewhere spawn (the caller needs the guard).
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods else "spawn")


def _compute(batch: np.ndarray, names: tuple, params: dict, workers) -> dict:
    workers = _check_workers(workers)
    m_total, height, width, _ = batch.shape
    if m_total == 0:
        return {name: np.zeros(0, np.float64) for name in names}
    if "entropy" in names:
        params = dict(params, window=_check_window(params["window"], height, width))
    pixels = m_total * height * width
    serial_seconds = sum(_SECONDS_PER_PIXEL[name] for name in names) * pixels
    workers = min(workers, m_total)
    if workers == 1 or serial_seconds < _POOL_MIN_SECONDS:
        return _compute_serial(batch, names, params)
    # a few chunks per worker so that a slow chunk does not leave a core idle
    n_chunks = min(m_total, workers * 4)
    bounds = np.linspace(0, m_total, n_chunks + 1).astype(int)
    chunks = [batch[a:b] for a, b in zip(bounds[:-1], bounds[1:])]
    if "segments" in names:
        # compile (or load from numba's cache) once here: forked workers inherit the machine code
        # instead of each importing numba and compiling; spawned ones load the cache this writes
        _segmenter()
    with ProcessPoolExecutor(max_workers=workers, mp_context=_pool_context()) as pool:
        parts = list(pool.map(_compute_serial, chunks, [names] * n_chunks, [params] * n_chunks))
    return {name: np.concatenate([part[name] for part in parts]) for name in names}


def _names(names) -> tuple:
    if names is None:
        return tuple(STATISTICS)
    if isinstance(names, str):
        names = [names]
    names = tuple(dict.fromkeys(names))
    unknown = [name for name in names if name not in STATISTICS]
    if unknown:
        raise ValueError(f"unknown statistic {unknown[0]!r}; choose from {', '.join(STATISTICS)}")
    return names


# --------------------------------------------------------------------------------------------
# public API: batches
# --------------------------------------------------------------------------------------------


def segment_counts(images, workers=None) -> np.ndarray:
    """Felzenszwalb-Huttenlocher segment count of every image of ``images`` ``[M, H, W, C]``:
    float64 ``[M]``.

    The number of components of the original ``segment 0.5 500 20`` per image (see the module
    docstring for where ties and grey images depart). ``workers``: processes (default: every core).
    """
    return _compute(_as_batch(images), ("segments",), {}, workers)["segments"]


def local_entropies(images, window=_DEFAULT_WINDOW, workers=None) -> np.ndarray:
    """Mean local intensity entropy (bits) of every image: float64 ``[M]``.

    Raises ``ValueError`` when the images are smaller than ``window`` x ``window``.
    """
    return _compute(_as_batch(images), ("entropy",), {"window": window}, workers)["entropy"]


def dct_percentages(images, threshold=_DEFAULT_THRESHOLD, workers=None, *, seed_off_by_one=False) -> np.ndarray:
    """Percentage of DCT coefficients needed for an L2-norm ratio of ``threshold``: float64 ``[M]``.

    ``100 * k / n``; ``seed_off_by_one=True`` gives the seed's stored ``100 * (k - 1) / n``.
    """
    params = {"threshold": _check_threshold(threshold), "seed_off_by_one": bool(seed_off_by_one)}
    return _compute(_as_batch(images), ("dct",), params, workers)["dct"]


def edge_strengths(images, workers=None) -> np.ndarray:
    """Sum of Sobel gradient magnitudes (the crisp-boundaries substitute) of every image: float64 ``[M]``."""
    return _compute(_as_batch(images), ("edges",), {}, workers)["edges"]


#: name -> batch function; the names are the columns ``compute_statistics`` returns.
STATISTICS: dict[str, Callable[..., np.ndarray]] = {
    "segments": segment_counts,
    "entropy": local_entropies,
    "dct": dct_percentages,
    "edges": edge_strengths,
}


def compute_statistics(
    images,
    names: Iterable[str] | str | None = None,
    workers=None,
    *,
    window: int = _DEFAULT_WINDOW,
    threshold: float = _DEFAULT_THRESHOLD,
    seed_off_by_one: bool = False,
) -> dict[str, np.ndarray]:
    """Several statistics of a batch in one pass over one process pool.

    ``names``: any of ``STATISTICS`` (default: all four, in that order). Returns name -> float64
    ``[M]``. ``window``/``threshold``/``seed_off_by_one`` are passed to entropy and DCT.
    """
    names = _names(names)
    params = {
        "window": window,
        "threshold": _check_threshold(threshold),
        "seed_off_by_one": bool(seed_off_by_one),
    }
    return _compute(_as_batch(images), names, params, workers)


# --------------------------------------------------------------------------------------------
# public API: one image
# --------------------------------------------------------------------------------------------


def segment_count(image) -> int:
    """Felzenszwalb-Huttenlocher segment count of one image (the original program's algorithm;
    sigma 0.5, k 500, min size 20)."""
    return int(_segments_serial(_as_image(image))[0])


def local_entropy(image, window: int = _DEFAULT_WINDOW) -> float:
    """Mean over all valid ``window`` x ``window`` windows (stride 1) of the Shannon entropy (bits)
    of the window's grey values. Raises ``ValueError`` for an image smaller than the window."""
    batch = _as_image(image)
    return float(_entropy_serial(batch, _check_window(window, batch.shape[1], batch.shape[2]))[0])


def dct_percentage(image, threshold: float = _DEFAULT_THRESHOLD, *, seed_off_by_one: bool = False) -> float:
    """Percentage of orthonormal DCT-II coefficients of the grey image needed to reach an L2-norm
    ratio of ``threshold`` (``100 * k / n``; the seed's ``100 * (k - 1) / n`` with
    ``seed_off_by_one=True``)."""
    return float(_dct_serial(_as_image(image), _check_threshold(threshold), bool(seed_off_by_one))[0])


def edge_strength(image) -> float:
    """Sum over the image of the Sobel gradient magnitude of its grey version in [0, 1] (the
    substitute for the seed's crisp-boundaries edge strengths)."""
    return float(_edges_serial(_as_image(image))[0])
