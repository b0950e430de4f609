"""The profile backends behind :func:`profile.api.profile_model`: ``ort``, ``torch`` and ``trt``.

Each is ``fn(model_path, ProfileOptions) -> report`` registered with ``@profile_backend``. Where a
backend owns the CUDA stream (torch, TensorRT) it is timed with ``gpu_timing.time_gpu_iterations`` and
reports the trtexec-style breakdown; ONNX Runtime runs on its own stream and synchronizes inside
``run``, so it is timed with the host clock. By default nothing but compute and dispatch is timed
(input already on the device, output left there); ``include_data_transfers`` adds the copies.
onnxruntime, TensorRT and the runner are imported inside the functions (ARCHITECTURE.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from ..device import resolve_device
from ..errors import BadInputError, UnsupportedEnvironmentError
from ..io_utils import require_file
from ..runtime.evaluate import input_spec, open_session
from ..runtime.fingerprint import file_sha256
from ..runtime.gpu_timing import (
    capture_graph,
    summarize_breakdown,
    time_gpu_iterations,
    timed_statement,
)
from .timing import (
    ProfileOptions,
    _profile_shape,
    _report,
    profile_backend,
    profile_onnx,
    profile_torch,
    time_calls,
)

ENGINE_SUFFIXES = (".engine", ".plan")
_OUT_DTYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64}


def _no_graph_on_cpu(opts: ProfileOptions) -> None:
    if opts.cuda_graph:
        raise BadInputError("--cuda-graph needs a CUDA device (there are no CUDA graphs on the CPU); "
                            "drop --cuda-graph or pass --device cuda")


def _restate_cpu(report: dict[str, Any], call: str, opts: ProfileOptions) -> None:
    """Rewrite ``timed`` so it also says that --include-data-transfers has no effect on the CPU."""
    report["timed"] = timed_statement(call, report["batch"], "cpu", include_data_transfers=opts.include_data_transfers,
                                      cuda_graph=False, warm_calls=report["warmup"]["calls"],
                                      warm_s=report["warmup"]["seconds"], iterations=report["iterations"])


# --- ONNX Runtime ------------------------------------------------------------------------------------


@profile_backend("ort")
def profile_ort(path: Path, opts: ProfileOptions) -> dict[str, Any]:
    """ORT CPU via :func:`profile_onnx`; ORT CUDA with I/O binding on the device (or host copies)."""
    if path.suffix in ENGINE_SUFFIXES + (".safetensors",):
        raise BadInputError(f"{path}: --backend ort profiles an .onnx model; use --backend "
                            f"{'trt' if path.suffix in ENGINE_SUFFIXES else 'torch'} for this file")
    if opts.device == "cpu":
        _no_graph_on_cpu(opts)
        report = profile_onnx(path, "cpu", opts.batch, opts.warmup_s, opts.iterations, opts.duration_s,
                              opts.threads, opts.percentiles)
        _restate_cpu(report, "session.run()", opts)
        return report
    return _profile_ort_cuda(path, opts)


def _cuda_graph_session(path: Path, device: str, threads: int | None) -> Any:
    """A session with the CUDA EP option ``enable_cuda_graph`` (after open_session validated file and EP)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    if threads is not None:
        options.intra_op_num_threads = threads
    device_id = device.partition(":")[2] or "0"
    # The CPU EP is left out: a CUDA graph needs every node on the CUDA EP, so a fallback must fail loudly.
    providers = [("CUDAExecutionProvider", {"device_id": device_id, "enable_cuda_graph": "1"})]
    try:
        return ort.InferenceSession(str(path), sess_options=options, providers=providers)
    except Exception as exc:
        text = " ".join(str(exc).split())[:160]
        raise UnsupportedEnvironmentError(
            f"{path}: ONNX Runtime cannot run this model as a CUDA graph ({type(exc).__name__}: {text}); "
            f"profile without --cuda-graph") from None


def _output_shape(session: Any, batch: int, where: str) -> tuple[tuple[int, ...], type]:
    meta = session.get_outputs()[0]
    dims = list(meta.shape)
    if dims and not (isinstance(dims[0], int) and dims[0] > 0):
        dims[0] = batch
    if not all(isinstance(d, int) and d > 0 for d in dims):
        raise BadInputError(f"{where}: output {meta.name!r} has dynamic dims {meta.shape}; re-export with static shapes")
    return tuple(dims), _OUT_DTYPES.get(meta.type, np.float32)


