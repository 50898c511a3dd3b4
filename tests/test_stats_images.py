"""Image statistics (stats.images): answers known by hand, the seed code's own loops, the original
segmentation program written plainly, the plain library calls, bad input."""

import math

import numpy as np
import pytest
from scipy import fft as sp_fft
from skimage import data as skdata
from skimage.filters import sobel
from skimage.segmentation import felzenszwalb

from stats import images
from stats.images import (
    STATISTICS,
    compute_statistics,
    dct_percentage,
    dct_percentages,
    edge_strength,
    edge_strengths,
    local_entropies,
    local_entropy,
    segment_count,
    segment_counts,
)

# --------------------------------------------------------------------------------------------
# references: the seed code's computations, written plainly (slow, for small images)
# --------------------------------------------------------------------------------------------


def seed_grey(image):
    image = np.asarray(image, np.uint8)
    if image.ndim == 2:
        return image
    if image.shape[2] == 1:
        return image[..., 0]
    return 0.2989 * image[..., 0] + 0.5870 * image[..., 1] + 0.1140 * image[..., 2]


def seed_entropy(image, window=10):
    """DatasetMetrics.img_entropy: np.unique per window, mean of the window entropies."""
    grey = seed_grey(image)
    entropies = []
    for h in range(grey.shape[0] + 1 - window):
        for w in range(grey.shape[1] + 1 - window):
            _, counts = np.unique(grey[h : h + window, w : w + window], return_counts=True)
            probs = counts / float(np.sum(counts))
            entropies.append(-np.sum(probs * np.log2(probs)))
    return np.mean(entropies)


def seed_dct_k(image, threshold=0.9998):
    """DatasetMetrics.img_frequency's while loop (in float64): the number k of coefficients."""
    coeffs = sp_fft.dctn(seed_grey(image) / 255.0, norm="ortho")
    ordered = np.sort(np.abs(coeffs).ravel())[::-1]
    k = 1
    while np.linalg.norm(ordered[:k]) / np.linalg.norm(ordered) < threshold:
        k += 1
    return k


def original_segments(image, sigma=0.5, k=500.0, min_size=20):
    """Felzenszwalb and Huttenlocher's ``segment`` (segment-image.h, segment-graph.h, filter.h,
    convolve.h), written plainly in float32 as the C++ is; tied weights keep their creation order.
    A grey image is one channel (the program itself reads only colour PPM)."""
    image = np.asarray(image, np.uint8)
    planes = (image[..., None] if image.ndim == 2 else image).transpose(2, 0, 1).astype(np.float32)
    channels, height, width = planes.shape
    # make_fgauss + normalize: exp(-0.5 (i / sigma)^2), i = 0..ceil(4 sigma), sum of both sides = 1
    ratio = np.arange(math.ceil(4 * sigma) + 1, dtype=np.float32) / np.float32(sigma)
    mask = np.exp(-0.5 * (ratio * ratio).astype(np.float64)).astype(np.float32)
    mask = mask / (np.float32(2) * np.sum(mask[1:], dtype=np.float32) + mask[0])

    def convolve_even(src):  # along the last axis, border pixels repeated; returns it transposed
        index = np.arange(src.shape[-1])
        total = mask[0] * src
        for i in range(1, len(mask)):
            left, right = np.maximum(index - i, 0), np.minimum(index + i, src.shape[-1] - 1)
            total = total + mask[i] * (src[..., left] + src[..., right])
        return total.swapaxes(-1, -2)

    smooth = convolve_even(convolve_even(planes)).reshape(channels, -1)
    edges = []  # (a, b) in the program's order: per pixel right, down, down-right, up-right
    for y in range(height):
        for x in range(width):
            p = y * width + x
            if x < width - 1:
                edges.append((p, p + 1))
            if y < height - 1:
                edges.append((p, p + width))
            if x < width - 1 and y < height - 1:
                edges.append((p, p + width + 1))
            if x < width - 1 and y > 0:
                edges.append((p, p - width + 1))
    a, b = np.array(edges, np.int64).reshape(-1, 2).T
    squares = np.zeros(len(a), np.float32)
    for c in range(channels):
        d = smooth[c, a] - smooth[c, b]
        squares = squares + d * d
    weights = np.sqrt(squares)
    order = np.argsort(weights, kind="stable")

    parent, size = list(range(height * width)), [1] * (height * width)
    threshold = [np.float32(k)] * (height * width)

    def find(x):
        while parent[x] != x:
            x = parent[x]
        return x

    def join(x, y):  # which root survives does not change the partition
        parent[y] = x
        size[x] += size[y]

    for e in order:
        x, y, w = find(a[e]), find(b[e]), weights[e]
        if x != y and w <= threshold[x] and w <= threshold[y]:
            join(x, y)
            threshold[x] = w + np.float32(k) / np.float32(size[x])
    for e in order:
        x, y = find(a[e]), find(b[e])
        if x != y and (size[x] < min_size or size[y] < min_size):
            join(x, y)
    return sum(find(p) == p for p in range(height * width))


