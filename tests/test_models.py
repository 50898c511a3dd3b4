"""Tests for curriculum.models.builders: shapes at any size, the paper's layer lists, the linear variant,
dropout removal, torchvision models, the auto rule, and that the default net learns digits."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from curriculum.models.builders import (
    _ACTIVATION_TYPES,
    _dry_run,
    auto_arch,
    build_model,
    check_arch,
    linearize,
    list_architectures,
)
from scoring.errors import UserError

OWN = ["st-vgg", "small-st-vgg", "mnist-net", "fc", "lenet5", "resnet18"]
# (channels, height, width): digits, MNIST, CIFAR, and awkward ones (odd, non-square, 1x1).
SIZES = [(1, 8, 8), (1, 28, 28), (3, 32, 32), (2, 5, 7), (1, 1, 1), (3, 3, 17)]


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """These models and batches are tiny: one intra-op thread is as fast, and on a shared CPU it
    avoids OpenMP threads spinning against other processes (which made this file 3x slower)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _build(arch, c, h, w, k=7, **kw):
    return build_model(arch, in_channels=c, num_classes=k, image_size=(h, w), **kw)


def _convs(model):
    return [m for m in model.modules() if isinstance(m, nn.Conv2d)]


def _linears(model):
    return [m for m in model.modules() if isinstance(m, nn.Linear)]


def _count(model, kind):
    return sum(isinstance(m, kind) for m in model.modules())


# ----------------------------------------------------------------------------------------------
# Names
# ----------------------------------------------------------------------------------------------


def test_list_architectures_names_every_builder():
    rows = list_architectures()
    names = [name for name, _ in rows]
    assert names[: len(OWN)] == OWN
    assert "linear-<name>" in names and "tv:<model>" in names
    assert all(isinstance(d, str) and d and "\n" not in d for _, d in rows)


@pytest.mark.parametrize("bad", ["x", "vgg", "linear-x", "tv:not_a_model", "", "st-vgg-2"])
def test_unknown_names_raise_user_error(bad):
    with pytest.raises(UserError) as info:
        _build(bad, 1, 8, 8)
    assert "choose one of" in str(info.value)
    if not bad.endswith("not_a_model"):
        assert "st-vgg" in str(info.value)


def test_unknown_name_suggests_close_match():
    with pytest.raises(UserError, match="did you mean 'st-vgg'"):
        check_arch("st_vgg")


def test_check_arch_normalises_and_accepts_patterns():
    assert check_arch(" ST-VGG ") == "st-vgg"
    assert check_arch("linear-lenet5") == "linear-lenet5"
    assert check_arch("tv:resnet18") == "tv:resnet18"
    assert check_arch("linear-tv:resnet18") == "linear-tv:resnet18"


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(in_channels=0, num_classes=3, image_size=(8, 8)),
        dict(in_channels=1, num_classes=0, image_size=(8, 8)),
        dict(in_channels=1, num_classes=3, image_size=(0, 8)),
        dict(in_channels=1, num_classes=3, image_size=(8,)),
    ],
)
def test_bad_sizes_raise_user_error(kwargs):
    with pytest.raises(UserError):
        build_model("small-st-vgg", **kwargs)


# ----------------------------------------------------------------------------------------------
# Shapes at any size, channels_last, autocast
# ----------------------------------------------------------------------------------------------


def _shape_cases():
    for arch in OWN + ["linear-" + a for a in OWN]:
        for size in SIZES:
            # ResNet-18 is the slow one to build; its global pooling makes size matter little.
            if "resnet18" in arch and size not in [(1, 8, 8), (3, 32, 32), (2, 5, 7)]:
                continue
            yield arch, *size


@pytest.mark.parametrize("arch,c,h,w", list(_shape_cases()))
def test_output_shape_any_size(arch, c, h, w):
    torch.manual_seed(0)
    model = _build(arch, c, h, w, k=7)
    out = model(torch.rand(3, c, h, w))
    assert out.shape == (3, 7)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("arch", OWN)
