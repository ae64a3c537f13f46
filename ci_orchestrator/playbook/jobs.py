"""A step made of steps (a job): its `steps:` entries -> `JobStep`s, and its `job-outputs`.

The steps of a job run in order in one environment, as a GitHub job's do: what one writes to
`GITHUB_ENV`, `GITHUB_PATH` and `GITHUB_OUTPUT` reaches the next ones.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ci_orchestrator.errors import ExpressionError
from ci_orchestrator.playbook.checks import Checker, is_expression, kind_of, render_scalar
from ci_orchestrator.playbook.model import JobStep
from ci_orchestrator.playbook.nodes import Mapping, Scalar, Sequence

if TYPE_CHECKING:
    from ci_orchestrator.playbook.nodes import Node

JOB_STEP_KEYS = (
    "id", "name", "run", "uses", "with", "shell", "working-directory", "env", "if", "continue-on-error",
    "timeout",
)  # fmt: skip
# What a job's steps may read: the job's own contexts and those of the steps before them.
JOB_STEP_CONTEXTS = (
    "matrix", "vars", "env", "runner", "github", "inputs", "secrets", "steps", "needs", "job", "strategy",
)  # fmt: skip


def read_job_steps(checker: Checker, node: Node, path: str) -> tuple[JobStep, ...]:
    """The steps of a job; problems go to `checker`."""
    if not isinstance(node, Sequence) or not node.items:
        shown = "an empty list" if isinstance(node, Sequence) else kind_of(node)
        checker.problem(node, path, f"must be a list of one step or more, not {shown}")
        return ()
    steps: list[JobStep] = []
    ids: dict[str, int] = {}
    for index, item in enumerate(node.items):
        where = f"{path}[{index}]"
        step = _read(checker, item, where)
        if step is None:
            continue
        if step.id is not None:
            if step.id in ids:
                checker.problem(
                    item, f"{where}.id", f"duplicate step id {step.id!r} (first at line {ids[step.id]})"
                )
            ids.setdefault(step.id, item.line)
        steps.append(step)
    return tuple(steps)


def read_job_outputs(checker: Checker, node: Node, path: str) -> dict[str, str] | None:
    outputs = checker.env(node, path)
    for name, text in (outputs or {}).items():
        _check_expression(checker, node, f"{path}.{name}", text)
    return outputs


def _read(checker: Checker, node: Node, path: str) -> JobStep | None:
    entries = checker.mapping(node, path, known=JOB_STEP_KEYS)
    if entries is None:
        return None
    values = {key: value for key, (_, value) in entries.items()}
    if ("run" in values) == ("uses" in values):
        checker.problem(node, path, "a job's step needs either 'run' or 'uses'")
    if "with" in values and "uses" not in values:
        checker.problem(entries["with"][0], path, "'with' is only used with 'uses'")
    fields: dict[str, Any] = {}
    for key, name in (("id", "id"), ("name", "name"), ("run", "run"), ("uses", "uses"), ("shell", "shell")):
        if key in values:
            fields[name] = checker.text(values[key], f"{path}.{key}")
    if "working-directory" in values:
        fields["working_directory"] = checker.text(values["working-directory"], f"{path}.working-directory")
    if "with" in values:
        fields["with_"] = checker.env(values["with"], f"{path}.with") or {}
    if "env" in values:
        fields["env"] = checker.env(values["env"], f"{path}.env") or {}
    if "if" in values:
        condition = values["if"]
        if isinstance(condition, Scalar) and kind_of(condition) != "null":
            fields["condition"] = render_scalar(condition)
            _check_expression(checker, condition, f"{path}.if", fields["condition"], condition=True)
        else:
            checker.problem(
                condition, f"{path}.if", f"must be an expression or true/false, not {kind_of(condition)}"
            )
    if "continue-on-error" in values:
        flag = values["continue-on-error"]
        if isinstance(flag, Scalar) and is_expression(flag.text):
            fields["continue_on_error"] = flag.text
        else:
            fields["continue_on_error"] = bool(checker.boolean(flag, f"{path}.continue-on-error"))
    if "timeout" in values:
        fields["timeout"] = checker.duration(values["timeout"], f"{path}.timeout", expression=True)
    for key in ("run", "working-directory", "env", "with", "continue-on-error", "timeout", "name"):
        if key in values:
            _check_all(checker, values[key], f"{path}.{key}")
    return JobStep(location=checker.at(node), path=path, **{k: v for k, v in fields.items() if v is not None})


def _check_all(checker: Checker, node: Node, path: str) -> None:
    if isinstance(node, Scalar):
        if "${{" in node.text:
            _check_expression(checker, node, path, node.text)
    elif isinstance(node, Mapping):
        for _, value in node.entries:
            _check_all(checker, value, path)


def _check_expression(checker: Checker, node: Node, path: str, text: str, *, condition: bool = False) -> None:
    # Loaded only for a playbook with jobs (the expression parser is not on every command's path).
    from ci_orchestrator.expressions import evaluation

    try:
        evaluation.check(text, contexts=JOB_STEP_CONTEXTS, condition=condition)
    except ExpressionError as error:
        checker.problem(node, path, error.problems[0].message)
