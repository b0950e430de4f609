"""The demo model's latency in each runtime of one device, from one run (issue 4 evidence).

PyTorch eager, PyTorch compiled (``torch.compile``, inductor) and ONNX Runtime — on the GPU with the CUDA
provider when ``--device cuda`` (and onnxruntime has it), else on the CPU — all through the profiler that
`sdnas profile` uses, at batch 1 with the same warm-up and duration. Prints a table and writes
bench/results/runtime_compare_<device>.json. The compiled model is warmed up (compilation) before timing.

    .venv/bin/python bench/runtime_compare.py [--device cpu|cuda] [--duration-s 3] [--threads 1]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sdnas_deploy.runtime.fingerprint import environment_fingerprint  # noqa: E402
from sdnas_deploy.profile.api import profile_model  # noqa: E402
from sdnas_deploy.profile.timing import profile_torch  # noqa: E402
from sdnas_deploy.device import resolve_device  # noqa: E402
from sdnas_deploy.errors import SdnasError  # noqa: E402
from sdnas_deploy.io_utils import atomic_write_json  # noqa: E402
from sdnas_deploy.training.weights import load_network  # noqa: E402

DEMO = Path(__file__).resolve().parents[1] / "export" / "demo"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--duration-s", type=float, default=3.0)
    parser.add_argument("--warmup-s", type=float, default=1.0)
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (torch and ORT); ignored on CUDA")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    try:
        device = str(resolve_device(args.device))
    except SdnasError as exc:
        sys.exit(f"error: {exc.message}")
    threads = args.threads if device == "cpu" else None
    model, meta = load_network(DEMO / "model.safetensors", auxiliary=False)
    shape = (1, meta.in_channels, meta.image_size, meta.image_size)
    timing = dict(warmup_s=args.warmup_s, duration_s=args.duration_s, threads=threads)

    rows = []
    rows.append(("torch eager", profile_torch(model, shape, device=device, **timing)))
    start = time.perf_counter()
    compiled = torch.compile(model.to(device).eval())
    with torch.inference_mode():
        compiled(torch.randn(shape, device=device))  # compile outside the timed region
    compile_s = time.perf_counter() - start
    report = profile_torch(compiled, shape, device=device, **timing)
    report["compile_seconds"] = compile_s
    rows.append(("torch compiled", report))
    try:
        rows.append((f"onnxruntime ({'CUDA' if device != 'cpu' else 'CPU'})",
                     profile_model(DEMO / "model.onnx", backend="ort", device=device, **timing)))
    except SdnasError as exc:  # e.g. onnxruntime without the CUDA provider: say so, keep the other rows
        print(f"onnxruntime skipped: {exc.message}")

    print(f"demo model {'x'.join(map(str, shape))}, {device}, batch 1, {args.duration_s:g} s per runtime (ms)")
    print(f"{'runtime':<22}{'median':>9}{'p90':>9}{'p99':>9}{'cov %':>8}{'calls':>8}")
    for name, r in rows:
        s = r["stats"]
        print(f"{name:<22}{s['median']:>9.4f}{s['p90']:>9.4f}{s['p99']:>9.4f}{100 * s['cov']:>8.1f}{s['n']:>8}")
    print(f"torch.compile took {compile_s:.1f} s before timing")
    path = atomic_write_json(args.out / f"runtime_compare_{device.split(':')[0]}.json", {
        "benchmark": "runtime_compare", "date": time.strftime("%Y-%m-%d"), "device": device, "input_shape": shape,
        "fingerprint": environment_fingerprint(threads),
        "results": [{"runtime": name, "stats": r["stats"], "timed": r["timed"], **({"compile_seconds": r["compile_seconds"]}
                     if "compile_seconds" in r else {})} for name, r in rows],
    })
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
