"""Per-example scores in the field's formats, out (``curriculum export``) and back in.

Every import says which direction means easier: from the file's metadata (our parquet and CSV
sidecar), from the format's own definition (C-score: higher; forgetting counts: lower; cleanlab
self-confidence: higher; data-map confidence and correctness: higher), or from an explicit
``direction``; anything else is refused rather than guessed.

Formats (``FORMATS``):

``parquet``  the scores table with its metadata (directions, dataset, fingerprint, provenance).
``csv``      the table, plus ``<file>.json`` beside it with the same metadata; without that
             sidecar a CSV's direction must be given.
``cscore``   ``.npz`` with ``labels`` and ``scores`` (Jiang et al.'s published C-scores), and
             ``ids``; one split in index order; only a score whose higher values are easier.
``forgetting`` a pickle ``{"indices": ..., "forgetting counts": ...}`` as Toneva et al.'s
             ``order_examples_by_forgetting.py`` writes it: train indices from fewest to most
             forgetting events (ties by index). The counts are our ensemble means (floats);
             never-learned examples count the number of trained checkpoints.
``cartography`` Swayamdipta et al.'s data-map files: per member
             ``member_XXX/training_dynamics/dynamics_epoch_{e}.jsonl`` (one line per example:
             ``guid`` = id, ``logits_epoch_{e}``, ``gold``) for the checkpoints after
             initialisation, and ``td_metrics.jsonl`` (guid, index, confidence, variability,
             correctness, forgetfulness, threshold_closeness) from the ensemble's scores. The run
             must hold probabilities (``--record-probs``); their logs serve as logits (softmax
             gives the probabilities back; probabilities below 2^-24 are floored there).
``cleanlab`` ``.npz`` with ``pred_probs`` [N, K] (the members' mean probabilities at the last
             checkpoint, renormalised), ``labels`` and ``ids``, for ``cleanlab.filter.
             find_label_issues(labels, pred_probs)``. cleanlab needs out-of-sample
             probabilities: the test split's are (the default); the train split's are in-sample
             (the members trained on those examples), so overconfident, and cleanlab will miss
             label issues there; use cross-validated members for train-set issues.
``hf``       a column of a Hugging Face ``datasets`` dataset, aligned by id (:func:`add_hf_column`).
"""

from __future__ import annotations

import io
import json
import pickle
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from scoring import dynamics
from scoring.errors import UserError
from scoring.files import atomic_write_bytes
from scoring.ids import as_ids
from scoring.ordering import DIRECTIONS
from scoring.records import open_probs, read_run_info
from scoring.scores import SCORE_DIRECTIONS, Scores

FORMATS = ("parquet", "csv", "cscore", "forgetting", "cartography", "cleanlab", "hf")
SMALLEST_PROB = 2.0 ** -24  # the smallest positive float16
CARTOGRAPHY_DIRECTIONS = {"confidence": "higher", "correctness": "higher", "variability": None, "forgetfulness": "lower",
                          "threshold_closeness": None}


# ---------------------------------------------------------------------------------------------
# out

def provenance(scores: Scores, run_dir: Path | None) -> dict:
    """Metadata an exported file carries: the scores' own plus where they came from."""
    return {**scores.meta, "exported_from": str(run_dir) if run_dir else None}


def write_table(scores: Scores, path: Path, run_dir: Path | None = None) -> list[Path]:
    """``.parquet`` (metadata inside) or ``.csv`` (metadata in ``<path>.json``)."""
    exported = Scores(scores.table, provenance(scores, run_dir))
    if path.suffix == ".parquet":
        return [exported.save(path)]
    atomic_write_bytes(path, exported.table.to_csv(index=False).encode())
    sidecar = sidecar_path(path)
    atomic_write_bytes(sidecar, (json.dumps(exported.meta, indent=2) + "\n").encode())
    return [path, sidecar]


