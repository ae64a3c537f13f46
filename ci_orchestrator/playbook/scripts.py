"""A folder of numbered scripts (`0407_Run-Tests.sh`) and the metadata in their header comments.

The header is the file's leading comment block: `#` lines (after an optional shebang), or a
PowerShell `<# ... #>` block whose `.NOTES` (or any other section) holds `Key: value` lines.
Known keys: Stage, Order, Dependencies, Tags, AllowParallel, Timeout, Description. Other keys
(`.SYNOPSIS` prose, `Author: ...`) are ignored, so headers can carry anything else.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ci_orchestrator.errors import Location, PlaybookError, Problem
from ci_orchestrator.output.paths import shown_path
from ci_orchestrator.units import parse_duration

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

SCRIPT_NAME = re.compile(r"([0-9]{4})_(.+)\.([A-Za-z0-9]+)")
_HEADER_BYTES = 64 * 1024  # metadata sits at the top; never read a whole large file
_KEY_VALUE = re.compile(r"([A-Za-z][A-Za-z0-9_-]*)\s*:\s*(.*)")
HEADER_KEYS = ("Stage", "Order", "Dependencies", "Tags", "AllowParallel", "Timeout", "Description")
_KNOWN_KEYS = {key.lower(): key for key in HEADER_KEYS}


@dataclass(frozen=True, slots=True, kw_only=True)
class ScriptInfo:
    """One numbered script and what its header says. `locations` holds the line of each key read."""

    number: str
    name: str
    path: Path
    stage: str | None = None
    order: int | None = None
    dependencies: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    allow_parallel: bool | None = None
    timeout: float | None = None
    description: str | None = None
    locations: Mapping[str, Location] = field(default_factory=dict)


def normalize_number(text: str) -> str | None:
    """`407` or `0407` -> `0407`; None when the text is not a script number."""
    text = text.strip()
    if not text.isdigit() or not text.isascii() or len(text.lstrip("0")) > 4:
        return None
    return f"{int(text):04d}"


def discover(directory: Path, problems: list[Problem] | None = None) -> list[ScriptInfo]:
    """Every `NNNN_Name.EXT` file of `directory`, in number order, with its header metadata.

    Malformed metadata and two scripts with one number go to `problems` when given (the scripts
    are still listed, the bad values left out, the second of a number left out); else they are
    raised, every problem of every script at once, as PlaybookError. A missing folder raises.
    """
    if not directory.is_dir():
        raise PlaybookError(f"scripts folder {shown_path(directory)} does not exist or is not a folder")
    found: list[Problem] = []
    scripts: dict[str, ScriptInfo] = {}
    for path in sorted(directory.iterdir()):
        match = SCRIPT_NAME.fullmatch(path.name)
        if match is None or not path.is_file():
            continue
        if (problem := _name_problem(path)) is not None:
            found.append(problem)
            continue
        info = read_script(path, found)
        first = scripts.get(info.number)
        if first is not None:
            found.append(
                Problem(
                    location=Location(file=shown_path(path)),
                    path="",
                    message=f"two scripts are numbered {info.number}: {first.path.name} and {path.name}",
                )
            )
            continue
        scripts[info.number] = info
    if problems is not None:
        problems.extend(found)
    elif found:
        raise PlaybookError.from_problems(sorted(found, key=_place))
    return [scripts[number] for number in sorted(scripts)]


def _name_problem(path: Path) -> Problem | None:
    """A script whose file name is not UTF-8 text: its name would reach every report, none of
    which can hold the bytes."""
    try:
        path.name.encode("utf-8")
    except UnicodeEncodeError:
        shown = os.fsencode(path.name).decode("utf-8", "backslashreplace")
        return Problem(
            location=Location(file=shown_path(path.parent)),
            path="",
            message=f"script '{shown}' has a file name that is not UTF-8 text: rename it",
        )
    return None


def _place(problem: Problem) -> tuple[str, int, int]:
    where = problem.location
    return (where.file, where.line, where.column) if where else ("", 0, 0)


def read_script(path: Path, problems: list[Problem]) -> ScriptInfo:
    """The metadata of one numbered script; malformed values go to `problems`."""
    match = SCRIPT_NAME.fullmatch(path.name)
    if match is None:
        raise PlaybookError(f"{path.name!r} is not a numbered script name (NNNN_Name.EXT)")
    number, name, _ = match.groups()
    shown = shown_path(path)
    try:
        with path.open("rb") as handle:
            head = handle.read(_HEADER_BYTES).decode("utf-8", errors="replace")
    except OSError as error:
        problems.append(
            Problem(location=Location(file=shown), path="", message=f"cannot read: {error.strerror}")
        )
        return ScriptInfo(number=number, name=name, path=path)
    values: dict[str, str] = {}
    locations: dict[str, Location] = {}
    for line_number, text in header_lines(head.splitlines()):
        found = _KEY_VALUE.fullmatch(text.strip())
        key = _KNOWN_KEYS.get(found.group(1).lower()) if found else None
        if found is None or key is None or key in values:
            continue
        values[key] = found.group(2).strip()
        locations[key] = Location(file=shown, line=line_number, column=text.index(found.group(1)) + 1)
    return _script_info(number, name, path=path, values=values, locations=locations, problems=problems)


def header_lines(lines: list[str]) -> list[tuple[int, str]]:
    """The lines of the leading comment block, with their 1-based numbers, comment marks removed."""
    block: list[tuple[int, str]] = []
    index = 1 if lines and lines[0].startswith("#!") else 0
    in_powershell_block = False
    for number, line in enumerate(lines[index:], start=index + 1):
        stripped = line.strip()
        if in_powershell_block:
            end = stripped.find("#>")
            block.append((number, line if end < 0 else line[: line.find("#>")]))
            in_powershell_block = end < 0
        elif stripped.startswith("<#"):
            rest = line[line.find("<#") + 2 :]
            in_powershell_block = "#>" not in rest
            block.append((number, " " * (line.find("<#") + 2) + rest.split("#>")[0]))
        elif stripped.startswith("#"):
            block.append((number, " " * (len(line) - len(line.lstrip("# \t"))) + line.lstrip("# \t")))
        elif stripped:
            break
    return block


def _script_info(
    number: str,
    name: str,
    *,
    path: Path,
    values: dict[str, str],
    locations: dict[str, Location],
    problems: list[Problem],
) -> ScriptInfo:
    def bad(key: str, message: str) -> None:
        problems.append(Problem(location=locations[key], path=key, message=message))

    order = None
    if "Order" in values:
        try:
            order = int(values["Order"])
        except ValueError:
            bad("Order", f"must be a whole number, not {values['Order']!r}")
    dependencies: list[str] = []
    for text in _listed(values.get("Dependencies", "")):
        dependency = normalize_number(text)
        if dependency is None:
            bad("Dependencies", f"{text!r} is not a script number (like 0401)")
        else:
            dependencies.append(dependency)
    allow_parallel = None
    if "AllowParallel" in values:
        allow_parallel = {"true": True, "false": False}.get(values["AllowParallel"].lower())
        if allow_parallel is None:
            bad("AllowParallel", f"must be true or false, not {values['AllowParallel']!r}")
    timeout = None
    if "Timeout" in values:
        try:
            timeout = parse_duration(values["Timeout"])
        except ValueError as error:
            bad("Timeout", str(error))
    return ScriptInfo(
        number=number,
        name=name,
        path=path,
        stage=values.get("Stage") or None,
        order=order,
        dependencies=tuple(dependencies),
        tags=tuple(_listed(values.get("Tags", ""))),
        allow_parallel=allow_parallel,
        timeout=timeout,
        description=values.get("Description") or None,
        locations=locations,
    )


def _listed(text: str) -> list[str]:
    items = [item.strip() for item in text.split(",") if item.strip()]
    return [] if [item.lower() for item in items] == ["none"] else items
