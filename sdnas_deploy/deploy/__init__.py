"""Deployment: export (ONNX, TensorRT placeholder), verification, profiling, accuracy and gates.

Importing this package stays light: onnx, onnxruntime and rich are imported inside the
functions that need them.
"""

from __future__ import annotations

from .evaluate import evaluate_onnx, open_session
from .fingerprint import environment_fingerprint, file_sha256
from .formats import FORMATS, FormatSpec, require_tensorrt, resolve_format
from .gates import (
    CheckReport,
    GateProfile,
    GateRow,
    format_check_table,
    load_gates,
    run_check,
)
from .onnx_export import (
    VerificationResult,
    export_and_verify,
    export_onnx,
    load_sidecar,
    sidecar_path,
    verify_onnx,
)
from .profiler import format_profile_table, profile_onnx, profile_torch
from .stats import COV_WARN_THRESHOLD, summarize, throughput

__all__ = [
    "COV_WARN_THRESHOLD", "FORMATS", "CheckReport", "FormatSpec", "GateProfile", "GateRow", "VerificationResult",
    "environment_fingerprint", "evaluate_onnx", "export_and_verify", "export_onnx", "file_sha256",
    "format_check_table", "format_profile_table", "load_gates", "load_sidecar", "open_session", "profile_onnx",
    "profile_torch", "require_tensorrt", "resolve_format", "run_check", "sidecar_path", "summarize", "throughput",
    "verify_onnx",
]
