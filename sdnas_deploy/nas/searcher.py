"""The SD-DARTS search loop: alternate α steps (arch-val half) and weight steps (weight-train half).

Works on any registered space (``spaces.SPACES``): the supernet, derive, discretize and the cost model come
from the space; α is a set of labelled tensors. Run directory (``out_dir``): ``config.json`` (resolved config,
at start), ``checkpoint.pt`` (after each epoch: model + α, both optimizers, scheduler, scalers, teachers, RNG,
history), ``genotype.json`` (the currently derived architecture, naming its space), ``alpha_history.json``
(softmax(α) per label per epoch), ``report.json`` (per-epoch
metrics, final metrics, timing, device). All writes are atomic; a NaN loss raises before anything
of that epoch is written, so the last good checkpoint survives.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
import torch.nn.functional as F
from torch import nn

from .. import data as datasets
from ..checkpoint import load_checkpoint, rng_state, save_checkpoint, seed_everything, set_rng_state
from ..config_utils import to_dict
from ..device import DevicePolicy, grad_scaler, make_policy
from ..errors import BadInputError
from ..io_utils import atomic_write_json
from ..progress import Progress, log
from ..spaces import get_space
from .architect import Architect
from .config import SearchConfig, changed_keys, check_resume_config
from .distill import VotingTeachers, distill_loss, upcast
from .penalty import HardwareCosts, log_fields
from .sharpness import dominant_eigenvalue, preserved_state

CHECKPOINT_FORMAT = "sdnas-search/1"
BN_RECALIBRATION_BATCHES = 4  # ours: weight-train batches that re-estimate BN statistics before each evaluation
VAL_LOADER_SEED_OFFSET = 7919  # the arch-val half is shuffled by its own stream, independent of the train half


def _task_loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Cross-entropy in fp32 (logits may come out of autocast in bf16/fp16)."""
    return F.cross_entropy(upcast(logits), y)


class _Timing:
    """Step-time sums, split by whether distillation ran, plus the teachers' share."""

    def __init__(self) -> None:
        self.sums = {"plain_ms": 0.0, "plain_steps": 0, "distill_ms": 0.0, "distill_steps": 0, "teacher_ms": 0.0}

    def add(self, step_ms: float, teacher_ms: float, distilled: bool) -> None:
        key = "distill" if distilled else "plain"
        self.sums[f"{key}_ms"] += step_ms
        self.sums[f"{key}_steps"] += 1
        self.sums["teacher_ms"] += teacher_ms

    def summary(self) -> dict[str, float | None]:
        s = self.sums
        mean = lambda total, n: total / n if n else None  # noqa: E731
        return {
            "mean_step_ms_plain": mean(s["plain_ms"], s["plain_steps"]),
            "mean_step_ms_distill": mean(s["distill_ms"], s["distill_steps"]),
            "teacher_ms": mean(s["teacher_ms"], s["distill_steps"]),
            "steps_plain": s["plain_steps"],
            "steps_distill": s["distill_steps"],
        }


