"""Deployment gates: a YAML profile of accuracy/latency thresholds and the check against it.

A gate profile (``export/default.yaml``, ``export/ci-demo.yaml``) names the data to score on, the
backend (ONNX Runtime, TensorRT or PyTorch), the precision the artifact must have, and the
thresholds; :func:`run_check` first checks the artifact's identity against its sidecar, then
measures what the set gates need and returns one row per gate. A gate left unset is not checked,
but a profile must set at least one.

Exit codes of ``sdnas check`` (DESIGN.md §4; :data:`EXIT_CODES`):

* 0 — every gate passed.
* 2 — bad usage or input: missing model, malformed profile or unknown key, no gate set, unknown dataset.
* 3 — verification failed: the sidecar says ``verified: false``, its sha256 does not match the model
  file, or the artifact's precision (sidecar ``precision``, absent = fp32) differs from the profile's.
* 4 — a gate failed (accuracy below, drop or latency above its threshold).
* 5 — environment unsupported: backend trt without TensorRT, device cuda without a CUDA provider.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal, Mapping

import numpy as np

from ..config_utils import from_mapping
from ..errors import BadInputError, GateFailedError, SdnasError
from ..io_utils import load_yaml, require_file
from ..resources import resolve_data_file
from ..export.accuracy import PRECISIONS
from .artifact_check import (
    check_model_kind,
    evaluate_torch,
    inspect_artifact,
    require_environment,
    weights_path,
)
from ..runtime.evaluate import evaluate_onnx
from ..runtime.fingerprint import file_sha256
from ..runtime.stats import pick_stat

GATE_KEYS: tuple[str, ...] = ("min_accuracy", "max_accuracy_drop", "max_latency_ms")
EXIT_CODES: dict[int, str] = {
    0: "all gates passed", 2: "bad usage or input", 3: "verification failed", 4: "a gate failed",
    5: "environment unsupported",
}


@dataclass
class GateProfile:
    """Thresholds and measurement settings. Accuracies are fractions in [0, 1]."""

    dataset: str = "digits"  # dataset the accuracy gates score on (sdnas_deploy.data registry name)
    split: str = "test"  # "test" (held out) or "train"
    data_dir: str | None = None  # dataset root for datasets that are not embedded
    limit: int | None = None  # score on the first N images only (None = whole split)
    min_accuracy: float | None = None  # top-1 on the backend must be >= this
    max_accuracy_drop: float | None = None  # PyTorch top-1 minus the backend's top-1 must be <= this
    max_latency_ms: float | None = None  # latency_stat of the profile must be <= this
    latency_stat: Literal["min", "mean", "median", "p90", "p95", "p99"] = "p90"
    backend: Literal["ort", "trt", "torch"] = "ort"  # what runs the model: ONNX Runtime, TensorRT, PyTorch
    precision: str | None = None  # fp32 | fp16 | int8: what the artifact must be (sidecar "precision"); None = any
    device: str | None = None  # cpu | cuda | cuda:N; None = cpu for ort/torch, cuda:0 for trt
    batch: int = 1  # profiling batch size
    duration_s: float = 3.0  # timed profiling duration
    warmup_s: float = 1.0  # warm-up before timing
    threads: int | None = None  # intra-op threads (None = runtime default)
    force: bool = False  # trt: run an engine built for another GPU/TensorRT (warn instead of exit 5)

    @property
    def effective_device(self) -> str:
        """The device measured on: the profile's, else the backend's default."""
        return self.device or ("cuda:0" if self.backend == "trt" else "cpu")

    def validate(self, source: str = "gate profile") -> "GateProfile":
        """Range checks and the at-least-one-gate rule; returns self for chaining."""
        if all(getattr(self, key) is None for key in GATE_KEYS):
            raise BadInputError(f"{source}: no gate set; set at least one of {', '.join(GATE_KEYS)}")
        for key in ("min_accuracy", "max_accuracy_drop"):
            value = getattr(self, key)
            if value is not None and not 0.0 <= value <= 1.0:  # NaN fails this too
                raise BadInputError(f"{source}: {key}={value} must be a fraction in [0, 1] (e.g. 0.8 for 80%)")
        positive = {"max_latency_ms": self.max_latency_ms, "duration_s": self.duration_s}
        for key, value in positive.items():
            if value is not None and not (math.isfinite(value) and value > 0):
                raise BadInputError(f"{source}: {key}={value} must be a finite number > 0")
        if not (math.isfinite(self.warmup_s) and self.warmup_s >= 0):
            raise BadInputError(f"{source}: warmup_s={self.warmup_s} must be a finite number >= 0")
        for key in ("batch", "limit", "threads"):
            value = getattr(self, key)
            if value is not None and value < 1:
                raise BadInputError(f"{source}: {key}={value} must be >= 1")
        if self.split not in ("train", "test"):
            raise BadInputError(f"{source}: split={self.split!r} must be 'test' or 'train'")
        device = self.effective_device.strip().lower()
        index = device.partition(":")[2]
        if device not in ("cpu", "cuda") and not (device.startswith("cuda:") and index.isdigit()):
            raise BadInputError(f"{source}: device={self.device!r}; expected cpu, cuda or cuda:N")
        if self.backend == "trt" and device == "cpu":
            raise BadInputError(f"{source}: backend trt runs on a GPU; set device: cuda (or cuda:N), or use backend ort")
        if self.precision is not None and self.precision not in PRECISIONS:
            raise BadInputError(f"{source}: precision={self.precision!r}; expected one of {', '.join(PRECISIONS)} "
                                "(or leave it unset to accept any)")
        if self.backend == "torch" and self.precision not in (None, "fp32"):
            raise BadInputError(f"{source}: backend torch runs the fp32 PyTorch network; set precision: fp32 or use ort/trt")
        return self

    @property
    def needs_data(self) -> bool:
        """True when an accuracy gate is set (the caller must load images and labels)."""
        return self.min_accuracy is not None or self.max_accuracy_drop is not None


def gate_names(gates: Mapping[str, Any]) -> list[str]:
    """Names of the gates a profile (as a dict) sets, in the order rows are reported."""
    names = []
    if gates.get("min_accuracy") is not None:
        names.append("accuracy top-1")
    if gates.get("max_accuracy_drop") is not None:
        names.append("accuracy drop")
    if gates.get("max_latency_ms") is not None:
        names.append(f"latency {gates.get('latency_stat', 'p90')}")
    return names


def load_gates(path_or_name: str | Path) -> GateProfile:
    """Read a gate profile from a path or a shipped name (``default`` -> export/default.yaml)."""
    path = resolve_data_file("export", str(path_or_name))
    data = load_yaml(path, "gate profile")
    if data is not None and not isinstance(data, dict):
        raise BadInputError(f"{path}: a gate profile must be a YAML mapping of keys to values")
    return from_mapping(GateProfile, data, str(path)).validate(str(path))


@dataclass(frozen=True)
class GateRow:
    """One checked gate: measured value against threshold in the given direction."""

    gate: str
    comparison: Literal["<=", ">="]
    threshold: float
    measured: float
    passed: bool
    unit: str = ""
    stage: Literal["accuracy", "latency"] = "accuracy"  # which measurement produced the value

    def failure(self) -> str:
        """Short reason, e.g. ``latency p90 25.31 ms > 20 ms``."""
        wrong = ">" if self.comparison == "<=" else "<"
        return f"{self.gate} {_fmt(self.measured, self.unit)} {wrong} {_fmt(self.threshold, self.unit)}"


def _fmt(value: float, unit: str) -> str:
    return f"{value:.4g} {unit}".strip() if unit else f"{value:.4f}"


def _utc(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, timezone.utc).isoformat(timespec="seconds")


@dataclass
class CheckReport:
    """Result of :func:`run_check` (one row per gate), or of a check stopped by an error (exit 2/3/5)."""

    onnx_path: str  # the model file checked (an .onnx, or an .engine for backend trt)
    rows: list[GateRow]
    gates: dict[str, Any]
    accuracy: dict[str, Any] | None = None
    profile: dict[str, Any] | None = None
    warnings: list[str] = field(default_factory=list)
    artifact: dict[str, Any] | None = None  # path, sha256, sidecar, precision, verified
    error: dict[str, Any] | None = None  # {"exit_code", "type", "message"} when the check stopped early
    started_utc: str = ""
    duration_s: float = 0.0
    timings_s: dict[str, float] = field(default_factory=dict)  # seconds spent per stage (accuracy, latency)

    @classmethod
    def from_error(cls, model_path: Path | str, exc: SdnasError, gates: GateProfile | None = None,
                   started: float | None = None) -> "CheckReport":
        """The report of a check that could not judge the gates: ``exc`` says why and gives the exit code."""
        path = Path(model_path)
        artifact: dict[str, Any] = {"path": str(path)}
        if path.is_file():
            artifact["sha256"] = file_sha256(path)
        began = started if started is not None else time.time()
        return cls(
            str(path), [], asdict(gates) if gates is not None else {}, artifact=artifact,
            error={"exit_code": exc.exit_code, "type": type(exc).__name__, "message": exc.message},
            started_utc=_utc(began),
            duration_s=max(0.0, time.time() - began),
        )

    @property
    def passed(self) -> bool:
        return self.error is None and all(row.passed for row in self.rows)

    @property
    def exit_code(self) -> int:
        """0 when every gate passed, the error's code when the check stopped, else 4."""
        if self.error is not None:
            return int(self.error["exit_code"])
        return 0 if self.passed else GateFailedError.exit_code

    @property
    def status(self) -> str:
        """``PASSED``, ``FAILED`` (a gate failed) or ``ERROR`` (exit 2/3/5: nothing was judged)."""
        return "ERROR" if self.error is not None else "PASSED" if self.passed else "FAILED"

    @property
    def reason(self) -> str:
        if self.error is not None:
            return str(self.error["message"])
        return "; ".join(row.failure() for row in self.rows if not row.passed)

    @property
    def final_line(self) -> str:
        """Exactly ``PASSED``, or ``FAILED: <reason>``."""
        return "PASSED" if self.passed else f"FAILED: {self.reason}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "onnx_path": self.onnx_path, "status": self.status, "passed": self.passed,
            "exit_code": self.exit_code, "reason": self.reason, "rows": [asdict(r) for r in self.rows],
            "gates": self.gates, "artifact": self.artifact, "accuracy": self.accuracy, "profile": self.profile,
            "warnings": self.warnings, "error": self.error, "started_utc": self.started_utc,
            "duration_s": self.duration_s, "timings_s": self.timings_s,
        }


