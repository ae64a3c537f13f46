"""Settings: `ci-orchestrator.toml` (or `[tool.ci-orchestrator]` in pyproject.toml), its profiles and
per-step defaults, each value with the level that set it; and the limits the machine imposes."""

from __future__ import annotations

import difflib
import math
import os
import re
import tomllib
from dataclasses import dataclass
from enum import Enum
from fnmatch import fnmatchcase
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

from ci_orchestrator.errors import Location, PlaybookError, Problem, UsageError
from ci_orchestrator.playbook import Execution

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping

CONFIG_NAME = "ci-orchestrator.toml"
PYPROJECT_NAME = "pyproject.toml"
CI_PROFILE = "ci"
AUTO = "auto"
CACHE_DIR_VARIABLE = "CI_ORCHESTRATOR_CACHE_DIR"
DEFAULT_CACHE_DIR = Path(".ci-orchestrator/cache")
DEFAULT_CACHE_SIZE = 2 * 2**30  # 2 GiB, as the cache contract says

SettingValue: TypeAlias = bool | int | float | str | Path | Enum | None


class OutputMode(Enum):
    """How step output reaches the console."""

    GROUPED = "grouped"
    STREAM = "stream"
    QUIET = "quiet"


# ---------------------------------------------------------------- values


def parse_duration(text: str | float) -> float:
    """Seconds from a number or a text like `90`, `1.5`, `90s`, `2m`, `1h30m`.

    Raises ValueError for a malformed or negative duration, TypeError for a value of another type.
    """
    if isinstance(text, bool):
        raise TypeError(f"invalid duration {text!r}")
    seconds = float(text) if isinstance(text, int | float) else _duration_text(text)
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"invalid duration {text!r}: must be a finite number of seconds, 0 or more")
    return seconds


_NUMBER = r"\d+(?:\.\d+)?"
_DURATION = re.compile(rf"(?:({_NUMBER})h)?\s*(?:({_NUMBER})m)?\s*(?:({_NUMBER})s)?", re.IGNORECASE)


def _duration_text(text: str) -> float:
    stripped = text.strip()
    try:
        return float(stripped)
    except ValueError:
        pass
    match = _DURATION.fullmatch(stripped)
    if not stripped or match is None:
        raise ValueError(f"invalid duration {text!r}: use seconds or a form like 90s, 2m, 1h30m")
    hours, minutes, seconds = (float(part or 0) for part in match.groups())
    return hours * 3600 + minutes * 60 + seconds


_SIZE = re.compile(rf"({_NUMBER})\s*([kmgt]?)(i?)(b?)", re.IGNORECASE)


def parse_size(text: str | int) -> int:
    """Bytes from an integer or a text like `500MB`, `2GiB`, `1.5G` (K, M, G, T alone are binary)."""
    if isinstance(text, bool):
        raise TypeError(f"invalid size {text!r}")
    if isinstance(text, int):
        size = text
    else:
        match = _SIZE.fullmatch(text.strip())
        if match is None:
            raise ValueError(f"invalid size {text!r}: use bytes or a form like 500MB, 2GiB")
        number, prefix, binary, byte = match.groups()
        power = " kmgt".index(prefix.lower()) if prefix else 0
        # `2G` means GiB, as in most tools' size options; only an explicit `GB` is decimal.
        base = 1000 if (byte and not binary and prefix) else 1024
        size = int(float(number) * base**power)
    if size <= 0:
        raise ValueError(f"invalid size {text!r}: must be more than 0 bytes")
    return size


def most_restrictive(*levels: bool | None) -> bool:
    """Parallel permission over every level: False when any level says False; True by default."""
    return all(level is not False for level in levels)


def smallest_limit(*limits: int | None) -> int | None:
    """The tightest of several concurrency limits; None when no level sets one."""
    given = [limit for limit in limits if limit is not None]
    return min(given) if given else None


# ---------------------------------------------------------------- CPUs


