"""Genotype validation, JSON / arch-string round trips and the DARTS derivation rule."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from sdnas_deploy.errors import BadInputError
from sdnas_deploy.spaces.darts.genotype import (
    DARTS_V2, REFERENCE_GENOTYPES, Genotype, derive_genotype, from_arch_string, load_genotype,
    parse_genotype, save_genotype, skip_count, to_arch_string,
)
from sdnas_deploy.spaces.darts.ops import PRIMITIVES


def _valid() -> dict:
    return DARTS_V2.to_dict()


def test_json_form_matches_the_documented_layout() -> None:
    d = DARTS_V2.to_dict()
    assert list(d) == ["normal", "normal_concat", "reduce", "reduce_concat"]
    assert d["normal"][0] == ["sep_conv_3x3", 0] and len(d["normal"]) == 8
    assert d["normal_concat"] == [2, 3, 4, 5]
    json.dumps(d)  # plain JSON types only


def test_json_round_trip_through_a_file(tmp_path: Path) -> None:
    path = save_genotype(tmp_path / "g.json", DARTS_V2)
    assert load_genotype(path) == DARTS_V2
    data = json.loads(path.read_text())
    assert data.pop("space") == "darts", "saved architecture JSON names its space"
    assert Genotype.from_dict(data) == DARTS_V2
    assert list(tmp_path.iterdir()) == [path], "atomic write leaves no temp file"


def test_reference_genotypes_are_valid_and_differ() -> None:
    assert REFERENCE_GENOTYPES["darts_v2"] is DARTS_V2
    assert REFERENCE_GENOTYPES["darts_v1"] != DARTS_V2
    for g in REFERENCE_GENOTYPES.values():
        assert Genotype.from_dict(g.to_dict()) == g


def test_arch_string_round_trip_and_format() -> None:
    text = to_arch_string(DARTS_V2)
    assert text.startswith("normal=sep_conv_3x3:0,sep_conv_3x3:1,")
    assert "|reduce=max_pool_3x3:0," in text and "concat" not in text
    assert from_arch_string(text) == DARTS_V2
    partial = Genotype.from_dict({**_valid(), "reduce_concat": [3, 4, 5]})
    assert "reduce_concat=3,4,5" in to_arch_string(partial)
    assert from_arch_string(to_arch_string(partial)) == partial


def test_parse_genotype_accepts_name_arch_string_and_file(tmp_path: Path) -> None:
    assert parse_genotype("darts_v2") == DARTS_V2
    assert parse_genotype(to_arch_string(DARTS_V2)) == DARTS_V2
    assert parse_genotype(str(save_genotype(tmp_path / "g.json", DARTS_V2))) == DARTS_V2


def _with(cell_entry: tuple[int, object]) -> dict:
    d = _valid()
    k, value = cell_entry
    d["normal"][k] = value
    return d


MALFORMED = {
    "missing key": ({k: v for k, v in _valid().items() if k != "reduce"}, "missing key 'reduce'"),
    "extra key": ({**_valid(), "normal_concatt": [2]}, "unknown genotype key"),
    "not a mapping": ([["sep_conv_3x3", 0]], "JSON object"),
    "unknown op": (_with((0, ["sep_conv_3x4", 0])), "did you mean 'sep_conv_3x3'"),
    "none op": (_with((0, ["none", 0])), "'none'"),
    "too few entries": ({**_valid(), "normal": _valid()["normal"][:6]}, "6 entries"),
    "too many entries": ({**_valid(), "reduce": _valid()["reduce"] + [["skip_connect", 0], ["skip_connect", 1]]},
                         "10 entries"),
    "index out of range": (_with((2, ["sep_conv_3x3", 3])), "out of range for node 3"),
    "negative index": (_with((0, ["sep_conv_3x3", -1])), "out of range"),
    "same input twice": (_with((1, ["sep_conv_5x5", 0])), "reads input 0 twice"),
    "index is a string": (_with((0, ["sep_conv_3x3", "0"])), "must be an integer"),
    "index is a bool": (_with((0, ["sep_conv_3x3", True])), "must be an integer"),
    "op is not a string": (_with((0, [3, 0])), "must be a string"),
    "entry not a pair": (_with((0, ["sep_conv_3x3", 0, 1])), "[op_name, input_index]"),
    "cell not a list": ({**_valid(), "normal": "sep_conv_3x3"}, "must be a list"),
    "concat out of range": ({**_valid(), "normal_concat": [1, 2, 3]}, "normal_concat"),
    "concat repeated": ({**_valid(), "normal_concat": [2, 2, 3]}, "normal_concat"),
    "concat empty": ({**_valid(), "reduce_concat": []}, "non-empty"),
    "concat wrong type": ({**_valid(), "reduce_concat": "2345"}, "non-empty list"),
    "concat float": ({**_valid(), "reduce_concat": [2.0, 3]}, "integers"),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_genotypes_raise_one_line_bad_input(case: str) -> None:
    data, fragment = MALFORMED[case]
    with pytest.raises(BadInputError) as info:
        Genotype.from_dict(data, source="g.json")
    message = str(info.value)
    assert fragment in message
    assert message.startswith("g.json") and "\n" not in message


def test_bad_genotype_files(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(BadInputError, match="malformed"):
        load_genotype(broken)
    with pytest.raises(BadInputError, match="not found"):
        load_genotype(tmp_path / "missing.json")
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({**_valid(), "normal": []}))
    with pytest.raises(BadInputError, match=str(wrong)):
        load_genotype(wrong)


ARCH = to_arch_string(DARTS_V2)


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("", "empty"),
        (ARCH.split("|")[0], "missing 'reduce='"),
        (ARCH.replace("sep_conv_3x3:0", "sep_conv_3x3-0", 1), "not op:input"),
        (ARCH.replace(":1", ":x", 1), "not an integer"),
        (ARCH.replace("normal=", "norml=", 1), "did you mean 'normal'"),
        (ARCH + "|" + ARCH.split("|")[1], "given twice"),
        (ARCH.replace("sep_conv_3x3", "conv", 1), "unknown op"),
        (ARCH + "|normal_concat=2,x", "not an integer"),
    ],
)
def test_malformed_arch_strings(text: str, fragment: str) -> None:
    with pytest.raises(BadInputError, match=fragment):
        from_arch_string(text)


def test_skip_count() -> None:
    assert skip_count(DARTS_V2) == 2
    assert skip_count(DARTS_V2, "reduce") == 3
    with pytest.raises(BadInputError):
        skip_count(DARTS_V2, "middle")


def _weights(entries: dict[tuple[int, str], float]) -> torch.Tensor:
    """Tiny uniform weights with the given (edge, op) entries raised."""
    w = torch.full((14, 8), 0.01)
    for (edge, op), value in entries.items():
        w[edge, PRIMITIVES.index(op)] = value
    return w


def test_derive_picks_two_strongest_non_none_edges_per_node() -> None:
    # edge rows: node0 -> 0,1; node1 -> 2,3,4; node2 -> 5..8; node3 -> 9..13
    normal = _weights({
        (0, "sep_conv_3x3"): 0.5, (1, "none"): 0.9, (1, "max_pool_3x3"): 0.2,          # none is never chosen
        (2, "none"): 0.99, (3, "skip_connect"): 0.3, (4, "dil_conv_5x5"): 0.4,          # edge 2 loses: only none is big
        (5, "avg_pool_3x3"): 0.2, (6, "sep_conv_5x5"): 0.6, (7, "dil_conv_3x3"): 0.7, (8, "none"): 0.8,
        (9, "sep_conv_3x3"): 0.3, (10, "sep_conv_3x3"): 0.3, (13, "skip_connect"): 0.35,  # tie -> lower input
    })
    reduce = _weights({(0, "max_pool_3x3"): 0.5, (1, "skip_connect"): 0.5})
    g = derive_genotype(normal, reduce)
    assert g.normal == (
        ("sep_conv_3x3", 0), ("max_pool_3x3", 1),
        ("dil_conv_5x5", 2), ("skip_connect", 1),
        ("dil_conv_3x3", 2), ("sep_conv_5x5", 1),
        ("skip_connect", 4), ("sep_conv_3x3", 0),
    )
    assert g.reduce[:2] == (("max_pool_3x3", 0), ("skip_connect", 1))
    assert g.normal_concat == (2, 3, 4, 5)
    assert all(op != "none" for op, _ in g.normal + g.reduce)


def test_derive_accepts_numpy_and_respects_multiplier() -> None:
    w = torch.softmax(torch.randn(14, 8), dim=-1)
    g = derive_genotype(w.numpy(), w.numpy(), multiplier=3)
    assert g.normal == g.reduce and g.normal_concat == (3, 4, 5)


def test_derive_rejects_bad_weights() -> None:
    with pytest.raises(BadInputError, match="shape"):
        derive_genotype(torch.zeros(14, 7), torch.zeros(14, 8))
    nan = torch.zeros(14, 8)
    nan[3, 2] = float("nan")
    with pytest.raises(BadInputError, match="NaN"):
        derive_genotype(torch.zeros(14, 8), nan)
