"""Budgets of the GPU path, counted on the CPU: dispatched operations and host synchronisations
per training step, evaluation batch and checkpoint (a ``TorchDispatchMode`` sees every operation
the device would run), the precision of every stacked convolution, and a stacked step that
``torch.compile`` takes without a graph break.

Everything runs under the GPU's device policy (:mod:`curriculum.training.policy`). On a GPU a
small CNN's step is bound by kernel launches (8-10 us each on an H200, about what a CIFAR step
of st-VGG computes in), so the number of launching operations is its cost; a host
synchronisation stalls the launch queue. Operation counts do not depend on the batch or image
size, so small ones give the counts of the real run.
"""

from collections import Counter

import numpy as np
import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from curriculum.config.stages import TrainingConfig
from curriculum.data.datasets import Dataset, Split
from curriculum.training.engine import (
    DeviceData,
    FiniteGuard,
    MemberSetup,
    augment,
    make_members,
    predict,
    train_steps,
)
from curriculum.training.policy import policy_of

CPU = torch.device("cpu")
GPU_POLICY = policy_of("gpu", CPU)

#: Operations that launch no kernel: views and aliases, allocations, profiler markers.
NO_KERNEL = {
    "aten.detach.default",
    "aten._unsafe_view.default",
    "aten.empty.memory_format",
    "aten.empty_strided.default",
    "aten.new_empty_strided.default",
    "aten.empty_like.default",
    "aten.lift_fresh.default",
}
#: Operations that make the host wait for the device.
SYNCS = {
    "aten._local_scalar_dense.default",
    "aten.nonzero.default",
    "aten.is_nonzero.default",
    "aten.equal.default",
    "aten.item.default",
}

# Launching operations of 10 st-VGG members stacked, bf16, in each way of stacking them (counted
# at this commit). Grouped, the way st-VGG takes: the members' step 162, the loop's step 197 (of
# which batch and augmentation 34; float32 158), an evaluation batch 72; 16 of a step are its
# weights' copies to channels_last and back. vmap, the way of any other architecture: 179, 214
# (float32 178), 80. The members' step is forward, backward and optimizer; the loop's adds the
# batch, its augmentation and the divergence guard. bf16 costs about 40 casts a step (each weight
# cast and its gradient cast back), as autocast does on a GPU.
BUDGETS = {  # way: (members' step, loop step, evaluation batch)
    "grouped": (175, 210, 80),
    "vmap": (200, 230, 90),
}


class Dispatches(TorchDispatchMode):
    """Counts the operations that launch a kernel, and the host synchronisations: a read of a
    device value (``item``, ``bool``, ``nonzero``) or a copy to the host."""

    def __init__(self):
        super().__init__()
        self.launching: Counter = Counter()
        self.syncs: Counter = Counter()
        self.inputs: list[tuple[str, list[torch.dtype]]] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = str(func)
        to_host = (
            name == "aten._to_copy.default"
            and kwargs.get("device") is not None
            and torch.device(kwargs["device"]).type == "cpu"
            # from a device, or (running on the CPU) a pure transfer: no cast, as a read-back is
            and (args[0].device.type != "cpu" or kwargs.get("dtype") in (None, args[0].dtype))
        )
        if name in SYNCS or to_host:
            self.syncs[name] += 1
        elif not (func.is_view or name in NO_KERNEL or name.startswith("profiler.")):
            self.launching[name] += 1
        self.inputs.append((name, [a.dtype for a in args if isinstance(a, torch.Tensor)]))
        return func(*args, **kwargs)

    @property
    def launches(self) -> int:
        return sum(self.launching.values())


def random_images(train: int, test: int, size: int = 32, channels: int = 3) -> Dataset:
    """Random uint8 images of 10 classes (what they show does not change an operation count)."""
    rng = np.random.default_rng(0)

    def split(n: int) -> Split:
        return Split(
            rng.integers(0, 256, (n, size, size, channels), dtype=np.uint8), rng.integers(0, 10, n).astype(np.int64)
        )

    return Dataset.build(f"random-{size}", split(train), split(test), [str(i) for i in range(10)])


@pytest.fixture(scope="module", params=list(BUDGETS))
def stvgg(request):
    """10 st-VGG members stacked under the GPU policy, on CIFAR-shaped data (2 images a member),
    in each way of stacking."""
    dataset = random_images(20, 2)
    data = DeviceData(dataset, CPU, GPU_POLICY)
    config = TrainingConfig(dataset=dataset.name, augment=True).complete()
    setup = MemberSetup(config, dataset, data, "st-vgg", "bf16", stacked=True, stack_way=request.param)
    group = make_members(setup, list(range(10)))
    assert group.way == request.param
    return group, data


def _step(group, data, start, guard):
    index = torch.arange(20).view(10, 2)
    train_steps(group, data, start, start + 1, lambda s: index, lambda s: 0.01, True, guard)


