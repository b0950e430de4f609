"""Retrain a derived network from scratch (``sdnas train``), DARTS-style, resumable to the bit.

Per epoch: SGD (momentum, no Nesterov) over the training split with the main + weighted auxiliary
loss, label smoothing, gradient clipping, AMP and the drop-path ramp; then evaluation on the test
split (eval mode, no auxiliary head). Each epoch leaves a complete run directory:

- ``last.safetensors`` / ``best.safetensors`` (best test top-1): weights + metadata (training.weights)
- ``checkpoint.pt``: model, optimizer, scheduler, grad scaler, RNG, best, history (checkpoint.py)
- ``report.json``: per-epoch history and final best/last accuracy, parameters, multiply-adds
- ``config.json`` (the resolved TrainConfig) and ``genotype.json``, written once at the start.

All files are written atomically, so an interrupted run keeps the last good epoch and
``resume=True`` continues exactly where it stopped (same weights as an uninterrupted run).
"""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..checkpoint import load_checkpoint, rng_state, save_checkpoint, seed_everything, set_rng_state
from ..config_utils import to_dict
from ..device import DevicePolicy, eval_mode, grad_scaler, make_policy
from ..errors import BadInputError
from ..io_utils import atomic_write_json, remove_stale_temp_files
from ..parallel import (Parallel, current as current_parallel, device_for, setup as setup_parallel, with_sync_batchnorm,
                        wrap_ddp)
from ..progress import Progress, log
from ..scalars import Scalars
from .config import TrainConfig, resolve
from .losses import distill_loss, upcast
from .schedule import current_lr, drop_path_at, make_scheduler
from .weights import NetworkMeta, save_weights

CHECKPOINT_FORMAT = "sdnas-train-checkpoint/1"
# Fields that may differ between a run and its resumption: where it runs, not what it computes.
RESUME_FREE_FIELDS = {"device", "amp", "channels_last", "eval_batch_size", "sync_bn", "tensorboard"}


def _split_outputs(outputs: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(logits, auxiliary logits or None) from a network's forward result."""
    if isinstance(outputs, (tuple, list)):
        return outputs[0], outputs[1]
    return outputs, None


def _to_device(images: torch.Tensor, policy: DevicePolicy) -> torch.Tensor:
    images = images.to(policy.device, non_blocking=True)
    if policy.channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    return images


def _correct_topk(logits: torch.Tensor, labels: torch.Tensor, ks: tuple[int, ...]) -> list[int]:
    """Number of samples whose label is among the top-k predictions, for each k."""
    top = logits.topk(max(ks), dim=1).indices
    hits = top.eq(labels.unsqueeze(1))
    return [int(hits[:, :k].any(dim=1).sum().item()) for k in ks]


def train_one_epoch(
    model: nn.Module,
    loader: torch.utils.data.DataLoader,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    policy: DevicePolicy,
    config: TrainConfig,
    epoch: int,
    progress: bool,
    teacher: nn.Module | None = None,
    par: Parallel | None = None,
) -> dict[str, float]:
    """One pass over (at most ``steps_per_epoch`` batches of) the training loader; mean loss and top-1 (fraction).
    With a ``teacher`` the loss is ``(1 - w)·CE + w·T²·KL`` against its softened logits (``kd_weight``, ``kd_temperature``).
    Under torchrun (``par``) each rank runs its shard; loss and top-1 are over all ranks."""
    par = par or Parallel()
    criterion = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing or 0.0)
    steps = len(loader) if config.steps_per_epoch is None else min(len(loader), config.steps_per_epoch)
    model.train()
    loss_sum, correct, seen = 0.0, 0, 0
    with Progress(steps, f"train epoch {epoch + 1}/{config.epochs}", enabled=progress) as bar:
        for step, (images, labels) in enumerate(loader):
            if step >= steps:
                break
            images, labels = _to_device(images, policy), labels.to(policy.device, non_blocking=True)
            optimizer.zero_grad(set_to_none=True)
            with policy.autocast():
                logits, logits_aux = _split_outputs(model(images))
            loss = criterion(logits.float(), labels)
            if teacher is not None:
                with torch.no_grad(), policy.autocast():
                    soft = torch.softmax(upcast(teacher(images)) / config.kd_temperature, dim=1)
                loss = (1 - config.kd_weight) * loss + config.kd_weight * distill_loss(logits, soft,
                                                                                       config.kd_temperature)
            if logits_aux is not None and config.auxiliary_weight > 0:
                loss = loss + config.auxiliary_weight * criterion(logits_aux.float(), labels)
            value = float(loss.item())
            if par.any(not math.isfinite(value)):  # every rank stops at the same step
                raise BadInputError(
                    f"training loss became {value} at epoch {epoch + 1}, step {step + 1}; lower --lr, keep "
                    f"grad_clip > 0 or use --amp off, then rerun"
                )
            scaler.scale(loss).backward()
            if config.grad_clip > 0:
                scaler.unscale_(optimizer)
                nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            scaler.step(optimizer)
            scaler.update()
            batch = labels.size(0)
            loss_sum += value * batch
            correct += _correct_topk(logits.detach(), labels, (1,))[0]
            seen += batch
            bar.advance(loss=loss_sum / seen, acc=correct / seen)
    loss_sum, correct, seen = par.sum([loss_sum, correct, seen])
    return {"train_loss": loss_sum / max(seen, 1), "train_top1": correct / max(seen, 1)}


