"""runtime/runner.py and its runners: one protocol per backend, one suffix table, one ORT session builder —
and `sdnas profile`, `sdnas check` and `sdnas lut measure` all time through the same runner classes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn

from sdnas_deploy.errors import BadInputError, VerificationError
from sdnas_deploy.export.onnx_export import export_onnx, onnx_model_proto
from sdnas_deploy.hw.measure import time_module
from sdnas_deploy.profile.api import profile_model
from sdnas_deploy.runtime.ort_runner import OrtRunner
from sdnas_deploy.runtime.ort_session import build_session, providers_for, session_options
from sdnas_deploy.runtime.runner import BACKENDS, BACKENDS_BY_SUFFIX, Runner, backend_for, backends_for, is_engine
from sdnas_deploy.runtime.torch_runner import TorchRunner

SHAPE = (2, 1, 8, 8)


def tiny() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 8 * 8, 3)).eval()


def make_runner(backend: str, model: nn.Module) -> Runner:
    if backend == "ort":
        return OrtRunner.from_bytes(onnx_model_proto(model, SHAPE).SerializeToString(), "cpu", 1, batch=SHAPE[0])
    return TorchRunner(model, SHAPE, "cpu", threads=1)


def test_one_suffix_table_names_every_backend() -> None:
    assert {b for allowed in BACKENDS_BY_SUFFIX.values() for b in allowed} == set(BACKENDS)
    assert [backend_for(p) for p in ("a.onnx", "a.ENGINE", "a.plan", "a.safetensors", "a.bin")] == [
        "ort", "trt", "trt", "torch", "ort"]
    assert backends_for("m.onnx") == ("ort", "torch") and backends_for("m.txt") is None
    assert is_engine("x.plan") and not is_engine("x.onnx")


@pytest.mark.parametrize("backend", ["ort", "torch"])
def test_cpu_runner_contract(backend: str) -> None:
    model = tiny()
    with make_runner(backend, model) as runner:
        assert runner.backend == backend and runner.device == "cpu" and runner.stream is None
        assert runner.input_shape == SHAPE and runner.compute_call
        with pytest.raises(BadInputError, match="does not fit"):
            runner.set_input(np.zeros((1, 1, 8, 8), np.float32))
        runner.prime()
        call = runner.blocking_call()
        assert call() is None and runner.blocking_call(include_data_transfers=True)() is None
        assert {"runtime", "provider"} <= set(runner.describe())


def test_torch_runner_gives_back_threads_and_mode() -> None:
    model = tiny().train()
    before = torch.get_num_threads()
    runner = TorchRunner(model, SHAPE, "cpu", threads=1)
    assert torch.get_num_threads() == 1 and not model.training
    runner.close()
    runner.close()  # idempotent
    assert torch.get_num_threads() == before and model.training


def test_ort_runner_runs_what_torch_runs() -> None:
    model = tiny()
    runner = make_runner("ort", model)
    x = np.random.default_rng(1).standard_normal(SHAPE).astype(np.float32)
    runner.set_input(x)
    got = runner.session.run(None, {runner.spec.name: x})[0]
    with torch.no_grad():
        want = model(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_session_builder_errors_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="not found|does not exist|no such"):
        build_session(tmp_path / "missing.onnx")
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(b"not a model")
    with pytest.raises(BadInputError, match="not a loadable ONNX model"):
        build_session(corrupt)
    with pytest.raises(VerificationError, match="rewritten graph: ONNX Runtime cannot load"):
        build_session(b"junk", where="rewritten graph")
    with pytest.raises(BadInputError, match="threads must be >= 1"):
        session_options(threads=0)
    with pytest.raises(BadInputError, match="expected cpu, cuda or cuda:N"):
        providers_for("tpu")
    assert session_options(2, sequential=True).inter_op_num_threads == 1


def _count_compute(monkeypatch: pytest.MonkeyPatch, cls: type) -> list[int]:
    calls = [0]
    original = cls.compute

    def counted(self: Runner) -> None:
        calls[0] += 1
        original(self)

    monkeypatch.setattr(cls, "compute", counted)
    return calls


@pytest.mark.parametrize("backend,cls", [("ort", OrtRunner), ("torch", TorchRunner)])
def test_lut_measure_times_through_the_runner(monkeypatch: pytest.MonkeyPatch, backend: str, cls: type) -> None:
    calls = _count_compute(monkeypatch, cls)
    stats = time_module(tiny(), SHAPE, backend=backend, warmup=2, repeats=3, threads=1)
    assert calls[0] == 5 and stats["repeats"] == 3 and stats["backend"] == backend


DEMO = Path(__file__).resolve().parent.parent / "export" / "demo"


@pytest.mark.parametrize("backend,cls,call", [("ort", OrtRunner, "session.run()"),
                                              ("torch", TorchRunner, "model(x) in eager PyTorch")])
def test_profile_times_through_the_runner(monkeypatch: pytest.MonkeyPatch, backend: str, cls: type,
                                          call: str) -> None:
    calls = _count_compute(monkeypatch, cls)
    report = profile_model(DEMO / "model.onnx", backend=backend, warmup_s=0.0, iterations=4, threads=1)
    assert report["iterations"] == 4 and report["warmup"]["calls"] == 1
    assert calls[0] == 1 + 1 + 4  # prime, one warm-up call, the timed calls
    assert report["timed"].startswith(call)


def test_check_profiles_through_the_runner(monkeypatch: pytest.MonkeyPatch) -> None:
    from sdnas_deploy.gate.gates import GateProfile, run_check

    calls = _count_compute(monkeypatch, OrtRunner)
    gates = GateProfile(max_latency_ms=1e6, warmup_s=0.0, duration_s=0.01, threads=1).validate()
    report = run_check(DEMO / "model.onnx", gates)
    assert report.passed and report.profile is not None
    assert calls[0] == 1 + 1 + report.profile["iterations"]
