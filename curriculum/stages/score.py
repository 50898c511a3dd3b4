"""The score stage: train a reference ensemble and record every member's predictions.

Members are independent models, each with its own seed for initialisation, batch order, dropout
and augmentation. With several processes (``accelerate launch`` / ``torchrun``) process r trains
members r, r + P, r + 2P, ... on the full dataset: members are split between processes, the data
never is, and no gradient is ever synchronised. Each process writes its own members' records, so
the only collective is the barrier before the scores are computed.

A member checkpoints its training state next to its record, so a killed run restarts from the
last committed checkpoint and ends with the same record as an uninterrupted one.
"""

from __future__ import annotations

import io
import pickle
import platform
import time
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from curriculum.config import ScoreConfig, check_output_dir
from curriculum.data import Dataset, load_dataset
from curriculum.engine import (
    DeviceData,
    Diverged,
    FiniteGuard,
    augment,
    compute_layout,
    grad_scaler,
    learning_rate,
    make_accelerator,
    new_model,
    new_optimizer,
    outputs_to_record,
    predict,
    run_lock,
    set_lr,
    train_step,
)
from curriculum.recipes import with_recipe
from curriculum.report import write_report
from scoring.errors import UserError
from scoring.files import atomic_write_bytes, reading
from scoring.records import SPLITS, MemberRecord, default_run_dir, member_dir, open_run, probs_bytes, update_run

def batches_per_epoch(num_examples: int, batch_size: int) -> int:
    """Mini-batches in one pass over the data; the last batch takes the remainder, and a
    remainder of a single example joins the batch before it (BatchNorm cannot train on one)."""
    full, rest = divmod(num_examples, batch_size)
    return max(1, full + (rest > 1))


def checkpoint_steps(epochs: float, eval_every: float, steps_per_epoch: int) -> list[int]:
    """Training steps at which every member predicts every example: 0 (initialisation), every
    ``eval_every`` epochs (rounded to whole steps) and the end of training."""
    if eval_every * steps_per_epoch < 1:
        raise UserError(f"--eval-every {eval_every:g} is shorter than one training step (an epoch is "
                        f"{steps_per_epoch} steps); pass --eval-every {1 / steps_per_epoch:.3g} or more.")
    total = max(1, round(epochs * steps_per_epoch))
    steps = {0, total}
    k = 1
    while (step := round(k * eval_every * steps_per_epoch)) < total:
        steps.add(step)
        k += 1
    return sorted(steps)


def member_seed(base_seed: int, member: int) -> int:
    return base_seed * 100_003 + member


