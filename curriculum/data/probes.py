"""Out-of-sample probes (Hacohen et al. 2020, Fig. 5): do members agree on images unlike their train set?

Probe images have no labels of the trained classes, so only consensus applies: the fraction of
members that give an image its most common label. The null keeps each member's own label
frequencies on the probe set and breaks only the pairing of labels with images (each member's
predictions shuffled over the images independently): consensus above it is agreement on which
image gets which label, not a shared favourite class. The paper finds consensus above the null
for every probe, and higher the closer the probe is to the train distribution.

``--probe NAME``: ``noise`` (uniform random pixels) or any dataset name, whose test split is
resized to the trained images and converted to their channel count.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd

from curriculum.data.datasets import Dataset, Split, load_dataset
from curriculum.data.sources import resize_images
from scoring import agreement
from scoring.files import atomic_write_bytes
from scoring.records import member_dir
from stats.images import GREY_WEIGHTS

NOISE = "noise"
NOISE_IMAGES = 1000
PROBE_FILE = "probe.pred.npy"


def probe_images(name: str, shape: tuple[int, int, int]) -> np.ndarray:
    """uint8 [M, H, W, C] probe images in the trained dataset's ``shape``."""
    h, w, c = shape
    if name == NOISE:
        return np.random.default_rng(0).integers(0, 256, size=(NOISE_IMAGES, h, w, c), dtype=np.uint8)
    images = resize_images(load_dataset(name).test.images, (h, w))
    if images.shape[3] == c:
        return images
    if c == 1:  # RGB -> grey with the image statistics' weights, rounded to 8 bits
        return np.round(images.astype(np.float64) @ np.array(GREY_WEIGHTS))[..., None].clip(0, 255).astype(np.uint8)
    return np.repeat(images, 3, axis=3)


def probe_predictions(members, data, images: np.ndarray) -> np.ndarray:
    """Predicted labels (int16 [K, M]) of each of ``members`` (a :class:`curriculum.training.members.Members`
    group) on the probe images, normalised as their training data (``data``: the run's
    :class:`curriculum.training.engine.DeviceData`)."""
    from curriculum.training.engine import DeviceData, predict  # torch only where a model runs

    split = Split(images, np.zeros(len(images), np.int64))
    probe = DeviceData(Dataset("probe", split, split, (), ""), data.device, data.policy)
    probe.mean, probe.std = data.mean, data.std  # the training data's normalisation, not the probe's
    return predict(members, probe, "test")["pred"].cpu().numpy().astype(np.int16)


def save_probe(run_dir: Path, member: int, pred: np.ndarray) -> None:
    buffer = io.BytesIO()
    np.save(buffer, pred)
    atomic_write_bytes(member_dir(run_dir, member) / PROBE_FILE, buffer.getvalue())


def load_probe(run_dir: Path, first: int = 0, members: int = 1) -> np.ndarray | None:
    """[N, M] probe predictions of members ``first`` .. ``first + members - 1``, or None unless all have them."""
    paths = [member_dir(run_dir, m) / PROBE_FILE for m in range(first, first + members)]
    if not all(p.exists() for p in paths):
        return None
    return np.stack([np.load(p) for p in paths])


def shuffled_consensus(pred: np.ndarray, seed: int = 0) -> np.ndarray:
    """Consensus [M] after shuffling each member's predictions over the images independently."""
    rng = np.random.default_rng(seed)
    shuffled = np.stack([rng.permutation(row) for row in pred])
    return agreement.consensus(shuffled[:, None, :])[0]


def probe_table(sets: dict[str, np.ndarray]) -> pd.DataFrame:
    """Per image set (``{name: pred [N, M]}``): mean consensus and the fraction of images on which
    every member agrees, observed and under the shuffled null."""
    rows = []
    for name, pred in sets.items():
        observed, null = agreement.consensus(pred[:, None, :])[0], shuffled_consensus(pred)
        rows.append(
            {
                "images": name,
                "count": pred.shape[1],
                "consensus": observed.mean(),
                "consensus_null": null.mean(),
                "unanimous": np.mean(observed == 1),
                "unanimous_null": np.mean(null == 1),
            }
        )
    return pd.DataFrame(rows)
