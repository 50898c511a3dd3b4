"""The score stage: train a reference ensemble and record every member's predictions.

Members are independent models, each with its own seed for initialisation, batch order, dropout
and augmentation. With several processes (``accelerate launch`` / ``torchrun``) process r trains
members r, r + P, r + 2P, ... on the full dataset: members are split between processes, the data
never is, and no gradient is ever synchronised. Each process writes its own members' records; the
processes act together only where they must reach one decision (the checks before training, the
lock, the report: :func:`curriculum.training.engine.agree`), so a failure in one stops them all
with one sentence.

A member saves its training state next to its record at some checkpoints (:func:`state_every`),
so a killed run restarts from the last saved state, trains forward again to its last committed
checkpoint without rewriting it, and ends with the same record as an uninterrupted one.
"""

from __future__ import annotations

import io
import math
import pickle
import platform
import re
import time
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from curriculum.config.options import check_output_dir
from curriculum.config.stages import ScoreConfig
from curriculum.data.datasets import Dataset, image_fingerprints, load_dataset
from curriculum.data.probes import load_probe, probe_images, probe_predictions, save_probe
from curriculum.reporting.report import write_report
from curriculum.training.engine import (
    DeviceData,
    Diverged,
    FiniteGuard,
    MemberSetup,
    agree,
    barrier,
    batches_per_epoch,
    compute_layout,
    fallback_note,
    learning_rate,
    make_accelerator,
    make_members,
    outputs_to_record,
    predict,
    read_back,
    resolve_arch,
    resolve_precision,
    resolve_stacking,
    run_lock,
    train_steps,
)
from curriculum.training.launch import uneven_note
from curriculum.training.policy import device_policy
from scoring.errors import UserError
from scoring.files import atomic_write_bytes, reading
from scoring.records import (
    FIELDS,
    PROBS,
    SPLITS,
    MemberRecord,
    default_run_dir,
    member_dir,
    open_run,
    plan_disk,
    read_run_info,
    update_run,
)

#: The dtype each recorded field is narrowed to on the device, before it is copied to the host.
RECORD_DTYPES = {**{key: getattr(torch, np.dtype(dtype).name) for key, dtype in FIELDS.items()}, PROBS: torch.float16}


def checkpoint_steps(epochs: float, eval_every: float, steps_per_epoch: int) -> list[int]:
    """Training steps at which every member predicts every example: 0 (initialisation), every
    ``eval_every`` epochs (rounded to whole steps) and the end of training."""
    if eval_every * steps_per_epoch < 1:
        raise UserError(
            f"--eval-every {eval_every:g} is shorter than one training step (an epoch is "
            f"{steps_per_epoch} steps); pass --eval-every {1 / steps_per_epoch:.3g} or more."
        )
    total = max(1, round(epochs * steps_per_epoch))
    steps = {0, total}
    k = 1
    while (step := round(k * eval_every * steps_per_epoch)) < total:
        steps.add(step)
        k += 1
    return sorted(steps)


def member_seed(base_seed: int, member: int) -> int:
    return base_seed * 100_003 + member


