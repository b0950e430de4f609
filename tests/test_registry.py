"""Plain-dict registries (sdnas_deploy.registry) and the exit-code error types (sdnas_deploy.errors)."""

from __future__ import annotations

from typing import Callable

import pytest

from sdnas_deploy.errors import (
    BadInputError, GateFailedError, SdnasError, UnsupportedEnvironmentError, VerificationError,
)
from sdnas_deploy.registry import lookup, register_into, suggest

# --------------------------------------------------------------------------- registry


def test_register_into_stores_and_returns_object_unchanged() -> None:
    table: dict[str, Callable[[], int]] = {}

    @register_into(table, "one")
    def one() -> int:
        return 1

    assert table == {"one": one}
    assert one() == 1  # the decorator hands back the function itself


def test_register_into_duplicate_raises_and_keeps_original() -> None:
    table: dict[str, int] = {}
    register_into(table, "a")(1)
    with pytest.raises(ValueError, match="duplicate registration: a"):
        register_into(table, "a")(2)
    assert table == {"a": 1}


def test_lookup_known_name() -> None:
    table = {"cifar": 1, "mobile": 2}
    assert lookup(table, "mobile", "setting") == 2


def test_lookup_unknown_lists_known_names_and_suggests() -> None:
    table = {"sep_conv_3x3": 1, "sep_conv_5x5": 2, "avg_pool_3x3": 3}
    with pytest.raises(BadInputError) as exc:
        lookup(table, "sep_conv3x3", "operation")
    msg = str(exc.value)
    assert exc.value.exit_code == 2 and "\n" not in msg
    assert msg.startswith("unknown operation 'sep_conv3x3'")
    assert "did you mean 'sep_conv_3x3'" in msg
    assert msg.endswith("known: avg_pool_3x3, sep_conv_3x3, sep_conv_5x5")


def test_lookup_unknown_without_close_match() -> None:
    with pytest.raises(BadInputError) as exc:
        lookup({"cifar": 1}, "zzz", "setting")
    assert "did you mean" not in str(exc.value)
    assert "known: cifar" in str(exc.value)


def test_lookup_in_a_project_registry() -> None:
    from sdnas_deploy.spaces.darts.ops import OPS, PRIMITIVES

    assert set(OPS) == set(PRIMITIVES)
    assert lookup(OPS, "skip_connect", "operation") is OPS["skip_connect"]
    with pytest.raises(BadInputError, match="did you mean 'dil_conv_3x3'"):
        lookup(OPS, "dil_conv_3x4", "operation")


def test_suggest() -> None:
    assert suggest("cifr10", ["cifar10", "cifar100", "digits"]) == " (did you mean 'cifar10'?)"
    assert suggest("mnist", {"digits": 1, "imagefolder": 2}) == ""


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "cls, code",
    [
        (SdnasError, 1),
        (BadInputError, 2),
        (VerificationError, 3),
        (GateFailedError, 4),
        (UnsupportedEnvironmentError, 5),
    ],
)
def test_error_exit_codes_and_message(cls: type[SdnasError], code: int) -> None:
    err = cls("thing is wrong; fix it")
    assert err.exit_code == code
    assert cls.exit_code == code
    assert err.message == "thing is wrong; fix it"
    assert str(err) == "thing is wrong; fix it"
    assert isinstance(err, SdnasError) and isinstance(err, Exception)
    with pytest.raises(SdnasError) as info:
        raise err
    assert info.value.exit_code == code


def test_check_fields_reports_missing_then_unknown_with_the_source_kept_verbatim() -> None:
    """The source prefix is never formatted, so a path with braces is safe."""
    from sdnas_deploy.registry import check_fields

    with pytest.raises(BadInputError, match=r"^a\{b\}\.json: missing 'x'$"):
        check_fields({"y": 1}, ["x"], ["x", "y"], "a{b}.json", "missing {name!r}", "unknown {name!r}{hint}")
    with pytest.raises(BadInputError, match=r"unknown 'xx' \(did you mean 'x'\?\)"):
        check_fields({"x": 1, "xx": 2}, ["x"], ["x"], "f", "missing {name!r}", "unknown {name!r}{hint}")
    check_fields({"x": 1}, ["x"], ["x", "y"], "f", "missing {name!r}", "unknown {name!r}{hint}")
