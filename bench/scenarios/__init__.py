"""The scenarios, each a function from a `Context` to a report `Section`, and what they share."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bench.tools import OURS

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from bench.peers import Peer


@dataclass(frozen=True, slots=True, kw_only=True)
class Context:
    """What every scenario is given: the tools, where to work, how many timed runs."""

    peers: dict[str, Peer]
    work: Path
    runs: int
    quick: bool

    def available(self, names: tuple[str, ...] | None = None) -> list[Peer]:
        """The installed tools among `names` (all by default), ours first."""
        wanted = names or tuple(self.peers)
        return [peer for name, peer in self.peers.items() if name in wanted and peer.available]

    def missing(self, names: tuple[str, ...] | None = None) -> list[Peer]:
        wanted = names or tuple(self.peers)
        return [peer for name, peer in self.peers.items() if name in wanted and not peer.available]

    @property
    def logs(self) -> Path:
        return self.work / "logs"


def read_record(folder: Path) -> dict[str, object]:
    """Our run record of the last run in `folder`."""
    record: dict[str, object] = json.loads((folder / ".ci-orchestrator" / "reports" / "run.json").read_text())
    return record


def statuses_check(folder: Path, expected: Callable[[], dict[str, int]]) -> Callable[[], str]:
    """A check that our run record counts the `expected` statuses (read when the check runs)."""

    def check() -> str:
        counts: dict[str, int] = {}
        for step in read_record(folder)["steps"]:  # type: ignore[attr-defined]
            counts[step["status"]] = counts.get(step["status"], 0) + 1
        wanted = expected()
        return "" if counts == wanted else f"run record says {counts}, expected {wanted}"

    return check


def both(*checks: Callable[[], str]) -> Callable[[], str]:
    """A check that runs `checks` in order and reports the first problem."""

    def check() -> str:
        for one in checks:
            problem = one()
            if problem:
                return problem
        return ""

    return check


__all__ = ["OURS", "Context", "both", "read_record", "statuses_check"]
