"""How step output reaches the console: a setting (`output`, `--output`) that the console
reporter obeys, kept here so that neither has to import the other."""

from __future__ import annotations

import os
from enum import Enum
from typing import TYPE_CHECKING

from ci_orchestrator import ci

if TYPE_CHECKING:
    from collections.abc import Mapping


class OutputMode(Enum):
    """How step output reaches the console."""

    GROUPED = "grouped"  # a step's whole log when it ends, never interleaved with another's
    STREAM = "stream"  # lines as they come, each prefixed with its instance id
    QUIET = "quiet"  # a line for each step that ends, the log of a failed one, the totals


def default_mode(environ: Mapping[str, str] = os.environ) -> OutputMode:
    """The mode when no level sets one. Under GitHub Actions each step's log is folded in a
    group of its own, so a whole log costs a reader nothing; anywhere else a passing step's log
    (a test runner's dots, a compiler's progress) only buries the failures: it stays in its file."""
    return OutputMode.GROUPED if ci.under_github(environ) else OutputMode.QUIET


def default_origin(environ: Mapping[str, str] = os.environ) -> str:
    """Where `default_mode` comes from, as `config get output` says it."""
    return "default under GitHub Actions" if ci.under_github(environ) else "default"
