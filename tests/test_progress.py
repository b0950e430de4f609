"""Progress reporting in a non-TTY (plain lines on stderr) (sdnas_deploy.progress)."""

from __future__ import annotations

import re

import pytest

from sdnas_deploy.progress import Progress, is_tty, log, track


def test_captured_stderr_is_not_a_tty(capsys: pytest.CaptureFixture[str]) -> None:
    assert is_tty() is False


def test_log_writes_one_line_to_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    log("hello world")
    out, err = capsys.readouterr()
    assert out == ""
    assert err == "hello world\n"


def test_plain_lines_with_counts_and_metrics(capsys: pytest.CaptureFixture[str]) -> None:
    with Progress(3, "search epoch", every_s=0) as bar:
        bar.advance(loss=0.123456, step=1)
        bar.advance(loss=0.5, acc=0.25, step=2)
        bar.advance(step=3)
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 3
    assert lines[0].startswith("search epoch 1/3 loss=0.1235 step=1 ")
    assert lines[1].startswith("search epoch 2/3 loss=0.5 step=2 acc=0.25 ")
    assert lines[2].startswith("search epoch 3/3 loss=0.5 step=3 acc=0.25 ")  # metrics persist
    for line in lines:
        assert re.search(r" elapsed=\d+s eta=\d+s$", line)
    assert lines[2].endswith("eta=0s")
    assert bar.done == 3
    assert bar.metrics == {"loss": 0.5, "step": 3, "acc": 0.25}


def test_advance_by_n(capsys: pytest.CaptureFixture[str]) -> None:
    with Progress(10, "train", every_s=0) as bar:
        bar.advance(4)
        bar.advance(6)
    lines = capsys.readouterr().err.splitlines()
    assert [line.split()[1] for line in lines] == ["4/10", "10/10"]


def test_default_interval_prints_only_the_final_line(capsys: pytest.CaptureFixture[str]) -> None:
    with Progress(5, "eval") as bar:
        for _ in range(5):
            bar.advance(acc=0.5)
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("eval 5/5 acc=0.5 ")


def test_disabled_prints_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    with Progress(2, "quiet", enabled=False, every_s=0) as bar:
        bar.advance(loss=1.0)
        bar.advance(loss=0.5)
    assert capsys.readouterr() == ("", "")
    assert bar.done == 2 and bar.metrics == {"loss": 0.5}


def test_track_yields_all_items_and_reports_end(capsys: pytest.CaptureFixture[str]) -> None:
    items = ["a", "b", "c", "d"]
    assert list(track(iter(items), total=4, description="batches")) == items
    err = capsys.readouterr().err
    assert err.splitlines()[-1].startswith("batches 4/4 ")


def test_track_disabled_is_silent(capsys: pytest.CaptureFixture[str]) -> None:
    assert list(track(range(3), total=3, description="x", enabled=False)) == [0, 1, 2]
    assert capsys.readouterr().err == ""
