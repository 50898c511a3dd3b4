"""The training engine both stages use: data on the device, one training loop, members of one
architecture trained together.

The whole dataset lives on the device as one uint8 tensor (as in airbench): a mini-batch is an
index into it, normalisation and augmentation run there too, so no DataLoader worker or host copy
sits on the hot path. Accelerate supplies the device and the process layout; models are never
wrapped in DistributedDataParallel, because ensemble members are independent.

:func:`train_steps` is the one training loop (batch -> augment -> learning rate -> step) for a
group of members (:mod:`curriculum.training.members`), trained one by one or stacked into one model; the
score stage gives it each member's epoch permutations, the curriculum stage its sampler's batches.
:func:`predict` evaluates all members of a group over a split in large batches and leaves the
device once. :func:`resolve_arch` builds the architecture ``TrainingConfig.resolved_arch`` names
(the one place ``--arch`` is resolved), so an image size it cannot take fails before any work.
"""

from __future__ import annotations

import logging
import math
import os
import socket
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch
import torch.nn.functional as F
from accelerate import Accelerator
from accelerate.utils import gather_object

from curriculum.config.stages import TrainingConfig
from curriculum.data.datasets import Dataset
from curriculum.models.builders import build_model
from curriculum.training.launch import PeerFailed
from curriculum.training.members import (
    MemberLoop,
    Members,
    StackedMembers,
    float32_head,
    grouped_layers,
    own_dropout,
    stacking_refusal,
)
from curriculum.training.policy import DevicePolicy, device_policy
from scoring.errors import UserError
from scoring.files import holder, locked

T = TypeVar("T")


def make_accelerator(config: TrainingConfig) -> Accelerator:
    """The process layout and device; mixed precision is applied by
    :func:`curriculum.training.members.autocast` around every forward pass.

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
def peers() -> Iterator[None]:
    """Around a collective (a barrier, a gather): a peer that stopped makes gloo or NCCL raise a
    RuntimeError here ("Connection closed by peer"), which is that peer's failure, not this one's."""
    try:
        yield
    except RuntimeError as err:
        raise PeerFailed(str(err)) from None


def barrier(accelerator: Accelerator) -> None:
    with peers():
        accelerator.wait_for_everyone()


def agree(accelerator: Accelerator, step: Callable[[], T]) -> T:
    """Run ``step`` in every process and fail in all of them if it failed in any, so that every
    process reaches the same decision and none waits at a barrier for one that has stopped.

    A user error (the first in rank order) is raised in every process, marked ``shared``: the
    command line prints it from one process only. Another exception is raised where it happened;
    the other processes raise :class:`PeerFailed`.
    """
    error: Exception | None = None
    result = None
    try:
        result = step()
    except Exception as err:  # noqa: BLE001 (every process must learn of it before it is raised)
        error = err
    if accelerator.num_processes == 1:
        if error is not None:
            raise error
        return result
    with peers():
        reports = gather_object([None if error is None else (isinstance(error, UserError), str(error))])
    failed = [report for report in reports if report is not None]
    if not failed:
        return result
    user = next((message for is_user, message in failed if is_user), None)
    if user is not None:
        shared = UserError(user)
        shared.shared = True
        raise shared
    if error is not None:
        raise error
    raise PeerFailed("another process failed")


@contextmanager
def run_lock(accelerator: Accelerator, directory: Path, option: str) -> Iterator[None]:
    """Own ``directory`` for one launched run (see :func:`scoring.files.locked`).

    The lock belongs to the run, not to each process: the main process takes it, and every other
    process reads back the line it wrote into the lock file, so that a run whose processes do not
    all see one directory (nodes without a shared filesystem, a relative path from different
    folders) stops before it writes anything. Every process of a second, independent run stops
    with the same sentence.
    """
    with ExitStack() as stack:

        def take() -> str | None:
            if accelerator.is_main_process:
                stack.enter_context(locked(directory, option))
                return holder(directory)
            return None

        owner = agree(accelerator, take)
        if accelerator.num_processes > 1:
            with peers():
                owner = gather_object([owner])[0]

            def same_directory() -> None:
                if holder(directory) != owner:
                    raise UserError(
                        f"Process {accelerator.process_index} (on {socket.gethostname()}) does not see the directory "
                        f"{directory} that process 0 ({owner.split(' (run')[0]}) writes; put {option} on a filesystem "
                        "every node shares, as an absolute path."
                    )

            agree(accelerator, same_directory)
        yield


def resolve_precision(config: TrainingConfig, policy: DevicePolicy) -> str:
    """``auto`` is the policy's: bf16 on a GPU that supports it (no loss scaling needed), float32
    elsewhere."""
    return policy.precision if config.precision == "auto" else config.precision


def resolve_arch(config: TrainingConfig, dataset: Dataset) -> str:
    """The architecture to train (:meth:`TrainingConfig.resolved_arch`), built once on the CPU so
    that an image size it cannot take fails before any work."""
    arch = config.resolved_arch(dataset)
    h, w, c = dataset.image_shape
    build_model(arch, in_channels=c, num_classes=dataset.num_classes, image_size=(h, w), dropout=config.dropout)
    return arch


def channel_statistics(images: torch.Tensor, chunk: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and standard deviation (float64, pixels scaled to [0, 1]) of uint8 NCHW
    ``images``, wherever they are: exact integer sums of the pixels and their squares, ``chunk``
    images at a time, so no float copy of the whole set is ever made (a float64 one of CIFAR's
    60,000 images is 1.4 GiB) and the answer does not depend on the device or the summation order."""
    sums = torch.zeros(2, images.shape[1], dtype=torch.int64, device=images.device)
    for start in range(0, len(images), chunk):
        part = images[start : start + chunk].to(torch.int64)
        sums[0] += part.sum((0, 2, 3))
        sums[1] += part.square().sum((0, 2, 3))
    n = images.numel() // images.shape[1]
    mean, var = [], []
    for s1, s2 in zip(*sums.tolist()):  # Python integers: n * s2 - s1 ** 2 is exact
        mean.append(s1 / (255 * n))
        var.append((n * s2 - s1 * s1) / (255 * 255 * n * n))
    return np.array(mean), np.sqrt(np.array(var))


