"""The ``curriculum compare`` stage: put collections of networks side by side (seed 000, section 4).

For every pair of runs and every split whose images both runs share:

- accessibility correlation, Pearson and Spearman (:func:`scoring.agreement.accessibility_correlation`),
  beside the noise ceiling ``sqrt(rel_a * rel_b)`` from each run's split-half reliability of
  accessibility: two collections that learn in exactly the same order, up to the sampling noise
  of their finite sizes, would correlate about this much (Spearman; the classic attenuation bound);
- cross-consistency at accuracy-matched checkpoints (:func:`scoring.agreement.match_checkpoints`,
  within ``tol`` of mean error, initialisation left out; :func:`scoring.agreement.cross_consistency`)
  with the fractions at 0 and 1 beside independent members of the same accuracies;
- easy-set overlap per checkpoint (:func:`scoring.agreement.compare_easy_sets`, seed 000 Fig. 7b),
  at the epochs both runs recorded (else at the matched checkpoints).

Runs match by their images, not their labels: ``run.json`` stores a fingerprint of each split's
images, so a label-noise variant compares with its clean run (each collection's correctness is
taken against its own labels), partitions of a train set compare on their shared test split, and
runs of different data are refused.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from curriculum.reporting import figures
from curriculum.config.stages import CompareConfig
from curriculum.reporting.report import write_section
from scoring import agreement
from scoring.errors import UserError
from scoring.files import atomic_write_bytes
from scoring.records import SPLITS, Record, load_record, read_run_info
from scoring.scores import Scores
from stats.distributions import bimodality, spearman


@dataclass
class Collection:
    """One finished score run: its run.json, scores and records."""

    path: Path
    info: dict
    scores: Scores
    records: dict[str, Record]

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def label(self) -> str:
        return f"{self.name} ({self.info['members']} x {self.info['arch']})"

    @property
    def epochs(self) -> list[float]:
        return [c["epoch"] for c in self.info["checkpoints"]]


def load_collection(path: str | Path) -> Collection:
    path = Path(path)
    info = read_run_info(path)
    if info is None or info.get("status") != "complete" or not (path / "scores.parquet").exists():
        raise UserError(f"{path} holds no finished score run; run `curriculum score --out {path}` (or `curriculum learners`) first.")
    scores = Scores.load(path)
    records = {split: load_record(path, split, scores.split(split)["label"].to_numpy(), info["members"], len(info["checkpoints"]))
               for split in SPLITS}
    return Collection(path, info, scores, records)


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
        raise UserError(f"{a.path} ({data_a['name']}) and {b.path} ({data_b['name']}) hold different images; compare runs "
                        "of the same dataset (other seeds, architectures, learners, label noise or train partitions of it).")
    return same


def _errors(correct: np.ndarray) -> np.ndarray:
    return 1.0 - agreement.accuracy_mean_std(correct)[0]


def _matched(correct_a: np.ndarray, correct_b: np.ndarray, tol: float) -> list[tuple[int, int]]:
    """Accuracy-matched checkpoint pairs after initialisation (at initialisation every member
    predicts nearly one class, so agreement there is class bias, as for accessibility)."""
    pairs = agreement.match_checkpoints(_errors(correct_a)[1:], _errors(correct_b)[1:], tol)
    return [(ia + 1, ib + 1) for ia, ib in pairs]


def _easy_pairs(a: Collection, b: Collection, matched: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Checkpoint pairs for the easy-set comparison: the epochs both runs recorded (seed 000
    compares linear and non-linear networks epoch by epoch), else the accuracy-matched ones."""
    index_b = {round(e, 6): i for i, e in enumerate(b.epochs)}
    common = [(i, index_b[round(e, 6)]) for i, e in enumerate(a.epochs) if i > 0 and round(e, 6) in index_b]
    return common or matched