class GroupTrainer:
    """Trains a group of members in lockstep and snapshots, per member, everything a bit-exact
    resume needs. Member k's batches are its own epoch permutations, drawn from its generator."""

    def __init__(self, setup: MemberSetup, members: list[int], total_steps: int, steps_per_epoch: int):
        config, data, dataset = setup.config, setup.data, setup.dataset
        self.config, self.data, self.members = config, data, members
        self.device = data.device
        self.group = make_members(setup, [member_seed(config.seed, m) for m in members])
        self.total_steps, self.steps_per_epoch = total_steps, steps_per_epoch
        self.decay_every = max(1, round(config.lr_decay_epochs * steps_per_epoch))
        self.step = 0
        self.guard = FiniteGuard(len(members), data.policy)
        m = data.size("train")
        self.perm = torch.empty(len(members), m, dtype=torch.long, device=self.device)
        self.online = {key: torch.zeros(len(members), m, device=self.device) for key in ("pred", "p_true", "el2n")}
        if config.record_probs:
            self.online["probs"] = torch.zeros(len(members), m, dataset.num_classes, device=self.device)

    def member_state(self, k: int) -> dict:
        return {
            **self.group.member_state(k),
            "step": self.step,
            **self.data.policy.rng_state(),  # only models that draw randomness functionally use it
            "perm": self.perm[k].clone(),
            "online": {key: value[k].clone() for key, value in self.online.items()},
        }

    def load_states(self, states: list[dict]) -> None:
        self.group.load_member_states(states)
        self.step = states[0]["step"]
        self.data.policy.set_rng_state(states[0])
        self.perm = torch.stack([state["perm"] for state in states])
        self.online = {key: torch.stack([state["online"][key] for state in states]) for key in self.online}

    def _batches(self, step: int) -> torch.Tensor:
        """Every member's batch at ``step``; a new epoch draws each member's permutation."""
        b, position = self.config.batch_size, step % self.steps_per_epoch
        if position == 0:
            for row, generator in zip(self.perm, self.group.generators):
                torch.randperm(row.numel(), generator=generator, device=self.device, out=row)
        last = position == self.steps_per_epoch - 1
        return self.perm[:, position * b :] if last else self.perm[:, position * b : (position + 1) * b]

    def _store_online(self, index: torch.Tensor, logits: torch.Tensor, labels: torch.Tensor) -> None:
        for key, value in outputs_to_record(logits, labels, self.config.record_probs).items():
            rows = index if value.dim() == 2 else index[..., None].expand_as(value)
            self.online[key].scatter_(1, rows, value.float())

    def run_to(self, target: int, progress: tqdm | None) -> None:
        """Train every member until ``self.step == target``."""
        online = self._store_online if self.config.train_record == "online" else None
        lr = lambda step: learning_rate(self.config, step, self.total_steps, self.decay_every)  # noqa: E731
        while self.step < target:  # an epoch at a time, to show progress
            stop = min(target, self.step + self.steps_per_epoch)
            train_steps(
                self.group, self.data, self.step, stop, self._batches, lr, self.config.augment, self.guard, online
            )
            if progress is not None:
                progress.update((stop - self.step) * len(self.members))
            self.step = stop

    def record(self, initial: bool) -> list[dict[str, dict[str, np.ndarray]]]:
        """Every member's predictions for the current checkpoint, narrowed on the device to the
        record's dtypes and moved to the host in one copy with the divergence flags (a member whose
        training loss or predictions are not finite raises :class:`Diverged`). In ``online`` mode
        the train row is the latest training-mode output of each example (Pliushch et al.'s code);
        checkpoint 0 has no training pass yet and uses the eval pass."""
        rows = {split: predict(self.group, self.data, split, probs=self.config.record_probs) for split in SPLITS}
        if self.config.train_record == "online" and not initial:
            rows["train"] = self.online
        bad = self.guard.bad
        for fields in rows.values():
            for key in ("p_true", "el2n"):
                bad |= ~torch.isfinite(fields[key]).all(1)
        keys = [(split, key) for split, fields in rows.items() for key in fields]
        *values, bad = read_back(
            [rows[split][key].to(RECORD_DTYPES[key]) for split, key in keys] + [bad], self.data.policy
        )
        if bad.any():
            raise Diverged(self.step, int(bad.nonzero()[0][0]))
        host: dict[str, dict[str, np.ndarray]] = {split: {} for split in rows}
        for (split, key), value in zip(keys, values):
            host[split][key] = value
        return [
            {split: {key: value[k] for key, value in fields.items()} for split, fields in host.items()}
            for k in range(len(self.members))
        ]


def member_names(group: list[int]) -> str:
    """A group's members, numbered from 1: "3", "1..6", or "1, 3, ..., 11" for the share of one of
    several processes (every P-th member)."""
    shown = [member + 1 for member in group]
    if len(shown) == 1:
        return str(shown[0])
    if shown == list(range(shown[0], shown[-1] + 1)):
        return f"{shown[0]}..{shown[-1]}"
    return ", ".join(map(str, shown)) if len(shown) <= 3 else f"{shown[0]}, {shown[1]}, ..., {shown[-1]}"


def _state_path(run_dir: Path, member: int, checkpoint: int) -> Path:
    return member_dir(run_dir, member) / f"state_{checkpoint:04d}.pt"


def _save_state(path: Path, state: dict) -> None:
    """Serialised in memory first: torch's file writer turns a failed write (a full disk) into
    an unrelated RuntimeError, where a plain write raises the OSError that says what happened."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    atomic_write_bytes(path, buffer.getbuffer())


def _load_state(path: Path, member: int) -> dict:
    """The saved state, on the CPU: the trainer moves it to its device, so a state saved under any
    launcher (where the device may read ``cpu:0`` or another GPU index) loads under any other."""
    fix = f"delete the folder {path.parent} and run the same command again to recompute member {member}"
    with reading(path, fix, errors=(OSError, RuntimeError, EOFError, ValueError, pickle.UnpicklingError)):
        return torch.load(path, map_location="cpu", weights_only=False)


def _drop_states(run_dir: Path, member: int, keep: Path | None = None) -> None:
    """Remove the member's training states but ``keep`` (all of them once it has finished)."""
    for old in member_dir(run_dir, member).glob("state_*.pt"):
        if old != keep:
            old.unlink()


