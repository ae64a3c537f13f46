"""The declared model of a playbook: what the user wrote, checked and with defaults applied. No I/O."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping

    from ci_orchestrator.errors import Location


# A step key set by a numbered script's header, and the header key that sets it.
HEADER_KEYS = {
    "needs": "Dependencies",
    "stage": "Stage",
    "tags": "Tags",
    "allow-parallel": "AllowParallel",
    "timeout": "Timeout",
    "description": "Description",
}


def within(path: str, key: str) -> bool:
    """Whether the key path `path` is `key` or under it (`vars.A` and `steps[0]` are under
    `vars` and `steps`)."""
    return path == key or path.startswith((f"{key}.", f"{key}["))


class Execution(Enum):
    """How the steps of a playbook or group are ordered when nothing else says."""

    SERIAL = "serial"
    PARALLEL = "parallel"


@dataclass(frozen=True, slots=True, kw_only=True)
class MatrixSpec:
    """A step's `matrix:` as written: axes in key order, then GitHub's `exclude` and `include`.

    `axes` may also be a `${{ }}` string (a whole matrix from `fromJSON`), kept in `expression`.
    """

    axes: Mapping[str, tuple[Any, ...]]
    include: tuple[Mapping[str, Any], ...] = ()
    exclude: tuple[Mapping[str, Any], ...] = ()
    expression: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class JobStep:
    """One step of a job (a step made of steps): a `run:` script or a `uses:` action, run in
    order with its job's other steps, in one environment. Values keep their `${{ }}`: they are
    evaluated when the step starts, with what the steps before it gave (`steps.ID.outputs`)."""

    location: Location
    path: str
    id: str | None = None
    name: str | None = None
    run: str | None = None
    uses: str | None = None
    with_: Mapping[str, str] = field(default_factory=dict)
    shell: str | None = None  # None: the job's
    working_directory: str | None = None  # None: the job's
    env: Mapping[str, str] = field(default_factory=dict)
    condition: str | None = None
    continue_on_error: bool | str = False
    timeout: float | str | None = None

    @property
    def title(self) -> str:
        """What reports call it: its name, else GitHub's `Run <first line>` or `Run <action>`."""
        if self.name:
            return self.name
        if self.uses is not None:
            return f"Run {self.uses}"
        first = (self.run or "").strip().splitlines()
        return f"Run {first[0]}" if first else "Run"


@dataclass(frozen=True, slots=True, kw_only=True)
class Step:
    """One declared step. Values that may hold `${{ }}` stay strings until expansion.

    Exactly one of `run`, `script`, `command`, `steps` is set. `script` is a path relative to the
    playbook's directory (numbered scripts are resolved to their file by the loader).
    """

    id: str
    name: str
    location: Location
    run: str | None = None
    script: str | None = None
    command: tuple[str, ...] | None = None
    args: tuple[str, ...] = ()
    number: str | None = None  # the script number (`0407`) of a numbered script
    shell: str = "bash"
    needs: tuple[str, ...] = ()
    parallel: bool = False
    group: int | None = None  # `group: N` phase
    block: str | None = None  # the name of the `groups:` entry it belongs to, None at top level
    allow_parallel: bool | None = None  # None: nothing said at this level
    matrix: MatrixSpec | None = None
    max_parallel: int | None = None
    fail_fast: bool = False  # a failed instance of its matrix stops the others (GitHub's strategy)
    resources: Mapping[str, int] = field(default_factory=dict)
    timeout: float | str | None = None  # seconds, or a `${{ }}` string
    continue_on_error: bool | str = False  # or a `${{ }}` string
    retry: int = 0
    condition: str | None = None  # `if:`
    env: Mapping[str, str] = field(default_factory=dict)
    working_directory: str = "."
    inputs: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()
    junit: tuple[str, ...] = ()  # globs of the JUnit files the step writes, read after it ends
    cache: bool | None = None  # None: nothing said, so cacheable when it has inputs
    tags: tuple[str, ...] = ()
    stage: str | None = None
    description: str | None = None
    # `shard: all`: a setup step, run in every shard that runs a step waiting for it.
    shard_all: bool = False
    # A job: steps run in order in one environment instead of `run`/`script`/`command`, and the
    # outputs it gives from theirs.
    steps: tuple[JobStep, ...] = ()
    job_outputs: Mapping[str, str] = field(default_factory=dict)
    runs_on: tuple[str, ...] = ()  # a job's runner labels (or one `${{ }}`): another system's skip
    # Where each key was written, for errors found after loading (expressions, plan).
    key_locations: Mapping[str, Location] = field(default_factory=dict)
    # The key path of its entry (`steps[1]`, `groups[0].steps[2]`); "" for a numbered script no
    # entry names, and for a step not read from a file.
    path: str = ""

    @property
    def reads_needs(self) -> bool:
        """Whether a job's steps or outputs may read the `needs` context (a text names it): known
        only as the job starts."""
        if not self.steps:
            return False
        texts = [text for one in self.steps for text in (one.run, one.condition, *one.env.values())]
        texts += [*(text for one in self.steps for text in one.with_.values()), *self.job_outputs.values()]
        return any("needs" in text for text in texts if isinstance(text, str))

    def key_path(self, key: str) -> str:
        """The path of one of its keys as every problem names it, whatever stage finds it: under
        its entry (`steps[1].needs`), or the header key (`Dependencies`) where a numbered
        script's header wrote the value."""
        where = self.key_locations.get(key)
        if key in HEADER_KEYS and where is not None and self.script is not None and where.file == self.script:
            return HEADER_KEYS[key]
        if self.path:
            return f"{self.path}.{key}"
        return f"scripts.{self.number}.{key}" if self.number else f"steps.{self.id}.{key}"

    @property
    def cacheable(self) -> bool:
        """Its results are kept in the step cache: `cache:` as written, else whether it has `inputs`."""
        return bool(self.inputs) if self.cache is None else self.cache


