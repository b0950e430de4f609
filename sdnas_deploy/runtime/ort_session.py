"""The one ONNX Runtime session builder: providers for a device, session options, and a safe open.

Every ORT session in sdnas (verification, accuracy gates, profiling, per-op and whole-network latency
tables, the precision rewrite check) is made by :func:`build_session`, so thread settings, the CUDA EP's
options, the silent-CPU-fallback check and the one-line errors exist once. onnxruntime is imported inside
the functions (ARCHITECTURE.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import BadInputError, UnsupportedEnvironmentError, VerificationError
from ..io_utils import require_file


def one_line(exc: BaseException, limit: int = 160) -> str:
    """An exception's text on one line, cut to ``limit`` characters."""
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def cuda_index(device: str) -> int:
    """``cuda`` → 0, ``cuda:N`` → N."""
    return int((device or "").partition(":")[2] or 0)


def providers_for(device: str, cuda_graph: bool = False) -> list[Any]:
    """ORT provider list for ``cpu`` / ``cuda`` / ``cuda:N`` (exit 5 when the CUDA EP is absent).

    With ``cuda_graph`` the CPU EP is left out: a CUDA graph needs every node on the CUDA EP, so a fallback
    must fail loudly instead of running part of the model elsewhere.
    """
    import onnxruntime as ort

    spec = (device or "cpu").strip().lower()
    if spec == "cpu":
        return ["CPUExecutionProvider"]
    if spec == "cuda" or spec.startswith("cuda:"):
        index = spec.partition(":")[2] or "0"
        if not index.isdigit():
            raise BadInputError(f"--device {device!r}: expected cpu, cuda or cuda:N")
        if "CUDAExecutionProvider" not in ort.get_available_providers():
            raise UnsupportedEnvironmentError(
                f"--device {device}: this onnxruntime has no CUDAExecutionProvider; "
                "install onnxruntime-gpu on a machine with the NVIDIA driver, or use --device cpu"
            )
        if cuda_graph:
            return [("CUDAExecutionProvider", {"device_id": index, "enable_cuda_graph": "1"})]
        return [("CUDAExecutionProvider", {"device_id": int(index)}), "CPUExecutionProvider"]
    raise BadInputError(f"--device {device!r}: expected cpu, cuda or cuda:N")


def session_options(threads: int | None = None, sequential: bool = False) -> Any:
    """Errors-only logging, ``threads`` intra-op threads (None: ORT's default); ``sequential`` also pins one
    inter-op thread and sequential execution, as latency tables are measured."""
    import onnxruntime as ort

    if threads is not None and threads < 1:
        raise BadInputError(f"threads must be >= 1, got {threads}")
    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only: keep stderr clean for the CLI
    if threads is not None:
        options.intra_op_num_threads = threads
    if sequential:
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return options


def build_session(
    source: Path | str | bytes, device: str = "cpu", threads: int | None = None, *, sequential: bool = False,
    cuda_graph: bool = False, where: str = "in-memory model", fix: str = "re-export it with `sdnas export`",
) -> Any:
    """An ``onnxruntime.InferenceSession`` of a file or of serialized model bytes on ``device``.

    A file that is missing or not loadable is BadInputError; bytes that ORT refuses (a graph sdnas made
    itself) are VerificationError; an unavailable CUDA EP, a silent CPU fallback or a model ORT cannot run as a
    CUDA graph are UnsupportedEnvironmentError. Only single-input models are accepted.
    """
    import onnxruntime as ort

    if isinstance(source, bytes):
        model: str | bytes = source
    else:
        where = str(source)
        model = str(require_file(source, "ONNX model"))
    options = session_options(threads, sequential)
    providers = providers_for(device, cuda_graph)
    try:
        session = ort.InferenceSession(model, sess_options=options, providers=providers)
    except Exception as exc:  # ORT raises InvalidProtobuf, Fail, InvalidGraph, ... (pybind types)
        text = f"{type(exc).__name__}: {one_line(exc)}"
        if cuda_graph:
            raise UnsupportedEnvironmentError(f"{where}: ONNX Runtime cannot run this model as a CUDA graph "
                                              f"({text}); profile without --cuda-graph") from None
        if isinstance(source, bytes):
            raise VerificationError(f"{where}: ONNX Runtime cannot load the graph ({text}); {fix}") from None
        raise BadInputError(f"{where}: not a loadable ONNX model ({text}); {fix}") from None
    if providers[0] != "CPUExecutionProvider" and session.get_providers()[0] != "CUDAExecutionProvider":
        raise UnsupportedEnvironmentError(
            f"--device {device}: ONNX Runtime could not initialise CUDA (check the CUDA/cuDNN libraries); use --device cpu"
        )
    if len(session.get_inputs()) != 1:
        raise BadInputError(f"{where}: expected a model with one input, found {len(session.get_inputs())}")
    return session


def open_session(path: Path | str, device: str = "cpu", threads: int | None = None) -> Any:
    """A session for the ONNX file ``path`` (see :func:`build_session`)."""
    return build_session(Path(path), device, threads)