def state_every(checkpoints: int, eval_every: float) -> int:
    """Training states are saved at every this-many-th checkpoint: at about a tenth of the
    checkpoints, and at least once an epoch. Saving a state costs about as much as recording a
    checkpoint (10 st-VGG members: 102 MiB, written and synced), and a resumed run only trains
    forward again from the last one, so this bounds both the cost and the repeated training."""
    return max(1, min(math.ceil(checkpoints / 10), round(1 / eval_every)))


def _saved_state(run_dir: Path, members: list[int], before: int) -> int | None:
    """The latest checkpoint index below ``before`` at which every member of the group saved a
    state, or None."""
    common = None
    for member in members:
        indices = {
            int(path.stem.split("_")[1])
            for path in member_dir(run_dir, member).glob("state_*.pt")
            if path.stem.split("_")[1].isdecimal()
        }
        common = indices if common is None else common & indices
    found = [index for index in common or () if index < before]
    return max(found) if found else None


def train_group(
    trainer: GroupTrainer,
    records: list[MemberRecord],
    run_dir: Path,
    steps: list[int],
    progress: tqdm | None,
    every: int = 1,
    timings: dict[str, float] | None = None,
) -> None:
    """Resume the group from its members' last saved state and record the remaining checkpoints.

    A state is saved at every ``every``-th checkpoint, for every member before any record is
    committed, and older states are removed only after all are committed, so a run killed at any
    point finds a state at or before the checkpoint where its least advanced member stopped (or
    none, and trains from the start). It trains forward from there, recording only the rows a
    member has not committed: training is deterministic, so the record is the uninterrupted one.
    ``timings`` accumulates the seconds spent training, evaluating, saving training states and
    writing record rows.
    """
    timings = {} if timings is None else timings
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[name] = timings.get(name, 0.0) + now - clock
        clock = now

    start = min(record.committed() for record in records)
    resume = _saved_state(run_dir, trainer.members, start) if start else None
    if resume is not None:
        trainer.load_states([_load_state(_state_path(run_dir, member, resume), member) for member in trainer.members])
        if progress is not None:
            progress.update(steps[resume] * len(records))
    lap("train")
    for index in range(0 if resume is None else resume + 1, len(steps)):
        trainer.run_to(steps[index], progress)
        lap("train")
        pending = [record.committed() == index for record in records]  # a member ahead already holds this row
        last = index == len(steps) - 1
        save = not last and index >= start and index % every == 0
        rows = trainer.record(initial=index == 0) if any(pending) else []
        lap("eval")
        if save:
            for k, member in enumerate(trainer.members):
                _save_state(_state_path(run_dir, member, index), trainer.member_state(k))
        lap("training states")
        for record, row, write in zip(records, rows, pending):
            if write:
                record.append(row)  # one row: O(examples), earlier rows are not touched
                record.commit()
        lap("record writes")
        if save or last:
            for member in trainer.members:
                _drop_states(run_dir, member, keep=None if last else _state_path(run_dir, member, index))
        lap("training states")


def run_info(
    config: ScoreConfig,
    dataset: Dataset,
    arch: str,
    steps: list[int],
    steps_per_epoch: int,
    precision: str,
    layout: str,
    compute: dict,
) -> dict:
    """run.json. Its settings hold the resolved precision and the stacking layout: a stacked
    member's record depends on its group (float reassociation), so a run resumes bit-exactly
    only with the same layout and is refused with another."""
    settings = {key: value for key, value in config.settings().items() if key not in ("stack", "max_stack")}
    return {
        "dataset": {
            "name": dataset.name,
            "fingerprint": dataset.fingerprint,
            "images": image_fingerprints(dataset),
            "classes": list(dataset.classes),
            "image_shape": list(dataset.image_shape),
            "sizes": {split: int(len(dataset.split(split).labels)) for split in SPLITS},
        },
        "settings": {**settings, "precision": precision, "layout": layout},
        "arch": arch,
        "members": config.members,
        "compute": compute,
        "checkpoints": [{"index": i, "step": s, "epoch": s / steps_per_epoch} for i, s in enumerate(steps)],
        "versions": {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__},
    }


