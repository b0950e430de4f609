"""Deployment gates: a YAML profile of accuracy/latency thresholds and the check against it.

A gate profile (``export/default.yaml``) says which data to score on and which thresholds an
ONNX model must meet; :func:`run_check` measures them in ONNX Runtime and returns one row per
gate. A gate left unset is not checked, but a profile must set at least one. The CLI maps
``report.exit_code`` (0 pass, 4 gate failed); bad profiles raise BadInputError (exit 2).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ..config_utils import from_mapping
from ..errors import BadInputError, GateFailedError
from ..io_utils import load_yaml, require_file
from ..resources import resolve_data_file
from .evaluate import evaluate_onnx
from .fingerprint import file_sha256
from .onnx_export import load_sidecar, sidecar_path
from .profiler import profile_onnx, render_table
from .stats import pick_stat

GATE_KEYS: tuple[str, ...] = ("min_accuracy", "max_accuracy_drop", "max_latency_ms")


@dataclass
class GateProfile:
    """Thresholds and measurement settings. Accuracies are fractions in [0, 1]."""

    dataset: str = "digits"  # dataset the accuracy gates score on (sdnas_deploy.data registry name)
    split: str = "test"  # "test" (held out) or "train"
    data_dir: str | None = None  # dataset root for datasets that are not embedded
    limit: int | None = None  # score on the first N images only (None = whole split)
    min_accuracy: float | None = None  # ONNX top-1 must be >= this
    max_accuracy_drop: float | None = None  # sidecar's PyTorch top-1 (export images) minus ONNX top-1 <= this
    max_latency_ms: float | None = None  # latency_stat of the ORT profile must be <= this
    latency_stat: Literal["min", "mean", "median", "p90", "p95", "p99"] = "p90"
    backend: Literal["ort"] = "ort"  # only ONNX Runtime is verified here (DESIGN.md §6)
    device: str = "cpu"  # cpu | cuda | cuda:N
    batch: int = 1  # profiling batch size
    duration_s: float = 3.0  # timed profiling duration
    warmup_s: float = 1.0  # warm-up before timing
    threads: int | None = None  # ORT intra-op threads (None = runtime default)

    def validate(self, source: str = "gate profile") -> "GateProfile":
        """Range checks and the at-least-one-gate rule; returns self for chaining."""
        if all(getattr(self, key) is None for key in GATE_KEYS):
            raise BadInputError(f"{source}: no gate set; set at least one of {', '.join(GATE_KEYS)}")
        for key in ("min_accuracy", "max_accuracy_drop"):
            value = getattr(self, key)
            if value is not None and not 0.0 <= value <= 1.0:
                raise BadInputError(f"{source}: {key}={value} must be a fraction in [0, 1] (e.g. 0.8 for 80%)")
        positive = {"max_latency_ms": self.max_latency_ms, "duration_s": self.duration_s}
        for key, value in positive.items():
            if value is not None and value <= 0:
                raise BadInputError(f"{source}: {key}={value} must be > 0")
        if self.warmup_s < 0:
            raise BadInputError(f"{source}: warmup_s={self.warmup_s} must be >= 0")
        for key in ("batch", "limit", "threads"):
            value = getattr(self, key)
            if value is not None and value < 1:
                raise BadInputError(f"{source}: {key}={value} must be >= 1")
        if self.split not in ("train", "test"):
            raise BadInputError(f"{source}: split={self.split!r} must be 'test' or 'train'")
        return self

    @property
    def needs_data(self) -> bool:
        """True when an accuracy gate is set (the caller must load images and labels)."""
        return self.min_accuracy is not None or self.max_accuracy_drop is not None


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

    def failure(self) -> str:
        """Short reason, e.g. ``latency p90 25.31 ms > 20 ms``."""
        wrong = ">" if self.comparison == "<=" else "<"
        return f"{self.gate} {_fmt(self.measured, self.unit)} {wrong} {_fmt(self.threshold, self.unit)}"


def _fmt(value: float, unit: str) -> str:
    return f"{value:.4g} {unit}".strip() if unit else f"{value:.4f}"


@dataclass
class CheckReport:
    """Result of :func:`run_check`: one row per gate, the raw measurements, warnings."""

    onnx_path: str
    rows: list[GateRow]
    gates: dict[str, Any]
    accuracy: dict[str, Any] | None = None
    profile: dict[str, Any] | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(row.passed for row in self.rows)

    @property
    def exit_code(self) -> int:
        """0 when every gate passed, else GateFailedError's code (4)."""
        return 0 if self.passed else GateFailedError.exit_code

    @property
    def reason(self) -> str:
        return "; ".join(row.failure() for row in self.rows if not row.passed)

    @property
    def final_line(self) -> str:
        """Exactly ``PASSED``, or ``FAILED: <reason>``."""
        return "PASSED" if self.passed else f"FAILED: {self.reason}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "onnx_path": self.onnx_path, "status": "PASSED" if self.passed else "FAILED", "passed": self.passed,
            "exit_code": self.exit_code, "reason": self.reason, "rows": [asdict(r) for r in self.rows],
            "gates": self.gates, "accuracy": self.accuracy, "profile": self.profile, "warnings": self.warnings,
        }


