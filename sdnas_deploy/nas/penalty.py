"""Hardware penalties on the α loss of ``sdnas search``: latency (from a table) and FLOPs (DESIGN.md §2).

Symbols: CE = cross-entropy of the arch-val batch; E = expected cost of the architecture the supernet will
discretize to, ``cost_model.expected(α by label)`` — the space's cost structure, differentiable through
softmax(α) (a DARTS cell weights each edge by its chance of surviving discretization); ref = T = the user's budget
(ms for latency, MMAC = millions of multiply-adds for FLOPs); λ = ``penalty_weight``; β = ``penalty_beta``.

- ``add`` (ProxylessNAS):            L = CE + λ·(E − ref)/ref             (λ ≈ 0.1 in the paper)
- ``mul`` (MnasNet/FBNet soft):      L = CE·(E/ref)^β                      (β ≈ 0.3; λ unused)
- ``budget`` (hinge, the default):   L = CE + λ·max(0, E/T − 1)            (zero at or below the budget)

Why the ratio in ``mul``: DESIGN.md quotes α·CE·(log E / log ref)^β, but log of a latency below 1 ms is
negative (and log 1 ms = 0), so the quotient flips sign or explodes depending on the unit; (E/ref)^β =
exp(β·log(E/ref)) is MnasNet's unit-free soft constraint, equals CE at E = ref, and grows smoothly above
it. The constant α only rescales the α gradient, which Adam normalises away, so it is omitted.

Warm-up: for ``epoch < warmup_epochs`` the loss is CE unchanged, so accuracy shapes α before cost does.
With both a latency and a FLOPs budget the two penalties are summed: L = CE + Σ_i (L_i − CE).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

import torch

from ..errors import BadInputError
from ..hw.expected import expected_cost, latency_cost_model
from ..hw.lut import LatencyTable, load_table, predict_latency
from ..spaces import Space, get_space
from ..spaces.base import CostModel

if TYPE_CHECKING:
    from ..data.info import DatasetInfo
    from .config import SearchConfig

PENALTY_KINDS = ("add", "mul", "budget")
ArchPenalty = Callable[[torch.Tensor, Sequence[torch.Tensor]], torch.Tensor]


def penalized(kind: str, ce: torch.Tensor, expected: torch.Tensor, ref: float, weight: float,
              beta: float) -> torch.Tensor:
    """The loss of form ``kind`` (module docstring) from CE, the expected cost and the budget ``ref``."""
    ratio = expected / ref
    if kind == "add":
        return ce + weight * (ratio - 1.0)
    if kind == "mul":
        return ce * ratio.clamp_min(1e-12) ** beta
    if kind == "budget":
        return ce + weight * torch.relu(ratio - 1.0)
    raise BadInputError(f"unknown penalty {kind!r}; use one of {', '.join(PENALTY_KINDS)}")


@dataclass(frozen=True)
class LatencyPenalty:
    """One penalty on expected cost (latency in ms or FLOPs in MMAC, whichever ``cost_model`` holds)."""

    kind: str
    cost_model: CostModel
    budget: float
    weight: float = 0.1
    beta: float = 0.3
    warmup_epochs: int = 0

    def __post_init__(self) -> None:
        if self.kind not in PENALTY_KINDS:
            raise BadInputError(f"unknown penalty {self.kind!r}; use one of {', '.join(PENALTY_KINDS)}")
        if not self.budget > 0:
            raise BadInputError(f"penalty budget must be positive, got {self.budget!r}")

    def expected(self, alphas: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """E[cost] at the current α, by label (differentiable)."""
        return expected_cost(self.cost_model, alphas)

    def active(self, epoch: int) -> bool:
        """False during the warm-up epochs (0-based ``epoch``)."""
        return epoch >= self.warmup_epochs

    def loss(self, ce: torch.Tensor, alphas: Mapping[str, torch.Tensor], epoch: int) -> torch.Tensor:
        """Penalized α loss; ``ce`` itself during warm-up."""
        if not self.active(epoch):
            return ce
        expected = self.expected(alphas).to(ce.dtype)
        return penalized(self.kind, ce, expected, self.budget, self.weight, self.beta)

    def describe(self) -> str:
        """One line for logs, e.g. ``budget penalty on latency: E <= 3 ms, λ=0.1, warm-up 5 epochs``."""
        what = "latency" if self.cost_model.unit == "ms" else "FLOPs"
        unit = self.cost_model.unit
        strength = f"β={self.beta:g}" if self.kind == "mul" else f"λ={self.weight:g}"
        return (f"{self.kind} penalty on {what}: budget {self.budget:g} {unit}, {strength}, "
                f"warm-up {self.warmup_epochs} epochs")


def combined(penalties: Sequence[LatencyPenalty], epoch: int, labels: Sequence[str]) -> ArchPenalty | None:
    """The architect's α-loss hook for ``epoch``: CE + Σ (L_i − CE); None when no penalty is active.

    The architect passes α in ``arch_parameters()`` order; ``labels`` names them for the cost model (parameters
    after the labelled α — PC-DARTS edge β — are not costed).
    """
    active = [p for p in penalties if p.active(epoch)]
    if not active:
        return None

    def apply(ce: torch.Tensor, alphas: Sequence[torch.Tensor]) -> torch.Tensor:
        named = dict(zip(labels, alphas[: len(labels)], strict=True))
        total = ce
        for p in active:
            total = total + (p.loss(ce, named, epoch) - ce)
        return total

    return apply


class HardwareCosts:
    """Everything the search knows about cost: table, FLOPs model, penalties, per-epoch metrics."""

    def __init__(self, config: "SearchConfig", info: "DatasetInfo", labels: Sequence[str]) -> None:
        """``labels``: the supernet's α labels, in the order the architect passes α."""
        from ..hw.flops import flops_cost_model

        c = self.config = config
        self.space: Space = get_space(c.space)
        self.labels = tuple(labels)
        self.table: LatencyTable | None = load_latency_table(c)
        if self.table is not None:
            self.geometry = self.table.geometry
        else:
            setting = self.space.setting(latency_setting(c))
            size = setting.input_size or info.image_size
            self.geometry = self.space.geometry(setting.name, input_size=size, in_channels=info.in_channels,
                                                num_classes=info.num_classes)
        self.latency_model = latency_cost_model(self.table) if self.table is not None else None
        self.flops_model = flops_cost_model(self.space, self.geometry)
        common = dict(kind=c.penalty, weight=c.penalty_weight, beta=c.penalty_beta,
                      warmup_epochs=c.penalty_warmup_epochs)
        self.penalties: list[LatencyPenalty] = []
        if c.latency_budget is not None and self.latency_model is not None:
            self.penalties.append(LatencyPenalty(cost_model=self.latency_model, budget=c.latency_budget, **common))
        if c.flops_budget is not None:
            self.penalties.append(LatencyPenalty(cost_model=self.flops_model, budget=c.flops_budget, **common))

    def hook(self, epoch: int) -> ArchPenalty | None:
        """The α-loss hook of ``epoch`` (see :func:`combined`)."""
        return combined(self.penalties, epoch, self.labels)

    @torch.no_grad()
    def metrics(self, genotype: Any, alphas: Sequence[torch.Tensor], final: bool = False) -> dict[str, Any]:
        """Predicted cost of the architecture and expected cost at ``alphas``; budget verdicts when ``final``."""
        from ..hw.flops import predict_flops

        labelled = zip(self.labels, alphas[: len(self.labels)], strict=True)
        named = {label: a.detach().float().cpu() for label, a in labelled}
        record: dict[str, Any] = {"predicted_latency_ms": None, "expected_latency_ms": None}
        if self.table is not None and self.latency_model is not None:
            record["predicted_latency_ms"] = predict_latency(self.table, genotype)
            record["expected_latency_ms"] = float(expected_cost(self.latency_model, named))
        record["predicted_mmac"] = float(predict_flops(self.space, genotype, self.geometry))
        record["expected_mmac"] = float(expected_cost(self.flops_model, named))
        if final:
            c = self.config
            lat = record["predicted_latency_ms"]
            record["latency_budget_met"] = (None if c.latency_budget is None or lat is None
                                            else lat <= c.latency_budget)
            record["flops_budget_met"] = (None if c.flops_budget is None
                                          else record["predicted_mmac"] <= c.flops_budget)
            record["measured_latency_ms"] = self.measure_on_target(genotype)
        return record

    def budget_cost(self) -> tuple[Callable[[Any], float], float] | None:
        """(predicted cost of an architecture, budget) of the search's budget: latency on the table if a latency
        budget is set, else multiply-adds under a FLOPs budget; None without a budget."""
        from ..hw.flops import predict_flops

        c = self.config
        if c.latency_budget is not None and self.table is not None:
            table = self.table
            return (lambda arch: predict_latency(table, arch)), float(c.latency_budget)
        if c.flops_budget is not None:
            return (lambda arch: float(predict_flops(self.space, arch, self.geometry))), float(c.flops_budget)
        return None

    def on_target(self) -> bool:
        """True when this machine is the one the table was measured on (same fingerprint key, CPU backends)."""
        from ..runtime.fingerprint import environment_fingerprint, fingerprint_key

        if self.table is None or self.table.fingerprint.get("backend") not in ("ort", "torch"):
            return False
        if self.table.fingerprint.get("provider", "CPUExecutionProvider") != "CPUExecutionProvider":
            return False
        here = environment_fingerprint(self.table.fingerprint.get("threads"))
        return fingerprint_key(here) == self.table.fingerprint.get("key")

    def measure_on_target(self, genotype: Any) -> float | None:
        """Median whole-network latency (ms) of ``genotype`` measured here, when the search runs on the target."""
        if not self.on_target():
            return None
        from ..hw.whole import measure_network

        fp = self.table.fingerprint
        stats = measure_network(genotype, self.geometry, backend=fp["backend"], threads=int(fp.get("threads") or 1),
                                device=str(fp.get("device", "cpu")), precision=str(fp.get("precision", "fp32")),
                                space=self.space)
        return float(stats["p50"])

    def describe(self) -> str:
        """One log line: the table used and each penalty."""
        parts = [f"latency table {self.table.target} ({self.geometry.setting})" if self.table else "no latency table"]
        parts += [p.describe() for p in self.penalties] or ["no hardware penalty"]
        return "; ".join(parts)


