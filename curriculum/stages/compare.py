"""The ``curriculum compare`` stage: put collections of networks side by side (Hacohen et al. 2020, section 4).

For every pair of runs and every split whose images both runs share:

- accessibility correlation, Pearson and Spearman (of the runs' ``scores.parquet`` columns),
  beside the noise ceiling ``sqrt(rel_a * rel_b)`` from each run's split-half reliability of
  accessibility: two collections that learn in exactly the same order, up to the sampling noise
  of their finite sizes, would correlate about this much (Spearman; the classic attenuation bound);
- cross-consistency at accuracy-matched checkpoints (:func:`scoring.agreement.match_checkpoints`,
  within ``tol`` of mean error, initialisation left out; :func:`scoring.agreement.cross_consistency`)
  with the fractions at 0 and 1 beside independent members of the same accuracies;
- easy-set overlap per checkpoint (:func:`scoring.agreement.compare_easy_sets`, Hacohen et al. 2020 Fig. 7b),
  at the epochs both runs recorded (else at the matched checkpoints).

Runs match by their images, not their labels: ``run.json`` stores a fingerprint of each split's
images, so a label-noise variant compares with its clean run (each collection's correctness is
taken against its own labels), partitions of a train set compare on their shared test split, and
runs of different data are refused.

Accessibility comes from each run's scores, mean errors from its ``summary.csv``; the counts at
matched checkpoints are read from the records a block of checkpoints at a time, so a comparison
of records of any size needs memory for a few rows of examples only.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from curriculum.config.stages import CompareConfig
from curriculum.reporting import figures
from curriculum.reporting.report import write_section
from scoring import agreement
from scoring.errors import UserError
from scoring.files import atomic_write_bytes, reading
from scoring.records import SPLITS, read_run_info
from scoring.scores import Scores
from scoring.stream import CheckpointCounts, correct_counts, row_blocks
from stats.distributions import bimodality, pearson, spearman


@dataclass
class Collection:
    """One finished score run: its run.json, scores and per-checkpoint summary. The record itself
    is read only where a comparison needs per-example counts (:func:`scoring.stream.correct_counts`),
    a block of checkpoints at a time."""

    path: Path
    info: dict
    scores: Scores
    summary: pd.DataFrame

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def label(self) -> str:
        return f"{self.name} ({self.info['members']} x {self.info['arch']})"

    @property
    def epochs(self) -> list[float]:
        return [c["epoch"] for c in self.info["checkpoints"]]

    def labels(self, split: str) -> np.ndarray:
        return self.scores.split(split)["label"].to_numpy()

    def errors(self, split: str) -> np.ndarray:
        """Mean error of the members at each checkpoint (1 - mean accuracy)."""
        rows = self.summary[self.summary["split"] == split].sort_values("checkpoint")
        return 1.0 - rows["acc_mean"].to_numpy(np.float64)

    def counts(
        self, split: str, rows: list[int], groups: np.ndarray | None = None
    ) -> tuple[np.ndarray, CheckpointCounts]:
        """:func:`scoring.stream.correct_counts` of this run at checkpoints ``rows``."""
        return correct_counts(
            self.path, split, self.labels(split), self.info["members"], len(self.epochs), rows, groups
        )


def load_collection(path: str | Path) -> Collection:
    path = Path(path)
    info = read_run_info(path)
    if info is None or info.get("status") != "complete" or not (path / "scores.parquet").exists():
        raise UserError(
            f"{path} holds no finished score run; run `curriculum score --out {path}` (or `curriculum learners`) first."
        )
    scores = Scores.load(path)
    rewrite = f"run `curriculum score --out {path}` again with the run's settings to rewrite it"
    if not (path / "summary.csv").exists():
        raise UserError(f"{path} has no summary.csv; {rewrite}.")
    with reading(path / "summary.csv", rewrite):
        summary = pd.read_csv(path / "summary.csv", float_precision="round_trip")
        if not {"split", "checkpoint", "acc_mean"} <= set(summary.columns):
            raise ValueError("summary.csv lacks columns")
    return Collection(path, info, scores, summary)


def shared_splits(a: Collection, b: Collection) -> list[str]:
    """The splits whose images the two runs share (by the image fingerprints in run.json; runs
    written before those existed match only when their whole datasets do)."""
    data_a, data_b = a.info["dataset"], b.info["dataset"]
    same = []
    for split in SPLITS:
        fa, fb = data_a.get("images", {}).get(split), data_b.get("images", {}).get(split)
        if (fa == fb) if fa and fb else data_a["fingerprint"] == data_b["fingerprint"]:
            same.append(split)
    if not same:
        raise UserError(
            f"{a.path} ({data_a['name']}) and {b.path} ({data_b['name']}) hold different images; compare runs "
            "of the same dataset (other seeds, architectures, learners, label noise or train partitions of it)."
        )
    return same


def _matched(err_a: np.ndarray, err_b: np.ndarray, tol: float) -> list[tuple[int, int]]:
    """Accuracy-matched checkpoint pairs after initialisation (at initialisation every member
    predicts nearly one class, so agreement there is class bias, as for accessibility)."""
    pairs = agreement.match_checkpoints(err_a[1:], err_b[1:], tol)
    return [(ia + 1, ib + 1) for ia, ib in pairs]


def _easy_pairs(a: Collection, b: Collection, matched: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Checkpoint pairs for the easy-set comparison: the epochs both runs recorded (Hacohen et al.
    compare linear and non-linear networks epoch by epoch), else the accuracy-matched ones."""
    index_b = {round(e, 6): i for i, e in enumerate(b.epochs)}
    common = [(i, index_b[round(e, 6)]) for i, e in enumerate(a.epochs) if i > 0 and round(e, 6) in index_b]
    return common or matched


