"""Stable example identity: an ``id`` from the source and a hash of the image bytes.

Positions (``index`` in the toolkit's own split) change when a dataset is re-split or reordered;
these two do not, so scores can be matched to a user's copy of the data:

* ``id`` (a string): the source's own identity. digits: the index in
  ``sklearn.datasets.load_digits()``; an image folder: the file path relative to the folder;
  Hugging Face: ``<split>/<row>`` (the split name and row index there), or the value of an
  ``id`` column when the dataset has one; torchvision: ``<split>/<index>``; the synthetic sets:
  the generator's draw index (``<split>/<draw>`` for ``gaussian``); data built in memory: the
  position in its split.
* ``content_hash``: blake2b with an 8-byte digest (16 hex digits) of the image's uint8 pixel
  bytes in C order (H, W, C; a grey image [H, W] and [H, W, 1] hash alike). It identifies the
  decoded pixels, so a resized or re-encoded copy hashes differently, and duplicate images share
  one hash.

:func:`align` matches a scores table to a user's examples by either one.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import PurePath
from typing import TYPE_CHECKING, Any

import numpy as np

from scoring.errors import UserError

if (
    TYPE_CHECKING
):  # annotations only: curriculum.data.datasets imports this module, and `curriculum datasets` needs no pandas
    import pandas as pd

HASH_BYTES = 8


def content_hash(image: Any) -> str:
    """The ``content_hash`` of one uint8 image (array-like: numpy, torch on the CPU, PIL)."""
    array = np.asarray(image)
    if array.dtype != np.uint8:
        raise UserError(
            f"Content hashes are taken of uint8 pixels, got {array.dtype}; pass the images "
            "as uint8 arrays (0..255) as the toolkit stores them."
        )
    return hashlib.blake2b(np.ascontiguousarray(array).tobytes(), digest_size=HASH_BYTES).hexdigest()


def content_hashes(images: Any) -> np.ndarray:
    """One ``content_hash`` per image of an [M, H, W(, C)] uint8 array (or a sequence of images)."""
    return np.array([content_hash(image) for image in images], dtype=object)


def as_ids(values: Any) -> np.ndarray:
    """Ids as an object array of strings (integers become their decimal text; bytes are decoded)."""
    flat = np.asarray(values, dtype=object).reshape(-1)
    return np.array([v.decode() if isinstance(v, bytes) else str(v) for v in flat], dtype=object)


def native_ids(ids: Any) -> np.ndarray:
    """Ids as the peers' files hold them: an int64 array when every id is a plain decimal integer
    (digits' ``load_digits`` indices, a dataset's own integer ids), else strings."""
    text = as_ids(ids)
    if all(key.isdigit() and (key == "0" or not key.startswith("0")) for key in text):
        return text.astype(np.int64)
    return text.astype(str)


def source_positions(ids: Any) -> np.ndarray | None:
    """Each example's position in its source's original order, read from its id: ``n`` (digits:
    the ``load_digits`` index) or ``<split>/<n>`` (Hugging Face, torchvision); None when some id
    is neither (a file path, a dataset's own id)."""
    positions = []
    for key in as_ids(ids):
        tail = key.rsplit("/", 1)[-1] if key.count("/") <= 1 else ""
        if not tail.isdigit():
            return None
        positions.append(int(tail))
    return np.array(positions, dtype=np.int64)


@dataclass
class Alignment:
    """Scores matched to a user's examples: ``table`` has one row per user example, in the user's
    order (score columns NaN where nothing matched); ``matched`` says which rows matched."""

    table: pd.DataFrame
    matched: np.ndarray
    by: str
    ambiguous: int = 0

    @property
    def count(self) -> int:
        return int(self.matched.sum())

    def column(self, name: str) -> np.ndarray:
        return self.table[name].to_numpy()

    def __str__(self) -> str:
        text = f"{self.count} of {len(self.matched)} examples matched by {self.by}"
        if self.ambiguous:
            text += f" ({self.ambiguous} matched several scored examples; the first in split/index order was taken)"
        return text


def _path_key(value: str, known: dict[str, int]) -> int | None:
    """The row of the longest trailing part of ``value`` that is a known id (``/data/cat/1.png``
    matches the id ``cat/1.png``), or None."""
    if value in known:
        return known[value]
    parts = PurePath(value).parts
    for start in range(1, len(parts)):
        row = known.get(PurePath(*parts[start:]).as_posix())
        if row is not None:
            return row
    return None


def _first_rows(keys: np.ndarray) -> tuple[dict[str, int], set[str]]:
    """Key -> first row holding it, and the keys that several rows hold."""
    first: dict[str, int] = {}
    repeated: set[str] = set()
    for row, key in enumerate(keys):
        if key is None or (isinstance(key, float) and np.isnan(key)):
            continue
        if key in first:
            repeated.add(key)
        else:
            first[key] = row
    return first, repeated


def _target_keys(target: Any, by: str | None) -> tuple[np.ndarray, str]:
    """(keys, by) for what a user aligns to: a Hugging Face Dataset, paths or ids, or images."""
    if hasattr(target, "column_names") and hasattr(target, "features"):  # a datasets.Dataset
        if by in (None, "id"):
            if "id" in target.column_names:
                return as_ids(target["id"]), "id"
            split = getattr(target, "split", None)
            if split is None:
                raise UserError(
                    "This Hugging Face Dataset has neither an 'id' column nor a split name to "
                    "build '<split>/<row>' ids from; add the ids the scores hold as a column "
                    "(dataset.add_column('id', ids)), or load one named split "
                    "(load_dataset(...)['train']), "
                    "or match its images by content (curriculum export --match content_hash, "
                    "Scores.align(dataset, by='content_hash'))."
                )
            return np.array([f"{split}/{row}" for row in range(len(target))], dtype=object), "id"
        image_column = next(
            (name for name, feature in target.features.items() if type(feature).__name__ == "Image"), None
        )
        if image_column is None:
            raise UserError(
                f"This Hugging Face Dataset has no image column (it has {target.column_names}); align it by='id'."
            )
        return content_hashes(np.asarray(image) for image in target[image_column]), "content_hash"
    array = np.asarray(target, dtype=object) if isinstance(target, (list, tuple)) else np.asarray(target)
    if array.ndim >= 2 and array.dtype == np.uint8 or by == "content_hash":
        return content_hashes(target), "content_hash"
    if array.ndim != 1:
        raise UserError(
            f"Cannot align to an array of shape {array.shape} and dtype {array.dtype}; pass ids or paths "
            "(one per example) or uint8 images [M, H, W(, C)]."
        )
    return as_ids([value.as_posix() if isinstance(value, PurePath) else value for value in array]), "id"


def align(table: pd.DataFrame, target: Any, by: str | None = None, split: str | None = None) -> Alignment:
    """Rows of ``table`` (a scores table with ``id`` and ``content_hash`` columns) for each example
    of ``target``, matched by ``id`` (paths also match an id that is their trailing part) or by
    ``content_hash``; ``by`` defaults to ``content_hash`` for images and ``id`` otherwise.
    ``split`` restricts the search to one split of the table."""
    if by not in (None, "id", "content_hash"):
        raise UserError(f"Unknown alignment key '{by}'; use by='id' or by='content_hash'.")
    if split is not None:
        table = table[table["split"] == split]
        if table.empty:
            raise UserError(f"The scores hold no '{split}' split; pass split=None to search every split.")
    table = table.sort_values(["split", "index"], kind="stable").reset_index(drop=True)
    keys, by = _target_keys(target, by)
    if by not in table.columns or table[by].isna().all():
        raise UserError(
            f"These scores have no '{by}' column values (they were written without them); "
            f"align by the other key or re-run `curriculum score`."
        )
    known, repeated = _first_rows(table[by].to_numpy())
    values = table[by].to_numpy()
    known, repeated = _first_rows(values)
    rows = [_path_key(key, known) if by == "id" else known.get(key) for key in keys]
    positions = np.array([-1 if row is None else row for row in rows], dtype=np.int64)
    matched = positions >= 0
    out = table.reindex(positions).reset_index(drop=True)  # -1 is no row: all NaN
    ambiguous = sum(1 for row in positions[matched] if values[row] in repeated)
    return Alignment(out, matched, by, ambiguous)
