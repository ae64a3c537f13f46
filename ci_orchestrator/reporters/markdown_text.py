"""Markdown that shows any text as written: code spans and fenced blocks nothing in the text can
close, free text with markdown's special characters escaped, texts held to a length."""

from __future__ import annotations

import re

_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>|~#])")


def fenced(text: str, info: str) -> str:
    """A fenced code block that nothing in `text` can close: the fence outruns every backtick run."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{info}\n{text}\n{fence}"


def code(text: str) -> str:
    """An inline code span for any text (ids may hold backticks)."""
    text = " ".join(text.split())
    if "`" not in text:  # most ids: no backtick run to outrun
        return f"`{text}`"
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    ticks = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{ticks}{pad}{text}{pad}{ticks}"


def escape(text: str) -> str:
    """Free text that markdown shows as written."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", " ".join(text.split()))


def short(text: str, limit: int = 120) -> str:
    text = " ".join(text.split())
    return escape(text if len(text) <= limit else text[: limit - 1] + "…")


def last_bytes(text: str, limit: int) -> str:
    """The end of `text` in at most `limit` bytes of UTF-8, from a line start when there is one."""
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    if limit <= 0:
        return ""
    end = data[-limit:]
    newline = end.find(b"\n")
    if 0 <= newline < len(end) - 1:
        end = end[newline + 1 :]
    return end.decode("utf-8", errors="ignore")
