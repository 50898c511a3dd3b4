"""Benchmark the four image statistics of ``stats.images``: plain per-image loop vs the toolkit.

Both run in this one process on the same images, CIFAR-sized (32x32x3) natural patches cut from
the photographs that ship with scikit-image (random square crops, resized with area averaging),
so that entropy, segments and edges see natural content rather than noise.

The plain loop is what a user would write per image with the library calls at hand:
  segments  skimage.segmentation.felzenszwalb(img, scale=500, sigma=0.5, min_size=20), labels counted
            (the toolkit transcribes the original C++ program instead, compiled with numba; the two
            differ in borders, precision and ties: for segments the table gives the share of images
            with equal counts)
  entropy   the seed grey, numpy sliding_window_view -> sort each 10x10 window -> run lengths -> entropy
            (the vectorised form of the seed's np.unique-per-window loop, which is ~15x slower again)
  dct       scipy.fft.dctn(grey, norm="ortho") -> sort abs(c) -> cumulative norm -> first k >= 0.9998
  edges     skimage.filters.sobel(grey / 255).sum()
The toolkit is ``stats.images.compute_statistics(images, workers=...)``: all four in one pass over
a process pool. Its first use in a process imports numba and compiles the segmenter; that time is
printed on its own and added to the toolkit's total. By default numba's on-disk cache is pointed at
an empty temporary folder, so the compile is cold (what a first run pays); ``--cached`` keeps
numba's usual cache (what later runs pay). Prints seconds per statistic, the ratio and the largest
disagreement.

    python experiments/bench_stats.py            # 60,000 images (a few minutes)
    python experiments/bench_stats.py --n 3000   # quick look
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import platform
import tempfile
import time

import cv2
import numpy as np
import scipy
import skimage
from numpy.lib.stride_tricks import sliding_window_view
from scipy import fft as sp_fft
from skimage import data as skdata
from skimage.filters import sobel
from skimage.segmentation import felzenszwalb

from stats.images import STATISTICS, compute_statistics, segment_counts

NAMES = list(STATISTICS)


def natural_patches(n: int, seed: int, size: int = 32) -> np.ndarray:
    """``n`` uint8 images [n, size, size, 3]: random crops of scikit-image's sample photographs."""
    sources = [
        skdata.astronaut(),
        skdata.chelsea(),
        skdata.coffee(),
        skdata.rocket(),
        skdata.hubble_deep_field(),
        skdata.immunohistochemistry(),
        skdata.retina(),
        skdata.cat(),
        skdata.stereo_motorcycle()[0],
    ]
    rng = np.random.default_rng(seed)
    out = np.empty((n, size, size, 3), np.uint8)
    for i in range(n):
        photo = sources[rng.integers(len(sources))]
        side = int(rng.integers(size, min(photo.shape[:2]) // 2 + 1))
        top = int(rng.integers(0, photo.shape[0] - side + 1))
        left = int(rng.integers(0, photo.shape[1] - side + 1))
        crop = cv2.resize(photo[top : top + side, left : left + side, :3], (size, size), interpolation=cv2.INTER_AREA)
        out[i] = crop[:, ::-1] if rng.random() < 0.5 else crop
    return out


def seed_grey(image: np.ndarray) -> np.ndarray:
    return 0.2989 * image[..., 0] + 0.5870 * image[..., 1] + 0.1140 * image[..., 2]


def plain_segments(image: np.ndarray) -> float:
    return felzenszwalb(image, scale=500, sigma=0.5, min_size=20).max() + 1


def plain_entropy(image: np.ndarray, window: int = 10) -> float:
    windows = sliding_window_view(seed_grey(image), (window, window)).reshape(-1, window * window)
    ordered = np.sort(windows, axis=1)
    new = np.ones(ordered.shape, bool)
    new[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
    starts = np.flatnonzero(new.ravel())
    p = np.diff(starts, append=ordered.size) / (window * window)
    per_window = np.bincount(starts // (window * window), weights=-p * np.log2(p), minlength=len(ordered))
    return per_window.mean()


def plain_dct(image: np.ndarray, threshold: float = 0.9998) -> float:
    coefficients = sp_fft.dctn(seed_grey(image) / 255.0, norm="ortho")
    ordered = np.sort(np.abs(coefficients).ravel())[::-1]
    norm = np.linalg.norm(ordered)
    if norm == 0:  # an all-black image needs no coefficient
        return 0.0
    ratio = np.sqrt(np.cumsum(ordered * ordered)) / norm
    k = int(np.argmax(ratio >= threshold)) + 1
    return 100.0 * k / ordered.size


def plain_edges(image: np.ndarray) -> float:
    return sobel(seed_grey(image) / 255.0).sum()


PLAIN = {"segments": plain_segments, "entropy": plain_entropy, "dct": plain_dct, "edges": plain_edges}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=60000, help="number of 32x32x3 images (default 60000)")
    parser.add_argument("--workers", type=int, default=None, help="toolkit processes (default: every core)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-breakdown", action="store_true", help="skip timing each toolkit statistic on its own")
    parser.add_argument(
        "--serial", action="store_true", help="also time each toolkit statistic in one process (workers=1)"
    )
    parser.add_argument(
        "--cached", action="store_true", help="let the first use load the segmenter from numba's on-disk cache"
    )
    args = parser.parse_args()
    if args.n < 1:
        parser.error("--n must be at least 1")
    if not args.cached:  # numba reads this when stats first imports it, at the first use below
        cold_cache = tempfile.TemporaryDirectory(prefix="bench_stats_numba_")
        os.environ["NUMBA_CACHE_DIR"] = cold_cache.name

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(
        f"machine: {cores} cores, {platform.processor() or platform.machine()}; python {platform.python_version()}, "
        f"numpy {np.__version__}, scipy {scipy.__version__}, scikit-image {skimage.__version__}, "
        f"opencv {cv2.__version__}, numba {importlib.metadata.version('numba')}"
    )
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())} (other processes share the cores)")
    started = time.perf_counter()
    images = natural_patches(args.n, args.seed)
    print(f"images: {args.n} x 32x32x3 natural patches ({time.perf_counter() - started:.1f} s to cut)")

    plain_values, plain_seconds = {}, {}
    for name in NAMES:
        function = PLAIN[name]
        started = time.perf_counter()
        plain_values[name] = np.array([function(image) for image in images], np.float64)
        plain_seconds[name] = time.perf_counter() - started
        print(f"  plain loop {name:9s} {plain_seconds[name]:8.1f} s", flush=True)

    started = time.perf_counter()
    segment_counts(images[:1], workers=1)
    first_use = time.perf_counter() - started
    how = "loaded from numba's cache if present" if args.cached else "cold compile"
    print(f"  toolkit    first use {first_use:8.1f} s (import numba, compile the segmenter: {how})", flush=True)

    toolkit_seconds = {}
    if not args.no_breakdown:
        for name in NAMES:
            started = time.perf_counter()
            STATISTICS[name](images, workers=args.workers)
            toolkit_seconds[name] = time.perf_counter() - started
            print(f"  toolkit    {name:9s} {toolkit_seconds[name]:8.1f} s", flush=True)
    serial_seconds = {}
    if args.serial:
        for name in NAMES:
            started = time.perf_counter()
            STATISTICS[name](images, workers=1)
            serial_seconds[name] = time.perf_counter() - started
            print(f"  toolkit    {name:9s} {serial_seconds[name]:8.1f} s (one process)", flush=True)
    started = time.perf_counter()
    toolkit_values = compute_statistics(images, workers=args.workers)
    one_pass = time.perf_counter() - started
    toolkit_total = one_pass + first_use
    print(
        f"  toolkit    all four  {one_pass:8.1f} s (compute_statistics, one pass) + {first_use:.1f} s first use "
        f"= {toolkit_total:.1f} s",
        flush=True,
    )

    print()
    print(f"{'statistic':10s} {'plain s':>9s} {'toolkit s':>10s} {'ratio':>7s}  max |plain - toolkit|")
    for name in NAMES:
        difference = np.abs(plain_values[name] - toolkit_values[name])
        if name == "segments":  # scikit-image vs the original program: see stats.images
            gap_text = f"{difference.max():.3g}; equal on {np.mean(difference == 0):.1%} of images"
        else:
            gap_text = f"{difference.max():.3g}"
        own = toolkit_seconds.get(name)
        own_text = f"{own:10.1f} {plain_seconds[name] / own:6.1f}x" if own else f"{'-':>10s} {'-':>7s}"
        print(f"{name:10s} {plain_seconds[name]:9.1f} {own_text}  {gap_text}")
    plain_total = sum(plain_seconds.values())
    print(
        f"{'all four':10s} {plain_total:9.1f} {toolkit_total:10.1f} {plain_total / toolkit_total:6.1f}x"
        "  (toolkit: one pass + first use)"
    )
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    target = "met" if plain_total / toolkit_total >= 3 and toolkit_total < 20 else "not met"
    print(f"target (>= 3x the plain loop and < 20 s for all four on 60,000 images): {target}")


if __name__ == "__main__":
    main()
