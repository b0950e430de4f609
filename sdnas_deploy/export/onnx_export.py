"""Export a discrete network to one self-contained ONNX file and verify it in ONNX Runtime.

Why the legacy (TorchScript) exporter: DESIGN.md §6 measured it ~9x faster than the dynamo
exporter on a DARTS net, and it writes the weights inside the ``.onnx`` (no ``.onnx.data``).
Every export is checked (``onnx.checker``) and compared with PyTorch on real images; the
result goes into a sidecar JSON next to the model (``model.onnx`` -> ``model.json``).

When verification fails, the ``.onnx`` is kept for debugging but its sidecar says
``"verified": false`` and :func:`export_and_verify` raises VerificationError (exit 3), so
nothing downstream mistakes it for a good artifact.
"""

from __future__ import annotations

import datetime as _dt
import io
import json
import platform
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch
import torch.nn as nn

from ..device import eval_mode
from ..errors import BadInputError, VerificationError
from ..io_utils import atomic_write_bytes, atomic_write_json, load_json
from ..runtime.evaluate import (
    check_images,
    check_labels,
    input_spec,
    open_session,
    run_batched,
    topk_accuracy,
)
from ..runtime.fingerprint import file_sha256, package_version

INPUT_NAME = "input"
OUTPUT_NAME = "logits"
MIN_OPSET = 13
MAX_OPSET = 20  # highest opset the legacy TorchScript exporter supports
MIN_TOP1_AGREEMENT = 0.99
DEFAULT_ATOL = 1e-4  # fp32 tolerance (DESIGN.md §3)


@dataclass(frozen=True)
class VerificationResult:
    """ONNX Runtime (CPU) vs PyTorch on the same images."""

    max_abs_diff: float
    mean_abs_diff: float
    top1_agreement: float
    n_images: int
    torch_accuracy: float | None
    onnx_accuracy: float | None
    atol: float
    passed: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        """One line for logs and error messages."""
        acc = ""
        if self.torch_accuracy is not None and self.onnx_accuracy is not None:
            acc = f", accuracy torch {self.torch_accuracy:.4f} / onnx {self.onnx_accuracy:.4f}"
        return (
            f"max |diff| {self.max_abs_diff:.2e} (atol {self.atol:.0e}), mean |diff| {self.mean_abs_diff:.2e}, "
            f"top-1 agreement {self.top1_agreement:.4f} on {self.n_images} images{acc}"
        )


def check_input_shape(input_shape: Sequence[int]) -> tuple[int, ...]:
    """``input_shape`` as a tuple of positive ints (N, C, H, W, ...), else BadInputError."""
    shape = tuple(input_shape)
    if len(shape) < 2 or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape):
        raise BadInputError(f"input shape {shape} is invalid; pass positive sizes such as (1, 3, 32, 32)")
    return shape


def _model_device(model: nn.Module) -> torch.device:
    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


def export_onnx(
    model: nn.Module,
    out_path: Path | str,
    input_shape: Sequence[int],
    opset: int = MAX_OPSET,
    dynamic_batch: bool = False,
    metadata: Mapping[str, Any] | None = None,
) -> Path:
    """Export ``model`` (eval mode, auxiliary head already disabled) to ``out_path``.

    Input is named ``input``, output ``logits``; the batch dim is symbolic when ``dynamic_batch``.
    ``metadata`` entries are stored as ONNX ``metadata_props`` (non-strings JSON-encoded).
    The file is checked with ``onnx.checker`` and written atomically.
    """
    out_path = Path(out_path)
    if out_path.suffix.lower() != ".onnx":
        raise BadInputError(f"{out_path}: ONNX output must end in .onnx; e.g. model.onnx")
    proto = onnx_model_proto(model, input_shape, opset=opset, dynamic_batch=dynamic_batch, metadata=metadata)
    return atomic_write_bytes(out_path, proto.SerializeToString())


