"""Architecture names: which exist, what each is, and which one ``--arch auto`` picks.

Torch-free, so that ``curriculum architectures`` and the check of ``--arch`` cost no torch import
(only ``tv:`` names need torchvision's list). :mod:`curriculum.models.builders` builds the networks.
"""

from __future__ import annotations

import difflib

from scoring.errors import UserError

LINEAR_PREFIX = "linear-"
TORCHVISION_PREFIX = "tv:"

# name -> one-line description; curriculum.models.builders has a builder for each
ARCHITECTURES: dict[str, str] = {
    "st-vgg": "stripped VGG (Hacohen et al. 2020, app. B): 8 convs 32-32-64-64-128-128-256-256, FC 512, ELU",
    "small-st-vgg": "small st-VGG (Hacohen et al. 2020, app. B): 4 convs 32-32-64-64, FC 128, ELU",
    "mnist-net": "MNIST architecture (Hacohen et al. 2020, app. B): 2 valid convs 32-64, pool, FC 128, ReLU",
    "fc": "fully connected net (Hacohen et al. 2020, app. B): 2 hidden layers of 1024, ELU, 0.5 dropout",
    "lenet5": "LeNet-5 (ReLU, max-pool): convs 6@5x5, 16@5x5, FC 120-84",
    "resnet18": "CIFAR-style ResNet-18: 3x3 stride-1 stem, no initial max-pool, global average pool",
    "logistic": "multinomial logistic regression: one fully connected layer from the pixels to the "
    "classes (a linear model that trains in seconds, for runs at scale)",
}


def _torchvision_names() -> list[str]:
    import torchvision.models as tvm

    return sorted(tvm.list_models(module=tvm))


def _unknown_tv(name: str, names: list[str]) -> UserError:
    hint = difflib.get_close_matches(name, names, n=1)
    return UserError(
        f"Unknown torchvision model '{name}'"
        + (f" (did you mean 'tv:{hint[0]}'?)" if hint else "")
        + f"; choose one of {', '.join(names)}."
    )


def list_architectures() -> list[tuple[str, str]]:
    """``(name, one-line description)`` for every accepted name or name pattern."""
    rows = list(ARCHITECTURES.items())
    rows.append(
        (
            f"{LINEAR_PREFIX}<name>",
            "linear variant of any of these: activations -> identity, max-pool -> average-pool",
        )
    )
    rows.append(
        (
            f"{TORCHVISION_PREFIX}<model>",
            "a torchvision classification model by name (e.g. tv:resnet50), untrained, "
            "first conv adapted to the channel count",
        )
    )
    return rows


def _unknown(arch: str) -> UserError:
    choices = list(ARCHITECTURES) + [f"{LINEAR_PREFIX}<name>", f"{TORCHVISION_PREFIX}<torchvision model>"]
    hint = difflib.get_close_matches(arch, list(ARCHITECTURES), n=1)
    return UserError(
        f"Unknown architecture '{arch}'"
        + (f" (did you mean '{hint[0]}'?)" if hint else "")
        + f"; choose one of {', '.join(choices)}."
    )


def split_linear(name: str) -> tuple[bool, str]:
    """``(linear, base)``: whether ``name`` asks for the linearised network, and the network's
    own name (``linear-linear-fc`` -> ``(True, "fc")``: linearising twice is linearising)."""
    base = name
    while base.startswith(LINEAR_PREFIX):
        base = base[len(LINEAR_PREFIX) :]
    return base != name, base


def check_arch(arch: str) -> str:
    """Return the normalised name if ``arch`` names a buildable architecture, else raise
    :class:`UserError` -- a cheap check for the CLI before any work starts (image size is only
    checked by :func:`build_model`)."""
    if not isinstance(arch, str) or not arch.strip():
        raise _unknown(str(arch))
    name = arch.strip().lower()
    _, base = split_linear(name)
    if base.startswith(TORCHVISION_PREFIX):
        tv_name = base[len(TORCHVISION_PREFIX) :]
        names = _torchvision_names()
        if tv_name not in names:
            raise _unknown_tv(tv_name, names)
    elif base not in ARCHITECTURES:
        raise _unknown(arch)
    return name


def auto_arch(image_size: tuple[int, int], in_channels: int, num_examples: int) -> str:
    """The architecture ``--arch auto`` picks.

    Rule (channel count does not enter):

    * largest side > 64 (ImageNet-like): ``tv:resnet18`` -- its strided stem and max-pool cut the
      image by 4 before the expensive layers; st-VGG's same-padded 32-filter convolutions at full
      resolution would be slow.
    * largest side <= 28 (digits 8x8, MNIST / Fashion-MNIST 28x28), or fewer than 1000 training
      examples: ``small-st-vgg`` -- Hacohen et al.'s smaller st-VGG; on scikit-learn's 8x8 digits it
      goes from ~50-65 % test accuracy after epoch 1 to ~90 % by epoch 3 and ~98 % by epoch 10
      (SGD lr 0.05, momentum 0.9, batch 100; about 3 s of one CPU thread for the 10 epochs) --
      a learning curve over epochs rather than a jump in the first one.
    * otherwise (29..64, e.g. CIFAR 32x32, tiny ImageNet 64x64): ``st-vgg``, the net Hacohen et al. 2020
      uses for CIFAR-10/100, its subsets and tiny ImageNet.
    """
    h, w = (int(s) for s in image_size)
    side = max(h, w)
    if side > 64:
        return f"{TORCHVISION_PREFIX}resnet18"
    if side <= 28 or num_examples < 1000:
        return "small-st-vgg"
    return "st-vgg"