class MemberTrainer:
    """Trains one member step by step and snapshots everything a bit-exact resume needs."""

    def __init__(self, config: ScoreConfig, arch: str, dataset: Dataset, data: DeviceData, member: int, total_steps: int, steps_per_epoch: int):
        self.config, self.data, self.member = config, data, member
        self.device = data.device
        seed = member_seed(config.seed, member)
        self.model = new_model(config, arch, dataset, seed, self.device)
        self.optimizer = new_optimizer(config, self.model)
        self.scaler = grad_scaler(self.device, config.precision)
        self.generator = torch.Generator(device=self.device).manual_seed(seed)
        torch.manual_seed(seed)  # dropout draws from the global generator; its state is snapshotted too
        self.total_steps, self.steps_per_epoch = total_steps, steps_per_epoch
        self.decay_every = max(1, round(config.lr_decay_epochs * steps_per_epoch))
        self.step = 0
        self.guard = FiniteGuard(self.device)
        self.perm = torch.empty(0, dtype=torch.long, device=self.device)
        m = data.size("train")
        self.online = {key: torch.zeros(m, device=self.device) for key in ("pred", "p_true", "el2n")}
        if config.record_probs:
            self.online["probs"] = torch.zeros(m, dataset.num_classes, device=self.device)

    def state(self) -> dict:
        return {
            "step": self.step,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler else None,
            "generator": self.generator.get_state(),
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if self.device.type == "cuda" else None,
            "perm": self.perm,
            "online": self.online,
        }

    def load_state(self, state: dict) -> None:
        self.step = state["step"]
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scaler:
            self.scaler.load_state_dict(state["scaler"])
        self.generator.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
        if state["cuda_rng"] is not None:
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        self.perm = state["perm"].to(self.device)
        self.online = {key: value.to(self.device) for key, value in state["online"].items()}

    def run_to(self, target: int, progress: tqdm | None) -> None:
        """Train until ``self.step == target``; a new epoch draws a new permutation of the data."""
        b, m = self.config.batch_size, self.data.size("train")
        while self.step < target:
            position = self.step % self.steps_per_epoch
            if position == 0:
                self.perm = torch.randperm(m, generator=self.generator, device=self.device)
                if progress is not None:
                    epochs = self.total_steps / self.steps_per_epoch
                    progress.set_postfix_str(f"epoch {self.step // self.steps_per_epoch + 1}/{epochs:g}", refresh=False)
            last = position == self.steps_per_epoch - 1
            index = self.perm[position * b :] if last else self.perm[position * b : (position + 1) * b]
            x, y = self.data.batch("train", index)
            if self.config.augment:
                x = augment(x, self.generator)
            set_lr(self.optimizer, learning_rate(self.config, self.step, self.total_steps, self.decay_every))
            logits, loss = train_step(self.model, self.optimizer, x, y, self.config.precision, self.scaler)
            if self.config.train_record == "online":
                for key, value in outputs_to_record(logits, y, self.config.record_probs).items():
                    self.online[key][index] = value.float()
            self.step += 1
            self.guard.update(loss, self.step)
            if progress is not None:
                progress.update(1)

    def record(self, initial: bool) -> dict[str, dict[str, np.ndarray]]:
        """Predictions for the current checkpoint. In ``online`` mode the train row is the
        latest training-mode output of each example (Pliushch et al.'s code); checkpoint 0 has
        no training pass yet and uses the eval pass."""
        self.guard.check(self.step)
        rows = {split: predict(self.model, self.data, split, self.config.precision, probs=self.config.record_probs) for split in SPLITS}
        if self.config.train_record == "online" and not initial:
            rows["train"] = {key: value.cpu().numpy() for key, value in self.online.items()}
        if not all(np.isfinite(row[key]).all() for row in rows.values() for key in ("p_true", "el2n")):
            raise Diverged(self.step)
        return rows


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


def train_member(trainer: MemberTrainer, record: MemberRecord, run_dir: Path, steps: list[int], progress: tqdm | None) -> None:
    """Resume ``trainer`` from its last committed checkpoint and record the remaining ones."""
    done = record.committed()
    if done:
        state_file = _state_path(run_dir, trainer.member, done - 1)
        if done < len(steps):
            if not state_file.exists():
                raise UserError(
                    f"Training state {state_file} is missing; delete {state_file.parent} and run the same command "
                    f"again to recompute member {trainer.member}."
                )
            trainer.load_state(_load_state(state_file, trainer.member))
        if progress is not None:
            progress.update(steps[done - 1])
    for index in range(done, len(steps)):
        trainer.run_to(steps[index], progress)
        record.append(trainer.record(initial=index == 0))
        last = index == len(steps) - 1
        state_file = None if last else _state_path(run_dir, trainer.member, index)
        if state_file is not None:
            _save_state(state_file, trainer.state())
        record.commit()
        _drop_states(run_dir, trainer.member, keep=state_file)


def run_info(config: ScoreConfig, dataset: Dataset, arch: str, steps: list[int], steps_per_epoch: int, compute: dict) -> dict:
    return {
        "dataset": {
            "name": dataset.name,
            "fingerprint": dataset.fingerprint,
            "classes": list(dataset.classes),
            "image_shape": list(dataset.image_shape),
            "sizes": {split: int(len(dataset.split(split).labels)) for split in SPLITS},
        },
        "settings": config.record_settings(),
        "arch": arch,
        "members": config.members,
        "compute": compute,
        "checkpoints": [{"index": i, "step": s, "epoch": s / steps_per_epoch} for i, s in enumerate(steps)],
        "versions": {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__},
    }