def natural_patches(count, seed=0):
    """32x32 colour patches of the photographs shipped with scikit-image: random square crops of
    side 32, 64, 96 or 128, block-averaged to 32x32."""
    photos = [skdata.astronaut(), skdata.coffee(), skdata.chelsea(), skdata.rocket()]
    rng = np.random.default_rng(seed)
    out = np.empty((count, 32, 32, 3), np.uint8)
    for i in range(count):
        photo = photos[i % len(photos)]
        factor = int(rng.integers(1, 5))
        top = int(rng.integers(0, photo.shape[0] - 32 * factor + 1))
        left = int(rng.integers(0, photo.shape[1] - 32 * factor + 1))
        crop = photo[top : top + 32 * factor, left : left + 32 * factor].astype(np.float64)
        out[i] = np.rint(crop.reshape(32, factor, 32, factor, 3).mean(axis=(1, 3)))
    return out


def skimage_edges(image):
    return sobel(seed_grey(image) / 255.0).sum()


def sample_images(rng, count, height, width, channels):
    """Mixed content: smooth colour fields, blocky posterised images (many exact ties), noise."""
    out = np.empty((count, height, width, channels), np.uint8)
    for i in range(count):
        kind = i % 3
        if kind == 0:
            yy, xx = np.mgrid[0:height, 0:width]
            phase = rng.uniform(0, 6, size=channels)
            field = 127 + 100 * np.sin(yy[..., None] / rng.uniform(2, 8) + xx[..., None] / rng.uniform(2, 8) + phase)
            out[i] = np.clip(field + rng.normal(0, 3, field.shape), 0, 255).astype(np.uint8)
        elif kind == 1:
            cells = rng.integers(0, 3, size=(math.ceil(height / 4), math.ceil(width / 4), channels)) * 120
            out[i] = np.repeat(np.repeat(cells, 4, axis=0), 4, axis=1)[:height, :width].astype(np.uint8)
        else:
            out[i] = rng.integers(0, 256, size=(height, width, channels), dtype=np.uint8)
    return out


@pytest.fixture(scope="module")
def colour_batch():
    return sample_images(np.random.default_rng(0), 24, 32, 32, 3)


@pytest.fixture(scope="module")
def grey_batch():
    return sample_images(np.random.default_rng(1), 12, 23, 17, 1)


def halves(height=16, width=32, channels=None):
    image = np.zeros((height, width), np.uint8)
    image[:, width // 2 :] = 255
    return image if channels is None else np.repeat(image[..., None], channels, axis=2)


def checkerboard(size=20):
    return (np.indices((size, size)).sum(axis=0) % 2 * 255).astype(np.uint8)


# --------------------------------------------------------------------------------------------
# answers known by hand
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [0, 77, 255])
def test_constant_image(value):
    image = np.full((20, 24, 3), value, np.uint8)
    assert segment_count(image) == 1
    assert local_entropy(image) == 0.0
    assert edge_strength(image) == 0.0
    n = 20 * 24
    if value == 0:  # nothing to reconstruct: no coefficient
        assert dct_percentage(image) == 0.0
    else:  # only the DC coefficient; the seed's off-by-one stores 0 %
        assert dct_percentage(image) == pytest.approx(100.0 / n)
        assert dct_percentage(image, seed_off_by_one=True) == 0.0


