"""The NAS-Bench-201 space: its definition matches the benchmark (sizes, string form), codec errors are one line,
the supernet derives NB201's way (``none`` allowed) and a search reports the parameter-free counts."""

from __future__ import annotations

import pytest
import torch

from sdnas_deploy.errors import BadInputError
from sdnas_deploy.spaces import get_space, parse_arch
from sdnas_deploy.spaces.complexity import inspect_network
from sdnas_deploy.spaces.nb201.arch import CellArch, arch_from_line
from sdnas_deploy.spaces.nb201.ops import OPS

SPACE = get_space("nb201")
BEST = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"


@pytest.mark.parametrize("op,params,macs", [("nor_conv_3x3", 1_531_546, 220_119_680), ("none", 73_306, 7_783_040)])
def test_sizes_are_the_benchmarks_extremes(op: str, params: int, macs: int) -> None:
    """NB201 (Dong & Yang 2020) on CIFAR-10: params 0.073–1.531 M, FLOPs 7.78–220.11 M over its 15,625 cells."""
    report = inspect_network(CellArch((op,) * 6), "cifar", num_classes=10, in_channels=3, input_size=32, space=SPACE)
    assert report["params"] == params and report["macs"] == macs


def test_string_form_round_trips_and_names_its_space() -> None:
    arch = SPACE.arch_from_string(BEST)
    assert arch.edges == ("nor_conv_3x3", "nor_conv_3x3", "nor_conv_3x3", "skip_connect", "nor_conv_3x3",
                          "nor_conv_3x3")
    assert arch.to_string() == BEST
    body = SPACE.arch_to_dict(arch)
    assert body["space"] == "nb201" and body["arch"] == BEST
    assert SPACE.arch_from_dict(body) == arch
    assert parse_arch(f"nb201:{BEST}")[1] == arch and parse_arch("nb201_best_cifar10")[1] == arch


@pytest.mark.parametrize("text,needle", [
    ("|nor_conv_3x3~0|+|nor_conv_3x3~0|", "2 nodes"),
    ("|nor_conv_3x3~0|+|nor_conv_3x3~0|+|a~0|b~1|c~2|", "node 2 has 1 inputs"),
    ("|nor_conv_3x3~1|+|none~0|none~1|+|none~0|none~1|none~2|", "must read 'op~0'"),
    ("|conv~0|+|none~0|none~1|+|none~0|none~1|none~2|", "unknown op 'conv'"),
    ("", "empty"),
])
def test_bad_strings_are_one_line(text: str, needle: str) -> None:
    with pytest.raises(BadInputError, match=needle):
        arch_from_line(text)


def test_json_errors() -> None:
    with pytest.raises(BadInputError, match="6 edges"):
        SPACE.arch_from_dict({"space": "nb201", "edges": ["none"] * 5})
    with pytest.raises(BadInputError, match="disagrees"):
        SPACE.arch_from_dict({"edges": ["none"] * 6, "arch": BEST})
    with pytest.raises(BadInputError, match="space 'darts'"):
        SPACE.arch_from_dict({"space": "darts", "edges": ["none"] * 6})
    with pytest.raises(BadInputError, match="multiple of 4"):
        SPACE.geometry("cifar", input_size=30)


def test_derive_keeps_none_and_discretize_inverts_it() -> None:
    net = SPACE.build_supernet(SPACE.geometry("small", input_size=8, in_channels=1, num_classes=3))
    with torch.no_grad():
        net.alphas_edges.zero_()
        net.alphas_edges[:, OPS.index("none")] = 1.0
    arch = net.derive()
    assert arch.edges == ("none",) * 6
    masks = SPACE.discretize(arch, net)
    assert masks["edges"].sum().item() == 6 and masks["edges"][:, OPS.index("none")].sum().item() == 6
    logits = net(torch.randn(2, 1, 8, 8), masks)
    assert torch.isfinite(logits).all() and logits.shape == (2, 3)


def test_summary_counts_parameter_free_edges() -> None:
    arch = SPACE.arch_from_string("|skip_connect~0|+|none~0|avg_pool_3x3~1|+|nor_conv_1x1~0|skip_connect~1|none~2|")
    assert SPACE.summary(arch) == {"skip_count": 2, "pool_count": 1, "none_count": 2, "parameter_free": 5}


def test_search_report_has_the_counts_per_epoch(tmp_path) -> None:
    from sdnas_deploy.nas.config import SearchConfig
    from sdnas_deploy.nas.searcher import run_search

    config = SearchConfig(space="nb201", epochs=2, steps_per_epoch=2, batch_size=16, limit=128, seed=0)
    report = run_search(config, tmp_path, progress=False)
    assert len(report["epochs"]) == 2
    for record in report["epochs"]:
        assert {"skip_count", "pool_count", "none_count", "parameter_free"} <= set(record)
    assert report["space"] == "nb201" and report["final"]["genotype"]["space"] == "nb201"


def test_degenerate_cells_are_named() -> None:
    dead = SPACE.arch_from_string("|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|")
    live = SPACE.arch_from_string("|none~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|")
    assert "ignores its input" in SPACE.degenerate(dead) and SPACE.degenerate(live) is None
    assert get_space("fbnet").degenerate(get_space("fbnet").references()["fbnet_a"]) is None