@torch.no_grad()
def evaluate(model: nn.Module, loader: torch.utils.data.DataLoader, policy: DevicePolicy, num_classes: int,
             par: Parallel | None = None) -> dict[str, Any]:
    """Test loss, top-1 and top-5 fractions (top-5 None under 5 classes) in eval mode, without the auxiliary head.
    Under torchrun each rank scores its shard of ``loader``; the fractions are over all ranks."""
    criterion = nn.CrossEntropyLoss(reduction="sum")
    ks = (1, 5) if num_classes >= 5 else (1,)
    loss_sum, hits, seen = 0.0, [0] * len(ks), 0
    with eval_mode(model):
        for images, labels in loader:
            images, labels = _to_device(images, policy), labels.to(policy.device, non_blocking=True)
            with policy.autocast():
                logits, _ = _split_outputs(model(images))
            logits = logits.float()
            loss_sum += float(criterion(logits, labels).item())
            hits = [h + c for h, c in zip(hits, _correct_topk(logits, labels, ks))]
            seen += labels.size(0)
    loss_sum, seen, *hits = (par or Parallel()).sum([loss_sum, seen, *hits])
    top = [h / max(seen, 1) for h in hits]
    return {"test_loss": loss_sum / max(seen, 1), "test_top1": top[0], "test_top5": top[1] if len(top) > 1 else None}


def _complexity(model: nn.Module, input_shape: tuple[int, ...]) -> dict[str, Any]:
    """Parameters (aux head excluded) and conv + linear multiply-adds of the deployable network."""
    from ..spaces.complexity import count_macs, count_parameters

    params = int(count_parameters(model))
    with eval_mode(model):
        macs = count_macs(model, input_shape)
    return {"params": params, "params_m": params / 1e6, "macs": int(macs.macs), "macs_m": macs.macs / 1e6,
            "fvcore_total": int(macs.fvcore_total), "skipped_ops": dict(macs.skipped_ops)}


def _input_size(config: TrainConfig, space: Any) -> int | None:
    """Image side to ask the dataset for: ``image_size``, else the setting's (mobile/imagenet 224) where the
    dataset can be resized (a fixed-size dataset refuses an explicit size in one line)."""
    from ..data import DATASETS
    from ..registry import lookup

    if config.image_size is not None:
        return config.image_size
    if not lookup(DATASETS, config.dataset, "dataset").resizable:
        return None  # fixed-size datasets (digits, CIFAR) are trained at their own size
    return space.setting(config.setting).input_size


def load_teacher(spec: str, info: Any) -> nn.Module:
    """The frozen network to distill from (``TrainConfig.teacher``); another class count, channel count or input
    size than the data is refused in one line."""
    from .weights import load_network, resolve_weights_path

    path = resolve_weights_path(spec)
    model, meta = load_network(path)
    theirs = (meta.num_classes, meta.in_channels, meta.image_size)
    ours = (info.num_classes, info.in_channels, info.image_size)
    if theirs != ours:
        raise BadInputError(f"teacher {path}: {meta.num_classes} classes, {meta.in_channels} channels, "
                            f"{meta.image_size}px, but the data has {info.num_classes}, {info.in_channels}, "
                            f"{info.image_size}px; use a teacher trained on this dataset at this size")
    for p in model.parameters():
        p.requires_grad_(False)
    return model.eval()


