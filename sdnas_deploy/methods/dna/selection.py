"""Exact budgeted selection: one rated path per block, minimal summed score, total cost within a budget.

DNA's traversal (DESIGN.md §9) as a depth-first branch-and-bound over blocks: each block's paths are sorted by
score; a prefix is pruned when even the cheapest completion exceeds the budget, or when even the best-scoring
completion cannot beat the k-th best architecture found so far. Both bounds are admissible, so the top-k
returned are exactly the k best of the full product (``brute_force`` is the reference the tests compare with).
Ties break by path order, deterministically.
"""

from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass
from typing import Sequence

from ...errors import BadInputError


@dataclass(frozen=True)
class Option:
    """One rated path of one block: its candidate indices, score (lower is better) and cost."""

    path: tuple[int, ...]
    score: float
    cost: float


@dataclass(frozen=True)
class Selection:
    """A whole architecture: one option per block, summed score and cost (fixed cost included)."""

    score: float
    cost: float
    options: tuple[Option, ...]


def cheapest(blocks: Sequence[Sequence[Option]], fixed_cost: float = 0.0) -> float:
    """The cost of the cheapest architecture (fixed part + the cheapest path of every block)."""
    return fixed_cost + sum(min(o.cost for o in opts) for opts in blocks)


def check_budget(low: float, budget: float | None, unit: str = "") -> None:
    """A budget below the cheapest architecture's cost ``low`` → BadInputError naming that cost."""
    if budget is not None and low > float(budget) + 1e-12:
        raise BadInputError(f"no architecture meets the budget {budget:g}{unit}: the cheapest one costs {low:.4g}{unit}; "
                            "raise the budget")


def select(blocks: Sequence[Sequence[Option]], budget: float | None, k: int = 1, fixed_cost: float = 0.0,
           unit: str = "") -> list[Selection]:
    """The ``k`` best architectures with cost ≤ ``budget`` (None: unconstrained), best first.

    A budget below the cheapest architecture → BadInputError naming that cost."""
    if not blocks or any(not opts for opts in blocks):
        raise ValueError("every block needs at least one rated path")
    limit = float("inf") if budget is None else float(budget)
    check_budget(cheapest(blocks, fixed_cost), budget, unit)
    ordered = [sorted(opts, key=lambda o: (o.score, o.cost, o.path)) for opts in blocks]
    n = len(ordered)
    min_score_after = [0.0] * (n + 1)
    min_cost_after = [0.0] * (n + 1)
    for i in range(n - 1, -1, -1):
        min_score_after[i] = min_score_after[i + 1] + ordered[i][0].score
        min_cost_after[i] = min_cost_after[i + 1] + min(o.cost for o in ordered[i])
    best: list[tuple[float, int, Selection]] = []  # max-heap on score via negation; counter keeps order stable
    counter = itertools.count()
    chosen: list[Option] = []

    def worst() -> float:
        return -best[0][0] if len(best) == k else float("inf")

    def visit(i: int, score: float, cost: float) -> None:
        if i == n:
            entry = (-score, -next(counter), Selection(score, cost + fixed_cost, tuple(chosen)))
            if len(best) < k:
                heapq.heappush(best, entry)
            elif score < worst():
                heapq.heapreplace(best, entry)
            return
        for option in ordered[i]:
            if score + option.score + min_score_after[i + 1] >= worst():
                break  # sorted by score: every later option of this block is no better
            if fixed_cost + cost + option.cost + min_cost_after[i + 1] > limit + 1e-12:
                continue
            chosen.append(option)
            visit(i + 1, score + option.score, cost + option.cost)
            chosen.pop()

    visit(0, 0.0, 0.0)
    return [entry[2] for entry in sorted(best, key=lambda e: (-e[0], -e[1]))]


def brute_force(blocks: Sequence[Sequence[Option]], budget: float | None, k: int = 1,
                fixed_cost: float = 0.0) -> list[Selection]:
    """Every combination, filtered and sorted: the reference :func:`select` must agree with (tests only)."""
    limit = float("inf") if budget is None else float(budget)
    found = []
    for combo in itertools.product(*blocks):
        cost = fixed_cost + sum(o.cost for o in combo)
        if cost <= limit + 1e-12:
            found.append(Selection(sum(o.score for o in combo), cost, tuple(combo)))
    found.sort(key=lambda s: s.score)
    return found[:k]
