"""`inputs` and `outputs` globs that match no file, and what is said about them.

An `inputs` glob that matches nothing (a typo: `scr/**`) leaves the files it meant out of the
key: the step would stay cached for ever while they change. An `outputs` glob that matches
nothing after the step passed would store a result a hit cannot put back. Each is a warning,
said once per run and pattern, with the near path a misspelt glob may have meant.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from ci_orchestrator import notices
from ci_orchestrator.cache.digests import SKIPPED_NAMES, is_glob, literal_base

if TYPE_CHECKING:
    from collections.abc import Iterable

    from ci_orchestrator.cache.digests import FileDigests


class PatternNotices:
    """What a run says of the globs of its steps that match nothing: each once."""

    def __init__(self, files: FileDigests) -> None:
        self._files = files
        self._said: set[tuple[str, str, str]] = set()

    def unmatched_input(self, step_id: str, pattern: str) -> str:
        """Says that an `inputs` glob of a step matches no file; returns why a result keyed on it
        cannot be trusted (and that of every step waiting for it, whose key is built on it)."""
        reason = f"inputs pattern {pattern!r} of step {step_id!r} matches no file"
        self._say(
            ("inputs", step_id, pattern),
            f"{reason}{self._hint(pattern)}; until it matches one, the step and the steps that wait"
            " for it are neither taken from the cache nor stored",
        )
        return reason

    def missing_outputs(self, step_id: str, patterns: Iterable[str]) -> None:
        """Says that `outputs` globs of a step that passed match no file: its result is not stored."""
        for pattern in patterns:
            self._say(
                ("outputs", step_id, pattern),
                f"step {step_id!r} passed without making its declared outputs {pattern!r}"
                f"{self._hint(pattern)}: result not cached",
            )

    def made_upstream(self, pattern: str, outputs: Iterable[str]) -> bool:
        """Whether the `outputs` globs of steps upstream may make the files an `inputs` glob that
        matches nothing names, none of them made yet: `plan` before the build that makes `dist/`."""
        wanted = literal_base(self._files.relative(pattern))
        for made in outputs:
            if self._files.expand(made):
                continue  # made already: the inputs glob misses it
            base = literal_base(self._files.relative(made))
            if _under(base, wanted) or _under(wanted, base):
                return True
        return False

    def _say(self, said: tuple[str, str, str], message: str) -> None:
        if said not in self._said:
            self._said.add(said)
            notices.warn(message)

    def _hint(self, pattern: str) -> str:
        near = self.near(pattern)
        return f" (did you mean {near!r}?)" if near else ""

    def near(self, pattern: str) -> str | None:
        """The glob with its first missing folder or file name replaced by a close name beside
        it, when that glob matches files; None when there is no such name."""
        normal = self._files.relative(pattern)
        if normal == ".." or normal.startswith(("../", "/")):
            return None
        segments = normal.split("/")
        folder = self._files.root
        for index, segment in enumerate(segments):
            if is_glob(segment):
                return None
            path = os.path.join(folder, segment)  # noqa: PTH118 (a str path, as FileDigests keeps it)
            if os.path.lexists(path):
                folder = path
                continue
            try:
                names = [name for name in os.listdir(folder) if name not in SKIPPED_NAMES]  # noqa: PTH208
            except OSError:
                return None
            import difflib  # only for a pattern that matches nothing

            close = difflib.get_close_matches(segment, names, n=1, cutoff=0.6)
            if not close:
                return None
            guess = "/".join([*segments[:index], close[0], *segments[index + 1 :]])
            return guess if self._files.expand(guess) else None
        return None


def _under(path: str, folder: str) -> bool:
    """Whether `path` is `folder` or lies below it (both normal and relative; "" is the root)."""
    return folder in ("", ".") or path == folder or path.startswith(folder + "/")
