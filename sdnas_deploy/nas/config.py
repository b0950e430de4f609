"""Search configuration: the ``search:`` section of a recipe (DARTS hyperparameters + SD-DARTS options).

Each default says where it comes from: "DARTS reference" = the CIFAR-10 search of Liu et al. (2019)
(DESIGN.md §1); "ours" = a choice of this project, because SD-DARTS does not publish its full settings.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ..config_utils import from_mapping, to_dict
from ..errors import BadInputError
from ..io_utils import load_json

DistillMode = Literal["sd", "none"]
VoteRule = Literal["soft", "hard"]
AmpMode = Literal["auto", "bf16", "fp16", "off"]
PenaltyKind = Literal["add", "mul", "budget"]
Relaxation = Literal["softmax", "gumbel"]
TeacherSource = Literal["snapshots", "cache"]
KdLoss = Literal["mse", "normalized"]

# Keys that change the supernet or the data it sees: a resumed run must keep them.
STRUCTURAL_KEYS = ("space", "setting", "dataset", "layers", "channels", "teacher", "teacher_weights", "stages",
                   "partial_channels", "edge_norm", "teachers_from")


@dataclass
class SearchConfig:
    """Hyperparameters of ``sdnas search``."""

    space: str = "darts"  # DARTS reference: the 8-op DARTS cell space (spaces.SPACES: darts, fbnet, proxyless)
    setting: str | None = None  # ours: the space's setting whose layout the supernet has (None: the space's search setting)
    dataset: str = "digits"  # ours: embedded 16x16 digits, runs anywhere without downloads (reference: cifar10)
    data_dir: str | None = None  # ours: folder of cifar10/cifar100/imagefolder data
    limit: int | None = None  # ours: use only the first N training images (quick runs, tests)
    image_size: int | None = None  # ours: resize the images (resizable datasets: fashion-mnist, imagefolder)
    layers: int | None = None  # DARTS reference: 8 cells in the search supernet (darts only; None = 8)
    channels: int | None = None  # DARTS reference: 16 initial channels (darts only; None = 16)
    relax: Relaxation = "softmax"  # DARTS reference: softmax mixture; gumbel = FBNet's Gumbel-softmax samples
    partial_channels: int = 1  # PC-DARTS: 1/K of each edge's channels through the mixture (reference K=4); cell spaces
    edge_norm: bool = False  # PC-DARTS: β per edge, softmax over each node's incoming edges (reference: on); cell spaces
    gumbel_temperature: float = 5.0  # FBNet reference: initial Gumbel-softmax temperature 5.0 ...
    gumbel_decay: float = 0.956  # FBNet reference: ... multiplied by 0.956 every epoch
    epochs: int = 50  # DARTS reference: 50 search epochs
    batch_size: int = 64  # DARTS reference: batch 64 (first order)
    lr: float = 0.025  # DARTS reference: SGD lr of the weights ...
    lr_min: float = 0.001  # DARTS reference: ... cosine-annealed to 0.001
    momentum: float = 0.9  # DARTS reference
    weight_decay: float = 3e-4  # DARTS reference
    grad_clip: float = 5.0  # DARTS reference: global grad-norm clip of the weights; 0 disables
    arch_lr: float = 3e-4  # DARTS reference: Adam lr of α
    arch_betas: tuple[float, float] = (0.5, 0.999)  # DARTS reference: Adam betas of α
    arch_weight_decay: float = 1e-3  # DARTS reference: weight decay of α
    unrolled: bool = False  # DARTS reference: first order is the default; True = second-order α gradient
    arch_warmup_epochs: int = 0  # DARTS reference: α moves from epoch 0; PC-DARTS: 15 epochs of weights only first
    train_portion: float = 0.5  # DARTS reference: train split 50/50 into weight-train / arch-val halves
    seed: int = 2  # DARTS reference code's default seed
    device: str = "auto"  # ours: auto | cpu | cuda | cuda:N
    amp: AmpMode = "auto"  # ours: bf16/fp16 autocast on CUDA, fp32 on CPU
    channels_last: bool | None = None  # ours: None = on for CUDA only
    tensorboard: str | None = None  # ours: folder for TensorBoard scalars (needs the tensorboard package)
    sync_bn: bool = False  # ours: torchrun on GPUs: BatchNorm statistics over all processes' batches (SyncBatchNorm)
    steps_per_epoch: int | None = None  # ours: cap on steps (and eval batches) per epoch, for quick runs
    method: str = "sd-darts"  # ours: methods.METHODS — "sd-darts" (self-distillation from voting teachers) or "darts"
    distill: DistillMode | None = None  # legacy alias of method: "sd" = sd-darts, "none" = darts
    teachers: int = 3  # ours: K voting teachers (odd, so a hard vote of 3 rarely ties)
    # ours: weight steps between teacher snapshots. 100 steps ≈ 1/4 epoch of the reference (391 steps/epoch),
    # so K=3 teachers span the last ~3/4 epoch: recent enough to be relevant, far enough apart to differ.
    teacher_interval: int = 100
    vote: VoteRule = "soft"  # ours: soft = mean of teacher probabilities; hard = majority class
    # ours: snapshots = K frozen supernet copies run on each batch (3 extra forwards per step); cache = each
    # sample's probabilities recorded from the supernet's own forwards in the previous K epochs (no extra forward)
    teachers_from: TeacherSource = "snapshots"
    temperature: float = 2.0  # ours: T of the KL term (Hinton et al.'s usual range 2-4)
    distill_weight: float = 1.0  # ours: λ of the T²-scaled KL term (equal footing with the CE loss)
    # ours: epochs before distillation starts; early supernets are near-random teachers (10% of the reference run)
    distill_warmup_epochs: int = 5
    distill_arch: bool = False  # ours: also add the KL term to the α (val) loss
    sharpness: bool = False  # ours: dominant Hessian eigenvalue of the val loss w.r.t. α each epoch (costly)
    sharpness_iters: int = 20  # ours: power-iteration steps
    sharpness_batches: int = 2  # ours: val batches averaged in the Hessian
    sharpness_every: int = 1  # ours: compute it every N epochs (always at the last epoch); it costs ~iters x 3 steps
    # Hardware awareness (nas/penalty.py has the formulas). A table describes a deployment geometry, not the
    # supernet: α is shared by all cells, so the searched cell is costed on the network it will be deployed as.
    target: str | None = None  # ours: a target of hw.targets; its shipped table gives latency
    lut: str | None = None  # ours: path to a latency table file; overrides the target's table
    latency_setting: str | None = None  # ours: deployment setting the table (and FLOPs count) describes (None: the space's default)
    lut_kind: Literal["auto", "microbenchmark", "fitted"] = "auto"  # ours: which shipped table of --target (auto: fitted if shipped)
    latency_budget: float | None = None  # ours: ms on the target; needs target or lut
    flops_budget: float | None = None  # ours: millions of multiply-adds (MMAC) of the deployment network
    penalty: PenaltyKind = "budget"  # ours: penalize only above the budget (add/mul: ProxylessNAS/MnasNet forms)
    penalty_weight: float = 0.1  # ProxylessNAS: λ ≈ 0.1 (add); also λ of the budget hinge; raise it if a budget is missed
    penalty_beta: float = 0.3  # DESIGN.md §2 (FBNet/MnasNet-style): exponent β of the mul form
    penalty_warmup_epochs: int = 5  # ours: like distillation, 10% of the reference run on accuracy alone first
    budget_derive: bool = True  # ours: the final architecture is projected into the budget if it misses it (nas/budget_derive.py)
    budget_margin: float = 0.0  # ours: derive within budget x (1 - margin); set it to the table's error (hw.lut.error_estimate)
    # DNA (method "dna": blockwise distillation from a teacher, then an exact budgeted selection; DESIGN.md §9)
    teacher: str | None = None  # ours: weights/run of `sdnas train` (any space), or torchvision:NAME with teacher_weights
    teacher_weights: str | None = None  # ours: the state dict file of a torchvision teacher (never downloaded)
    teacher_arch: str | None = None  # ours: `sdnas run` trains this architecture as the teacher when teacher is unset
    stages: list[int] | None = None  # ours: teacher point index ending each student block (None: cut automatically)
    kd_loss: KdLoss = "mse"  # DNA reference: MSE between student and teacher feature maps; normalized = MSE / var(t)
    kd_lr: float = 0.002  # ours: Adam lr of the student blocks (DNA trains them with Adam)
    rate_max: int = 1296  # DNA reference: all 6^4 = 1296 paths of a 4-layer block are rated; larger blocks sample
    rate_batches: int = 4  # ours: fixed held-out (arch-val) batches every path is scored on
    calib_batches: int = 4  # ours: weight-train batches that re-estimate each path's BatchNorm before scoring
    params_budget: float | None = None  # ours: millions of parameters of the deployment network (DNA selection)
    top_k: int = 5  # ours: architectures reported by the DNA selection (the best is the result)

    def __post_init__(self) -> None:
        validate(self)


def _check(condition: bool, field: str, value: Any, need: str) -> None:
    if not condition:
        raise BadInputError(f"search config: {field}={value!r} is invalid; {need}")


def validate(config: SearchConfig) -> SearchConfig:
    """Reject values no search can use, one line per problem; returns ``config``."""
    c = config
    for name in ("epochs", "batch_size", "teachers", "teacher_interval",
                 "sharpness_iters", "sharpness_batches", "sharpness_every", "rate_max", "rate_batches",
                 "calib_batches", "top_k"):
        _check(getattr(c, name) >= 1, name, getattr(c, name), "use a positive integer")
    for name in ("limit", "steps_per_epoch", "layers", "channels", "image_size"):
        value = getattr(c, name)
        if value is not None:
            _check(value >= 1, name, value, "use a positive integer or leave it unset")
    # DARTS places reductions at layers//3 and 2*layers//3: 2 cells are both reductions, so no normal cell is left.
    if c.layers is not None:
        _check(c.layers >= 3, "layers", c.layers, "use at least 3 cells (2 would both be reduction cells)")
    _validate_space(c)
    _validate_method(c)
    for name in ("lr", "arch_lr", "temperature", "kd_lr"):
        value = getattr(c, name)
        _check(math.isfinite(value) and value > 0, name, value, "use a positive finite number")
    for name in ("lr_min", "weight_decay", "arch_weight_decay", "grad_clip", "distill_weight"):
        value = getattr(c, name)
        _check(math.isfinite(value) and value >= 0, name, value, "use 0 or a positive finite number")
    _check(c.lr_min <= c.lr, "lr_min", c.lr_min, f"use a value not above lr={c.lr}")
    _check(0 <= c.momentum < 1, "momentum", c.momentum, "use a value in [0, 1)")
    _check(0 < c.train_portion < 1, "train_portion", c.train_portion, "use a fraction in (0, 1)")
    betas = tuple(c.arch_betas)
    _check(
        len(betas) == 2 and all(isinstance(b, (int, float)) and 0 <= b < 1 for b in betas),
        "arch_betas", c.arch_betas, "use two numbers in [0, 1), e.g. [0.5, 0.999]",
    )
    c.arch_betas = (float(betas[0]), float(betas[1]))
    _check(c.distill_warmup_epochs >= 0, "distill_warmup_epochs", c.distill_warmup_epochs, "use 0 or more epochs")
    _check(c.seed >= 0, "seed", c.seed, "use a non-negative integer")
    _validate_hardware(c)
    return c


def _validate_method(c: SearchConfig) -> None:
    """The method exists; the legacy ``distill`` flag is folded into it (sd -> sd-darts, none -> darts)."""
    from ..methods import get_method

    if c.distill is not None:
        _check(c.distill in ("sd", "none"), "distill", c.distill, "use sd or none (or method: sd-darts|darts)")
        c.method = "sd-darts" if c.distill == "sd" else "darts"
        c.distill = None
    method = get_method(c.method)  # unknown → BadInputError with the closest name
    from ..spaces import get_space

    why = method.unsupported(get_space(c.space))
    if why:
        raise BadInputError(f"search config: method {c.method!r} cannot search space {c.space!r}: {why}")
    _check(c.kd_loss in ("mse", "normalized"), "kd_loss", c.kd_loss, "use mse or normalized")
    if c.stages is not None:
        ok = isinstance(c.stages, (list, tuple)) and c.stages and all(
            isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in c.stages)
        _check(bool(ok), "stages", c.stages, "use teacher point indices, e.g. 3,5,8 (the stage table lists them)")
        c.stages = [int(i) for i in c.stages]
    for name in ("teacher", "teacher_weights", "teacher_arch"):
        value = getattr(c, name)
        _check(value is None or (isinstance(value, str) and value.strip() != ""), name, value,
               "use a path or name, or leave it unset")


def _validate_space(c: SearchConfig) -> None:
    """The space exists, names its settings and relaxations, and takes --layers/--channels only if it has them."""
    from ..spaces import get_space

    space = get_space(c.space)  # unknown → BadInputError with the closest name
    for name in ("setting", "latency_setting"):
        value = getattr(c, name)
        if value is not None:
            _check(value in space.settings, name, value, f"space {space.name!r} has settings {', '.join(space.settings)}")
    _check(c.relax in space.relaxations, "relax", c.relax, f"space {space.name!r} relaxes with {', '.join(space.relaxations)}")
    _check(math.isfinite(c.gumbel_temperature) and c.gumbel_temperature > 0, "gumbel_temperature",
           c.gumbel_temperature, "use a positive finite temperature")
    _check(math.isfinite(c.gumbel_decay) and 0 < c.gumbel_decay <= 1, "gumbel_decay", c.gumbel_decay,
           "use a factor in (0, 1]")
    if c.layers is not None or c.channels is not None:
        space.search_geometry(16, 1, 2, c.setting, c.layers, c.channels)  # mbconv spaces refuse them in one line
    _check(isinstance(c.partial_channels, int) and not isinstance(c.partial_channels, bool) and c.partial_channels >= 1,
           "partial_channels", c.partial_channels, "use 1 (off) or K >= 2, e.g. 4 (PC-DARTS)")
    _check(isinstance(c.edge_norm, bool), "edge_norm", c.edge_norm, "use true or false")
    for name, used in (("partial_channels", c.partial_channels != 1), ("edge_norm", c.edge_norm)):
        _check(not used or name in space.supernet_options, name, getattr(c, name),
               f"space {space.name!r} has no such supernet option (PC-DARTS options apply to the cell spaces darts, nb201)")
    _check(isinstance(c.arch_warmup_epochs, int) and c.arch_warmup_epochs >= 0, "arch_warmup_epochs",
           c.arch_warmup_epochs, "use a non-negative number of epochs")
    _check(c.teachers_from in ("snapshots", "cache"), "teachers_from", c.teachers_from, "use snapshots or cache")
    _check(not (c.teachers_from == "cache" and c.distill_arch), "teachers_from", c.teachers_from,
           "cached teachers record weight-train samples only; use snapshots with distill_arch")


def _validate_hardware(c: SearchConfig) -> None:
    """Budgets, penalty form and where latency comes from (a latency budget needs a target or a table)."""
    _check(c.penalty in ("add", "mul", "budget"), "penalty", c.penalty, "use add, mul or budget")
    for name in ("latency_budget", "flops_budget", "params_budget"):
        value = getattr(c, name)
        if value is not None:
            _check(math.isfinite(value) and value > 0, name, value, "use a positive number or leave it unset")
    _check(math.isfinite(c.penalty_weight) and c.penalty_weight >= 0, "penalty_weight", c.penalty_weight,
           "use 0 or a positive finite number")
    _check(math.isfinite(c.penalty_beta) and c.penalty_beta > 0, "penalty_beta", c.penalty_beta,
           "use a positive finite number")
    _check(c.penalty_warmup_epochs >= 0, "penalty_warmup_epochs", c.penalty_warmup_epochs, "use 0 or more epochs")
    _check(0.0 <= c.budget_margin < 1.0, "budget_margin", c.budget_margin, "use a fraction in [0, 1), e.g. 0.05")
    if c.latency_budget is not None and c.target is None and c.lut is None:
        raise BadInputError("search config: latency_budget needs a latency table; pass --target NAME "
                            "(see `sdnas lut list`) or --lut FILE, or use --flops-budget instead")
    if c.target is not None:
        from ..hw.targets import get_target

        get_target(c.target)  # unknown name → BadInputError with the closest one


def search_config_from_mapping(data: Any, source: str) -> SearchConfig:
    """Build a SearchConfig from the ``search:`` mapping, rejecting unknown keys and bad values."""
    if data is None:
        return SearchConfig()
    if not isinstance(data, dict):
        raise BadInputError(f"{source}: expected a mapping of search settings, got {type(data).__name__}")
    return from_mapping(SearchConfig, data, source)


def load_search_config(path: str | Path) -> SearchConfig:
    """Read the ``search:`` section of a recipe YAML; other sections belong to other commands."""
    from ..recipe_sections import read_sections

    return search_config_from_mapping(read_sections(Path(path)).get("search"), f"{path} [search]")


def supernet_options(c: SearchConfig) -> dict[str, Any]:
    """The PC-DARTS options for ``Space.build_supernet`` (only those that are on: other spaces take none)."""
    options: dict[str, Any] = {}
    if c.partial_channels != 1:
        options["partial_channels"] = c.partial_channels
    if c.edge_norm:
        options["edge_norm"] = True
    return options


def changed_keys(saved: Any, config: SearchConfig) -> list[str]:
    """Keys whose value in ``config`` differs from a saved resolved config (a dict from JSON)."""
    current = to_dict(config)
    if not isinstance(saved, dict):
        return sorted(current)
    as_list = lambda v: list(v) if isinstance(v, (tuple, list)) else v  # noqa: E731  (JSON turns tuples into lists)
    defaults = to_dict(SearchConfig())  # a key added after the run was saved is unchanged if it keeps its default
    return [k for k, v in current.items()
            if as_list(saved.get(k, defaults.get(k))) != as_list(v)]


def check_resume_config(config: SearchConfig, out_dir: str | Path) -> dict[str, Any]:
    """The run's saved ``config.json``; BadInputError if ``config`` changes the supernet or its data."""
    path = Path(out_dir) / "config.json"
    if not path.is_file():
        raise BadInputError(f"{out_dir}: nothing to resume (no config.json); start a new run without --resume")
    saved = load_json(path, "run config")
    if not isinstance(saved, dict):
        raise BadInputError(f"{path}: not a search config (expected a mapping); start a new run without --resume")
    changed = [k for k in changed_keys(saved, config) if k in STRUCTURAL_KEYS]
    if changed:
        detail = ", ".join(f"{k} {saved.get(k)!r} -> {getattr(config, k)!r}" for k in changed)
        raise BadInputError(f"cannot resume {out_dir} with a different {detail}; keep the run's values or start a new run")
    return saved
