"""The blockwise engine: DNA's search from teacher to architecture JSON, resumable (DESIGN.md §9).

1. *Before anything is trained*: the teacher is loaded and checked against the data (channels, side, classes),
   cut into stages and matched to the student setting's blocks (the table is logged), the costs of every
   candidate are computed and the budget is checked against the cheapest architecture.
2. *Blockwise training*: each step computes the teacher's stage features of a batch once; every block gets the
   teacher feature before its stage (block 1: the image) and one uniformly random path, and learns to reproduce
   the teacher feature at its stage's end (``kd_loss``). The summed loss is one backward: blocks share no
   parameters and their inputs are detached teacher features, so this is the same gradient each block would get
   if trained alone — the reference trains block after block; here all train in one pass over the data.
3. *Rating*: every path of every block (``methods.dna.rating``), BatchNorm re-estimated per path.
4. *Selection*: the exact top-k under the budget (``methods.dna.selection``).

Run directory: ``config.json``, ``checkpoint.pt`` (after each epoch), ``ratings.json`` (every rated path of every
block with its scores and costs), ``genotype.json`` (the best architecture, naming its space and, when the teacher
changed them, its stages), ``report.json`` (stage table, per-block loss per epoch, top-k, costs, timing).
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from ..checkpoint import load_run_checkpoint, rng_state, save_checkpoint, seed_everything, set_rng_state
from ..config_utils import to_dict
from ..device import make_policy
from ..errors import BadInputError
from ..io_utils import atomic_write_json
from ..methods.dna.costs import LayerCosts, layer_costs
from ..methods.dna.rating import rate_block
from ..methods.dna.selection import Option, check_budget, cheapest, select
from ..methods.dna.stages import match_blocks, probe, stage_table
from ..methods.dna.teacher import Teacher, load_teacher
from ..progress import Progress, log
from ..spaces import get_space
from .batches import SearchData
from .config import SearchConfig

CHECKPOINT_FORMAT = "sdnas-dna/1"
TEACHER_HINT = ("pass --teacher RUN_OR_WEIGHTS (a network `sdnas train` wrote) or --teacher torchvision:NAME "
                "--teacher-weights FILE; `sdnas run` trains one first from the recipe's teacher_arch")


def kd_loss(student: torch.Tensor, teacher: torch.Tensor, kind: str) -> torch.Tensor:
    """Feature distillation loss: MSE (DNA), or MSE divided by the teacher feature's variance (scale-free)."""
    mse = F.mse_loss(student.float(), teacher.float())
    return mse if kind == "mse" else mse / teacher.float().var().clamp_min(1e-8)


def check_teacher(teacher: Teacher, info: Any) -> None:
    """A teacher of another class count, input side or channel count is refused in one line."""
    if teacher.num_classes != info.num_classes:
        raise BadInputError(f"teacher {teacher.name} has {teacher.num_classes} classes but {info.name} has "
                            f"{info.num_classes}; use a teacher trained on this dataset")
    if teacher.image_size is not None and teacher.image_size != info.image_size:
        raise BadInputError(f"teacher {teacher.name} takes {teacher.image_size}px inputs but the data is "
                            f"{info.image_size}px; use a teacher trained at this size or pass --image-size")
    if info.in_channels not in (teacher.in_channels, 1):
        raise BadInputError(f"teacher {teacher.name} takes {teacher.in_channels}-channel inputs but the data has "
                            f"{info.in_channels}; use a teacher trained on this dataset")