@dataclass(frozen=True, slots=True, kw_only=True)
class VariableRead:
    """A `${{ vars.NAME }}` read by name, where it is written: checked against the variables
    declared under `vars:` and given with `--var`, known only when a command runs."""

    name: str
    location: Location
    path: str
    step: str | None  # the path of the step entry that reads it; None for the playbook's env or defaults


@dataclass(frozen=True, slots=True, kw_only=True)
class Group:
    """A named phase under `groups:`; its steps are in `Playbook.steps` with `block == name`."""

    name: str
    location: Location
    execution: Execution = Execution.SERIAL
    stop_on_error: bool = False
    step_ids: tuple[str, ...] = ()
    schedule: tuple[str, ...] = ()
    path: str = ""  # the key path of its entry: `groups[1]`; "" for a group not read from a file


@dataclass(frozen=True, slots=True, kw_only=True)
class Playbook:
    """A whole playbook. `steps` holds every step in declaration order: numbered scripts not named
    by a step first, then top-level `steps`, then each group's steps in group order."""

    name: str
    path: str  # as given or found, relative to the working directory where possible
    location: Location
    description: str | None = None
    execution: Execution = Execution.SERIAL
    concurrency: int | None = None  # None: `auto`
    fail_fast: bool = True
    timeout: float | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    secrets: tuple[str, ...] = ()
    vars: Mapping[str, str] = field(default_factory=dict)
    resources: Mapping[str, int] = field(default_factory=dict)
    scripts: str | None = None
    schedule: tuple[str, ...] = ()
    steps: tuple[Step, ...] = ()
    groups: tuple[Group, ...] = ()
    # Where each top-level key was written: a key absent here was not written, so a settings
    # file's default (such as `execution`) may apply.
    key_locations: Mapping[str, Location] = field(default_factory=dict)
    # The key paths reading found a problem at (`vars`, `groups[1].execution`): what depends on
    # them (pools, variables, the order of a block) is not checked, or each use would be
    # reported again.
    unread: frozenset[str] = frozenset()
    variable_reads: tuple[VariableRead, ...] = ()

    def read_whole(self, path: str) -> bool:
        """Whether the key at `path`, and everything under it, was read without a problem."""
        return not any(within(unread, path) for unread in self.unread)

    def step(self, step_id: str) -> Step:
        for step in self.steps:
            if step.id == step_id:
                return step
        raise KeyError(step_id)


@dataclass(frozen=True, slots=True, kw_only=True)
class Instance:
    """One runnable instance of a step: one matrix combination, expressions evaluated.

    `env` is the playbook's env overlaid with the step's, evaluated for this instance; so are
    `run`, `command` and `args`. `condition` (`if:`) stays an expression: it needs the results of
    what the instance waits for.

    `deferred`: a text of the step reads `steps` or `needs`, known only once what it waits for
    has ended; such texts are kept as written until the run resolves the instance (see
    `expansion.at_run`), which also gives it what the steps before it handed on: their
    GITHUB_ENV in `env`, their GITHUB_PATH folders in `path` (first first), and to a job (a
    step made of steps) the `needs` context its steps read.
    """

    id: str
    step: Step
    matrix: Mapping[str, Any]
    name: str
    run: str | None
    env: Mapping[str, str]
    working_directory: str
    timeout: float | None
    continue_on_error: bool
    command: tuple[str, ...] | None = None
    args: tuple[str, ...] = ()
    condition: str | None = None
    deferred: bool = False
    path: tuple[str, ...] = ()
    needs: Mapping[str, Any] = field(default_factory=dict)

    @property
    def known_at_start(self) -> bool:
        """Whether some of its values are known only as it starts (`steps`, `needs`, `hashFiles`)."""
        return self.deferred or self.step.reads_needs

    @classmethod
    def as_written(
        cls,
        step: Step,
        *,
        env: Mapping[str, str] | None = None,
        timeout: float | None = None,
        continue_on_error: bool = False,
    ) -> Instance:
        """The one instance of a step with no matrix and nothing to evaluate."""
        return cls(
            id=step.id,
            step=step,
            matrix={},
            name=step.name,
            run=step.run,
            command=step.command,
            args=step.args,
            env={} if env is None else env,
            working_directory=step.working_directory,
            timeout=timeout,
            continue_on_error=continue_on_error,
        )