def merged_counts(a: Collection, b: Collection, split: str, pairs: list[tuple[int, int]]):
    """For blocks of checkpoint pairs (ea, eb): how many of the Na + Nb members get each example
    right (``[pairs, M]``), with both runs' :class:`CheckpointCounts` at those checkpoints (b's
    members counted by a's classes, as the merged collection's class null needs)."""
    for block in row_blocks(pairs, len(a.labels(split))):
        right_a, counts_a = a.counts(split, [ia for ia, _ in block])
        right_b, counts_b = b.counts(split, [ib for _, ib in block], groups=a.labels(split))
        yield block, right_a + right_b, counts_a, counts_b


def compare_pair(a: Collection, b: Collection, tol: float = 0.01, threshold: float = 0.9) -> dict[str, pd.DataFrame]:
    """Tables ``correlations``, ``matched`` and ``easy_sets`` for one pair (see the module docstring)."""
    correlations, matched_rows, easy_rows = [], [], []
    n = a.info["members"] + b.info["members"]
    for split in shared_splits(a, b):
        xa, xb = (c.scores.split(split)["accessibility"].to_numpy(np.float64) for c in (a, b))
        if len(xa) != len(xb):
            raise UserError(
                f"{a.path} and {b.path} score {len(xa)} and {len(xb)} {split} examples; "
                "rerun the older one with this version of `curriculum score`."
            )
        pearson_r, pearson_p = pearson(xa, xb)
        spearman_r, spearman_p = spearman(xa, xb)
        rel_a, rel_b = (float(c.scores.reliability.loc["accessibility", split]) for c in (a, b))
        correlations.append(
            {
                "split": split,
                "examples": len(xa),
                "labels_equal": bool(np.array_equal(a.labels(split), b.labels(split))),
                "pearson_r": pearson_r,
                "pearson_p": pearson_p,
                "spearman_r": spearman_r,
                "spearman_p": spearman_p,
                "reliability_a": rel_a,
                "reliability_b": rel_b,
                "ceiling": float(np.sqrt(rel_a * rel_b)) if rel_a > 0 and rel_b > 0 else np.nan,
            }
        )
        err_a, err_b = a.errors(split), b.errors(split)
        pairs = _matched(err_a, err_b, tol)
        for block, right, counts_a, counts_b in merged_counts(a, b, split, pairs):
            for i, (ia, ib) in enumerate(block):
                row = right[i] / n  # cross-consistency (Hacohen et al. 2020, section 4.2)
                acc = np.concatenate([counts_a.member_accuracy()[:, i], counts_b.member_accuracy()[:, i]])
                matched_rows.append(
                    {
                        "split": split,
                        "checkpoint_a": ia,
                        "checkpoint_b": ib,
                        "epoch_a": a.epochs[ia],
                        "epoch_b": b.epochs[ib],
                        "error_a": err_a[ia],
                        "error_b": err_b[ib],
                        "mean_cross_consistency": row.mean(),
                        "at0_observed": np.mean(row == 0),
                        "at0_independent": np.prod(1 - acc),
                        "at1_observed": np.mean(row == 1),
                        "at1_independent": np.prod(acc),
                        "bimodality": bimodality(row),
                    }
                )
        for block in row_blocks(_easy_pairs(a, b, pairs), len(xa)):
            ia, ib = (np.array(side) for side in zip(*block))
            cons_a = a.counts(split, list(ia))[0] / a.info["members"]
            cons_b = b.counts(split, list(ib))[0] / b.info["members"]
            both, only_a, only_b = agreement.compare_easy_sets(cons_a, cons_b, threshold)
            easy_rows += [
                {
                    "split": split,
                    "epoch_a": a.epochs[i],
                    "epoch_b": b.epochs[j],
                    "examples": len(xa),
                    "both": int(x),
                    "only_a": int(y),
                    "only_b": int(z),
                }
                for i, j, x, y, z in zip(ia, ib, both, only_a, only_b)
            ]
    return {
        "correlations": pd.DataFrame(correlations),
        "matched": pd.DataFrame(matched_rows),
        "easy_sets": pd.DataFrame(easy_rows),
    }


