"""What the supervisor is asked to run (`ProcessSpec`) and what it reports (`Exited`,
`Signalled`, `WorkDone`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeAlias

if TYPE_CHECKING:
    from collections.abc import Mapping
    from datetime import datetime
    from pathlib import Path


@dataclass(frozen=True, slots=True, kw_only=True)
class ProcessSpec:
    """One process to run. `env` is its complete environment; `masks` are values written as `***`;
    `error` says why it cannot start, found while preparing it (no process is then started)."""

    key: str
    argv: tuple[str, ...]
    cwd: Path
    env: Mapping[str, str]
    log_path: Path
    timeout: float | None
    masks: tuple[str, ...] = ()
    error: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Exited:
    """A process is over and its tree is gone (or killed).

    `exit_code` is 124 on timeout, 128+N when a signal N ended it, None when it could not start
    (`error` says why).
    """

    key: str
    exit_code: int | None
    timed_out: bool = False
    cancelled: bool = False
    error: str | None = None
    log_error: str | None = None  # output was lost: the log could not be written (a full disk)
    # The values it announced with `::add-mask::` (masked in its log): secrets, never shown.
    masks: tuple[str, ...] = field(default=(), repr=False)
    started: datetime
    finished: datetime

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out and not self.cancelled


@dataclass(frozen=True, slots=True, kw_only=True)
class Signalled:
    """This process received SIGINT, SIGTERM or SIGHUP; the caller decides what follows."""

    signum: int


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkDone:
    """Work done on another thread for `key` (storing its result) is over (`Supervisor.expect`)."""

    key: str


Event: TypeAlias = Exited | Signalled | WorkDone