def test_two_flat_halves():
    image = halves(16, 32)  # columns 0-15 black, 16-31 white

    # 10x10 windows starting at column j hold 10 * (16 - j) black pixels when j in 7..15, so a
    # fraction p = (16 - j) / 10 of black; the 23 x 13 window positions are the same per row.
    def h2(p):
        return 0.0 if p in (0.0, 1.0) else -(p * math.log2(p) + (1 - p) * math.log2(1 - p))

    expected = np.mean([h2(min(max(16 - j, 0), 10) / 10) for j in range(23)])
    assert local_entropy(image) == pytest.approx(expected, abs=1e-12)
    # Sobel (kernels [1, 2, 1] / 4 x [1, 0, -1]) sees a unit step in the two columns beside the
    # boundary: magnitude sqrt(1 / 2) there, 0 elsewhere.
    assert edge_strength(image) == pytest.approx(16 * 2 * math.sqrt(0.5), rel=1e-12)
    # sigma 0.5 (5 taps, weights 0.7866, 0.1065, 0.0003) smooths columns 14-17 to 0.07, 27.2,
    # 227.8, 254.9. Flat columns join first (weight 0), then each half's outer columns (0.07;
    # diagonal edges weigh the same as horizontal ones here);
    # the strips 15 and 16 (16 pixels, threshold k / 16 = 31.25) do not join their half (27.1
    # > 0.07 + 500 / 240) nor each other (200.6); as they are smaller than min_size 20, the
    # post-processing merges each into its half along the 27.1 edge: two segments.
    assert segment_count(image) == 2
    assert segment_count(halves(16, 32, channels=3)) == 2


def test_segments_of_a_low_contrast_step_grey_and_colour():
    # halves 0 | 12: columns 14-17 smooth to 0.003, 1.281, 10.719, 11.997. One grey channel:
    # weights 0.003, 1.277, 9.439, 1.277, 0.003. Each half (240 pixels after its 0.003 edge,
    # threshold 0.003 + 500 / 240 = 2.087) takes its strip at 1.277; the halves (threshold
    # 1.277 + 500 / 256 = 3.23) stay apart at 9.439: two segments.
    image = halves(16, 32)
    image[image == 255] = 12
    assert segment_count(image) == 2
    # The same grey as three equal channels (the original program reads PPM colour): every
    # weight grows by sqrt(3), so 2.212 > 0.005 + 500 / 240 = 2.089 leaves both strips alone,
    # and they join each other at 16.35 <= k / 16 = 31.25: a 32-pixel middle segment, three.
    assert segment_count(np.repeat(image[..., None], 3, axis=2)) == 3


def test_segments_use_eight_neighbours():
    # 16x16 blocks of grey level 8 at top left and bottom right, 0 elsewhere (colour): each block
    # takes its boundary strips (weights <= 0.11 * 8 * sqrt(3) = 1.5 below its threshold, about
    # 2) and is kept from the blocks beside it (about 0.79 * 8 * sqrt(3) = 10.9). Equal blocks
    # meet only at the centre corner, where the two diagonal edges (15, 15)-(16, 16) and
    # (16, 15)-(15, 16) join pixels smoothed to the same value (weight 0): the 8-neighbour graph
    # joins each pair of equal blocks, two segments. (A 4-neighbour graph, OpenCV's, gives four.)
    image = np.zeros((32, 32, 3), np.uint8)
    image[:16, :16] = 8
    image[16:, 16:] = 8
    assert segment_count(image) == 2
    assert original_segments(image) == 2


def test_checkerboard():
    board = checkerboard(20)
    # every 10x10 window holds 50 black and 50 white pixels: exactly one bit
    assert local_entropy(board) == pytest.approx(1.0, abs=1e-12)
    # smoothed rows above and below any pixel are equal, so the Sobel response is zero except at
    # the four corners, where the reflected border gives +-1/2 along both axes: |g| = 1/2 each
    assert edge_strength(board) == pytest.approx(2.0, abs=1e-12)
    # a window of 3: 5 of one colour and 4 of the other in every window
    p = 5 / 9
    assert local_entropy(board, window=3) == pytest.approx(-(p * math.log2(p) + (1 - p) * math.log2(1 - p)))


