"""Settings: `ci-orchestrator.toml` (or `[tool.ci-orchestrator]` in pyproject.toml), its profiles and
per-step defaults, each value with the level that set it. Durations and sizes are read by `units`,
each value is checked by `settings/checks`, `auto` CPUs come from `cpus`."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

from ci_orchestrator import cpus
from ci_orchestrator.errors import UsageError, did_you_mean
from ci_orchestrator.output.mode import OutputMode, default_mode
from ci_orchestrator.playbook import terms
from ci_orchestrator.playbook.model import Execution
from ci_orchestrator.settings import checks
from ci_orchestrator.units import parse_duration

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping

CONFIG_NAME = "ci-orchestrator.toml"
PYPROJECT_NAME = "pyproject.toml"
CI_PROFILE = "ci"
CACHE_DIR_VARIABLE = "CI_ORCHESTRATOR_CACHE_DIR"
DEFAULT_CACHE_DIR = Path(".ci-orchestrator/cache")
DEFAULT_CACHE_SIZE = 2 * 2**30  # 2 GiB, as the cache contract says

SettingValue: TypeAlias = bool | int | float | str | Path | Enum | None


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
            return _UNSET.get(self.key, "unset")
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
        name = ALIASES.get(key, key)
        if name not in self.values:
            hint = did_you_mean(key, [*KEYS, *ALIASES]) or f"; settings: {', '.join(KEYS)}"
            raise UsageError(f"unknown setting {key!r}{hint}")
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
        return value if isinstance(value, OutputMode) else default_mode()

    @property
    def allow_parallel(self) -> bool:
        return self.values["allow-parallel"].value is not False

    def defaults_for(
        self, step_id: str, *, number: str | None = None, tags: tuple[str, ...] = (), stage: str | None = None
    ) -> StepDefaults:
        """The `[defaults]` entries matching one step, merged: a later entry overrides an earlier
        one key by key (so a profile's entry overrides the base's), tags add up; but for
        `allow-parallel`, where the most restrictive wins: one `false` beats every `true`."""
        merged: dict[str, Any] = {"timeout": None, "retry": None}
        matched = [
            entry
            for entry in self.step_defaults
            if entry.matches(step_id, number=number, tags=tags, stage=stage)
        ]
        for entry in matched:
            for name in merged:
                if getattr(entry, name) is not None:
                    merged[name] = getattr(entry, name)
        said = [entry.allow_parallel for entry in matched if entry.allow_parallel is not None]
        merged["allow_parallel"] = all(said) if said else None
        return StepDefaults(
            pattern=",".join(dict.fromkeys(entry.pattern for entry in matched)),
            origin="; ".join(entry.origin for entry in matched) or "default",
            tags=tuple(dict.fromkeys(tag for entry in matched for tag in entry.tags)),
            **merged,
        )


# ---------------------------------------------------------------- keys and checks


KEYS: dict[str, tuple[Callable[[object], Any], SettingValue]] = {
    "execution": (checks.choice(Execution), None),
    "concurrency": (checks.concurrency, None),
    "timeout": (parse_duration, None),
    "cache-size": (checks.size, DEFAULT_CACHE_SIZE),
    "cache-dir": (checks.folder, DEFAULT_CACHE_DIR),
    "fail-fast": (checks.boolean, None),  # unset: the playbook's `fail-fast` decides
    "output": (checks.choice(OutputMode), None),  # `default_mode`: it depends on the CI
    "allow-parallel": (checks.boolean, True),
}
# What a setting no level gives means.
_UNSET = {
    "execution": "unset (the playbook's own, else serial)",
    "concurrency": "auto (the playbook's, else the CPUs this process may use)",
    "timeout": "none (the playbook's or step's own, else no limit)",
    "fail-fast": "unset (the playbook's own, else true)",
}
# The engines users migrate from called the concurrency limit `max_parallel_workers`.
ALIASES = {"max-parallel-workers": "concurrency"}
STEP_DEFAULT_KEYS: dict[str, Callable[[object], Any]] = {
    "allow-parallel": checks.boolean,
    "timeout": parse_duration,
    "retry": checks.count,
    "tags": checks.tags,
}
