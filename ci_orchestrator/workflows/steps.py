"""A job's `steps:` as GitHub's parser reads them, and the checks of `needs` between jobs."""

from __future__ import annotations

import graphlib
from typing import TYPE_CHECKING, Any, Protocol

from ci_orchestrator.errors import Location, Problem, did_you_mean
from ci_orchestrator.playbook.checks import kind_of
from ci_orchestrator.playbook.nodes import Mapping, Scalar, Sequence
from ci_orchestrator.workflows import rules
from ci_orchestrator.workflows.model import WorkflowStep

if TYPE_CHECKING:
    from collections.abc import Iterator

    from ci_orchestrator.playbook.checks import Checker
    from ci_orchestrator.playbook.nodes import Node
    from ci_orchestrator.workflows.model import Job


class ValueReader(Protocol):
    """What reads the values of a workflow (checked against the contexts of their key)."""

    checker: Checker

    def text(self, node: Node, path: str, context: str) -> str | None: ...
    def env(self, node: Node, path: str, context: str) -> dict[str, str]: ...
    def flag(self, node: Node, path: str, *, context: str = "job") -> bool | str: ...
    def minutes(self, node: Node, path: str, *, context: str = "job") -> float | str | None: ...
    def condition(self, node: Node, path: str, context: str) -> str | None: ...
    def expressions(self, node: Node, path: str, context: str) -> None: ...


class StepReader:
    """Reads the steps of one job: each a `run:` or a `uses:`, ids unique within the job."""

    def __init__(self, values: ValueReader, job_path: str) -> None:
        self.values = values
        self.checker = values.checker
        self.job_path = job_path
        self.ids: dict[str, int] = {}

    def read(self, node: Node) -> Iterator[WorkflowStep]:
        path = f"{self.job_path}.steps"
        if not isinstance(node, Sequence):
            self.checker.problem(node, path, f"must be a list of steps, not {kind_of(node)}")
            return
        if not node.items:
            self.checker.problem(node, path, "a job needs at least one step")
        for index, item in enumerate(node.items):
            step = self.step(item, f"{path}[{index}]")
            if step is not None:
                yield step

    def step(self, node: Node, path: str) -> WorkflowStep | None:
        checker, values = self.checker, self.values
        if not isinstance(node, Mapping):
            checker.problem(node, path, f"a step must be a mapping, not {kind_of(node)}")
            return None
        written = {key.text for key, _ in node.entries if isinstance(key, Scalar)}
        if "run" in written and "uses" in written:
            checker.problem(node, path, "a step has either 'run' or 'uses', not both")
        elif not written & {"run", "uses"}:
            checker.problem(node, path, "a step needs 'run' or 'uses'")
        known = rules.USES_STEP_KEYS if "uses" in written else rules.RUN_STEP_KEYS
        entries = checker.mapping(node, path, known=known) or {}
        found = {key: value for key, (_, value) in entries.items()}
        fields: dict[str, Any] = {}
        if "id" in found:
            fields["id"] = self.step_id(found["id"], f"{path}.id")
        if "name" in found:
            fields["name"] = values.text(found["name"], f"{path}.name", "step")
        if "run" in found:
            fields["run"] = self.script(found["run"], f"{path}.run")
        if "uses" in found:
            fields["uses"] = self.action(found["uses"], f"{path}.uses")
        if "with" in found:
            fields["with_"] = values.env(found["with"], f"{path}.with", "step")
        if "shell" in found:
            fields["shell"] = values.text(found["shell"], f"{path}.shell", "step")
        if "working-directory" in found:
            fields["working_directory"] = values.text(
                found["working-directory"], f"{path}.working-directory", "step"
            )
        if "env" in found:
            fields["env"] = values.env(found["env"], f"{path}.env", "step")
        if "if" in found:
            fields["condition"] = values.condition(found["if"], f"{path}.if", "step-if")
        if "continue-on-error" in found:
            fields["continue_on_error"] = values.flag(
                found["continue-on-error"], f"{path}.continue-on-error", context="step"
            )
        if "timeout-minutes" in found:
            fields["timeout_minutes"] = values.minutes(
                found["timeout-minutes"], f"{path}.timeout-minutes", context="step"
            )
        return WorkflowStep(location=checker.at(node), **fields)

    def step_id(self, node: Node, path: str) -> str | None:
        text = self.checker.text(node, path)
        if text is None:
            return None
        if not rules.ID_PATTERN.fullmatch(text):
            message = (
                f"step id {text!r} must start with a letter or '_' and hold only letters, digits, '-' and '_'"
            )
            self.checker.problem(node, path, message)
        elif text in self.ids:
            self.checker.problem(node, path, f"duplicate step id {text!r} (first at line {self.ids[text]})")
        else:
            self.ids[text] = node.line
        return text

    def script(self, node: Node, path: str) -> str | None:
        if not isinstance(node, Scalar) or kind_of(node) == "null":
            self.checker.problem(node, path, f"must be a string, not {kind_of(node)}")
            return None
        if not node.text.strip():
            self.checker.problem(node, path, "must not be empty")
        self.values.expressions(node, path, "step")
        return node.text

    def action(self, node: Node, path: str) -> str | None:
        text = self.checker.text(node, path)
        if text is None:
            return None
        local = text.startswith("./")
        docker = text.startswith("docker://")
        if not (local or docker) and ("@" not in text or text.endswith("@") or text.startswith("@")):
            message = (
                f"expected 'owner/repo@ref', './path' or 'docker://image', not {text!r}"
                " (a remote action needs a version)"
            )
            self.checker.problem(node, path, message)
        if "${{" in text:
            self.checker.problem(node, path, "'uses' cannot hold an expression")
        return text


def needs_problems(jobs: list[Job], file: str) -> list[Problem]:
    """Jobs that need an unknown job, and cycles among jobs, as GitHub reports them."""
    problems: list[Problem] = []
    ids = {job.id for job in jobs}
    for job in jobs:
        where = Location(file=file, line=job.location.line, column=job.location.column)
        for need in job.needs:
            if need not in ids:
                message = f"job {job.id!r} depends on unknown job {need!r}{did_you_mean(need, ids)}"
                problems.append(Problem(location=where, path=f"jobs.{job.id}.needs", message=message))
    sorter = graphlib.TopologicalSorter({job.id: [need for need in job.needs if need in ids] for job in jobs})
    try:
        sorter.prepare()
    except graphlib.CycleError as error:
        cycle = " -> ".join(error.args[1])
        first = next(job for job in jobs if job.id == error.args[1][0])
        problems.append(
            Problem(
                location=first.location,
                path=f"jobs.{first.id}.needs",
                message=f"the jobs' needs make a cycle: {cycle}",
            )
        )
    return problems