def compare_pair(a: Collection, b: Collection, tol: float = 0.01, threshold: float = 0.9) -> dict[str, pd.DataFrame]:
    """Tables ``correlations``, ``matched`` and ``easy_sets`` for one pair (see the module docstring)."""
    correlations, matched_rows, easy_rows = [], [], []
    for split in shared_splits(a, b):
        ca, cb = a.records[split].correct, b.records[split].correct
        if ca.shape[2] != cb.shape[2]:
            raise UserError(f"{a.path} and {b.path} score {ca.shape[2]} and {cb.shape[2]} {split} examples; "
                            "rerun the older one with this version of `curriculum score`.")
        pearson_r, pearson_p = agreement.accessibility_correlation(ca, cb)
        spearman_r, spearman_p = spearman(agreement.accessibility(ca), agreement.accessibility(cb))
        rel_a, rel_b = (float(c.scores.reliability.loc["accessibility", split]) for c in (a, b))
        correlations.append({
            "split": split, "examples": ca.shape[2], "labels_equal": bool(np.array_equal(a.records[split].labels, b.records[split].labels)),
            "pearson_r": pearson_r, "pearson_p": pearson_p, "spearman_r": spearman_r, "spearman_p": spearman_p,
            "reliability_a": rel_a, "reliability_b": rel_b, "ceiling": float(np.sqrt(rel_a * rel_b)) if rel_a > 0 and rel_b > 0 else np.nan,
        })
        pairs = _matched(ca, cb, tol)
        err_a, err_b = _errors(ca), _errors(cb)
        if pairs:
            cross = agreement.cross_consistency(ca, cb, pairs)
            for (ia, ib), row in zip(pairs, cross):
                acc = np.concatenate([ca[:, ia].mean(1), cb[:, ib].mean(1)])
                matched_rows.append({
                    "split": split, "checkpoint_a": ia, "checkpoint_b": ib, "epoch_a": a.epochs[ia], "epoch_b": b.epochs[ib],
                    "error_a": err_a[ia], "error_b": err_b[ib], "mean_cross_consistency": row.mean(),
                    "at0_observed": np.mean(row == 0), "at0_independent": np.prod(1 - acc),
                    "at1_observed": np.mean(row == 1), "at1_independent": np.prod(acc), "bimodality": bimodality(row),
                })
        easy = _easy_pairs(a, b, pairs)
        if easy:
            ia, ib = (np.array(side) for side in zip(*easy))
            both, only_a, only_b = agreement.compare_easy_sets(agreement.consistency(ca)[ia], agreement.consistency(cb)[ib], threshold)
            easy_rows += [{"split": split, "epoch_a": a.epochs[i], "epoch_b": b.epochs[j], "examples": ca.shape[2],
                           "both": int(x), "only_a": int(y), "only_b": int(z)}
                          for i, j, x, y, z in zip(ia, ib, both, only_a, only_b)]
    return {"correlations": pd.DataFrame(correlations), "matched": pd.DataFrame(matched_rows), "easy_sets": pd.DataFrame(easy_rows)}


def _spread(items: list, count: int = 4) -> list:
    """Up to ``count`` items evenly spread over ``items``, first and last included."""
    return [items[i] for i in sorted({round(x) for x in np.linspace(0, len(items) - 1, min(count, len(items)))})]