class _TrainRun:
    """The live state of one training run and the files it keeps up to date."""

    def __init__(self, space: Any, genotype: Any, config: TrainConfig, out_dir: Path, progress: bool) -> None:
        from ..data import dataset_info, load_split

        self.par = current_parallel()
        self.space, self.genotype, self.config, self.out_dir = space, genotype, config, out_dir
        self.progress = progress and self.par.is_main  # torchrun: rank 0 logs and writes
        self.policy = make_policy(device_for(config.device, self.par), config.amp, config.channels_last)
        size = _input_size(config, space)
        self.info = dataset_info(config.dataset, config.data_dir, image_size=size)
        self.train_set = load_split(config.dataset, "train", config.data_dir, augment=True, cutout=config.cutout or 0,
                                    limit=config.limit, image_size=size)
        self.test_set = load_split(config.dataset, "test", config.data_dir, augment=False, limit=config.limit,
                                   image_size=size)
        seed_everything(config.seed)
        self.geometry = space.geometry(config.setting, input_size=self.info.image_size,
                                       in_channels=self.info.in_channels, num_classes=self.info.num_classes,
                                       layers=config.layers, channels=config.channels)
        self.model = with_sync_batchnorm(space.build_network(genotype, self.geometry, auxiliary=bool(config.auxiliary)),
                                         self.par, config.sync_bn)
        self.complexity = _complexity(self.model, (1, *self.info.input_shape))
        self.model.to(self.policy.device)
        if self.policy.channels_last:
            self.model.to(memory_format=torch.channels_last)
        unused = bool(config.auxiliary) and not (config.auxiliary_weight or 0) > 0  # aux head built, unused
        self.train_model = wrap_ddp(self.model, self.par, self.policy.device, find_unused_parameters=unused)
        self.optimizer = torch.optim.SGD(
            self.model.parameters(), lr=config.lr, momentum=config.momentum,
            weight_decay=config.weight_decay, nesterov=False,
        )
        self.scheduler = make_scheduler(self.optimizer, config)
        self.scaler = grad_scaler(self.policy)
        self.epoch = 0  # epochs completed
        self.history: list[dict[str, Any]] = []
        self.best: dict[str, Any] | None = None
        self.teacher = None if config.teacher is None else load_teacher(config.teacher, self.info).to(self.policy.device)
        self.scalars = Scalars(config.tensorboard, enabled=self.par.is_main)  # optional TensorBoard

    # --- checkpointing -------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return {
            "format": CHECKPOINT_FORMAT, "epoch": self.epoch, "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(), "best": self.best, "history": self.history, "rng": rng_state(),
            "config": to_dict(self.config), "genotype": self.space.arch_to_dict(self.genotype),
        }

    def restore(self, path: Path) -> None:
        """Continue from ``checkpoint.pt`` after checking it belongs to this genotype and config."""
        state = load_checkpoint(path, map_location=self.policy.device)
        if state.get("format") != CHECKPOINT_FORMAT:
            raise BadInputError(f"{path}: not an sdnas training checkpoint; use another --out or drop --resume")
        if not self._same_arch(state.get("genotype")):
            raise BadInputError(f"{path}: checkpoint was trained on a different genotype; use another --out or drop --resume")
        saved, now = state.get("config", {}), to_dict(self.config)
        changed = sorted(k for k in now if k not in RESUME_FREE_FIELDS and saved.get(k) != now[k])
        if changed:
            key = changed[0]
            raise BadInputError(
                f"{path}: cannot resume with {key}={now[key]!r} (checkpoint has {saved.get(key)!r}); "
                "resume with the original settings or start a new run directory"
            )
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        self.epoch, self.best, self.history = int(state["epoch"]), state["best"], list(state["history"])
        set_rng_state(state["rng"])

    def _same_arch(self, saved: Any) -> bool:
        """Whether a checkpoint's architecture JSON is this run's (older DARTS checkpoints name no space)."""
        try:
            return self.space.arch_from_dict(saved, "checkpoint") == self.genotype
        except BadInputError:
            return False

    # --- one epoch ------------------------------------------------------------------------------
    def run_epoch(self) -> dict[str, Any]:
        from ..data import make_loader

        cfg, epoch = self.config, self.epoch
        started = time.perf_counter()
        drop_path = drop_path_at(epoch, cfg)
        if hasattr(self.model, "drop_path_prob"):
            self.model.drop_path_prob = drop_path
        lr = current_lr(self.optimizer)
        train_loader = make_loader(
            self.train_set, cfg.batch_size, shuffle=True, seed=cfg.seed,
            drop_last=len(self.train_set) >= cfg.batch_size * self.par.world_size, epoch=epoch, shard=self.par.shard,
        )
        record: dict[str, Any] = {"epoch": epoch + 1, "lr": lr, "drop_path_prob": drop_path}
        try:
            record.update(train_one_epoch(self.train_model, train_loader, self.optimizer, self.scaler, self.policy,
                                          cfg, epoch, self.progress, teacher=self.teacher, par=self.par))
        except BadInputError as exc:  # a non-finite loss: say what is kept
            raise BadInputError(f"{exc.message}; {self._kept()}") from None
        self.scheduler.step()
        test_loader = make_loader(self.test_set, cfg.eval_batch_size, shuffle=False, seed=cfg.seed, shard=self.par.shard)
        record.update(evaluate(self.model, test_loader, self.policy, self.info.num_classes, self.par))
        self._check_finite(record)
        record["time_s"] = time.perf_counter() - started
        self.scalars.add({f"epoch/{k}": v for k, v in record.items() if k != "epoch"}, epoch + 1)
        self.epoch += 1
        self.history.append(record)
        return record

    def _check_finite(self, record: dict[str, Any]) -> None:
        """A diverged epoch (non-finite test loss or weights) stops the run before anything of it is saved, so
        best/last keep the last finite epoch."""
        finite = math.isfinite(record["test_loss"]) and math.isfinite(record["train_loss"])
        if finite and all(bool(torch.isfinite(p).all()) for p in self.model.parameters()):
            return
        raise BadInputError(f"training diverged at epoch {record['epoch']} (test loss {record['test_loss']:.3g}); "
                            f"lower --lr (now {record['lr']:.3g}) and rerun; {self._kept()}")

    def _kept(self) -> str:
        """What a run stopped by divergence keeps: the files of its last finite epoch, or nothing."""
        if self.history:
            return f"best/last.safetensors keep epoch {self.history[-1]['epoch']}, the last finite one"
        return "nothing was saved"

    def meta(self, record: dict[str, Any]) -> NetworkMeta:
        info = self.info
        return NetworkMeta(
            genotype=self.space.arch_to_dict(self.genotype), setting=str(self.config.setting),
            num_classes=info.num_classes, in_channels=info.in_channels, image_size=info.image_size,
            layers=self.config.layers, channels=self.config.channels, dataset=info.name,
            mean=[float(v) for v in info.mean], std=[float(v) for v in info.std], epoch=int(record["epoch"]),
            test_top1=record["test_top1"], space=self.space.name,
        )

    def save_epoch(self, record: dict[str, Any]) -> None:
        """Weights first, then the checkpoint, then the report: the checkpoint is the authority on resume.
        Under torchrun rank 0 writes while the others wait."""
        improved = self.best is None or record["test_top1"] > self.best["top1"]
        if self.par.is_main:
            save_weights(self.out_dir / "last.safetensors", self.model, self.meta(record))
            if improved:
                save_weights(self.out_dir / "best.safetensors", self.model, self.meta(record))
        if improved:  # every rank tracks the best epoch (the checkpoint below records it)
            self.best = {"epoch": record["epoch"], "top1": record["test_top1"], "top5": record["test_top5"]}
        if self.par.is_main:
            save_checkpoint(self.out_dir / "checkpoint.pt", self.state())
            self.write_report()
        self.par.barrier()

    # --- report -------------------------------------------------------------------------------------
    def report(self) -> dict[str, Any]:
        last = self.history[-1] if self.history else {}
        best = self.best or {}
        finished = self.epoch >= int(self.config.epochs or 0)
        return {
            "kind": "train",
            "status": "finished" if finished else "running",
            "out_dir": str(self.out_dir),
            "device": self.policy.describe(),
            "space": self.space.name,
            "genotype": self.space.arch_to_dict(self.genotype),
            "geometry": self.geometry.to_dict(),
            "config": to_dict(self.config),
            "dataset": self.info.to_dict(),
            "epochs_done": self.epoch,
            "history": self.history,
            "complexity": self.complexity,
            "final": {
                "epochs": self.epoch,
                "best_epoch": best.get("epoch"), "best_top1": best.get("top1"), "best_top5": best.get("top5"),
                "last_top1": last.get("test_top1"), "last_top5": last.get("test_top5"),
                "params": self.complexity["params"], "params_m": self.complexity["params_m"],
                "macs": self.complexity["macs"], "macs_m": self.complexity["macs_m"],
                "train_time_s": sum(float(r["time_s"]) for r in self.history),
            },
            "parallel": self.par.describe(self.config.batch_size or 0),
            "files": {name: name for name in ("best.safetensors", "last.safetensors", "checkpoint.pt", "config.json", "genotype.json")},
        }

    def write_report(self) -> dict[str, Any]:
        report = self.report()
        if self.par.is_main:
            atomic_write_json(self.out_dir / "report.json", report)
        return report