def test_channels_last_and_bf16_autocast(arch):
    torch.manual_seed(0)
    model = _build(arch, 3, 12, 10, k=4).to(memory_format=torch.channels_last)
    x = torch.rand(4, 3, 12, 10).to(memory_format=torch.channels_last)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(x)
    assert out.shape == (4, 4)
    loss = nn.functional.cross_entropy(out.float(), torch.tensor([0, 1, 2, 3]))
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


def test_pools_never_shrink_below_one():
    # st-VGG on 8x8 digits: 8 -> 4 -> 2 -> 1; the fourth pool (1x1 input) is left out.
    model = _build("st-vgg", 1, 8, 8)
    assert _count(model, nn.MaxPool2d) == 3
    assert _linears(model)[0].in_features == 256 * 1 * 1
    # A 1-pixel-high strip is only pooled along its width.
    strip = _build("small-st-vgg", 1, 1, 9)
    pools = [m for m in strip.modules() if isinstance(m, nn.MaxPool2d)]
    assert [tuple(p.kernel_size) for p in pools] == [(1, 2), (1, 2)]
    assert _linears(strip)[0].in_features == 64 * 1 * 2


# ----------------------------------------------------------------------------------------------
# The paper's architectures (Hacohen et al. 2020, appendix B)
# ----------------------------------------------------------------------------------------------


def test_st_vgg_matches_appendix_b():
    model = _build("st-vgg", 3, 32, 32, k=10)
    convs = _convs(model)
    assert [c.out_channels for c in convs] == [32, 32, 64, 64, 128, 128, 256, 256]
    assert [tuple(c.kernel_size) for c in convs] == [(3, 3)] * 6 + [(2, 2)] * 2
    assert _count(model, nn.MaxPool2d) == 4  # after every second conv
    pools = [m for m in model.modules() if isinstance(m, nn.MaxPool2d)]
    assert all(tuple(p.kernel_size) == (2, 2) for p in pools)
    linears = _linears(model)
    assert [m.out_features for m in linears] == [512, 10]
    assert linears[0].in_features == 256 * 2 * 2  # "same" convs: 32 -> 16 -> 8 -> 4 -> 2
    assert sorted(d.p for d in model.modules() if isinstance(d, nn.Dropout)) == [0.25] * 4 + [0.5]


def test_small_st_vgg_matches_appendix_b():
    model = _build("small-st-vgg", 3, 32, 32, k=5)
    convs = _convs(model)
    assert [c.out_channels for c in convs] == [32, 32, 64, 64]
    assert all(tuple(c.kernel_size) == (3, 3) for c in convs)
    assert _count(model, nn.MaxPool2d) == 2
    assert [m.out_features for m in _linears(model)] == [128, 5]
    assert sorted(d.p for d in model.modules() if isinstance(d, nn.Dropout)) == [0.25, 0.25, 0.5]


def test_mnist_net_matches_appendix_b():
    model = _build("mnist-net", 1, 28, 28, k=10)
    assert [c.out_channels for c in _convs(model)] == [32, 64]
    assert _count(model, nn.MaxPool2d) == 1
    linears = _linears(model)
    assert [m.out_features for m in linears] == [128, 10]
    assert linears[0].in_features == 64 * 12 * 12  # valid convs: 28 -> 26 -> 24 -> pool 12


def test_fc_matches_appendix_b():
    model = _build("fc", 3, 32, 32, k=2)
    assert _convs(model) == []
    assert [(m.in_features, m.out_features) for m in _linears(model)] == [
        (3072, 1024),
        (1024, 1024),
        (1024, 2),
    ]
    assert [d.p for d in model.modules() if isinstance(d, nn.Dropout)] == [0.5, 0.5]


def test_lenet5_and_resnet18_structure():
    lenet = _build("lenet5", 1, 28, 28, k=10)
    assert [c.out_channels for c in _convs(lenet)] == [6, 16]
    assert [(m.in_features, m.out_features) for m in _linears(lenet)] == [
        (400, 120),
        (120, 84),
        (84, 10),
    ]
    resnet = _build("resnet18", 3, 32, 32, k=10)
    assert tuple(resnet.conv1.kernel_size) == (3, 3) and tuple(resnet.conv1.stride) == (1, 1)
    assert isinstance(resnet.maxpool, nn.Identity)
    assert _count(resnet, nn.MaxPool2d) == 0


