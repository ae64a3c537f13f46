"""GitHub's memory bound on evaluating one expression: what it refuses rather than build.

GitHub counts what an evaluation holds (a string as 26 bytes plus 2 a character, anything else as
24) and refuses an expression once that passes 1 MB, so that `format('{0}{0}', format(...))`
nested a few dozen times is an error, not a machine out of memory. The count follows its rules:
each node's result is held at the node's depth in the tree; once a node has a result of its own,
what its operands held is let go, unless its result is read out of a context (then it may still
refer to them). Functions that build text count as they build it.
"""

from __future__ import annotations

from ci_orchestrator.errors import ExpressionError

MAX_BYTES = 1_048_576
STRING_OVERHEAD = 26
OBJECT_SIZE = 24
POINTER_SIZE = 8


def size(value: object) -> int:
    """What GitHub counts for holding a value."""
    if isinstance(value, str):
        return STRING_OVERHEAD + 2 * utf16_length(value)
    return OBJECT_SIZE


def utf16_length(text: str) -> int:
    if text.isascii():
        return len(text)
    return len(text) + sum(1 for char in text if char > "\uffff")


def refused() -> ExpressionError:
    return ExpressionError(
        "the maximum allowed memory size was exceeded (GitHub refuses an expression that holds "
        "more than 1 MB)"
    )


class Counter:
    """What one function builds (the text of `format`, `join`, `toJSON`; the items of `.*`)."""

    __slots__ = ("total",)

    def __init__(self) -> None:
        self.total = 0

    def add(self, amount: int) -> None:
        self.total += amount
        if self.total > MAX_BYTES:
            raise refused()

    def add_text(self, text: str) -> None:
        self.add(size(text))


class Held:
    """What a whole evaluation holds, by depth in the tree."""

    __slots__ = ("by_depth", "total")

    def __init__(self) -> None:
        self.by_depth: list[int] = []
        self.total = 0

    def add(self, depth: int, amount: int, *, release_deeper: bool) -> None:
        by_depth = self.by_depth
        if release_deeper and len(by_depth) > depth + 1:
            self.total -= sum(by_depth[depth + 1 :])
            del by_depth[depth + 1 :]
        if len(by_depth) <= depth:
            by_depth.extend([0] * (depth + 1 - len(by_depth)))
        by_depth[depth] += amount
        self.total += amount
        if self.total > MAX_BYTES:
            raise refused()
