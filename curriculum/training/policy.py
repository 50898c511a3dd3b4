"""How training uses its device: every choice that differs between a CPU and a GPU, in one object.

:func:`device_policy` resolves a :class:`DevicePolicy` from the device once per process, and the
engine, the members and both stages read their device-dependent choices from it: what
``--precision auto`` and ``--stack auto`` mean, how often the divergence guard reads back, which
optimizer implementation runs, where generators live, which RNG states a checkpoint saves, and
whether host-to-device copies are pinned and asynchronous, and whether ``--processes auto`` fans a
command out to one process per core. The launcher asks that last question before torch is imported
(:func:`fans_out`), so this module imports torch only where a policy is applied.

No GPU has to be present to run the GPU's choices: with ``CURRICULUM_DEVICE_POLICY=gpu`` in the
environment a run on the CPU makes every choice a GPU makes (bf16 autocast, stacked members, a
fused optimizer, a read-back every 50 steps), so the test suite exercises the GPU path's logic and
its numbers on a machine without one. Only what needs the hardware (pinned memory, the CUDA RNG)
still depends on the device itself.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from scoring.errors import UserError

if TYPE_CHECKING:
    import torch

POLICY_ENV = "CURRICULUM_DEVICE_POLICY"
KINDS = ("cpu", "gpu")
FANS_OUT = {"cpu": True, "gpu": False}  # DevicePolicy.fan_out of each kind, readable without torch


@dataclass(frozen=True)
class DevicePolicy:
    """The device-dependent choices of one process (see the module docstring).

    ``kind`` says whose choices these are (``cpu`` or ``gpu``), which need not be the kind of
    ``device`` when a test runs the GPU's choices on the CPU.
    """

    device: torch.device
    kind: str
    precision: str  # what --precision auto means: "bf16" or "no" (float32)
    stack: bool  # what --stack auto means: members of one architecture trained as one stacked model
    guard_every: int  # steps between the divergence guard's read-backs (each one waits for the device)
    optimizer: str  # "for-loop", "foreach" or "fused": the optimizer implementation
    pin_memory: bool  # host batches staged in pinned memory and copied without blocking
    fan_out: bool  # --processes auto: one process per usable core (else the launcher decides the layout)

    def optimizer_options(self) -> dict:
        """Keyword arguments that select the implementation in ``torch.optim.SGD`` / ``Adam``."""
        return {"fused": True} if self.optimizer == "fused" else {"foreach": self.optimizer == "foreach"}

    def rng_state(self) -> dict:
        """The global RNG states a training state saves: the CPU's and, on a GPU, this process's
        device only (not every visible GPU's, so a state resumes under another GPU count)."""
        import torch

        return {
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state(self.device) if self.device.type == "cuda" else None,
        }

    def set_rng_state(self, state: dict) -> None:
        import torch

        torch.set_rng_state(state["torch_rng"])
        saved = state.get("cuda_rng")
        if saved is not None and self.device.type == "cuda":
            if isinstance(saved, list):  # saved by an older version: every visible GPU's state
                saved = saved[min(self.device.index or 0, len(saved) - 1)]
            torch.cuda.set_rng_state(saved, self.device)

    def to_device(self, host: torch.Tensor) -> torch.Tensor:
        """A host tensor on the device: staged in pinned memory and copied asynchronously where
        the policy says so and the hardware can pin (a CPU-only machine cannot)."""
        if self.pin_memory and self.device.type != "cpu":
            host = host.pin_memory()
        return host.to(self.device, non_blocking=self.pin_memory)

    def to_host(self, tensor: torch.Tensor) -> torch.Tensor:
        """A copy of ``tensor`` on the host, which waits for the device: the score stage makes one
        per checkpoint (:func:`curriculum.training.engine.read_back`; the budget tests count it)."""
        return tensor.to("cpu", copy=True)


def policy_of(kind: str, device: torch.device) -> DevicePolicy:
    """The ``kind`` machine's choices (``cpu`` or ``gpu``), applied on ``device``.

    A GPU stacks its members and trains in bf16 where it supports it: a step of a small CNN is
    bound by kernel launches there, so fewer, larger kernels and a fused optimizer pay, and the
    host reads the guard every 50 steps only; its processes are laid out by the launcher, one a
    GPU. A CPU is bound by arithmetic: one by one in float32 (measured faster,
    experiments/README.md) with the plain for-loop optimizer, a read-back costs nothing, so the
    guard reads every step, and a plain command fans out to one single-threaded process per core.
    """
    import torch

    if kind == "gpu":
        bf16 = device.type != "cuda" or torch.cuda.is_bf16_supported()
        precision = "bf16" if bf16 else "no"
        return DevicePolicy(
            device,
            "gpu",
            precision,
            stack=True,
            guard_every=50,
            optimizer="fused",
            pin_memory=True,
            fan_out=FANS_OUT["gpu"],
        )
    return DevicePolicy(
        device, "cpu", "no", stack=False, guard_every=1, optimizer="for-loop", pin_memory=False, fan_out=FANS_OUT["cpu"]
    )


def policy_kind(device_type: str) -> str:
    """Whose choices (``cpu`` or ``gpu``) a process on a device of this type (``cpu``, ``cuda``)
    makes: its own, unless ``CURRICULUM_DEVICE_POLICY`` says otherwise."""
    kind = os.environ.get(POLICY_ENV, "").strip().lower()
    if kind and kind not in KINDS:
        raise UserError(f"{POLICY_ENV}={kind} is not a device policy; set it to cpu or gpu, or unset it.")
    return kind or ("cpu" if device_type == "cpu" else "gpu")


def fans_out(device_type: str) -> bool:
    """Whether ``--processes auto`` starts one process per core on a device of this type: the
    :class:`DevicePolicy` ``fan_out`` choice, answered without importing torch (the launcher asks)."""
    return FANS_OUT[policy_kind(device_type)]


def device_policy(device: torch.device) -> DevicePolicy:
    """The policy of a process training on ``device``: the GPU's choices on a GPU, the CPU's on a
    CPU, unless ``CURRICULUM_DEVICE_POLICY`` (``cpu`` or ``gpu``) says whose choices to make."""
    return policy_of(policy_kind(device.type), device)