def _reference_accuracy(onnx_path: Path, n_checked: int, warnings: list[str]) -> float:
    """PyTorch top-1 recorded at export time, from a sidecar that describes this very file.

    The reference was measured on the export's verification images; a warning says so when
    their count differs from the images scored now.
    """
    sidecar = load_sidecar(onnx_path) or {}
    verification = sidecar.get("verification")
    ref = verification.get("torch_accuracy") if isinstance(verification, dict) else None
    if not isinstance(ref, (int, float)):
        raise BadInputError(
            f"{onnx_path}: max_accuracy_drop needs the PyTorch accuracy in {sidecar_path(onnx_path).name}; "
            "re-export with labels (`sdnas export`) or remove max_accuracy_drop from the gate profile"
        )
    if sidecar.get("sha256") not in (None, file_sha256(onnx_path)):
        raise BadInputError(
            f"{onnx_path}: {sidecar_path(onnx_path).name} describes a different file (sha256 mismatch); re-export the model"
        )
    if sidecar.get("verified") is False:
        warnings.append("the sidecar says this model failed ONNX verification (verified=false)")
    n_ref = verification.get("n_images")  # type: ignore[union-attr]
    if n_ref != n_checked:
        warnings.append(f"accuracy drop compares PyTorch on {n_ref} export images with ONNX on {n_checked} images")
    return float(ref)


def run_check(
    onnx_path: Path | str,
    gates: GateProfile,
    images: np.ndarray | None = None,
    labels: np.ndarray | None = None,
) -> CheckReport:
    """Measure what the set gates need (ORT accuracy, ORT latency) and compare each threshold.

    ``images``/``labels`` (from ``sdnas_deploy.data.load_arrays``) are required only when an
    accuracy gate is set; ``gates.limit`` keeps the first N of them.
    """
    onnx_path = require_file(onnx_path, "ONNX model")
    gates.validate()
    rows: list[GateRow] = []
    warnings: list[str] = []
    accuracy = profile = None
    if gates.needs_data:
        if images is None or labels is None:
            raise BadInputError(f"accuracy gates need images and labels of dataset {gates.dataset!r}; load them first")
        if gates.limit is not None:
            images, labels = images[: gates.limit], labels[: gates.limit]
        accuracy = evaluate_onnx(onnx_path, images, labels)
        top1 = accuracy["top1"]
        if gates.min_accuracy is not None:
            rows.append(GateRow("accuracy top-1", ">=", gates.min_accuracy, top1, top1 >= gates.min_accuracy))
        if gates.max_accuracy_drop is not None:
            drop = _reference_accuracy(onnx_path, accuracy["n"], warnings) - top1
            accuracy["torch_reference_drop"] = drop
            rows.append(GateRow("accuracy drop", "<=", gates.max_accuracy_drop, drop, drop <= gates.max_accuracy_drop))
    if gates.max_latency_ms is not None:
        profile = profile_onnx(
            onnx_path, device=gates.device, batch=gates.batch, warmup_s=gates.warmup_s,
            duration_s=gates.duration_s, threads=gates.threads,
        )
        measured = pick_stat(profile["stats"], gates.latency_stat)
        rows.append(GateRow(f"latency {gates.latency_stat}", "<=", gates.max_latency_ms, measured,
                            measured <= gates.max_latency_ms, "ms"))
        if profile.get("cov_warning"):
            warnings.append(profile["cov_warning"])
    return CheckReport(str(onnx_path), rows, asdict(gates), accuracy, profile, warnings)


def format_check_table(report: CheckReport) -> str:
    """Gate table, what was timed and warnings; the caller prints ``report.final_line`` after it
    (kept separate so ``--json`` output can still end with the PASSED/FAILED line on its own)."""
    rows = [
        [row.gate, f"{row.comparison} {_fmt(row.threshold, row.unit)}", _fmt(row.measured, row.unit),
         "pass" if row.passed else "FAIL"]
        for row in report.rows
    ]
    lines = [render_table(f"gates: {report.onnx_path}", ["gate", "threshold", "measured", "result"], rows)]
    if report.profile is not None:
        lines.append(f"timed: {report.profile['timed']}")
    lines += [f"warning: {w}" for w in report.warnings]
    return "\n".join(lines)
