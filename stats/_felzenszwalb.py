"""Felzenszwalb and Huttenlocher's ``segment`` program (2006 release), compiled with numba.

A transcription of ``segment-image.h``, ``segment-graph.h``, ``disjoint-set.h``, ``filter.h`` and
``convolve.h`` that returns only the number of components, for a whole batch per call. Every
quantity is float32 with the C++'s operation order (``float`` pixels, mask, weights and
thresholds), so weights and threshold comparisons are the original's bit for bit. One departure:
edges of equal weight keep the order in which they are made (a stable radix sort), where
``std::sort`` leaves their order to the C++ library; ``stats.images`` says how often that changes
a count. ``segment_counts`` has one signature and is compiled when this module is imported (about
3.5 s; numba's on-disk cache makes it 0.3 s), so ``stats.images`` imports it on first use only.
"""

from __future__ import annotations

import math

import numba
import numpy as np

__all__ = ["gaussian_mask", "segment_counts"]

_DIGIT_BITS = 11  # radix sort: three passes of 11 bits cover a float32's 32 bits
_DIGITS = 1 << _DIGIT_BITS


def gaussian_mask(sigma: float) -> np.ndarray:
    """One side of the original's normalised Gaussian (``make_fgauss`` + ``normalize``), float32.

    ``len = ceil(4 sigma) + 1`` taps ``exp(-0.5 (i / sigma)^2)`` (``i / sigma`` and its square in
    float, the rest in double, stored as float), divided by ``2 sum(mask[1:]) + mask[0]``.
    """
    sigma = max(np.float32(sigma), np.float32(0.01))
    length = int(math.ceil(float(sigma) * 4.0)) + 1
    ratio = np.arange(length, dtype=np.float32) / sigma
    mask = np.exp(-0.5 * (ratio * ratio).astype(np.float64)).astype(np.float32)
    total = np.float32(0.0)
    for value in mask[1:]:  # float accumulation in the original's order
        total += value
    total = np.float32(2.0) * total + mask[0]
    return mask / total


@numba.njit
def _smooth(plane, mask, tmp, out):
    """``convolve_even`` twice: rows, then columns; borders repeat the edge pixel (clamp)."""
    height, width = plane.shape
    taps = mask.shape[0]
    for y in range(height):
        for x in range(width):
            total = mask[0] * plane[y, x]
            for i in range(1, taps):
                total += mask[i] * (plane[y, max(x - i, 0)] + plane[y, min(x + i, width - 1)])
            tmp[y, x] = total
    for y in range(height):
        for x in range(width):
            total = mask[0] * tmp[y, x]
            for i in range(1, taps):
                total += mask[i] * (tmp[max(y - i, 0), x] + tmp[min(y + i, height - 1), x])
            out[y, x] = total


@numba.njit(inline="always")
def _weight(smooth, channels, p, q):
    """``diff``: euclidean distance of the smoothed channels of pixels p and q (float32)."""
    total = np.float32(0.0)
    for c in range(channels):
        d = smooth[c, p] - smooth[c, q]
        total += d * d
    return np.sqrt(total)


@numba.njit(inline="always")
def _find(parent, x):
    """``universe::find``: walk to the root and point x (only x) at it."""
    y = x
    while y != parent[y]:
        y = parent[y]
    parent[x] = y
    return y


@numba.njit(inline="always")
def _join(parent, rank, size, x, y):
    """``universe::join``: union by rank of two roots."""
    if rank[x] > rank[y]:
        parent[y] = x
        size[x] += size[y]
    else:
        parent[x] = y
        size[y] += size[x]
        if rank[x] == rank[y]:
            rank[y] += 1


