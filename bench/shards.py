"""How even the shards of a split are, against the best split there is: `python bench/shards.py`.

Two measures, written to `bench/SHARDS.md` (and printed):

- small random cases (3 to 10 parts, 2 to 4 shards, a third of them with setup steps that
  every shard needing them runs): the heaviest shard of LPT alone and of the split `run
  --shard` makes (LPT, then moves and swaps), each divided by the best split's, found by
  exhaustive search;
- CI-shaped playbooks (a `shard: all` setup step, tests that need it, independent checks), split
  by the durations two earlier runs recorded (each duration the true one within ±15%): each
  shard's load, the sum of the recorded durations it runs, its setup included, against the best
  split's.

Nothing runs: the split is the one `ci-orchestrator` computes from the same graph and weights.
"""

from __future__ import annotations

import math
import random
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if __package__ in (None, ""):
    # Run as a script: make `bench` and `ci_orchestrator` importable from the checkout.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ci_orchestrator.plan.balance import Item, balance
from ci_orchestrator.plan.shards import independent_parts, split

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

RESULTS = Path(__file__).resolve().parent / "SHARDS.md"
CASES = 2000
SEED = 7


def optimum(items: Sequence[Item], costs: Mapping[int, float], count: int) -> float:
    """The lowest heaviest-bin load any placement of `items` in `count` bins has (each bin pays
    each shared cost its items need once): branch and bound, heaviest items first, an item
    tried in one empty bin only (empty bins are alike)."""
    order = sorted(range(len(items)), key=lambda item: -items[item].weight)
    loads = [0.0] * count
    uses: list[dict[int, int]] = [{} for _ in range(count)]
    sizes = [0] * count
    best = math.inf

    def place(position: int) -> None:
        nonlocal best
        if position == len(order):
            best = min(best, max(loads))
            return
        item = items[order[position]]
        tried_empty = False
        for where in range(count):
            if not sizes[where]:
                if tried_empty:
                    continue
                tried_empty = True
            extra = item.weight + sum(costs[cost] for cost in item.shared if not uses[where].get(cost))
            if loads[where] + extra >= best:
                continue
            loads[where] += extra
            sizes[where] += 1
            for cost in item.shared:
                uses[where][cost] = uses[where].get(cost, 0) + 1
            place(position + 1)
            for cost in item.shared:
                uses[where][cost] -= 1
            sizes[where] -= 1
            loads[where] -= extra

    place(0)
    return best


@dataclass(frozen=True, slots=True, kw_only=True)
class Ratios:
    """Heaviest shard ÷ the best split's heaviest, over many cases."""

    mean: float
    worst: float
    best_found: float  # the share of cases where the split is a best one


def _ratios(values: Sequence[float]) -> Ratios:
    return Ratios(
        mean=statistics.fmean(values),
        worst=max(values),
        best_found=sum(value <= 1 + 1e-9 for value in values) / len(values),
    )


def random_case(rng: random.Random) -> tuple[list[Item], dict[int, float], int]:
    """3 to 10 parts of log-normal weights (a few long, many short, as test files are), on 2 to 4
    shards; a third of the cases with one or two setups, each needed by about half the parts."""
    count = rng.randint(2, 4)
    setups = rng.choice((0, 0, 1, 2))
    costs = {cost: rng.lognormvariate(0, 1) for cost in range(setups)}
    items = [
        Item(
            weight=rng.lognormvariate(0, 1),
            shared=frozenset(cost for cost in costs if rng.random() < 0.5),
        )
        for _ in range(rng.randint(3, 10))
    ]
    return items, costs, count


def small_cases(cases: int = CASES, seed: int = SEED) -> tuple[Ratios, Ratios]:
    """LPT alone, and LPT then the local search, against the optimum."""
    rng = random.Random(seed)
    lpt, ours = [], []
    for _ in range(cases):
        items, costs, count = random_case(rng)
        best = optimum(items, costs, count)
        lpt.append(max(balance(items, costs, count, search=False).loads) / best)
        ours.append(max(balance(items, costs, count).loads) / best)
    return _ratios(lpt), _ratios(ours)


@dataclass(frozen=True, slots=True, kw_only=True)
class Playbook:
    """A CI-shaped playbook: a setup step every test needs, tests, and independent checks."""

    name: str
    setup: float
    tests: tuple[float, ...]
    checks: tuple[float, ...]
    shards: int

    def graph(self) -> dict[str, list[str]]:
        preds: dict[str, list[str]] = {"setup": []}
        preds.update({f"test-{index}": ["setup"] for index in range(len(self.tests))})
        preds.update({f"check-{index}": [] for index in range(len(self.checks))})
        return preds

    def durations(self) -> dict[str, float]:
        found = {"setup": self.setup}
        found.update({f"test-{index}": seconds for index, seconds in enumerate(self.tests)})
        found.update({f"check-{index}": seconds for index, seconds in enumerate(self.checks)})
        return found