def onnx_model_proto(
    model: nn.Module,
    input_shape: Sequence[int],
    opset: int = MAX_OPSET,
    dynamic_batch: bool = False,
    metadata: Mapping[str, Any] | None = None,
) -> Any:
    """Export ``model`` in memory and return the checked ``onnx.ModelProto`` (see :func:`export_onnx`).

    Also used to time single ops for latency tables, so tables and deployed models share one exporter.
    """
    import onnx

    shape = check_input_shape(input_shape)
    if not MIN_OPSET <= opset <= MAX_OPSET:
        raise BadInputError(f"opset {opset} is not supported; choose {MIN_OPSET}..{MAX_OPSET}")
    dummy = torch.randn(shape, generator=torch.Generator().manual_seed(0)).to(_model_device(model))
    axes = {INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}} if dynamic_batch else None
    buffer = io.BytesIO()
    with eval_mode(model), torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # "legacy exporter" notice: chosen on purpose
        warnings.simplefilter("ignore", FutureWarning)
        warnings.filterwarnings("ignore", message="Constant folding - Only steps=1")  # DARTS slices: harmless
        torch.onnx.export(
            model, (dummy,), buffer, dynamo=False, opset_version=opset, do_constant_folding=True,
            input_names=[INPUT_NAME], output_names=[OUTPUT_NAME], dynamic_axes=axes,
        )
    proto = onnx.load_from_string(buffer.getvalue())
    if len(proto.graph.output) != 1:
        raise BadInputError(
            f"model returns {len(proto.graph.output)} outputs in eval mode; build it with auxiliary=False before export"
        )
    for key, value in (metadata or {}).items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = str(key), value if isinstance(value, str) else json.dumps(value, default=str)
    try:
        onnx.checker.check_model(proto, full_check=True)
    except Exception as exc:  # onnx.checker.ValidationError, shape inference errors
        raise VerificationError(f"exported graph failed onnx.checker ({' '.join(str(exc).split())[:160]})") from None
    return proto


def torch_logits(model: nn.Module, images: np.ndarray, batch: int = 64) -> np.ndarray:
    """PyTorch fp32 logits of ``images`` in chunks (auxiliary outputs, if any, dropped)."""
    device = _model_device(model)
    chunks = []
    with eval_mode(model), torch.inference_mode():
        for start in range(0, len(images), batch):
            x = torch.from_numpy(np.ascontiguousarray(images[start : start + batch], dtype=np.float32)).to(device)
            out = model(x)
            out = out[0] if isinstance(out, (tuple, list)) else out
            chunks.append(out.float().cpu().numpy())
    return np.concatenate(chunks)




def verify_onnx(
    onnx_path: Path | str,
    model: nn.Module,
    images: np.ndarray,
    labels: np.ndarray | None = None,
    atol: float = DEFAULT_ATOL,
    batch: int = 64,
) -> VerificationResult:
    """Compare ORT CPU against PyTorch on ``images``; ``passed`` needs max |diff| <= atol and
    top-1 agreement >= 0.99. Accuracies are filled in when ``labels`` are given."""
    session = open_session(onnx_path, "cpu")
    images = check_images(input_spec(session), images, str(onnx_path))
    onnx_logits = run_batched(session, images, batch)
    reference = torch_logits(model, images, batch)
    if onnx_logits.shape != reference.shape:
        raise VerificationError(
            f"{onnx_path}: ONNX output shape {onnx_logits.shape} differs from PyTorch {reference.shape}; "
            "export this same model again"
        )
    diff = np.abs(onnx_logits.astype(np.float64) - reference.astype(np.float64))
    agreement = float(np.mean(onnx_logits.argmax(1) == reference.argmax(1)))
    torch_acc = onnx_acc = None
    if labels is not None:
        labels = check_labels(labels, len(images), onnx_logits.shape[1])
        torch_acc = topk_accuracy(reference, labels, 1)
        onnx_acc = topk_accuracy(onnx_logits, labels, 1)
    max_diff = float(diff.max())
    return VerificationResult(
        max_abs_diff=max_diff,
        mean_abs_diff=float(diff.mean()),
        top1_agreement=agreement,
        n_images=int(len(images)),
        torch_accuracy=torch_acc,
        onnx_accuracy=onnx_acc,
        atol=float(atol),
        passed=bool(max_diff <= atol and agreement >= MIN_TOP1_AGREEMENT),
    )


def sidecar_path(onnx_path: Path | str) -> Path:
    """``runs/x/model.onnx`` -> ``runs/x/model.json``."""
    return Path(onnx_path).with_suffix(".json")


def load_sidecar(onnx_path: Path | str) -> dict[str, Any] | None:
    """The sidecar dict next to ``onnx_path``, or None when there is none (corrupt -> BadInputError)."""
    path = sidecar_path(onnx_path)
    if not path.is_file():
        return None
    data = load_json(path, "model sidecar")
    if not isinstance(data, dict):
        raise BadInputError(f"{path}: sidecar is not a JSON object; re-export the model with `sdnas export`")
    return data


