"""The scenarios, each a function from a `Context` to a report `Section`, and what they share."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bench import server
from bench.report import seconds
from bench.tools import OURS, OURS_NO_SERVER

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from pathlib import Path

    from bench.peers import Peer
    from bench.timing import Timing

# The method text of every section that times ours both ways.
BOTH_WAYS = (
    "ci-orchestrator: with its run server (started by the warm-up run; what a laptop gets); "
    "ci-orchestrator (no server): each run a fresh process, as in a CI job. `× ours` is against "
    "the first, `× ours (no server)` against the second; targets are judged on the first."
)
# The method text of a section that times ours with its run server only.
SERVER_ONLY = (
    "ci-orchestrator runs with its run server (`CI_ORCHESTRATOR_SERVER=on`, the server started by "
    "the warm-up run; what a laptop gets)."
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Row:
    """A tool in a table: for ours, also whether it runs with its run server."""

    name: str  # the row's, and its run's log file
    peer: Peer
    folder: str  # its folder's name in the scenario's folder
    env: Mapping[str, str]  # on top of the timed environment: the peer's own, then the row's
    ready: Callable[[], str]  # for `Case.ready`


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

    def rows(self, names: tuple[str, ...] | None = None, *, no_server: bool = False) -> list[Row]:
        """The installed tools among `names` as rows: ours with its run server first, then (with
        `no_server`) ours again without it, then the others."""
        rows = []
        for peer in self.available(names):
            if peer.name != OURS:
                rows.append(Row(name=peer.name, peer=peer, folder=peer.name, env=peer.env, ready=lambda: ""))
                continue

            def ready(peer: Peer = peer) -> str:
                return server.wait(peer)

            on, off = {**peer.env, **server.ON}, {**peer.env, **server.OFF}
            rows.append(Row(name=OURS, peer=peer, folder=OURS, env=on, ready=ready))
            if no_server:
                name, folder = OURS_NO_SERVER, f"{OURS}-no-server"
                rows.append(Row(name=name, peer=peer, folder=folder, env=off, ready=lambda: ""))
        return rows

    @property
    def row_peers(self) -> dict[str, Peer]:
        """The peer of each row's name, for the version column."""
        return {**self.peers, OURS_NO_SERVER: self.peers[OURS]}

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


def without_server(timings: dict[str, Timing]) -> str:
    """For a target's figures, judged on ours with its run server: ours' median without it."""
    timing = timings.get(OURS_NO_SERVER)
    if timing is None:
        return ""
    return f" (no server {seconds(timing.median) if timing.ok else 'failed'})"


def both(*checks: Callable[[], str]) -> Callable[[], str]:
    """A check that runs `checks` in order and reports the first problem."""

    def check() -> str:
        for one in checks:
            problem = one()
            if problem:
                return problem
        return ""

    return check


__all__ = [
    "BOTH_WAYS",
    "OURS",
    "OURS_NO_SERVER",
    "SERVER_ONLY",
    "Context",
    "Row",
    "both",
    "read_record",
    "statuses_check",
    "without_server",
]
