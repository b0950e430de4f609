"""Shipped data folders and resolution of name-or-path arguments (sdnas_deploy.resources)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sdnas_deploy.errors import BadInputError
from sdnas_deploy.resources import DATA_KINDS, data_dir, resolve_data_file

REPO = Path(__file__).resolve().parents[1]


def test_checkout_has_no_installed_data_copy() -> None:
    """These tests describe a source checkout, where the top-level folders are used."""
    assert not (REPO / "sdnas_deploy" / "_data").exists()


@pytest.mark.parametrize("kind", sorted(DATA_KINDS))
def test_data_dir_points_at_top_level_folder(kind: str) -> None:
    assert data_dir(kind) == REPO / kind


@pytest.mark.parametrize("kind", ["search", "export"])
def test_data_dirs_with_shipped_files_exist(kind: str) -> None:
    assert data_dir(kind).is_dir()
    assert any(data_dir(kind).glob("*.yaml"))


def test_data_dir_unknown_kind() -> None:
    with pytest.raises(ValueError, match="unknown data kind 'recipes'"):
        data_dir("recipes")


@pytest.mark.parametrize("arg", ["default", "default.yaml", "export/default.yaml"])
def test_shipped_file_found_by_name(arg: str) -> None:
    found = resolve_data_file("export", arg)
    assert found.resolve() == (REPO / "export" / "default.yaml").resolve()


def test_shipped_file_found_by_bare_name_from_another_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert resolve_data_file("export", "export/default.yaml") == REPO / "export" / "default.yaml"
    assert resolve_data_file("export", "default") == REPO / "export" / "default.yaml"


def test_existing_path_wins_over_shipped_name(tmp_path: Path) -> None:
    mine = tmp_path / "default.yaml"
    mine.write_text("min_accuracy: 0.5\n")
    assert resolve_data_file("export", str(mine)) == mine


def test_path_with_any_suffix_is_accepted(tmp_path: Path) -> None:
    mine = tmp_path / "gates.txt"
    mine.write_text("x")
    assert resolve_data_file("export", str(mine)) == mine


def test_yml_suffix_and_custom_suffixes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # the lookup by name goes through data_dir; point the package at a private copy of the tree
    import sdnas_deploy.resources as resources

    pkg = tmp_path / "sdnas_deploy"
    pkg.mkdir()
    (tmp_path / "latency_tables").mkdir()
    (tmp_path / "latency_tables" / "jetson.json").write_text("{}")
    (tmp_path / "latency_tables" / "notes.md").write_text("x")
    (tmp_path / "export").mkdir()
    (tmp_path / "export" / "edge.yml").write_text("x: 1\n")
    monkeypatch.setattr(resources, "_PACKAGE_DIR", pkg)

    assert resolve_data_file("export", "edge") == tmp_path / "export" / "edge.yml"
    jetson = resolve_data_file("latency_tables", "jetson", suffixes=(".json",))
    assert jetson == tmp_path / "latency_tables" / "jetson.json"
    with pytest.raises(BadInputError) as exc:
        resolve_data_file("latency_tables", "orin", suffixes=(".json",))
    assert str(exc.value).endswith("one of: jetson")


def test_unknown_name_lists_shipped_files() -> None:
    with pytest.raises(BadInputError) as exc:
        resolve_data_file("export", "no-such-profile")
    msg = str(exc.value)
    assert exc.value.exit_code == 2 and "\n" not in msg
    assert msg.startswith("gate profile not found: no-such-profile")
    shipped = msg.split("one of: ", 1)[1].split(", ")
    assert "default" in shipped
    assert shipped == sorted(p.stem for p in (REPO / "export").glob("*.y*ml"))


def test_unknown_name_with_nothing_shipped() -> None:
    with pytest.raises(BadInputError, match=r"search recipe not found: x; .*\(none shipped\)"):
        resolve_data_file("search", "x", suffixes=(".nothing",))


def test_missing_path_is_bad_input(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="gate profile not found"):
        resolve_data_file("export", str(tmp_path / "mine.yaml"))


def test_a_mistyped_user_path_does_not_fall_back_to_a_shipped_file(tmp_path: Path) -> None:
    """Only a bare name or `<kind>/<name>` means a shipped file; /elsewhere/default.yaml is an error."""
    from sdnas_deploy.errors import BadInputError
    from sdnas_deploy.resources import resolve_data_file

    assert resolve_data_file("export", "export/default.yaml").name == "default.yaml"
    with pytest.raises(BadInputError):
        resolve_data_file("export", str(tmp_path / "missing" / "default.yaml"))