def available_cpus(
    *, proc_cgroup: Path = Path("/proc/self/cgroup"), cgroup_root: Path = Path("/sys/fs/cgroup")
) -> int:
    """The CPUs this process may use: its affinity mask, capped by a cgroup v2 or v1 CPU quota.

    A fractional quota is rounded up: 1.5 CPUs still lets a second process make progress.
    The paths are parameters so that a container's or a test's own files can be read.
    """
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    quota = _cgroup_quota(proc_cgroup, cgroup_root)
    if quota is not None:
        cpus = min(cpus, math.ceil(quota))
    return max(1, cpus)


def _cgroup_quota(proc_cgroup: Path, cgroup_root: Path) -> float | None:
    try:
        lines = proc_cgroup.read_text(encoding="utf-8").splitlines()
    except OSError:
        return None
    quotas: list[float] = []
    for line in lines:
        hierarchy, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        relative = path.strip().lstrip("/")
        if hierarchy == "0" and not controllers:
            for folder in _self_and_ancestors(cgroup_root, relative):
                quotas.extend(_v2_quota(folder / "cpu.max"))
        elif "cpu" in controllers.split(","):
            for mount in ("cpu", "cpu,cpuacct", "cpuacct,cpu"):
                for folder in _self_and_ancestors(cgroup_root / mount, relative):
                    quotas.extend(_v1_quota(folder))
    return min(quotas) if quotas else None


def _self_and_ancestors(base: Path, relative: str) -> Iterator[Path]:
    # A parent's limit binds its children too; inside a container the process's own path may not
    # exist under the mount, and the mount root holds the container's limit.
    parts = [part for part in relative.split("/") if part]
    for depth in range(len(parts), -1, -1):
        yield base.joinpath(*parts[:depth])


def _v2_quota(path: Path) -> list[float]:
    try:
        quota, period = path.read_text(encoding="utf-8").split()[:2]
        return [] if quota == "max" else [int(quota) / int(period)]
    except (OSError, ValueError, ZeroDivisionError):
        return []


def _v1_quota(folder: Path) -> list[float]:
    try:
        quota = int((folder / "cpu.cfs_quota_us").read_text(encoding="utf-8"))
        period = int((folder / "cpu.cfs_period_us").read_text(encoding="utf-8"))
        return [quota / period] if quota > 0 and period > 0 else []
    except (OSError, ValueError):
        return []


# ---------------------------------------------------------------- the model


@dataclass(frozen=True, slots=True, kw_only=True)
class Setting:
    """One effective setting and the level that set it (`default`, `ci-orchestrator.toml:7`, ...)."""

    key: str
    value: SettingValue
    origin: str

    @property
    def text(self) -> str:
        """The value as a user would write it."""
        if self.value is None:
            return "unset"
        if isinstance(self.value, bool):
            return str(self.value).lower()
        if isinstance(self.value, Enum):
            return str(self.value.value)
        return str(self.value)


@dataclass(frozen=True, slots=True, kw_only=True)
class StepDefaults:
    """One `[defaults]` entry: the steps it applies to (`pattern`) and the values it gives them.

    A pattern is a script-number range (`0400-0499`), a wildcard (`test-*`), `tag:NAME`,
    `stage:NAME`, or an id, matched as `--select` terms are.
    """

    pattern: str
    origin: str
    allow_parallel: bool | None = None
    timeout: float | None = None
    retry: int | None = None
    tags: tuple[str, ...] = ()

    def matches(
        self, step_id: str, *, number: str | None = None, tags: tuple[str, ...] = (), stage: str | None = None
    ) -> bool:
        pattern = self.pattern
        if pattern.startswith("stage:"):
            return stage is not None and stage.casefold() == pattern[6:].casefold()
        if pattern.startswith("tag:"):
            return any(tag.casefold() == pattern[4:].casefold() for tag in tags)
        names = [step_id] + ([number] if number else [])
        numeric = _RANGE.fullmatch(pattern)
        if numeric:
            low, high = int(numeric[1]), int(numeric[2])
            return any(name.isdigit() and low <= int(name) <= high for name in names)
        return any(fnmatchcase(name, pattern) for name in names)


