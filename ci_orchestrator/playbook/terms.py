"""One step-naming term, as `--select` and the settings' `[defaults]` patterns write it: an id, a
script-number range (`0400-0499`), a wildcard (`test-*`), `tag:NAME` or `stage:NAME`."""

from __future__ import annotations

import re
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

NUMBER_RANGE = re.compile(r"(\d+)-(\d+)")


def range_problem(term: str) -> str | None:
    """What is wrong with a script-number range (`0499-0400`), or None (also for other terms)."""
    numeric = NUMBER_RANGE.fullmatch(term)
    if numeric and int(numeric[1]) > int(numeric[2]):
        return f"invalid range {term!r}: its start is after its end"
    return None


def matches(term: str, names: Sequence[str], *, stage: str | None = None, tags: Sequence[str] = ()) -> bool:
    """Whether `term` names a step known by `names` (its ids and script number), in `stage`,
    carrying `tags`. Stage and tag names are compared without case, as users type them."""
    if term.startswith("stage:"):
        return stage is not None and stage.casefold() == term[6:].casefold()
    if term.startswith("tag:"):
        wanted = term[4:].casefold()
        return any(tag.casefold() == wanted for tag in tags)
    numeric = NUMBER_RANGE.fullmatch(term)
    if numeric:
        low, high = int(numeric[1]), int(numeric[2])
        if any(name.isdigit() and low <= int(name) <= high for name in names):
            return True
    if any(char in term for char in "*?["):
        return any(fnmatchcase(name, term) for name in names)
    return term in names
