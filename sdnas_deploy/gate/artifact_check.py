"""Artifact identity for gates and profiles: which backend runs which file, its sidecar, its weights.

Checked before anything is measured (deploy/gates.py): a file the backend cannot run is exit 2; a
sidecar that describes another file (sha256), records a failed verification, or names another
precision than required is exit 3; a backend or device missing here is exit 5. ``weights_path`` is
the one place that finds the PyTorch weights behind an exported model (profiles and gates use it).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np

from ..errors import BadInputError, VerificationError
from ..io_utils import load_json
from ..runtime.evaluate import classification_summary
from ..runtime.runner import backends_for
from ..runtime.fingerprint import file_sha256
from ..export.onnx_export import load_sidecar, sidecar_path, weights_path  # noqa: F401  (re-exported)

if TYPE_CHECKING:
    from .gates import GateProfile


def check_model_kind(model_path: Path, backend: str) -> None:
    """BadInputError (exit 2) when the file cannot be run by ``backend`` (e.g. an .onnx with backend trt)."""
    allowed = backends_for(model_path)
    if allowed is not None and backend not in allowed:
        raise BadInputError(
            f"{model_path}: backend {backend} cannot run a {model_path.suffix} file; use backend {' or '.join(allowed)}"
            + (", or build an engine with `sdnas export --format trt`" if backend == "trt" else "")
        )


def artifact_sidecar_path(model_path: Path, backend: str) -> Path:
    """Where the model's sidecar lives: ``model.json`` for ONNX, ``model.engine.json`` for an engine."""
    if backend == "trt":
        from ..runtime.trt_env import engine_sidecar_path

        return engine_sidecar_path(model_path)
    return sidecar_path(model_path)


def inspect_artifact(model_path: Path, gates: "GateProfile", warnings: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Identity checks before anything is measured; returns (artifact info, sidecar or {}).

    VerificationError (exit 3) when the sidecar describes another file (sha256), records a failed
    verification, or names a precision other than the one the profile requires (no sidecar, or no
    ``precision`` in it, means fp32).
    """
    side_path = artifact_sidecar_path(model_path, gates.backend)
    sidecar = (load_sidecar(model_path) if gates.backend != "trt" else
               load_json(side_path, "engine sidecar") if side_path.is_file() else None)
    if sidecar is not None and not isinstance(sidecar, dict):
        raise BadInputError(f"{side_path}: sidecar is not a JSON object; re-export the model")
    sidecar = sidecar or {}
    sha = file_sha256(model_path)
    precision = str(sidecar.get("precision") or "fp32")
    info = {"path": str(model_path), "sha256": sha, "sidecar": str(side_path) if sidecar else None,
            "precision": precision, "verified": sidecar.get("verified")}
    if not sidecar:
        warnings.append(f"no sidecar {side_path.name}: the artifact's sha256 and verification are unchecked "
                        "and its precision is taken as fp32")
    recorded = sidecar.get("sha256")
    if recorded is not None and recorded != sha:
        raise VerificationError(
            f"{model_path}: {model_path.name} and {side_path.name} do not belong together (the sidecar records "
            f"sha256 {str(recorded)[:12]}…, the file has {sha[:12]}…: changed after export, or an export was "
            "interrupted between the two); re-export the model or restore the pair"
        )
    if sidecar.get("verified") is False:
        raise VerificationError(
            f"{model_path}: {side_path.name} says verified=false (the export failed verification); "
            "fix the export and re-export before gating"
        )
    if gates.precision is not None and precision != gates.precision:
        raise VerificationError(
            f"{model_path}: the artifact is {precision} ({side_path.name if sidecar else 'no sidecar'}) but the gate "
            f"profile requires precision {gates.precision}; gate a {gates.precision} export or set precision: {precision}"
        )
    return info, sidecar


def evaluate_torch(weights: Path, images: np.ndarray, labels: np.ndarray, device: str = "cpu") -> dict[str, Any]:
    """Top-1 (and top-5) of the PyTorch network in ``weights`` (fp32, eval, no aux head); keys as evaluate_onnx."""
    from ..device import resolve_device
    from ..training.weights import load_network
    from ..export.onnx_export import torch_logits

    model, meta = load_network(weights, auxiliary=False)
    if tuple(images.shape[1:]) != tuple(meta.input_shape[1:]):
        raise BadInputError(
            f"{weights}: images have shape {tuple(images.shape)} but the network expects {tuple(meta.input_shape)}; "
            "score on the dataset the model was trained for"
        )
    return classification_summary(torch_logits(model.to(resolve_device(device)), images), labels, str(weights))


def require_environment(gates: "GateProfile") -> None:
    """Fail early (exit 5) when the backend or device is missing here, before any measurement."""
    from ..device import resolve_device

    device = gates.effective_device
    if gates.backend == "trt":
        from ..runtime.trt_env import require_tensorrt

        require_tensorrt()
        resolve_device(device)  # the TensorRT runner keeps its buffers in torch CUDA tensors
    elif gates.backend == "torch":
        resolve_device(device)
    elif device != "cpu":
        from ..runtime.evaluate import providers_for

        providers_for(device)
