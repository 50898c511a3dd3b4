"""Training primitives shared by the score stage and the curriculum stage.

The whole dataset lives on the device as one uint8 tensor (as in airbench): a mini-batch is an
index into it, normalisation and augmentation run there too, so no DataLoader worker or host copy
sits on the hot path. Accelerate supplies the device, the process layout and mixed precision;
models are never wrapped in DistributedDataParallel, because ensemble members are independent.
"""

from __future__ import annotations

import math
import os
from contextlib import ExitStack, contextmanager, nullcontext
from pathlib import Path
from typing import ContextManager, Iterator

import numpy as np
import torch
import torch.nn.functional as F
from accelerate import Accelerator
from accelerate.utils import broadcast_object_list

from curriculum.config import TrainingConfig
from curriculum.data import Dataset
from curriculum.models import build_model
from scoring.errors import UserError
from scoring.files import locked


def make_accelerator(config: TrainingConfig) -> Accelerator:
    """The process layout and device; mixed precision is applied by :func:`autocast` below.

    Without a GPU, ``cpu=True`` is what makes Accelerate join the process group that
    ``torchrun`` / ``accelerate launch`` set up (otherwise every process would believe it is
    alone and they would all train every member into the same files). On the CPU every process
    computes with one thread, whatever launched it: the numbers of a CPU kernel depend on its
    thread count, so this is what makes a record the same under a plain run, ``torchrun`` (which
    sets one thread) and any number of processes; it is also the fastest use of shared cores.
    """
    accelerator = Accelerator(cpu=config.cpu or not torch.cuda.is_available())
    launched = int(os.environ.get("WORLD_SIZE", "1"))
    if accelerator.num_processes != launched:
        raise UserError(
            f"{launched} processes were launched but Accelerate sees {accelerator.num_processes}; "
            "launch with `accelerate launch` or `torchrun` and its default environment."
        )
    if accelerator.device.type == "cpu":
        torch.set_num_threads(1)
    return accelerator


def compute_layout(device: torch.device) -> dict:
    """What besides the settings decides the numbers a process computes: the device kind and, on
    the CPU, the thread count (on a GPU, its model). Recorded with a run, checked on resume."""
    if device.type == "cuda":
        return {"device": "cuda", "gpu": torch.cuda.get_device_name(device)}
    return {"device": device.type, "threads": torch.get_num_threads()}


@contextmanager
def run_lock(accelerator: Accelerator, directory: Path, option: str) -> Iterator[None]:
    """Own ``directory`` for one launched run (see :func:`scoring.files.locked`).

    The lock belongs to the run, not to each process: the main process takes it and tells the
    others, so every process of a second, independent run stops with the same sentence before
    it writes anything.
    """
    with ExitStack() as stack:
        error = None
        if accelerator.is_main_process:
            try:
                stack.enter_context(locked(directory, option))
            except UserError as err:
                error = str(err)
        if accelerator.num_processes > 1:
            error = broadcast_object_list([error])[0]
        if error is not None:
            raise UserError(error)
        yield


def autocast(device: torch.device, precision: str) -> ContextManager:
    if precision == "no":
        return nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


class DeviceData:
    """Both splits of a dataset as uint8 NCHW tensors on the device, normalised per batch.

    Keeping uint8 (not float) on the device costs 4x less memory; the per-batch conversion is a
    single fused elementwise kernel. Mean and std are per channel over the train split.
    """

    def __init__(self, dataset: Dataset, device: torch.device):
        self.device = device
        self.images = {}
        self.labels = {}
        for split in ("train", "test"):
            part = dataset.split(split)
            self.images[split] = torch.from_numpy(np.ascontiguousarray(part.images.transpose(0, 3, 1, 2))).to(device)
            self.labels[split] = torch.from_numpy(part.labels.astype(np.int64)).to(device)
        pixels = dataset.train.images.reshape(-1, dataset.train.images.shape[-1]).astype(np.float64) / 255.0
        self.mean = torch.tensor(pixels.mean(0), dtype=torch.float32, device=device).view(1, -1, 1, 1)
        self.std = torch.tensor(pixels.std(0) + 1e-6, dtype=torch.float32, device=device).view(1, -1, 1, 1)

    def size(self, split: str) -> int:
        return len(self.labels[split])

    def batch(self, split: str, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalised float images (channels_last) and labels of the examples in ``index``."""
        x = (self.images[split][index].float().div_(255.0) - self.mean) / self.std
        return x.contiguous(memory_format=torch.channels_last), self.labels[split][index]


def augment(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random horizontal flip and random crop (reflect padding of H/8 pixels), per example.

    Both are gathers on the device; the random draws come from ``generator`` so that a member's
    seed also decides its augmentations.
    """
    n, _, h, w = x.shape
    flip = torch.rand(n, generator=generator, device=generator.device) < 0.5
    x = torch.where(flip.to(x.device).view(n, 1, 1, 1), x.flip(3), x)
    pad = max(1, h // 8)
    padded = F.pad(x, (pad, pad, pad, pad), mode="reflect")
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator, device=generator.device).to(x.device)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator, device=generator.device).to(x.device)
    rows = (torch.arange(h, device=x.device)[None, :] + dy[:, None])[:, None, :, None]
    cols = (torch.arange(w, device=x.device)[None, :] + dx[:, None])[:, None, None, :]
    batch = torch.arange(n, device=x.device)[:, None, None, None]
    chans = torch.arange(x.shape[1], device=x.device)[None, :, None, None]
    return padded[batch, chans, rows, cols].contiguous(memory_format=torch.channels_last)