def _profile_ort_cuda(path: Path, opts: ProfileOptions) -> dict[str, Any]:
    import onnxruntime as ort

    session = open_session(path, opts.device, opts.threads)  # file, CUDA EP (exit 5) and one-input checks
    spec = input_spec(session)
    shape = _profile_shape(spec, opts.batch, str(path))
    host = np.random.default_rng(0).standard_normal(shape).astype(spec.dtype)
    device_id = int(opts.device.partition(":")[2] or 0)
    if opts.cuda_graph:
        session = _cuda_graph_session(path, opts.device, opts.threads)
    call: Callable[[], Any]
    if opts.include_data_transfers and not opts.cuda_graph:
        feed = {spec.name: host}
        call, what = (lambda: session.run(None, feed)), "session.run() from host memory"
    else:
        out_shape, out_dtype = _output_shape(session, opts.batch, str(path))
        x_dev = ort.OrtValue.ortvalue_from_numpy(host, "cuda", device_id)
        y_dev = ort.OrtValue.ortvalue_from_shape_and_type(out_shape, out_dtype, "cuda", device_id)
        binding = session.io_binding()
        binding.bind_ortvalue_input(spec.name, x_dev)
        binding.bind_ortvalue_output(session.get_outputs()[0].name, y_dev)
        if opts.include_data_transfers:  # CUDA graphs need fixed device buffers: copy into/out of them
            def call() -> None:
                x_dev.update_inplace(host)
                session.run_with_iobinding(binding)
                y_dev.numpy()
            what = "OrtValue.update_inplace() + session.run_with_iobinding() + OrtValue.numpy()"
        else:
            call, what = (lambda: session.run_with_iobinding(binding)), "session.run_with_iobinding()"
    try:
        latencies, warm_calls, warm_s = time_calls(call, opts.warmup_s, opts.iterations, opts.duration_s)
    except Exception as exc:
        text = " ".join(str(exc).split())[:160]
        fix = "profile without --cuda-graph" if opts.cuda_graph else "check the model with `sdnas check`"
        raise UnsupportedEnvironmentError(f"{path}: ONNX Runtime failed on {opts.device} "
                                          f"({type(exc).__name__}: {text}); {fix}") from None
    timed = timed_statement(what, opts.batch, opts.device, include_data_transfers=opts.include_data_transfers,
                            cuda_graph=opts.cuda_graph, warm_calls=warm_calls, warm_s=warm_s,
                            iterations=len(latencies), sync="ONNX Runtime synchronizes its CUDA stream before returning")
    extra = {"runtime": f"onnxruntime {ort.__version__}", "provider": session.get_providers()[0],
             "model": {"path": str(path), "sha256": file_sha256(path)}}
    return _report("onnxruntime", opts.device, opts.batch, shape, opts.threads, latencies, warm_calls, warm_s,
                   timed, opts.percentiles, extra)


# --- PyTorch -----------------------------------------------------------------------------------------


def load_torch_model(path: Path, batch: int) -> tuple[torch.nn.Module, tuple[int, ...], Path]:
    """The deployable network (no auxiliary head) from ``.safetensors``, or from the weights an ``.onnx``'s
    sidecar names (``metadata.weights``); returns (model, input shape at ``batch``, weights path)."""
    from ..training.weights import load_network

    if path.suffix == ".onnx":
        from ..export.onnx_export import weights_path
        from ..export.onnx_export import load_sidecar

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
    """Eager PyTorch; on CUDA with events, optional CUDA graph, optional pinned H2D/D2H copies."""
    model, shape, weights = load_torch_model(path, opts.batch)
    dev = resolve_device(opts.device)
    if dev.type == "cpu":
        _no_graph_on_cpu(opts)
        report = profile_torch(model, shape, "cpu", opts.warmup_s, opts.iterations, opts.duration_s, opts.threads,
                               opts.percentiles)
        _restate_cpu(report, "model(x) in eager PyTorch (fp32, inference_mode)", opts)
    else:
        report = _profile_torch_cuda(model, shape, dev, opts)
    report["model"] = {"path": str(weights), "sha256": file_sha256(weights), **report["model"]}
    return report


