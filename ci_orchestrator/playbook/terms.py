"""One step-naming term, as `--select` and the settings' `[defaults]` patterns write it: an id, a
script-number range (`0400-0499`), a wildcard (`test-*`), `tag:NAME` or `stage:NAME`."""

from __future__ import annotations

import re
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

_DIGITS = re.compile(r"[0-9]+")
NUMBER_RANGE = re.compile(r"([0-9]+)-([0-9]+)")


def _magnitude(digits: str) -> tuple[int, str]:
    """A key that orders digit strings as the numbers they write, however long (Python refuses
    to turn thousands of digits into an int): fewer significant digits, then the digits."""
    significant = digits.lstrip("0")
    return len(significant), significant


def range_problem(term: str) -> str | None:
    """What is wrong with a script-number range (`0499-0400`), or None (also for other terms)."""
    numeric = NUMBER_RANGE.fullmatch(term)
    if numeric and _magnitude(numeric[1]) > _magnitude(numeric[2]):
        shown = term if len(term) <= 40 else f"{term[:37]}..."
        return f"invalid range {shown!r}: its start is after its end"
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
        low, high = _magnitude(numeric[1]), _magnitude(numeric[2])
        if any(_DIGITS.fullmatch(name) and low <= _magnitude(name) <= high for name in names):
            return True
    if any(char in term for char in "*?["):
        return any(fnmatchcase(name, term) for name in names)
    return term in names
