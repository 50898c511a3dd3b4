"""Generated datasets: Hacohen et al.'s Gabor and Gaussian sets and the procedural ``shapes``.

Each test checks a property that a wrong generator would break: class layouts that overlap,
factor columns that do not describe their images, output that changes between calls or with the
requested size.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from curriculum.data import shapes as S
from curriculum.data.datasets import Split, load_dataset
from curriculum.data.synthetic import GABOR_JITTER_DEG, gabor_patches, gabor_specs, orientation_distance
from scoring.errors import UserError
from stats import spearman

# ---------------------------------------------------------------------------------------------
# gabor


def test_no_two_gabor_classes_can_draw_the_same_channel_parity_and_orientation():
    specs = gabor_specs()
    assert len(specs) == 12 and len({name for name, *_ in specs}) == 12
    assert len({(c, a, odd) for _, c, a, odd in specs}) == 12
    for (_, c1, a1, odd1), (_, c2, a2, odd2) in itertools.combinations(specs, 2):
        if (c1, odd1) == (c2, odd2):
            # the +-jitter ranges around the two bases are disjoint (modulo 180 degrees)
            assert orientation_distance(a1, a2) > 2 * GABOR_JITTER_DEG
    # the paper's three parameters all vary: every base 3 times, channel 4, parity 6
    assert sorted(np.unique([a for *_, a, _ in specs], return_counts=True)[1]) == [3] * 4
    assert sorted(np.unique([c for _, c, *_ in specs], return_counts=True)[1]) == [4] * 3
    assert sum(odd for *_, odd in specs) == 6


def test_gabor_images_of_different_classes_never_share_channel_parity_and_orientation():
    d = load_dataset("gabor")
    specs = gabor_specs()
    labels = np.concatenate([d.train.labels, d.test.labels])
    theta = np.concatenate([d.train.factors["orientation"], d.test.factors["orientation"]])
    for k, (_, c, a, odd) in enumerate(specs):
        mine = labels == k
        assert (orientation_distance(theta[mine], a) <= GABOR_JITTER_DEG + 1e-9).all()
        for j, (_, c2, a2, odd2) in enumerate(specs):
            if j != k and (c2, odd2) == (c, odd):
                gap = orientation_distance(theta[mine][:, None], theta[labels == j][None, :])
                assert gap.min() > 29.0  # 30 degrees between the ranges, up to the draws


def test_gabor_overlap_is_the_literal_layout_with_a_quarter_ambiguous():
    d = load_dataset("gabor-overlap")
    specs = gabor_specs(overlap=True)
    assert len({(c, a) for _, c, a, _ in specs}) == 12  # every (channel, base) pair once
    amb = np.concatenate([d.train.factors["in_other_range"], d.test.factors["in_other_range"]])
    assert 0.2 < amb.mean() < 0.32  # 15 of the 60 degrees of every range, up to the draws
    # recompute: within +-30 degrees of another class's base of the same channel and parity
    labels, theta = d.train.labels, d.train.factors["orientation"]
    for i in range(0, len(labels), 37):
        _, c, a, odd = specs[labels[i]]
        near = any(
            orientation_distance(theta[i], a2) <= GABOR_JITTER_DEG
            for _, c2, a2, odd2 in specs
            if (c2, odd2) == (c, odd) and a2 != a
        )
        assert bool(d.train.factors["in_other_range"][i]) == near


@pytest.mark.parametrize("name", ["gabor", "gabor-overlap"])
def test_gabor_factor_columns_regenerate_the_images_exactly(name):
    d = load_dataset(name)
    specs = gabor_specs(overlap=name == "gabor-overlap")
    for split in (d.train, d.test):
        f = split.factors
        assert np.allclose(f["wavelength"], 2 * f["sigma"])
        assert ((f["sigma"] >= 3) & (f["sigma"] <= 7)).all()
        base = np.array([specs[y][2] for y in split.labels])
        assert np.allclose(f["orientation"], base + f["offset"])
        for k, (_, channel, _, odd) in enumerate(specs):
            idx = np.flatnonzero(split.labels == k)
            g = gabor_patches(32, f["orientation"][idx], f["sigma"][idx], f["wavelength"][idx], odd)
            assert (np.rint(128 + 127 * g).astype(np.uint8) == split.images[idx, :, :, channel]).all()


def test_gabor_orientation_factor_is_the_orientation_seen_in_the_image():
    # independent of the generator's own function: the structure tensor of an even patch is
    # aligned with its wave vector (degrees counter-clockwise, y up)
    d = load_dataset("gabor")
    specs = gabor_specs()
    errors = []
    for i in range(0, 200):
        _, c, _, odd = specs[d.train.labels[i]]
        if odd:
            continue
        g = d.train.images[i, :, :, c].astype(np.float64)
        gy, gx = np.gradient(g)
        gy = -gy  # rows point down
        est = 0.5 * np.degrees(np.arctan2(2 * (gx * gy).sum(), (gx * gx - gy * gy).sum()))
        errors.append(orientation_distance(est, d.train.factors["orientation"][i]))
    assert np.median(errors) < 3 and np.max(errors) < 10


def test_generated_sets_are_deterministic():
    for name in ("gabor", "gabor-overlap", "shapes:300/50"):
        a, b = load_dataset(name), load_dataset(name)
        assert a.fingerprint == b.fingerprint
        for s in ("train", "test"):
            fa, fb = a.split(s).factors, b.split(s).factors
            assert fa.keys() == fb.keys() and all((fa[k] == fb[k]).all() for k in fa)


# ---------------------------------------------------------------------------------------------
# gaussian


def test_gaussian_margin_is_the_bayes_margin_of_the_stored_pixels():
    d = load_dataset("gaussian")
    for split in (d.train, d.test):
        x = (split.images.reshape(len(split), -1).astype(np.float64) - 128) / 32
        z = (x.sum(1) - 0.05 * 3072) / np.sqrt(3072)
        assert np.allclose(split.factors["margin"], np.where(split.labels == 1, z, -z))
    m = d.train.factors["margin"]
    assert m.mean() == pytest.approx(0.05 * np.sqrt(3072), abs=0.06)  # 2.77
    assert m.std() == pytest.approx(1.0, abs=0.05)
    assert (m < 0).mean() < 0.01  # the Bayes classifier errs on ~0.3 %


# ---------------------------------------------------------------------------------------------
# shapes: names and sizes


@pytest.mark.parametrize(
    "name,n,t,seed,canonical",
    [
        ("shapes", 5000, 1000, 0, "shapes"),
        ("shapes:5000/1000", 5000, 1000, 0, "shapes"),
        ("shapes:200", 200, 40, 0, "shapes:200"),
        ("shapes:200/40", 200, 40, 0, "shapes:200"),
        ("shapes:200/30", 200, 30, 0, "shapes:200/30"),
        ("shapes-seed2", 5000, 1000, 2, "shapes-seed2"),
        ("Shapes:200/30-seed1", 200, 30, 1, "shapes:200/30-seed1"),
    ],
)
def test_shapes_names(name, n, t, seed, canonical):
    assert S.parse_shapes_name(name) == (n, t, seed)
    assert S.shapes_name(n, t, seed) == canonical
    assert S.parse_shapes_name(canonical) == (n, t, seed)


@pytest.mark.parametrize(
    "name", ["shapes:", "shapes:abc", "shapes:9", "shapes:30/5", "shapes:2000001", "shapes:100/20-seed", "shapesx"]
)
def test_bad_shapes_names_are_user_errors(name):
    with pytest.raises(UserError) as err:
        load_dataset(name)
    assert "shapes" in str(err.value)


def test_shapes_loads_with_sizes_classes_and_factors():
    d = load_dataset("shapes:300/50-seed1+noise0.1")
    assert d.name == "shapes:300/50-seed1+noise0.1"
    assert d.train.images.shape == (300, 32, 32, 3) and d.test.images.shape == (50, 32, 32, 3)
    assert d.classes == S.CLASSES and len(d.classes) == 10
    assert (np.bincount(d.clean_train_labels, minlength=10) == 30).all()  # balanced block
    for split in (d.train, d.test):
        assert set(split.factors) == set(S.FACTORS)
        f = split.factors
        assert ((f["size"] >= 5) & (f["size"] <= 13)).all()
        assert ((f["contrast"] >= 40) & (f["contrast"] <= 128)).all()
        assert ((f["clutter"] >= 0) & (f["clutter"] <= 32)).all()
        assert ((f["noise"] >= 0) & (f["noise"] <= 24)).all()
        assert ((f["occlusion"] >= 0) & (f["occlusion"] < 1)).all()
        assert ((f["x"] >= f["size"]) & (f["x"] <= 31 - f["size"])).all()
        assert (np.abs(np.stack([f["x"], f["y"]]) - 15.5) <= S.JITTER).all()
    assert load_dataset("shapes:300/50-seed1+size16").train.factors.keys() == set(S.FACTORS)


def test_shapes_prefix_and_test_set_do_not_depend_on_the_size():
    small, large = load_dataset("shapes:200/50"), load_dataset("shapes:1500/60")
    assert (large.train.images[:200] == small.train.images).all()  # across a block boundary
    assert (large.test.images[:50] == small.test.images).all()
    assert (large.train.factors["size"][:200] == small.train.factors["size"]).all()
    other = load_dataset("shapes:200/50-seed1")
    assert not (other.train.images == small.train.images).all()


def test_shapes_factors_are_independent():
    d = load_dataset("shapes:2000/10")
    f = d.train.factors
    for a, b in itertools.combinations(["size", "contrast", "clutter", "noise", "x", "y"], 2):
        assert abs(spearman(f[a], f[b])[0]) < 0.1, (a, b)
    for a in ("size", "contrast", "clutter", "noise"):
        assert abs(spearman(f[a], d.train.labels)[0]) < 0.1


# ---------------------------------------------------------------------------------------------
# shapes: the factors describe the images


def _clean_block(n=40, seed=3):
    p = S.draw_parameters(np.random.default_rng(seed), n)
    p["clutter"][:] = 0
    p["noise"][:] = 0
    return p


def test_shapes_contrast_and_size_are_what_the_image_shows():
    p = _clean_block()
    p["depth"][:] = 0
    images, f, shape, occ = S.render(p)
    assert (occ == 0).all() and (f["occlusion"] == 0).all()
    for i in range(len(images)):
        img = images[i].astype(np.float64)
        inside, outside = shape[i] == 1, shape[i] == 0
        fg, bg = img[inside].mean(0), img[outside].mean(0)
        # up to half a grey level of rounding per channel on each side
        assert np.linalg.norm(fg - bg) == pytest.approx(f["contrast"][i], abs=np.sqrt(3))
        # size is half the width of the bounding box (every class reaches 0.8 of it or more)
        ys, xs = np.nonzero(shape[i] > 0.5)
        reach = np.maximum(np.abs(xs - p["x"][i]), np.abs(ys - p["y"][i])).max()
        assert 0.75 * f["size"][i] - 0.5 <= reach <= f["size"][i] + 0.5


def test_shapes_occlusion_is_the_hidden_fraction_of_the_shape():
    p = _clean_block(seed=4)
    p["contrast"][:] = 128  # so that rounding to grey levels hardly matters
    images, f, _, _ = S.render(p)
    q = dict(p, depth=np.zeros_like(p["depth"]))
    full, _, _, _ = S.render(q)
    bg = np.rint(p["background"])[:, None, None, :]  # what a background pixel holds
    seen = np.abs(images - bg).sum(-1).reshape(len(images), -1).sum(1)
    whole = np.abs(full - bg).sum(-1).reshape(len(images), -1).sum(1)
    measured = 1 - seen / whole
    assert np.abs(measured - f["occlusion"]).max() < 0.02
    assert f["occlusion"].max() > 0.3


def test_shapes_noise_and_clutter_are_what_the_image_shows():
    p = S.draw_parameters(np.random.default_rng(5), 200)
    p["background"][:] = 128.0  # away from the clipping range
    noisy, f, shape, _ = S.render(p)
    quiet, _, _, _ = S.render(dict(p, noise=np.zeros_like(p["noise"])))
    resid = (noisy.astype(np.float64) - quiet).reshape(200, -1).std(1)
    # 3072 draws: a relative standard error of 1.3 %; rounding adds ~0.3 grey levels
    assert (np.abs(resid - f["noise"]) < 0.05 * f["noise"] + 0.6).all()
    flat, _, _, _ = S.render(dict(p, noise=np.zeros_like(p["noise"])))
    bg_std = np.array([flat[i][shape[i] == 0].std(0).mean() for i in range(200)])
    assert spearman(bg_std, f["clutter"])[0] > 0.95


def test_no_two_shape_classes_look_alike():
    p = _clean_block(n=10)
    p["label"] = np.arange(10)
    p["size"][:] = 10.0
    p["x"][:] = p["y"][:] = 15.5
    _, _, shape, _ = S.render(p)
    for a, b in itertools.combinations(range(10), 2):
        inter = np.minimum(shape[a], shape[b]).sum()
        union = np.maximum(shape[a], shape[b]).sum()
        assert inter / union < 0.8, (S.CLASSES[a], S.CLASSES[b])


def test_split_factors_must_align_with_the_labels():
    x, y = np.zeros((4, 2, 2, 3), np.uint8), np.zeros(4, np.int64)
    assert Split(x, y, factors={"a": np.arange(4.0)}).factors["a"].shape == (4,)
    with pytest.raises(ValueError):
        Split(x, y, factors={"a": np.arange(3.0)})
    with pytest.raises(ValueError):
        Split(x, y, factors={"a": np.array(["x"] * 4)})
