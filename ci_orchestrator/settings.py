"""Settings: `ci-orchestrator.toml` (or `[tool.ci-orchestrator]` in pyproject.toml), its profiles and
per-step defaults, each value with the level that set it. Durations and sizes are read by `units`,
each value is checked by `settings_checks`, `auto` CPUs come from `cpus`."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

from ci_orchestrator import cpus, terms
from ci_orchestrator import settings_checks as checks
from ci_orchestrator.errors import Location, PlaybookError, Problem, UsageError, did_you_mean
from ci_orchestrator.playbook import Execution

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping

CONFIG_NAME = "ci-orchestrator.toml"
PYPROJECT_NAME = "pyproject.toml"
CI_PROFILE = "ci"
CACHE_DIR_VARIABLE = "CI_ORCHESTRATOR_CACHE_DIR"
DEFAULT_CACHE_DIR = Path(".ci-orchestrator/cache")
DEFAULT_CACHE_SIZE = 2 * 2**30  # 2 GiB, as the cache contract says

SettingValue: TypeAlias = bool | int | float | str | Path | Enum | None


class OutputMode(Enum):
    """How step output reaches the console."""

    GROUPED = "grouped"  # a step's whole log when it ends, never interleaved with another's
    STREAM = "stream"  # lines as they come, each prefixed with its instance id
    QUIET = "quiet"  # only the logs of failed steps, and the result


# ---------------------------------------------------------------- values


def most_restrictive(*levels: bool | None) -> bool:
    """Parallel permission over every level: False when any level says False; True by default."""
    return all(level is not False for level in levels)


def smallest_limit(*limits: int | None) -> int | None:
    """The tightest of several concurrency limits; None when no level sets one."""
    given = [limit for limit in limits if limit is not None]
    return min(given) if given else None


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
        names = [step_id] + ([number] if number else [])
        return terms.matches(self.pattern, names, stage=stage, tags=tags)


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
            raise UsageError(f"unknown setting {key!r}{did_you_mean(key, [*_KEYS, *_ALIASES])}")
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
        if value == checks.AUTO:
            return cpus.available_cpus()
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


_KEYS: dict[str, tuple[Callable[[object], Any], SettingValue]] = {
    "execution": (checks.choice(Execution), None),
    "concurrency": (checks.concurrency, None),
    "timeout": (checks.timeout, None),
    "cache-size": (checks.size, DEFAULT_CACHE_SIZE),
    "cache-dir": (checks.folder, DEFAULT_CACHE_DIR),
    "fail-fast": (checks.boolean, True),
    "output": (checks.choice(OutputMode), OutputMode.GROUPED),
    "allow-parallel": (checks.boolean, True),
}
# The engines users migrate from called the concurrency limit `max_parallel_workers`.
_ALIASES = {"max-parallel-workers": "concurrency"}
_DEFAULTS_KEYS: dict[str, Callable[[object], Any]] = {
    "allow-parallel": checks.boolean,
    "timeout": checks.timeout,
    "retry": checks.count,
    "tags": checks.tags,
}


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
    import tomllib  # here and in _Reader: a project without a settings file never needs it

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
            hint = did_you_mean(explicit, profiles)
            raise UsageError(
                f"unknown profile {explicit!r}{hint}; profiles{where}: {known}", path="--profile"
            )
        return explicit
    if environ.get("CI", "").strip().lower() == "true" and CI_PROFILE in profiles:
        return CI_PROFILE
    return None


class _Reader:
    """One settings file: its table, and the line of each key for located errors."""

    def __init__(self, source: Path, root: Path) -> None:
        import tomllib  # see _has_tool_table

        from ci_orchestrator.tomllines import key_lines

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
        self.lines = key_lines(text)
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
                problems.append(self._problem(path, f"unknown key {key!r}{did_you_mean(key, candidates)}"))
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
            wrong = checks.pattern_problem(pattern)
            if wrong:
                problems.append(self._problem(where, wrong))
                continue
            if not isinstance(body, dict):
                problems.append(self._problem(where, f"expected a table of step defaults, got {body!r}"))
                continue
            fields: dict[str, Any] = {}
            for key, value in body.items():
                if key not in _DEFAULTS_KEYS:
                    message = f"unknown key {key!r}{did_you_mean(key, list(_DEFAULTS_KEYS))}"
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


def _display(path: Path, root: Path) -> str:
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)