class DeviceData:
    """Both splits of a dataset as uint8 NCHW tensors on the device, normalised per batch.

    Keeping uint8 (not float) on the device costs 4x less memory; the per-batch conversion is a
    single fused elementwise kernel. Mean and std are per channel over the train split
    (:func:`channel_statistics`, computed on the device). ``policy`` (default: the device's)
    says how the device is used (:mod:`curriculum.training.policy`).
    """

    def __init__(self, dataset: Dataset, device: torch.device, policy: DevicePolicy | None = None):
        self.device = device
        self.policy = policy or device_policy(device)
        self.images = {}
        self.labels = {}
        for split in ("train", "test"):
            part = dataset.split(split)
            self.images[split] = torch.from_numpy(np.ascontiguousarray(part.images.transpose(0, 3, 1, 2))).to(device)
            self.labels[split] = torch.from_numpy(part.labels.astype(np.int64)).to(device)
        mean, std = channel_statistics(self.images["train"])
        self.mean = torch.tensor(mean, dtype=torch.float32, device=device).view(1, -1, 1, 1)
        self.std = torch.tensor(std + 1e-6, dtype=torch.float32, device=device).view(1, -1, 1, 1)

    def size(self, split: str) -> int:
        return len(self.labels[split])

    def batch(
        self, split: str, index: torch.Tensor | slice, memory_format: torch.memory_format = torch.channels_last
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalised float images (in ``memory_format``) and labels of the examples in ``index``."""
        x = (self.images[split][index].float().div_(255.0) - self.mean) / self.std
        return x.contiguous(memory_format=memory_format), self.labels[split][index]


def augment(
    x: torch.Tensor, generators: list[torch.Generator], memory_format: torch.memory_format = torch.channels_last
) -> torch.Tensor:
    """Random horizontal flip and random crop (reflect padding of H/8 pixels), per example.

    ``x`` holds one equal batch per generator, consecutively; each member's draws come from its
    own generator (so its seed decides its augmentations): one integer per example codes its
    flip and both shifts (one kernel a member, not three), then one gather moves every pixel.
    """
    n, _, h, w = x.shape
    b, pad = n // len(generators), max(1, h // 8)
    side = 2 * pad + 1
    code = torch.cat([torch.randint(0, 2 * side * side, (b,), generator=g, device=g.device) for g in generators]).to(
        x.device
    )
    flip, dy, dx = code % 2 == 1, code // 2 // side, code // 2 % side
    x = torch.where(flip.view(n, 1, 1, 1), x.flip(3), x)
    padded = F.pad(x, (pad, pad, pad, pad), mode="reflect")
    rows = (torch.arange(h, device=x.device)[None, :] + dy[:, None])[:, None, :, None]
    cols = (torch.arange(w, device=x.device)[None, :] + dx[:, None])[:, None, None, :]
    batch = torch.arange(n, device=x.device)[:, None, None, None]
    chans = torch.arange(x.shape[1], device=x.device)[None, :, None, None]
    return padded[batch, chans, rows, cols].contiguous(memory_format=memory_format)


def new_model(config: TrainingConfig, arch: str, dataset: Dataset, seed: int, device: torch.device) -> torch.nn.Module:
    """A freshly initialised model whose weights depend only on ``seed``; its dropout draws
    from noise the group supplies (:class:`curriculum.training.members.MemberDropout`)."""
    torch.manual_seed(seed)
    h, w, c = dataset.image_shape
    model = build_model(arch, in_channels=c, num_classes=dataset.num_classes, image_size=(h, w), dropout=config.dropout)
    return float32_head(own_dropout(model)).to(device=device, memory_format=torch.channels_last)


def optimizer_factory(
    config: TrainingConfig, policy: DevicePolicy
) -> Callable[[list[torch.Tensor]], torch.optim.Optimizer]:
    """Builds the configured optimizer over a list of tensors, in the policy's implementation
    (fused on a GPU: one kernel for every parameter; the plain for-loop on a CPU)."""
    options = policy.optimizer_options()

    def make(params: list[torch.Tensor]) -> torch.optim.Optimizer:
        if config.optimizer == "adam":
            return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay, **options)
        return torch.optim.SGD(
            params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay, **options
        )

    return make


def resolve_stacking(
    config: TrainingConfig,
    arch: str,
    dataset: Dataset,
    policy: DevicePolicy,
    precision: str,
    warn: Callable[[str], None] | None = print,
) -> str | None:
    """How groups of members train stacked (:class:`StackedMembers`): ``grouped`` for a plain stack
    of layers, else ``vmap``; None when they train one by one. The two ways round differently in
    bf16, so a run's layout names the way.

    ``auto`` is the policy's: stacked on a GPU, where a step of a small CNN is bound by kernel
    launches, not on a CPU, where it is bound by arithmetic and a loop measured faster
    (experiments/README.md). A model that cannot stack (fp16, or a forward ``vmap`` cannot take:
    one probe step) trains one by one, said once in one line through ``warn``; with ``on`` that
    is an error instead. The device's own failures (out of memory, cuDNN) are raised, never
    taken for a model that cannot stack.
    """
    if config.stack == "off" or (config.stack == "auto" and not policy.stack):
        return None
    h, w, c = dataset.image_shape
    models = [new_model(config, arch, dataset, seed, policy.device) for seed in (0, 1)]
    sample = torch.randn(2, c, h, w, device=policy.device)
    refusal = stacking_refusal(models, optimizer_factory(config, policy), precision, sample)
    if refusal is None:
        return "grouped" if grouped_layers(models[0]) else "vmap"
    if config.stack == "on":
        raise UserError(f"Members of '{arch}' cannot be stacked ({refusal}); pass --stack off.")
    if warn is not None:
        warn(f"Members of '{arch}' cannot be stacked ({refusal}); training them one by one.")
    return None


def fallback_note(accelerator: Accelerator) -> Callable[[str], None] | None:
    """Where :func:`resolve_stacking` says why members train one by one after all: once per run
    (the main process), as a warning on stderr, also under --quiet (it changes the run's speed
    several fold, so it is never silent)."""
    return logging.getLogger("curriculum").warning if accelerator.is_main_process else None


@dataclass
class MemberSetup:
    """What every member of a stage shares, decided once before any trains: the settings, the
    data on the device, the architecture, the precision and whether groups train stacked."""

    config: TrainingConfig
    dataset: Dataset
    data: DeviceData
    arch: str
    precision: str
    stacked: bool
    stack_way: str = field(default="auto", kw_only=True)  # of stacked members: auto, grouped or vmap (StackedMembers)


def make_members(setup: MemberSetup, seeds: list[int]) -> Members:
    """A group of members built from ``seeds``, stacked or one by one (see resolve_stacking)."""
    config, data = setup.config, setup.data
    models = [new_model(config, setup.arch, setup.dataset, seed, data.device) for seed in seeds]
    sample, _ = data.batch("train", slice(0, 1))
    make = optimizer_factory(config, data.policy)
    if setup.stacked and len(models) > 1:
        return StackedMembers(models, seeds, make, setup.precision, sample, config.compile, way=setup.stack_way)
    return MemberLoop(models, seeds, make, setup.precision, sample, config.compile)


def learning_rate(config: TrainingConfig, step: int, total_steps: int, decay_every: int) -> float:
    """LR at ``step``: constant; ``step`` = divide by ``lr_decay`` every ``decay_every`` steps
    (Hacohen et al. 2020: 0.05 / 1.8 every 20 epochs; Hacohen 2019: every n batches), floored at ``min_lr``;
    or ``cosine`` from ``lr`` to ``min_lr`` over ``total_steps``."""
    if config.lr_schedule == "constant":
        return config.lr
    if config.lr_schedule == "step":
        return max(config.lr / config.lr_decay ** (step // max(1, decay_every)), config.min_lr)
    progress = min(step / max(1, total_steps), 1.0)
    return config.min_lr + 0.5 * (config.lr - config.min_lr) * (1 + math.cos(math.pi * progress))


class Diverged(Exception):
    """Member ``member`` of a group (its index there) had a non-finite training loss (or
    prediction) by ``step``: nothing trained further with these settings means anything, so the
    stage stops and says which flag to change."""

    def __init__(self, step: int, member: int):
        super().__init__(f"non-finite loss of member {member} at step {step}")
        self.step, self.member = step, member

    def user_error(self, who: str, when: str, config: TrainingConfig, precision: str, aftermath: str) -> UserError:
        """The one sentence a stage ends with: ``who`` diverged ``when``, which flags to change,
        and what became of the output (``aftermath``)."""
        full = " or train in full precision (--precision no)" if precision != "no" else ""
        return UserError(
            f"{who} diverged {when}: its training loss is not finite. Lower --lr (now {config.lr:g}){full}; {aftermath}"
        )


def batches_per_epoch(num_examples: int, batch_size: int) -> int:
    """Mini-batches in one pass over the data; the last batch takes the remainder, and a
    remainder of a single example joins the batch before it (BatchNorm cannot train on one)."""
    full, rest = divmod(num_examples, batch_size)
    return max(1, full + (rest > 1))


class FiniteGuard:
    """Notices a member's non-finite training loss as soon as it appears.

    The per-member flags are accumulated on the device; the host reads them every
    ``policy.guard_every`` steps (every step on the CPU, where it is free; every 50 on a GPU), so
    the host never waits on the device per step. The score stage reads the flags with every
    checkpoint's predictions (one read-back), so no non-finite row is ever committed.
    """

    def __init__(self, members: int, policy: DevicePolicy):
        self.total = torch.zeros(members, device=policy.device)  # a non-finite loss keeps it non-finite
        self.every = policy.guard_every

    def update(self, losses: torch.Tensor, step: int) -> None:
        self.total.add_(losses.float())  # one kernel a step; losses are >= 0, so a sum never cancels an inf
        if step % self.every == 0:
            self.check(step)

    @property
    def bad(self) -> torch.Tensor:
        """Per member, whether a training loss so far was not finite (on the device)."""
        return ~torch.isfinite(self.total)

    def check(self, step: int) -> None:
        bad = self.bad
        if bool(bad.any()):
            raise Diverged(step, int(bad.nonzero()[0, 0]))


def train_steps(
    members: Members,
    data: DeviceData,
    start: int,
    stop: int,
    batches: Callable[[int], torch.Tensor],
    lr: Callable[[int], float],
    augmented: bool,
    guard: FiniteGuard,
    on_step: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], None] | None = None,
) -> None:
    """The training loop: steps ``start`` to ``stop - 1`` of every member of the group.

    ``batches(step)`` gives the example indices [K, B] on the device (row k: member k's batch);
    ``guard`` raises :class:`Diverged` once a member's loss is not finite;
    ``on_step(index, logits, labels)`` sees each step's training-mode outputs without leaving
    the device.
    """
    for step in range(start, stop):
        index = batches(step)
        x, y = data.batch("train", index.flatten(), members.memory_format)
        if augmented:
            x = augment(x, members.generators, members.memory_format)
        logits, losses = members.train_step(x, y, lr(step))
        guard.update(losses, step + 1)
        if on_step is not None:
            on_step(index, logits, y.view(index.shape))


def outputs_to_record(logits: torch.Tensor, y: torch.Tensor, probs: bool = False) -> dict[str, torch.Tensor]:
    """Predicted label, P(true class) and EL2N = ||softmax - onehot(y)||_2 of logits [..., classes]
    with labels ``y`` of shape [...] (or broadcastable to it); with ``probs``, the class
    probabilities themselves."""
    p = torch.softmax(logits.float(), dim=-1)
    p_true = p.gather(-1, y.expand(p.shape[:-1])[..., None]).squeeze(-1)
    el2n = torch.sqrt((p.square().sum(-1) - 2 * p_true + 1).clamp_min(0))
    return {"pred": p.argmax(-1), "p_true": p_true, "el2n": el2n, **({"probs": p} if probs else {})}


@torch.no_grad()
def predict(
    members: Members, data: DeviceData, split: str, batch_size: int = 1024, probs: bool = False
) -> dict[str, torch.Tensor]:
    """Eval-mode outputs of every member on every example of ``split``: tensors [K, M] ([K, M,
    classes] for ``probs``) on the device (see outputs_to_record), filled batch by batch
    without a host synchronisation."""
    out: dict[str, torch.Tensor] = {}
    m = data.size(split)
    for start in range(0, m, batch_size):
        part = slice(start, min(start + batch_size, m))
        x, y = data.batch(split, part, members.memory_format)
        for key, value in outputs_to_record(members.logits(x), y, probs).items():
            if key not in out:
                out[key] = torch.empty(len(members), m, *value.shape[2:], dtype=value.dtype, device=data.device)
            out[key][:, part] = value
    return out


def read_back(tensors: list[torch.Tensor], policy: DevicePolicy) -> list[np.ndarray]:
    """``tensors`` (on the device, any dtypes) as host arrays, moved in one copy: they are packed
    into one byte buffer on the device first, so the host waits for the device once (a copy per
    tensor would wait once each)."""
    flat = [t.detach().contiguous().reshape(-1).view(torch.uint8) for t in tensors]
    host = policy.to_host(torch.cat(flat)).numpy()
    out, offset = [], 0
    for tensor, part in zip(tensors, flat):
        dtype = torch.empty(0, dtype=tensor.dtype).numpy().dtype
        out.append(host[offset : offset + part.numel()].view(dtype).reshape(tensor.shape))
        offset += part.numel()
    return out