def latency_setting(config: "SearchConfig") -> str:
    """The deployment setting costs are computed for: ``latency_setting``, else the space's choice for the search
    setting (``Space.deploy_setting``: the search layout itself for layer-wise spaces, ``cifar`` for DARTS)."""
    return config.latency_setting or get_space(config.space).deploy_setting(config.setting)


def load_latency_table(config: "SearchConfig") -> LatencyTable | None:
    """The table of ``--lut`` (wins) or of ``--target`` at the latency setting; None when neither is set.

    A table of another space is refused (exit 2)."""
    from ..hw.targets import resolve_table

    setting = latency_setting(config)
    if config.lut is not None:
        table = load_table(config.lut)
    elif config.target is not None:
        table = load_table(resolve_table(config.target, setting, config.lut_kind, config.space))
    else:
        return None
    table.check_space(config.space, str(config.lut or config.target))
    if table.geometry.setting != setting and config.lut is not None:
        raise BadInputError(
            f"{config.lut}: table describes setting {table.geometry.setting!r}, not latency_setting "
            f"{setting!r}; pass --latency-setting {table.geometry.setting}")
    return table


def log_fields(record: dict[str, Any]) -> str:
    """The cost part of a per-epoch log line (empty when nothing is known)."""
    parts = []
    if record.get("predicted_latency_ms") is not None:
        parts.append(f"lat={record['predicted_latency_ms']:.3f}ms (E {record['expected_latency_ms']:.3f})")
    if record.get("predicted_mmac") is not None:
        parts.append(f"mmac={record['predicted_mmac']:.1f} (E {record['expected_mmac']:.1f})")
    return " ".join(parts)
