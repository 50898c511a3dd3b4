"""Per-example scores in the field's formats, out (``curriculum export``) and back in.

Every import says which direction means easier: from the file's metadata (our parquet and CSV
sidecar), from the format's own definition (C-score: higher; forgetting counts: lower; cleanlab
self-confidence: higher; data-map confidence and correctness: higher), or from an explicit
``direction``; anything else is refused rather than guessed.

Formats (``FORMATS``):

``parquet``  the scores table with its metadata (directions, dataset, fingerprint, provenance).
``csv``      the table, plus ``<file>.json`` beside it with the same metadata; without that
             sidecar a CSV's direction must be given.
``cscore``   ``.npz`` with ``labels`` and ``scores`` (Jiang et al.'s published C-scores), ``ids``
             and ``dataset``; one split in index order; only a score whose higher values are
             easier. Read back: a file with ids by id; the published files, which list the
             source's whole original order, row r to the example whose id is r (or
             ``<split>/r``); ImageNet's ``filenames`` by file name.
``forgetting`` a pickle ``{"indices": ..., "forgetting counts": ...}`` as Toneva et al.'s
             ``order_examples_by_forgetting.py`` writes it: the train examples' ids (integers
             where the ids are) from fewest to most forgetting events (ties by index). The counts
             are our ensemble means (floats); never-learned examples count the number of trained
             checkpoints. Their own files' indices (positions in their train set) read back too.
``cartography`` Swayamdipta et al.'s data-map files: per member
             ``member_XXX/training_dynamics/dynamics_epoch_{e}.jsonl`` (one line per example:
             ``guid`` = id, ``logits_epoch_{e}``, ``gold``) for the checkpoints after
             initialisation, ``checkpoints.json`` (which checkpoint, epoch and step each file
             holds: they are checkpoints, not necessarily epochs; it stays outside
             ``training_dynamics/``, whose files their reader counts), and ``td_metrics.jsonl``
             (guid, index, confidence, variability, correctness, forgetfulness,
             threshold_closeness) with the members' mean of their metrics: correctness counts
             the checkpoints right, forgetfulness is 1000 where never learned, as theirs. The
             run must hold probabilities (``--record-probs``); their logs, rounded to float16,
             serve as logits (softmax gives the probabilities back; probabilities below 2^-24
             are floored), with the predicted class raised one float16 step where rounding tied
             it, so ``np.argmax`` of every line is the recorded prediction. Read back keyed by
             ``guid``, each epoch in any order, as their ``run_glue.py`` logs it.
``cleanlab`` ``.npz`` with ``pred_probs`` [N, K] (the members' mean probabilities at the last
             checkpoint, renormalised), ``labels``, ``ids`` and ``sample`` (which kind they are),
             for ``cleanlab.filter.find_label_issues(labels, pred_probs)``. cleanlab needs
             out-of-sample probabilities: the test split's are (the default); members recorded
             with held-out folds (:meth:`scoring.Recorder.hold_out`) give every train example its
             held-out members' mean; otherwise the train split's are in-sample, so overconfident,
             and cleanlab will miss label issues there.
``hf``       a column of a Hugging Face ``datasets`` dataset, aligned by id (or image content
             hash) (:func:`add_hf_column`), saved with ``curriculum_scores.json`` beside it; a
             dataset whose rows span several splits needs the split named. Read back from the
             folder.

Every import says in one sentence what it read and matched (:func:`match_imported`).
"""

from __future__ import annotations

import io
import json
import pickle
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any

import numpy as np
import pandas as pd

from scoring import dynamics
from scoring.errors import UserError
from scoring.files import atomic_write_bytes, atomic_write_json
from scoring.ids import as_ids, native_ids, source_positions
from scoring.ordering import DIRECTIONS
from scoring.recorder import load_held_out
from scoring.records import check_complete, open_field, open_probs, read_run_info
from scoring.scores import Scores

FORMATS = ("parquet", "csv", "cscore", "forgetting", "cartography", "cleanlab", "hf")
SMALLEST_PROB = 2.0**-24  # the smallest positive float16
NEVER_LEARNED_FORGETFULNESS = 1000  # Swayamdipta et al.'s compute_forgetfulness for an example never predicted right
CARTOGRAPHY_SIDECAR = "checkpoints.json"
HF_SIDECAR = "curriculum_scores.json"
CARTOGRAPHY_DIRECTIONS = {
    "confidence": "higher",
    "correctness": "higher",
    "variability": None,
    "forgetfulness": "lower",
    "threshold_closeness": None,
}


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
        raise UserError(
            f"A C-score file means higher = easier, but '{by}' is "
            f"{scores.directions.get(by) or 'without a direction'}; "
            "export a higher-is-easier score such as accessibility or confidence."
        )
    rows = scores.split(split)
    return [
        _save_npz(
            path,
            labels=rows["label"].to_numpy(np.int64),
            scores=rows[by].to_numpy(np.float64),
            ids=native_ids(rows["id"]),
            dataset=np.array(str(scores.meta.get("dataset", ""))),
        )
    ]


