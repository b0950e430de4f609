"""What the DNA benches share: the teacher, retraining an architecture, and measuring its latency here.

Everything runs with the `search/dna-digits.yaml` recipe's sections (retraining shortened to ``RETRAIN_EPOCHS``) on
the embedded digits, or on another dataset given as ``data`` (dataset, limit, image_size overrides), one torch
thread per process, and is cached under the bench's ``--out`` so reruns resume.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sdnas_deploy.io_utils import load_json  # noqa: E402

RECIPE = "dna-digits"
RETRAIN_EPOCHS = 15
# the teacher of the rating bench: the dna space's largest network, so its stages are the student setting's and
# every student architecture is also an architecture of the one-shot supernet it is compared with
DNA_TEACHER = "dna:" + "-".join(["k7_e6_se"] * 10)


def cached(run_dir: Path, run: Callable[[bool], dict[str, Any]]) -> dict[str, Any]:
    """The finished report in ``run_dir``, else ``run(resume)`` (resuming from a checkpoint when there is one)."""
    report = run_dir / "report.json"
    if report.is_file() and load_json(report).get("status") == "complete":
        return load_json(report)
    return run((run_dir / "checkpoint.pt").is_file())


def recipe() -> Any:
    from sdnas_deploy.recipes import load_recipe
    from sdnas_deploy.resources import resolve_data_file

    return load_recipe(resolve_data_file("search", RECIPE))


def train_teacher(spec: str, out_root: Path, data: dict[str, Any] | None = None, epochs: int | None = None) -> Path:
    """Train ``spec`` with the recipe's train section (its epochs unless ``epochs``); returns its best weights."""
    import torch

    torch.set_num_threads(1)
    from sdnas_deploy.config_utils import override
    from sdnas_deploy.spaces import parse_arch
    from sdnas_deploy.training.trainer import run_training

    space, arch = parse_arch(spec)
    config = override(recipe().train, device="cpu", setting=space.setting_for(arch), epochs=epochs, **(data or {}))
    key = json.dumps([spec, data, epochs], sort_keys=True)
    out = out_root / "teacher" / hashlib.sha1(key.encode()).hexdigest()[:10]
    cached(out, lambda r: run_training(arch, config, out, resume=r, progress=False, space=space))
    return out / "best.safetensors"


def retrain(arch_json: dict[str, Any], seed: int, out_root: str, teacher: str | None = None,
            data: dict[str, Any] | None = None) -> dict[str, Any]:
    """Best test top-1, parameters and MACs of ``arch_json`` retrained with the recipe (``RETRAIN_EPOCHS``)."""
    import torch

    torch.set_num_threads(1)
    from sdnas_deploy.config_utils import override
    from sdnas_deploy.spaces import arch_from_json
    from sdnas_deploy.training.trainer import run_training

    space, arch = arch_from_json(arch_json)
    config = override(recipe().train, device="cpu", seed=seed, epochs=RETRAIN_EPOCHS, teacher=teacher, **(data or {}))
    key = json.dumps([arch_json, seed, teacher] + ([data] if data else []), sort_keys=True)
    out = Path(out_root) / "train" / hashlib.sha1(key.encode()).hexdigest()[:12]
    report = cached(out, lambda r: run_training(arch, config, out, resume=r, progress=False, space=space))
    final = report["final"]
    return {"top1": final["best_top1"], "params": final["params"], "macs": final["macs"], "train_dir": str(out)}


def latency_ms(arch_json: dict[str, Any], input_size: int = 16) -> float:
    """Median latency (ms) of the network on this CPU: ONNX Runtime, 1 thread, batch 1, 5 sessions' median."""
    import torch

    torch.set_num_threads(1)
    from sdnas_deploy.hw.whole import measure_network
    from sdnas_deploy.spaces import arch_from_json

    space, arch = arch_from_json(arch_json)
    geometry = space.geometry("small", input_size=input_size, in_channels=1, num_classes=10)
    stats = measure_network(arch, geometry, backend="ort", threads=1, repeats=50, space=space, sessions=5)
    return float(stats["p50"])


def kendall_tau(a: list[float], b: list[float]) -> float:
    from scipy.stats import kendalltau

    return float(kendalltau(a, b).statistic)


def add_data_args(parser: Any) -> None:
    """The data options both DNA benches take (default: the embedded digits)."""
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--image-size", type=int, default=None)
    parser.add_argument("--teacher-epochs", type=int, default=None, help="default: the recipe's train epochs")


def data_of(args: Any) -> dict[str, Any]:
    """The config overrides those options give (nothing for plain digits)."""
    return {k: v for k, v in (("dataset", args.dataset), ("limit", args.limit), ("image_size", args.image_size))
            if v is not None and not (k == "dataset" and v == "digits")}