def _reference_accuracy(model_path: Path, sidecar: Mapping[str, Any], images: np.ndarray, labels: np.ndarray,
                        device: str, warnings: list[str]) -> tuple[float, str]:
    """PyTorch top-1 to measure the drop against, and where it came from.

    Preferred: the sidecar's weights run now on the very images scored. Otherwise the accuracy the
    export recorded (``torch_accuracy`` or ``reference_accuracy``), with a warning when its image
    count differs from the images scored now.
    """
    weights = weights_path(model_path, sidecar)
    if weights is not None:
        top1 = evaluate_torch(weights, images, labels, device)["top1"]
        return top1, f"PyTorch ({weights}) on the same {len(images)} images"
    verification = sidecar.get("verification")
    verification = verification if isinstance(verification, dict) else {}
    ref = verification.get("torch_accuracy", verification.get("reference_accuracy"))
    if not isinstance(ref, (int, float)):
        raise BadInputError(
            f"{model_path}: max_accuracy_drop needs the PyTorch weights or the PyTorch accuracy in its sidecar; "
            "re-export with labels (`sdnas export`) or remove max_accuracy_drop from the gate profile"
        )
    n_ref = verification.get("n_images")
    if n_ref != len(images):
        warnings.append(f"accuracy drop compares PyTorch on {n_ref} export images with the model on {len(images)} images")
    return float(ref), f"recorded at export ({n_ref} images)"


