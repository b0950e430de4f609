"""Every search method runs on every space (registry-driven): one tiny search each, files and report checked."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sdnas_deploy.methods import METHODS, get_method
from sdnas_deploy.nas.config import SearchConfig
from sdnas_deploy.nas.searcher import run_search
from sdnas_deploy.errors import BadInputError
from sdnas_deploy.spaces import SPACES, load_arch

CASES = [(m, s) for m in sorted(METHODS) for s in sorted(SPACES) if METHODS[m].engine == "supernet"]
BLOCKWISE = [(m, s) for m in sorted(METHODS) for s in sorted(SPACES) if METHODS[m].engine == "blockwise"]


def _tiny(method: str, space: str, **kw) -> SearchConfig:
    extra = {"layers": 3, "channels": 2} if space == "darts" else {}
    base = dict(space=space, method=method, limit=48, epochs=2, batch_size=12, steps_per_epoch=2, teachers=1,
                teacher_interval=1, distill_warmup_epochs=1, seed=0, device="cpu", **extra)
    return SearchConfig(**{**base, **kw})


@pytest.mark.parametrize(("method", "space"), CASES, ids=[f"{m}-{s}" for m, s in CASES])
def test_method_searches_space(method: str, space: str, tmp_path: Path) -> None:
    report = run_search(_tiny(method, space), tmp_path, progress=False)
    assert report["status"] == "complete" and report["method"] == method and report["space"] == space
    found, arch = load_arch(tmp_path / "genotype.json", space)
    assert found.arch_to_dict(arch) == report["final"]["genotype"]
    history = json.loads((tmp_path / "alpha_history.json").read_text())
    labels = set(SPACES[space].build_supernet(SPACES[space].search_geometry(16, 1, 10, None, *(
        (3, 2) if space == "darts" else ()))).arch_labels())
    assert len(history) == 2 and labels <= set(history[-1])
    distilled = sum(e["distilled_steps"] for e in report["epochs"])
    assert (distilled > 0) == (method == "sd-darts")


def test_gumbel_relaxation_and_unknown_method(tmp_path: Path) -> None:
    report = run_search(_tiny("darts", "fbnet", relax="gumbel", epochs=1), tmp_path, progress=False)
    assert report["config"]["relax"] == "gumbel" and report["status"] == "complete"
    with pytest.raises(BadInputError, match="did you mean 'sd-darts'"):
        SearchConfig(method="sd-dart")
    with pytest.raises(BadInputError, match="relax"):
        SearchConfig(relax="hard")  # type: ignore[arg-type]
    assert SearchConfig(distill="none").method == "darts" and get_method("darts").name == "darts"


@pytest.fixture(scope="module")
def fbnet_teacher(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from sdnas_deploy.spaces import parse_arch
    from sdnas_deploy.training.config import TrainConfig
    from sdnas_deploy.training.trainer import run_training

    out = tmp_path_factory.mktemp("teacher")
    space, arch = parse_arch("fbnet:" + "-".join(["k3_e3"] * 12))
    run_training(arch, TrainConfig(dataset="digits", setting="small", epochs=1, limit=48, batch_size=12, device="cpu",
                                   seed=0), out, progress=False, space=space)
    return out / "best.safetensors"


@pytest.mark.parametrize(("method", "space"), BLOCKWISE, ids=[f"{m}-{s}" for m, s in BLOCKWISE])
def test_blockwise_method_searches_space_or_refuses_it(method: str, space: str, fbnet_teacher: Path,
                                                       tmp_path: Path) -> None:
    why = METHODS[method].unsupported(SPACES[space])
    if why:
        with pytest.raises(BadInputError, match="cannot search space"):
            SearchConfig(space=space, method=method)
        return
    config = SearchConfig(space=space, method=method, teacher=str(fbnet_teacher), limit=48, epochs=1, batch_size=12,
                          steps_per_epoch=1, rate_max=4, rate_batches=1, calib_batches=1, top_k=2, seed=0, device="cpu")
    report = run_search(config, tmp_path, progress=False)
    assert report["status"] == "complete" and report["method"] == method and report["space"] == space
    found, arch = load_arch(tmp_path / "genotype.json", space)
    assert found.arch_to_dict(arch) == report["final"]["genotype"] and len(report["final"]["top_k"]) == 2
    found.build_network(arch, found.geometry(report["setting"], input_size=16, in_channels=1))
