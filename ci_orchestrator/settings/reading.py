"""Reading the settings: the file (`ci-orchestrator.toml`, or `[tool.ci-orchestrator]` in
pyproject.toml), its base table and profiles, every value checked with the line it is on, and the
level each effective value comes from."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ci_orchestrator import ci
from ci_orchestrator.errors import Location, PlaybookError, Problem, UsageError, did_you_mean
from ci_orchestrator.output.mode import default_mode, default_origin
from ci_orchestrator.output.paths import shown_path
from ci_orchestrator.playbook import lookup
from ci_orchestrator.settings import checks
from ci_orchestrator.settings.model import (
    ALIASES,
    CACHE_DIR_VARIABLE,
    CI_PROFILE,
    CONFIG_NAME,
    KEYS,
    PYPROJECT_NAME,
    STEP_DEFAULT_KEYS,
    Setting,
    Settings,
    StepDefaults,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping


def read_settings(
    root: Path,
    *,
    config: Path | None = None,
    profile: str | None = None,
    environ: Mapping[str, str] = os.environ,
) -> Settings:
    """The effective settings for a run in `root`.

    Levels, lowest first: built-in defaults, the file's base table, the chosen profile, then
    `$CI_ORCHESTRATOR_CACHE_DIR`. The profile is `profile`, else `ci` under CI (`ci.under_ci`)
    when the file has one. A bad file is a PlaybookError listing every problem with its line; a missing
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

    values = {key: Setting(key=key, value=default, origin="default") for key, (_, default) in KEYS.items()}
    values["output"] = Setting(key="output", value=default_mode(environ), origin=default_origin(environ))
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
        found = lookup.look(config)
        if found.kind is lookup.Kind.REFUSED:
            raise UsageError(
                f"settings file {str(config)!r} cannot be read: {found.problem}", path="--config"
            )
        if found.kind is not lookup.Kind.FILE:
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
    except ValueError:  # TOMLDecodeError, or a number too long for `int()`
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
    if ci.under_ci(environ) and CI_PROFILE in profiles:
        return CI_PROFILE
    return None


class _Reader:
    """One settings file: its table, and the line of each key for located errors."""

    def __init__(self, source: Path, root: Path) -> None:
        import tomllib  # see _has_tool_table

        from ci_orchestrator.settings.toml_lines import key_lines

        self.source = source
        self.base = source.parent
        self.name = shown_path(source, root)
        self.prefix: tuple[str, ...] = ("tool", "ci-orchestrator") if source.name == PYPROJECT_NAME else ()
        try:
            data = source.read_bytes()
            text = data.decode("utf-8")
            document = tomllib.loads(text)
        except OSError as error:
            raise PlaybookError(
                f"cannot read settings: {error.strerror}", location=Location(file=self.name)
            ) from None
        except UnicodeDecodeError as error:
            raise PlaybookError.not_utf8(data, error, file=self.name) from None
        except tomllib.TOMLDecodeError as error:
            raise self._syntax_error(str(error)) from None
        except ValueError:  # raised by `int()` for a number thousands of digits long
            raise PlaybookError(
                "invalid TOML: a number too long to read", location=Location(file=self.name)
            ) from None
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
            name = ALIASES.get(key, key)
            if key == "defaults":
                defaults = self._defaults(path, raw, profile, problems)
            elif key == "profile" and not prefix:
                if not isinstance(raw, dict):
                    problems.append(self._problem(path, "expected tables such as [profile.ci]"))
            elif name not in KEYS:
                candidates = [*KEYS, *ALIASES, *tables]
                problems.append(self._problem(path, f"unknown key {key!r}{did_you_mean(key, candidates)}"))
            elif name in values:
                problems.append(self._problem(path, f"{name!r} is set twice (once as {key!r})"))
            else:
                converted = self._convert(path, KEYS[name][0], raw, problems)
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
                if key not in STEP_DEFAULT_KEYS:
                    message = f"unknown key {key!r}{did_you_mean(key, list(STEP_DEFAULT_KEYS))}"
                    problems.append(self._problem((*where, key), message))
                    continue
                converted = self._convert((*where, key), STEP_DEFAULT_KEYS[key], value, problems)
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