def check_resumable(run_dir: Path, info: dict) -> None:
    """Refuse to continue a run in ``run_dir`` made with another dataset, settings or device
    (:func:`scoring.records.open_run`). Stacked members are grouped per process, so a stacked run
    resumes only with the process count it started with (on GPUs: the GPU count); that is said
    with the count to launch."""
    existing = read_run_info(run_dir)
    old, new = (existing or {}).get("settings", {}).get("layout", ""), info["settings"]["layout"]
    counts = [re.search(r"(\d+) process\(es\)$", layout) for layout in (old, new)]
    if (
        existing
        and existing.get("status") != "diverged"
        and all(counts)
        and old != new
        and old.split(",")[0] == new.split(",")[0]
    ):
        before, now = (int(count.group(1)) for count in counts)
        raise UserError(
            f"{run_dir} holds members stacked over {before} processes, and {now} processes would group "
            f"them differently (a stacked record depends on its group); launch {before} processes to "
            "resume it, or pass another --out."
        )
    open_run(run_dir, info, write=False)


def score(config: ScoreConfig) -> Path:
    """Run the score stage (resuming if ``config.out`` holds a partial run of the same setting).

    Returns the run directory; the main process ends by writing ``scores.parquet``,
    ``summary.csv``, ``report.md`` and the figures (:func:`curriculum.reporting.report.write_report`).
    Under a launcher every step that can fail before training, and the report, is taken by all
    processes together (:func:`curriculum.training.engine.agree`): they all stop with the same
    sentence, and none waits at a barrier for one that has stopped.
    """
    config = config.complete()
    config.validate()
    accelerator = make_accelerator(config)
    processes, main = accelerator.num_processes, accelerator.is_main_process
    policy = device_policy(accelerator.device)

    def load() -> Dataset:
        return load_dataset(
            config.dataset, label_noise=config.label_noise, noise_seed=config.seed, data_dir=config.data_dir
        )

    # Each node's first process reads (and caches) the dataset before the node's others do.
    first = agree(accelerator, lambda: load() if accelerator.is_local_main_process else None)
    dataset = agree(accelerator, lambda: first if accelerator.is_local_main_process else load())

    def plan() -> tuple:
        if processes > config.members:
            raise UserError(
                f"{processes} processes for {config.members} members: each process trains whole members, so "
                f"{processes - config.members} would idle; launch {config.members} processes (or train "
                f"--members {processes})."
            )
        arch = resolve_arch(config, dataset)  # a bad --arch fails before any write
        precision = resolve_precision(config, policy)
        way = resolve_stacking(config, arch, dataset, policy, precision, warn=fallback_note(accelerator))
        stacked = way is not None
        # vmap's layout keeps the name it had before the grouped way existed, so its runs still resume
        named = " as grouped convolutions" if way == "grouped" else ""
        layout = (
            f"stacked{named} in groups of up to {config.max_stack}, {processes} process(es)"
            if stacked
            else "one by one"
        )
        run_dir = Path(config.out) if config.out else default_run_dir(dataset.name)
        check_output_dir(run_dir, "--out")
        steps_per_epoch = batches_per_epoch(len(dataset.train.labels), config.batch_size)
        steps = checkpoint_steps(config.epochs, config.eval_every, steps_per_epoch)
        info = run_info(
            config, dataset, arch, steps, steps_per_epoch, precision, layout, compute_layout(accelerator.device)
        )
        probe = (
            probe_images(config.probe, dataset.image_shape) if config.probe else None
        )  # a bad --probe fails before any write
        sizes = {split: len(dataset.split(split).labels) for split in SPLITS}
        statement = plan_disk(run_dir, config.members, len(steps), sizes, dataset.num_classes, config.record_probs)
        return arch, precision, stacked, run_dir, steps_per_epoch, steps, info, probe, statement

    arch, precision, stacked, run_dir, steps_per_epoch, steps, info, probe, statement = agree(accelerator, plan)
    if main and not config.quiet:
        print(statement)
        if note := uneven_note(config.members, processes):
            print(note)
    with run_lock(accelerator, run_dir, "--out"):
        agree(accelerator, lambda: check_resumable(run_dir, info))  # all refuse a mismatch together
        agree(accelerator, lambda: open_run(run_dir, info, write=True) if main else None)
        started = time.perf_counter()
        timings: dict[str, float] = {}
        setup = MemberSetup(config, dataset, DeviceData(dataset, accelerator.device, policy), arch, precision, stacked)
        train_members(setup, accelerator, run_dir, steps, steps_per_epoch, probe, timings)
        barrier(accelerator)

        def finish() -> None:
            if main:
                scores = write_report(
                    run_dir, dataset, info, quiet=config.quiet, memory_mb=config.score_memory, timings=timings
                )
                seconds = time.perf_counter() - started
                if not config.quiet:
                    print(time_sentence(timings, seconds, processes))
                # How this session ran, beside its time; not checked on resume, which any process count may do.
                update_run(
                    run_dir,
                    status="complete",
                    seconds=round(seconds, 1),
                    processes=processes,
                    reliability=scores.meta["reliability"],
                    timings={k: round(v, 2) for k, v in timings.items()},
                )

        agree(accelerator, finish)
    return run_dir