def pair_figures(a: Collection, b: Collection, tables: dict[str, pd.DataFrame], folder: Path, threshold: float) -> list[Path]:
    head = f"{a.info['dataset']['name']}: {a.label} vs {b.label}"
    stem = f"{a.name}_vs_{b.name}"
    corr = tables["correlations"]
    scatter = [{"split": r.split, "x": agreement.accessibility(a.records[r.split].correct),
                "y": agreement.accessibility(b.records[r.split].correct), "xlabel": a.label, "ylabel": b.label,
                "pearson": r.pearson_r, "spearman": r.spearman_r, "ceiling": r.ceiling} for r in corr.itertuples()]
    drawn = [figures.accessibility_scatter(scatter, folder / f"{stem}_accessibility.png", f"{head}: accessibility")]
    matched = tables["matched"]
    if len(matched):
        panels = []
        for split, rows in matched.groupby("split", sort=False):
            for r in _spread(list(rows.itertuples())):
                merged = np.concatenate([a.records[split].correct[:, r.checkpoint_a], b.records[split].correct[:, r.checkpoint_b]])
                panels.append({"split": split, "correct": merged, "labels": a.records[split].labels,
                               "caption": f"epochs {r.epoch_a:.3g}/{r.epoch_b:.3g}, error {r.error_a:.2f}/{r.error_b:.2f}"})
        n = a.info["members"] + b.info["members"]
        drawn.append(figures.cross_consistency_histograms(panels, folder / f"{stem}_cross_consistency.png",
                                                          f"{head}: cross-consistency of the {n} members at accuracy-matched checkpoints"))
    if len(tables["easy_sets"]):
        drawn.append(figures.easy_set_bars(tables["easy_sets"], folder / f"{stem}_easy_sets.png",
                                           f"{head}: easy sets (consistency > {threshold:g})", a.name, b.name))
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
        labels = "" if r.labels_equal else " (the labels differ: each collection's correctness is against its own labels)"
        say.append(f"On the {r.split} split{labels} the two collections learn the {r.examples} examples in "
                   f"{_order_word(r.spearman_r, r.ceiling)} order: Spearman r of accessibility {r.spearman_r:.2f}"
                   f"{ceiling} (Pearson {r.pearson_r:.2f}).")
    if not len(matched):
        say.append(f"No checkpoints match within {tol:.0%} mean error, so there is no cross-consistency (the collections "
                   "never reach the same accuracy at a recorded checkpoint).")
    lines += [" ".join(say), "", "```", f"{'split':6} {'Pearson r':>10} {'p':>8} {'Spearman r':>11} {'p':>8} {'ceiling':>8} "
              f"{'rel A':>6} {'rel B':>6}"]
    lines += [f"{r.split:6} {r.pearson_r:10.3f} {r.pearson_p:8.1e} {r.spearman_r:11.3f} {r.spearman_p:8.1e} {r.ceiling:8.3f} "
              f"{r.reliability_a:6.3f} {r.reliability_b:6.3f}" for r in corr.itertuples()]
    if len(matched):
        lines += ["", f"cross-consistency at checkpoints matched within {tol:.0%} mean error (c=0/c=1: observed / independent "
                  "members of the same accuracies):",
                  f"{'split':6} {'epoch A':>8} {'epoch B':>8} {'error A':>8} {'error B':>8} {'c=0 obs/ind':>13} {'c=1 obs/ind':>13} {'bimod':>6}"]
        lines += [f"{r.split:6} {r.epoch_a:8.2f} {r.epoch_b:8.2f} {r.error_a:8.3f} {r.error_b:8.3f} "
                  f"{r.at0_observed:6.3f}/{r.at0_independent:6.3f} {r.at1_observed:6.3f}/{r.at1_independent:6.3f} {r.bimodality:6.3f}"
                  for r in matched.itertuples()]
    if len(easy):
        lines += ["", f"easy sets (consistency > {threshold:g}): examples easy for both / for A only / for B only:",
                  f"{'split':6} {'epoch A':>8} {'epoch B':>8} {'both':>6} {'A only':>7} {'B only':>7}"]
        lines += [f"{r.split:6} {r.epoch_a:8.2f} {r.epoch_b:8.2f} {r.both:6d} {r.only_a:7d} {r.only_b:7d}" for r in easy.itertuples()]
    lines.append("```")
    return "\n".join(lines)


def compare(config: CompareConfig) -> dict[tuple[str, str], dict[str, pd.DataFrame]]:
    """Compare every pair of the given runs; returns their tables by (name A, name B).

    Writes ``comparison.csv``, ``matched.csv``, ``easy_sets.csv``, ``report.md`` and the figures into
    ``config.out`` (default ``<first run>/compare``), and a section into the first run's report.md.
    """
    config.validate()
    runs = [load_collection(r) for r in config.runs]
    pairs = [(a, b) for i, a in enumerate(runs) for b in runs[i + 1:]]
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
        atomic_write_bytes(out / f"{'comparison' if kind == 'correlations' else kind}.csv", frame.to_csv(index=False).encode())
    for report in (out / "report.md", runs[0].path / "report.md"):
        images = [f"![{f.stem}]({Path(os.path.relpath(f, report.parent)).as_posix()})" for f in drawn]
        body = "\n\n".join([f"## Comparison with {', '.join(r.name for r in runs[1:])}", *texts, "\n".join(images)])
        write_section(report, "compare-" + "-".join(r.name for r in runs[1:]), body)
    if not config.quiet:
        print("\n\n".join(texts))
        print(f"\nTables: {out}   Figures: {out / 'figures'}")
    return results