@numba.njit
def _radix_sort(keys, buffer, count, counts):
    """Sort ``keys[:count]`` (uint64: float32 bits of the weight << 32 | edge index) by their high
    32 bits, stably (LSD, three passes of 11 bits). Non-negative floats order as their bits."""
    source, target = keys, buffer
    digit = np.uint64(_DIGITS - 1)
    for step in range(3):
        shift = np.uint64(32 + step * _DIGIT_BITS)
        counts[:] = 0
        for i in range(count):
            counts[(source[i] >> shift) & digit] += 1
        start = 0
        for d in range(_DIGITS):
            n = counts[d]
            counts[d] = start
            start += n
        for i in range(count):
            d = (source[i] >> shift) & digit
            target[counts[d]] = source[i]
            counts[d] += 1
        source, target = target, source
    return source


@numba.njit("int64[::1](uint8[:, :, :, ::1], float32[::1], float64, int64)", cache=True)
def segment_counts(batch, mask, k, min_size):
    """Number of components of ``segment`` for each image of ``batch`` ``[M, H, W, C]`` (uint8,
    C-contiguous, C = 1 or 3): int64 ``[M]``. ``mask`` from ``gaussian_mask``; ``k``, ``min_size``
    as the program's arguments. Each image is segmented on its own."""
    images, height, width, channels = batch.shape
    n = height * width
    threshold_k = np.float32(k)
    plane = np.empty((height, width), np.float32)
    tmp = np.empty((height, width), np.float32)
    smooth = np.empty((channels, n), np.float32)
    weights = np.empty(4 * n, np.float32)
    ends = np.empty((4 * n, 2), np.int32)
    keys = np.empty(4 * n, np.uint64)
    buffer = np.empty(4 * n, np.uint64)
    counts = np.empty(_DIGITS, np.int64)
    parent = np.empty(n, np.int32)
    rank = np.empty(n, np.int32)
    size = np.empty(n, np.int32)
    threshold = np.empty(n, np.float32)
    out = np.empty(images, np.int64)
    for m in range(images):
        for c in range(channels):
            for y in range(height):
                for x in range(width):
                    plane[y, x] = np.float32(batch[m, y, x, c])
            _smooth(plane, mask, tmp, smooth[c].reshape((height, width)))
        # the graph: right, down, down-right and up-right neighbours, in the original's order
        edges = 0
        for y in range(height):
            for x in range(width):
                p = y * width + x
                if x < width - 1:
                    ends[edges, 0], ends[edges, 1] = p, p + 1
                    edges += 1
                if y < height - 1:
                    ends[edges, 0], ends[edges, 1] = p, p + width
                    edges += 1
                if x < width - 1 and y < height - 1:
                    ends[edges, 0], ends[edges, 1] = p, p + width + 1
                    edges += 1
                if x < width - 1 and y > 0:
                    ends[edges, 0], ends[edges, 1] = p, p - width + 1
                    edges += 1
        for e in range(edges):
            weights[e] = _weight(smooth, channels, ends[e, 0], ends[e, 1])
        bits = weights[:edges].view(np.uint32)
        for e in range(edges):
            keys[e] = (np.uint64(bits[e]) << np.uint64(32)) | np.uint64(e)
        ordered = _radix_sort(keys, buffer, edges, counts)
        # segment_graph: a merge when the weight is within both components' thresholds
        for i in range(n):
            parent[i] = i
            rank[i] = 0
            size[i] = 1
            threshold[i] = threshold_k  # THRESHOLD(1, c) = c / 1
        components = n
        for i in range(edges):
            e = ordered[i] & np.uint64(0xFFFFFFFF)
            w = weights[e]
            a = _find(parent, ends[e, 0])
            b = _find(parent, ends[e, 1])
            if a != b and w <= threshold[a] and w <= threshold[b]:
                _join(parent, rank, size, a, b)
                components -= 1
                a = _find(parent, a)
                threshold[a] = w + threshold_k / np.float32(size[a])
        # post-processing: over the sorted edges, merge any component below min_size
        for i in range(edges):
            e = ordered[i] & np.uint64(0xFFFFFFFF)
            a = _find(parent, ends[e, 0])
            b = _find(parent, ends[e, 1])
            if a != b and (size[a] < min_size or size[b] < min_size):
                _join(parent, rank, size, a, b)
                components -= 1
        out[m] = components
    return out