def time_sentence(timings: dict[str, float], seconds: float, processes: int) -> str:
    """Where the score stage's wall time went, largest share first; ``other`` is the rest (setting
    up the members and moving the data to the device)."""
    shares = {**timings, "other": max(0.0, seconds - sum(timings.values()))}
    parts = ", ".join(
        f"{name} {value:.1f} s ({value / seconds:.0%})"
        for name, value in sorted(shares.items(), key=lambda item: -item[1])
    )
    whose = "" if processes == 1 else f" (training parts: the members of this process, 1 of {processes})"
    return f"Time: {seconds:.1f} s wall; {parts}{whose}."


def train_members(
    setup: MemberSetup,
    accelerator,
    run_dir: Path,
    steps: list[int],
    steps_per_epoch: int,
    probe: np.ndarray | None = None,
    timings: dict[str, float] | None = None,
) -> None:
    """Train and record this process's members (r, r + P, ...) in groups, each from where it stopped;
    finished members label the ``probe`` images (``--probe``) too. ``timings`` accumulates where
    the time went (:func:`train_group`)."""
    config, dataset, data = setup.config, setup.dataset, setup.data
    processes = accelerator.num_processes
    sizes = {split: data.size(split) for split in SPLITS}
    mine = list(range(accelerator.process_index, config.members, processes))
    probs = dataset.num_classes if config.record_probs else None
    records = agree(
        accelerator,
        lambda: {member: MemberRecord(run_dir, member, sizes, len(steps), num_classes=probs) for member in mine},
    )  # a damaged record stops every process
    # The groups of an uninterrupted run, since a stacked member's numbers depend on its group. A
    # run killed between the commits of one checkpoint leaves a group's members one row apart: the
    # group resumes from its least advanced member, and a member ahead (even one that finished,
    # whose state is kept until its whole group has) trains along without writing its rows again.
    done = {member: records[member].committed() for member in mine}
    groups = [mine[i : i + config.max_stack] for i in range(0, len(mine), config.max_stack)]
    with tqdm(
        total=len(mine) * steps[-1],
        unit="ex",
        unit_scale=config.batch_size,
        dynamic_ncols=True,
        disable=config.quiet or not accelerator.is_main_process,
    ) as progress:
        for whole in groups:
            start = min(done[member] for member in whole)
            group = [
                member
                for member in whole
                if done[member] < len(steps)
                or start == 0
                or (start < len(steps) and _state_path(run_dir, member, start - 1).exists())
            ]
            for member in whole:
                if member not in group:  # finished: a run killed between the last commit and the clean-up
                    _drop_states(run_dir, member)
                    if probe is not None and load_probe(run_dir, member, members=1) is None:
                        raise UserError(
                            f"Member {member} finished without its probe predictions (the run stopped "
                            f"between them); delete {member_dir(run_dir, member)} and run the same command again."
                        )
                    progress.update(steps[-1])
            if not group:
                continue
            progress.set_description(f"{setup.arch} members {member_names(group)} of {config.members}")
            trainer = GroupTrainer(setup, group, steps[-1], steps_per_epoch)
            try:
                train_group(
                    trainer,
                    [records[member] for member in group],
                    run_dir,
                    steps,
                    progress,
                    every=state_every(len(steps), config.eval_every),
                    timings=timings,
                )
                if probe is not None:
                    for member, pred in zip(group, probe_predictions(trainer.group, data, probe)):
                        save_probe(run_dir, member, pred)
            except Diverged as err:
                member = group[err.member]
                update_run(run_dir, status="diverged", diverged={"member": member, "step": err.step})
                raise err.user_error(
                    f"Member {member}",
                    f"at step {err.step} (epoch {err.step / steps_per_epoch:.2f})",
                    config,
                    setup.precision,
                    f"{run_dir} is marked diverged, so the corrected command starts it afresh.",
                ) from None