def test_single_dct_basis_image():
    n_rows, n_cols = 16, 12
    basis = np.zeros((n_rows, n_cols))
    basis[3, 5] = 1.0
    pattern = sp_fft.idctn(basis, norm="ortho")
    # DC plus one basis function, quantised to uint8: two coefficients carry all but the rounding
    image = np.rint(127.5 + 100 * pattern / np.abs(pattern).max()).astype(np.uint8)
    n = n_rows * n_cols
    assert dct_percentage(image) == pytest.approx(100 * 2 / n)
    assert dct_percentage(image, seed_off_by_one=True) == pytest.approx(100 * 1 / n)
    # a threshold of 1 asks for every coefficient that is not exactly zero
    assert dct_percentage(image, threshold=1.0) > 100 * 2 / n


def test_window_options():
    rng = np.random.default_rng(5)
    image = rng.integers(0, 256, size=(12, 15, 3), dtype=np.uint8)
    assert local_entropy(image, window=1) == 0.0
    # one window covering the whole image of distinct values: log2 of the pixel count
    distinct = np.arange(12 * 12, dtype=np.uint8).reshape(12, 12)
    assert local_entropy(distinct, window=12) == pytest.approx(math.log2(144))
    assert local_entropy(image, window=12) == pytest.approx(seed_entropy(image, 12), abs=1e-12)


# --------------------------------------------------------------------------------------------
# the same numbers as the seed code / the per-image library call
# --------------------------------------------------------------------------------------------


def test_entropy_matches_seed_loop(colour_batch, grey_batch):
    got = local_entropies(colour_batch, workers=1)
    expected = [seed_entropy(image) for image in colour_batch]
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)
    got = local_entropies(grey_batch, window=7, workers=1)
    np.testing.assert_allclose(got, [seed_entropy(image, 7) for image in grey_batch], rtol=0, atol=1e-12)


def test_entropy_of_large_images_uses_tiles_and_matches():
    # more than 32 window positions per side: several tiles, values repeating across tiles
    rng = np.random.default_rng(3)
    batch = (rng.integers(0, 3, size=(2, 50, 45, 3)) * 100).astype(np.uint8)
    batch[1, :, :20] = 200  # a large flat region as well
    np.testing.assert_allclose(
        local_entropies(batch, workers=1), [seed_entropy(image) for image in batch], rtol=0, atol=1e-12
    )


def test_segments_match_the_original_program(colour_batch, grey_batch):
    assert segment_counts(colour_batch, workers=1).tolist() == [original_segments(im) for im in colour_batch]
    assert segment_counts(grey_batch, workers=1).tolist() == [original_segments(im) for im in grey_batch]


def test_segments_with_many_tied_edges_match_the_original_program():
    # 4x4 blocks of three levels: many exactly equal edge weights, whose sorted order decides
    # some merges (ties keep their creation order); the count must not depend on the batch
    rng = np.random.default_rng(11)
    cells = (rng.integers(0, 3, size=(40, 8, 8, 3)) * 100).astype(np.uint8)
    batch = np.repeat(np.repeat(cells, 4, axis=1), 4, axis=2)
    expected = [original_segments(image) for image in batch]
    assert segment_counts(batch, workers=1).tolist() == expected
    assert segment_counts(batch[::-1], workers=1).tolist() == expected[::-1]


@pytest.mark.parametrize("shape", [(1, 1), (1, 6), (2, 3), (4, 4), (5, 30), (30, 5), (7, 19)])
def test_segments_of_tiny_images_match_the_original_program(shape):
    # images smaller than min_size, rows narrower than it, narrower than the 5-tap Gaussian
    rng = np.random.default_rng(sum(shape))
    for channels in (3, 1):
        batch = (rng.integers(0, 2, size=(7, *shape, channels)) * 255).astype(np.uint8)
        assert segment_counts(batch, workers=1).tolist() == [original_segments(im) for im in batch]