class BlockwiseRun:
    """One DNA search in ``out_dir`` (module docstring)."""

    def __init__(self, config: SearchConfig, out_dir: Path, show_progress: bool = True) -> None:
        c = self.config = config
        self.out_dir, self.show_progress = Path(out_dir), show_progress
        if c.teacher is None:
            raise BadInputError(f"--method dna needs a teacher: {TEACHER_HINT}")
        budgets = [n for n in ("latency_budget", "flops_budget", "params_budget") if getattr(c, n) is not None]
        if len(budgets) > 1:
            raise BadInputError(f"DNA selects under one budget, got {', '.join(budgets)}; keep one of them")
        self.policy = make_policy(c.device, c.amp, c.channels_last)
        seed_everything(c.seed)
        self.space = get_space(c.space)
        self.teacher = load_teacher(c.teacher, c.teacher_weights)
        self.data = SearchData(c, self.policy)
        self.info = info = self.data.info
        check_teacher(self.teacher, info)
        self.setting = self.space.setting(c.setting or self.space.search_setting).name
        self.shapes = probe(self.teacher, info.in_channels, info.image_size)
        self.plans = match_blocks(self.shapes, self.space, self.setting, info.in_channels, info.image_size, c.stages)
        self.stages = self.space.teacher_stages(self.setting, [p.stride for p in self.plans],
                                                [p.out_width for p in self.plans])
        self.geometry = self.space.geometry(self.setting, input_size=info.image_size, in_channels=info.in_channels,
                                            num_classes=info.num_classes)
        self.costs, self.budget = self._costs()
        self.teacher.model.to(self.policy.device)
        self.student = self.space.blockwise_student(self.setting, self.stages, info.in_channels,
                                                    info.image_size).to(self.policy.device)
        self.optimizer = torch.optim.Adam(self.student.parameters(), lr=c.kd_lr)
        self.scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(self.optimizer, T_max=c.epochs)
        self.epoch = 0
        self.epochs: list[dict[str, Any]] = []
        self.ends = [p.end for p in self.plans]

    # ---- costs and budget (before training) ----------------------------------------------------
    def _costs(self) -> tuple[dict[str, LayerCosts], tuple[str, float] | None]:
        from .penalty import load_latency_table

        c = self.config
        args = (self.space, self.setting, self.stages)
        costs = {m: layer_costs(*args, self.geometry, m) for m in ("mmac", "params_m")}
        table = load_latency_table(c) if (c.target or c.lut) else None
        if table is not None:
            costs["latency_ms"] = layer_costs(*args, table.geometry, "latency_ms", table)
        budget = next(((m, float(v)) for m, v in (("latency_ms", c.latency_budget), ("mmac", c.flops_budget),
                                                  ("params_m", c.params_budget)) if v is not None), None)
        if budget is not None:  # every layer's options, before anything is trained (select() checks rated paths)
            model = costs[budget[0]]
            layers = [[Option((k,), 0.0, row[k]) for k in opts] for row, opts in zip(model.table, self._options())]
            check_budget(cheapest(layers, model.fixed), budget[1], f" {model.unit}")
        return costs, budget

    def _options(self) -> list[list[int]]:
        return self.space.layer_options(self.setting, self.stages)

    # ---- training --------------------------------------------------------------------------------
    def _nan(self, epoch: int, step: int) -> BadInputError:
        kept = (f"the last good checkpoint is kept in {self.out_dir}" if (self.out_dir / "checkpoint.pt").is_file()
                else f"no checkpoint was written yet in {self.out_dir}")
        return BadInputError(f"distillation loss became NaN at epoch {epoch + 1} step {step + 1}; lower --kd-lr or "
                             f"use --kd-loss normalized; {kept}")

    def train_epoch(self, epoch: int) -> dict[str, Any]:
        """One pass: every block, one random path each, against the teacher's stage features."""
        c, student = self.config, self.student
        student.train()
        lr = float(self.optimizer.param_groups[0]["lr"])
        steps = self.data.steps_per_epoch()
        batches, _ = self.data.epoch_batches(epoch)
        sums = [0.0] * len(student.blocks)
        teacher_ms = step_ms = 0.0
        with Progress(steps, f"dna epoch {epoch + 1}/{c.epochs}", self.show_progress) as bar:
            for step in range(steps):
                x = next(batches)[0]
                started = time.perf_counter()
                with self.policy.autocast():
                    feats = self.teacher.features(x, self.ends)
                teacher_ms += (time.perf_counter() - started) * 1000.0
                inputs = [x, *feats[:-1]]
                self.optimizer.zero_grad(set_to_none=True)
                losses = []
                with self.policy.autocast():
                    for block, inp, target in zip(student.blocks, inputs, feats):
                        losses.append(kd_loss(block(inp, block.random_path()), target, c.kd_loss))
                total = torch.stack(losses).sum()
                if not math.isfinite(float(total.detach())):
                    raise self._nan(epoch, step)
                total.backward()
                self.optimizer.step()
                step_ms += (time.perf_counter() - started) * 1000.0
                for i, loss in enumerate(losses):
                    sums[i] += float(loss.detach())
                bar.advance(loss=float(total.detach()))
        if not all(bool(torch.isfinite(p).all()) for p in student.parameters()):
            raise self._nan(epoch, steps - 1)
        self.scheduler.step()
        block_loss = [s / steps for s in sums]
        return {"lr": lr, "loss": sum(block_loss), "block_loss": block_loss, "step_ms": step_ms / steps,
                "teacher_ms": teacher_ms / steps}

    # ---- rating and selection --------------------------------------------------------------------
    def _fixed_batches(self, dataset: Any, count: int) -> list[torch.Tensor]:
        found = []
        for x, _ in self.data.eval_batches(dataset):
            if len(found) == count:
                break
            found.append(x)
        return found

    @torch.no_grad()
    def rate(self) -> list[dict[str, Any]]:
        """Ratings of every block: the paths rated, their scores and costs, and how they were chosen."""
        c = self.config
        calib = self._fixed_batches(self.data.train_half, c.calib_batches)
        held = self._fixed_batches(self.data.val_half, c.rate_batches)
        with self.policy.autocast():
            calib_feats = [self.teacher.features(x, self.ends) for x in calib]
            held_feats = [self.teacher.features(x, self.ends) for x in held]
        ranges = self.student.layer_ranges()
        total = sum(min(b.num_paths(), c.rate_max) for b in self.student.blocks)
        results = []
        with Progress(total, "rating paths", self.show_progress) as bar:
            for i, block in enumerate(self.student.blocks):
                calib_in = [x if i == 0 else f[i - 1] for x, f in zip(calib, calib_feats)]
                pairs = [(x if i == 0 else f[i - 1], f[i]) for x, f in zip(held, held_feats)]
                ratings, how = rate_block(block, calib_in, pairs, c.rate_max, c.seed + i,
                                          lambda n: bar.advance(n))
                rows = []
                for r in ratings:
                    row = {"path": list(r.path), "blocks": [self.space.candidates[k] for k in r.path],
                           "score": r.score, "mse": r.mse}
                    row.update({m: model.path_cost(ranges[i], r.path) for m, model in self.costs.items()})
                    rows.append(row)
                results.append({"block": i + 1, "layers": list(ranges[i]), **how, "ratings": rows})
        return results

    def choose(self, ratings: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The top-k architectures under the budget, best first, with every known cost."""
        metric = self.budget[0] if self.budget else "mmac"
        model = self.costs[metric]
        blocks = [[Option(tuple(r["path"]), r["score"], r[metric]) for r in b["ratings"]] for b in ratings]
        picks = select(blocks, None if self.budget is None else self.budget[1], self.config.top_k, model.fixed,
                       f" {model.unit}")
        top = []
        for pick in picks:
            choices = [k for option in pick.options for k in option.path]
            arch = self.space.arch_from_layer_choices(self.setting, self.stages, choices)
            entry = {"arch": self.space.arch_to_dict(arch), "arch_string": self.space.arch_to_string(arch),
                     "score": pick.score, "block_scores": [o.score for o in pick.options]}
            entry.update({m: cm.arch_cost(choices) for m, cm in self.costs.items()})
            top.append(entry)
        return top

    # ---- files -----------------------------------------------------------------------------------
    def report(self, top: list[dict[str, Any]] | None = None, rating: list[dict[str, Any]] | None = None) -> dict:
        c = self.config
        best = top[0] if top else {}
        budget_met = lambda metric, value: (None if value is None or best.get(metric) is None  # noqa: E731
                                            else best[metric] <= value)
        final = {
            "genotype": best.get("arch"), "arch_string": best.get("arch_string"),
            "summary": self.space.summary(self.space.arch_from_dict(best["arch"])) if best else None,
            "degenerate": None, "score": best.get("score"), "predicted_mmac": best.get("mmac"),
            "params_m": best.get("params_m"), "predicted_latency_ms": best.get("latency_ms"),
            "latency_budget_met": budget_met("latency_ms", c.latency_budget),
            "flops_budget_met": budget_met("mmac", c.flops_budget),
            "params_budget_met": budget_met("params_m", c.params_budget), "top_k": top or [],
        }
        return {
            "kind": "search", "space": self.space.name, "method": "dna", "setting": self.setting,
            "status": "complete" if top else "running", "epochs_done": self.epoch, "config": to_dict(c),
            "device": self.policy.describe(), "dataset": self.info.to_dict(), "sizes": self.data.sizes(),
            "teacher": {"name": self.teacher.name, "points": stage_table(self.shapes, self.plans),
                        "blocks": [vars(p) for p in self.plans]},
            "student_stages": self.space.stage_rows(self.setting, self.stages),
            "budget": None if self.budget is None else {"metric": self.budget[0], "value": self.budget[1],
                                                        "unit": self.costs[self.budget[0]].unit},
            "epochs": self.epochs,
            "rating": None if rating is None else [{k: v for k, v in b.items() if k != "ratings"} |
                                                   {"best_score": b["ratings"][0]["score"]} for b in rating],
            "final": final,
        }

    def save(self) -> None:
        """Config, checkpoint, then the report that describes it (as the supernet engine)."""
        atomic_write_json(self.out_dir / "config.json", to_dict(self.config))
        save_checkpoint(self.out_dir / "checkpoint.pt", {
            "format": CHECKPOINT_FORMAT, "epoch": self.epoch, "student": self.student.state_dict(),
            "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(), "rng": rng_state(),
            "config": to_dict(self.config), "history": {"epochs": self.epochs},
        })
        atomic_write_json(self.out_dir / "report.json", self.report())

    def restore(self) -> None:
        path = self.out_dir / "checkpoint.pt"
        state = load_run_checkpoint(self.out_dir, CHECKPOINT_FORMAT, "DNA search")
        try:
            self.student.load_state_dict(state["student"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
            self.epoch = int(state["epoch"])
            self.epochs = list(state["history"]["epochs"])
            set_rng_state(state["rng"])
        except (KeyError, RuntimeError, ValueError) as exc:
            raise BadInputError(f"{path}: checkpoint does not match this search ({type(exc).__name__}); "
                                "start without --resume") from None
        self._apply_changed_settings(state.get("config"))

    def _apply_changed_settings(self, saved: Any) -> None:
        """Resumed with other epochs or kd_lr: the cosine schedule continues as if the run had had them all along."""
        from .config import changed_keys

        c = self.config
        if not changed_keys(saved, c):
            return  # bit-identical continuation
        self.scheduler.base_lrs, self.scheduler.T_max = [c.kd_lr], c.epochs
        lr = c.kd_lr * (1 + math.cos(math.pi * self.epoch / c.epochs)) / 2
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    def describe(self) -> str:
        blocks = ", ".join(f"{p.out_width}ch@{p.out_side} s{p.stride}" for p in self.plans)
        budget = "no budget" if self.budget is None else (
            f"budget {self.budget[1]:g} {self.costs[self.budget[0]].unit}")
        return (f"DNA search on {self.policy.describe()}: {self.space.name}/{self.setting} student, teacher "
                f"{self.teacher.name}, blocks {blocks}; {budget}")

    def log_stages(self) -> None:
        log(f"{'#':>3} {'teacher point':28s} {'width':>6} {'side':>5}  block")
        for row in stage_table(self.shapes, self.plans):
            mark = f"<- end of block {row['block']}" if row["block"] else ""
            log(f"{row['index']:>3} {row['point']:28s} {row['width']:>6} {row['side']:>5}  {mark}")

    def run(self) -> dict[str, Any]:
        c = self.config
        for epoch in range(self.epoch, c.epochs):
            started = time.perf_counter()
            record = {"epoch": epoch + 1, **self.train_epoch(epoch)}
            record["epoch_time_s"] = time.perf_counter() - started
            self.epochs.append(record)
            self.epoch = epoch + 1
            self.save()
            if self.show_progress:
                losses = " ".join(f"{v:.4g}" for v in record["block_loss"])
                log(f"dna epoch {epoch + 1}/{c.epochs}: block losses {losses} lr={record['lr']:.4g} "
                    f"step {record['step_ms']:.0f} ms (teacher {record['teacher_ms']:.0f} ms)")
        started = time.perf_counter()
        ratings = self.rate()
        top = self.choose(ratings)
        atomic_write_json(self.out_dir / "ratings.json", {"space": self.space.name, "setting": self.setting,
                                                          "score": "mean|s-t|/std(t)", "blocks": ratings})
        self.space.save_arch(self.out_dir / "genotype.json", self.space.arch_from_dict(top[0]["arch"]))
        report = self.report(top, ratings)
        report["timing"] = {"train_s": sum(e["epoch_time_s"] for e in self.epochs),
                            "rate_select_s": time.perf_counter() - started}
        atomic_write_json(self.out_dir / "report.json", report)
        return report


def run_blockwise(config: SearchConfig, out_dir: Path, resume: bool, progress: bool) -> dict[str, Any]:
    """Validate everything, then train, rate and select (called by ``nas.searcher.run_search``)."""
    run = BlockwiseRun(config, out_dir, show_progress=progress)
    if resume:
        run.restore()
    out_dir.mkdir(parents=True, exist_ok=True)
    if progress:
        log(run.describe() + (f", resuming at epoch {run.epoch + 1}" if resume else ""))
        run.log_stages()
    return run.run()