def _profile_torch_cuda(model: torch.nn.Module, shape: tuple[int, ...], dev: torch.device,
                        opts: ProfileOptions) -> dict[str, Any]:
    stream = torch.cuda.Stream(dev)
    model = model.to(dev).eval()
    x_host = torch.randn(shape, generator=torch.Generator().manual_seed(0)).pin_memory()
    x_dev = x_host.to(dev)
    holder: list[torch.Tensor] = []
    with torch.cuda.stream(stream), torch.no_grad():
        for _ in range(3):  # cuDNN autotuning and allocations happen before any capture
            holder[:] = [model(x_dev)]
    stream.synchronize()
    out_host = torch.empty(holder[0].shape, dtype=holder[0].dtype, pin_memory=True)

    def compute() -> None:
        with torch.no_grad():
            holder[0] = model(x_dev)

    graph = capture_graph(compute, stream) if opts.cuda_graph else None
    result = time_gpu_iterations(lambda: x_dev.copy_(x_host, non_blocking=True), compute,
                                 lambda: out_host.copy_(holder[0], non_blocking=True), stream, opts.warmup_s,
                                 opts.iterations, opts.duration_s, opts.include_data_transfers, graph=graph)
    call = "CUDA graph replay of model(x)" if graph is not None else "model(x) in eager PyTorch (fp32, no_grad)"
    timed = timed_statement(call, shape[0], str(dev), include_data_transfers=opts.include_data_transfers,
                            cuda_graph=graph is not None, warm_calls=result.warm_calls, warm_s=result.warm_s,
                            iterations=result.iterations, breakdown=True)
    extra = {"runtime": f"torch {torch.__version__}", "provider": str(dev),
             "breakdown": summarize_breakdown(result.stages, opts.percentiles),
             "model": {"class": type(model).__name__, "parameters": int(sum(p.numel() for p in model.parameters()))}}
    backend = "torch-cuda-graph" if graph is not None else "torch-eager"
    return _report(backend, str(dev), shape[0], shape, opts.threads, result.stages["latency"], result.warm_calls,
                   result.warm_s, timed, opts.percentiles, extra)


# --- TensorRT ----------------------------------------------------------------------------------------


@profile_backend("trt")
def profile_trt(path: Path, opts: ProfileOptions) -> dict[str, Any]:
    """A TensorRT ``.engine`` through ``trt_runtime.TrtRunner`` (exit 5 without TensorRT)."""
    require_file(path, "TensorRT engine")
    if path.suffix not in ENGINE_SUFFIXES:
        raise BadInputError(f"{path}: --backend trt profiles a TensorRT .engine; build one on this device with "
                            "`sdnas export --format trt`, or use --backend ort for an .onnx")
    from ..runtime.trt_env import require_tensorrt, tensorrt_version

    require_tensorrt()
    if opts.device == "cpu":
        raise BadInputError("--backend trt runs on the GPU; pass --device cuda (or cuda:N)")
    dev = resolve_device(opts.device)
    from ..runtime.trt_runtime import TrtRunner

    runner = TrtRunner(path, device=str(dev), force=opts.force, batch=opts.batch)
    if runner.input_shape[0] != opts.batch:
        raise BadInputError(f"{path}: engine has a static batch of {runner.input_shape[0]}, cannot profile batch "
                            f"{opts.batch}; use --batch {runner.input_shape[0]} or rebuild with a dynamic batch")
    runner.set_input(np.random.default_rng(0).standard_normal(runner.input_shape).astype(np.float32))
    runner.copy_in()
    runner.enqueue()  # TensorRT must enqueue once before a CUDA graph capture
    runner.stream.synchronize()
    graph = capture_graph(runner.enqueue, runner.stream) if opts.cuda_graph else None
    result = time_gpu_iterations(runner.copy_in, runner.enqueue, runner.copy_out, runner.stream, opts.warmup_s,
                                 opts.iterations, opts.duration_s, opts.include_data_transfers, graph=graph)
    call = "CUDA graph replay of execute_async_v3()" if graph is not None else "context.execute_async_v3()"
    batch = int(runner.input_shape[0])
    timed = timed_statement(call, batch, str(dev), include_data_transfers=opts.include_data_transfers,
                            cuda_graph=graph is not None, warm_calls=result.warm_calls, warm_s=result.warm_s,
                            iterations=result.iterations, breakdown=True)
    warnings = list(runner.warnings)
    if opts.threads is not None:
        warnings.append("--threads has no effect on TensorRT (it sets CPU runtime threads only)")
    extra = {"runtime": f"tensorrt {tensorrt_version() or 'unknown'}", "provider": "TensorRT",
             "breakdown": summarize_breakdown(result.stages, opts.percentiles), "backend_warnings": warnings,
             "model": {"path": str(path), "sha256": file_sha256(path), "precision": runner.sidecar.get("precision")}}
    return _report("tensorrt", str(dev), batch, runner.input_shape, opts.threads, result.stages["latency"],
                   result.warm_calls, result.warm_s, timed, opts.percentiles, extra)
