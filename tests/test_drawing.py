"""Architecture diagrams of every space: Graphviz and matplotlib engines, formats, errors, `inspect --draw`."""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import pytest

from sdnas_deploy.errors import BadInputError
from sdnas_deploy.spaces import SPACES, get_space
from sdnas_deploy.spaces import drawing
from sdnas_deploy.spaces.darts import REFERENCE_GENOTYPES

from typer.testing import CliRunner

from cli_checks import one_error_line
from sdnas_deploy.cli.main import app

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("name", sorted(SPACES))
@pytest.mark.parametrize("engine", ["auto", "matplotlib"])
def test_every_space_draws_png_and_svg(name: str, engine: str, tmp_path: Path) -> None:
    space = get_space(name)
    arch = space.sample(random.Random(0), None)
    used = space.draw(arch, tmp_path / "arch.png", engine=engine)
    assert (tmp_path / "arch.png").read_bytes()[:8] == PNG
    assert used in ("graphviz", "matplotlib") and (engine == "auto" or used == "matplotlib")
    space.draw(arch, tmp_path / "arch.svg", engine=engine)
    assert b"<svg" in (tmp_path / "arch.svg").read_bytes()[:2000]


def test_darts_cells_name_every_op_and_node() -> None:
    genotype = REFERENCE_GENOTYPES["darts_v2"]
    cells = []
    original = drawing.draw_cells
    drawing_cells = lambda c, path, engine="auto": cells.extend(c) or "test"  # noqa: E731
    try:
        drawing.draw_cells = drawing_cells
        get_space("darts").draw(genotype, "x.svg")
    finally:
        drawing.draw_cells = original
    normal, reduce = cells
    assert [op for _, _, op in normal.edges if op != "concat"] == [op for op, _ in genotype.normal]
    assert {dst for _, dst, op in normal.edges if op == "concat"} == {"c_{k}"}
    source = drawing.cell_dot(cells)
    assert source.count("->") == len(normal.edges) + len(reduce.edges) and "sep_conv_3x3" in source


def test_bad_suffix_and_missing_graphviz(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    space = get_space("nb201")
    arch = space.sample(random.Random(0), None)
    with pytest.raises(BadInputError, match="choose one of those suffixes"):
        space.draw(arch, tmp_path / "arch.jpg")
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(BadInputError, match="apt-get install graphviz"):
        space.draw(arch, tmp_path / "arch.svg", engine="graphviz")
    assert space.draw(arch, tmp_path / "arch.svg") == "matplotlib"  # auto falls back without dot


def test_inspect_draw(tmp_path: Path) -> None:
    out = tmp_path / "cell.svg"
    runner = CliRunner()
    result = runner.invoke(app, ["inspect", "darts_v2", "--draw", str(out)])
    assert result.exit_code == 0 and out.is_file() and "diagram" in result.output
    bad = runner.invoke(app, ["inspect", "darts_v2", "--draw", str(out), "--draw-engine", "tikz"])
    assert "--draw-engine" in one_error_line(bad, 2)