def playbooks(seed: int = SEED) -> list[Playbook]:
    rng = random.Random(seed)
    return [
        # The case sharding exists for: a venv, six test files that need it, a lint.
        Playbook(
            name="setup, 6 tests, lint",
            setup=35.0,
            tests=tuple(round(rng.lognormvariate(math.log(60), 0.5), 1) for _ in range(6)),
            checks=(25.0,),
            shards=3,
        ),
        Playbook(
            name="setup, 40 tests, lint and types",
            setup=50.0,
            tests=tuple(round(rng.lognormvariate(math.log(20), 0.8), 1) for _ in range(40)),
            checks=(30.0, 45.0),
            shards=4,
        ),
    ]


def recorded(true: Mapping[str, float], rng: random.Random, runs: int = 2) -> dict[str, float]:
    """The durations the run history gives after `runs` runs (each within ±15% of the true one):
    their median, as `History.durations` takes it."""
    return {
        node: statistics.median(seconds * rng.uniform(0.85, 1.15) for _ in range(runs))
        for node, seconds in true.items()
    }


EXACT_UP_TO = 12  # parts: past this the exhaustive search takes too long, and a bound stands in


def bound(playbook: Playbook, weights: Mapping[str, float]) -> float:
    """A load no split's heaviest shard can be under, for a playbook whose tests all need its
    setup: if the tests are on k shards, one of those carries the setup and a k-th of the
    tests' weight at least, and some shard a `shards`-th of all the work with k setups."""
    tests = sum(weights[f"test-{index}"] for index in range(len(playbook.tests)))
    checks = sum(weights[f"check-{index}"] for index in range(len(playbook.checks)))
    setup = weights["setup"]
    largest = max(weights[node] + (setup if node.startswith("test-") else 0.0) for node in weights)
    return min(
        max(largest, tests / used + setup, (tests + checks + used * setup) / playbook.shards)
        for used in range(1, min(playbook.shards, len(playbook.tests)) + 1)
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Measured:
    playbook: Playbook
    loads: tuple[float, ...]
    best: float  # the best split's heaviest shard by the same durations (or a bound of it)
    exact: bool  # `best` is the best split's, not a bound

    @property
    def spread(self) -> float:
        return (max(self.loads) - min(self.loads)) / max(self.loads)


def measure(playbook: Playbook, seed: int = SEED) -> Measured:
    preds = playbook.graph()
    weights = recorded(playbook.durations(), random.Random(seed))
    parts = independent_parts(preds, ["setup"])
    result = split(preds, weights, playbook.shards, parts=parts)
    index = {node: position for position, node in enumerate(sorted(parts.everywhere))}
    items = [
        Item(weight=sum(weights[node] for node in group), shared=frozenset(index[node] for node in setups))
        for group, setups in zip(parts.groups, parts.setups, strict=True)
    ]
    costs = {position: weights[node] for node, position in index.items()}
    exact = len(items) <= EXACT_UP_TO
    best = optimum(items, costs, playbook.shards) if exact else bound(playbook, weights)
    return Measured(playbook=playbook, loads=result.loads, best=best, exact=exact)


def report() -> str:
    lpt, ours = small_cases()
    lines = [
        "# Shard balance",
        "",
        "Generated by `python bench/shards.py`. See its docstring for the method.",
        "",
        f"## {CASES} small random cases against the best split",
        "",
        "| split | mean heaviest ÷ best | worst | best split found |",
        "| --- | --- | --- | --- |",
    ]
    for name, ratios in (("LPT alone", lpt), ("LPT, then moves and swaps (ours)", ours)):
        lines.append(f"| {name} | {ratios.mean:.4f} | {ratios.worst:.3f} | {ratios.best_found:.1%} |")
    lines += [
        "",
        "## CI-shaped playbooks, split by two earlier runs' durations",
        "",
        "| playbook | shards | loads (s) | spread | heaviest ÷ best split's |",
        "| --- | --- | --- | --- | --- |",
    ]
    for playbook in playbooks():
        measured = measure(playbook)
        loads = ", ".join(f"{load:.1f}" for load in measured.loads)
        lines.append(
            f"| {playbook.name} | {playbook.shards} | {loads} | {measured.spread:.1%}"
            f" | {max(measured.loads) / measured.best:.3f}"
            f" ({'' if measured.exact else 'at most; bound '}{measured.best:.1f} s) |"
        )
    lines += [
        "",
        "Spread: (heaviest − lightest) ÷ heaviest. Every shard runs the setup step, so its"
        " duration is in every load.",
    ]
    return "\n".join(lines) + "\n"


def main() -> int:
    text = report()
    RESULTS.write_text(text, encoding="utf-8")
    print(text, end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
