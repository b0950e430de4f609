"""fp16 and INT8 exports of trained networks: accuracy against fp32, export time, ORT CPU latency, graph shape.

Issue 12 evidence for moving fp16 conversion and INT8 Q/DQ/calibration to the libraries of this field. Every
row goes through the public export path (``exporting.export_all``), so the same script measures whichever
implementation the checkout has; ``--label`` names it in the JSON. For each weights file and each
precision / calibration method it records: top-1 agreement with the fp32 PyTorch model and the accuracy drop
on real held-out images, the export seconds (calibration included, no cache), the shipped file's size, its
ORT CPU p50 latency at batch 1 and the Q/DQ layout TensorRT reads (Q/DQ nodes, which op types are fed by a
DequantizeLinear, int8 / int32 initializers).

    .venv/bin/python bench/precision_quality.py --label ort [--weights W.safetensors ...] [--verify-images 512]
"""

from __future__ import annotations

import argparse
import collections
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sdnas_deploy.exporting import export_all  # noqa: E402
from sdnas_deploy.io_utils import atomic_write_json  # noqa: E402
from sdnas_deploy.profile.api import profile_model  # noqa: E402
from sdnas_deploy.recipes import ExportConfig  # noqa: E402
from sdnas_deploy.runtime.fingerprint import environment_fingerprint  # noqa: E402

DEMO = Path(__file__).resolve().parents[1] / "export" / "demo" / "model.safetensors"
VARIANTS = (("fp32", None), ("fp16", None), ("int8", "minmax"), ("int8", "entropy"), ("int8", "percentile"))


def graph_layout(path: Path) -> dict[str, Any]:
    """What a TensorRT builder sees: Q/DQ counts, op types fed by a DequantizeLinear, initializer types."""
    import onnx

    proto = onnx.load(str(path))
    graph = proto.graph
    ops = collections.Counter(node.op_type for node in graph.node)
    dq_outputs = {o for n in graph.node if n.op_type == "DequantizeLinear" for o in n.output}
    fed = collections.Counter(n.op_type for n in graph.node if n.op_type != "QuantizeLinear"
                              and any(i in dq_outputs for i in n.input))
    dtypes = collections.Counter(onnx.TensorProto.DataType.Name(i.data_type) for i in graph.initializer)
    return {"nodes": len(graph.node), "quantize": ops.get("QuantizeLinear", 0),
            "dequantize": ops.get("DequantizeLinear", 0), "cast": ops.get("Cast", 0),
            "fed_by_dequantize": dict(fed), "initializer_types": dict(dtypes)}


def measure(weights: Path, precision: str, method: str | None, out: Path, verify: int, duration: float) -> dict[str, Any]:
    config = ExportConfig(format="onnx", precision=precision, calib_method=method, verify_images=verify,
                          max_accuracy_drop=1.0)  # record every result, never stop at a failed gate
    result = export_all(weights, out, config, log_lines=False)[0]
    ver = result.sidecar.get("verification") or {}
    latency = profile_model(result.path, duration_s=duration, warmup_s=0.5, threads=1)
    return {
        "weights": str(weights), "precision": precision, "calib_method": method,
        "top1_agreement": ver.get("top1_agreement"),
        "reference_accuracy": ver.get("reference_accuracy", ver.get("torch_accuracy")),
        "accuracy": ver.get("candidate_accuracy", ver.get("onnx_accuracy")),
        "export_seconds": round(result.seconds, 3), "file_bytes": result.path.stat().st_size,
        "ort_cpu_p50_ms": latency["stats"]["p50"], "layout": graph_layout(result.path),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--label", required=True, help="names the implementation measured, e.g. hand or ort")
    parser.add_argument("--weights", type=Path, nargs="*", default=[DEMO])
    parser.add_argument("--verify-images", type=int, default=512)
    parser.add_argument("--duration-s", type=float, default=2.0)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for w, weights in enumerate(args.weights):
            for precision, method in VARIANTS:
                out = Path(tmp) / f"{w}-{precision}-{method}"
                rows.append(measure(weights, precision, method, out, args.verify_images, args.duration_s))
                r = rows[-1]
                print(f"{weights.parent.name[:18]:18} {precision:5} {method or '-':10} agree {r['top1_agreement']:.4f} "
                      f"acc {r['accuracy']:.4f} export {r['export_seconds']:6.2f}s p50 {r['ort_cpu_p50_ms']:.3f} ms "
                      f"size {r['file_bytes']:8d} Q {r['layout']['quantize']:3d} DQ {r['layout']['dequantize']:3d}",
                      flush=True)
    path = args.out / f"precision_quality_{args.label}.json"
    atomic_write_json(path, {"label": args.label, "rows": rows, "environment": environment_fingerprint()})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