_RANGE = re.compile(r"(\d+)-(\d+)")


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """The effective settings: every key with its origin, and the `[defaults]` entries in file
    order (a profile's after the base table's). `source` is the file read, if any."""

    values: Mapping[str, Setting]
    step_defaults: tuple[StepDefaults, ...] = ()
    profile: str | None = None
    source: Path | None = None

    def get(self, key: str) -> Setting:
        """One setting by its name (or alias); an unknown name is a UsageError with a suggestion."""
        name = _ALIASES.get(key, key)
        if name not in self.values:
            raise UsageError(f"unknown setting {key!r}{_suggest(key, [*_KEYS, *_ALIASES])}")
        return self.values[name]

    def __iter__(self) -> Iterator[Setting]:
        return iter(self.values.values())

    @property
    def execution(self) -> Execution | None:
        value = self.values["execution"].value
        return value if isinstance(value, Execution) else None

    @property
    def concurrency(self) -> int | None:
        """A number of processes; `auto` becomes the CPUs available; None when no file sets it."""
        value = self.values["concurrency"].value
        if value == AUTO:
            return available_cpus()
        return value if isinstance(value, int) else None

    @property
    def timeout(self) -> float | None:
        value = self.values["timeout"].value
        return float(value) if isinstance(value, int | float) else None

    @property
    def cache_size(self) -> int:
        value = self.values["cache-size"].value
        return value if isinstance(value, int) else DEFAULT_CACHE_SIZE

    @property
    def cache_dir(self) -> Path:
        value = self.values["cache-dir"].value
        return value if isinstance(value, Path) else DEFAULT_CACHE_DIR

    @property
    def fail_fast(self) -> bool:
        return self.values["fail-fast"].value is not False

    @property
    def output(self) -> OutputMode:
        value = self.values["output"].value
        return value if isinstance(value, OutputMode) else OutputMode.GROUPED

    @property
    def allow_parallel(self) -> bool:
        return self.values["allow-parallel"].value is not False

    def defaults_for(
        self, step_id: str, *, number: str | None = None, tags: tuple[str, ...] = (), stage: str | None = None
    ) -> StepDefaults:
        """The `[defaults]` entries matching one step, merged: a later entry overrides an earlier
        one key by key (so a profile's entry overrides the base's), tags add up."""
        merged: dict[str, Any] = {"allow_parallel": None, "timeout": None, "retry": None}
        matched = [
            entry
            for entry in self.step_defaults
            if entry.matches(step_id, number=number, tags=tags, stage=stage)
        ]
        for entry in matched:
            for name in merged:
                if getattr(entry, name) is not None:
                    merged[name] = getattr(entry, name)
        return StepDefaults(
            pattern=",".join(dict.fromkeys(entry.pattern for entry in matched)),
            origin="; ".join(entry.origin for entry in matched) or "default",
            tags=tuple(dict.fromkeys(tag for entry in matched for tag in entry.tags)),
            **merged,
        )


# ---------------------------------------------------------------- keys and checks


def _boolean(value: object) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"expected true or false, got {value!r}")
    return value


def _concurrency(value: object) -> int | str:
    if isinstance(value, str) and value.strip().lower() == AUTO:
        return AUTO
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"expected a number of processes (1 or more) or 'auto', got {value!r}")
    return value