def test_segments_of_natural_patches_match_the_original_and_mostly_skimage():
    batch = natural_patches(48)
    got = segment_counts(batch, workers=1)
    assert got.tolist() == [original_segments(image) for image in batch]
    # scikit-image's version: reflected borders, float64, w < threshold; mostly the same counts
    plain = [felzenszwalb(image, scale=500, sigma=0.5, min_size=20).max() + 1 for image in batch]
    assert np.mean(got == plain) >= 0.95
    assert got.min() >= 1 and got.max() > 1


def test_dct_matches_seed_loop(colour_batch, grey_batch):
    for batch in (colour_batch, grey_batch):
        n = batch.shape[1] * batch.shape[2]
        ks = np.array([seed_dct_k(image) for image in batch])
        np.testing.assert_allclose(dct_percentages(batch, workers=1), 100 * ks / n)
        np.testing.assert_allclose(dct_percentages(batch, workers=1, seed_off_by_one=True), 100 * (ks - 1) / n)
        assert dct_percentage(batch[0], threshold=0.99) == pytest.approx(100 * seed_dct_k(batch[0], 0.99) / n)


def test_edges_match_skimage_sobel(colour_batch, grey_batch):
    for batch in (colour_batch, grey_batch):
        np.testing.assert_allclose(
            edge_strengths(batch, workers=1), [skimage_edges(im) for im in batch], rtol=1e-12, atol=1e-9
        )


def test_per_image_functions_agree_with_batches(colour_batch):
    image = colour_batch[4]
    stats = compute_statistics(colour_batch[4:5], workers=1)
    assert segment_count(image) == stats["segments"][0]
    assert local_entropy(image) == stats["entropy"][0]
    assert dct_percentage(image) == stats["dct"][0]
    assert edge_strength(image) == stats["edges"][0]
    assert isinstance(segment_count(image), int)
    for value in (local_entropy(image), dct_percentage(image), edge_strength(image)):
        assert isinstance(value, float)


def test_grey_layouts_and_float_input_agree():
    rng = np.random.default_rng(7)
    grey = rng.integers(0, 256, size=(14, 18), dtype=np.uint8)
    for function in (segment_count, local_entropy, dct_percentage, edge_strength):
        assert function(grey) == function(grey[..., None])
        # floats in [0, 1] are quantised with round(255 x): the uint8 twin gives the same number
        assert function(grey / 255.0) == function(grey)
    colour = rng.integers(0, 256, size=(14, 18, 3), dtype=np.uint8)
    assert local_entropy(colour.astype(np.float32) / 255) == local_entropy(colour)
    # other integer types within 0-255 are accepted
    assert edge_strength(colour.astype(np.int64)) == edge_strength(colour)


# --------------------------------------------------------------------------------------------
# batches, names, the process pool
# --------------------------------------------------------------------------------------------


def test_compute_statistics_names_and_shapes(colour_batch):
    assert list(STATISTICS) == ["segments", "entropy", "dct", "edges"]
    stats = compute_statistics(colour_batch, workers=1)
    assert list(stats) == list(STATISTICS)
    for name, values in stats.items():
        assert values.shape == (len(colour_batch),) and values.dtype == np.float64
        np.testing.assert_array_equal(values, STATISTICS[name](colour_batch, workers=1))
    assert list(compute_statistics(colour_batch, names=["edges", "dct"], workers=1)) == ["edges", "dct"]
    assert list(compute_statistics(colour_batch, names="entropy", workers=1)) == ["entropy"]
    with pytest.raises(ValueError, match="unknown statistic 'edge'"):
        compute_statistics(colour_batch, names=["edge"])


def test_process_pool_gives_the_same_numbers(colour_batch, monkeypatch):
    monkeypatch.setattr(images, "_POOL_MIN_SECONDS", 0.0)  # use the pool even for this small batch
    serial = compute_statistics(colour_batch, workers=1)
    pooled = compute_statistics(colour_batch, workers=2)
    for name in serial:
        np.testing.assert_array_equal(pooled[name], serial[name])
    np.testing.assert_array_equal(local_entropies(colour_batch, workers=2), serial["entropy"])