def test_a_stacked_step_launches_within_budget_and_never_waits(stvgg):
    group, data = stvgg
    guard = FiniteGuard(len(group), GPU_POLICY)
    _step(group, data, 0, guard)  # the optimizer's state is created at the first step
    with Dispatches() as counted:
        _step(group, data, 1, guard)
    members_budget, loop_budget, _ = BUDGETS[group.way]
    assert counted.launches <= loop_budget, counted.launching.most_common()
    assert not counted.syncs, counted.syncs
    x, y = data.batch("train", torch.arange(20), group.memory_format)
    with Dispatches() as counted:
        group.train_step(x, y, 0.01)
    assert counted.launches <= members_budget, counted.launching.most_common()
    assert not counted.syncs, counted.syncs
    with Dispatches() as counted:  # the guard reads the device once every 50 steps
        _step(group, data, 49, guard)
    assert sum(counted.syncs.values()) == 1, counted.syncs


def test_an_evaluation_batch_launches_within_budget_and_never_waits(stvgg):
    group, data = stvgg
    predict(group, data, "test")  # warm
    with Dispatches() as counted:
        predict(group, data, "test")  # one batch: the whole split
    assert counted.launches <= BUDGETS[group.way][2], counted.launching.most_common()
    assert not counted.syncs, counted.syncs


def test_a_checkpoint_waits_for_the_device_once():
    """Predictions of both splits, narrowed on the device, and the divergence flags: one copy."""
    from curriculum.stages.score import GroupTrainer, ScoreConfig

    dataset = random_images(30, 6, size=8, channels=1)
    for train_record in ("eval", "online"):
        config = ScoreConfig(
            dataset=dataset.name,
            arch="small-st-vgg",
            batch_size=10,
            members=2,
            epochs=1,
            train_record=train_record,
            record_probs=True,
        ).complete()
        data = DeviceData(dataset, CPU, GPU_POLICY)
        trainer = GroupTrainer(MemberSetup(config, dataset, data, "small-st-vgg", "bf16", True), [0, 1], 3, 3)
        trainer.run_to(2, None)
        with Dispatches() as counted:
            rows = trainer.record(initial=False)
        assert sum(counted.syncs.values()) == 1, counted.syncs
        assert {key: value.dtype for key, value in rows[1]["test"].items()} == {
            "pred": np.int16,
            "p_true": np.float16,
            "el2n": np.float16,
            "probs": np.float16,
        }


def test_every_stacked_convolution_computes_in_bf16(stvgg):
    """Under vmap a convolution reaches autocast as ``aten::convolution``: CUDA autocast has a
    rule for it, CPU autocast has none (so the CPU tests would compute it in float32 where a GPU
    uses bf16). The stacked members cast their convolutions themselves, in either way, so on the
    CPU too every convolution, forward and backward, computes in bf16."""
    has_rule = torch._C._dispatch_has_kernel_for_dispatch_key
    assert has_rule("aten::convolution", "AutocastCUDA") and not has_rule("aten::convolution", "AutocastCPU")
    group, data = stvgg
    x, y = data.batch("train", torch.arange(20), group.memory_format)
    with Dispatches() as counted:
        group.train_step(augment(x, group.generators, group.memory_format), y, 0.01)
    convolutions = [dtypes for name, dtypes in counted.inputs if name.startswith("aten.convolution")]
    assert len(convolutions) == 2 * 8  # st-VGG: 8 convolutions, forward and backward
    assert all(dtypes and set(dtypes) == {torch.bfloat16} for dtypes in convolutions), convolutions


@pytest.mark.parametrize("way", list(BUDGETS))
def test_stacked_forward_compiles_without_a_graph_break(way):
    import torch._dynamo

    dataset = random_images(8, 2, size=8, channels=1)
    data = DeviceData(dataset, CPU, GPU_POLICY)
    config = TrainingConfig(dataset=dataset.name).complete()
    setup = MemberSetup(config, dataset, data, "small-st-vgg", "bf16", stacked=True, stack_way=way)
    group = make_members(setup, [0, 1])
    x, _ = data.batch("train", torch.arange(8), group.memory_format)
    torch._dynamo.reset()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        explained = torch._dynamo.explain(group.train_forward)(
            group.params, group.buffers, group._noise(4), x.view(2, 4, 1, 8, 8)
        )
    assert explained.graph_break_count == 0, explained.break_reasons
    assert explained.graph_count == 1


def test_the_classifier_head_computes_in_float32_and_the_other_layers_in_bf16(stvgg):
    """The head's logits decide the recorded label: rounded to bf16, nearly tied logits would tie
    (Float32Linear). st-VGG's two linear layers are batched matmuls over the members."""
    group, data = stvgg
    x, _ = data.batch("test", torch.arange(2), group.memory_format)
    with Dispatches() as counted:
        group.logits(x)
    matmuls = [dtypes for name, dtypes in counted.inputs if name.split(".")[1] in ("bmm", "baddbmm", "mm", "addmm")]
    assert len(matmuls) == 2, counted.inputs
    assert set(matmuls[0]) == {torch.bfloat16} and set(matmuls[1]) == {torch.float32}, matmuls
