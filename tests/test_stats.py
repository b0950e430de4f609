"""Latency statistics on known numbers, throughput, the CoV warning and input validation."""

from __future__ import annotations

import math

import pytest

from sdnas_deploy.runtime.stats import (
    COV_WARN_THRESHOLD,
    cov_warning,
    percentile_key,
    pick_stat,
    summarize,
    throughput,
)
from sdnas_deploy.errors import BadInputError


def test_summarize_one_to_hundred() -> None:
    s = summarize([float(v) for v in range(1, 101)])
    assert s["n"] == 100 and s["min"] == 1.0 and s["max"] == 100.0
    assert s["mean"] == pytest.approx(50.5) and s["median"] == pytest.approx(50.5)
    # linear interpolation between closest ranks: p = 1 + (100 - 1) * q
    assert s["p50"] == pytest.approx(50.5)
    assert s["p90"] == pytest.approx(90.1)
    assert s["p95"] == pytest.approx(95.05)
    assert s["p99"] == pytest.approx(99.01)
    # population std of 1..n is sqrt((n^2 - 1) / 12)
    assert s["std"] == pytest.approx(math.sqrt((100**2 - 1) / 12))
    assert s["cov"] == pytest.approx(s["std"] / 50.5)


def test_summarize_small_sample_and_custom_percentiles() -> None:
    s = summarize([4.0, 2.0, 6.0], percentiles=(25, 99.9))
    assert s["median"] == 4.0 and s["p25"] == pytest.approx(3.0) and s["p99.9"] == pytest.approx(5.996)
    assert "p90" not in s
    one = summarize([3.5])
    assert one["std"] == 0.0 and one["cov"] == 0.0 and one["p99"] == 3.5


@pytest.mark.parametrize("bad", [[], [1.0, float("nan")], [1.0, -2.0], [float("inf")]])
def test_summarize_rejects_bad_samples(bad: list[float]) -> None:
    with pytest.raises(BadInputError):
        summarize(bad)


def test_summarize_rejects_bad_percentile() -> None:
    with pytest.raises(BadInputError, match="percentile 101"):
        summarize([1.0, 2.0], percentiles=(101,))


def test_throughput() -> None:
    assert throughput(1, 2.0) == pytest.approx(500.0)
    assert throughput(8, 4.0) == pytest.approx(2000.0)
    with pytest.raises(BadInputError):
        throughput(0, 1.0)
    with pytest.raises(BadInputError):
        throughput(1, 0.0)


def test_cov_warning_threshold() -> None:
    assert COV_WARN_THRESHOLD == 0.025
    steady = summarize([10.0, 10.1, 9.9, 10.0])
    assert steady["cov"] < COV_WARN_THRESHOLD and cov_warning(steady) is None
    noisy = summarize([10.0, 20.0, 10.0, 30.0])
    message = cov_warning(noisy)
    assert message is not None and "exceeds 2.5%" in message and "\n" not in message


def test_percentile_key_and_pick_stat() -> None:
    assert percentile_key(90) == "p90" and percentile_key(99.9) == "p99.9" and percentile_key(50.0) == "p50"
    s = summarize([1.0, 2.0, 3.0])
    assert pick_stat(s, "median") == 2.0
    with pytest.raises(BadInputError, match="'p42' not in the profile"):
        pick_stat(s, "p42")
