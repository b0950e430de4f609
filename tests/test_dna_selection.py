"""DNA's budgeted selection is exact: branch-and-bound top-k equals brute force on small random cases."""

from __future__ import annotations

import random

import pytest

from sdnas_deploy.errors import BadInputError
from sdnas_deploy.methods.dna.selection import Option, brute_force, cheapest, select


def _blocks(rng: random.Random, n_blocks: int, n_paths: int) -> list[list[Option]]:
    return [[Option((b, p), rng.uniform(0.1, 5.0), rng.uniform(0.5, 3.0)) for p in range(n_paths)]
            for b in range(n_blocks)]


@pytest.mark.parametrize("seed", range(12))
def test_select_matches_brute_force(seed: int) -> None:
    rng = random.Random(seed)
    blocks = _blocks(rng, rng.randint(1, 4), rng.randint(1, 6))
    fixed = rng.uniform(0, 2)
    low = cheapest(blocks, fixed)
    high = fixed + sum(max(o.cost for o in b) for b in blocks)
    for budget in (None, low, low + (high - low) * 0.3, low + (high - low) * 0.7, high):
        for k in (1, 3, 7):
            got = select(blocks, budget, k, fixed)
            want = brute_force(blocks, budget, k, fixed)
            assert [round(s.score, 9) for s in got] == [round(s.score, 9) for s in want]
            assert all(budget is None or s.cost <= budget + 1e-9 for s in got)
            assert [s.score for s in got] == sorted(s.score for s in got)


def test_budget_below_the_cheapest_architecture_names_its_cost() -> None:
    blocks = [[Option((0,), 1.0, 2.0), Option((1,), 0.5, 3.0)], [Option((0,), 1.0, 1.0)]]
    with pytest.raises(BadInputError, match=r"cheapest one costs 3.5 MMAC"):
        select(blocks, 3.0, fixed_cost=0.5, unit=" MMAC")
    best = select(blocks, 3.5, fixed_cost=0.5)[0]
    assert best.cost == pytest.approx(3.5) and best.score == pytest.approx(2.0)


def test_unconstrained_selection_is_the_best_path_of_every_block() -> None:
    blocks = _blocks(random.Random(5), 3, 5)
    best = select(blocks, None)[0]
    assert best.score == pytest.approx(sum(min(o.score for o in b) for b in blocks))
