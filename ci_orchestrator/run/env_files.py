"""GitHub's environment files: what a step writes to `GITHUB_OUTPUT` and `GITHUB_ENV` (`NAME=value`
lines, or `NAME<<DELIMITER` ... `DELIMITER` for a value of several lines) and to `GITHUB_PATH`
(one folder a line)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path


class EnvFileError(ValueError):
    """A file GitHub would refuse: a line without `=` or `<<`, a delimiter never closed."""


def read_pairs(path: Path) -> dict[str, str]:
    """The names and values of an output or env file; a missing file holds none."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return {}
    pairs: dict[str, str] = {}
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        line = lines[index]
        index += 1
        if not line.strip():
            continue
        equals = line.find("=")
        heredoc = line.find("<<")
        if equals > 0 and (heredoc < 0 or equals < heredoc):
            pairs[line[:equals]] = line[equals + 1 :]
            continue
        if heredoc <= 0:
            raise EnvFileError(f"line {index}: expected NAME=value or NAME<<DELIMITER, not {line[:60]!r}")
        name, delimiter = line[:heredoc], line[heredoc + 2 :]
        if not delimiter:
            raise EnvFileError(f"line {index}: {name}<< has no delimiter")
        value: list[str] = []
        while index < len(lines) and lines[index] != delimiter:
            value.append(lines[index])
            index += 1
        if index >= len(lines):
            raise EnvFileError(f"{name}: delimiter {delimiter!r} is never closed")
        index += 1
        pairs[name] = "\n".join(value)
    return pairs


def read_paths(path: Path) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return []
    return [line.strip() for line in text.splitlines() if line.strip()]