def score(config: ScoreConfig) -> Path:
    """Run the score stage (resuming if ``config.out`` holds a partial run of the same setting).

    Returns the run directory; the main process ends by writing ``scores.parquet``,
    ``summary.csv``, ``report.md`` and the figures (:func:`curriculum.report.write_report`).
    """
    config = with_recipe(config)
    config.validate()
    accelerator = make_accelerator(config)
    with accelerator.main_process_first():
        dataset = load_dataset(config.dataset, label_noise=config.label_noise, noise_seed=config.seed)
    arch = config.resolved_arch(dataset)
    run_dir = Path(config.out) if config.out else default_run_dir(dataset.name)
    check_output_dir(run_dir, "--out")
    steps_per_epoch = batches_per_epoch(len(dataset.train.labels), config.batch_size)
    steps = checkpoint_steps(config.epochs, config.eval_every, steps_per_epoch)
    info = run_info(config, dataset, arch, steps, steps_per_epoch, compute_layout(accelerator.device))
    new_model(config, arch, dataset, config.seed, torch.device("cpu"))  # a bad --arch fails before any write
    with run_lock(accelerator, run_dir, "--out"):
        open_run(run_dir, info, write=False)  # every process checks, so all fail together on a mismatch
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:
            open_run(run_dir, info, write=True)
        accelerator.wait_for_everyone()
        started = time.perf_counter()
        train_members(config, accelerator, dataset, arch, run_dir, steps, steps_per_epoch)
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:
            scores = write_report(run_dir, dataset, info, quiet=config.quiet)
            update_run(run_dir, status="complete", seconds=round(time.perf_counter() - started, 1),
                       reliability=scores.meta["reliability"])
        accelerator.wait_for_everyone()
    return run_dir


def train_members(config: ScoreConfig, accelerator, dataset: Dataset, arch: str, run_dir: Path, steps: list[int], steps_per_epoch: int) -> None:
    """Train and record this process's members (r, r + P, ...), each from where it stopped."""
    data = DeviceData(dataset, accelerator.device)
    sizes = {split: data.size(split) for split in SPLITS}
    mine = range(accelerator.process_index, config.members, accelerator.num_processes)
    probs = dataset.num_classes if config.record_probs else None
    if probs and accelerator.is_main_process and not config.quiet:
        size = probs_bytes(config.members, len(steps), sizes, probs)
        print(f"--record-probs keeps {config.members} x {len(steps)} checkpoints x {sum(sizes.values())} examples x {probs} "
              f"classes as float16: {size / 2**20:.1f} MiB in {run_dir / 'records'}")
    with tqdm(
        total=len(mine) * steps[-1], unit="ex", unit_scale=config.batch_size, dynamic_ncols=True,
        disable=config.quiet or not accelerator.is_main_process,
    ) as progress:
        for member in mine:
            progress.set_description(f"{arch} member {member + 1}/{config.members}")
            record = MemberRecord(run_dir, member, sizes, len(steps), num_classes=probs)
            if record.committed() == len(steps):
                _drop_states(run_dir, member)  # a run killed between the last commit and the clean-up
                progress.update(steps[-1])
                continue
            trainer = MemberTrainer(config, arch, dataset, data, member, steps[-1], steps_per_epoch)
            try:
                train_member(trainer, record, run_dir, steps, progress)
            except Diverged as err:
                update_run(run_dir, status="diverged", diverged={"member": member, "step": err.step})
                raise UserError(
                    f"Member {member} diverged at step {err.step} (epoch {err.step / steps_per_epoch:.2f}): its training loss "
                    f"is not finite. Lower --lr (now {config.lr:g}){' or train in full precision (--precision no)' if config.precision != 'no' else ''}; "
                    f"{run_dir} is marked diverged, so the corrected command starts it afresh."
                ) from None