def sidecar_path(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def write_cscore(scores: Scores, path: Path, by: str = "accessibility", split: str = "train") -> list[Path]:
    if scores.directions.get(by) != "higher":
        raise UserError(f"A C-score file means higher = easier, but '{by}' is {scores.directions.get(by) or 'without a direction'}; "
                        "export a higher-is-easier score such as accessibility or confidence.")
    rows = scores.split(split)
    return [_save_npz(path, labels=rows["label"].to_numpy(np.int64), scores=rows[by].to_numpy(np.float64), ids=rows["id"].to_numpy(str))]


def write_forgetting(scores: Scores, path: Path, split: str = "train") -> list[Path]:
    rows = scores.split(split)
    counts = rows["forgetting"].to_numpy(np.float64)
    order = np.argsort(counts, kind="stable")
    payload = pickle.dumps({"indices": rows["index"].to_numpy(np.int64)[order], "forgetting counts": counts[order]})
    atomic_write_bytes(path, payload)
    return [path]


def write_cartography(scores: Scores, run_dir: Path, folder: Path, split: str = "train") -> list[Path]:
    info = _run_info(run_dir)
    checkpoints = len(info["checkpoints"])
    rows = scores.split(split)
    guids, gold = rows["id"].tolist(), rows["label"].tolist()
    written = []
    for member in range(info["members"]):
        probs = open_probs(run_dir, split, member, checkpoints, len(rows))
        for epoch, e in enumerate(range(1, checkpoints)):  # after initialisation, numbered from 0 as theirs are
            logits = np.log(np.maximum(probs.read(e, e + 1)[0].astype(np.float32), SMALLEST_PROB))  # one checkpoint in memory
            lines = "".join(json.dumps({"guid": guid, f"logits_epoch_{epoch}": row, "gold": label}) + "\n"
                            for guid, row, label in zip(guids, logits.round(6).tolist(), gold))
            path = folder / f"member_{member:03d}" / "training_dynamics" / f"dynamics_epoch_{epoch}.jsonl"
            atomic_write_bytes(path, lines.encode())
            written.append(path)
    confidence = rows["confidence"].to_numpy()
    metrics = pd.DataFrame({
        "guid": guids, "index": rows["index"], "threshold_closeness": confidence * (1 - confidence), "confidence": confidence,
        "variability": rows["variability"], "correctness": rows["correctness"], "forgetfulness": rows["forgetting"],
    })
    path = folder / "td_metrics.jsonl"
    atomic_write_bytes(path, metrics.to_json(orient="records", lines=True).encode())
    return [*written, path]


def cleanlab_pred_probs(run_dir: Path, split: str = "test") -> np.ndarray:
    """The members' mean class probabilities at the last checkpoint, rows summing to 1: [M, K]."""
    info = _run_info(run_dir)
    checkpoints = len(info["checkpoints"])
    total = sum(open_probs(run_dir, split, member, checkpoints).read(checkpoints - 1, checkpoints)[0].astype(np.float64)
                for member in range(info["members"]))
    return (total / total.sum(1, keepdims=True)).astype(np.float32)


def write_cleanlab(scores: Scores, run_dir: Path, path: Path, split: str = "test") -> list[Path]:
    rows = scores.split(split)
    pred_probs = cleanlab_pred_probs(run_dir, split)
    return [_save_npz(path, pred_probs=pred_probs, labels=rows["label"].to_numpy(np.int64), ids=rows["id"].to_numpy(str))]


def add_hf_column(scores: Scores, dataset: Any, by: str = "accessibility", name: str | None = None, split: str | None = None):
    """``dataset.add_column(name or by, ...)`` with each row's score matched by id (None where no
    example matched); returns the new dataset and the :class:`~scoring.ids.Alignment`."""
    scores.column(by, scores.table["split"].iloc[0])  # an unknown column fails here with the list of names
    aligned = scores.align(dataset, by="id", split=split)
    values = [float(v) if ok else None for v, ok in zip(aligned.column(by), aligned.matched)]
    return dataset.add_column(name or by, values), aligned


def export(run: str | Path, out: str | Path, format: str, *, by: str = "accessibility", split: str | None = None,
           hf_dataset: str | Path | None = None) -> tuple[list[Path], list[str]]:
    """Write the scores of run directory ``run`` to ``out`` in ``format``; returns the files and
    notes for the user (how many rows matched, caveats). ``split`` defaults to train, and to test
    for ``cleanlab``; ``hf`` adds column ``by`` to the ``save_to_disk`` folder ``hf_dataset``
    (each of its splits) and saves the result to ``out``."""
    if format not in FORMATS:
        raise UserError(f"Unknown format '{format}'; choose one of {', '.join(FORMATS)}.")
    run_dir, out = Path(run), Path(out)
    scores = Scores.load(run_dir)
    split = split or ("test" if format == "cleanlab" else "train")
    if format in ("parquet", "csv"):
        if out.suffix != f".{format}":
            raise UserError(f"The {format} export needs a file name ending in .{format}, got {out}.")
        return write_table(scores, out, run_dir), []
    if format == "cscore":
        return write_cscore(scores, out, by, split), []
    if format == "forgetting":
        return write_forgetting(scores, out, split), []
    if format == "cartography":
        return write_cartography(scores, run_dir, out, split), []
    if format == "cleanlab":
        caveat = [] if split == "test" else [f"{split} probabilities are in-sample (the members trained on these examples): "
                                             "cleanlab expects out-of-sample ones and will under-report label issues."]
        return write_cleanlab(scores, run_dir, out, split), caveat
    if hf_dataset is None:
        raise UserError("The hf export adds a column to a Hugging Face dataset; pass its save_to_disk folder (--hf-dataset PATH).")
    import datasets

    loaded = datasets.load_from_disk(str(hf_dataset))
    parts = loaded if isinstance(loaded, datasets.DatasetDict) else {None: loaded}
    result, notes = {}, []
    for key, part in parts.items():
        result[key], aligned = add_hf_column(scores, part, by)
        notes.append(f"{key or 'dataset'}: {aligned}")
    (datasets.DatasetDict(result) if None not in result else result[None]).save_to_disk(str(out))
    return [out], notes


# ---------------------------------------------------------------------------------------------
# in

@dataclass
class ImportedScores:
    """One score per row: ``table`` has ``score`` and whichever of ``id``, ``index``, ``label``
    the file gives (``split`` too when it had several); ``direction`` is "higher" or "lower"."""

    table: pd.DataFrame
    direction: str
    column: str
    source: str


def read_scores(path: str | Path, column: str | None = None, direction: str | None = None) -> ImportedScores:
    """A score file in any format of this module (and a plain CSV/parquet with a ``score`` or
    ``column`` column). ``direction`` ("higher"/"lower" = easier) is needed when the file does not
    say it; when it does, a contradicting ``direction`` is refused."""
    path = Path(path)
    if direction not in (None, *DIRECTIONS):
        raise UserError(f"The direction is 'higher' or 'lower' (which values are easier), got {direction!r}.")
    if not path.exists():
        raise UserError(f"Score file {path} does not exist; give a .csv, .parquet, .npz, .pkl, .jsonl file or a cartography folder.")
    try:
        table, stated, column = _read_any(path, column)
    except (OSError, ValueError, KeyError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile) as err:
        if isinstance(err, UserError):
            raise
        raise UserError(f"Cannot read scores from {path} ({type(err).__name__}: {err}); check the file and its format.") from None
    if stated is not None and direction is not None and stated != direction:
        raise UserError(f"{path} says {stated} '{column}' is easier but the direction given is {direction}; drop the flag or fix the file.")
    chosen = stated or direction
    if chosen is None:
        raise UserError(f"{path} does not say whether a higher or lower '{column}' is easier; pass the direction "
                        "(--scores-direction higher|lower, or direction=).")
    return ImportedScores(table.reset_index(drop=True), chosen, column, str(path))


def _read_any(path: Path, column: str | None) -> tuple[pd.DataFrame, str | None, str]:
    """(table with a 'score' column, the direction the file states or None, the score's name)."""
    if path.is_dir():
        return _read_cartography_dynamics(path, column or "confidence")
    suffix = path.suffix.lower()
    if suffix == ".npz":
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
        if "pred_probs" in arrays and "labels" in arrays:  # cleanlab: self-confidence
            probs, labels = arrays["pred_probs"], arrays["labels"].astype(np.int64)
            table = pd.DataFrame({"label": labels, "score": probs[np.arange(len(labels)), labels]})
            return _with_ids(table, arrays), "higher", "self_confidence"
        missing = [key for key in ("labels", "scores") if key not in arrays]
        if missing:
            raise UserError(f"{path} has no {' or '.join(missing)} array (it has {', '.join(arrays) or 'none'}); a score .npz needs "
                            "'labels' and 'scores' (C-scores) or 'pred_probs' and 'labels' (cleanlab).")
        table = pd.DataFrame({"label": arrays["labels"].reshape(-1), "score": arrays["scores"].reshape(-1).astype(np.float64)})
        return _with_ids(table, arrays), "higher", "cscore"
    if suffix in (".pkl", ".pickle"):
        data = _SafeUnpickler(io.BytesIO(path.read_bytes())).load()
        if not isinstance(data, dict) or "indices" not in data or "forgetting counts" not in data:
            raise UserError(f"{path} is not a forgetting-statistics pickle (a dict with 'indices' and 'forgetting counts').")
        table = pd.DataFrame({"index": np.asarray(data["indices"], np.int64), "score": np.asarray(data["forgetting counts"], np.float64)})
        return table, "lower", "forgetting"
    if suffix == ".jsonl":
        table = pd.read_json(path, lines=True)
        column = column or "confidence"
        _need_column(table, column, path)
        table = table.rename(columns={"guid": "id"})
        return _score_table(table, column), CARTOGRAPHY_DIRECTIONS.get(column), column
    if suffix in (".csv", ".parquet"):
        if suffix == ".parquet":
            import pyarrow.parquet as pq

            meta = Scores.load(path).meta if b"curriculum" in (pq.read_schema(path).metadata or {}) else {}
            table = pd.read_parquet(path)
        else:
            sidecar = sidecar_path(path)
            meta = json.loads(sidecar.read_text()) if sidecar.exists() else {}
            table = pd.read_csv(path, dtype={"id": str})
        directions = meta.get("directions", {})
        if column is None:  # the file's own score: a plain file's 'score', else our default order
            column = "score" if "score" in table.columns or not directions else "accessibility"
        _need_column(table, column, path)
        return _score_table(table, column), directions.get(column), column
    raise UserError(f"Cannot read scores from {path}: use .csv, .parquet, .npz (C-score, cleanlab), .pkl (forgetting), "
                    ".jsonl (cartography metrics) or a folder of dynamics_epoch_*.jsonl.")


def _need_column(table: pd.DataFrame, column: str, path: Path) -> None:
    if column not in table.columns:
        raise UserError(f"{path} has no '{column}' column (it has {', '.join(map(str, table.columns))}); choose one of those.")


def _score_table(table: pd.DataFrame, column: str) -> pd.DataFrame:
    keep = [key for key in ("split", "index", "id", "label") if key in table.columns and key != column]
    out = table[keep].copy()
    out["score"] = pd.to_numeric(table[column], errors="raise").astype(np.float64)
    if "id" in out.columns:
        out["id"] = as_ids(out["id"])
    return out


def _with_ids(table: pd.DataFrame, arrays: dict[str, np.ndarray]) -> pd.DataFrame:
    if "ids" in arrays:
        table.insert(0, "id", as_ids(arrays["ids"]))
    return table


def _read_cartography_dynamics(folder: Path, column: str) -> tuple[pd.DataFrame, str | None, str]:
    """Data-map coordinates from ``dynamics_epoch_{e}.jsonl`` files (in ``folder``, its
    ``training_dynamics/``, or one such folder per member below it), averaged over members."""
    files = sorted(folder.rglob("dynamics_epoch_*.jsonl"))
    if not files:
        raise UserError(f"{folder} holds no dynamics_epoch_*.jsonl files; pass a cartography training_dynamics folder.")
    runs: dict[Path, dict[int, Path]] = {}
    for file in files:
        runs.setdefault(file.parent, {})[int(re.search(r"dynamics_epoch_(\d+)", file.name).group(1))] = file
    p_true, correct, guids, gold = [], [], None, None
    for epochs in runs.values():
        member_p, member_c = [], []
        for epoch in sorted(epochs):
            frame = pd.read_json(epochs[epoch], lines=True, dtype={"guid": str})
            logits = np.asarray(frame[f"logits_epoch_{epoch}"].tolist(), np.float64)
            if guids is None:
                guids, gold = as_ids(frame["guid"]), frame["gold"].to_numpy(np.int64)
            elif not np.array_equal(as_ids(frame["guid"]), guids):
                raise UserError(f"{epochs[epoch]} lists other examples (or another order) than {files[0]}; use files of one dataset.")
            probs = np.exp(logits - logits.max(1, keepdims=True))
            probs /= probs.sum(1, keepdims=True)
            member_p.append(probs[np.arange(len(gold)), gold])
            member_c.append(probs.argmax(1) == gold)
        p_true.append(member_p)
        correct.append(member_c)
    if len({len(p) for p in p_true}) != 1:
        raise UserError(f"The runs under {folder} have different numbers of epochs; export them separately.")
    confidence, variability, correctness = dynamics.data_map(np.array(p_true), np.array(correct))
    values = {"confidence": confidence, "variability": variability, "correctness": correctness}
    if column not in values:
        raise UserError(f"Training dynamics give confidence, variability or correctness, not '{column}'; choose one of those.")
    return pd.DataFrame({"id": guids, "label": gold, "score": values[column]}), CARTOGRAPHY_DIRECTIONS[column], column


class _SafeUnpickler(pickle.Unpickler):
    """Loads plain containers and numpy arrays only: a score file must not run code."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"), ("numpy", "ndarray"),
               ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
               ("builtins", "list"), ("builtins", "dict"), ("collections", "OrderedDict")}

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"the pickle holds {module}.{name}, which a score file has no need for")
        return super().find_class(module, name)


def _save_npz(path: Path, **arrays: np.ndarray) -> Path:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    atomic_write_bytes(path, buffer.getvalue())
    return path


def _run_info(run_dir: Path) -> dict:
    info = read_run_info(run_dir)
    if info is None:
        raise UserError(f"{run_dir} holds no run (no run.json); pass the directory `curriculum score` wrote.")
    return info


def align_imported(imported: ImportedScores, labels: np.ndarray, ids: np.ndarray | None = None, split: str = "train") -> np.ndarray:
    """The imported scores in a dataset's example order: by ``id`` when the file and ``ids``
    have them, else by ``index``, else row order; every example needs exactly one score and
    given labels must agree."""
    table, m = imported.table, len(labels)
    if "split" in table.columns and table["split"].nunique() > 1:
        table = table[table["split"] == split]
    if "id" in table.columns and ids is not None:
        position = {key: i for i, key in enumerate(as_ids(ids))}
        rows = np.array([position.get(key, -1) for key in table["id"]])
        missing = m - len(set(rows[rows >= 0].tolist()))
        if missing:
            raise UserError(f"{missing} of {m} examples have no score in {imported.source} (matched by id); "
                            "score the current dataset, or align the scores yourself with Scores.align.")
    elif "index" in table.columns:
        rows = table["index"].to_numpy()
        if not np.issubdtype(rows.dtype, np.integer) or not np.array_equal(np.sort(rows), np.arange(m)):
            raise UserError(f"The 'index' column of {imported.source} must hold every example index 0..{m - 1} exactly once.")
    else:
        if len(table) != m:
            raise UserError(f"{imported.source} has {len(table)} scores but the dataset has {m} examples; use the score file "
                            "made for this dataset (and split), or one with ids.")
        rows = np.arange(m)
    keep = rows >= 0
    scores = np.full(m, np.nan)
    scores[rows[keep]] = table["score"].to_numpy()[keep]
    if "label" in table.columns:
        file_labels = np.full(m, -1)
        file_labels[rows[keep]] = table["label"].to_numpy()[keep]
        differ = int((file_labels != np.asarray(labels)).sum())
        if differ:
            raise UserError(f"{differ} of {m} labels in {imported.source} differ from the dataset's; use the file made for this "
                            "dataset and split (or one with ids or an 'index' column).")
    return scores


def load_external_scores(path, labels, *, ids=None, column: str | None = None,
                         direction: str | None = None) -> tuple[np.ndarray, str]:
    """Per-example scores from a file (any format :func:`read_scores` reads), in the dataset's
    example order (:func:`align_imported`), and which end is easier ("higher"/"lower"): from the
    file or ``direction``, never a default."""
    imported = read_scores(path, column=column, direction=direction)
    return align_imported(imported, np.asarray(labels), ids), imported.direction