def _measure_accuracy(model_path: Path, gates: GateProfile, sidecar: Mapping[str, Any], images: np.ndarray,
                      labels: np.ndarray) -> dict[str, Any]:
    if gates.backend == "trt":
        from ..runtime.trt_runtime import evaluate_engine

        return evaluate_engine(model_path, images, labels, device=gates.effective_device, force=gates.force)
    if gates.backend == "torch":
        weights = weights_path(model_path, sidecar)
        if weights is None:
            raise BadInputError(f"{model_path}: backend torch needs the PyTorch weights (sidecar metadata.weights, "
                                "or pass the .safetensors file); re-export with `sdnas export`")
        return evaluate_torch(weights, images, labels, gates.effective_device)
    return evaluate_onnx(model_path, images, labels)


def run_check(
    onnx_path: Path | str,
    gates: GateProfile,
    images: np.ndarray | None = None,
    labels: np.ndarray | None = None,
) -> CheckReport:
    """Check the artifact (exit 3), the environment (exit 5), then measure and compare each gate.

    ``images``/``labels`` (from ``sdnas_deploy.data.load_arrays``) are required only when an
    accuracy gate is set; ``gates.limit`` keeps the first N of them.
    """
    from ..profile.api import profile_model

    began = time.time()
    model_path = require_file(onnx_path, "model")
    gates.validate()
    check_model_kind(model_path, gates.backend)
    if gates.needs_data and (images is None or labels is None):
        raise BadInputError(f"accuracy gates need images and labels of dataset {gates.dataset!r}; load them first")
    rows: list[GateRow] = []
    warnings: list[str] = []
    timings: dict[str, float] = {}
    accuracy = profile = None
    artifact, sidecar = inspect_artifact(model_path, gates, warnings)
    require_environment(gates)
    if gates.needs_data:
        t0 = time.perf_counter()
        if gates.limit is not None:
            images, labels = images[: gates.limit], labels[: gates.limit]  # type: ignore[index]
        accuracy = dict(_measure_accuracy(model_path, gates, sidecar, images, labels))  # type: ignore[arg-type]
        warnings += list(accuracy.pop("warnings", None) or [])
        top1 = accuracy["top1"]
        if gates.min_accuracy is not None:
            rows.append(GateRow("accuracy top-1", ">=", gates.min_accuracy, top1, top1 >= gates.min_accuracy))
        if gates.max_accuracy_drop is not None:
            if gates.backend == "torch":  # the scored model *is* the PyTorch reference: no second run
                ref, source = top1, f"PyTorch (the scored weights) on the same {accuracy['n']} images"
            else:
                device = gates.effective_device if gates.backend != "ort" else "cpu"
                ref, source = _reference_accuracy(model_path, sidecar, images, labels, device, warnings)  # type: ignore[arg-type]
            drop = ref - top1
            accuracy.update(torch_reference=ref, torch_reference_source=source, torch_reference_drop=drop)
            rows.append(GateRow("accuracy drop", "<=", gates.max_accuracy_drop, drop, drop <= gates.max_accuracy_drop))
        timings["accuracy"] = time.perf_counter() - t0
    if gates.max_latency_ms is not None:
        t0 = time.perf_counter()
        profile = profile_model(  # backend torch resolves the sidecar's weights itself
            model_path, backend=gates.backend, device=gates.effective_device, batch=gates.batch,
            warmup_s=gates.warmup_s, duration_s=gates.duration_s, threads=gates.threads, force=gates.force,
        )
        measured = pick_stat(profile["stats"], gates.latency_stat)
        rows.append(GateRow(f"latency {gates.latency_stat}", "<=", gates.max_latency_ms, measured,
                            measured <= gates.max_latency_ms, "ms", "latency"))
        warnings += list(profile.get("warnings") or [])  # CoV, backend, fingerprint and Jetson warnings
        timings["latency"] = time.perf_counter() - t0
    return CheckReport(str(model_path), rows, asdict(gates), accuracy, profile, warnings, artifact,
                       started_utc=_utc(began), duration_s=time.time() - began, timings_s=timings)
