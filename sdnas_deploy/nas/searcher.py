"""The search engine: the epoch loop, evaluation, reports, checkpoints and resume, for any space and method.

The method (``methods.METHODS``: ``sd-darts``, ``darts``) does the step — for both, an α step on the
arch-val half and a weight step on the weight-train half; this module owns everything around it.
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
from typing import Any

import torch
from torch import nn

from ..checkpoint import load_run_checkpoint, rng_state, save_checkpoint, seed_everything, set_rng_state
from ..config_utils import to_dict
from ..device import DevicePolicy, grad_scaler, make_policy
from ..errors import BadInputError
from ..io_utils import atomic_write_json, remove_stale_temp_files
from ..methods import SearchContext, get_method
from ..parallel import current as current_parallel, device_for, setup as setup_parallel, with_sync_batchnorm, wrap_ddp
from ..progress import Progress, log
from ..scalars import Scalars
from ..spaces import get_space
from .batches import SearchData
from .config import SearchConfig, changed_keys, check_resume_config, supernet_options
from .evaluation import accuracy, sharpness
from .penalty import HardwareCosts, log_fields

CHECKPOINT_FORMAT = "sdnas-search/1"


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
        self.par = current_parallel()
        self.show_progress = show_progress and self.par.is_main  # torchrun: rank 0 logs and writes
        self.policy: DevicePolicy = make_policy(device_for(config.device, self.par), config.amp, config.channels_last)
        seed_everything(config.seed)
        self.data = SearchData(config, self.policy, self.par)
        self.info = self.data.info
        self.space = get_space(config.space)
        self.geometry = self.space.search_geometry(self.info.image_size, self.info.in_channels, self.info.num_classes,
                                                   config.setting, config.layers, config.channels)
        model = self.space.build_supernet(self.geometry, **supernet_options(config))
        model.relax = config.relax
        model = with_sync_batchnorm(model, self.par, config.sync_bn)
        memory_format = torch.channels_last if self.policy.channels_last else torch.preserve_format
        self.model: nn.Module = model.to(self.policy.device, memory_format=memory_format)
        # under torchrun the weights go into DDP; α (and edge β) stay outside it (parallel.py)
        self.train_model = wrap_ddp(self.model, self.par, self.policy.device, ignore=self.model.arch_parameters())
        self.w_optimizer = torch.optim.SGD(
            self.model.weight_parameters(), lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay
        )
        self.scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
            self.w_optimizer, T_max=config.epochs, eta_min=config.lr_min
        )
        self.scaler = grad_scaler(self.policy)
        self.method = get_method(config.method)(SearchContext(
            model=self.model, config=config, w_optimizer=self.w_optimizer, scaler=self.scaler,
            autocast=self.policy.autocast, channels_last=self.policy.channels_last,
            make_scaler=lambda: grad_scaler(self.policy), sync=self._sync,
            train_samples=len(self.data.train_half), num_classes=self.info.num_classes,
            train_model=self.train_model, average_arch_grads=self.par.average_grads, gather=self.par.gather,
        ))
        self.costs = HardwareCosts(config, self.info, model.arch_labels())  # penalties on α + predicted cost
        self.epoch = 0  # next epoch to run (0-based)
        self.epochs: list[dict[str, Any]] = []
        self.alpha_history: list[dict[str, Any]] = []
        self.final_arch: Any = None  # the budgeted derive of the last epoch, when it changed the architecture
        self.timing = _Timing()
        self.scalars = Scalars(config.tensorboard, enabled=self.par.is_main)  # optional TensorBoard

    # ---- one epoch ----------------------------------------------------------------------------
    def _sync(self) -> None:
        if self.policy.device.type == "cuda":
            torch.cuda.synchronize(self.policy.device)

    def _nan(self, epoch: int, step: int) -> BadInputError:
        kept = (f"the last good checkpoint is kept in {self.out_dir}" if (self.out_dir / "checkpoint.pt").is_file()
                else f"no checkpoint was written yet in {self.out_dir}")
        return BadInputError(
            f"loss became NaN at epoch {epoch + 1} step {step + 1}; lower --lr/--arch-lr or use --amp off; {kept}"
        )

    def train_epoch(self, epoch: int) -> dict[str, Any]:
        """Run the steps of one epoch; returns train loss/acc and timing of this epoch."""
        c = self.config
        self.model.train()
        self.model.temperature = c.gumbel_temperature * c.gumbel_decay ** epoch  # used when relax == gumbel
        lr = float(self.w_optimizer.param_groups[0]["lr"])
        distilled_steps = 0
        steps = self.data.steps_per_epoch()
        train_batches, val_batches = self.data.epoch_batches(epoch)
        loss_sum = arch_sum = 0.0
        correct = seen = 0
        step_ms = teacher_ms = 0.0
        with Progress(steps, f"search epoch {epoch + 1}/{c.epochs}", self.show_progress) as bar:
            for step in range(steps):
                batch = next(train_batches)
                self._sync()
                start = time.perf_counter()
                result = self.method.step(batch, next(val_batches), lr, epoch, self.costs.hook(epoch))
                loss, arch_loss, hits, t_ms = result.loss, result.arch_loss, result.correct, result.teacher_ms
                if self.par.any(math.isnan(loss)):  # every rank stops at the same step
                    raise self._nan(epoch, step)
                self._sync()
                ms = (time.perf_counter() - start) * 1000.0
                self.timing.add(ms, t_ms, result.distilled)
                distilled_steps += int(result.distilled)
                step_ms, teacher_ms = step_ms + ms, teacher_ms + t_ms
                n = batch[1].numel()
                loss_sum, arch_sum, correct, seen = loss_sum + loss * n, arch_sum + arch_loss, correct + hits, seen + n
                bar.advance(loss=loss_sum / seen, acc=correct / seen)
                self.scalars.add({"step/train_loss": loss, "step/arch_loss": arch_loss, "step/train_acc": hits / n,
                                  "step/ms": ms}, epoch * steps + step)
        if not all(bool(torch.isfinite(p).all()) for p in self.model.parameters()):
            raise self._nan(epoch, steps - 1)  # the last step left non-finite weights or α
        self.par.check_identical(self.model.arch_parameters(), "α")  # replicated exactly, or the run stops
        loss_sum, arch_sum, correct, seen = self.par.sum([loss_sum, arch_sum, correct, seen])
        arch_sum /= self.par.world_size
        self.scheduler.step()
        return {
            "lr": lr, "train_loss": loss_sum / seen, "train_acc": correct / seen, "arch_loss": arch_sum / steps,
            "distilled_steps": distilled_steps, "teachers": len(getattr(self.method, "teachers", ())),
            "step_ms": step_ms / steps, "teacher_ms": teacher_ms / steps,
            "alpha_replicas_identical": True if self.par.active else None,  # checked bit for bit above
        }

    # ---- evaluation ---------------------------------------------------------------------------
    def accuracy(self, dataset: Any, weights: dict[str, torch.Tensor] | None = None) -> float:
        """Top-1 accuracy of the supernet, or of the derived architecture (``weights``: its one-hot masks)."""
        return accuracy(self.model, self.data, dataset, self.policy, weights)

    def derived(self, final: bool) -> tuple[Any, dict[str, Any] | None]:
        """The derived architecture; at the end, projected into the budget when it misses it (budget_derive)."""
        budget = self.costs.budget_cost() if final and self.config.budget_derive else None
        if budget is None:
            return self.model.derive(), None
        from .budget_derive import derive_within

        return derive_within(self.space, self.model, budget[0], budget[1] * (1.0 - self.config.budget_margin))

    def evaluate_epoch(self, epoch: int, final: bool) -> dict[str, Any]:
        """Supernet and discretized accuracy, derived architecture and its summary, optional sharpness."""
        genotype, projection = self.derived(final)
        if projection is not None:
            self.final_arch = genotype
        masks = {k: m.to(self.policy.device) for k, m in self.space.discretize(genotype, self.model).items()}
        record: dict[str, Any] = {
            "supernet_val_acc": self.accuracy(self.data.val_half),
            "discretized_val_acc": self.accuracy(self.data.val_half, masks),
        }
        record["gap"] = record["supernet_val_acc"] - record["discretized_val_acc"]
        record["genotype"] = self.space.arch_to_dict(genotype)
        record["arch_string"] = self.space.arch_to_string(genotype)
        record["summary"] = self.space.summary(genotype)
        record.update(record["summary"])  # also top level (skip_count_normal, ...), as reports always had them
        record["degenerate"] = self.space.degenerate(genotype)  # e.g. an NB201 cell whose output ignores its input
        record["budget_derive"] = projection
        record.update(self.costs.metrics(genotype, list(self.model.arch_parameters()), final))
        c = self.config
        due = c.sharpness and (final or (epoch + 1) % c.sharpness_every == 0)
        record["dominant_eigenvalue"] = sharpness(self.model, self.data, c) if due else None
        if final:  # the test split is for information only: never used to choose anything
            record["supernet_test_acc"] = self.accuracy(self.data.test_set)
            record["discretized_test_acc"] = self.accuracy(self.data.test_set, masks)
        return record

    # ---- files --------------------------------------------------------------------------------
    def report(self) -> dict[str, Any]:
        last = self.epochs[-1] if self.epochs else {}
        final_keys = ("genotype", "arch_string", "summary", *self.space.summary(self.model.derive()), "degenerate",
                      "budget_derive",
                      "supernet_val_acc", "discretized_val_acc", "gap",
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
            "method": self.method.name,
            "sizes": self.data.sizes(),
            "epochs": self.epochs,
            "final": {k: last.get(k) for k in final_keys},
            "timing": self.timing.summary(),
            "parallel": self.par.describe(self.config.batch_size),
        }

    def _alpha_record(self, epoch: int) -> dict[str, Any]:
        with torch.no_grad():
            probs = {label: p.detach().float().cpu().tolist() for label, p in self.model.probabilities_all().items()}
        return {"epoch": epoch + 1, **probs}

    def save(self) -> None:
        """Write the run's config, the checkpoint, then the files that describe it — architecture, α history,
        report (each atomically): a kill between them leaves the checkpoint, never a report ahead of it. The config
        is written here, after a good epoch, so flags that make a resumed run fail never replace the run's own."""
        atomic_write_json(self.out_dir / "config.json", to_dict(self.config))
        save_checkpoint(self.out_dir / "checkpoint.pt", {
            "format": CHECKPOINT_FORMAT, "epoch": self.epoch, "model": self.model.state_dict(),
            "w_optimizer": self.w_optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(), **self.method.state_dict(),
            "rng": rng_state(), "config": to_dict(self.config),
            "history": {"epochs": self.epochs, "alphas": self.alpha_history, "timing": dict(self.timing.sums)},
        })
        self.space.save_arch(self.out_dir / "genotype.json", self.final_arch or self.model.derive())
        atomic_write_json(self.out_dir / "alpha_history.json", self.alpha_history)
        atomic_write_json(self.out_dir / "report.json", self.report())

    def restore(self) -> None:
        """Continue from ``checkpoint.pt``: same state as right after its epoch in an uninterrupted run."""
        path = self.out_dir / "checkpoint.pt"
        state = load_run_checkpoint(self.out_dir, CHECKPOINT_FORMAT, "search")
        try:
            self.model.load_state_dict(state["model"])
            self.w_optimizer.load_state_dict(state["w_optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
            if state["scaler"]:
                self.scaler.load_state_dict(state["scaler"])
            self.method.load_state_dict(state)
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
        self.method.apply_changed_settings()

    def _log_scalars(self, record: dict[str, Any]) -> None:
        """Per-epoch TensorBoard scalars: losses, accuracies, α entropy per label, costs."""
        with torch.no_grad():
            entropy = {f"alpha_entropy/{label}": float(-(p * p.clamp_min(1e-12).log()).sum(-1).mean())
                       for label, p in self.model.probabilities_all().items()}
        keys = ("train_loss", "train_acc", "arch_loss", "supernet_val_acc", "discretized_val_acc", "gap",
                "dominant_eigenvalue", "expected_latency_ms", "predicted_latency_ms", "expected_mmac", "predicted_mmac")
        self.scalars.add({**{f"epoch/{k}": record.get(k) for k in keys}, **entropy}, record["epoch"])

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
            self._log_scalars(record)
            self.epoch = epoch + 1
            if self.par.is_main:
                self.save()
            self.par.barrier()
            if self.show_progress:
                summary = " ".join(f"{k}={v}" for k, v in self.space.summary(self.model.derive()).items()
                                   if isinstance(v, (int, float)))
                log(f"search epoch {epoch + 1}/{c.epochs}: train_acc={record['train_acc']:.3f} "
                    f"val_acc={record['supernet_val_acc']:.3f} discretized={record['discretized_val_acc']:.3f} "
                    f"{summary} lr={record['lr']:.4g} "
                    f"step time {record['step_ms']:.0f} ms (teachers {record['teacher_ms']:.0f} ms) "
                    f"{record['epoch_time_s']:.1f}s {log_fields(record)}")
        report = self.report()
        self.scalars.close()
        if self.par.is_main:
            atomic_write_json(self.out_dir / "report.json", report)
        if report["final"].get("degenerate") and self.show_progress:
            log(f"warning: the derived architecture is degenerate: {report['final']['degenerate']}; retraining it "
                "gives chance accuracy — search longer, loosen the budget or lower --penalty-weight")
        return report


def run_search(config: SearchConfig, out_dir: Path | str, resume: bool = False, progress: bool = True) -> dict[str, Any]:
    """Run (or resume) a search in ``out_dir`` and return the final report (also in ``report.json``)."""
    out_dir = Path(out_dir)
    par = setup_parallel(config.device)  # torchrun: join the process group (one process: nothing happens)
    progress = progress and par.is_main
    if resume and not (out_dir / "checkpoint.pt").is_file():
        if progress:
            log(f"note: {out_dir} holds no checkpoint yet (stopped before its first epoch ended): starting fresh")
        resume = False
    if resume:
        check_resume_config(config, out_dir)
        if par.is_main:
            remove_stale_temp_files(out_dir)
    elif (out_dir / "checkpoint.pt").is_file():  # never overwrite an earlier run's results
        raise BadInputError(f"{out_dir} already holds a search; pass --resume to continue it or choose another --out")
    if get_method(config.method).engine == "blockwise":
        if par.active:
            raise BadInputError("dna runs in one process (its blocks train in one pass); launch it without torchrun")
        from .blockwise import run_blockwise

        return run_blockwise(config, out_dir, resume, progress)
    run = SearchRun(config, out_dir, show_progress=progress)
    if resume:
        run.restore()
    if par.is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
    if progress:
        log(f"search on {run.policy.describe()}: {config.space} space, {config.dataset}, supernet "
            f"{run.geometry.to_dict()}, {config.epochs} epochs, method {run.method.describe()}, relax={config.relax}; "
            f"{run.costs.describe()}" + (f", resuming at epoch {run.epoch + 1}" if resume else "")
            + (f"; {par.world_size} processes ({par.backend}), global batch {config.batch_size * par.world_size}"
               if par.active else ""))
    return run.run()