def _spread(items: list, count: int = 4) -> list:
    """Up to ``count`` items evenly spread over ``items``, first and last included."""
    return [items[i] for i in sorted({round(x) for x in np.linspace(0, len(items) - 1, min(count, len(items)))})]


def pair_figures(
    a: Collection, b: Collection, tables: dict[str, pd.DataFrame], folder: Path, threshold: float
) -> list[Path]:
    head = f"{a.info['dataset']['name']}: {a.label} vs {b.label}"
    stem = f"{a.name}_vs_{b.name}"
    corr = tables["correlations"]
    scatter = [
        {
            "split": r.split,
            "x": a.scores.split(r.split)["accessibility"].to_numpy(),
            "y": b.scores.split(r.split)["accessibility"].to_numpy(),
            "xlabel": a.label,
            "ylabel": b.label,
            "pearson": r.pearson_r,
            "spearman": r.spearman_r,
            "ceiling": r.ceiling,
        }
        for r in corr.itertuples()
    ]
    drawn = [figures.accessibility_scatter(scatter, folder / f"{stem}_accessibility.png", f"{head}: accessibility")]
    matched = tables["matched"]
    if len(matched):
        panels = []
        n = a.info["members"] + b.info["members"]
        for split, rows in matched.groupby("split", sort=False):
            shown = _spread(list(rows.itertuples()))
            pairs = [(int(r.checkpoint_a), int(r.checkpoint_b)) for r in shown]
            for block, right, counts_a, counts_b in merged_counts(a, b, split, pairs):
                accuracy = np.concatenate([counts_a.member_accuracy(), counts_b.member_accuracy()])
                by_class = np.concatenate([counts_a.class_accuracy(), counts_b.class_accuracy()])
                for i, r in enumerate(shown[: len(block)]):
                    panels.append(
                        {
                            "split": split,
                            "histogram": np.bincount(right[i], minlength=n + 1),
                            "accuracy": accuracy[:, i],
                            "class_accuracy": by_class[:, i],
                            "class_sizes": counts_a.class_sizes,
                            "caption": f"epochs {r.epoch_a:.3g}/{r.epoch_b:.3g}, error {r.error_a:.2f}/{r.error_b:.2f}",
                        }
                    )
                shown = shown[len(block) :]
        drawn.append(
            figures.cross_consistency_histograms(
                panels,
                folder / f"{stem}_cross_consistency.png",
                f"{head}: cross-consistency of the {n} members at accuracy-matched checkpoints",
            )
        )
    if len(tables["easy_sets"]):
        drawn.append(
            figures.easy_set_bars(
                tables["easy_sets"],
                folder / f"{stem}_easy_sets.png",
                f"{head}: easy sets (consistency > {threshold:g})",
                a.name,
                b.name,
            )
        )
    return drawn


def _order_word(spearman_r: float, ceiling: float) -> str:
    if not np.isfinite(spearman_r):
        return "an undefined"
    share = spearman_r / ceiling if np.isfinite(ceiling) and ceiling > 0 else np.nan
    if np.isfinite(share) and share >= 0.9:
        return "the same"
    return "a similar" if spearman_r >= 0.5 else "a weakly related" if spearman_r >= 0.2 else "an unrelated"


