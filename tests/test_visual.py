"""Run plots, the report page and `sdnas report`: what is drawn, what is embedded, bad runs, a real browser."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli_checks import one_error_line
from sdnas_deploy.cli.main import app
from sdnas_deploy.nas.config import SearchConfig
from sdnas_deploy.nas.searcher import run_search
from sdnas_deploy.profile.timing import MAX_KEPT_SAMPLES, _sample
from sdnas_deploy.spaces.darts import REFERENCE_GENOTYPES
from sdnas_deploy.training.config import TrainConfig
from sdnas_deploy.training.trainer import run_training
from sdnas_deploy.visual.plots import compare_trajectories, profile_plot
from sdnas_deploy.visual.report import make_plots, write_report

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def search_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("visual") / "search"
    config = SearchConfig(layers=3, channels=4, limit=96, epochs=2, batch_size=32, steps_per_epoch=2, device="cpu",
                          teachers=2, teacher_interval=1, distill_warmup_epochs=0, flops_budget=1.0)
    run_search(config, out, progress=False)
    return out


def test_search_plots_and_report_page(search_run: Path) -> None:
    plots = dict((Path(p).name, caption) for caption, p in make_plots(search_run))
    assert {"alpha_normal.png", "alpha_reduce.png", "accuracy.png", "cost.png"} <= set(plots)
    assert all((search_run / "plots" / name).read_bytes()[:8] == PNG for name in plots)
    page = write_report(search_run).read_text()
    assert page.count("<img") == len(plots) + 1  # every plot and the architecture diagram
    assert "src='http" not in page and "<script" not in page  # self-contained, no scripts
    report = json.loads((search_run / "report.json").read_text())
    shown = f"{report['final']['discretized_val_acc']:.4g}"
    assert f"data-key='report.json:final.discretized_val_acc'>{shown}<" in page


def test_train_plots(tmp_path: Path) -> None:
    config = TrainConfig(dataset="digits", layers=3, channels=8, epochs=2, batch_size=64, steps_per_epoch=2,
                         limit=128, device="cpu", auxiliary=False)
    run_training(REFERENCE_GENOTYPES["darts_v2"], config, tmp_path / "train", progress=False)
    plots = make_plots(tmp_path / "train")
    assert [p.name for _, p in plots] == ["training.png"]
    assert "training loss and accuracy" in write_report(tmp_path / "train").read_text()


def test_profile_histogram_needs_samples(tmp_path: Path) -> None:
    assert profile_plot({"stats": {}}, tmp_path) == []
    samples = _sample([0.1 + 0.001 * i for i in range(3 * MAX_KEPT_SAMPLES)])
    assert len(samples) == MAX_KEPT_SAMPLES and samples[0] == 0.1
    made = profile_plot({"samples_ms": samples, "stats": {"p50": 7.6, "p90": 13.6, "p99": 15.0}, "backend": "ort"},
                        tmp_path)
    assert made[0][1].read_bytes()[:8] == PNG


def test_report_command_errors(tmp_path: Path, search_run: Path) -> None:
    runner = CliRunner()
    assert "not a run" in one_error_line(runner.invoke(app, ["report", str(tmp_path)]), 2)
    broken = tmp_path / "broken"
    shutil.copytree(search_run, broken)
    (broken / "report.json").write_text("{not json")
    assert "report.json" in one_error_line(runner.invoke(app, ["report", str(broken)]), 2)
    (broken / "report.json").write_text("[1, 2]")
    assert "not a run report" in one_error_line(runner.invoke(app, ["report", str(broken)]), 2)
    ok = runner.invoke(app, ["report", str(search_run)])
    assert ok.exit_code == 0 and "report.html" in ok.output


@pytest.mark.slow
@pytest.mark.skipif(not any(shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome")),
                    reason="needs Chromium (apt-get install chromium)")
def test_report_page_in_a_real_browser(search_run: Path, tmp_path: Path) -> None:
    from sdnas_deploy.visual.browser import check_report_page

    write_report(search_run)
    result = check_report_page(search_run, tmp_path / "shot.png")
    assert result["images_decoded"] and result["summary_matches"] and result["passed"]
    assert (tmp_path / "shot.png").read_bytes()[:8] == PNG


def test_tensorboard_scalars(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sdnas_deploy.errors import BadInputError
    from sdnas_deploy.scalars import Scalars

    assert Scalars(None).writer is None and Scalars(tmp_path, enabled=False).writer is None
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    config = SearchConfig(layers=3, channels=4, limit=96, epochs=1, batch_size=32, steps_per_epoch=2, device="cpu",
                          method="darts", flops_budget=1.0, tensorboard=str(tmp_path / "tb"))
    run_search(config, tmp_path / "run", progress=False)
    events = EventAccumulator(str(tmp_path / "tb"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"step/train_loss", "step/arch_loss", "epoch/supernet_val_acc", "alpha_entropy/normal",
            "epoch/expected_mmac"} <= tags
    assert len(events.Scalars("step/train_loss")) == 2
    import builtins

    real_import = builtins.__import__

    def no_tensorboard(name: str, *args: object, **kwargs: object) -> object:
        if name == "torch.utils.tensorboard":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tensorboard)
    with pytest.raises(BadInputError, match="pip install tensorboard"):
        Scalars(tmp_path / "tb2")


def test_compare_trajectories_draws_every_method_and_skips_gaps(tmp_path: Path) -> None:
    stat = lambda mean: {"mean": mean, "std": 0.1, "n": 3}  # noqa: E731
    per_method = {
        "darts": [{"epoch": 1, "gap": stat(0.5), "dominant_eigenvalue": {"mean": None, "std": 0.0, "n": 0}},
                  {"epoch": 2, "gap": stat(0.6), "dominant_eigenvalue": stat(0.1)}],
        "sd-darts": [{"epoch": 1, "gap": stat(0.4)}, {"epoch": 2, "gap": stat(0.45), "dominant_eigenvalue": stat(0.05)}],
    }
    path = compare_trajectories(per_method, [("gap", "gap"), ("dominant_eigenvalue", "eigenvalue")],
                                tmp_path / "cmp.png", title="t")
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