# --------------------------------------------------------------------------------------------
# bad input: a clear error or a documented result
# --------------------------------------------------------------------------------------------


def test_image_smaller_than_window():
    small = np.zeros((8, 8, 3), np.uint8)
    with pytest.raises(ValueError, match=r"at least 10x10 pixels .* got 8x8; pass window=8"):
        local_entropy(small)
    with pytest.raises(ValueError, match="window=8"):
        local_entropies(np.zeros((5, 8, 12, 1), np.uint8))
    with pytest.raises(ValueError, match="window=8"):
        compute_statistics(np.zeros((5, 8, 12, 1), np.uint8), workers=1)
    assert local_entropy(small, window=8) == 0.0
    # the other statistics work on small images
    assert compute_statistics(np.zeros((2, 8, 8, 3), np.uint8), names=["segments", "dct", "edges"], workers=1)
    assert segment_count(np.zeros((1, 1), np.uint8)) == 1
    assert dct_percentage(np.full((1, 1), 9, np.uint8)) == 100.0
    with pytest.raises(ValueError, match="positive integer"):
        local_entropy(small, window=0)


@pytest.mark.parametrize("bad", [np.full((10, 10), 1.5), np.full((10, 10, 3), -0.1), np.full((12, 12), 255.0)])
def test_float_image_outside_unit_range(bad):
    with pytest.raises(ValueError, match=r"must lie in \[0, 1\].*divide 0-255 data by 255"):
        edge_strength(bad)


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_nan_and_infinity(value):
    image = np.full((12, 12, 3), 0.5)
    image[3, 4, 1] = value
    for function in (segment_count, local_entropy, dct_percentage, edge_strength):
        with pytest.raises(ValueError, match="NaN or infinite"):
            function(image)
    with pytest.raises(ValueError, match="NaN or infinite"):
        compute_statistics(image[None])


def test_empty_batch_gives_empty_arrays():
    for empty in (np.zeros((0, 32, 32, 3), np.uint8), np.zeros((0,)), []):
        for function in STATISTICS.values():
            out = function(empty)
            assert out.shape == (0,) and out.dtype == np.float64
        stats = compute_statistics(empty)
        assert list(stats) == list(STATISTICS) and all(v.shape == (0,) for v in stats.values())


@pytest.mark.parametrize(
    "bad, message",
    [
        (np.zeros((4, 16, 16), np.uint8), r"\[M, H, W, C\].*images\[\.\.\., None\]"),
        (np.zeros((4, 16, 16, 4), np.uint8), "alpha"),
        (np.zeros((4, 0, 16, 3), np.uint8), "no pixels"),
        (np.zeros((2, 16, 16, 3), bool), "boolean"),
        (np.full((2, 16, 16, 3), 300), "outside 0-255"),
        (np.zeros((2, 16, 16, 3), complex), "dtype complex"),
        ([np.zeros((16, 16, 3)), np.zeros((8, 8, 3))], "same shape"),
    ],
)
def test_bad_batches(bad, message):
    with pytest.raises(ValueError, match=message):
        segment_counts(bad)


@pytest.mark.parametrize(
    "bad, message",
    [
        (np.zeros((16,), np.uint8), "H x W"),
        (np.zeros((16, 16, 4), np.uint8), "alpha"),
        (np.zeros((2, 16, 16, 3), np.uint8), "batch functions"),
        (np.zeros((0, 5), np.uint8), "no pixels"),
    ],
)
def test_bad_single_images(bad, message):
    with pytest.raises(ValueError, match=message):
        local_entropy(bad)


def test_bad_parameters(colour_batch):
    with pytest.raises(ValueError, match="threshold"):
        dct_percentage(colour_batch[0], threshold=1.5)
    with pytest.raises(ValueError, match="threshold"):
        dct_percentages(colour_batch, threshold=0)
    with pytest.raises(ValueError, match="workers"):
        edge_strengths(colour_batch, workers=0)
    with pytest.raises(ValueError, match="workers"):
        compute_statistics(colour_batch, workers=2.5)
