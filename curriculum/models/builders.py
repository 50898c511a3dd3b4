"""Network architectures by name: ``build_model(arch, in_channels=..., num_classes=...,
image_size=(H, W))`` returns a fresh model mapping ``(N, C, H, W)`` floats to logits.

The paper's nets (Hacohen et al. 2020, appendix B: ``st-vgg``, ``small-st-vgg``, ``mnist-net``,
``fc``), ``lenet5``, a CIFAR ``resnet18``, ``linear-<name>`` (activations removed) and any
torchvision model (``tv:<model>``), at any image size and channel count. Initialisation draws
from the global torch RNG only. What appendix B leaves open and what was chosen (padding,
activation, initialisation, tiny images): docs/REFERENCE.md, "Architectures".
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

import torch
from torch import nn

from curriculum.config.constraints import Interval
from curriculum.models.architectures import (
    LINEAR_PREFIX,
    TORCHVISION_PREFIX,
    auto_arch,
    check_arch,
    list_architectures,
    split_linear,
)
from scoring.errors import UserError

_COUNT = Interval("[1, inf)", whole=True)

__all__ = [
    "build_model",
    "list_architectures",
    "auto_arch",
    "check_arch",
    "linearize",
    "LINEAR_PREFIX",
    "TORCHVISION_PREFIX",
]


# ---------------------------------------------------------------------------------------------
# Building blocks
# ---------------------------------------------------------------------------------------------


class _Stack:
    """Appends layers to a list while tracking channels and the feature map's height/width."""

    def __init__(self, in_channels: int, image_size: tuple[int, int], act: Callable[[], nn.Module]):
        self.layers: list[nn.Module] = []
        self.channels = in_channels
        self.h, self.w = image_size
        self.act = act

    def conv(self, out_channels: int, kernel: int, padding: str = "same") -> None:
        """``kernel`` x ``kernel`` convolution (stride 1) followed by the activation.

        ``padding="same"`` keeps the size (even kernels pad bottom/right, as Keras does);
        ``"valid"`` shrinks each side by ``kernel - 1`` unless the side is smaller than the kernel,
        in which case that axis is "same"-padded so the side stays >= 1.
        """
        if padding == "same":
            pad_h = pad_w = kernel - 1
        else:
            pad_h = kernel - 1 if self.h < kernel else 0
            pad_w = kernel - 1 if self.w < kernel else 0
        if pad_h % 2 == 0 and pad_w % 2 == 0:
            conv_padding: tuple[int, int] = (pad_h // 2, pad_w // 2)
        else:  # asymmetric: explicit zero pad, extra row/column at the bottom/right
            self.layers.append(nn.ZeroPad2d((pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2)))
            conv_padding = (0, 0)
        self.layers.append(nn.Conv2d(self.channels, out_channels, kernel, padding=conv_padding))
        self.layers.append(self.act())
        self.channels = out_channels
        self.h = self.h + pad_h - kernel + 1
        self.w = self.w + pad_w - kernel + 1

    def pool(self) -> None:
        """2x2 max-pool (floor mode); an axis of size 1 is not pooled, a 1x1 map not at all."""
        kh = 2 if self.h >= 2 else 1
        kw = 2 if self.w >= 2 else 1
        if kh == kw == 1:
            return
        self.layers.append(nn.MaxPool2d((kh, kw)))
        self.h //= kh
        self.w //= kw

    def dropout(self, p: float, enabled: bool) -> None:
        if enabled:
            self.layers.append(nn.Dropout(p))

    @property
    def flat(self) -> int:
        return self.channels * self.h * self.w


def _head(in_features: int, hidden: list[int], num_classes: int, act, dropout_p: float | None):
    """Flatten, then ``hidden`` fully connected layers (activation, optional dropout), output."""
    layers: list[nn.Module] = [nn.Flatten()]
    for width in hidden:
        layers += [nn.Linear(in_features, width), act()]
        if dropout_p is not None:
            layers.append(nn.Dropout(dropout_p))
        in_features = width
    layers.append(nn.Linear(in_features, num_classes))
    return nn.Sequential(*layers)


def _keras_init(model: nn.Module) -> nn.Module:
    """Keras defaults: Glorot-uniform weights, zero biases, for every conv and linear layer."""
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return model


def _net(features: _Stack, classifier: nn.Sequential) -> nn.Sequential:
    return nn.Sequential(OrderedDict(features=nn.Sequential(*features.layers), classifier=classifier))


# ---------------------------------------------------------------------------------------------
# The architectures
# ---------------------------------------------------------------------------------------------


def _st_vgg(in_channels, num_classes, image_size, dropout):
    s = _Stack(in_channels, image_size, nn.ELU)
    for i, (filters, kernel) in enumerate([(32, 3), (32, 3), (64, 3), (64, 3), (128, 3), (128, 3), (256, 2), (256, 2)]):
        s.conv(filters, kernel)
        if i % 2 == 1:
            s.pool()
            s.dropout(0.25, dropout)
    head = _head(s.flat, [512], num_classes, nn.ELU, 0.5 if dropout else None)
    return _keras_init(_net(s, head))


def _small_st_vgg(in_channels, num_classes, image_size, dropout):
    s = _Stack(in_channels, image_size, nn.ELU)
    for i, filters in enumerate([32, 32, 64, 64]):
        s.conv(filters, 3)
        if i % 2 == 1:
            s.pool()
            s.dropout(0.25, dropout)
    head = _head(s.flat, [128], num_classes, nn.ELU, 0.5 if dropout else None)
    return _keras_init(_net(s, head))


def _mnist_net(in_channels, num_classes, image_size, dropout):
    s = _Stack(in_channels, image_size, nn.ReLU)
    s.conv(32, 3, padding="valid")
    s.conv(64, 3, padding="valid")
    s.pool()
    s.dropout(0.25, dropout)
    head = _head(s.flat, [128], num_classes, nn.ReLU, 0.5 if dropout else None)
    return _keras_init(_net(s, head))


def _fc(in_channels, num_classes, image_size, dropout):
    h, w = image_size
    head = _head(in_channels * h * w, [1024, 1024], num_classes, nn.ELU, 0.5 if dropout else None)
    return _keras_init(nn.Sequential(OrderedDict(classifier=head)))


def _logistic(in_channels, num_classes, image_size, dropout):
    h, w = image_size
    head = _head(in_channels * h * w, [], num_classes, nn.ELU, None)
    return _keras_init(nn.Sequential(OrderedDict(classifier=head)))


def _lenet5(in_channels, num_classes, image_size, dropout):
    s = _Stack(in_channels, image_size, nn.ReLU)
    s.conv(6, 5, padding="same")
    s.pool()
    s.conv(16, 5, padding="valid")
    s.pool()
    head = _head(s.flat, [120, 84], num_classes, nn.ReLU, None)
    return _net(s, head)


def _resnet18(in_channels, num_classes, image_size, dropout):
    from torchvision.models import resnet18

    model = resnet18(weights=None, num_classes=num_classes)
    model.conv1 = nn.Conv2d(in_channels, 64, kernel_size=3, stride=1, padding=1, bias=False)
    nn.init.kaiming_normal_(model.conv1.weight, mode="fan_out", nonlinearity="relu")
    model.maxpool = nn.Identity()
    return model


# name -> builder (names and descriptions: curriculum.models.architectures)
_BUILDERS: dict[str, Callable[..., nn.Module]] = {
    "st-vgg": _st_vgg,
    "small-st-vgg": _small_st_vgg,
    "mnist-net": _mnist_net,
    "fc": _fc,
    "lenet5": _lenet5,
    "resnet18": _resnet18,
    "logistic": _logistic,
}


# ---------------------------------------------------------------------------------------------
# Linear variant
# ---------------------------------------------------------------------------------------------

# Every element-wise nonlinearity torch ships as a module. Softmax-like and GLU (which halves a
# dimension) change shapes or normalise, so they are not activations here and are kept.
_ACTIVATION_TYPES: tuple[type[nn.Module], ...] = tuple(
    t
    for t in (
        getattr(nn, name, None)
        for name in (
            "ReLU",
            "ReLU6",
            "LeakyReLU",
            "PReLU",
            "RReLU",
            "ELU",
            "SELU",
            "CELU",
            "GELU",
            "SiLU",
            "Mish",
            "Hardswish",
            "Hardsigmoid",
            "Hardtanh",
            "Hardshrink",
            "Softshrink",
            "Sigmoid",
            "LogSigmoid",
            "Tanh",
            "Tanhshrink",
            "Softplus",
            "Softsign",
            "Threshold",
        )
    )
    if t is not None
)

_MAX_TO_AVG = {nn.MaxPool1d: nn.AvgPool1d, nn.MaxPool2d: nn.AvgPool2d, nn.MaxPool3d: nn.AvgPool3d}
_ADAPTIVE_MAX_TO_AVG = {
    nn.AdaptiveMaxPool1d: nn.AdaptiveAvgPool1d,
    nn.AdaptiveMaxPool2d: nn.AdaptiveAvgPool2d,
    nn.AdaptiveMaxPool3d: nn.AdaptiveAvgPool3d,
}


def _linear_replacement(module: nn.Module) -> nn.Module | None:
    if isinstance(module, _ACTIVATION_TYPES):
        return nn.Identity()
    for max_type, avg_type in _MAX_TO_AVG.items():
        if type(module) is max_type:
            dilation = module.dilation if isinstance(module.dilation, tuple) else (module.dilation,)
            if any(d != 1 for d in dilation) or module.return_indices:
                raise UserError(
                    f"Cannot make a linear variant of a dilated or index-returning max-pool "
                    f"({module}); pick an architecture without one."
                )
            # count_include_pad=False: average the real pixels of a window, as max-pool takes the
            # max of the real pixels; either choice is linear.
            return avg_type(
                module.kernel_size,
                module.stride,
                module.padding,
                ceil_mode=module.ceil_mode,
                count_include_pad=False,
            )
    for max_type, avg_type in _ADAPTIVE_MAX_TO_AVG.items():
        if type(module) is max_type:
            return avg_type(module.output_size)
    return None


def linearize(model: nn.Module) -> nn.Module:
    """Replace, in place, every activation module by ``Identity`` and every max-pool by an
    average pool of the same kernel, stride, padding and ceil mode (adaptive max-pool by
    adaptive average pool of the same output size). Returns ``model``.

    Only modules are rewritten: a model that calls ``torch.nn.functional`` activations in its
    ``forward`` or multiplies activations together (squeeze-and-excitation, attention) stays
    nonlinear; :func:`build_model` checks ``linear-tv:`` models numerically for that.
    """
    for name, child in list(model.named_children()):
        replacement = _linear_replacement(child)
        if replacement is not None:
            setattr(model, name, replacement)
        else:
            linearize(child)
    return model


# ---------------------------------------------------------------------------------------------
# torchvision models
# ---------------------------------------------------------------------------------------------


def _replace_first_conv(model: nn.Module, in_channels: int) -> None:
    for parent in model.modules():
        for name, child in parent.named_children():
            if isinstance(child, nn.Conv2d):
                if child.in_channels == in_channels:
                    return
                new = nn.Conv2d(
                    in_channels,
                    child.out_channels,
                    child.kernel_size,
                    stride=child.stride,
                    padding=child.padding,
                    dilation=child.dilation,
                    bias=child.bias is not None,
                    padding_mode=child.padding_mode,
                )
                setattr(parent, name, new)
                return
    raise UserError("This torchvision model has no convolution to adapt to the channel count.")


def _torchvision(name: str, in_channels: int, num_classes: int) -> nn.Module:
    import torchvision.models as tvm

    kwargs: dict = {"weights": None, "num_classes": num_classes}
    if name in ("googlenet", "inception_v3"):
        # Without auxiliary heads the model returns plain logits in training mode too.
        kwargs.update(aux_logits=False, init_weights=True)
    model = tvm.get_model(name, **kwargs)
    if in_channels != 3:
        _replace_first_conv(model, in_channels)
    return model


def _dry_run(model: nn.Module, arch: str, in_channels: int, image_size, num_classes: int, check_linear: bool) -> None:
    """One eval-mode forward at the requested size (and, for linear variants, a linearity check)
    so that a size the model cannot take fails here with one sentence. Uses its own generator, so
    the global RNG (and hence the next model's initialisation) is untouched."""
    h, w = image_size
    g = torch.Generator().manual_seed(0)
    x = torch.rand(1, in_channels, h, w, generator=g) - 0.5
    y = torch.rand(1, in_channels, h, w, generator=g) - 0.5
    # For the linearity check: f at x, y, x + y, -x, 100 x and 0. Homogeneity alone
    # (f(2x) = 2 f(x)) would not do: a ReLU net with zero biases (the usual initialisation)
    # is positively homogeneous, yet not linear.
    batch = torch.cat([x, y, x + y, -x, 100 * x, torch.zeros_like(x)]) if check_linear else x
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            try:
                out = model(batch)
            except (RuntimeError, ValueError, AssertionError, IndexError) as exc:
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise UserError(
                    f"Architecture '{arch}' cannot take {h}x{w} images with {in_channels} "
                    f"channel(s) ({first}); pick another architecture or resize the images."
                ) from exc
    finally:
        model.train(was_training)
    if not isinstance(out, torch.Tensor) or out.shape != (len(batch), num_classes):
        raise UserError(
            f"Architecture '{arch}' does not return one row of {num_classes} logits per image; "
            f"pick another architecture."
        )
    if check_linear and not _is_affine(out.double()):
        raise UserError(
            f"'{arch}' is not linear after replacing its activation and max-pool modules (it "
            f"applies nonlinearities functionally, multiplies activations, or normalises each "
            f"example); pick another architecture for the linear variant."
        )


def _is_affine(out: torch.Tensor, rtol: float = 1e-3) -> bool:
    """Rows of ``out`` are f(x), f(y), f(x + y), f(-x), f(100 x), f(0); True if f looks affine."""
    if not torch.isfinite(out).all():
        return False
    d_x, d_y, d_xy, d_mx, d_100x = out[:5] - out[5]
    scale = max(d_x.abs().max(), d_y.abs().max(), d_xy.abs().max())
    if scale == 0:  # output does not move with the input: nothing to call linear
        return False
    additive = (d_xy - d_x - d_y).abs().max() <= rtol * scale
    odd = (d_mx + d_x).abs().max() <= rtol * scale
    homogeneous = (d_100x - 100 * d_x).abs().max() <= rtol * 100 * max(d_x.abs().max(), d_100x.abs().max() / 100)
    return bool(additive and odd and homogeneous)


# ---------------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------------


def build_model(
    arch: str,
    *,
    in_channels: int,
    num_classes: int,
    image_size: tuple[int, int],
    dropout: bool = True,
) -> nn.Module:
    """A fresh model for ``(N, in_channels, H, W)`` inputs and ``num_classes`` logits.

    ``dropout=False`` builds the paper's nets without their dropout layers (Hacohen et al. 2020 remove them
    for random labels); it does not touch torchvision models. Raises :class:`UserError` for an
    unknown name, bad sizes, or an image size the architecture cannot take.
    """
    name = check_arch(arch)
    in_channels = _COUNT.check(in_channels, "in_channels")
    num_classes = _COUNT.check(num_classes, "num_classes")
    try:
        h, w = (_COUNT.convert(s) for s in image_size)
    except (TypeError, ValueError):
        raise UserError(f"image_size must be (height, width) in whole numbers >= 1, got {image_size!r}.") from None

    linear, base = split_linear(name)

    if base.startswith(TORCHVISION_PREFIX):
        model = _torchvision(base[len(TORCHVISION_PREFIX) :], in_channels, num_classes)
        if linear:
            linearize(model)
        _dry_run(model, name, in_channels, (h, w), num_classes, check_linear=linear)
        return model

    builder = _BUILDERS[base]
    model = builder(in_channels, num_classes, (h, w), dropout)
    if linear:
        linearize(model)
    return model