class SearchRun:
    """One search in ``out_dir``: holds the supernet, optimizers, teachers and history."""

    def __init__(self, config: SearchConfig, out_dir: Path, show_progress: bool = True) -> None:
        self.config = config
        self.out_dir = Path(out_dir)
        self.show_progress = show_progress
        self.policy: DevicePolicy = make_policy(config.device, config.amp, config.channels_last)
        seed_everything(config.seed)
        self.info = datasets.dataset_info(config.dataset, config.data_dir, image_size=config.image_size)
        train_set = datasets.load_split(config.dataset, "train", config.data_dir, limit=config.limit,
                                        image_size=config.image_size)
        self.train_half, self.val_half = datasets.search_halves(train_set, config.seed, config.train_portion)
        self.test_set = datasets.load_split(config.dataset, "test", config.data_dir, limit=config.limit,
                                            image_size=config.image_size)
        self.space = get_space(config.space)
        self.geometry = self.space.search_geometry(self.info.image_size, self.info.in_channels, self.info.num_classes,
                                                   config.setting, config.layers, config.channels)
        model = self.space.build_supernet(self.geometry)
        model.relax = config.relax
        memory_format = torch.channels_last if self.policy.channels_last else torch.preserve_format
        self.model: nn.Module = model.to(self.policy.device, memory_format=memory_format)
        self.weights = list(self.model.weight_parameters())
        self.w_optimizer = torch.optim.SGD(
            self.weights, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay
        )
        self.scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
            self.w_optimizer, T_max=config.epochs, eta_min=config.lr_min
        )
        self.scaler = grad_scaler(self.policy)
        self.architect = Architect(
            self.model, config.arch_lr, config.arch_betas, config.arch_weight_decay, unrolled=config.unrolled,
            network_momentum=config.momentum, network_weight_decay=config.weight_decay,
            autocast=self.policy.autocast, scaler=grad_scaler(self.policy), channels_last=self.policy.channels_last,
        )
        self.costs = HardwareCosts(config, self.info, model.arch_labels())  # penalties on α + predicted cost
        self.teachers = VotingTeachers(config.teachers, config.teacher_interval, config.vote, config.temperature)
        self.epoch = 0  # next epoch to run (0-based)
        self.epochs: list[dict[str, Any]] = []
        self.alpha_history: list[dict[str, Any]] = []
        self.timing = _Timing()

    # ---- data ---------------------------------------------------------------------------------
    def _to_device(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = x.to(self.policy.device, non_blocking=True)
        if self.policy.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x, y.to(self.policy.device, non_blocking=True)

    def _cycle(self, dataset: Any, seed: int, epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Endless batches of ``dataset``, reshuffled deterministically from (seed, epoch)."""
        loader = datasets.make_loader(dataset, self.config.batch_size, shuffle=True, seed=seed, epoch=epoch)
        while True:
            for x, y in loader:
                yield self._to_device(x, torch.as_tensor(y))

    def _eval_batches(self, dataset: Any) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Fixed-order batches, capped at ``steps_per_epoch`` for quick runs."""
        loader = datasets.make_loader(dataset, self.config.batch_size, shuffle=False, seed=0)
        for i, (x, y) in enumerate(loader):
            if self.config.steps_per_epoch is not None and i >= self.config.steps_per_epoch:
                break
            yield self._to_device(x, torch.as_tensor(y))

    # ---- one epoch ----------------------------------------------------------------------------
    def _distilling(self, epoch: int) -> bool:
        c = self.config
        return c.distill == "sd" and epoch >= c.distill_warmup_epochs and len(self.teachers) > 0

    def _sync(self) -> None:
        if self.policy.device.type == "cuda":
            torch.cuda.synchronize(self.policy.device)

    def _teacher_probs(self, x: torch.Tensor, clock: list[float]) -> torch.Tensor:
        """Voted teacher probabilities for ``x``; adds the (synchronized) time spent to ``clock[0]``."""
        self._sync()
        start = time.perf_counter()
        probs = self.teachers.teacher_probs(x)
        self._sync()
        clock[0] += (time.perf_counter() - start) * 1000.0
        return probs

    def _nan(self, epoch: int, step: int) -> BadInputError:
        kept = (f"the last good checkpoint is kept in {self.out_dir}" if (self.out_dir / "checkpoint.pt").is_file()
                else f"no checkpoint was written yet in {self.out_dir}")
        return BadInputError(
            f"loss became NaN at epoch {epoch + 1} step {step + 1}; lower --lr/--arch-lr or use --amp off; {kept}"
        )

    def _search_step(self, batch: tuple, val_batch: tuple, lr: float, distilling: bool,
                     epoch: int) -> tuple[float, float, int, float]:
        """α step then weight step; returns (weight loss, α loss, correct count, teacher ms)."""
        c = self.config
        (x, y), (x_val, y_val) = batch, val_batch
        clock = [0.0]
        extra: Callable[[torch.Tensor], torch.Tensor] | None = None
        if distilling and c.distill_arch:
            with self.policy.autocast():
                val_probs = self._teacher_probs(x_val, clock)
            extra = lambda logits: c.distill_weight * distill_loss(logits, val_probs, c.temperature)  # noqa: E731
        arch_loss = self.architect.step(x, y, x_val, y_val, lr, self.w_optimizer, extra, self.costs.hook(epoch))
        self.w_optimizer.zero_grad(set_to_none=True)
        with self.policy.autocast():
            logits = self.model(x)
            loss = _task_loss(logits, y)
            if distilling:
                probs = self._teacher_probs(x, clock)
                loss = loss + c.distill_weight * distill_loss(logits, probs, c.temperature)
        loss_value = float(loss.detach())
        if not (math.isfinite(loss_value) and math.isfinite(arch_loss)):
            return math.nan, math.nan, 0, clock[0]
        # inputs=weights: the weight loss must not leave gradients on α (the architect owns those).
        self.scaler.scale(loss).backward(inputs=self.weights)
        if c.grad_clip > 0:
            self.scaler.unscale_(self.w_optimizer)
            nn.utils.clip_grad_norm_(self.weights, c.grad_clip)
        self.scaler.step(self.w_optimizer)
        self.scaler.update()
        if c.distill == "sd":
            self.teachers.observe_step(self.model)
        correct = int((logits.detach().argmax(dim=1) == y).sum())
        return loss_value, arch_loss, correct, clock[0]

    def train_epoch(self, epoch: int) -> dict[str, Any]:
        """Run the steps of one epoch; returns train loss/acc and timing of this epoch."""
        c = self.config
        self.model.train()
        self.model.temperature = c.gumbel_temperature * c.gumbel_decay ** epoch  # used when relax == gumbel
        lr = float(self.w_optimizer.param_groups[0]["lr"])
        distilled_steps = 0
        n_batches = math.ceil(len(self.train_half) / c.batch_size)
        steps = min(n_batches, c.steps_per_epoch) if c.steps_per_epoch else n_batches
        train_batches = self._cycle(self.train_half, c.seed, epoch)
        val_batches = self._cycle(self.val_half, c.seed + VAL_LOADER_SEED_OFFSET, epoch)
        loss_sum = arch_sum = 0.0
        correct = seen = 0
        step_ms = teacher_ms = 0.0
        with Progress(steps, f"search epoch {epoch + 1}/{c.epochs}", self.show_progress) as bar:
            for step in range(steps):
                batch = next(train_batches)
                self._sync()
                start = time.perf_counter()
                distilling = self._distilling(epoch)  # per step: the first teacher may appear mid-epoch
                loss, arch_loss, hits, t_ms = self._search_step(batch, next(val_batches), lr, distilling, epoch)
                if math.isnan(loss):
                    raise self._nan(epoch, step)
                self._sync()
                ms = (time.perf_counter() - start) * 1000.0
                self.timing.add(ms, t_ms, distilling)
                distilled_steps += int(distilling)
                step_ms, teacher_ms = step_ms + ms, teacher_ms + t_ms
                n = batch[1].numel()
                loss_sum, arch_sum, correct, seen = loss_sum + loss * n, arch_sum + arch_loss, correct + hits, seen + n
                bar.advance(loss=loss_sum / seen, acc=correct / seen)
        if not all(bool(torch.isfinite(p).all()) for p in self.model.parameters()):
            raise self._nan(epoch, steps - 1)  # the last step left non-finite weights or α
        self.scheduler.step()
        return {
            "lr": lr, "train_loss": loss_sum / seen, "train_acc": correct / seen, "arch_loss": arch_sum / steps,
            "distilled_steps": distilled_steps, "teachers": len(self.teachers),
            "step_ms": step_ms / steps, "teacher_ms": teacher_ms / steps,
        }

    # ---- evaluation ---------------------------------------------------------------------------
    @torch.no_grad()
    def accuracy(self, dataset: Any, weights: dict[str, torch.Tensor] | None = None) -> float:
        """Top-1 accuracy (fraction) of the supernet, or of the derived architecture when ``weights`` are its
        one-hot masks (by α label).

        BN running statistics are first re-estimated on weight-train batches *for the network being
        evaluated*, then restored: the supernet's own statistics describe the α mixture, so the derived
        cell evaluated with them measures BN mismatch (near chance), not the architecture.
        """
        forward = lambda x: self.model(x, weights)  # noqa: E731
        correct = seen = 0
        with preserved_state(self.model), self.policy.autocast():
            for module in self.model.modules():
                if isinstance(module, nn.modules.batchnorm._BatchNorm):
                    module.reset_running_stats()
                    module.momentum = None  # cumulative average over the recalibration batches
            self.model.train()
            for i, (x, _) in enumerate(self._eval_batches(self.train_half)):
                if i == BN_RECALIBRATION_BATCHES:
                    break
                forward(x)
            self.model.eval()
            for x, y in self._eval_batches(dataset):
                correct += int((forward(x).argmax(dim=1) == y).sum())
                seen += y.numel()
        return correct / max(seen, 1)

    def sharpness(self) -> float:
        """Dominant Hessian eigenvalue of the arch-val loss w.r.t. α (BN in batch-statistics mode, fp32)."""
        c = self.config
        batches = []
        for batch in self._eval_batches(self.val_half):
            batches.append(batch)
            if len(batches) == c.sharpness_batches:
                break
        loss_fn = lambda model, b: _task_loss(model(b[0]), b[1])  # noqa: E731
        self.model.train()
        return dominant_eigenvalue(self.model, loss_fn, batches, iters=c.sharpness_iters, seed=c.seed)

    def evaluate_epoch(self, epoch: int, final: bool) -> dict[str, Any]:
        """Supernet and discretized accuracy, derived architecture and its summary, optional sharpness."""
        genotype = self.model.derive()
        masks = {k: m.to(self.policy.device) for k, m in self.space.discretize(genotype, self.model).items()}
        record: dict[str, Any] = {
            "supernet_val_acc": self.accuracy(self.val_half),
            "discretized_val_acc": self.accuracy(self.val_half, masks),
        }
        record["gap"] = record["supernet_val_acc"] - record["discretized_val_acc"]
        record["genotype"] = self.space.arch_to_dict(genotype)
        record["arch_string"] = self.space.arch_to_string(genotype)
        record.update(self.space.summary(genotype))
        record.update(self.costs.metrics(genotype, list(self.model.arch_parameters()), final))
        c = self.config
        due = c.sharpness and (final or (epoch + 1) % c.sharpness_every == 0)
        record["dominant_eigenvalue"] = self.sharpness() if due else None
        if final:  # the test split is for information only: never used to choose anything
            record["supernet_test_acc"] = self.accuracy(self.test_set)
            record["discretized_test_acc"] = self.accuracy(self.test_set, masks)
        return record

    # ---- files --------------------------------------------------------------------------------
    def report(self) -> dict[str, Any]:
        last = self.epochs[-1] if self.epochs else {}
        final_keys = ("genotype", "arch_string", *self.space.summary(self.model.derive()), "supernet_val_acc", "discretized_val_acc", "gap",
                      "dominant_eigenvalue", "supernet_test_acc", "discretized_test_acc", "predicted_latency_ms",
                      "expected_latency_ms", "predicted_mmac", "expected_mmac", "latency_budget_met", "flops_budget_met",
                      "measured_latency_ms")
        return {
            "kind": "search",
            "space": self.space.name,
            "search_geometry": self.geometry.to_dict(),
            "status": "complete" if self.epoch >= self.config.epochs else "running",
            "epochs_done": self.epoch,
            "config": to_dict(self.config),
            "device": self.policy.describe(),
            "dataset": self.info.to_dict(),
            "sizes": {"weight_train": len(self.train_half), "arch_val": len(self.val_half), "test": len(self.test_set)},
            "epochs": self.epochs,
            "final": {k: last.get(k) for k in final_keys},
            "timing": self.timing.summary(),
        }

    def _alpha_record(self, epoch: int) -> dict[str, Any]:
        with torch.no_grad():
            probs = {label: p.detach().float().cpu().tolist() for label, p in self.model.probabilities_all().items()}
        return {"epoch": epoch + 1, **probs}

    def save(self) -> None:
        """Write the architecture, α history, report, then the checkpoint (each atomically)."""
        self.space.save_arch(self.out_dir / "genotype.json", self.model.derive())
        atomic_write_json(self.out_dir / "alpha_history.json", self.alpha_history)
        atomic_write_json(self.out_dir / "report.json", self.report())
        save_checkpoint(self.out_dir / "checkpoint.pt", {
            "format": CHECKPOINT_FORMAT, "epoch": self.epoch, "model": self.model.state_dict(),
            "w_optimizer": self.w_optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(), "architect": self.architect.state_dict(),
            "teachers": self.teachers.state_dict(), "rng": rng_state(), "config": to_dict(self.config),
            "history": {"epochs": self.epochs, "alphas": self.alpha_history, "timing": dict(self.timing.sums)},
        })

    def restore(self) -> None:
        """Continue from ``checkpoint.pt``: same state as right after its epoch in an uninterrupted run."""
        path = self.out_dir / "checkpoint.pt"
        if not path.is_file():
            raise BadInputError(f"{self.out_dir}: no checkpoint.pt to resume from; start again without --resume")
        state = load_checkpoint(path)  # CPU: RNG states must stay CPU tensors; load_state_dict moves the rest
        if state.get("format") != CHECKPOINT_FORMAT:
            raise BadInputError(f"{path}: not a search checkpoint ({state.get('format')!r}); start without --resume")
        try:
            self.model.load_state_dict(state["model"])
            self.w_optimizer.load_state_dict(state["w_optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
            if state["scaler"]:
                self.scaler.load_state_dict(state["scaler"])
            self.architect.load_state_dict(state["architect"])
            self.teachers.load_state_dict(state["teachers"], self.model)
            self.epoch = int(state["epoch"])
            self.epochs = list(state["history"]["epochs"])
            self.alpha_history = list(state["history"]["alphas"])
            self.timing.sums.update(state["history"]["timing"])
            set_rng_state(state["rng"])
            self._apply_changed_settings(state["config"])
        except (KeyError, RuntimeError, ValueError) as exc:
            raise BadInputError(
                f"{path}: checkpoint does not match this search ({type(exc).__name__}); start without --resume"
            ) from None

    def _apply_changed_settings(self, saved: dict[str, Any]) -> None:
        """Settings changed since the checkpoint (lr, epochs, ...) override the optimizer state it restored."""
        c = self.config
        changed = changed_keys(saved, c)
        if not changed:
            return  # leave the restored state bit-identical: resume == uninterrupted run
        log(f"resuming with changed settings: {', '.join(changed)}")
        self.scheduler.base_lrs, self.scheduler.eta_min, self.scheduler.T_max = [c.lr], c.lr_min, c.epochs
        lr = c.lr_min + (c.lr - c.lr_min) * (1 + math.cos(math.pi * self.epoch / c.epochs)) / 2
        for group in self.w_optimizer.param_groups:
            group.update(lr=lr, momentum=c.momentum, weight_decay=c.weight_decay)
        for group in self.architect.optimizer.param_groups:
            group.update(lr=c.arch_lr, betas=c.arch_betas, weight_decay=c.arch_weight_decay)

    # ---- driver -------------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        c = self.config
        for epoch in range(self.epoch, c.epochs):
            started = time.perf_counter()
            record = {"epoch": epoch + 1, **self.train_epoch(epoch)}
            record.update(self.evaluate_epoch(epoch, final=epoch == c.epochs - 1))
            record["epoch_time_s"] = time.perf_counter() - started
            self.epochs.append(record)
            self.alpha_history.append(self._alpha_record(epoch))
            self.epoch = epoch + 1
            self.save()
            if self.show_progress:
                summary = " ".join(f"{k}={v}" for k, v in self.space.summary(self.model.derive()).items()
                                   if isinstance(v, (int, float)))
                log(f"search epoch {epoch + 1}/{c.epochs}: train_acc={record['train_acc']:.3f} "
                    f"val_acc={record['supernet_val_acc']:.3f} discretized={record['discretized_val_acc']:.3f} "
                    f"{summary} lr={record['lr']:.4g} "
                    f"step time {record['step_ms']:.0f} ms (teachers {record['teacher_ms']:.0f} ms) "
                    f"{record['epoch_time_s']:.1f}s {log_fields(record)}")
        report = self.report()
        atomic_write_json(self.out_dir / "report.json", report)
        return report


def run_search(config: SearchConfig, out_dir: Path | str, resume: bool = False, progress: bool = True) -> dict[str, Any]:
    """Run (or resume) a search in ``out_dir`` and return the final report (also in ``report.json``)."""
    out_dir = Path(out_dir)
    if resume:
        check_resume_config(config, out_dir)
    elif (out_dir / "checkpoint.pt").is_file():  # never overwrite an earlier run's results
        raise BadInputError(f"{out_dir} already holds a search; pass --resume to continue it or choose another --out")
    run = SearchRun(config, out_dir, show_progress=progress)
    if resume:
        run.restore()
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out_dir / "config.json", to_dict(config))
    if progress:
        log(f"search on {run.policy.describe()}: {config.space} space, {config.dataset}, supernet "
            f"{run.geometry.to_dict()}, {config.epochs} epochs, distill={config.distill}, relax={config.relax}; "
            f"{run.costs.describe()}" + (f", resuming at epoch {run.epoch + 1}" if resume else ""))
    return run.run()