# ----------------------------------------------------------------------------------------------
# Dropout switch
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("arch", OWN + ["linear-st-vgg"])
def test_dropout_false_removes_all_dropout(arch):
    model = _build(arch, 1, 8, 8, dropout=False)
    assert _count(model, nn.Dropout) == 0
    assert model(torch.rand(2, 1, 8, 8)).shape == (2, 7)


@pytest.mark.parametrize("arch", ["st-vgg", "small-st-vgg", "mnist-net", "fc"])
def test_paper_nets_have_dropout_by_default(arch):
    assert _count(_build(arch, 1, 8, 8), nn.Dropout) > 0


# ----------------------------------------------------------------------------------------------
# Linear variant
# ----------------------------------------------------------------------------------------------


def _randomise(model):
    """Random weights *and biases*, so that a ReLU net is not positively homogeneous by luck."""
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                fan_in = m.weight[0].numel()
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) / fan_in**0.5)
                if m.bias is not None:
                    m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
    return model


def _affinity_errors(model, c, h, w):
    model = _randomise(model).double().eval()
    g = torch.Generator().manual_seed(2)
    x = torch.randn(1, c, h, w, generator=g, dtype=torch.float64)
    y = torch.randn(1, c, h, w, generator=g, dtype=torch.float64)
    with torch.no_grad():
        f = model(torch.cat([x, y, x + y, 2 * x, torch.zeros_like(x)]))
    d_x, d_y, d_xy, d_2x = f[:4] - f[4]
    scale = d_x.abs().max()
    assert scale > 1e-6  # the test would be vacuous on a constant output
    additive = (d_xy - d_x - d_y).abs().max() / scale
    homogeneous = (d_2x - 2 * d_x).abs().max() / scale
    return additive.item(), homogeneous.item()


@pytest.mark.parametrize("arch", OWN)
def test_linear_variant_has_no_relu_or_maxpool(arch):
    base = _build(arch, 3, 32, 32)
    linear = _build("linear-" + arch, 3, 32, 32)
    for m in linear.modules():
        assert not isinstance(m, _ACTIVATION_TYPES), m
        assert not isinstance(m, (nn.MaxPool2d, nn.AdaptiveMaxPool2d)), m
    assert _count(linear, nn.AvgPool2d) == _count(base, nn.MaxPool2d)
    for mp, ap in zip(
        [m for m in base.modules() if isinstance(m, nn.MaxPool2d)],
        [m for m in linear.modules() if isinstance(m, nn.AvgPool2d)],
    ):
        assert (mp.kernel_size, mp.stride, mp.padding, mp.ceil_mode) == (
            ap.kernel_size,
            ap.stride,
            ap.padding,
            ap.ceil_mode,
        )


@pytest.mark.parametrize("arch", OWN)
def test_linear_variant_is_exactly_affine_in_eval(arch):
    c, h, w = (1, 8, 8) if arch == "resnet18" else (3, 12, 12)
    additive, homogeneous = _affinity_errors(_build("linear-" + arch, c, h, w), c, h, w)
    assert additive < 1e-9 and homogeneous < 1e-9


def test_affinity_check_has_teeth():
    additive, homogeneous = _affinity_errors(_build("st-vgg", 3, 12, 12), 3, 12, 12)
    assert additive > 1e-3 and homogeneous > 1e-3


def test_linearize_keeps_pool_geometry_for_adaptive_and_padded_pools():
    model = nn.Sequential(nn.MaxPool2d(3, 2, 1, ceil_mode=True), nn.AdaptiveMaxPool2d((2, 3)), nn.GELU())
    linearize(model)
    assert isinstance(model[0], nn.AvgPool2d) and model[0].ceil_mode and model[0].padding == 1
    assert isinstance(model[1], nn.AdaptiveAvgPool2d) and model[1].output_size == (2, 3)
    assert isinstance(model[2], nn.Identity)


