"""The curriculum stage: train new models easy-first, beside honest controls.

Every order (``curriculum``, ``random``, ``anti``, ``none`` by default) is trained for the same
seeds with the same step budget, learning-rate schedule, architecture and batch sampler; only the
order of the examples and whether the pacing applies differ. Seed s gives every order the same
initial weights and the same batch draws, so gains are paired comparisons (Wu et al. 2021 found
a random order with the same pacing often does as well as a curriculum; the table shows both).
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from curriculum.config.options import check_output_dir, to_dict
from curriculum.config.stages import SELF_TAUGHT, TrainConfig
from curriculum.data.datasets import Dataset, load_dataset
from curriculum.pacing import make_pacing
from curriculum.reporting.figures import learning_curves_figure
from curriculum.reporting.order_comparison import compare_orders, format_comparison
from curriculum.reporting.report import write_section
from curriculum.sampler import CurriculumBatchSampler
from curriculum.training.engine import (
    DeviceData,
    Diverged,
    FiniteGuard,
    MemberSetup,
    batches_per_epoch,
    fallback_note,
    learning_rate,
    make_accelerator,
    make_members,
    predict,
    resolve_arch,
    resolve_precision,
    resolve_stacking,
    run_lock,
    train_steps,
)
from curriculum.training.members import Members
from curriculum.training.policy import DevicePolicy, device_policy
from scoring.errors import UserError
from scoring.files import LOCK_NAME, atomic_write_bytes, atomic_write_json, read_json, writing
from scoring.formats import load_external_scores
from scoring.ordering import order_examples, uses_pacing
from scoring.records import default_run_dir
from scoring.scores import Scores

RESULT_FILES = ("curves.csv", "results.csv", "figures/learning_curves.png")


@dataclass
class Plan(MemberSetup):
    """What every order shares: the members' setup, the step budget and the schedule."""

    steps: int
    eval_steps: list[int]
    decay_every: int