def new_model(config: TrainingConfig, arch: str, dataset: Dataset, seed: int, device: torch.device) -> torch.nn.Module:
    """A freshly initialised model whose weights depend only on ``seed``."""
    torch.manual_seed(seed)
    h, w, c = dataset.image_shape
    model = build_model(arch, in_channels=c, num_classes=dataset.num_classes, image_size=(h, w), dropout=config.dropout)
    return model.to(device=device, memory_format=torch.channels_last)


def new_optimizer(config: TrainingConfig, model: torch.nn.Module) -> torch.optim.Optimizer:
    if config.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    return torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)


def learning_rate(config: TrainingConfig, step: int, total_steps: int, decay_every: int) -> float:
    """LR at ``step``: constant; ``step`` = divide by ``lr_decay`` every ``decay_every`` steps
    (seed 000: 0.05 / 1.8 every 20 epochs; Hacohen 2019: every n batches), floored at ``min_lr``;
    or ``cosine`` from ``lr`` to ``min_lr`` over ``total_steps``."""
    if config.lr_schedule == "constant":
        return config.lr
    if config.lr_schedule == "step":
        return max(config.lr / config.lr_decay ** (step // max(1, decay_every)), config.min_lr)
    progress = min(step / max(1, total_steps), 1.0)
    return config.min_lr + 0.5 * (config.lr - config.min_lr) * (1 + math.cos(math.pi * progress))


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


def train_step(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    x: torch.Tensor,
    y: torch.Tensor,
    precision: str,
    scaler: torch.amp.GradScaler | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One SGD step on (x, y); returns the (detached, float32) logits of the training-mode pass
    and the (detached) loss, for :class:`FiniteGuard`."""
    model.train()
    with autocast(x.device, precision):
        logits = model(x)
        loss = F.cross_entropy(logits.float(), y)
    optimizer.zero_grad(set_to_none=True)
    if scaler is not None:
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
    else:
        loss.backward()
        optimizer.step()
    return logits.detach().float(), loss.detach()


def outputs_to_record(logits: torch.Tensor, y: torch.Tensor, probs: bool = False) -> dict[str, torch.Tensor]:
    """Predicted label, P(true class) and EL2N = ||softmax - onehot(y)||_2 of a batch of logits
    (and, with ``probs``, the class probabilities themselves)."""
    p = torch.softmax(logits.float(), dim=1)
    p_true = p.gather(1, y[:, None]).squeeze(1)
    el2n = torch.sqrt((p.square().sum(1) - 2 * p_true + 1).clamp_min(0))
    return {"pred": p.argmax(1), "p_true": p_true, "el2n": el2n, **({"probs": p} if probs else {})}


@torch.no_grad()
def predict(model: torch.nn.Module, data: DeviceData, split: str, precision: str, batch_size: int = 1024, probs: bool = False) -> dict[str, np.ndarray]:
    """Eval-mode predictions of ``model`` on every example of ``split`` (see outputs_to_record)."""
    model.eval()
    parts: dict[str, list[torch.Tensor]] = {}
    for start in range(0, data.size(split), batch_size):
        index = torch.arange(start, min(start + batch_size, data.size(split)), device=data.device)
        x, y = data.batch(split, index)
        with autocast(x.device, precision):
            logits = model(x)
        for key, value in outputs_to_record(logits, y, probs).items():
            parts.setdefault(key, []).append(value)
    return {key: torch.cat(value).cpu().numpy() for key, value in parts.items()}


class Diverged(Exception):
    """The training loss (or a prediction) stopped being finite at ``step``: nothing trained
    further with these settings means anything, so the stage stops and says which flag to change."""

    def __init__(self, step: int):
        super().__init__(f"non-finite loss at step {step}")
        self.step = step


class FiniteGuard:
    """Notices a non-finite training loss as soon as it appears.

    The flag is accumulated on the device; the host reads it every step on the CPU (free there)
    and every ``every`` steps on an accelerator, so the host never waits on the device per step.
    ``check`` is also called before every checkpoint's predictions are recorded, so no
    non-finite row is ever committed.
    """

    def __init__(self, device: torch.device, every: int = 50):
        self.bad = torch.zeros((), dtype=torch.bool, device=device)
        self.every = 1 if device.type == "cpu" else every

    def update(self, loss: torch.Tensor, step: int) -> None:
        self.bad |= ~torch.isfinite(loss.detach())
        if step % self.every == 0:
            self.check(step)

    def check(self, step: int) -> None:
        if bool(self.bad):
            raise Diverged(step)


def grad_scaler(device: torch.device, precision: str) -> torch.amp.GradScaler | None:
    """fp16 needs loss scaling; bf16 and fp32 do not."""
    return torch.amp.GradScaler(device.type) if precision == "fp16" else None

