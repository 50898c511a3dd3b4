"""``report.md`` of a run: a few sentences computed from it, then one section per stage.

The score stage writes the opening sentences (how far the members agree beyond their accuracy
and beyond the class-conditional null, how reliable the order is, what is easiest and hardest)
and its own section; ``stats``, ``train`` and ``compare`` each replace or add their own section
(:func:`write_section`), so the report grows with the run and a rerun of a stage does not
duplicate it.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import numpy as np
import pandas as pd

from curriculum.data.factors import UNITS, factor_columns, factor_correlations, factor_sentence, factor_table
from curriculum.data.probes import load_probe, probe_table, shuffled_consensus
from curriculum.reporting import figures
from scoring import agreement
from scoring.files import atomic_write_bytes, updating
from scoring.records import SPLITS
from scoring.run import write_scores
from scoring.scores import Scores
from scoring.stream import DEFAULT_MEMORY_MB, last_predictions
from scoring.summary import checkpoint_summary, format_reliability, format_summary

#: Scores related to a generated dataset's factors in the report.
FACTOR_SCORES = ("accessibility", "confidence")

_SECTION = re.compile(r"<!-- section: (?P<key>[\w./-]+) -->\n.*?<!-- end: (?P=key) -->\n", re.S)


def write_section(report: Path, key: str, text: str, *, opening: str | None = None) -> Path:
    """Put ``text`` into ``report`` as the section ``key``: replacing the section of that key if
    there is one, else appending it; the rest of the report is kept. With ``opening`` (the score
    stage's title and sentences) the report starts anew with it and this section, and every other
    stage's section follows."""
    block = _block(key, text)
    with updating(report.parent):  # stages of one run may finish at the same time
        old = report.read_text() if report.exists() else ""
        if opening is not None:
            others = "".join("\n" + m.group(0) for m in _SECTION.finditer(old) if m.group("key") != key)
            new = opening + block + others
        else:
            found = [m for m in _SECTION.finditer(old) if m.group("key") == key]
            new = (
                old[: found[0].start()] + block + old[found[0].end() :]
                if found
                else old + ("\n" if old else "") + block
            )
        atomic_write_bytes(report, new.encode())
    return report


def _block(key: str, text: str) -> str:
    return f"<!-- section: {key} -->\n{text.rstrip()}\n<!-- end: {key} -->\n"


def _reliability_word(r: float) -> str:
    if not np.isfinite(r):
        return "undefined (a score is constant)"
    return (
        "very reliable"
        if r >= 0.9
        else "reliable"
        if r >= 0.75
        else "moderately reliable"
        if r >= 0.5
        else "unreliable"
    )


def story(
    summary: pd.DataFrame,
    scores: Scores,
    classes: list[str],
    members: int,
    arch: str,
    dataset: str,
    unit: str = "epoch",
) -> list[str]:
    """The opening sentences of a score run's report, each computed from the run. ``unit``: what a
    checkpoint's "epoch" counts (``curriculum learners`` records fractions of the train set)."""

    test = summary[(summary["split"] == "test") & (summary["checkpoint"] > 0)]
    excess = (test["at0_observed"] + test["at1_observed"]) - (test["at0_class_null"] + test["at1_class_null"])
    peak = test.loc[excess.idxmax()]
    last = test.iloc[-1]
    sentences = [
        f"{members} members of `{arch}` on {dataset} reach {last.acc_mean:.1%} +- {last.acc_std:.1%} test accuracy at "
        f"{figures.checkpoint_label(last.epoch, unit)}.",
        f"They agree beyond their accuracy: at {figures.checkpoint_label(peak.epoch, unit)} (accuracy {peak.acc_mean:.1%}) {peak.at1_observed:.1%} of "
        f"the test examples are right for every member and {peak.at0_observed:.1%} for none, where independent members of "
        f"the same accuracies would give {peak.at1_independent:.1%} and {peak.at0_independent:.1%}, and members independent "
        f"given the class (same per-class accuracies) {peak.at1_class_null:.1%} and {peak.at0_class_null:.1%}: "
        f"{excess.max():+.1%} of the examples beyond the class-conditional null.",
    ]
    rel = scores.reliability
    if "accessibility" in rel.index:
        r_train, r_test = (float(rel.loc["accessibility", s]) if s in rel else np.nan for s in SPLITS)
        sentences.append(
            f"The order is {_reliability_word(min(r_train, r_test))}: the split-half reliability of accessibility is "
            f"{r_train:.2f} (train) and {r_test:.2f} (test), the rank correlation a second run of {members} members with "
            "other seeds is expected to reach."
        )
    train = scores.split("train")
    by_class = train.groupby("label")["accessibility"].mean()
    easy, hard = int(by_class.idxmax()), int(by_class.idxmin())
    access = train["accessibility"].to_numpy()
    sentences.append(
        f"Easiest class: {classes[easy]} (mean accessibility {by_class[easy]:.2f}); hardest: {classes[hard]} "
        f"({by_class[hard]:.2f}). {np.mean(access >= 1 - 1e-9):.1%} of the train examples are right for every member at "
        f"every checkpoint after initialisation and {np.mean(access <= 1e-9):.1%} for none at any."
    )
    return sentences


def probe_sentence(table: pd.DataFrame, name: str) -> str:
    """How much the members agree on the probe images, beside the test split, against the shuffled null."""
    probe, test = table.iloc[0], table.iloc[1]
    return (
        f"On {probe['count']} out-of-sample images ({name}) the members give the same label to {probe.unanimous:.1%} "
        f"(mean consensus {probe.consensus:.2f}), where members with the same label frequencies but labels shuffled over "
        f"the images would agree on {probe.unanimous_null:.1%} ({probe.consensus_null:.2f}); on the test split "
        f"{test.unanimous:.1%} ({test.consensus:.2f}) against {test.unanimous_null:.1%} ({test.consensus_null:.2f})."
    )


NOISE_COLUMNS = ("clean_label", "label_flipped")


def noise_columns(clean: np.ndarray, noisy: np.ndarray) -> dict[str, np.ndarray]:
    """A label-noise dataset's train columns: the label before the noise, and whether the noise
    changed it (a replaced label that drew its old class is not flipped)."""
    flipped = np.asarray(clean) != np.asarray(noisy)
    return {"clean_label": np.asarray(clean, np.int64), "label_flipped": flipped.astype(np.float64)}


def write_report(
    run_dir: Path,
    dataset,
    info: dict,
    quiet: bool = False,
    memory_mb: float = DEFAULT_MEMORY_MB,
    timings: dict[str, float] | None = None,
) -> Scores:
    """Turn a finished record into ``scores.parquet``, ``summary.csv``, figures and ``report.md``,
    and print the opening sentences and the per-checkpoint summary. ``memory_mb`` bounds the
    streaming score pass; ``timings``, when given, receives the seconds spent scoring, drawing
    the figures and writing the report."""
    run_dir = Path(run_dir)
    timings = {} if timings is None else timings
    clock = time.perf_counter()
    epochs = [c["epoch"] for c in info["checkpoints"]]
    parts = {split: dataset.split(split) for split in SPLITS}
    factors = {split: factor_columns(part.factors, dataset.name) for split, part in parts.items() if part.factors}
    extra = {split: dict(columns) for split, (columns, _) in factors.items()}
    directions = {name: way for _, ways in factors.values() for name, way in ways.items()}
    if dataset.clean_train_labels is not None:  # +noiseP: which train labels were flipped, to evaluate scores
        extra.setdefault("train", {}).update(noise_columns(dataset.clean_train_labels, dataset.train.labels))
        directions.update(dict.fromkeys(NOISE_COLUMNS))
    scores, counts = write_scores(
        run_dir,
        info,
        {split: part.labels for split, part in parts.items()},
        ids={split: part.ids for split, part in parts.items()},
        hashes={split: part.content_hashes for split, part in parts.items()},
        extra=extra,
        directions=directions,
        memory_mb=memory_mb,
    )
    summary = checkpoint_summary(counts, epochs)
    atomic_write_bytes(run_dir / "summary.csv", summary.to_csv(index=False).encode())
    timings["scoring"], clock = time.perf_counter() - clock, time.perf_counter()
    members, arch = info["members"], info["arch"]
    unit = info.get("checkpoint_unit", "epoch")  # curriculum learners: fractions of the train set
    head = f"{dataset.name}, {members} x {arch}"
    train = scores.split("train")
    folder = run_dir / "figures"
    drawn = [
        figures.consistency_histograms(
            counts,
            epochs,
            folder / "consistency_histograms.png",
            f"{head}: consistency over training (N = {members} members; "
            f"{len(train)} train / {counts['test'].examples} test examples)",
            unit,
        ),
        figures.agreement_curve(
            summary, folder / "agreement_curve.png", f"{head}: TP-agreement against accuracy", unit
        ),
        figures.gallery(
            dataset.train.images,
            dataset.train.labels,
            train["accessibility"].to_numpy(),
            list(dataset.classes),
            folder / "gallery.png",
            f"{head}: easiest and hardest train examples",
        ),
        figures.data_map(
            train["confidence"].to_numpy(),
            train["variability"].to_numpy(),
            train["correctness"].to_numpy(),
            folder / "data_map.png",
            f"{head}: data map of {len(train)} train examples",
        ),
    ]
    sentences = story(summary, scores, list(dataset.classes), members, arch, dataset.name, unit)
    probe = load_probe(run_dir, 0, members)
    if probe is not None:
        name = info["settings"]["probe"]
        last = last_predictions(run_dir, "test", members, len(epochs), len(parts["test"].labels))
        sets = {f"probe: {name}": probe, "test split": last}
        table = probe_table(sets)
        drawn.append(
            figures.consensus_histograms(
                {k: (agreement.consensus(v[:, None, :])[0], shuffled_consensus(v)) for k, v in sets.items()},
                members,
                folder / "probe_consensus.png",
                f"{head}: consensus on out-of-sample images",
            )
        )
        sentences.append(probe_sentence(table, name))
    timings["figures"], clock = time.perf_counter() - clock, time.perf_counter()
    known = []
    if factors:
        correlations = pd.concat(
            [factor_correlations(scores.table, list(FACTOR_SCORES), scores.directions, split) for split in factors],
            ignore_index=True,
        )
        atomic_write_bytes(run_dir / "factors.csv", correlations.to_csv(index=False).encode())
        drawing = time.perf_counter()
        drawn.append(
            figures.factor_figure(
                scores.table,
                correlations,
                "accessibility",
                UNITS,
                folder / "factors.png",
                f"{head}: accessibility against the factors that generated the examples",
            )
        )
        timings["figures"] += time.perf_counter() - drawing
        clock += time.perf_counter() - drawing  # the figure is not report time
        sentences.append(factor_sentence(correlations))
        known = [
            "",
            "Known difficulty: Spearman r of each score with each generating factor (a tick: the sign "
            "construction predicts; none: a nuisance factor); `factor_*` columns of scores.parquet, factors.csv.",
            "",
            factor_table(correlations),
        ]
    text = format_summary(summary)
    reliability = format_reliability(scores.reliability)
    reliability_title = (
        f"Reliability of each score's order: split-half Spearman, Spearman-Brown corrected to "
        f"{members} members (what a second run with another --seed is expected to reach)"
    )
    legend = (
        "c=0/c=1: fraction of examples no/every member gets right: observed / independent members of the same "
        "accuracies / independent given the class, with the same per-class accuracies"
    )
    score_section = "\n".join(
        [
            "## Score run",
            "",
            f"{members} members of `{arch}`, {len(epochs)} checkpoints (epoch {epochs[-1]:g} last); dataset fingerprint "
            f"`{dataset.fingerprint[:16]}`. {legend}.",
            "",
            "```",
            text,
            "```",
            "",
            reliability_title + ":",
            "",
            "```",
            reliability,
            "```",
            *known,
            "",
            *[f"![{f.stem}](figures/{f.name})" for f in drawn],
        ]
    )
    report = write_section(
        run_dir / "report.md",
        "score",
        score_section,
        opening=f"# {dataset.name}: {members} x {arch}\n\n{' '.join(sentences)}\n\n",
    )
    timings["report"] = time.perf_counter() - clock
    if not quiet:
        print("\n" + "\n".join(sentences))
        print(f"\nPer checkpoint ({legend}):")
        print(text)
        print(f"\n{reliability_title}:")
        print(reliability)
        if known:
            print("\n" + "\n".join(known[1:]))
        print(f"\nScores: {run_dir / 'scores.parquet'}   Report: {report}   Figures: {folder}")
    return scores
