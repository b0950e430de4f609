"""gpu_timing: the breakdown summary and the "timed" wording (CPU), and the CUDA event timing itself (GPU)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from sdnas_deploy.runtime.gpu_timing import (
    STAGES, capture_graph, summarize_breakdown, time_gpu_iterations, timed_statement,
)
from sdnas_deploy.errors import BadInputError


def test_summarize_breakdown_with_given_numbers() -> None:
    stages = {"compute": [1.0, 2.0, 3.0, 4.0], "latency": [2.0, 3.0, 4.0, 5.0], "enqueue": [0.1, 0.1, 0.1, 0.1]}
    out = summarize_breakdown(stages, percentiles=(50, 90))
    assert list(out) == ["compute", "enqueue", "latency"]  # STAGES order, empty/missing stages left out
    c = out["compute"]
    assert (c["n"], c["min"], c["max"], c["mean"], c["median"]) == (4, 1.0, 4.0, 2.5, 2.5)
    assert c["p90"] == pytest.approx(3.7)  # numpy linear interpolation between ranks
    assert c["std"] == pytest.approx(np.std([1, 2, 3, 4])) and c["cov"] == pytest.approx(c["std"] / 2.5)
    assert out["enqueue"]["cov"] == pytest.approx(0.0, abs=1e-12)
    assert "h2d" not in summarize_breakdown({**stages, "h2d": []})


def test_summarize_breakdown_rejects_unknown_stage() -> None:
    with pytest.raises(BadInputError, match="unknown timing stage"):
        summarize_breakdown({"kernels": [1.0]})
    assert STAGES == ("h2d", "compute", "d2h", "enqueue", "latency")


def _statement(**kw: object) -> str:
    base = dict(include_data_transfers=False, cuda_graph=False, warm_calls=12, warm_s=1.0, iterations=300)
    base.update(kw)
    call = str(base.pop("call", "model(x)"))
    device = str(base.pop("device", "cuda:0"))
    return timed_statement(call, 4, device, **base)  # type: ignore[arg-type]


@pytest.mark.parametrize("copies,graph", list(itertools.product([False, True], [False, True])))
def test_statement_on_gpu_says_exactly_what_was_included(copies: bool, graph: bool) -> None:
    text = _statement(include_data_transfers=copies, cuda_graph=graph, breakdown=True)
    assert text.startswith("model(x) per call, batch 4 on cuda:0; ")
    if copies:
        assert "host-to-device input copy and device-to-host output copy included" in text
        assert "no host-device copies" not in text
    else:
        assert "input already on cuda:0 and output left on cuda:0 (no host-device copies)" in text
    if graph:
        assert "launched as one CUDA graph replay" in text and "no CUDA graph" not in text
    else:
        assert "kernels launched one by one (no CUDA graph)" in text
    assert "the stream synchronized after every call" in text
    assert "H2D/compute/D2H with CUDA events" in text
    assert text.endswith("after 1.00 s warm-up (12 calls), 300 timed calls")


def test_statement_host_clock_and_custom_sync() -> None:
    text = _statement(sync="ONNX Runtime synchronizes its CUDA stream before returning")
    assert "ONNX Runtime synchronizes its CUDA stream before returning" in text
    assert "wall time with the host clock" in text and "CUDA events" not in text


@pytest.mark.parametrize("copies", [False, True])
def test_statement_on_cpu(copies: bool) -> None:
    text = _statement(call="session.run()", device="cpu", include_data_transfers=copies, warm_calls=1, iterations=1)
    assert text.startswith("session.run() wall time per call, batch 4, input already in host memory")
    assert "on the CPU there are no host-device copies" in text and "no CUDA graph" in text
    assert ("--include-data-transfers changes nothing here" in text) is copies
    assert text.endswith("warm-up (1 call), 1 timed call")  # singular where it is one


def test_statement_refuses_cuda_graph_on_cpu() -> None:
    with pytest.raises(BadInputError, match="CUDA graph needs a CUDA device"):
        _statement(device="cpu", cuda_graph=True)


def test_copies_required_when_included() -> None:
    with pytest.raises(BadInputError, match="copy-in and a copy-out"):
        time_gpu_iterations(None, lambda: None, None, None, 0.0, 1, 1.0, include_data_transfers=True)


# ----------------------------------------------------------------------------------------------- GPU


def _linear_on(dev: torch.device) -> tuple[torch.nn.Module, torch.Tensor, torch.Tensor, list[torch.Tensor]]:
    model = torch.nn.Linear(256, 256).to(dev).eval()
    x_host = torch.randn(64, 256).pin_memory()
    x_dev = x_host.to(dev)
    return model, x_host, x_dev, [model(x_dev).detach()]


@pytest.mark.gpu
@pytest.mark.parametrize("copies", [False, True])
def test_time_gpu_iterations_eager(copies: bool) -> None:
    dev = torch.device("cuda")
    model, x_host, x_dev, holder = _linear_on(dev)
    out_host = torch.empty(holder[0].shape, pin_memory=True)
    stream = torch.cuda.Stream()

    def compute() -> None:
        with torch.no_grad():
            holder[0] = model(x_dev)

    result = time_gpu_iterations(lambda: x_dev.copy_(x_host, non_blocking=True), compute,
                                 lambda: out_host.copy_(holder[0], non_blocking=True), stream, 0.05, 20, 1.0, copies)
    assert result.iterations == 20 and result.warm_calls >= 1
    assert set(result.stages) == ({"h2d", "compute", "d2h", "enqueue", "latency"} if copies
                                  else {"compute", "enqueue", "latency"})
    for values in result.stages.values():
        assert len(values) == 20 and all(v >= 0 for v in values)
    # GPU compute sits inside the end-to-end host-timed iteration
    assert np.median(result.stages["compute"]) <= np.median(result.stages["latency"])
    if copies:
        torch.testing.assert_close(out_host, model(x_host.to(dev)).detach().cpu())


@pytest.mark.gpu
def test_time_gpu_iterations_with_cuda_graph() -> None:
    dev = torch.device("cuda")
    model, _, x_dev, holder = _linear_on(dev)
    stream = torch.cuda.Stream()

    def compute() -> None:
        with torch.no_grad():
            holder[0] = model(x_dev)

    with torch.cuda.stream(stream):
        compute()
    stream.synchronize()
    graph = capture_graph(compute, stream)
    result = time_gpu_iterations(None, compute, None, stream, 0.0, None, 0.2, False, graph=graph)
    assert result.iterations >= 10
    torch.testing.assert_close(holder[0], model(x_dev).detach())
