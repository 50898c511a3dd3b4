"""Models of one architecture trained in lockstep: one by one, or stacked into one model.

A group holds K members, each with its own seed. The seed decides the member's initial weights
(the model is built alone from it, then stacked), and its own ``torch.Generator`` draws its batch
order, augmentations and dropout masks. Dropout therefore never touches the global RNG: every
``nn.Dropout`` is replaced by :class:`MemberDropout`, whose uniform noise the group draws from the
member's generator before each step. So a member's training is the same whether it is trained
alone, in a loop beside others, or stacked with them, up to floating-point reassociation.

Stacked: parameters and buffers are stacked along a new leading dimension
(``stack_module_state``) and one optimizer steps all members' stacked tensors: SGD and Adam are
elementwise, so that equals K optimizers. The forward takes one of two ways over the same stacked
tensors. A plain stack of layers (``nn.Sequential`` of convolutions, pools, pads, activations,
dropout, one ``Flatten`` and linear layers: st-VGG, LeNet-5, the fully connected nets) runs
:func:`grouped_forward`: the members' channels side by side, each convolution one ``groups=K``
convolution, each linear layer one batched matmul. Any other model runs ``vmap`` of
``functional_call`` (``torch.func``), which computes the same convolutions but moves the member
dimension in and out at every pool and convolution, copying the activations each time: for a step
of 10 st-VGG members, 179 kernel launches against the grouped way's 162, and 330 MiB copied at
batch 100 against 117 (tests/test_budgets.py, experiments/README.md).
BatchNorm works there: its running statistics are stacked buffers updated in place per member.
fp16 is not stacked (one loss scale would skip a step for every member when one overflows), nor is
a model whose forward ``vmap`` cannot take (checked with a probe step).

Layout: members trained one by one are ``channels_last`` (NHWC, what cuDNN and oneDNN prefer). A
stacked model is plain NCHW, inputs and weights alike: ``vmap`` turns every convolution into a
grouped one over a reshaped input and moves the member dimension around pools, which undoes
``channels_last`` (a copy of the activations at each move) and would hand cuDNN NCHW inputs with
NHWC weights. The grouped way computes in ``channels_last`` throughout, inputs and weights
alike, as a member alone does (on this CPU an evaluation then costs what one by one costs, where
NCHW cost 1.5 times as much). Precision: under ``vmap`` a convolution reaches the autocast layer
as ``aten::convolution``, which CUDA autocast runs in bf16 but CPU autocast leaves in float32, so
a stacked convolution casts its operands itself (:func:`autocast_operands`) and computes in the
same precision on every device.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from contextlib import AbstractContextManager as ContextManager
from contextlib import nullcontext

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, stack_module_state, vmap


def autocast(device: torch.device, precision: str) -> ContextManager:
    """Mixed precision for forward passes: ``no`` (float32), ``bf16`` or ``fp16``."""
    if precision == "no":
        return nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


def autocast_operands(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> tuple:
    """A convolution's operands in the autocast dtype when autocast is on, else as they are: a
    stacked convolution then runs in bf16 on the CPU as it does on a GPU (see the module
    docstring); where autocast would have cast them too, the casts change nothing."""
    kind = x.device.type
    if not torch.is_autocast_enabled(kind):
        return x, weight, bias
    dtype = torch.get_autocast_dtype(kind)
    return x.to(dtype), weight.to(dtype), None if bias is None else bias.to(dtype)


class CastConv2d(nn.Conv2d):
    """A ``Conv2d`` whose operands are cast by :func:`autocast_operands` (``vmap``'s stacked way)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(*autocast_operands(x, self.weight, self.bias))


def cast_convolutions(model: nn.Module) -> nn.Module:
    """Make, in place, every plain ``nn.Conv2d`` of ``model`` a :class:`CastConv2d`."""
    for module in model.modules():
        if type(module) is nn.Conv2d:
            module.__class__ = CastConv2d
    return model


class Float32Linear(nn.Linear):
    """A ``Linear`` layer computed in its weights' float32 whatever the autocast: the classifier
    head. Its logits decide the recorded label; rounded to bf16 (8 bits of mantissa) nearly tied logits
    become tied, and the label flips against a float32 run for no reason of training. The head
    is a negligible share of the arithmetic."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(x.device.type, enabled=False):
            return F.linear(x.to(self.weight.dtype), self.weight, self.bias)


def float32_head(model: nn.Module) -> nn.Module:
    """Make, in place, the last plain ``nn.Linear`` of ``model`` (its classifier) a :class:`Float32Linear`."""
    linears = [module for module in model.modules() if type(module) is nn.Linear]
    if linears:
        linears[-1].__class__ = Float32Linear
    return model


class MemberDropout(nn.Module):
    """Dropout whose uniform noise is given (buffer ``noise``, the input's shape) rather than
    drawn from the global RNG, so that each member's masks come from its own generator."""

    def __init__(self, p: float):
        super().__init__()
        self.p = p
        self.register_buffer("noise", None, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        return x * (self.noise >= self.p).to(x.dtype) / (1 - self.p)


def own_dropout(model: nn.Module) -> nn.Module:
    """Replace, in place, every ``nn.Dropout`` by a :class:`MemberDropout` of the same rate."""
    for name, child in list(model.named_children()):
        if type(child) is nn.Dropout:
            setattr(model, name, MemberDropout(child.p))
        else:
            own_dropout(child)
    return model


def _noise_layout(model: nn.Module, sample: torch.Tensor) -> list[tuple[str, torch.Size]]:
    """(buffer name, per-example shape) of every MemberDropout's input, from one eval forward."""
    shapes: dict[str, torch.Size] = {}
    hooks = [
        module.register_forward_pre_hook(lambda m, args, name=name: shapes.__setitem__(name, args[0].shape[1:]))
        for name, module in model.named_modules()
        if isinstance(module, MemberDropout)
    ]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(sample)
    finally:
        model.train(was_training)
        for hook in hooks:
            hook.remove()
    return [(f"{name}.noise", shape) for name, shape in shapes.items()]


def _slice_optimizer_state(state: dict, k: int) -> dict:
    """Member k's share of a stacked optimizer's state_dict, in the single-model format."""
    per_param = {
        i: {
            key: value[k].clone() if torch.is_tensor(value) and value.dim() > 0 else value
            for key, value in entries.items()
        }
        for i, entries in state["state"].items()
    }
    return {"state": per_param, "param_groups": state["param_groups"]}


def _stack_optimizer_states(states: list[dict]) -> dict:
    """The stacked optimizer's state_dict from its members' single-model state_dicts."""
    stacked = {}
    for i, entries in states[0]["state"].items():
        stacked[i] = {
            key: torch.stack([s["state"][i][key] for s in states]).contiguous()
            if torch.is_tensor(value) and value.dim() > 0
            else value
            for key, value in entries.items()
        }
    return {"state": stacked, "param_groups": states[0]["param_groups"]}


def grouped_layers(model: nn.Module) -> list[tuple[str, nn.Module]] | None:
    """The (name, layer) list :func:`grouped_forward` runs for members like ``model``, or None
    when it cannot take the model: an ``nn.Sequential`` (nested ones allowed) of ungrouped
    zero-padded convolutions, pools and pads, then one ``Flatten``, then linear layers with bias,
    with activations and dropout anywhere."""
    if type(model) is not nn.Sequential:
        return None

    def leaves(module: nn.Module, prefix: str):
        for name, child in module.named_children():
            if type(child) is nn.Sequential:
                yield from leaves(child, f"{prefix}{name}.")
            else:
                yield f"{prefix}{name}", child

    layers, flat = [], False
    for name, layer in leaves(model, ""):
        if type(layer) in (nn.Conv2d, CastConv2d):
            if flat or layer.groups != 1 or layer.padding_mode != "zeros" or isinstance(layer.padding, str):
                return None
        elif type(layer) in (nn.Linear, Float32Linear):
            if not flat or layer.bias is None:
                return None
        elif type(layer) is nn.Flatten:
            if flat or layer.start_dim != 1 or layer.end_dim != -1:
                return None
            flat = True
        elif isinstance(layer, (nn.MaxPool2d, nn.AvgPool2d, nn.ZeroPad2d)):
            if flat or getattr(layer, "return_indices", False):
                return None
        elif not isinstance(layer, (nn.ELU, nn.ReLU, MemberDropout)):
            return None
        layers.append((name, layer))
    return layers if flat else None


def _grouped(x: torch.Tensor) -> torch.Tensor:
    """``[K, B, C, H, W]`` (a tensor per member) as ``[B, K*C, H, W]`` in ``channels_last``: member
    k's channels in group k, every pixel's channels of all members side by side."""
    k, b, c, h, w = x.shape
    return x.permute(1, 3, 4, 0, 2).reshape(b, h, w, k * c).permute(0, 3, 1, 2)


def grouped_forward(
    layers: list[tuple[str, nn.Module]],
    params: dict[str, torch.Tensor],
    noise: dict[str, torch.Tensor],
    x: torch.Tensor,
    members: int,
    training: bool,
) -> torch.Tensor:
    """Logits ``[K, B, classes]`` of K stacked members (``params``: name -> ``[K, ...]``) on
    ``x``: each member's own batch ``[K, B, C, H, W]`` in training, or one batch ``[B, C, H, W]``
    for all (evaluation). The activations travel as ``[B, K*C, H, W]`` in ``channels_last`` (as a
    member alone computes), member k's channels in group k, so a convolution is one ``groups=K``
    convolution and a per-channel layer acts on every member at once; the first convolution of a
    shared batch is one plain convolution with the members' filters side by side. From ``Flatten``
    on they are ``[K, B, features]`` and a linear layer is one batched matmul (the classifier head
    in float32, as :class:`Float32Linear`)."""
    k, form = members, ("members" if x.dim() == 5 else "shared")  # or "grouped", "flat", "shared-flat"
    for name, layer in layers:
        if isinstance(layer, nn.Conv2d):
            weight, bias = params[f"{name}.weight"].flatten(0, 1), params.get(f"{name}.bias")
            bias = None if bias is None else bias.flatten()
            if form == "members":
                x = _grouped(x)
            elif form == "shared":
                x = x.contiguous(memory_format=torch.channels_last)
            x, weight, bias = autocast_operands(x, weight.contiguous(memory_format=torch.channels_last), bias)
            groups = 1 if form == "shared" else k
            x = F.conv2d(x, weight, bias, layer.stride, layer.padding, layer.dilation, groups)
            form = "grouped"
        elif isinstance(layer, nn.Linear):
            weight, bias = params[f"{name}.weight"].transpose(1, 2), params[f"{name}.bias"].unsqueeze(1)
            if form == "shared-flat":
                x, form = x.expand(k, *x.shape), "flat"
            if isinstance(layer, Float32Linear):
                with torch.autocast(x.device.type, enabled=False):
                    x = torch.baddbmm(bias, x.to(weight.dtype), weight)
            else:
                x = torch.baddbmm(bias, x, weight)
        elif isinstance(layer, nn.Flatten):
            if form == "grouped":  # each member's features in its own C, H, W order
                x, form = x.unflatten(1, (k, -1)).transpose(0, 1).reshape(k, len(x), -1), "flat"
            elif form == "members":
                x, form = x.flatten(2), "flat"
            else:
                x, form = x.flatten(1), "shared-flat"
        elif isinstance(layer, MemberDropout):
            if training and layer.p > 0:
                keep = (noise[f"{name}.noise"] >= layer.p).to(x.dtype) / (1 - layer.p)  # [K, B, *shape]
                if form == "grouped":
                    keep = _grouped(keep)
                x = x * keep
        elif form == "members":  # a per-channel layer before the first convolution
            x = layer(x.flatten(0, 1)).unflatten(0, (k, -1))
        else:
            x = layer(x)
    return x


class Members:
    """K members of one architecture; the two kinds train them one by one or stacked.

    Both are built from ``(models, seeds, make_optimizer, precision, sample, compile)``: the
    members, each built alone from its seed; a function building an optimizer over a list of
    tensors; ``no``, ``bf16`` or ``fp16``; an input batch (its device is the group's); and
    whether to ``torch.compile`` the forward passes.
    """

    memory_format = torch.channels_last  # of the input batches (see the module docstring)

    def __init__(self, models: list[nn.Module], seeds: list[int], precision: str, sample: torch.Tensor):
        self.device = sample.device
        self.seeds = list(seeds)
        self.generators = [torch.Generator(device=self.device).manual_seed(seed) for seed in seeds]
        self.precision = precision
        self.noise_layout = _noise_layout(models[0], sample[:1])
        self.noise_size = sum(shape.numel() for _, shape in self.noise_layout)

    def __len__(self) -> int:
        return len(self.seeds)

    def _noise(self, batch: int) -> dict[str, torch.Tensor]:
        """Every member's dropout noise for a step of ``batch`` examples, drawn from its own
        generator: a tensor [K, batch, *shape] per MemberDropout buffer name."""
        if not self.noise_size:
            return {}
        flat = torch.empty(len(self), batch * self.noise_size, device=self.device)
        for row, generator in zip(flat, self.generators):
            row.uniform_(generator=generator)
        noise, offset = {}, 0
        for name, shape in self.noise_layout:
            size = batch * shape.numel()
            noise[name] = flat[:, offset : offset + size].view(len(self), batch, *shape)
            offset += size
        return noise

    def _autocast(self) -> ContextManager:
        return autocast(self.device, self.precision)

    def train_step(self, x: torch.Tensor, y: torch.Tensor, lr: float) -> tuple[torch.Tensor, torch.Tensor]:
        """One optimizer step of every member; ``x`` and ``y`` hold K equal consecutive batches.
        Returns the detached float32 training-mode logits [K, B, classes] and losses [K]."""
        raise NotImplementedError

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Eval-mode logits [K, N, classes] of every member on the same images ``x``."""
        raise NotImplementedError

    def member_state(self, k: int) -> dict:
        """Member k's weights, optimizer state and generator, in the format of a member alone."""
        raise NotImplementedError

    def load_member_states(self, states: list[dict]) -> None:
        raise NotImplementedError


class MemberLoop(Members):
    """Members trained one after another at each step, each with its own optimizer."""

    def __init__(self, models, seeds, make_optimizer, precision, sample, compile=False):
        super().__init__(models, seeds, precision, sample)
        self.models = models
        self.forwards = [torch.compile(model) if compile else model for model in models]
        self.optimizers = [make_optimizer(list(model.parameters())) for model in models]
        self.scalers = [torch.amp.GradScaler(self.device.type) if precision == "fp16" else None for _ in models]

    def train_step(self, x, y, lr):
        k_count = len(self)
        b = len(y) // k_count
        noise = self._noise(b)
        logits, losses = [], []
        for k, (model, forward, optimizer, scaler) in enumerate(
            zip(self.models, self.forwards, self.optimizers, self.scalers)
        ):
            model.train()
            for name, value in noise.items():
                module, _, attr = name.rpartition(".")
                setattr(model.get_submodule(module), attr, value[k])
            for group in optimizer.param_groups:
                group["lr"] = lr
            part = slice(k * b, (k + 1) * b)
            with self._autocast():
                out = forward(x[part])
            loss = F.cross_entropy(out.float(), y[part])
            optimizer.zero_grad(set_to_none=True)
            if scaler is not None:
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
            else:
                loss.backward()
                optimizer.step()
            logits.append(out.detach().float())
            losses.append(loss.detach())
        return torch.stack(logits), torch.stack(losses)

    @torch.no_grad()
    def logits(self, x):
        outs = []
        for model, forward in zip(self.models, self.forwards):
            model.eval()
            with self._autocast():
                outs.append(forward(x).float())
        return torch.stack(outs)

    def member_state(self, k):
        scaler = self.scalers[k]
        return {
            "model": self.models[k].state_dict(),
            "optimizer": self.optimizers[k].state_dict(),
            "scaler": scaler.state_dict() if scaler else None,
            "generator": self.generators[k].get_state(),
        }

    def load_member_states(self, states):
        for k, state in enumerate(states):
            self.models[k].load_state_dict(state["model"])
            self.optimizers[k].load_state_dict(state["optimizer"])
            if self.scalers[k] is not None:
                self.scalers[k].load_state_dict(state["scaler"])
            self.generators[k].set_state(state["generator"])


class StackedMembers(Members):
    """Members stacked into one model: one forward (grouped or ``vmap``), one backward, one
    optimizer step; parameters stored NCHW (see the module docstring). ``way``: ``auto``
    (grouped where :func:`grouped_layers` takes the model), ``grouped`` or ``vmap``."""

    memory_format = torch.contiguous_format

    def __init__(self, models, seeds, make_optimizer, precision, sample, compile=False, way="auto"):
        super().__init__(models, seeds, precision, sample)
        params, buffers = stack_module_state(models)
        self.params = {name: value.detach().contiguous().requires_grad_() for name, value in params.items()}
        self.buffers = {name: value.contiguous() for name, value in buffers.items()}
        self.skeleton = cast_convolutions(copy.deepcopy(models[0]).to("meta"))
        self.optimizer = make_optimizer(list(self.params.values()))
        layers = grouped_layers(self.skeleton) if way != "vmap" else None
        if way == "grouped" and layers is None:
            raise ValueError(f"grouped_forward cannot take {type(models[0]).__name__} (see grouped_layers)")
        self.way = "grouped" if layers is not None else "vmap"
        k_count = len(models)

        def one(params, buffers, noise, x):
            return functional_call(self.skeleton, (params, {**buffers, **noise}), (x,))

        if layers is not None:  # buffers: none in a plain stack of layers

            def grouped(training: bool) -> Callable:
                return lambda params, buffers, noise, x: grouped_forward(layers, params, noise, x, k_count, training)

            train_forward, eval_forward = grouped(True), grouped(False)
        else:
            train_forward = vmap(one, in_dims=(0, 0, 0, 0), randomness="error")
            eval_forward = vmap(one, in_dims=(0, 0, None, None), randomness="error")
        self.train_forward = torch.compile(train_forward) if compile else train_forward
        self.eval_forward = torch.compile(eval_forward) if compile else eval_forward

    def train_step(self, x, y, lr):
        k_count = len(self)
        b = len(y) // k_count
        noise = self._noise(b)
        self.skeleton.train()
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        with self._autocast():
            out = self.train_forward(self.params, self.buffers, noise, x.unflatten(0, (k_count, b)))
        losses = F.cross_entropy(out.flatten(0, 1).float(), y, reduction="none").view(k_count, b).mean(1)
        self.optimizer.zero_grad(set_to_none=True)
        losses.sum().backward()  # member k's loss depends on member k's slices only
        self.optimizer.step()
        return out.detach().float(), losses.detach()

    @torch.no_grad()
    def logits(self, x):
        self.skeleton.eval()
        with self._autocast():
            return self.eval_forward(self.params, self.buffers, {}, x).float()

    def member_state(self, k):
        model = {name: tensor[k].detach().clone() for name, tensor in {**self.params, **self.buffers}.items()}
        return {
            "model": model,
            "optimizer": _slice_optimizer_state(self.optimizer.state_dict(), k),
            "scaler": None,
            "generator": self.generators[k].get_state(),
        }

    def load_member_states(self, states):
        with torch.no_grad():
            for name, tensor in {**self.params, **self.buffers}.items():
                tensor.copy_(torch.stack([state["model"][name] for state in states]))
        self.optimizer.load_state_dict(_stack_optimizer_states([state["optimizer"] for state in states]))
        for generator, state in zip(self.generators, states):
            generator.set_state(state["generator"])


#: Words of the errors a device raises on its own (not a model vmap cannot take): never a reason to
#: train one by one, which would hide them behind a run 5-7x slower.
DEVICE_ERRORS = ("out of memory", "CUDA", "cuDNN", "CUBLAS", "cublas", "NCCL", "HIP", "MIOpen", "device-side")


def stacking_refusal(
    models: list[nn.Module], make_optimizer: Callable, precision: str, sample: torch.Tensor
) -> str | None:
    """Why members like ``models`` (two fresh ones) cannot train stacked, or None: the probe is
    one stacked step of them on ``sample`` (two images) each. An error of the device itself
    (out of memory, cuDNN, CUDA) is raised, not returned."""
    if precision == "fp16":
        return "fp16 loss scaling would couple the members"
    try:
        probe = StackedMembers(models, [0, 1], make_optimizer, precision, sample)
        x = torch.cat([sample, sample]).contiguous(memory_format=probe.memory_format)
        probe.train_step(x, torch.zeros(2 * len(sample), dtype=torch.long, device=sample.device), 0.0)
    except torch.OutOfMemoryError:
        raise
    except Exception as exc:  # what vmap cannot take on this model means: train one by one
        message = str(exc).strip()
        if any(word in message for word in DEVICE_ERRORS):
            raise
        first = message.splitlines()[0] if message else ""
        return f"{type(exc).__name__}: {first}"
    return None
