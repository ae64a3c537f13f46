"""The step instances of a playbook: one per matrix combination (the rules are in
`matrix_rules`), with every `${{ }}` of the step evaluated for it, narrowed by `--matrix`.

A second instance with the same id gets ` #2` (then ` #3`...) so ids stay unique.

Most steps have no matrix and no `${{ }}`: their instance is the step as written, made without
the expression modules, which are imported only when a playbook uses them.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from ci_orchestrator.errors import (
    ExpressionError,
    OrchestratorError,
    PlaybookError,
    Problem,
    UsageError,
    did_you_mean,
)
from ci_orchestrator.matrix.rules import combinations, env_name, instance_id, listed
from ci_orchestrator.playbook.model import Instance, MatrixSpec
from ci_orchestrator.units import parse_duration

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

    from ci_orchestrator.errors import Location
    from ci_orchestrator.playbook.model import Playbook, Step

T = TypeVar("T")

STEP_CONTEXTS = ("matrix", "vars", "env", "runner")
MATRIX_CONTEXTS = ("vars", "runner")  # a matrix cannot refer to itself or to the env it sets


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
    instance: Instance, variables: Mapping[str, str], *, runner: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The contexts an instance's expressions see; `variables` are the effective ones (the
    playbook's `vars` overlaid with `--var`)."""
    return {
        "matrix": dict(instance.matrix),
        "vars": dict(variables),
        "env": dict(instance.env),
        "runner": dict(runner) if runner is not None else default_runner(),
    }


def expand(
    playbook: Playbook,
    *,
    matrix_filters: Mapping[str, Sequence[str]] | None = None,
    variables: Mapping[str, str] | None = None,
    runner: Mapping[str, str] | None = None,
) -> list[Instance]:
    """Every step's instances, in the playbook's step order.

    `matrix_filters` keeps only the given values of an axis, or replaces its values with them
    when it lacks some (`--matrix KEY=V1,V2`); `variables`
    overlay the playbook's `vars` (`--var`). Every expression problem of the playbook is raised
    at once, each located at the key that holds it.
    """
    expander = _Expander(
        playbook,
        variables={**playbook.vars, **(variables or {})},
        runner=dict(runner) if runner is not None else None,
    )
    expanded = [(step, expander.combinations(step)) for step in playbook.steps]
    if not expander.problems:  # else go on: every step's expressions are checked in the same pass
        expanded = _filtered(expanded, matrix_filters or {}, expander)
    instances = [instance for step, found in expanded for instance in expander.instances(step, found)]
    expander.raise_problems()
    return instances


def _filtered(
    expanded: list[tuple[Step, list[dict[str, Any]]]],
    filters: Mapping[str, Sequence[str]],
    expander: _Expander,
) -> list[tuple[Step, list[dict[str, Any]]]]:
    """`--matrix KEY=V1,V2`: values an axis has restrict it to them; values it lacks override it
    (the step is expanded again with that axis holding exactly the given values)."""
    if not filters:
        return expanded
    from ci_orchestrator.expressions import evaluation  # lazily: see the module's docstring

    axes = list(dict.fromkeys(key for _, found in expanded for combination in found for key in combination))
    for key in filters:
        if key not in axes:
            hint = did_you_mean(key, axes)
            raise UsageError(f"--matrix {key}: no step has a matrix axis '{key}'{hint}; axes: {listed(axes)}")
    problems: list[Problem] = []
    result: list[tuple[Step, list[dict[str, Any]]]] = []
    for step, found in expanded:
        overrides: dict[str, tuple[str, ...]] = {}
        for key, wanted in filters.items():
            values = list(dict.fromkeys(evaluation.to_string(c[key]) for c in found if key in c))
            if not values or all(value in values for value in wanted):
                continue
            if step.matrix is None or step.matrix.expression is not None or key not in step.matrix.axes:
                # Only a listed axis can take new values: here the key comes from `include`.
                missing = ",".join(value for value in wanted if value not in values)
                message = (
                    f"{key}={missing}: step '{step.id}' has no such value "
                    f"(its {key} values: {listed(values)}; only an axis under `matrix:` takes new ones)"
                )
                problems.append(Problem(location=None, path="--matrix", message=message))
            overrides[key] = tuple(wanted)
        cells = expander.overridden(step, overrides) if overrides and not problems else found
        for key, wanted in filters.items():
            if any(key in cell for cell in cells):
                cells = [cell for cell in cells if key in cell and evaluation.to_string(cell[key]) in wanted]
        result.append((step, cells))
    if problems:
        raise UsageError.from_problems(problems)
    return result


