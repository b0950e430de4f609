"""`sdnas search`: SD-DARTS, DARTS or DNA search over any registered space, writing a run directory."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .common import NprocOpt, base_config, cli_errors, print_json, print_table, relaunch_with_torchrun

RecipeOpt = typer.Option(None, "--recipe", help="Recipe YAML (path or shipped name, e.g. default); its `search:` section sets the defaults.")


@cli_errors
def search(
    recipe: Optional[str] = RecipeOpt,
    out: Optional[Path] = typer.Option(None, "--out", help="Run directory (default runs/search-<timestamp>)."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out from its last checkpoint."),
    space: Optional[str] = typer.Option(None, "--space", help="Search space: darts (cells), fbnet or proxyless (MBConv layers)."),
    setting: Optional[str] = typer.Option(None, "--setting", help="The space's layout the supernet has (fbnet/proxyless: small, cifar, imagenet)."),
    relax: Optional[str] = typer.Option(None, "--relax", help="softmax (DARTS) or gumbel (FBNet's Gumbel-softmax, temperature 5 x 0.956/epoch)."),
    partial_channels: Optional[int] = typer.Option(None, "--partial-channels", metavar="K", help="PC-DARTS: 1/K of each "
                                                   "edge's channels through the mixture (darts, nb201; reference 4)."),
    edge_norm: Optional[bool] = typer.Option(None, "--edge-norm/--no-edge-norm", help="PC-DARTS: β per edge, softmax "
                                             "over each node's incoming edges (darts, nb201)."),
    dataset: Optional[str] = typer.Option(None, help="digits (embedded), fashion-mnist, cifar10, cifar100 or imagefolder."),
    image_size: Optional[int] = typer.Option(None, "--image-size", help="Resize images (fashion-mnist, imagefolder)."),
    data_dir: Optional[str] = typer.Option(None, "--data-dir", help="Where the dataset files are (or go)."),
    limit: Optional[int] = typer.Option(None, help="Use only the first N training images (quick runs)."),
    layers: Optional[int] = typer.Option(None, help="darts: cells in the supernet (reference 8)."),
    channels: Optional[int] = typer.Option(None, help="darts: initial channels (reference 16)."),
    epochs: Optional[int] = typer.Option(None, help="Search epochs (reference 50)."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size"),
    steps_per_epoch: Optional[int] = typer.Option(None, "--steps-per-epoch", help="Cap steps per epoch (quick runs)."),
    lr: Optional[float] = typer.Option(None, help="Weight learning rate (cosine to --lr-min)."),
    arch_lr: Optional[float] = typer.Option(None, "--arch-lr", help="Adam learning rate of α."),
    unrolled: Optional[bool] = typer.Option(None, "--unrolled/--first-order", help="Second-order (unrolled) α gradient."),
    arch_warmup_epochs: Optional[int] = typer.Option(None, "--arch-warmup", help="Epochs of weight training before α "
                                                     "moves (PC-DARTS: 15)."),
    method: Optional[str] = typer.Option(None, "--method", help="sd-darts (self-distillation from voting teachers), darts, "
                                         "or dna (blockwise distillation from --teacher; layer-wise spaces)."),
    distill: Optional[str] = typer.Option(None, help="Legacy alias of --method: sd (= sd-darts) or none (= darts)."),
    teachers: Optional[int] = typer.Option(None, help="Number K of teacher snapshots."),
    teacher_interval: Optional[int] = typer.Option(None, "--teacher-interval", help="Weight steps between snapshots."),
    vote: Optional[str] = typer.Option(None, help="soft (mean of probabilities) or hard (majority class)."),
    teachers_from: Optional[str] = typer.Option(None, "--teachers-from", help="sd-darts: snapshots (K frozen supernet "
                                                "copies, 3 extra forwards per step) or cache (each sample's recorded "
                                                "probabilities of the previous K epochs, no extra forward)."),
    temperature: Optional[float] = typer.Option(None, help="Distillation temperature T."),
    distill_weight: Optional[float] = typer.Option(None, "--distill-weight", help="Weight λ of the T²-scaled KL term."),
    distill_warmup_epochs: Optional[int] = typer.Option(None, "--distill-warmup", help="Epochs before distillation starts."),
    sharpness: Optional[bool] = typer.Option(None, "--sharpness/--no-sharpness", help="Dominant Hessian eigenvalue of the val loss w.r.t. α each epoch."),
    target: Optional[str] = typer.Option(None, "--target", help="Deployment target (sdnas lut list); its table gives latency."),
    lut: Optional[str] = typer.Option(None, "--lut", help="Latency table file (overrides the target's table)."),
    lut_kind: Optional[str] = typer.Option(None, "--lut-kind", help="Target table: auto (fitted if shipped), microbenchmark or fitted."),
    latency_setting: Optional[str] = typer.Option(None, "--latency-setting", help="Deployment setting of the table / FLOPs (default: the space's; darts: cifar or mobile)."),
    latency_budget: Optional[float] = typer.Option(None, "--latency-budget", metavar="MS", help="Latency budget in ms (needs --target or --lut)."),
    flops_budget: Optional[float] = typer.Option(None, "--flops-budget", metavar="M", help="FLOPs budget in millions of multiply-adds."),
    penalty: Optional[str] = typer.Option(None, "--penalty", help="add (ProxylessNAS), mul (MnasNet) or budget (only above the budget)."),
    penalty_weight: Optional[float] = typer.Option(None, "--penalty-weight", help="λ of the add/budget penalty (default 0.1)."),
    penalty_beta: Optional[float] = typer.Option(None, "--penalty-beta", help="β of the mul penalty (default 0.3)."),
    penalty_warmup_epochs: Optional[int] = typer.Option(None, "--penalty-warmup", help="Epochs before the penalty starts."),
    budget_derive: Optional[bool] = typer.Option(None, "--budget-derive/--no-budget-derive", help="At the end, move the "
                                                 "least likely choices to cheaper ones until the architecture fits the "
                                                 "budget on the table (default on; NB201 and layer-wise spaces)."),
    budget_margin: Optional[float] = typer.Option(None, "--budget-margin", help="Derive within budget x (1 - margin): "
                                                  "the table's own error, e.g. 0.05 (`sdnas lut list` shows it)."),
    teacher: Optional[str] = typer.Option(None, "--teacher", help="dna: a network `sdnas train` wrote (weights or run "
                                          "directory), or torchvision:NAME with --teacher-weights."),
    teacher_weights: Optional[str] = typer.Option(None, "--teacher-weights", help="dna: state dict file of a torchvision "
                                                  "teacher (.pt/.pth read with weights_only, or .safetensors)."),
    stages: Optional[str] = typer.Option(None, "--stages", metavar="I,J,...", help="dna: the teacher point that ends each "
                                         "student block (indices of the stage table; default: cut automatically)."),
    kd_loss: Optional[str] = typer.Option(None, "--kd-loss", help="dna: mse (reference) or normalized (MSE / var(t))."),
    kd_lr: Optional[float] = typer.Option(None, "--kd-lr", help="dna: Adam learning rate of the student blocks."),
    rate_max: Optional[int] = typer.Option(None, "--rate-max", help="dna: rate every path of a block with at most this "
                                           "many, else this many sampled + local refinement (default 1296)."),
    params_budget: Optional[float] = typer.Option(None, "--params-budget", metavar="M", help="dna: budget in millions "
                                                  "of parameters."),
    top_k: Optional[int] = typer.Option(None, "--top-k", help="dna: architectures to report (the best is the result)."),
    seed: Optional[int] = typer.Option(None),
    device: Optional[str] = typer.Option(None, help="auto, cpu, cuda or cuda:N."),
    amp: Optional[str] = typer.Option(None, help="auto, bf16, fp16 or off (CUDA only)."),
    tensorboard: Optional[str] = typer.Option(None, "--tensorboard", metavar="DIR", help="Also write TensorBoard "
                                              "scalars (loss, accuracies, α entropy, expected latency) to DIR; needs "
                                              "the tensorboard package."),
    nproc: Optional[int] = NprocOpt,
    sync_bn: Optional[bool] = typer.Option(None, "--sync-bn/--no-sync-bn", help="torchrun on GPUs: BatchNorm "
                                           "statistics over all processes (SyncBatchNorm)."),
    json_out: bool = typer.Option(False, "--json", help="Print the final report as JSON."),
) -> None:
    """Search an architecture; writes genotype.json (naming its space), report.json, α history and checkpoints."""
    relaunch_with_torchrun(nproc)
    from ..config_utils import override
    from ..nas.config import SearchConfig, load_search_config
    from ..nas.searcher import run_search
    from ..parallel import current as current_parallel
    from ..runs import new_run_dir

    run_dir = new_run_dir("search", out)
    config = base_config(SearchConfig, load_search_config, recipe, resume, run_dir)
    config = override(
        config, space=space, setting=setting, relax=relax, partial_channels=partial_channels, edge_norm=edge_norm,
        teachers_from=teachers_from, dataset=dataset, data_dir=data_dir, image_size=image_size, limit=limit, layers=layers, channels=channels, epochs=epochs,
        batch_size=batch_size, steps_per_epoch=steps_per_epoch, lr=lr, arch_lr=arch_lr, unrolled=unrolled, arch_warmup_epochs=arch_warmup_epochs,
        method=method, distill=distill, teachers=teachers, teacher_interval=teacher_interval, vote=vote, temperature=temperature,
        distill_weight=distill_weight, distill_warmup_epochs=distill_warmup_epochs, sharpness=sharpness, seed=seed,
        device=device, amp=amp, target=target, lut=lut, lut_kind=lut_kind, latency_setting=latency_setting, latency_budget=latency_budget,
        flops_budget=flops_budget, penalty=penalty, penalty_weight=penalty_weight, penalty_beta=penalty_beta,
        penalty_warmup_epochs=penalty_warmup_epochs, budget_derive=budget_derive, budget_margin=budget_margin,
        teacher=teacher, teacher_weights=teacher_weights, stages=parse_indices(stages, "--stages"), kd_loss=kd_loss,
        kd_lr=kd_lr, rate_max=rate_max, params_budget=params_budget, top_k=top_k, sync_bn=sync_bn, tensorboard=tensorboard,
    )
    report = run_search(config, run_dir, resume=resume, progress=not json_out)
    if not current_parallel().is_main:  # torchrun: rank 0 prints
        return
    from ..visual.report import make_plots

    make_plots(run_dir)  # plots/ beside the report (sdnas report RUN adds the page)
    if json_out:
        print_json(report)
        return
    if report.get("method") == "dna":
        print_dna_summary(report, run_dir)
        return
    print_search_summary(report, run_dir)


def parse_indices(text: str | None, flag: str) -> list[int] | None:
    """``3,5,8`` → [3, 5, 8]; anything else → one line, exit 2."""
    if text is None:
        return None
    from ..errors import BadInputError

    parts = [p.strip() for p in text.split(",")]
    if not parts or not all(p.isdigit() for p in parts):
        raise BadInputError(f"{flag} {text!r}: give comma-separated non-negative integers, e.g. 3,5,8")
    return [int(p) for p in parts]


def print_dna_summary(report: dict, run_dir: Path) -> None:
    """Human summary of a DNA search: the budget, the top-k with score and costs, where the files are."""
    final, budget = report["final"], report.get("budget")
    print_table(f"DNA search finished: {run_dir}", [
        ("space / setting", f"{report['space']} / {report['setting']}"),
        ("teacher", report["teacher"]["name"]),
        ("budget", "none" if not budget else f"{budget['value']:g} {budget['unit']}"),
        ("score (sum of blocks)", final.get("score")),
        ("predicted MMAC", final.get("predicted_mmac")),
        ("params (M)", final.get("params_m")),
        ("predicted latency ms", final.get("predicted_latency_ms")),
        ("architecture", str(run_dir / "genotype.json")),
        ("all ratings", str(run_dir / "ratings.json")),
    ])
    print(f"top {len(final['top_k'])}:")
    for rank, entry in enumerate(final["top_k"], 1):
        costs = ", ".join(f"{entry[k]:.4g} {u}" for k, u in (("mmac", "MMAC"), ("params_m", "M params"),
                                                            ("latency_ms", "ms")) if entry.get(k) is not None)
        print(f"  {rank}. score {entry['score']:.4f}  {costs}  {entry['arch_string']}")


def _projection(record: dict | None) -> str | None:
    """What the budgeted derive did, in a few words (None when there was no budget)."""
    if not record:
        return None
    if not record.get("applied"):
        return record.get("reason") or "not needed (the derived architecture fits)"
    verdict = "fits" if record.get("met") else "still over"
    return f"{record['steps']} choices moved: {record['plain_cost']:.4g} -> {record['cost']:.4g} ({verdict})"


def print_search_summary(report: dict, run_dir: Path) -> None:
    """Human summary of a finished search."""
    final = report["final"]
    timing = report.get("timing", {})
    print_table(
        f"search finished: {run_dir}",
        [
            ("supernet val acc", final.get("supernet_val_acc")),
            ("discretized val acc", final.get("discretized_val_acc")),
            ("discretization gap", final.get("gap")),
            ("space", report.get("space")),
            ("method", report.get("method")),
            *((k.replace("_", " "), v) for k, v in (final.get("summary") or {}).items() if isinstance(v, (int, float))),
            ("dominant eigenvalue", final.get("dominant_eigenvalue")),
            ("predicted latency ms", final.get("predicted_latency_ms")),
            ("measured latency ms (here)", final.get("measured_latency_ms")),
            ("latency budget met", final.get("latency_budget_met")),
            ("budgeted derive", _projection(final.get("budget_derive"))),
            ("predicted MMAC", final.get("predicted_mmac")),
            ("FLOPs budget met", final.get("flops_budget_met")),
            ("step ms (plain)", timing.get("mean_step_ms_plain")),
            ("step ms (distill)", timing.get("mean_step_ms_distill")),
            ("genotype", str(run_dir / "genotype.json")),
        ],
    )
