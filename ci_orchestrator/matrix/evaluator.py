"""One step's `${{ }}` evaluated for one matrix combination: the contexts an instance sees,
every problem collected with its place, and texts that read `steps` or `needs` kept as written
until the run knows them."""

from __future__ import annotations

import dataclasses
import functools
import os
from typing import TYPE_CHECKING, Any, TypeVar

from ci_orchestrator.errors import ExpressionError, OrchestratorError, PlaybookError, Problem, did_you_mean
from ci_orchestrator.matrix.rules import combinations, env_name, instance_id, resolved
from ci_orchestrator.playbook.model import Instance, MatrixSpec
from ci_orchestrator.units import parse_duration

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping, Sequence

    from ci_orchestrator.errors import Location
    from ci_orchestrator.expressions.evaluation import FileHasher
    from ci_orchestrator.playbook.model import Playbook, Step

T = TypeVar("T")

# The playbook's `env`, evaluated for each step; `github`, `inputs` and `secrets` are those of a
# GitHub workflow (see `workflows/contexts`).
ENV_CONTEXTS = ("matrix", "vars", "env", "runner", "github", "inputs", "secrets")
STEP_CONTEXTS = (*ENV_CONTEXTS, "steps", "needs")
# A matrix cannot refer to itself or to the env it sets; `github` and `inputs` as a workflow's.
MATRIX_CONTEXTS = ("vars", "runner", "github", "inputs")
LATER_CONTEXTS = frozenset({"steps", "needs"})  # known once what a step waits for has ended


@functools.cache
def _machine() -> tuple[tuple[str, str], ...]:
    import tempfile  # asked for only when an expression reads `runner`

    # os.uname() is what platform.system() and platform.machine() read on POSIX, without
    # importing `platform` (9 regular expressions compiled at import).
    system, _, _, _, machine = os.uname()
    machine = machine.lower()
    arches = {"x86_64": "X64", "amd64": "X64", "aarch64": "ARM64", "arm64": "ARM64", "i386": "X86"}
    arch = arches.get(machine) or (
        "X86" if machine in ("i686", "x86") else "ARM" if machine.startswith("arm") else machine.upper()
    )
    os_name = {"Darwin": "macOS"}.get(system, system)
    return (("os", os_name), ("arch", arch), ("temp", tempfile.gettempdir()))


def default_runner() -> dict[str, str]:
    """The `runner` context of this machine: `os` (Linux, macOS, Windows), `arch` (X64, ARM64...),
    `temp`."""
    return dict(_machine())