def weights_path(model_path: Path, sidecar: Mapping[str, Any]) -> Path | None:
    """The PyTorch weights behind a model: the model itself if it is .safetensors, else the sidecar's
    ``metadata.weights`` resolved in the model's own folder (a path that leaves it is refused: a sidecar is as
    untrusted as any input), checked against ``metadata.weights_sha256`` when the export recorded it; None when
    the sidecar names no weights or they are not there."""
    model_path = Path(model_path)
    if model_path.suffix == ".safetensors":
        return model_path
    meta = sidecar.get("metadata")
    recorded = meta.get("weights") if isinstance(meta, dict) else None
    if not recorded or not isinstance(recorded, str):
        return None
    folder = model_path.parent.resolve()
    named = (folder / recorded).resolve()
    by_name = folder / Path(recorded).name  # sidecars written before the weights were copied beside the model
    found = next((p for p in (named, by_name) if p.is_relative_to(folder) and p.is_file()), None)
    if found is None:
        if named.is_file():  # it exists, but outside the model's folder
            raise BadInputError(f"{model_path}: its sidecar's metadata.weights {recorded!r:.80} is outside the model's "
                                "folder; re-export with `sdnas export` (it copies the weights beside the model)")
        return None
    inside = found
    expected = meta.get("weights_sha256")
    if expected is not None and file_sha256(inside) != expected:
        raise VerificationError(f"{model_path}: weights {inside.name} differ from those exported (sha256 "
                                f"{str(expected)[:12]}…); re-export the model or restore the file")
    return inside


def genotype_json(genotype: Any) -> Any:
    """Genotype objects (``to_dict``), dicts and arch strings all become JSON values."""
    if genotype is None or isinstance(genotype, (str, dict)):
        return genotype
    if hasattr(genotype, "to_dict"):
        return genotype.to_dict()
    raise BadInputError(f"architecture of type {type(genotype).__name__} cannot be recorded; pass its JSON form")


def versions() -> dict[str, str | None]:
    """Versions recorded in every sidecar, so an artifact can be traced to its toolchain."""
    from .. import __version__

    return {
        "sdnas_deploy": __version__,
        "torch": torch.__version__,
        "onnx": package_version("onnx"),
        "onnxruntime": package_version("onnxruntime") or package_version("onnxruntime-gpu"),
        "python": platform.python_version(),
    }


def sidecar_fields(
    shape: Sequence[int], dynamic_batch: bool | list[int] | None, opset: int, genotype: Any,
    metadata: Mapping[str, Any] | None,
    mean: Sequence[float] | None, std: Sequence[float] | None,
) -> dict[str, Any]:
    """The sidecar entries every ONNX artifact records, whatever its precision: IO, normalization, opset,
    genotype, metadata, toolchain versions and creation time."""
    return {
        "input": {"name": INPUT_NAME, "shape": list(shape), "dynamic_batch": dynamic_batch, "dtype": "float32",
                  "layout": "NCHW"},
        "output": {"name": OUTPUT_NAME},
        "normalization": {"mean": list(mean) if mean is not None else None,
                          "std": list(std) if std is not None else None},
        "opset": opset,
        "genotype": genotype_json(genotype),
        "metadata": dict(metadata or {}),
        "versions": versions(),
        "created_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }


def export_and_verify(
    model: nn.Module,
    out_path: Path | str,
    input_shape: Sequence[int],
    images: np.ndarray,
    labels: np.ndarray | None = None,
    *,
    opset: int = MAX_OPSET,
    dynamic_batch: bool = False,
    atol: float = DEFAULT_ATOL,
    batch: int = 64,
    genotype: Any = None,
    metadata: Mapping[str, Any] | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> dict[str, Any]:
    """Export, verify against PyTorch, write the sidecar; return the sidecar dict.

    Raises VerificationError (exit 3) after writing a ``"verified": false`` sidecar when
    max |diff| > atol or top-1 agreement < 0.99; the ``.onnx`` stays on disk for inspection.
    """
    out_path = Path(out_path)
    shape = check_input_shape(input_shape)
    props = {"producer": "sdnas-deploy", **dict(metadata or {})}
    export_onnx(model, out_path, shape, opset=opset, dynamic_batch=dynamic_batch, metadata=props)
    result = verify_onnx(out_path, model, images, labels, atol=atol, batch=batch)
    sidecar = {
        "format": "onnx",
        "file": out_path.name,
        "sha256": file_sha256(out_path),
        "verified": result.passed,
        "verification": {**result.to_dict(), "min_top1_agreement": MIN_TOP1_AGREEMENT, "backend": "onnxruntime-cpu"},
        **sidecar_fields(shape, dynamic_batch, opset, genotype, metadata, mean, std),
    }
    atomic_write_json(sidecar_path(out_path), sidecar)
    if not result.passed:
        raise VerificationError(
            f"{out_path}: ONNX Runtime disagrees with PyTorch ({result.describe()}; need top-1 agreement "
            f">= {MIN_TOP1_AGREEMENT}); the file is kept with verified=false in {sidecar_path(out_path).name}; "
            "check for unsupported ops or re-export at another opset"
        )
    return sidecar
