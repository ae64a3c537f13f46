"""How step output reaches the console: a setting (`output`, `--output`) that the console
reporter obeys, kept here so that neither has to import the other."""

from __future__ import annotations

from enum import Enum


class OutputMode(Enum):
    """How step output reaches the console."""

    GROUPED = "grouped"  # a step's whole log when it ends, never interleaved with another's
    STREAM = "stream"  # lines as they come, each prefixed with its instance id
    QUIET = "quiet"  # only the logs of failed steps, and the result
