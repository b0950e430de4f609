"""The eight DARTS primitives: shapes at stride 1/2, structure, and no in-place side effects."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from sdnas_deploy.spaces.darts.ops import (
    OPS, PRIMITIVES, FactorizedReduce, Identity, ReLUConvBN, SepConv, Zero, drop_path,
)


C = 4


def test_registry_holds_exactly_the_darts_primitives() -> None:
    assert list(OPS) == PRIMITIVES
    assert len(PRIMITIVES) == 8 and PRIMITIVES[0] == "none"


@pytest.mark.parametrize("name", PRIMITIVES)
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("size", [8, 7])
def test_op_keeps_channels_and_keeps_or_halves_spatial_size(name: str, stride: int, size: int) -> None:
    op = OPS[name](C, stride, True).eval()
    x = torch.randn(2, C, size, size + 2)
    before = x.clone()
    y = op(x)
    assert y.shape == (2, C, math.ceil(size / stride), math.ceil((size + 2) / stride))
    assert torch.equal(x, before), "ops must not modify their input (it feeds several edges)"


@pytest.mark.parametrize("affine", [True, False])
def test_affine_flag_reaches_batchnorm(affine: bool) -> None:
    op = OPS["sep_conv_3x3"](C, 1, affine)
    bns = [m for m in op.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert len(bns) == 2
    assert all((bn.weight is not None) == affine for bn in bns)


def test_zero_is_zero_and_halves_at_stride_two() -> None:
    x = torch.randn(2, C, 9, 9)
    assert isinstance(OPS["none"](C, 2, True), Zero)
    y = OPS["none"](C, 2, True)(x)
    assert y.shape == (2, C, 5, 5) and not y.any()
    assert not OPS["none"](C, 1, True)(x).any()


def test_skip_connect_is_identity_at_stride_one_and_factorized_reduce_at_two() -> None:
    x = torch.randn(2, C, 8, 8)
    skip = OPS["skip_connect"](C, 1, True)
    assert isinstance(skip, Identity) and torch.equal(skip(x), x)
    assert isinstance(OPS["skip_connect"](C, 2, True), FactorizedReduce)


def test_factorized_reduce_padding_changes_nothing_on_even_sizes() -> None:
    fr = FactorizedReduce(C, 6, affine=False).eval()
    x = torch.randn(2, C, 8, 8)
    relu = F.relu(x)
    unpadded = torch.cat([fr.conv_1(relu), fr.conv_2(relu[:, :, 1:, 1:])], dim=1)
    assert torch.allclose(fr(x), fr.bn(unpadded))
    with pytest.raises(ValueError):
        FactorizedReduce(C, 5)


def test_conv_ops_have_the_documented_structure_and_parameter_counts() -> None:
    k = {"sep_conv_3x3": 3, "sep_conv_5x5": 5, "dil_conv_3x3": 3, "dil_conv_5x5": 5}
    for name, kernel in k.items():
        op = OPS[name](C, 1, True)
        units = 2 if name.startswith("sep") else 1
        expected = units * (C * kernel * kernel + C * C + 2 * C)  # depthwise + pointwise + BN affine
        assert sum(p.numel() for p in op.parameters()) == expected, name
        convs = [m for m in op.modules() if isinstance(m, torch.nn.Conv2d)]
        assert [m.groups for m in convs] == [C, 1] * units
        assert all(m.bias is None for m in convs)
    dil = [m for m in OPS["dil_conv_5x5"](C, 1, True).modules() if isinstance(m, torch.nn.Conv2d)][0]
    assert dil.dilation == (2, 2) and dil.padding == (4, 4)
    sep = OPS["sep_conv_3x3"](C, 2, True)
    assert isinstance(sep, SepConv)
    strides = [m.stride for m in sep.modules() if isinstance(m, torch.nn.Conv2d)]
    assert strides == [(2, 2), (1, 1), (1, 1), (1, 1)], "only the first depthwise conv strides"


def test_pools_do_not_have_parameters_and_avg_ignores_padding() -> None:
    assert not list(OPS["max_pool_3x3"](C, 1, True).parameters())
    ones = torch.ones(1, C, 4, 4)
    assert torch.allclose(OPS["avg_pool_3x3"](C, 1, True)(ones), ones)


def test_relu_conv_bn_maps_channels() -> None:
    block = ReLUConvBN(3, 5, 1, 1, 0, affine=False)
    assert block(torch.randn(2, 3, 6, 6)).shape == (2, 5, 6, 6)


def test_drop_path_drops_whole_samples_and_rescales() -> None:
    x = torch.ones(64, 2, 3, 3)
    assert drop_path(x, 0.0) is x
    torch.manual_seed(0)
    y = drop_path(x, 0.5)
    per_sample = y.flatten(1)
    assert set(per_sample.unique().tolist()) <= {0.0, 2.0}
    assert bool((per_sample.min(dim=1).values == per_sample.max(dim=1).values).all())
    assert 0 < int((per_sample[:, 0] == 0).sum()) < 64