def test_linear_check_rejects_functional_nonlinearity():
    class Functional(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(16, 3)

        def forward(self, x):
            return self.fc(torch.relu(x.flatten(1)) + 0.1)

    with pytest.raises(UserError, match="not linear"):
        _dry_run(Functional(), "linear-tv:x", 1, (4, 4), 3, check_linear=True)
    _dry_run(linearize(nn.Sequential(nn.Flatten(), nn.Linear(16, 3), nn.ReLU())), "l", 1, (4, 4), 3, check_linear=True)


# ----------------------------------------------------------------------------------------------
# torchvision models
# ----------------------------------------------------------------------------------------------


def test_torchvision_model_with_adapted_channels():
    torch.manual_seed(0)
    model = _build("tv:resnet18", 1, 32, 32, k=6)
    assert model.conv1.in_channels == 1
    assert model(torch.rand(2, 1, 32, 32)).shape == (2, 6)
    linear = _build("linear-tv:resnet18", 1, 16, 16, k=6)  # passes the numeric linearity check
    assert _count(linear, nn.ReLU) == 0 and _count(linear, nn.MaxPool2d) == 0


def test_torchvision_model_too_small_image_is_user_error():
    with pytest.raises(UserError, match="cannot take 8x8"):
        _build("tv:squeezenet1_1", 3, 8, 8)


def test_build_does_not_draw_from_global_rng_beyond_init():
    torch.manual_seed(3)
    a = _build("small-st-vgg", 1, 8, 8)
    after_a = torch.rand(1)
    torch.manual_seed(3)
    b = _build("small-st-vgg", 1, 8, 8)
    assert torch.equal(torch.rand(1), after_a)
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb and torch.equal(va, vb)
    torch.manual_seed(4)
    c = _build("small-st-vgg", 1, 8, 8)
    assert not torch.equal(_convs(a)[0].weight, _convs(c)[0].weight)


# ----------------------------------------------------------------------------------------------
# auto rule and a tiny training run
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "size,channels,n,expected",
    [
        ((8, 8), 1, 1347, "small-st-vgg"),  # scikit-learn digits
        ((28, 28), 1, 60000, "small-st-vgg"),  # MNIST, Fashion-MNIST
        ((32, 32), 3, 50000, "st-vgg"),  # CIFAR
        ((32, 32), 3, 500, "small-st-vgg"),  # tiny data set
        ((64, 64), 3, 100000, "st-vgg"),  # tiny ImageNet
        ((224, 224), 3, 100000, "tv:resnet18"),  # ImageNet-like
    ],
)
def test_auto_arch_rule(size, channels, n, expected):
    name = auto_arch(size, channels, n)
    assert name == expected
    assert check_arch(name) == name


def test_auto_arch_learns_digits_quickly():
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = torch.tensor(digits.images / 16.0, dtype=torch.float32)[:, None]
    y = torch.tensor(digits.target)
    g = torch.Generator().manual_seed(0)
    perm = torch.randperm(len(x), generator=g)
    train, test = perm[:1347], perm[1347:]
    arch = auto_arch((8, 8), 1, len(train))
    torch.manual_seed(0)
    model = build_model(arch, in_channels=1, num_classes=10, image_size=(8, 8))
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    for _ in range(3):
        model.train()
        order = train[torch.randperm(len(train), generator=g)]
        for i in range(0, len(order), 100):
            idx = order[i : i + 100]
            loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        accuracy = (model(x[test]).argmax(1) == y[test]).float().mean().item()
    assert accuracy > 0.6, accuracy  # chance is 0.1


def test_every_named_architecture_has_a_builder():
    """Names live in the torch-free curriculum.models.architectures, builders in curriculum.models."""
    from curriculum.models.architectures import ARCHITECTURES
    from curriculum.models.builders import _BUILDERS

    assert list(ARCHITECTURES) == list(_BUILDERS)