def pair_text(a: Collection, b: Collection, tables: dict[str, pd.DataFrame], tol: float, threshold: float) -> str:
    """Sentences and tables for one pair, as printed and as written into report.md."""
    corr, matched, easy = tables["correlations"], tables["matched"], tables["easy_sets"]
    lines = [f"### {a.label} vs {b.label}", ""]
    say = []
    for r in corr.itertuples():
        ceiling = f", against a noise ceiling of {r.ceiling:.2f}" if np.isfinite(r.ceiling) else ""
        labels = (
            "" if r.labels_equal else " (the labels differ: each collection's correctness is against its own labels)"
        )
        say.append(
            f"On the {r.split} split{labels} the two collections learn the {r.examples} examples in "
            f"{_order_word(r.spearman_r, r.ceiling)} order: Spearman r of accessibility {r.spearman_r:.2f}"
            f"{ceiling} (Pearson {r.pearson_r:.2f})."
        )
    if not len(matched):
        say.append(
            f"No checkpoints match within {tol:.0%} mean error, so there is no cross-consistency (the collections "
            "never reach the same accuracy at a recorded checkpoint)."
        )
    lines += [
        " ".join(say),
        "",
        "```",
        f"{'split':6} {'Pearson r':>10} {'p':>8} {'Spearman r':>11} {'p':>8} {'ceiling':>8} {'rel A':>6} {'rel B':>6}",
    ]
    lines += [
        f"{r.split:6} {r.pearson_r:10.3f} {r.pearson_p:8.1e} {r.spearman_r:11.3f} {r.spearman_p:8.1e} {r.ceiling:8.3f} "
        f"{r.reliability_a:6.3f} {r.reliability_b:6.3f}"
        for r in corr.itertuples()
    ]
    if len(matched):
        lines += [
            "",
            f"cross-consistency at checkpoints matched within {tol:.0%} mean error (c=0/c=1: observed / independent "
            "members of the same accuracies):",
            f"{'split':6} {'epoch A':>8} {'epoch B':>8} {'error A':>8} {'error B':>8} {'c=0 obs/ind':>13} {'c=1 obs/ind':>13} {'bimod':>6}",
        ]
        lines += [
            f"{r.split:6} {r.epoch_a:8.2f} {r.epoch_b:8.2f} {r.error_a:8.3f} {r.error_b:8.3f} "
            f"{r.at0_observed:6.3f}/{r.at0_independent:6.3f} {r.at1_observed:6.3f}/{r.at1_independent:6.3f} {r.bimodality:6.3f}"
            for r in matched.itertuples()
        ]
    if len(easy):
        lines += [
            "",
            f"easy sets (consistency > {threshold:g}): examples easy for both / for A only / for B only:",
            f"{'split':6} {'epoch A':>8} {'epoch B':>8} {'both':>6} {'A only':>7} {'B only':>7}",
        ]
        lines += [
            f"{r.split:6} {r.epoch_a:8.2f} {r.epoch_b:8.2f} {r.both:6d} {r.only_a:7d} {r.only_b:7d}"
            for r in easy.itertuples()
        ]
    lines.append("```")
    return "\n".join(lines)


def compare(config: CompareConfig) -> dict[tuple[str, str], dict[str, pd.DataFrame]]:
    """Compare every pair of the given runs; returns their tables by (name A, name B).

    Writes ``comparison.csv``, ``matched.csv``, ``easy_sets.csv``, ``report.md`` and the figures into
    ``config.out`` (default ``<first run>/compare``), and a section into the first run's report.md.
    """
    config.validate()
    runs = [load_collection(r) for r in config.runs]
    pairs = [(a, b) for i, a in enumerate(runs) for b in runs[i + 1 :]]
    for a, b in pairs:  # every pair checked before anything is written
        shared_splits(a, b)
    out = Path(config.out) if config.out else runs[0].path / "compare"
    results, texts, drawn = {}, [], []
    for a, b in pairs:
        tables = compare_pair(a, b, config.tol, config.threshold)
        results[a.name, b.name] = tables
        texts.append(pair_text(a, b, tables, config.tol, config.threshold))
        drawn += pair_figures(a, b, tables, out / "figures", config.threshold)
    for kind in ("correlations", "matched", "easy_sets"):
        frame = pd.concat([t[kind].assign(run_a=a, run_b=b) for (a, b), t in results.items()], ignore_index=True)
        atomic_write_bytes(
            out / f"{'comparison' if kind == 'correlations' else kind}.csv", frame.to_csv(index=False).encode()
        )
    for report in (out / "report.md", runs[0].path / "report.md"):
        images = [f"![{f.stem}]({Path(os.path.relpath(f, report.parent)).as_posix()})" for f in drawn]
        body = "\n\n".join([f"## Comparison with {', '.join(r.name for r in runs[1:])}", *texts, "\n".join(images)])
        write_section(report, "compare-" + "-".join(r.name for r in runs[1:]), body)
    if not config.quiet:
        print("\n\n".join(texts))
        print(f"\nTables: {out}   Figures: {out / 'figures'}")
    return results