def run_training(
    genotype: Any,
    config: TrainConfig,
    out_dir: Path | str,
    resume: bool = False,
    progress: bool = True,
    *,
    stop_after: int | None = None,
    space: Any = None,
) -> dict[str, Any]:
    """Train ``genotype``'s network per ``config`` into ``out_dir``; returns the report (also ``report.json``).

    ``resume=True`` continues from ``out_dir/checkpoint.pt`` (or starts fresh when there is none);
    without it an existing checkpoint is refused rather than overwritten. ``stop_after`` ends this
    call once that many epochs are complete (checkpointed), so a long run can be split into jobs.
    ``genotype`` is an architecture JSON (naming its space) or an architecture object of ``space``.
    """
    from ..spaces import as_arch

    impl, genotype = as_arch(genotype, space)
    par = setup_parallel(config.device)  # torchrun: join the process group (one process: nothing happens)
    progress = progress and par.is_main
    if config.setting is None:  # e.g. a 12-block FBNet architecture is the `small` layout's
        config = dataclasses.replace(config, setting=impl.setting_for(genotype))
    config = resolve(config, impl.name)
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise BadInputError(f"{out_dir}: exists and is not a directory; choose another output directory")
    checkpoint = out_dir / "checkpoint.pt"
    if checkpoint.exists() and not resume:
        raise BadInputError(f"{out_dir} already holds a training run; pass --resume to continue it or choose another --out")
    if stop_after is not None and stop_after < 1:
        raise BadInputError(f"stop_after={stop_after} is invalid; use a positive epoch count")
    run = _TrainRun(impl, genotype, config, out_dir, progress)
    if resume and checkpoint.exists():
        run.restore(checkpoint)
        if par.is_main:
            remove_stale_temp_files(out_dir)
        if progress:
            log(f"resuming {out_dir} after epoch {run.epoch}/{config.epochs}")
    elif resume and progress:
        log(f"no checkpoint in {out_dir}; starting from epoch 1")
    if par.is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_json(out_dir / "config.json", to_dict(config))
        impl.save_arch(out_dir / "genotype.json", genotype)
    par.barrier()
    if progress:
        log(f"training {impl.name} {config.setting} network ({run.complexity['params_m']:.3f}M params, "
            f"{run.complexity['macs_m']:.2f}M multiply-adds) on {config.dataset} — {run.policy.describe()}")
    end = int(config.epochs or 0) if stop_after is None else min(int(config.epochs or 0), stop_after)
    while run.epoch < end:
        record = run.run_epoch()
        run.save_epoch(record)
        if progress:
            top5 = f" top5={record['test_top5']:.2f}" if record["test_top5"] is not None else ""
            log(f"epoch {record['epoch']}/{config.epochs} lr={record['lr']:.4g} train_loss={record['train_loss']:.4f} "
                f"train_acc={record['train_top1']:.2f} test_top1={record['test_top1']:.2f}{top5} ({record['time_s']:.1f}s)")
    run.scalars.close()
    return run.write_report()
