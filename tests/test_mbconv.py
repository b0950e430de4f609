"""The MBConv spaces: published FBNet sizes, block strings, and one-line refusals of malformed architectures."""

from __future__ import annotations

import pytest
import torch

from sdnas_deploy.errors import BadInputError
from sdnas_deploy.spaces import get_space, parse_arch
from sdnas_deploy.spaces.complexity import inspect_network
from sdnas_deploy.spaces.mbconv.blocks import ChannelShuffle, decode_block

# mobile-vision / the FBNet paper: FBNet-A 249M MACs 4.3M params, -B 295M 4.5M, -C 375M 5.5M (ImageNet, 224).
PUBLISHED = {"fbnet_a": 249, "fbnet_b": 295, "fbnet_c": 375}


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_fbnet_references_match_published_multiply_adds(name: str) -> None:
    space, arch = parse_arch(name)
    info = inspect_network(arch, "imagenet", num_classes=1000, in_channels=3, input_size=224, space=space)
    assert info["macs_m"] == pytest.approx(PUBLISHED[name], rel=0.04)
    assert 4.0 < info["params_m"] < 6.0 and info["warnings"] == []


def test_block_strings_and_shuffle() -> None:
    spec = decode_block("k5_e1_g2")
    assert (spec.kernel, spec.expand, spec.groups, spec.se, spec.text) == (5, 1, 2, False, "k5_e1_g2")
    assert decode_block("k3_e6_se").se and decode_block("skip").kind == "skip"
    for bad in ("k4_e6", "k3", "conv"):
        with pytest.raises(BadInputError):
            decode_block(bad)
    x = torch.arange(8.0).reshape(1, 8, 1, 1)
    assert ChannelShuffle(2)(x).flatten().tolist() == [0, 4, 1, 5, 2, 6, 3, 7]


def test_malformed_architectures_are_refused_in_one_line() -> None:
    fbnet, proxyless = get_space("fbnet"), get_space("proxyless")
    with pytest.raises(BadInputError, match="did you mean 'k5_e6'"):
        fbnet.arch_from_dict({"space": "fbnet", "blocks": ["k5_e7"] * 22})
    with pytest.raises(BadInputError, match="12 searchable layers"):
        fbnet.arch_from_dict({"space": "fbnet", "setting": "small", "blocks": ["k3_e1"] * 22})
    with pytest.raises(BadInputError, match="not allowed there"):  # layer 0 changes width: it cannot be left out
        proxyless.arch_from_dict({"space": "proxyless", "setting": "cifar", "blocks": ["zero"] + ["k3_e3"] * 20})
    with pytest.raises(BadInputError, match="space 'darts'"):
        fbnet.arch_from_dict({"space": "darts", "blocks": ["k3_e1"] * 22})
    with pytest.raises(BadInputError, match="unknown architecture key"):
        fbnet.arch_from_dict({"blocks": ["k3_e1"] * 22, "layers": 3})
    with pytest.raises(BadInputError, match="--layers/--channels apply to the darts space"):
        fbnet.geometry("small", layers=3)
    with pytest.raises(BadInputError, match="no auxiliary head"):
        fbnet.build_network(fbnet.references()["fbnet_b"], fbnet.geometry("cifar"), auxiliary=True)


def test_zero_and_skip_become_identities_where_shapes_agree() -> None:
    proxyless = get_space("proxyless")
    allowed = proxyless.allowed("small")
    zero = proxyless.d.candidates.index("zero")
    assert [row[zero] for row in allowed] == [False, True, False, True, False, True, False, False, False]
    fbnet = get_space("fbnet")
    assert all(all(row) for row in fbnet.allowed("cifar")), "FBNet's skip is allowed everywhere"


def test_the_setting_follows_the_layer_count_when_none_is_named() -> None:
    fbnet, proxyless = get_space("fbnet"), get_space("proxyless")
    assert fbnet.setting_for(fbnet.sample(__import__("random").Random(0), "small")) == "small"
    assert fbnet.setting_for(fbnet.references()["fbnet_b"]) == "cifar"  # 22 layers: imagenet or cifar -> default
    assert proxyless.setting_for(proxyless.sample(__import__("random").Random(0), "small")) == "small"
    assert get_space("darts").setting_for(parse_arch("darts_v2")[1]) == "cifar"
