"""Shared test configuration: markers that skip cleanly where CI cannot run them."""

from __future__ import annotations

import importlib.util

import pytest
import torch


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--runslow", action="store_true", default=False, help="run tests marked slow")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    has_cuda = torch.cuda.is_available()
    has_trt = importlib.util.find_spec("tensorrt") is not None
    run_slow = config.getoption("--runslow")
    for item in items:
        if item.get_closest_marker("gpu") and not has_cuda:
            item.add_marker(pytest.mark.skip(reason="needs a CUDA GPU"))
        if item.get_closest_marker("trt") and not has_trt:
            item.add_marker(pytest.mark.skip(reason="needs TensorRT"))
        if item.get_closest_marker("slow") and not run_slow:
            item.add_marker(pytest.mark.skip(reason="slow: use --runslow"))


def pytest_configure(config: pytest.Config) -> None:
    """One torch thread for the whole session: the tiny convs here run fastest single-threaded, CI has
    2 cores, and every fixture (whatever its scope) computes with the same thread count, so results
    that tests compare bit for bit are reproducible."""
    torch.set_num_threads(1)