def _timeout(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise TypeError(f"expected a duration such as 90s, 2m or 1h30m, got {value!r}")
    seconds = parse_duration(value)
    if seconds <= 0:
        raise ValueError(f"a timeout must be more than 0 seconds, got {value!r}")
    return seconds


def _size(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise TypeError(f"expected a size such as 500MB or 2GiB, got {value!r}")
    return parse_size(value)


def _folder(value: object) -> Path:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"expected a folder path, got {value!r}")
    return Path(value)


def _choice(kind: type[Enum]) -> Callable[[object], Enum]:
    def convert(value: object) -> Enum:
        names = [member.value for member in kind]
        if isinstance(value, str) and value.strip().lower() in names:
            return kind(value.strip().lower())
        raise ValueError(f"expected one of {', '.join(names)}, got {value!r}{_suggest(str(value), names)}")

    return convert


def _count(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"expected a whole number, 0 or more, got {value!r}")
    return value


def _tags(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(tag, str) and tag.strip() for tag in value):
        raise ValueError(f"expected a list of tag names, got {value!r}")
    return tuple(tag.strip() for tag in value)


_KEYS: dict[str, tuple[Callable[[object], Any], SettingValue]] = {
    "execution": (_choice(Execution), None),
    "concurrency": (_concurrency, None),
    "timeout": (_timeout, None),
    "cache-size": (_size, DEFAULT_CACHE_SIZE),
    "cache-dir": (_folder, DEFAULT_CACHE_DIR),
    "fail-fast": (_boolean, True),
    "output": (_choice(OutputMode), OutputMode.GROUPED),
    "allow-parallel": (_boolean, True),
}
# The engines users migrate from called the concurrency limit `max_parallel_workers`.
_ALIASES = {"max-parallel-workers": "concurrency"}
_DEFAULTS_KEYS: dict[str, Callable[[object], Any]] = {
    "allow-parallel": _boolean,
    "timeout": _timeout,
    "retry": _count,
    "tags": _tags,
}
_PATTERN = re.compile(r"(?:tag:|stage:)\S+|[A-Za-z0-9_.*?\[\]-]+")


def _suggest(word: str, candidates: list[str]) -> str:
    close = difflib.get_close_matches(word, candidates, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


# ---------------------------------------------------------------- loading


def load_settings(
    root: Path,
    *,
    config: Path | None = None,
    profile: str | None = None,
    environ: Mapping[str, str] = os.environ,
) -> Settings:
    """The effective settings for a run in `root`.

    Levels, lowest first: built-in defaults, the file's base table, the chosen profile, then
    `$CI_ORCHESTRATOR_CACHE_DIR`. The profile is `profile`, else `ci` when `CI=true` and the file
    has one. A bad file is a PlaybookError listing every problem with its line; a missing
    `config` file or an unknown `profile` is a UsageError.
    """
    source = _find_source(root, config)
    reader = _Reader(source, root) if source is not None else None
    table = reader.table if reader is not None else {}
    profiles = table.get("profile", {}) if isinstance(table.get("profile"), dict) else {}
    levels: dict[tuple[str, ...], tuple[dict[str, Setting], list[StepDefaults]]] = {}
    if reader is not None:
        # Every profile is checked, not only the one in use: a mistake shows before it matters.
        problems: list[Problem] = []
        levels[()] = reader.level((), table, problems)
        for name, body in profiles.items():
            levels["profile", name] = reader.level(("profile", name), body, problems)
        if problems:
            raise PlaybookError.from_problems(problems)
    chosen = _choose_profile(profile, profiles, environ, reader.name if reader else None)

    values = {key: Setting(key=key, value=default, origin="default") for key, (_, default) in _KEYS.items()}
    step_defaults: list[StepDefaults] = []
    for prefix in [(), ("profile", chosen)] if chosen else [()]:
        level_values, level_defaults = levels.get(prefix, ({}, []))
        values.update(level_values)
        step_defaults.extend(level_defaults)
    if environ.get(CACHE_DIR_VARIABLE):
        values["cache-dir"] = Setting(
            key="cache-dir",
            value=root / environ[CACHE_DIR_VARIABLE],
            origin=f"environment {CACHE_DIR_VARIABLE}",
        )
    return Settings(values=values, step_defaults=tuple(step_defaults), profile=chosen, source=source)


def _find_source(root: Path, config: Path | None) -> Path | None:
    if config is not None:
        if not config.is_file():
            raise UsageError(f"settings file {str(config)!r} not found", path="--config")
        return config
    for candidate in (root / CONFIG_NAME, root / PYPROJECT_NAME):
        if candidate.is_file() and (candidate.name == CONFIG_NAME or _has_tool_table(candidate)):
            return candidate
    return None


def _has_tool_table(pyproject: Path) -> bool:
    try:
        text = pyproject.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        # A broken pyproject.toml is ours to report only when it holds our table.
        return "[tool.ci-orchestrator" in text
    tool = document.get("tool")
    return isinstance(tool, dict) and "ci-orchestrator" in tool


def _choose_profile(
    explicit: str | None, profiles: Mapping[str, Any], environ: Mapping[str, str], source: str | None
) -> str | None:
    if explicit is not None:
        if explicit not in profiles:
            known = ", ".join(sorted(profiles)) or "none"
            where = f" in {source}" if source else " (no settings file found)"
            raise UsageError(
                f"unknown profile {explicit!r}{_suggest(explicit, list(profiles))}; profiles{where}: {known}",
                path="--profile",
            )
        return explicit
    if environ.get("CI", "").strip().lower() == "true" and CI_PROFILE in profiles:
        return CI_PROFILE
    return None


class _Reader:
    """One settings file: its table, and the line of each key for located errors."""

    def __init__(self, source: Path, root: Path) -> None:
        self.source = source
        self.base = source.parent
        self.name = _display(source, root)
        self.prefix: tuple[str, ...] = ("tool", "ci-orchestrator") if source.name == PYPROJECT_NAME else ()
        try:
            text = source.read_text(encoding="utf-8")
            document = tomllib.loads(text)
        except OSError as error:
            raise PlaybookError(
                f"cannot read settings: {error.strerror}", location=Location(file=self.name)
            ) from None
        except UnicodeDecodeError:
            raise PlaybookError("not UTF-8 text", location=Location(file=self.name)) from None
        except tomllib.TOMLDecodeError as error:
            raise self._syntax_error(str(error)) from None
        self.lines = _key_lines(text)
        table: Any = document
        for part in self.prefix:
            table = table.get(part, {}) if isinstance(table, dict) else {}
        self.table: dict[str, Any] = table if isinstance(table, dict) else {}

    def _syntax_error(self, message: str) -> PlaybookError:
        where = re.search(r"\s*\(at line (\d+), column (\d+)\)", message)
        if where is None:
            return PlaybookError(f"invalid TOML: {message}", location=Location(file=self.name))
        location = Location(file=self.name, line=int(where[1]), column=int(where[2]))
        return PlaybookError(f"invalid TOML: {message[: where.start()]}", location=location)

    def locate(self, path: tuple[str, ...]) -> Location:
        full = self.prefix + path
        for end in range(len(full), 0, -1):
            if full[:end] in self.lines:
                line, column = self.lines[full[:end]]
                return Location(file=self.name, line=line, column=column)
        return Location(file=self.name)

    def origin(self, path: tuple[str, ...], profile: str | None) -> str:
        where = f"{self.name}:{self.locate(path).line}"
        return f"profile {profile}, {where}" if profile else where

    def level(
        self, prefix: tuple[str, ...], body: object, problems: list[Problem]
    ) -> tuple[dict[str, Setting], list[StepDefaults]]:
        """The settings and `[defaults]` entries of the base table (prefix `()`) or one profile."""
        profile = prefix[1] if prefix else None
        if not isinstance(body, dict):
            problems.append(self._problem(prefix, f"expected a table, got {body!r}"))
            return {}, []
        values: dict[str, Setting] = {}
        defaults: list[StepDefaults] = []
        tables = ["defaults"] if prefix else ["defaults", "profile"]
        for key, raw in body.items():
            path = (*prefix, key)
            name = _ALIASES.get(key, key)
            if key == "defaults":
                defaults = self._defaults(path, raw, profile, problems)
            elif key == "profile" and not prefix:
                if not isinstance(raw, dict):
                    problems.append(self._problem(path, "expected tables such as [profile.ci]"))
            elif name not in _KEYS:
                candidates = [*_KEYS, *_ALIASES, *tables]
                problems.append(self._problem(path, f"unknown key {key!r}{_suggest(key, candidates)}"))
            elif name in values:
                problems.append(self._problem(path, f"{name!r} is set twice (once as {key!r})"))
            else:
                converted = self._convert(path, _KEYS[name][0], raw, problems)
                if name == "cache-dir" and isinstance(converted, Path):
                    converted = self.base / converted  # relative to the file, as users expect
                if converted is not None:
                    values[name] = Setting(key=name, value=converted, origin=self.origin(path, profile))
        return values, defaults

    def _defaults(
        self, path: tuple[str, ...], raw: object, profile: str | None, problems: list[Problem]
    ) -> list[StepDefaults]:
        if not isinstance(raw, dict):
            problems.append(self._problem(path, 'expected a table of patterns, such as "0400-0499" = {...}'))
            return []
        entries = []
        for pattern, body in raw.items():
            where = (*path, pattern)
            wrong = _pattern_problem(pattern)
            if wrong:
                problems.append(self._problem(where, wrong))
                continue
            if not isinstance(body, dict):
                problems.append(self._problem(where, f"expected a table of step defaults, got {body!r}"))
                continue
            fields: dict[str, Any] = {}
            for key, value in body.items():
                if key not in _DEFAULTS_KEYS:
                    message = f"unknown key {key!r}{_suggest(key, list(_DEFAULTS_KEYS))}"
                    problems.append(self._problem((*where, key), message))
                    continue
                converted = self._convert((*where, key), _DEFAULTS_KEYS[key], value, problems)
                if converted is not None:
                    fields[key.replace("-", "_")] = converted
            entries.append(StepDefaults(pattern=pattern, origin=self.origin(where, profile), **fields))
        return entries

    def _convert(
        self, path: tuple[str, ...], convert: Callable[[object], Any], raw: object, problems: list[Problem]
    ) -> Any:
        try:
            return convert(raw)
        except (ValueError, TypeError) as error:
            problems.append(self._problem(path, str(error)))
            return None

    def _problem(self, path: tuple[str, ...], message: str) -> Problem:
        return Problem(location=self.locate(path), path=".".join(path), message=message)


def _pattern_problem(pattern: str) -> str | None:
    numeric = _RANGE.fullmatch(pattern)
    if numeric and int(numeric[1]) > int(numeric[2]):
        return f"invalid range {pattern!r}: its start is after its end"
    if numeric or _PATTERN.fullmatch(pattern):
        return None
    return (
        f"invalid step pattern {pattern!r}: use a number range (0400-0499), a wildcard (test-*), "
        "tag:NAME, stage:NAME or a step id"
    )


def _display(path: Path, root: Path) -> str:
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)


_BARE_KEY = r"[A-Za-z0-9_-]+"
_QUOTED_KEY = r"\"(?:[^\"\\]|\\.)*\"|'[^']*'"
_KEY = rf"(?:{_BARE_KEY}|{_QUOTED_KEY})(?:\s*\.\s*(?:{_BARE_KEY}|{_QUOTED_KEY}))*"
_HEADER = re.compile(rf"\s*\[\[?\s*({_KEY})\s*\]")
_ASSIGN = re.compile(rf"\s*({_KEY})\s*=")
_INLINE_KEY = re.compile(rf"[{{,]\s*({_KEY})\s*=")
_KEY_PART = re.compile(rf"{_BARE_KEY}|{_QUOTED_KEY}")


def _key_lines(text: str) -> dict[tuple[str, ...], tuple[int, int]]:
    """Key path -> (line, column) of where it is first written.

    tomllib keeps no positions, so the text is scanned: table headers, `key =` lines and the keys
    of inline tables one level deep. Lines inside multi-line strings are skipped.
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