def contexts_for(
    instance: Instance,
    variables: Mapping[str, str],
    *,
    runner: Mapping[str, str] | None = None,
    later: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The contexts an instance's expressions see; `variables` are the effective ones (the
    playbook's `vars` overlaid with `--var`); `later` the `steps` and `needs` contexts, once the
    run knows them (empty before)."""
    contexts = {
        "matrix": dict(instance.matrix),
        "vars": dict(variables),
        "env": dict(instance.env),
        "runner": dict(runner) if runner is not None else default_runner(),
        "steps": {},
        "needs": {},
        **(later or {}),
    }
    # As on GitHub, a job's `if:` reads no secrets.
    return contexts | workflow_contexts(variables, (), reads_github="github" in (instance.condition or ""))


def workflow_contexts(
    variables: Mapping[str, str], secrets: Sequence[str], *, reads_github: bool
) -> dict[str, Any]:
    """`inputs` and `secrets`, and `github` when an expression reads it (git is asked then only)."""
    from ci_orchestrator.workflows import contexts

    found: dict[str, Any] = {
        "inputs": contexts.inputs_context(variables),
        "secrets": contexts.secrets_context(secrets),
    }
    if reads_github:
        found["github"] = contexts.github_context(variables)
    return found


class Expander:
    """Evaluates one playbook's expressions, collecting every problem with its place."""

    def __init__(
        self,
        playbook: Playbook,
        *,
        variables: dict[str, str],
        runner: dict[str, str] | None,
        files: FileHasher | None = None,
    ) -> None:
        self.playbook = playbook
        self.variables = variables
        self.given_runner = runner
        self.files = files  # hashFiles, once the run starts the step
        self.problems: dict[tuple[str, str], Problem] = {}  # deduplicated: instances repeat them
        self.shape_problems = False  # problems that are not expressions: raised as PlaybookError
        # The steps (by path) that read a variable neither declared nor given; None: the
        # playbook's `env` or `defaults` does, which every step evaluates.
        self.unsettled: set[str | None] = set()
        self.env_at = playbook.key_locations.get("env", playbook.location)
        self.env_ok = all(
            self.checked(self.env_at, f"env.{name}", value, contexts=ENV_CONTEXTS)
            for name, value in playbook.env.items()
        )
        self.env_plain = not any(_has_expression(value) for value in playbook.env.values())

    @functools.cached_property
    def runner(self) -> dict[str, str]:
        return self.given_runner if self.given_runner is not None else default_runner()

    def add(self, location: Location | None, path: str, error: Exception) -> None:
        message = error.problems[0].message if isinstance(error, OrchestratorError) else str(error)
        self.problems.setdefault((path, message), Problem(location=location, path=path, message=message))
        self.shape_problems |= not isinstance(error, ExpressionError)

    def checked(
        self,
        location: Location,
        path: str,
        text: str,
        *,
        contexts: Sequence[str] = STEP_CONTEXTS,
        condition: bool = False,
    ) -> bool:
        if not condition and not _has_expression(text):
            return True  # plain text: nothing to check
        from ci_orchestrator.expressions import evaluation  # lazily: see the module's docstring

        try:
            evaluation.check(text, contexts=contexts, condition=condition)
        except ExpressionError as error:
            self.add(location, path, error)
            return False
        return True

    def guarded(self, location: Location, path: str, compute: Callable[[], T], fallback: T) -> T:
        try:
            return compute()
        except (ExpressionError, PlaybookError) as error:
            self.add(location, path, error)
            return fallback
        except RecursionError:  # data from fromJSON may nest deeper than any playbook would
            self.add(location, path, PlaybookError("value nested too deeply"))
            return fallback

    def error(self) -> OrchestratorError | None:
        if not self.problems:
            return None
        kind = PlaybookError if self.shape_problems else ExpressionError
        return kind.from_problems(list(self.problems.values()))

    def check_variables(self) -> None:
        """Each `vars.NAME` read of a variable neither declared nor given with `--var`: on GitHub
        an empty string, here an error, as a key no matrix has. Not when `vars:` could not be
        read: its names are not known."""
        if not self.playbook.read_whole("vars"):
            return
        names = list(self.variables)
        known = {name.casefold() for name in names}
        for read in self.playbook.variable_reads:
            if read.name.casefold() not in known:
                self.unsettled.add(read.step)
                hint = did_you_mean(read.name, names) or (
                    f": declare it under 'vars:' or give it with --var {read.name}=VALUE"
                )
                message = f"vars has no variable {read.name!r}{hint}"
                self.add(read.location, read.path, ExpressionError(message))

    def settled(self, step: Step) -> bool:
        """Whether the step's values may be evaluated: not when it reads a variable that is not
        there (reported), as the empty value it would get fails in ways that are not the user's
        problem (`fromJSON('')`)."""
        return not self.unsettled or (None not in self.unsettled and step.path not in self.unsettled)

    def combinations(self, step: Step) -> list[dict[str, Any]]:
        if step.matrix is None:
            return [{}]
        place = where(step, "matrix")
        checked = all(self.checked(*place, text, contexts=MATRIX_CONTEXTS) for text in templates(step.matrix))
        if not (checked and self.settled(step)):
            return []
        contexts = self.matrix_contexts(step.matrix)
        matrix = step.matrix
        return self.guarded(*place, lambda: combinations(resolved(matrix, contexts)), [])

    def matrix_contexts(self, matrix: MatrixSpec | None) -> dict[str, Any]:
        reads_github = matrix is not None and any("github" in text for text in templates(matrix))
        found = workflow_contexts(self.variables, (), reads_github=reads_github)
        return {"vars": self.variables, "runner": self.runner, **found}

    def overridden(self, step: Step, axes: Mapping[str, tuple[str, ...]]) -> list[dict[str, Any]]:
        """The step's combinations with the values of these listed axes replaced."""
        contexts = self.matrix_contexts(step.matrix)

        def replaced() -> list[dict[str, Any]]:
            spec = resolved(step.matrix or MatrixSpec(axes={}), contexts)
            return combinations(dataclasses.replace(spec, axes={**spec.axes, **axes}))

        return self.guarded(*where(step, "matrix"), replaced, [])

    def instances(self, step: Step, found: list[dict[str, Any]]) -> Iterator[Instance]:
        if found == [{}] and self.env_plain and _plain(step):
            yield self.plain_instance(step)
            return
        texts: dict[str, object] = {"name": step.name, "run": step.run, "timeout": step.timeout}
        texts |= {"working-directory": step.working_directory, "continue-on-error": step.continue_on_error}
        fields_ok = [
            self.checked(*where(step, key), text) for key, text in texts.items() if isinstance(text, str)
        ]
        fields_ok += [self.checked(*where(step, "env", name), text) for name, text in step.env.items()]
        fields_ok += [self.checked(*where(step, key), text) for key, text in _argv_texts(step)]
        if step.condition is not None:
            fields_ok.append(self.checked(*where(step, "if"), step.condition, condition=True))
        if not (all(fields_ok) and self.env_ok and self.settled(step)):
            return
        seen: dict[str, int] = {}
        for combination in found:
            identity = instance_id(step.id, combination)
            seen[identity] = seen.get(identity, 0) + 1
            if seen[identity] > 1:
                identity = f"{identity} #{seen[identity]}"
            yield self.instance(step, combination, identity, later=None)

    def plain_instance(self, step: Step) -> Instance:
        """The instance of a step with no matrix and nothing to evaluate: the step as written."""
        timeout = (
            None
            if step.timeout is None
            else self.guarded(*where(step, "timeout"), lambda: _timeout(step.timeout, {}), None)
        )
        return Instance.as_written(
            step,
            env={**self.playbook.env, **step.env},
            timeout=timeout,
            continue_on_error=bool(step.continue_on_error),
        )

    def instance(
        self,
        step: Step,
        combination: dict[str, Any],
        identity: str,
        *,
        later: Mapping[str, Any] | None,
        env_added: Mapping[str, str] | None = None,
        path: tuple[str, ...] = (),
    ) -> Instance:
        """The instance of one combination. `later` holds the `steps` and `needs` contexts once
        the run knows them; without it, a text that reads them is kept as written (`deferred`).
        `env_added` (GITHUB_ENV of the steps before) overlays the playbook's env, under the step's."""
        from ci_orchestrator.expressions import evaluation  # lazily: see the module's docstring

        contexts: dict[str, Any] = {"matrix": combination, "vars": self.variables, "runner": self.runner}
        texts = (step.env, step.run, step.name, step.working_directory, step.timeout, step.continue_on_error)
        reads_github = "github" in repr((*texts, self.playbook.env))
        contexts |= workflow_contexts(self.variables, self.playbook.secrets, reads_github=reads_github)
        contexts |= later or {}
        deferred = False

        def text(location: Location, path: str, value: str) -> str:
            nonlocal deferred
            if later is None and known_later(value):
                deferred = True
                return value
            return self.guarded(
                location, path, lambda: evaluation.interpolate(value, contexts, files=self.files), value
            )

        contexts["env"] = {}
        base = {name: text(self.env_at, f"env.{name}", value) for name, value in self.playbook.env.items()}
        contexts["env"] = base = base | dict(env_added or {})
        own = {name: text(*where(step, "env", name), value) for name, value in step.env.items()}
        contexts["env"] = env = (
            base | own | {env_name(key): evaluation.as_text(value) for key, value in combination.items()}
        )
        name = text(*where(step, "name"), step.name)
        if not evaluation.has_expression(step.name) and combination:
            name = instance_id(name, combination)
        return Instance(
            id=identity,
            step=step,
            matrix=combination,
            name=name,
            run=text(*where(step, "run"), step.run) if step.run is not None else None,
            command=(
                None
                if step.command is None
                else tuple(text(*where(step, "command"), part) for part in step.command)
            ),
            args=tuple(text(*where(step, "args"), part) for part in step.args),
            env=env,
            working_directory=text(*where(step, "working-directory"), step.working_directory),
            timeout=self.guarded(*where(step, "timeout"), lambda: _timeout(step.timeout, contexts), None),
            continue_on_error=self.guarded(
                *where(step, "continue-on-error"), lambda: _flag(step.continue_on_error, contexts), False
            ),
            condition=step.condition,
            deferred=deferred,
            path=path,
        )


def _has_expression(text: str) -> bool:
    return "${{" in text  # as expressions.has_expression, without importing the evaluator


def known_later(text: str) -> bool:
    """Whether a text's value is known only when its step starts: its expressions read `steps`
    or `needs`, or call `hashFiles` (GitHub hashes the files as they are then). False for a text
    that cannot be parsed: that is reported where it is checked."""
    if not _has_expression(text):
        return False
    from ci_orchestrator.expressions import evaluation  # lazily: see the module's docstring

    try:
        return not LATER_CONTEXTS.isdisjoint(evaluation.keys_read(text)) or evaluation.calls(
            text, "hashFiles"
        )
    except ExpressionError:
        return False


def _plain(step: Step) -> bool:
    """Whether a step's instance is the step as written: no `${{ }}` in any text it evaluates, no
    `if:` (a condition is parsed even without `${{ }}`), timeout and continue-on-error already
    values."""
    if step.condition is not None or isinstance(step.timeout, str):
        return False
    if not isinstance(step.continue_on_error, bool):
        return False
    texts = (step.name, step.run or "", step.working_directory, *step.env.values())
    return not any(_has_expression(text) for text in texts) and not any(_argv_texts(step))


def _argv_texts(step: Step) -> Iterator[tuple[str, str]]:
    """The parts of a step's `command:` and `args:` that hold expressions, with their keys."""
    for key, parts in (("command", step.command or ()), ("args", step.args)):
        for part in parts:
            if _has_expression(part):
                yield key, part


def where(step: Step, key: str, entry: str | None = None) -> tuple[Location, str]:
    """The place of a step's key (`env` entries by name) and its path for error messages."""
    names = [f"{key}.{entry}", key] if entry else [key]
    names += [name.replace("-", "_") for name in names]
    location = next((step.key_locations[name] for name in names if name in step.key_locations), step.location)
    return location, step.key_path(key) + (f".{entry}" if entry else "")


def templates(spec: MatrixSpec) -> list[str]:
    """The texts of a matrix that hold expressions: a whole-matrix `${{ }}`, or the values that do."""
    return [spec.expression] if spec.expression is not None else list(_strings(spec))


def _strings(spec: MatrixSpec) -> Iterator[str]:
    """The strings of a matrix that hold expressions."""
    entries = [*spec.axes.values(), *(entry.values() for entry in (*spec.include, *spec.exclude))]
    for values in entries:
        for value in values:
            if isinstance(value, str) and _has_expression(value):
                yield value


def _timeout(value: float | str | None, contexts: Mapping[str, Any]) -> float | None:
    if isinstance(value, str):
        from ci_orchestrator.expressions import evaluation  # lazily: see the module's docstring

        value = evaluation.evaluate_template(value, contexts)
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        from ci_orchestrator.expressions.values import to_string

        value = to_string(value)  # shown as the expression language writes it: `true`, not True
    try:
        return parse_duration(value)
    except ValueError as error:
        raise ExpressionError(str(error)) from None


def _flag(value: bool | str, contexts: Mapping[str, Any]) -> bool:
    if isinstance(value, bool):
        return value
    from ci_orchestrator.expressions import evaluation  # lazily: see the module's docstring

    result = evaluation.evaluate_template(value, contexts)
    if isinstance(result, str):
        if result.strip().lower() in ("true", "false", ""):
            return result.strip().lower() == "true"
        raise ExpressionError(f"expected true or false, got {result!r}")
    return evaluation.truthy(result)
