"""Derive within a budget: when the architecture α selects misses the search's latency or FLOPs budget on the table,
move the decisions that lose the least probability per unit of cost saved to cheaper choices until it fits.

The penalty steers α toward the budget, but a short search (or one whose α has not moved far) can end just above
it, and the user asked for a network that fits. Starting from the plain derive (best choice per α row), each
step considers every row and every cheaper allowed choice, and applies the one with the smallest
``(log p(current) − log p(new)) / (cost(current) − cost(new))`` — a greedy Lagrangian projection, exact on the
table's additive costs; a choice that would leave a degenerate network (``Space.degenerate``) is never taken. The
search report keeps the plain architecture, its cost and the steps taken. Spaces that
derive by their own rule (DARTS' top-2 edges per node) are left as they are (``Space.arch_from_choices``). A derive
that is degenerate (``Space.degenerate``: an NB201 cell whose output ignores its input) is first repaired by the
single change that loses the least probability.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import torch

from ..errors import BadInputError
from ..spaces import Space, Supernet

MIN_PROBABILITY = 1e-12


def derive_within(space: Space, supernet: Supernet, cost: Callable[[Any], float],
                  budget: float) -> tuple[Any, dict[str, Any]]:
    """(architecture, record) — the plain derive when it fits ``budget`` (or the space has no row choices), else the
    greedy projection; ``record`` says what was done."""
    arch = supernet.derive()
    current = cost(arch)
    record: dict[str, Any] = {"budget": budget, "plain_arch": space.arch_to_string(arch), "plain_cost": current,
                              "applied": False, "steps": 0}
    if current <= budget and space.degenerate(arch) is None:
        record.update(met=True, cost=current)
        return arch, record
    choices = {label: [int(k) for k in m.argmax(dim=1).tolist()]
               for label, m in space.discretize(arch, supernet).items()}
    try:
        space.arch_from_choices(choices, supernet)  # the plain derive's own choices: a round trip
    except NotImplementedError:
        record.update(met=False, cost=current, reason=f"space {space.name!r} derives by its own rule")
        return arch, record
    with torch.no_grad():
        probs = {label: supernet.probabilities(label).detach().cpu() for label in supernet.ARCH_LABELS}
    record["applied"] = True
    if space.degenerate(arch) is not None:  # repair first: the one change that loses least and keeps the budget
        arch, current = _repair(space, supernet, choices, probs, cost, budget, arch, current)
        record["repaired"] = space.degenerate(arch) is None
    while current > budget:
        best: tuple[float, str, int, int, Any, float] | None = None
        for lost, label, i, k, candidate in _moves(space, supernet, choices, probs):
            if space.degenerate(candidate) is not None:  # cheaper, but computes nothing
                continue
            saved = current - cost(candidate)
            if saved <= 0:
                continue
            score = lost / saved
            if best is None or score < best[0]:
                best = (score, label, i, k, candidate, current - saved)
        if best is None:
            break
        _, label, i, k, arch, current = best
        choices[label][i] = k
        record["steps"] += 1
    record.update(met=current <= budget, cost=current)
    return arch, record


def _moves(space: Space, supernet: Supernet, choices: dict[str, list[int]], probs: dict[str, torch.Tensor]):
    """Every single-choice change: (probability lost, label, row, column, architecture)."""
    for label, row_choices in choices.items():
        p = probs[label]
        for i, now in enumerate(row_choices):
            for k in range(p.shape[1]):
                if k == now or float(p[i, k]) <= 0.0:
                    continue
                trial = {name: list(values) for name, values in choices.items()}
                trial[label][i] = k
                try:
                    candidate = space.arch_from_choices(trial, supernet)
                except BadInputError:
                    continue
                lost = math.log(max(float(p[i, now]), MIN_PROBABILITY)) - math.log(max(float(p[i, k]),
                                                                                      MIN_PROBABILITY))
                yield lost, label, i, k, candidate


def _repair(space: Space, supernet: Supernet, choices: dict[str, list[int]], probs: dict[str, torch.Tensor],
            cost: Callable[[Any], float], budget: float, arch: Any, current: float) -> tuple[Any, float]:
    """A degenerate derive (e.g. an NB201 cell whose output ignores its input) made useful by the one change that
    loses the least probability, preferring changes that keep the budget."""
    best = None
    for lost, label, i, k, candidate in _moves(space, supernet, choices, probs):
        if space.degenerate(candidate) is not None:
            continue
        c = cost(candidate)
        key = (c > budget, lost)
        if best is None or key < best[0]:
            best = (key, label, i, k, candidate, c)
    if best is None:
        return arch, current
    _, label, i, k, arch, current = best
    choices[label][i] = k
    return arch, current
