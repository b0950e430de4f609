"""`sdnas train`: retrain the discrete network of a genotype (CIFAR or ImageNet-mobile setting)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .common import NprocOpt, base_config, cli_errors, print_json, print_table, relaunch_with_torchrun


@cli_errors
def train(
    genotype: str = typer.Argument(..., help="genotype.json, a search/pipeline run directory, or a reference name (darts_v2)."),
    recipe: Optional[str] = typer.Option(None, "--recipe", help="Recipe YAML; its `train:` section sets the defaults."),
    out: Optional[Path] = typer.Option(None, "--out", help="Run directory (default runs/train-<timestamp>)."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out from its last checkpoint."),
    setting: Optional[str] = typer.Option(None, help="The space's setting (darts: cifar, mobile; fbnet/proxyless: "
                                          "imagenet, cifar, small); default: the space's."),
    dataset: Optional[str] = typer.Option(None, help="digits (embedded), fashion-mnist, cifar10, cifar100 or imagefolder."),
    image_size: Optional[int] = typer.Option(None, "--image-size", help="Resize images (fashion-mnist, imagefolder)."),
    data_dir: Optional[str] = typer.Option(None, "--data-dir"),
    limit: Optional[int] = typer.Option(None, help="Use only the first N training images."),
    layers: Optional[int] = typer.Option(None, help="Cells (setting default: cifar 20, mobile 14)."),
    channels: Optional[int] = typer.Option(None, help="Initial channels (cifar 36, mobile 48)."),
    epochs: Optional[int] = typer.Option(None),
    batch_size: Optional[int] = typer.Option(None, "--batch-size"),
    steps_per_epoch: Optional[int] = typer.Option(None, "--steps-per-epoch"),
    lr: Optional[float] = typer.Option(None),
    auxiliary: Optional[bool] = typer.Option(None, "--auxiliary/--no-auxiliary"),
    drop_path_prob: Optional[float] = typer.Option(None, "--drop-path"),
    cutout: Optional[int] = typer.Option(None),
    label_smoothing: Optional[float] = typer.Option(None, "--label-smoothing"),
    seed: Optional[int] = typer.Option(None),
    device: Optional[str] = typer.Option(None),
    amp: Optional[str] = typer.Option(None),
    teacher: Optional[str] = typer.Option(None, "--teacher", help="Distill from this network of `sdnas train` (weights "
                                          "or run directory; same data and size): (1-w) CE + w T² KL."),
    kd_weight: Optional[float] = typer.Option(None, "--kd-weight", help="w of the distillation term (default 0.5)."),
    kd_temperature: Optional[float] = typer.Option(None, "--kd-temperature", help="T of the distillation term (default 4)."),
    stop_after: Optional[int] = typer.Option(None, "--stop-after", metavar="E", help="End this call once E epochs "
                                             "are complete (checkpointed); --resume continues: split a run into jobs."),
    tensorboard: Optional[str] = typer.Option(None, "--tensorboard", metavar="DIR", help="Also write TensorBoard "
                                              "scalars (loss, top-1, lr) to DIR; needs the tensorboard package."),
    nproc: Optional[int] = NprocOpt,
    sync_bn: Optional[bool] = typer.Option(None, "--sync-bn/--no-sync-bn", help="torchrun on GPUs: BatchNorm "
                                           "statistics over all processes (SyncBatchNorm)."),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """Retrain a genotype; keeps best/last weights (safetensors) and report.json with test top-1/top-5."""
    relaunch_with_torchrun(nproc)
    from ..config_utils import override
    from ..parallel import current as current_parallel
    from ..runs import load_arch_arg, new_run_dir
    from ..training.config import TrainConfig, load_train_config
    from ..training.trainer import run_training

    space, geno = load_arch_arg(genotype)
    run_dir = new_run_dir("train", out)
    config = base_config(TrainConfig, load_train_config, recipe, resume, run_dir)
    config = override(
        config, setting=setting, dataset=dataset, data_dir=data_dir, image_size=image_size, limit=limit, layers=layers, channels=channels,
        epochs=epochs, batch_size=batch_size, steps_per_epoch=steps_per_epoch, lr=lr, auxiliary=auxiliary,
        drop_path_prob=drop_path_prob, cutout=cutout, label_smoothing=label_smoothing, seed=seed, device=device, amp=amp,
        teacher=teacher, kd_weight=kd_weight, kd_temperature=kd_temperature, sync_bn=sync_bn, tensorboard=tensorboard,
    )
    report = run_training(geno, config, run_dir, resume=resume, progress=not json_out, space=space,
                          stop_after=stop_after)
    if not current_parallel().is_main:  # torchrun: rank 0 prints
        return
    from ..visual.report import make_plots

    make_plots(run_dir)  # plots/ beside the report (sdnas report RUN adds the page)
    if json_out:
        print_json(report)
        return
    final = report["final"]
    print_table(
        f"training finished: {run_dir}",
        [
            ("best test top-1", final.get("best_top1")),
            ("last test top-1", final.get("last_top1")),
            ("last test top-5", final.get("last_top5")),
            ("parameters", final.get("params")),
            ("multiply-adds", final.get("macs")),
            ("weights", str(run_dir / "best.safetensors")),
        ],
    )