def write_forgetting(scores: Scores, path: Path, split: str = "train") -> list[Path]:
    rows = scores.split(split)
    counts = rows["forgetting"].to_numpy(np.float64)
    order = np.argsort(counts, kind="stable")
    payload = pickle.dumps(
        {
            "indices": native_ids(rows["id"])[order],
            "forgetting counts": counts[order],
            "dataset": str(scores.meta.get("dataset", "")),
        }
    )
    atomic_write_bytes(path, payload)
    return [path]


_FLOAT16_TEXT: np.ndarray | None = None


def float16_text(values: np.ndarray) -> np.ndarray:
    """Each value rounded to float16, as the shortest decimal text that reads back as that float16
    (one lookup in a table of all 65536 of them)."""
    global _FLOAT16_TEXT
    if _FLOAT16_TEXT is None:
        every = np.arange(2**16, dtype=np.uint16).view(np.float16)
        _FLOAT16_TEXT = np.array(
            [np.format_float_positional(v, unique=True, trim="-") if np.isfinite(v) else "null" for v in every],
            dtype=object,
        )
    return _FLOAT16_TEXT[np.asarray(values).astype(np.float16).view(np.uint16)]


def cartography_logits(probs: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """float16 logits [M, K] of recorded float16 probabilities (their logs: softmax gives the
    probabilities back) whose ``np.argmax`` is the recorded prediction in every row: where two
    probabilities round to one float16, the predicted class is raised by one float16 step."""
    logits = np.log(np.maximum(probs.astype(np.float32), SMALLEST_PROB)).astype(np.float16)
    rows = np.flatnonzero(logits.argmax(1) != pred)
    if len(rows):
        others = logits[rows].copy()
        others[np.arange(len(rows)), pred[rows]] = -np.inf
        logits[rows, pred[rows]] = np.nextafter(others.max(1), np.float16(np.inf))
    return logits


def write_cartography(
    scores: Scores, run_dir: Path, folder: Path, split: str = "train"
) -> tuple[list[Path], list[str]]:
    info = _run_info(run_dir)
    checkpoints = info["checkpoints"]
    rows = scores.split(split)
    gold = rows["label"].to_numpy(np.int64)
    guids = [json.dumps(guid.item()) for guid in native_ids(rows["id"])]
    members, m = info["members"], len(gold)
    check_complete(run_dir, members, len(checkpoints))
    # Read a checkpoint of one member at a time; per example, the sums over members of the
    # checkpoints right after initialisation and of the forgetfulness (Swayamdipta et al.'s metrics).
    right_total, forgetful_total = np.zeros(m, np.int64), np.zeros(m, np.int64)
    written = []
    for member in range(members):
        probs = open_probs(run_dir, split, member, len(checkpoints), m)
        pred = open_field(run_dir, split, "pred", member, len(checkpoints), m)
        right, events, previous = np.zeros(m, np.int64), np.zeros(m, np.int64), None
        for epoch, e in enumerate(range(1, len(checkpoints))):  # after initialisation, numbered from 0 as theirs are
            predicted = pred.read(e, e + 1)[0]
            correct = predicted == gold
            right += correct
            if previous is not None:
                events += previous & ~correct  # a forgetting event (Toneva et al.)
            previous = correct
            text = float16_text(cartography_logits(probs.read(e, e + 1)[0], predicted))
            lines = "".join(
                f'{{"guid":{guid},"logits_epoch_{epoch}":[{",".join(row)}],"gold":{label}}}\n'
                for guid, row, label in zip(guids, text, gold.tolist())
            )
            path = folder / f"member_{member:03d}" / "training_dynamics" / f"dynamics_epoch_{epoch}.jsonl"
            atomic_write_bytes(path, lines.encode())
            written.append(path)
        right_total += right
        forgetful_total += np.where(right > 0, events, NEVER_LEARNED_FORGETFULNESS)
    # Their reader counts the files in training_dynamics/: the checkpoint each file holds is stated beside it.
    files = {
        f"dynamics_epoch_{epoch}.jsonl": {
            "checkpoint": e,
            "epoch": checkpoints[e]["epoch"],
            "step": checkpoints[e]["step"],
        }
        for epoch, e in enumerate(range(1, len(checkpoints)))
    }
    sidecar = folder / CARTOGRAPHY_SIDECAR
    atomic_write_json(
        sidecar,
        {
            "files": files,
            "note": "dynamics_epoch_{e}.jsonl holds checkpoint e + 1 of the run (checkpoint "
            "0 is the initialisation); its epoch is the run's epoch of that checkpoint.",
        },
    )
    confidence = rows["confidence"].to_numpy()
    metrics = pd.DataFrame(
        {
            "guid": native_ids(rows["id"]),
            "index": rows["index"],
            "threshold_closeness": confidence * (1 - confidence),
            "confidence": confidence,
            "variability": rows["variability"],
            "correctness": right_total / members,
            "forgetfulness": forgetful_total / members,
        }
    )
    path = folder / "td_metrics.jsonl"
    atomic_write_bytes(path, metrics.to_json(orient="records", lines=True).encode())
    note = (
        f"{len(written)} dynamics files ({info['members']} members x {len(checkpoints) - 1} checkpoints "
        "after "
        f"initialisation; {sidecar.name} maps each file to its checkpoint, epoch and step); "
        "td_metrics.jsonl holds the "
        "members' mean of Swayamdipta et al.'s metrics (correctness: checkpoints correct; forgetfulness: "
        "1000 never learned)."
    )
    return [*written, sidecar, path], [note]


def cleanlab_pred_probs(run_dir: Path, split: str = "test") -> tuple[np.ndarray, str]:
    """Class probabilities for cleanlab, [M, K] with rows summing to 1, and which they are: the
    mean over members at the last checkpoint, taken, where the members declared held-out folds
    (:meth:`scoring.Recorder.hold_out`) covering every example, over the members that held each
    example out ("out-of-sample (folds)"); otherwise over all members ("out-of-sample" for the
    test split, which no member trains on, "in-sample" for another)."""
    info = _run_info(run_dir)
    checkpoints, members = len(info["checkpoints"]), info["members"]
    folds = [load_held_out(run_dir, member, split) for member in range(members)]
    cross = all(fold is not None for fold in folds) and np.logical_or.reduce(folds).all()
    total = 0.0
    for member in range(members):
        last = open_probs(run_dir, split, member, checkpoints).read(checkpoints - 1, checkpoints)[0].astype(np.float64)
        total = total + (last * folds[member][:, None] if cross else last)
    kind = "out-of-sample (folds)" if cross else "out-of-sample" if split == "test" else "in-sample"
    return (total / total.sum(1, keepdims=True)).astype(np.float32), kind


def write_cleanlab(scores: Scores, run_dir: Path, path: Path, split: str = "test") -> tuple[list[Path], list[str]]:
    rows = scores.split(split)
    pred_probs, sample = cleanlab_pred_probs(run_dir, split)
    written = [
        _save_npz(
            path,
            pred_probs=pred_probs,
            labels=rows["label"].to_numpy(np.int64),
            ids=native_ids(rows["id"]),
            dataset=np.array(str(scores.meta.get("dataset", ""))),
            sample=np.array(sample),
        )
    ]
    if sample == "out-of-sample (folds)":
        note = (
            f"pred_probs of the {len(rows)} {split} examples are out-of-sample: each from the members that "
            "held it out "
            "(their declared folds); row i is the example ids[i]."
        )
    elif sample == "out-of-sample":
        note = (
            f"pred_probs of the {len(rows)} {split} examples are out-of-sample (no member trained on them); "
            "row i is the "
            "example ids[i]."
        )
    else:
        note = (
            f"pred_probs of the {len(rows)} {split} examples are in-sample (the members trained on these "
            "examples): cleanlab "
            "expects out-of-sample ones and will under-report label issues; the test split's are "
            "out-of-sample, and so "
            "are those of members recorded with held-out folds (Recorder.hold_out)."
        )
    return written, [note]


def add_hf_column(
    scores: Scores,
    dataset: Any,
    by: str = "accessibility",
    name: str | None = None,
    split: str | None = None,
    match: str = "id",
):
    """``dataset.add_column(name or by, ...)`` with each row's score matched by ``match`` (``id``
    or ``content_hash`` of an image column; None where no example matched); returns the new
    dataset and the :class:`~scoring.ids.Alignment`. Rows that match examples of several splits
    are refused unless ``split`` names the one whose scores to add."""
    scores.column(by, scores.table["split"].iloc[0])  # an unknown column fails here with the list of names
    aligned = scores.align(dataset, by=match, split=split)
    found = sorted(set(aligned.table.loc[aligned.matched, "split"]))
    if split is None and len(found) > 1:
        counts = aligned.table.loc[aligned.matched, "split"].value_counts()
        raise UserError(
            f"The dataset's rows match examples of {len(found)} splits "
            f"({', '.join(f'{counts[s]} {s}' for s in found)}), "
            f"whose scores would share one column; name the split to add (--split {found[0]}, or split=)."
        )
    values = [float(v) if ok else None for v, ok in zip(aligned.column(by), aligned.matched)]
    return dataset.add_column(name or by, values), aligned


def export(
    run: str | Path,
    out: str | Path,
    format: str,
    *,
    by: str = "accessibility",
    split: str | None = None,
    hf_dataset: str | Path | None = None,
    match: str = "id",
) -> tuple[list[Path], list[str]]:
    """Write the scores of run directory ``run`` to ``out`` in ``format``; returns the files and
    notes for the user (what the file holds, how many rows matched, caveats). ``split`` defaults
    to train, and to test for ``cleanlab``; ``hf`` adds column ``by`` to the ``save_to_disk``
    folder ``hf_dataset`` (each of its splits, matched by ``match``) and saves the result to ``out``."""
    if format not in FORMATS:
        raise UserError(f"Unknown format '{format}'; choose one of {', '.join(FORMATS)}.")
    run_dir, out = Path(run), Path(out)
    scores = Scores.load(run_dir)
    named = split
    split = split or ("test" if format == "cleanlab" else "train")
    if format in ("parquet", "csv"):
        if out.suffix != f".{format}":
            raise UserError(f"The {format} export needs a file name ending in .{format}, got {out}.")
        return write_table(scores, out, run_dir), []
    if format == "cscore":
        return write_cscore(scores, out, by, split), []
    if format == "forgetting":
        return write_forgetting(scores, out, split), [
            f"'indices' are the ids of the {split} examples, fewest forgetting events first."
        ]
    if format == "cartography":
        return write_cartography(scores, run_dir, out, split)
    if format == "cleanlab":
        return write_cleanlab(scores, run_dir, out, split)
    return write_hf(scores, run_dir, out, by, named, hf_dataset, match)


def write_hf(
    scores: Scores,
    run_dir: Path,
    out: Path,
    by: str,
    split: str | None,
    hf_dataset: str | Path | None,
    match: str = "id",
) -> tuple[list[Path], list[str]]:
    """Column ``by`` added to every split of the ``save_to_disk`` folder ``hf_dataset``, saved to
    ``out`` with ``curriculum_scores.json`` (the column, its direction, the provenance) beside it.
    A part named like a split of the scores (``train``, ``test``) gets that split's scores."""
    if hf_dataset is None:
        raise UserError(
            "The hf export adds a column to a Hugging Face dataset; pass its save_to_disk folder (--hf-dataset PATH)."
        )
    datasets = _hf_datasets("The hf export")
    loaded = datasets.load_from_disk(str(hf_dataset))
    parts = loaded if isinstance(loaded, datasets.DatasetDict) else {None: loaded}
    splits = set(scores.table["split"])
    result, notes = {}, []
    for key, part in parts.items():
        chosen = split or (key if key in splits else None)
        result[key], aligned = add_hf_column(scores, part, by, split=chosen, match=match)
        notes.append(f"{key or 'dataset'}: {aligned}" + (f" in the {chosen} scores" if chosen else ""))
    (datasets.DatasetDict(result) if None not in result else result[None]).save_to_disk(str(out))
    meta = provenance(scores, run_dir)
    atomic_write_json(out / HF_SIDECAR, {**meta, "column": by, "direction": scores.directions.get(by)})
    return [out], notes


def _hf_datasets(feature: str):
    try:
        import datasets
    except ImportError:
        raise UserError(
            f"{feature} needs the 'datasets' package; install it with pip install 'agreement-curriculum[hf]'."
        ) from None
    return datasets


# ---------------------------------------------------------------------------------------------
# in


@dataclass
class ImportedScores:
    """One score per row: ``table`` has ``score`` and whichever of ``id``, ``index``, ``label``
    the file gives (``split`` too when it had several); ``direction`` is "higher" or "lower";
    ``dataset`` the dataset the file says it scored (our exports say it), else None; ``note``
    what was read, in one sentence."""

    table: pd.DataFrame
    direction: str
    column: str
    source: str
    dataset: str | None = None
    note: str = ""


def read_scores(path: str | Path, column: str | None = None, direction: str | None = None) -> ImportedScores:
    """A score file in any format of this module (and a plain CSV/parquet with a ``score`` or
    ``column`` column). ``direction`` ("higher"/"lower" = easier) is needed when the file does not
    say it; when it does, a contradicting ``direction`` is refused."""
    path = Path(path)
    if direction not in (None, *DIRECTIONS):
        raise UserError(f"The direction is 'higher' or 'lower' (which values are easier), got {direction!r}.")
    if not path.exists():
        raise UserError(
            f"Score file {path} does not exist; give a .csv, .parquet, .npz, .pkl, .jsonl file, a "
            "cartography "
            "folder or a Hugging Face save_to_disk folder."
        )
    try:
        read = _read_any(path, column)
    except (OSError, ValueError, KeyError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile) as err:
        if isinstance(err, UserError):
            raise
        raise UserError(
            f"Cannot read scores from {path} ({type(err).__name__}: {err}); check the file and its format."
        ) from None
    table, stated, column = read.table, read.direction, read.column
    if stated is not None and direction is not None and stated != direction:
        raise UserError(
            f"{path} says {stated} '{column}' is easier but the direction given is {direction}; drop the "
            "flag or fix the file."
        )
    chosen = stated or direction
    if chosen is None:
        raise UserError(
            f"{path} does not say whether a higher or lower '{column}' is easier; pass the direction "
            "(--scores-direction higher|lower, or direction=)."
        )
    note = read.note or f"read {len(table)} '{column}' scores from {path}."
    return ImportedScores(table.reset_index(drop=True), chosen, column, str(path), read.dataset, note)


@dataclass
class _Read:
    table: pd.DataFrame
    direction: str | None
    column: str
    dataset: str | None = None
    note: str = ""


def _is_hf_folder(path: Path) -> bool:
    return path.is_dir() and any((path / name).exists() for name in ("dataset_dict.json", "state.json", HF_SIDECAR))


def _read_any(path: Path, column: str | None) -> _Read:
    """The file's scores (a table with a 'score' column), the direction it states (or None), the
    score's name, the dataset it names and what was read."""
    if _is_hf_folder(path):
        return _read_hf(path, column)
    if path.is_dir():
        return _read_cartography_dynamics(path, column or "confidence")
    suffix = path.suffix.lower()
    if suffix == ".npz":
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
        dataset = str(arrays["dataset"]) if "dataset" in arrays else None
        if "pred_probs" in arrays and "labels" in arrays:  # cleanlab: self-confidence
            probs, labels = arrays["pred_probs"], arrays["labels"].astype(np.int64)
            table = pd.DataFrame({"label": labels, "score": probs[np.arange(len(labels)), labels]})
            return _Read(_with_ids(table, arrays, path), "higher", "self_confidence", dataset)
        missing = [key for key in ("labels", "scores") if key not in arrays]
        if missing:
            raise UserError(
                f"{path} has no {' or '.join(missing)} array (it has {', '.join(arrays) or 'none'}); a "
                "score .npz needs "
                "'labels' and 'scores' (C-scores) or 'pred_probs' and 'labels' (cleanlab)."
            )
        table = pd.DataFrame(
            {"label": arrays["labels"].reshape(-1), "score": arrays["scores"].reshape(-1).astype(np.float64)}
        )
        return _Read(_with_ids(table, arrays, path), "higher", "cscore", dataset)
    if suffix in (".pkl", ".pickle"):
        data = _SafeUnpickler(io.BytesIO(path.read_bytes())).load()
        if not isinstance(data, dict) or "indices" not in data or "forgetting counts" not in data:
            raise UserError(
                f"{path} is not a forgetting-statistics pickle (a dict with 'indices' and 'forgetting counts')."
            )
        indices = np.asarray(data["indices"]).reshape(-1)
        table = pd.DataFrame({"id": as_ids(indices), "score": np.asarray(data["forgetting counts"], np.float64)})
        if np.issubdtype(indices.dtype, np.integer):  # Toneva et al.'s own files hold positions in their train set
            table.insert(1, "index", indices.astype(np.int64))
        return _Read(table, "lower", "forgetting", str(data["dataset"]) if data.get("dataset") else None)
    if suffix == ".jsonl":
        table = pd.read_json(path, lines=True, dtype={"guid": str})
        column = column or "confidence"
        _need_column(table, column, path)
        table = table.rename(columns={"guid": "id"})
        return _Read(_score_table(table, column), CARTOGRAPHY_DIRECTIONS.get(column), column)
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
        return _Read(_score_table(table, column), directions.get(column), column, meta.get("dataset"))
    raise UserError(
        f"Cannot read scores from {path}: use .csv, .parquet, .npz (C-score, cleanlab), .pkl (forgetting), "
        ".jsonl (cartography metrics), a folder of dynamics_epoch_*.jsonl or a Hugging Face save_to_disk "
        "folder."
    )


def _need_column(table: pd.DataFrame, column: str, path: Path) -> None:
    if column not in table.columns:
        raise UserError(
            f"{path} has no '{column}' column (it has {', '.join(map(str, table.columns))}); choose one of those."
        )


def _score_table(table: pd.DataFrame, column: str) -> pd.DataFrame:
    keep = [key for key in ("split", "index", "id", "label") if key in table.columns and key != column]
    out = table[keep].copy()
    out["score"] = pd.to_numeric(table[column], errors="raise").astype(np.float64)
    if "id" in out.columns:
        out["id"] = as_ids(out["id"])
    return out


def _with_ids(table: pd.DataFrame, arrays: dict[str, np.ndarray], path: Path) -> pd.DataFrame:
    """The ``ids`` of our exports, or the ``filenames`` of published ImageNet C-scores, as ids."""
    for key in ("ids", "filenames"):
        if key in arrays:
            values = arrays[key].reshape(-1)
            if len(values) != len(table):
                raise UserError(f"{path} has {len(values)} {key} for {len(table)} scores; use a complete file.")
            table.insert(0, "id", as_ids(values))
            return table
    return table


def _read_hf(folder: Path, column: str | None) -> _Read:
    """A column of a Hugging Face ``save_to_disk`` folder (every split of a DatasetDict), keyed
    by its ``id`` column or ``<split>/<row>``; the direction from our export's sidecar."""
    datasets = _hf_datasets(f"Reading the Hugging Face dataset {folder}")
    sidecar = json.loads((folder / HF_SIDECAR).read_text()) if (folder / HF_SIDECAR).exists() else {}
    column = column or sidecar.get("column")
    loaded = datasets.load_from_disk(str(folder))
    parts = loaded if isinstance(loaded, datasets.DatasetDict) else {getattr(loaded, "split", None): loaded}
    if column is None:
        names = sorted({name for part in parts.values() for name in part.column_names})
        raise UserError(
            f"{folder} does not say which column holds the scores; name it (--by NAME, or column=) among "
            f"{', '.join(names)}."
        )
    frames = []
    for key, part in parts.items():
        if column not in part.column_names:
            raise UserError(
                f"The {key or 'dataset'} part of {folder} has no '{column}' column (it has "
                f"{', '.join(part.column_names)}); choose one of those."
            )
        ids = (
            as_ids(part["id"])
            if "id" in part.column_names
            else (as_ids([f"{key}/{row}" for row in range(len(part))]) if key else None)
        )
        frame = pd.DataFrame({"score": pd.to_numeric(pd.Series(list(part[column]), dtype=object), errors="raise")})
        if ids is not None:
            frame.insert(0, "id", ids)
        else:
            frame.insert(0, "index", np.arange(len(part)))
        if "label" in part.column_names:
            frame.insert(1, "label", np.asarray(part["label"], dtype=np.int64))
        if key is not None:
            frame.insert(0, "split", key)
        frames.append(frame[frame["score"].notna()])
    table = pd.concat(frames, ignore_index=True).astype({"score": np.float64})
    stated = sidecar.get("direction") if sidecar.get("column") == column else None
    counts = ", ".join(f"{len(frame)} {key or 'rows'}" for key, frame in zip(parts, frames))
    note = (
        f"read {len(table)} '{column}' scores from the Hugging Face dataset {folder} "
        f"({counts}; rows without a score left out)."
    )
    return _Read(table, stated, column, sidecar.get("dataset"), note)


def _read_cartography_dynamics(folder: Path, column: str) -> _Read:
    """Data-map coordinates from ``dynamics_epoch_{e}.jsonl`` files (in ``folder``, its
    ``training_dynamics/``, or one such folder per member below it), averaged over members.

    Read as their ``read_training_dynamics`` reads them: every line is keyed by its ``guid``, in
    any order (their ``run_glue.py`` logs each epoch in its shuffled sampler order); epochs
    0..E-1 must all be there and list the same examples; argmax ties go to the first class, as
    their ``np.argmax``."""
    files = sorted(folder.rglob("dynamics_epoch_*.jsonl"))
    if not files:
        raise UserError(f"{folder} holds no dynamics_epoch_*.jsonl files; pass a cartography training_dynamics folder.")
    runs: dict[Path, dict[int, Path]] = {}
    for file in files:
        runs.setdefault(file.parent, {})[int(re.search(r"dynamics_epoch_(\d+)", file.name).group(1))] = file
    p_true, correct, guids, gold = [], [], None, None
    for parent, epochs in sorted(runs.items()):
        gap = next((e for e in range(len(epochs)) if e not in epochs), None)
        if gap is not None:
            raise UserError(
                f"{parent} has no dynamics_epoch_{gap}.jsonl (it has {len(epochs)} epoch files); epochs are "
                "read "
                "from 0 on, as their read_training_dynamics reads them: restore the file or remove the "
                "later ones."
            )
        member_p, member_c = [], []
        for epoch in range(len(epochs)):
            logged = _dynamics_epoch(epochs[epoch], epoch)
            if guids is None:
                guids = list(logged)
                gold = np.array([logged[guid][0] for guid in guids], dtype=np.int64)
                reference = epochs[epoch]
            missing = [guid for guid in guids if guid not in logged]
            if missing or len(logged) != len(guids):
                extra = next((guid for guid in logged if guid not in set(guids)), None)
                raise UserError(
                    f"{epochs[epoch]} logs {len(logged)} examples and {reference} {len(guids)}, with "
                    f"{len(missing)} of these missing (e.g. guid {(missing or [extra])[0]}); every epoch "
                    "file "
                    "must log the same examples of one dataset."
                )
            golds = np.array([logged[guid][0] for guid in guids], dtype=np.int64)
            if not np.array_equal(golds, gold):
                raise UserError(
                    f"{epochs[epoch]} gives {int((golds != gold).sum())} examples another gold label than "
                    f"{reference}; use the files of one dataset."
                )
            logits = np.array([logged[guid][1] for guid in guids], dtype=np.float64)
            probs = np.exp(logits - logits.max(1, keepdims=True))
            probs /= probs.sum(1, keepdims=True)
            member_p.append(probs[np.arange(len(gold)), gold])
            member_c.append(logits.argmax(1) == gold)
        p_true.append(member_p)
        correct.append(member_c)
    if len({len(p) for p in p_true}) != 1:
        raise UserError(f"The runs under {folder} have different numbers of epochs; export them separately.")
    confidence, variability, correctness = dynamics.data_map(np.array(p_true), np.array(correct))
    values = {"confidence": confidence, "variability": variability, "correctness": correctness}
    if column not in values:
        raise UserError(
            f"Training dynamics give confidence, variability or correctness, not '{column}'; choose one of those."
        )
    note = (
        f"read {len(runs)} run(s) x {len(p_true[0])} epochs of {len(guids)} examples keyed by guid from "
        f"{folder}; "
        f"'{column}' is their mean over runs (correctness: the fraction of epochs right)."
    )
    table = pd.DataFrame({"id": as_ids(guids), "label": gold, "score": values[column]})
    return _Read(table, CARTOGRAPHY_DIRECTIONS[column], column, None, note)


def _dynamics_epoch(path: Path, epoch: int) -> dict[str, tuple[int, list[float]]]:
    """guid -> (gold, logits) of one ``dynamics_epoch_{epoch}.jsonl``, in the file's order."""
    logged: dict[str, tuple[int, list[float]]] = {}
    key = f"logits_epoch_{epoch}"
    with open(path) as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            entry = json.loads(line)
            if not isinstance(entry, dict) or not {"guid", "gold", key} <= entry.keys():
                raise UserError(
                    f"Line {number} of {path} is not a training-dynamics record with guid, gold and {key}; "
                    "pass files written by log_training_dynamics or `curriculum export --format cartography`."
                )
            guid = str(entry["guid"])
            if guid in logged:
                raise UserError(
                    f"{path} logs guid {guid} twice (line {number}); log each example once per epoch "
                    "(a distributed sampler pads its shards with repeats: drop them)."
                )
            logged[guid] = (int(entry["gold"]), entry[key])
    return logged


class _SafeUnpickler(pickle.Unpickler):
    """Loads plain containers and numpy arrays only: a score file must not run code."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("builtins", "list"),
        ("builtins", "dict"),
        ("collections", "OrderedDict"),
    }

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


def match_imported(
    imported: ImportedScores,
    labels: np.ndarray,
    ids: np.ndarray | None = None,
    split: str = "train",
    dataset: str | None = None,
) -> tuple[np.ndarray, str]:
    """The imported scores in a dataset's example order, and one sentence saying what matched.

    Rows are matched, in this order of preference: by ``id`` (a file path also matches by its
    file name, as the published ImageNet C-scores' ``filenames``); by an integer ``index`` that
    is an id (our forgetting export), a position in the source's original order (read from ids
    ``n`` or ``<split>/<n>``: Toneva et al.'s files) or a position in the split; by row order
    when the file has one row per example; or, for a file of the source's whole original order
    (the published C-scores), row r to the example whose id says position r. Every example needs
    a score, and labels the file gives must agree (``dataset`` names the dataset in the hint)."""
    table, m = imported.table, len(labels)
    if "split" in table.columns and table["split"].nunique() > 1:
        table = table[table["split"] == split]
    rows, how = _match_rows(table, m, None if ids is None else as_ids(ids), imported.source)
    keep = rows >= 0
    covered = len(set(rows[keep].tolist()))
    if covered < m:
        raise UserError(
            f"{m - covered} of {m} examples have no score in {imported.source} (matched {how}); "
            "score the current dataset, or align the scores yourself with Scores.align."
        )
    scores = np.full(m, np.nan)
    scores[rows[keep]] = table["score"].to_numpy()[keep]
    if "label" in table.columns:
        file_labels = np.full(m, -1)
        file_labels[rows[keep]] = table["label"].to_numpy()[keep]
        differ = int((file_labels != np.asarray(labels)).sum())
        if differ:
            named = imported.dataset
            if named and dataset and named != dataset:
                hint = (
                    f"the file was scored on '{named}' and the labels are those of '{dataset}': pass --dataset {named}"
                )
            elif named is None and dataset and "+noise" not in dataset:
                hint = (
                    "if the file was scored on a label-noise variant, name it (e.g. --dataset "
                    f"{dataset}+noise0.2); otherwise use the file made for this dataset and split"
                )
            else:
                hint = "use the file made for this dataset and split (or one with ids or an 'index' column)"
            raise UserError(f"{differ} of {m} labels in {imported.source} differ from the dataset's ({how}); {hint}.")
    note = f"{imported.source}: {covered} of {len(table)} scores matched the {m} {split} examples {how}."
    return scores, note


def _match_rows(table: pd.DataFrame, m: int, ids: np.ndarray | None, source: str) -> tuple[np.ndarray, str]:
    """For each row of ``table``, the position of its example in the split (-1: none), and how."""
    if "id" in table.columns and ids is not None:
        position = {key: i for i, key in enumerate(ids)}
        rows = np.array([position.get(key, -1) for key in table["id"]])
        if len(set(rows[rows >= 0].tolist())) < m and len(position) == m:
            names: dict[str, int] = {}
            for i, key in enumerate(ids):  # a file of file names: a dataset id that is a path matches by its name
                names[PurePath(key).name] = -2 if PurePath(key).name in names else i
            by_name = np.array([names.get(PurePath(key).name, -1) for key in table["id"]])
            if (by_name >= 0).sum() > (rows >= 0).sum():
                if (by_name == -2).any():
                    raise UserError(
                        f"{source} names examples by file name, and several files of the dataset share "
                        f"{int((by_name == -2).sum())} of its names; align it yourself with Scores.align."
                    )
                return by_name, "by file name"
        if len(set(rows[rows >= 0].tolist())) == m or "index" not in table.columns:
            return rows, "by id"
    if "index" in table.columns:
        index = table["index"].to_numpy()
        if not np.issubdtype(index.dtype, np.integer):
            raise UserError(f"The 'index' column of {source} must hold integers, got {index.dtype}.")
        source_order = source_positions(ids) if ids is not None else None
        if (
            source_order is not None
            and set(source_order.tolist()) <= set(index.tolist())
            and not np.array_equal(np.sort(index), np.arange(m))
        ):
            where = {int(n): i for i, n in enumerate(source_order)}
            return np.array([where.get(int(n), -1) for n in index]), "by position in the source's original order"
        if not np.array_equal(np.sort(index), np.arange(m)):
            raise UserError(
                f"The 'index' column of {source} must hold every example index 0..{m - 1} exactly once "
                "(or ids of this dataset)."
            )
        return index.astype(np.int64), "by position in the split"
    if len(table) == m:
        return np.arange(m), "by position (row order)"
    source_order = source_positions(ids) if ids is not None else None
    if source_order is not None and source_order.max(initial=-1) < len(table) and len(set(source_order.tolist())) == m:
        rows = np.full(len(table), -1)
        rows[source_order] = np.arange(m)
        return rows, "by position in the source's original order (row r is the example whose id is r)"
    raise UserError(
        f"{source} has {len(table)} scores but the dataset has {m} examples, and no ids to match them by; "
        "use the "
        "score file made for this dataset (and split), one over the source's whole original order, or one "
        "with ids."
    )


def align_imported(
    imported: ImportedScores, labels: np.ndarray, ids: np.ndarray | None = None, split: str = "train"
) -> np.ndarray:
    """The imported scores in a dataset's example order (:func:`match_imported` without its note)."""
    return match_imported(imported, labels, ids, split)[0]


def load_external_scores(
    path,
    labels,
    *,
    ids=None,
    column: str | None = None,
    direction: str | None = None,
    dataset: str | None = None,
) -> tuple[np.ndarray, str, str]:
    """Per-example scores from a file (any format :func:`read_scores` reads), in the dataset's
    example order (:func:`match_imported`), which end is easier ("higher"/"lower": from the file
    or ``direction``, never a default), and one sentence saying what matched."""
    imported = read_scores(path, column=column, direction=direction)
    values, note = match_imported(imported, np.asarray(labels), ids, dataset=dataset)
    return values, imported.direction, note
