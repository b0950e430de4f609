"""The profile backends behind :func:`profile.api.profile_model`: ``ort``, ``torch`` and ``trt``.

Each is ``fn(model_path, ProfileOptions) -> report`` registered with ``@profile_backend``; it only checks the
file, opens the backend's runner (``runtime.runner``: ORT, eager torch, TensorRT) and names the model — the
timing, its sentence and the breakdown are ``timing.profile_runner``'s, the same for every backend. By default
nothing but compute and dispatch is timed (input already on the device, output left there);
``include_data_transfers`` adds the copies. onnxruntime and TensorRT are imported inside the functions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ..errors import BadInputError
from ..io_utils import require_file
from ..runtime.fingerprint import file_sha256
from ..runtime.ort_runner import OrtRunner
from ..runtime.runner import backend_for, is_engine
from ..runtime.torch_runner import TorchRunner
from .timing import ProfileOptions, profile_backend, profile_runner


def _identity(path: Path) -> dict[str, Any]:
    return {"path": str(path), "sha256": file_sha256(path)}


@profile_backend("ort")
def profile_ort(path: Path, opts: ProfileOptions) -> dict[str, Any]:
    """ORT: ``session.run`` on the CPU; on CUDA with I/O binding on the device (or host copies), optionally a graph."""
    if backend_for(path) != "ort":
        raise BadInputError(f"{path}: --backend ort profiles an .onnx model; use --backend {backend_for(path)} "
                            "for this file")
    runner = OrtRunner.from_file(path, opts.device, opts.threads, opts.batch, cuda_graph=opts.cuda_graph)
    report = profile_runner(runner, opts, str(path))
    report["model"] = _identity(path)
    return report


def load_torch_model(path: Path, batch: int) -> tuple[torch.nn.Module, tuple[int, ...], Path]:
    """The deployable network (no auxiliary head) from ``.safetensors``, or from the weights an ``.onnx``'s
    sidecar names (``metadata.weights``); returns (model, input shape at ``batch``, weights path)."""
    from ..training.weights import load_network

    if path.suffix == ".onnx":
        from ..export.onnx_export import load_sidecar, weights_path

        sidecar = load_sidecar(require_file(path, "ONNX model")) or {}
        found = weights_path(path, sidecar)
        if found is None:
            named = (sidecar.get("metadata") or {}).get("weights")
            what = f"weights {named} named in its sidecar not found" if named else "its sidecar names no weights"
            raise BadInputError(f"{path}: {what} (metadata.weights); pass the .safetensors file from `sdnas train` "
                                "to --backend torch")
        path = found
    elif path.suffix != ".safetensors":
        raise BadInputError(f"{path}: --backend torch needs a .safetensors weights file (or an .onnx whose sidecar "
                            "names one)")
    model, meta = load_network(path, auxiliary=False)
    return model, (batch, meta.in_channels, meta.image_size, meta.image_size), path


@profile_backend("torch")
def profile_torch_file(path: Path, opts: ProfileOptions) -> dict[str, Any]:
    """Eager PyTorch: host clock on the CPU; on CUDA with events, optional CUDA graph, optional pinned copies."""
    model, shape, weights = load_torch_model(path, opts.batch)
    with TorchRunner(model, shape, opts.device, opts.threads) as runner:
        report = profile_runner(runner, opts, str(path))
    report["model"] = {**_identity(weights), "class": type(model).__name__,
                       "parameters": int(sum(p.numel() for p in model.parameters()))}
    return report


@profile_backend("trt")
def profile_trt(path: Path, opts: ProfileOptions) -> dict[str, Any]:
    """A TensorRT ``.engine`` through ``trt_runtime.TrtRunner`` (exit 5 without TensorRT)."""
    require_file(path, "TensorRT engine")
    if not is_engine(path):
        raise BadInputError(f"{path}: --backend trt profiles a TensorRT .engine (or .plan); build "
                            "one on this device with `sdnas export --format trt`, or use --backend ort for an .onnx")
    from ..runtime.trt_env import require_tensorrt

    require_tensorrt()
    if opts.device == "cpu":
        raise BadInputError("--backend trt runs on the GPU; pass --device cuda (or cuda:N)")
    from ..device import resolve_device
    from ..runtime.trt_runtime import TrtRunner

    runner = TrtRunner(path, device=str(resolve_device(opts.device)), force=opts.force, batch=opts.batch)
    if runner.input_shape[0] != opts.batch:
        raise BadInputError(f"{path}: engine has a static batch of {runner.input_shape[0]}, cannot profile batch "
                            f"{opts.batch}; use --batch {runner.input_shape[0]} or rebuild with a dynamic batch")
    report = profile_runner(runner, opts, str(path))
    report["device"] = str(runner.device)
    warnings = list(runner.warnings)
    if opts.threads is not None:
        warnings.append("--threads has no effect on TensorRT (it sets CPU runtime threads only)")
    report["backend_warnings"] = warnings
    report["model"] = {**_identity(path), "precision": runner.sidecar.get("precision")}
    return report
