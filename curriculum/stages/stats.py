"""The ``curriculum stats`` stage: image statistics of a dataset and their relation to learning order.

Statistics are computed once per dataset fingerprint and cached (``<cache>/statistics/<fp>.npz``),
so a second call is instant. With a score run of the same dataset, each statistic becomes a column
of ``scores.parquet``, and the run gains ``statistics.csv`` (mean, std, Spearman r with
accessibility and its p-value), ``statistics_curves.csv`` (mean over the examples all members get
right, per checkpoint; Pliushch et al. 2022, Fig. 4) and ``figures/statistics_vs_agreement.png``. For a
generated dataset (``shapes``, ...) each statistic is also correlated with the factors that made the
examples (``statistics_factors.csv``; printed even without a score run).
"""

from __future__ import annotations

import logging
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from curriculum.config.options import check_output_dir
from curriculum.config.stages import StatsConfig
from curriculum.data.datasets import Dataset, default_cache_dir, load_dataset
from curriculum.data.factors import factor_columns, factor_correlations, factor_table
from curriculum.reporting.figures import statistic_label, statistics_figure
from curriculum.reporting.report import write_section
from curriculum.reporting.statistics_relation import statistic_correlations, statistic_curves
from scoring.errors import CorruptFileError, UserError
from scoring.files import atomic_write, atomic_write_bytes, locked, reading
from scoring.records import SPLITS, check_complete, default_run_dir, read_run_info
from scoring.scores import Scores
from stats.images import STATISTICS, compute_statistics

ENTROPY_WINDOW = 10  # Pliushch et al.'s window
SUMMARY_COLUMNS = ("split", "checkpoint", "epoch", "acc_mean", "tpa")
FACTORS_TITLE = (
    "Spearman r of each image statistic with each factor that generated the examples (statistics_factors.csv)"
)

log = logging.getLogger("curriculum.stats")


def entropy_window(dataset: Dataset) -> int:
    """The seed's 10 x 10 entropy window, shrunk to the image for smaller images (digits is 8 x 8)."""
    h, w, _ = dataset.image_shape
    return min(ENTROPY_WINDOW, h, w)


def dataset_statistics(
    dataset: Dataset, workers: int | None = None, cache_dir: str | Path | None = None
) -> dict[str, dict[str, np.ndarray]]:
    """``{split: {statistic: values [M]}}`` for every statistic of :data:`stats.images.STATISTICS`."""
    window = entropy_window(dataset)
    path = Path(cache_dir or default_cache_dir()) / "statistics" / f"{dataset.fingerprint}-w{window}.npz"
    if path.exists():
        try:
            with (
                reading(path, "it is recomputed", errors=(OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile)),
                np.load(path) as cached,
            ):
                return {split: {name: cached[f"{split}/{name}"] for name in STATISTICS} for split in SPLITS}
        except CorruptFileError as err:  # a cache is recomputable: say so, then replace it
            log.warning("%s", err)
    try:
        values = {
            split: compute_statistics(dataset.split(split).images, workers=workers, window=window) for split in SPLITS
        }
    except ValueError as err:  # stats raises ValueError (it sits below scoring's UserError)
        raise UserError(str(err)) from None
    flat = {f"{split}/{name}": v for split, named in values.items() for name, v in named.items()}
    atomic_write(path, lambda handle: np.savez(handle, **flat))
    return values


def read_run(run_dir: Path, dataset: Dataset) -> tuple[Scores, dict, pd.DataFrame]:
    """Everything ``stats`` needs from a score run (scores, run.json, summary), read and checked
    before anything is computed or written; the record is checked complete here and read later,
    a block of checkpoints at a time."""
    scores = Scores.load(run_dir)
    scores.check_fingerprint(dataset.fingerprint, dataset.name)
    info = read_run_info(run_dir)
    if info is None:
        raise UserError(
            f"{run_dir} holds scores but no run.json; delete {run_dir} and run `curriculum score` again to recompute it."
        )
    summary_path = run_dir / "summary.csv"
    rewrite = (
        f"run `curriculum score --dataset {dataset.name} --out {run_dir}` again with the run's settings to rewrite it"
    )
    if not summary_path.exists():
        raise UserError(f"{run_dir} has no summary.csv; {rewrite}.")
    with reading(summary_path, rewrite):
        summary = pd.read_csv(summary_path)
        if not set(SUMMARY_COLUMNS) <= set(summary.columns):
            raise ValueError("summary.csv lacks columns")
    check_complete(run_dir, info["members"], len(info["checkpoints"]))
    return scores, info, summary


def statistics_vs_factors(dataset: Dataset, values: dict[str, dict[str, np.ndarray]]) -> pd.DataFrame | None:
    """Spearman r of every statistic with every generating factor, per split (None for a dataset
    without factors): how well a statistic measures a difficulty known by construction."""
    tables = []
    for split in SPLITS:
        part = dataset.split(split)
        if part.factors:
            columns, directions = factor_columns(part.factors, dataset.name)
            table = pd.DataFrame({"split": split, **columns, **values[split]})
            tables.append(factor_correlations(table, list(values[split]), directions, split))
    return pd.concat(tables, ignore_index=True) if tables else None