class _Expander:
    """Evaluates one playbook's expressions, collecting every problem with its place."""

    def __init__(
        self, playbook: Playbook, *, variables: dict[str, str], runner: dict[str, str] | None
    ) -> None:
        self.playbook = playbook
        self.variables = variables
        self.given_runner = runner
        self.problems: dict[tuple[str, str], Problem] = {}  # deduplicated: instances repeat them
        self.shape_problems = False  # problems that are not expressions: raised as PlaybookError
        self.env_ok = all(
            self.checked(playbook.location, f"env.{name}", value) for name, value in playbook.env.items()
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

    def raise_problems(self) -> None:
        if self.problems:
            kind = PlaybookError if self.shape_problems else ExpressionError
            raise kind.from_problems(list(self.problems.values()))

    def combinations(self, step: Step) -> list[dict[str, Any]]:
        if step.matrix is None:
            return [{}]
        where = _where(step, "matrix")
        if not all(self.checked(*where, text, contexts=MATRIX_CONTEXTS) for text in templates(step.matrix)):
            return []
        contexts = {"vars": self.variables, "runner": self.runner}
        matrix = step.matrix
        return self.guarded(*where, lambda: combinations(_resolved(matrix, contexts)), [])

    def overridden(self, step: Step, axes: Mapping[str, tuple[str, ...]]) -> list[dict[str, Any]]:
        """The step's combinations with the values of these listed axes replaced."""
        contexts = {"vars": self.variables, "runner": self.runner}

        def replaced() -> list[dict[str, Any]]:
            spec = _resolved(step.matrix or MatrixSpec(axes={}), contexts)
            return combinations(dataclasses.replace(spec, axes={**spec.axes, **axes}))

        return self.guarded(*_where(step, "matrix"), replaced, [])

    def instances(self, step: Step, found: list[dict[str, Any]]) -> Iterator[Instance]:
        if found == [{}] and self.env_plain and _plain(step):
            yield self.plain_instance(step)
            return
        texts: dict[str, object] = {"name": step.name, "run": step.run, "timeout": step.timeout}
        texts |= {"working-directory": step.working_directory, "continue-on-error": step.continue_on_error}
        fields_ok = [
            self.checked(*_where(step, key), text) for key, text in texts.items() if isinstance(text, str)
        ]
        fields_ok += [self.checked(*_where(step, "env", name), text) for name, text in step.env.items()]
        fields_ok += [self.checked(*_where(step, key), text) for key, text in _argv_texts(step)]
        if step.condition is not None:
            fields_ok.append(self.checked(*_where(step, "if"), step.condition, condition=True))
        if not (all(fields_ok) and self.env_ok):
            return
        seen: dict[str, int] = {}
        for combination in found:
            identity = instance_id(step.id, combination)
            seen[identity] = seen.get(identity, 0) + 1
            if seen[identity] > 1:
                identity = f"{identity} #{seen[identity]}"
            yield self.instance(step, combination, identity)

    def plain_instance(self, step: Step) -> Instance:
        """The instance of a step with no matrix and nothing to evaluate: the step as written."""
        timeout = (
            None
            if step.timeout is None
            else self.guarded(*_where(step, "timeout"), lambda: _timeout(step.timeout, {}), None)
        )
        return Instance.as_written(
            step,
            env={**self.playbook.env, **step.env},
            timeout=timeout,
            continue_on_error=bool(step.continue_on_error),
        )

    def instance(self, step: Step, combination: dict[str, Any], identity: str) -> Instance:
        from ci_orchestrator.expressions import evaluation  # lazily: see the module's docstring

        contexts: dict[str, Any] = {"matrix": combination, "vars": self.variables, "runner": self.runner}

        def text(location: Location, path: str, value: str) -> str:
            return self.guarded(location, path, lambda: evaluation.interpolate(value, contexts), value)

        contexts["env"] = {}
        base = {
            name: text(self.playbook.location, f"env.{name}", value)
            for name, value in self.playbook.env.items()
        }
        contexts["env"] = base
        own = {name: text(*_where(step, "env", name), value) for name, value in step.env.items()}
        contexts["env"] = env = (
            base | own | {env_name(key): evaluation.to_string(value) for key, value in combination.items()}
        )
        name = text(*_where(step, "name"), step.name)
        if not evaluation.has_expression(step.name) and combination:
            name = instance_id(name, combination)
        return Instance(
            id=identity,
            step=step,
            matrix=combination,
            name=name,
            run=text(*_where(step, "run"), step.run) if step.run is not None else None,
            command=(
                None
                if step.command is None
                else tuple(text(*_where(step, "command"), part) for part in step.command)
            ),
            args=tuple(text(*_where(step, "args"), part) for part in step.args),
            env=env,
            working_directory=text(*_where(step, "working-directory"), step.working_directory),
            timeout=self.guarded(*_where(step, "timeout"), lambda: _timeout(step.timeout, contexts), None),
            continue_on_error=self.guarded(
                *_where(step, "continue-on-error"), lambda: _flag(step.continue_on_error, contexts), False
            ),
            condition=step.condition,
        )


def _has_expression(text: str) -> bool:
    return "${{" in text  # as expressions.has_expression, without importing the evaluator


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


def _where(step: Step, key: str, entry: str | None = None) -> tuple[Location, str]:
    """The place of a step's key (`env` entries by name) and its path for error messages."""
    names = [f"{key}.{entry}", key] if entry else [key]
    names += [name.replace("-", "_") for name in names]
    location = next((step.key_locations[name] for name in names if name in step.key_locations), step.location)
    return location, f"steps.{step.id}.{key}" + (f".{entry}" if entry else "")


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


def _resolved(spec: MatrixSpec, contexts: Mapping[str, Any]) -> MatrixSpec:
    """The matrix with its expressions evaluated: a whole-matrix `${{ fromJSON(...) }}`, or values
    (an axis written as one expression may give the whole list)."""
    from ci_orchestrator.expressions import evaluation  # lazily: see the module's docstring

    if spec.expression is not None:
        return _spec_from(evaluation.evaluate_template(spec.expression, contexts))

    def value(item: Any) -> Any:
        is_template = isinstance(item, str) and evaluation.has_expression(item)
        return evaluation.evaluate_template(item, contexts) if is_template else item

    axes: dict[str, tuple[Any, ...]] = {}
    for axis, values in spec.axes.items():
        resolved = [value(item) for item in values]
        single = len(values) == 1 and isinstance(values[0], str) and isinstance(resolved[0], list)
        axes[axis] = tuple(resolved[0]) if single else tuple(resolved)
    return MatrixSpec(
        axes=axes,
        include=tuple({key: value(item) for key, item in entry.items()} for entry in spec.include),
        exclude=tuple({key: value(item) for key, item in entry.items()} for entry in spec.exclude),
    )


def _spec_from(value: Any) -> MatrixSpec:
    """A matrix given as data (from `fromJSON`)."""
    from ci_orchestrator.expressions import evaluation  # lazily: see the module's docstring

    if not isinstance(value, Mapping):
        raise PlaybookError(f"matrix expression must give an object, got {evaluation.to_string(value)!r}")
    axes: dict[str, tuple[Any, ...]] = {}
    lists: dict[str, tuple[Mapping[str, Any], ...]] = {"include": (), "exclude": ()}
    for key, values in value.items():
        if not isinstance(values, list):
            raise PlaybookError(f"matrix '{key}' must be a list, got {evaluation.to_string(values)!r}")
        if key in lists:
            if not all(isinstance(entry, Mapping) for entry in values):
                raise PlaybookError(f"matrix '{key}' must be a list of objects")
            lists[key] = tuple(values)
        else:
            axes[key] = tuple(values)
    return MatrixSpec(axes=axes, include=lists["include"], exclude=lists["exclude"])


def _timeout(value: float | str | None, contexts: Mapping[str, Any]) -> float | None:
    if isinstance(value, str):
        from ci_orchestrator.expressions import evaluation  # lazily: see the module's docstring

        value = evaluation.evaluate_template(value, contexts)
    if value is None or value == "":
        return None
    try:
        return parse_duration(value)
    except (TypeError, ValueError):
        from ci_orchestrator.expressions.values import to_string

        raise ExpressionError(
            f"expected a duration up to 168h, such as 90, 90s, 2m or 1h30m, got {to_string(value)!r}"
        ) from None


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