def make_plan(config: TrainConfig, dataset: Dataset, policy: DevicePolicy, warn=None) -> Plan:
    m = len(dataset.train.labels)
    if config.batch_size > m:
        raise UserError(f"--batch-size {config.batch_size} exceeds the {m} train examples; use at most {m}.")
    steps = config.steps or 20 * batches_per_epoch(m, config.batch_size)
    every = config.eval_every_steps or max(1, steps // 20)
    eval_steps = sorted({*range(every, steps, every), steps})
    arch = resolve_arch(config, dataset)
    precision = resolve_precision(config, policy)
    stacked = resolve_stacking(config, arch, dataset, policy, precision, warn=warn) is not None
    return Plan(
        config,
        dataset,
        DeviceData(dataset, policy.device, policy),
        arch,
        precision,
        stacked,
        steps,
        eval_steps,
        config.lr_decay_steps or max(1, steps // 4),
    )


class DeviceBatches:
    """Every run's sampler batches as index tensors [K, B] on the device, prepared ``chunk``
    steps at a time: one host-to-device copy per chunk (from pinned memory, asynchronous, where
    the device policy says so: on a GPU) instead of a blocking copy every step."""

    def __init__(self, samplers: list[CurriculumBatchSampler], policy: DevicePolicy, chunk: int = 1024):
        self.samplers, self.policy, self.chunk = samplers, policy, chunk
        self.start, self.indices = 0, torch.empty(0, len(samplers), samplers[0].batch_size, dtype=torch.long)

    def __call__(self, step: int) -> torch.Tensor:
        if not self.start <= step < self.start + len(self.indices):
            stop = min(step + self.chunk, len(self.samplers[0]))
            host = torch.from_numpy(np.stack([sampler.batches(step, stop) for sampler in self.samplers], axis=1))
            self.start, self.indices = step, self.policy.to_device(host)
        return self.indices[step - self.start]


def train_runs(
    config: TrainConfig,
    plan: Plan,
    samplers: list[CurriculumBatchSampler],
    seeds: list[int],
    labels: list[str],
    progress: tqdm | None = None,
) -> tuple[Members, np.ndarray, np.ndarray]:
    """Train one model per (sampler, seed) as one group; returns the group, every run's test
    accuracy at every eval step [K, evals] and its final test predictions [K, M_test]. ``seed``
    alone decides a run's initial weights, augmentations and dropout; ``labels`` name the runs."""
    group = make_members(plan, seeds)
    batches = DeviceBatches(samplers, plan.data.policy)
    guard = FiniteGuard(len(seeds), plan.data.policy)
    lr = lambda step: learning_rate(config, step, plan.steps, plan.decay_every)  # noqa: E731
    test_labels = plan.data.labels["test"]
    accuracies, start = [], 0
    for stop in plan.eval_steps:
        try:
            train_steps(group, plan.data, start, stop, batches, lr, config.augment, guard)
            guard.check(stop)
        except Diverged as err:
            raise err.user_error(
                f"The {labels[err.member]} run (seed {seeds[err.member]})",
                f"at step {err.step}",
                config,
                plan.precision,
                "nothing was written.",
            ) from None
        pred = predict(group, plan.data, "test")["pred"]
        accuracies.append((pred == test_labels).float().mean(1))
        if progress is not None:
            progress.update((stop - start) * len(seeds))
        start = stop
    return group, torch.stack(accuracies, 1).cpu().numpy(), pred.cpu().numpy()


def given_scores(config: TrainConfig, dataset: Dataset, run_dir: Path | None) -> tuple[np.ndarray, str, str] | None:
    """Per-train-example scores to order by, which end is easier ("higher"/"lower"), and a description;
    None for self-taught scoring, which must train first. Read before any training starts, so
    that a wrong file or run fails at once."""
    labels = dataset.train.labels
    if config.scores_file:
        column = None if config.by == TrainConfig.by else config.by  # the default: the file's own score
        values, easier, matched = load_external_scores(
            config.scores_file,
            labels,
            ids=dataset.train.ids,
            column=column,
            direction=config.scores_direction,
            dataset=dataset.name,
        )
        matched = matched.removeprefix(f"{config.scores_file}: ").rstrip(".")
        return values, easier, f"scores file {config.scores_file} ({easier} = easier; {matched})"
    if run_dir is None:
        return None
    scores = Scores.load(run_dir)
    scores.check_fingerprint(dataset.fingerprint, dataset.name)
    values = scores.column(config.by, "train")
    direction = scores.directions.get(config.by)
    if direction is None:
        raise UserError(
            f"Score column '{config.by}' has no easier direction; choose another --by or pass --scores-file."
        )
    return values, direction, f"'{config.by}' of {run_dir}"


def self_taught_scores(config: TrainConfig, plan: Plan, progress: tqdm | None) -> tuple[np.ndarray, str, str]:
    """Hacohen & Weinshall's self-taught scoring: a vanilla model of the same architecture,
    trained with the same budget, ranks the train set by its P(true class) (higher = easier)."""
    seed = config.seed + 10_000
    sampler = CurriculumBatchSampler(
        np.arange(len(plan.dataset.train.labels)), None, config.batch_size, plan.steps, seed=seed
    )
    group, _, _ = train_runs(config, plan, [sampler], [seed], [SELF_TAUGHT], progress)
    return predict(group, plan.data, "train")["p_true"][0].cpu().numpy(), "higher", "self-taught P(true class)"


def build_orders(
    config: TrainConfig, kinds: list[str], ranking: tuple[np.ndarray, str, str], labels: np.ndarray
) -> dict[tuple[str, int], np.ndarray]:
    """The example order of every (order kind, seed) run."""
    scores, easier, _ = ranking
    return {
        (kind, seed): order_examples(scores, labels, kind, easier=easier, balanced=config.balanced, seed=seed)
        for kind in kinds
        for seed in range(config.seed, config.seed + config.seeds)
    }


def resolve_scores_run(config: TrainConfig, dataset: Dataset) -> Path | None:
    """The score run to order by (None when the order comes from elsewhere), checked to exist."""
    if config.scores_file or config.by == SELF_TAUGHT:
        return None
    run_dir = Path(config.scores) if config.scores else default_run_dir(dataset.name)
    if not (run_dir / "scores.parquet").exists():
        raise UserError(
            f"No scores at {run_dir}; run `curriculum score --dataset {config.dataset}"
            f"{' --out ' + str(run_dir) if config.scores else ''}` first, or pass --by self-taught or --scores-file."
        )
    return run_dir


def default_out(config: TrainConfig, run_dir: Path) -> Path:
    """``<run>/curriculum/<pacing>`` when ordering by accessibility, else with the source appended
    (``exp-self-taught``, ``exp-cscores``), so runs ordered differently do not overwrite each other."""
    source = Path(config.scores_file).stem if config.scores_file else config.by
    name = config.pacing if source == "accessibility" else f"{config.pacing}-{source}"
    return run_dir / "curriculum" / name


def order_digest(ranking: tuple[np.ndarray, str, str] | None) -> str | None:
    """A hash of the scores an order is built from (None for self-taught scores, which the
    settings decide): results of an output are never paired with other scores of the same path."""
    if ranking is None:
        return None
    values, easier, _ = ranking
    return hashlib.sha256(np.ascontiguousarray(values, dtype=np.float64).tobytes() + easier.encode()).hexdigest()


def check_output(out: Path, settings: dict) -> None:
    """Refuse an output directory that holds results of other settings, or anything else."""
    config_path = out / "config.json"
    if config_path.exists():
        old = read_json(config_path, f"delete {out} or pass another --out")
        changed = sorted(key for key in settings if old.get(key) != settings[key])
        if changed:
            raise UserError(
                f"Output directory {out} holds results of other settings ({', '.join(changed)}); "
                f"pass another --out or delete {out}."
            )
    elif any(
        p.name != LOCK_NAME
        and not (p.name.startswith(".") and p.name.endswith(".tmp"))
        and p.name not in {"figures", "report.md", *RESULT_FILES}
        for p in out.iterdir()
    ):
        raise UserError(f"Output directory {out} is not empty and holds no curriculum run; pass another --out.")


def train_section(results: pd.DataFrame, setting: str, table: str, figure: Path) -> str:
    """The report section of ``curriculum train``: what the curriculum gained over the controls."""
    rows = results.set_index("order")
    lines = [f"## Curriculum training: {setting}", ""]
    if "curriculum" in rows.index:
        row = rows.loc["curriculum"]
        gains = [
            f"{row[f'gain_vs_{c}']:+.4f} over {c} (paired p = {row[f'p_vs_{c}']:.2f})"
            for c in ("none", "random")
            if f"gain_vs_{c}" in rows and np.isfinite(row[f"gain_vs_{c}"])
        ]
        lines += [
            f"Easy-first training reaches {row['final_acc']:.4f} final test accuracy"
            + (f": {' and '.join(gains)}." if gains else "."),
            "",
        ]
    return "\n".join([*lines, "```", table, "```", "", f"![learning curves]({figure.as_posix()})"])


def write_outputs(out: Path, config_doc: dict, curves: pd.DataFrame, results: pd.DataFrame, **figure_args) -> Path:
    """Write the results and then, last, ``config.json`` with the sha256 of each result file: the
    folder is consistent at every instant (while it lacks config.json it claims no results)."""
    with writing(out / "config.json"):
        (out / "config.json").unlink(missing_ok=True)
    atomic_write_bytes(out / "curves.csv", curves.to_csv(index=False).encode())
    atomic_write_bytes(out / "results.csv", results.to_csv(index=False).encode())
    figure = learning_curves_figure(curves, out / RESULT_FILES[2], **figure_args)
    files = {name: hashlib.sha256((out / name).read_bytes()).hexdigest() for name in RESULT_FILES}
    atomic_write_json(out / "config.json", {**config_doc, "files": files})
    return figure


def train(config: TrainConfig) -> pd.DataFrame:
    """Train every order for every seed and compare them; returns the results table.

    Writes ``curves.csv`` (test accuracy per order, seed and eval step), ``results.csv``,
    ``figures/learning_curves.png`` and, last, ``config.json`` into ``config.out`` (default
    ``<score run>/curriculum/<pacing>``), which it owns while it runs; an output holding results
    of other settings is refused.
    """
    config = config.complete()
    config.validate()
    orders = config.orders
    accelerator = make_accelerator(config)
    dataset = load_dataset(
        config.dataset, label_noise=config.label_noise, noise_seed=config.seed, data_dir=config.data_dir
    )
    run_dir = resolve_scores_run(config, dataset)
    plan = make_plan(config, dataset, device_policy(accelerator.device), warn=fallback_note(accelerator))
    labels = dataset.train.labels
    m = len(labels)
    pacing = make_pacing(
        config.pacing, num_examples=m, batch_size=config.batch_size, total_steps=plan.steps, **config.pacing_params()
    )
    if pacing.full_at() is None:
        logging.getLogger(__name__).warning(
            f"Note: {pacing.describe()} opens at most {pacing(plan.steps - 1) / m:.0%} of the {m} train examples within the "
            f"{plan.steps}-step budget, so the curriculum orders never see the rest; leave the stage length out to derive it."
        )
    out = Path(config.out) if config.out else default_out(config, run_dir or default_run_dir(dataset.name))
    check_output_dir(out, "--out")
    ranking = given_scores(config, dataset, run_dir)
    settings = {
        **config.settings(),
        "arch": plan.arch,
        "steps": plan.steps,
        "order_digest": order_digest(ranking),
        "dataset": {"name": dataset.name, "fingerprint": dataset.fingerprint},
    }
    with run_lock(accelerator, out, "--out"):
        check_output(out, settings)
        run_orders = None if ranking is None else build_orders(config, orders, ranking, labels)
        started = time.perf_counter()
        with tqdm(
            total=(len(orders) * config.seeds + (ranking is None)) * plan.steps,
            unit="step",
            dynamic_ncols=True,
            disable=config.quiet,
        ) as progress:
            if ranking is None:
                ranking = self_taught_scores(config, plan, progress)
                run_orders = build_orders(config, orders, ranking, labels)
            curves, predictions = [], {}
            runs = list(run_orders)
            for first in range(0, len(runs), config.max_stack):
                group = runs[first : first + config.max_stack]
                progress.set_description(f"runs {first + 1}..{first + len(group)} of {len(runs)}")
                samplers = [
                    CurriculumBatchSampler(
                        run_orders[kind, seed],
                        pacing if uses_pacing(kind) else None,
                        config.batch_size,
                        plan.steps,
                        seed=seed,
                    )
                    for kind, seed in group
                ]
                _, accuracies, final = train_runs(
                    config, plan, samplers, [seed for _, seed in group], [kind for kind, _ in group], progress
                )
                for k, (kind, seed) in enumerate(group):
                    predictions[kind, seed] = final[k]
                    curves += [
                        {"order": kind, "seed": seed, "step": s, "test_accuracy": float(a)}
                        for s, a in zip(plan.eval_steps, accuracies[k])
                    ]
        source = ranking[2]
        curves = pd.DataFrame(curves)
        results = compare_orders(curves, predictions, dataset.test.labels, target=config.target)
        config_doc = {
            **to_dict(config),
            **settings,
            "order_source": source,
            "seconds": round(time.perf_counter() - started, 1),
        }
        figure = write_outputs(
            out,
            config_doc,
            curves,
            results,
            title=f"{dataset.name}: {config.pacing} pacing, {plan.arch}, {config.seeds} seeds",
            open_fraction=np.array([pacing(t) for t in range(plan.steps)]) / m,
        )
        setting = (
            f"{dataset.name}, {plan.arch}, {plan.steps} steps of {config.batch_size}, {pacing.describe()}, "
            f"order by {source}; {config.seeds} seeds per order"
        )
        report = (run_dir or out) / "report.md"  # the score run's report when the order comes from one
        write_section(
            report,
            f"train-{out.name}",
            train_section(results, setting, format_comparison(results), Path(os.path.relpath(figure, report.parent))),
        )
    if not config.quiet:
        print(f"\n{setting}")
        print(format_comparison(results))
        print(f"\nResults: {out / 'results.csv'}   Figure: {figure}")
    return results


#: The former name of :func:`train`.
curriculum_train = train