def format_table(table: pd.DataFrame) -> str:
    lines = [f"{'statistic':10} {'mean +- std':>22}  {'Spearman r':>10}  {'p-value':>9}"]
    for row in table.itertuples():
        r = f"{row.spearman_r:+10.3f}" if "spearman_r" in table else f"{'-':>10}"
        p = f"{row.p_value:9.1e}" if "p_value" in table else f"{'-':>9}"
        lines.append(f"{row.statistic:10} {row.mean:>10.3f} +- {row.std:<8.3f}  {r}  {p}")
    return "\n".join(lines)


def statistics_section(table: pd.DataFrame, window: int, figure: Path, factors: pd.DataFrame | None) -> str:
    """The report section of ``curriculum stats``: a sentence on the strongest relation, the table."""
    strongest = table.iloc[table["spearman_r"].abs().argmax()]
    rows = [
        f"| {statistic_label(r.statistic)} | {r.mean:.3f} +- {r.std:.3f} | {r.spearman_r:+.3f} | {r.p_value:.1e} |"
        for r in table.itertuples()
    ]
    return "\n".join(
        [
            "## Image statistics",
            "",
            f"Of the image statistics, {statistic_label(strongest.statistic)} goes with the learning order most strongly: "
            f"Spearman r = {strongest.spearman_r:+.2f} with accessibility over the train examples "
            f"({'easier' if strongest.spearman_r > 0 else 'harder'} examples have higher values; entropy window "
            f"{window}x{window}).",
            "",
            "| statistic | mean +- std (train) | Spearman r with accessibility | p-value |",
            "| --- | --- | --- | --- |",
            *rows,
            "",
            *([] if factors is None else [FACTORS_TITLE + ":", "", factor_table(factors), ""]),
            f"![statistics]({figure.as_posix()})",
        ]
    )


def image_statistics(config: StatsConfig) -> pd.DataFrame:
    """Compute (or read) the statistics and, when a score run exists, relate them to it.

    Returns the printed table: per statistic, mean and std over the train split and, with a score
    run, the Spearman correlation with accessibility and its p-value.
    """
    config.validate()
    dataset = load_dataset(
        config.dataset, label_noise=config.label_noise, noise_seed=config.seed, data_dir=config.data_dir
    )
    window = entropy_window(dataset)
    names = list(STATISTICS)
    run_dir = Path(config.run) if config.run else default_run_dir(dataset.name)
    has_run = (run_dir / "scores.parquet").exists()
    if config.run and not has_run:
        raise UserError(
            f"No scores at {run_dir}; run `curriculum score --dataset {config.dataset} --out {run_dir}` first."
        )
    if not has_run:
        values = dataset_statistics(dataset, config.workers)
        table = pd.DataFrame(
            [
                {"statistic": name, "mean": float(np.mean(v)), "std": float(np.std(v))}
                for name, v in values["train"].items()
            ]
        )
        factors = statistics_vs_factors(dataset, values)
        if not config.quiet:
            print(format_table(table))
            if factors is not None:
                print(f"\n{FACTORS_TITLE}:\n{factor_table(factors)}")
            print(
                f"\nNo score run at {run_dir}: run `curriculum score --dataset {config.dataset}` to relate these to learning order."
            )
        return table
    check_output_dir(run_dir, "--run")
    with locked(run_dir, "--run"):
        # read and checked before the statistics are computed, so a wrong run costs nothing
        scores, info, summary = read_run(run_dir, dataset)
        values = dataset_statistics(dataset, config.workers)
        for split in SPLITS:
            scores.add_columns(split, values[split])
        scores.save(run_dir / "scores.parquet")
        labels = {split: dataset.split(split).labels for split in SPLITS}
        curves = statistic_curves(run_dir, info, labels, values)
        table = statistic_correlations(scores.table, names)
        atomic_write_bytes(run_dir / "statistics_curves.csv", curves.to_csv(index=False).encode())
        atomic_write_bytes(run_dir / "statistics.csv", table.to_csv(index=False).encode())
        factors = statistics_vs_factors(dataset, values)
        if factors is not None:
            atomic_write_bytes(run_dir / "statistics_factors.csv", factors.to_csv(index=False).encode())
        title = f"{dataset.name}, {info['members']} x {info['arch']}: image statistics of the agreed examples"
        figure = statistics_figure(summary, curves, table, run_dir / "figures" / "statistics_vs_agreement.png", title)
        write_section(
            run_dir / "report.md", "stats", statistics_section(table, window, figure.relative_to(run_dir), factors)
        )
    if not config.quiet:
        print(
            f"Image statistics of {dataset.name} (train split; entropy window {window}x{window}) "
            "and their rank correlation with accessibility:"
        )
        print(format_table(table))
        if factors is not None:
            print(f"\n{FACTORS_TITLE}:\n{factor_table(factors)}")
        print(f"\nScores: {run_dir / 'scores.parquet'} (+ {len(names)} columns)   Figure: {figure}")
    return table
