"""Typed config dataclasses from mappings, overrides and dict export (sdnas_deploy.config_utils)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Optional

import pytest

from sdnas_deploy.config_utils import from_mapping, override, to_dict
from sdnas_deploy.errors import BadInputError


@dataclass
class Cfg:
    epochs: int = 10
    learning_rate: float = 0.025
    name: str = "run"
    cutout: bool = False
    mode: Literal["sd", "none"] = "sd"
    betas: tuple[float, float] = (0.5, 0.999)
    layers: list[int] = field(default_factory=lambda: [1, 2])
    limit: Optional[int] = None
    decay: float | None = None


def test_defaults_from_none_and_empty() -> None:
    assert from_mapping(Cfg, None, "recipe") == Cfg()
    assert from_mapping(Cfg, {}, "recipe") == Cfg()


def test_values_are_applied() -> None:
    cfg = from_mapping(Cfg, {"epochs": 3, "name": "x", "cutout": True, "mode": "none"}, "recipe")
    assert (cfg.epochs, cfg.name, cfg.cutout, cfg.mode) == (3, "x", True, "none")
    assert cfg.learning_rate == 0.025


def test_unknown_key_suggests_closest() -> None:
    with pytest.raises(BadInputError) as exc:
        from_mapping(Cfg, {"learning_rat": 0.1}, "r.yaml: search")
    msg = str(exc.value)
    assert exc.value.exit_code == 2 and "\n" not in msg
    assert msg.startswith("r.yaml: search: unknown key 'learning_rat'")
    assert "did you mean 'learning_rate'" in msg


def test_unknown_key_without_close_match_has_no_suggestion() -> None:
    with pytest.raises(BadInputError) as exc:
        from_mapping(Cfg, {"zzzzqqq": 1}, "recipe")
    assert "unknown key 'zzzzqqq'" in str(exc.value)
    assert "did you mean" not in str(exc.value)


def test_dash_keys_map_to_underscore_fields() -> None:
    cfg = from_mapping(Cfg, {"learning-rate": 0.1, "limit": 5}, "recipe")
    assert cfg.learning_rate == 0.1 and cfg.limit == 5


@pytest.mark.parametrize(
    "key, value",
    [
        ("epochs", "10"),  # str for int
        ("epochs", True),  # bool is not an int here
        ("epochs", 2.5),  # float for int
        ("learning_rate", "0.1"),
        ("learning_rate", False),  # bool for float
        ("name", 3),
        ("cutout", 1),  # int for bool
        ("cutout", "yes"),
    ],
)
def test_wrong_scalar_types_are_rejected(key: str, value: object) -> None:
    with pytest.raises(BadInputError) as exc:
        from_mapping(Cfg, {key: value}, "recipe")
    assert f"recipe: key {key!r}: expected" in str(exc.value)
    assert repr(value) in str(exc.value)


def test_int_is_coerced_to_float() -> None:
    cfg = from_mapping(Cfg, {"learning_rate": 1}, "recipe")
    assert cfg.learning_rate == 1.0 and type(cfg.learning_rate) is float


def test_list_becomes_tuple_and_tuple_becomes_list() -> None:
    cfg = from_mapping(Cfg, {"betas": [0.9, 0.99], "layers": (3, 4)}, "recipe")
    assert cfg.betas == (0.9, 0.99) and isinstance(cfg.betas, tuple)
    assert cfg.layers == [3, 4] and isinstance(cfg.layers, list)


def test_literal_accepts_listed_and_rejects_others() -> None:
    assert from_mapping(Cfg, {"mode": "none"}, "recipe").mode == "none"
    with pytest.raises(BadInputError) as exc:
        from_mapping(Cfg, {"mode": "hard"}, "recipe")
    assert "expected one of sd, none" in str(exc.value) and "'hard'" in str(exc.value)


@pytest.mark.parametrize("key", ["limit", "decay"])
def test_optional_fields_accept_none_and_value(key: str) -> None:
    assert getattr(from_mapping(Cfg, {key: None}, "recipe"), key) is None
    assert getattr(from_mapping(Cfg, {key: 3}, "recipe"), key) == 3


def test_optional_float_coerces_int_and_rejects_str() -> None:
    cfg = from_mapping(Cfg, {"decay": 1}, "recipe")
    assert cfg.decay == 1.0 and type(cfg.decay) is float
    with pytest.raises(BadInputError, match="has the wrong type"):
        from_mapping(Cfg, {"decay": "fast"}, "recipe")
    with pytest.raises(BadInputError, match="has the wrong type"):
        from_mapping(Cfg, {"limit": True}, "recipe")


def test_override_applies_non_none_and_validates() -> None:
    base = from_mapping(Cfg, {"epochs": 3, "name": "recipe-name"}, "recipe")
    new = override(base, epochs=7, name=None, learning_rate=1)
    assert new.epochs == 7 and new.name == "recipe-name" and new.learning_rate == 1.0
    assert base.epochs == 3  # original untouched
    with pytest.raises(BadInputError, match="command line: key 'epochs'"):
        override(base, epochs="many")
    with pytest.raises(BadInputError, match="--flags: unknown key 'epoch'.*did you mean 'epochs'"):
        override(base, source="--flags", epoch=2)


def test_override_with_only_none_returns_same_config() -> None:
    base = Cfg(epochs=4)
    assert override(base, epochs=None, name=None) is base


def test_override_keeps_tuple_and_list_types() -> None:
    new = override(Cfg(), epochs=1)
    assert isinstance(new.betas, tuple) and isinstance(new.layers, list)
    assert new == Cfg(epochs=1)


def test_to_dict_is_plain_and_detached() -> None:
    cfg = Cfg(epochs=2, limit=9)
    d = to_dict(cfg)
    assert d == {
        "epochs": 2, "learning_rate": 0.025, "name": "run", "cutout": False, "mode": "sd",
        "betas": (0.5, 0.999), "layers": [1, 2], "limit": 9, "decay": None,
    }
    d["layers"].append(99)
    assert cfg.layers == [1, 2]
    assert from_mapping(Cfg, d, "saved config").epochs == 2  # a dumped config reads back


def test_tuple_fields_reject_scalars_and_check_items() -> None:
    """A string is not a pair, and each item of a typed tuple is checked."""
    from dataclasses import dataclass

    from sdnas_deploy.config_utils import from_mapping
    from sdnas_deploy.errors import BadInputError

    @dataclass
    class Pair:
        betas: tuple[float, float] = (0.5, 0.999)

    assert from_mapping(Pair, {"betas": [1, 0.9]}, "t").betas == (1.0, 0.9)
    for bad in ("abc", ["x", 0.9], [0.1, 0.2, 0.3]):
        with pytest.raises(BadInputError):
            from_mapping(Pair, {"betas": bad}, "t")
