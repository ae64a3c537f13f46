"""Where each key of a TOML text is written: tomllib keeps no positions, and a located error
(`ci-orchestrator.toml:7:1: ...`) needs them."""

from __future__ import annotations

import re

_BARE_KEY = r"[A-Za-z0-9_-]+"
_QUOTED_KEY = r"\"(?:[^\"\\]|\\.)*\"|'[^']*'"
_KEY = rf"(?:{_BARE_KEY}|{_QUOTED_KEY})(?:\s*\.\s*(?:{_BARE_KEY}|{_QUOTED_KEY}))*"
_HEADER = re.compile(rf"\s*\[\[?\s*({_KEY})\s*\]")
_ASSIGN = re.compile(rf"\s*({_KEY})\s*=")
_INLINE_KEY = re.compile(rf"[{{,]\s*({_KEY})\s*=")
_KEY_PART = re.compile(rf"{_BARE_KEY}|{_QUOTED_KEY}")


def key_lines(text: str) -> dict[tuple[str, ...], tuple[int, int]]:
    """Key path -> (line, column) of where it is first written.

    The text is scanned: table headers, `key =` lines and the keys of inline tables one level
    deep. Lines inside multi-line strings are skipped.
    """
    found: dict[tuple[str, ...], tuple[int, int]] = {}
    table: tuple[str, ...] = ()
    in_string = False
    for number, line in enumerate(text.splitlines(), start=1):
        quotes = line.count('"""') + line.count("'''")
        if in_string:
            in_string = quotes % 2 == 0
            continue
        in_string = quotes % 2 == 1
        header = _HEADER.match(line)
        if header and not line.lstrip().startswith("#"):
            table = _parts(header[1])
            for end in range(1, len(table) + 1):
                found.setdefault(table[:end], (number, header.start(1) + 1))
            continue
        assign = _ASSIGN.match(line)
        if not assign:
            continue
        key = (*table, *_parts(assign[1]))
        found.setdefault(key, (number, assign.start(1) + 1))
        for inner in _INLINE_KEY.finditer(line, assign.end()):
            found.setdefault((*key, *_parts(inner[1])), (number, inner.start(1) + 1))
    return found


def _parts(key: str) -> tuple[str, ...]:
    return tuple(part[1:-1] if part[0] in "\"'" else part for part in _KEY_PART.findall(key))
