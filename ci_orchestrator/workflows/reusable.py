"""Reusable workflows of the repository (`uses: ./.github/workflows/x.yml` as a job) read and
put in place of the job that calls them, as GitHub runs them: each called job becomes a job of
its own, `CALLER_JOB` (GitHub shows `CALLER / JOB`), and one more job named as the caller
stands for the call: it waits for them, fails when one failed, and gives the called workflow's
outputs, so that what needs the caller reads `needs.CALLER.result` and `needs.CALLER.outputs`.

In the called jobs, `inputs.NAME` becomes the caller's `with` value (its expressions read in the
caller's contexts: the caller's needs come before the called jobs), or the input's default, and
`needs.JOB` the called job's new id. The caller's `if:` gates the called jobs. Calls nest (a
called workflow may call another), up to GitHub's depth. A call of another repository's
workflow, or one with a `strategy` of its own, is left as it is (not run here).
"""

from __future__ import annotations

import dataclasses
import functools
import re
from typing import TYPE_CHECKING, Any

from ci_orchestrator.errors import PlaybookError
from ci_orchestrator.workflows.model import Job, WorkflowStep

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from pathlib import Path

    from ci_orchestrator.workflows.model import Workflow, WorkflowInput

MAX_DEPTH = 10  # GitHub's: a workflow and nine levels of calls below it
_EXPRESSION = re.compile(r"\$\{\{(.*?)\}\}", re.DOTALL)
_KEPT_FIELDS = frozenset({"id", "location", "needs", "uses", "noted"})


def inline_calls(workflow: Workflow, *, root: Path, depth: int = 1) -> Workflow:
    """The workflow with each job that calls a reusable workflow of this repository replaced by
    the called jobs and the job that stands for the call."""
    if not any(_local(job) for job in workflow.jobs):
        return workflow
    if depth >= MAX_DEPTH:
        raise PlaybookError(f"{workflow.path}: reusable workflows nest deeper than {MAX_DEPTH} levels")
    from ci_orchestrator.workflows.reader import read_workflow  # the reader is not needed otherwise

    jobs: list[Job] = []
    for job in workflow.jobs:
        if not _local(job):
            jobs.append(job)
            continue
        assert job.uses is not None
        called = inline_calls(read_workflow(root / job.uses), root=root, depth=depth + 1)
        jobs.extend(_called_jobs(job, called))
    return dataclasses.replace(workflow, jobs=tuple(jobs))


def _local(job: Job) -> bool:
    return job.uses is not None and job.uses.startswith("./") and job.matrix is None


def _called_jobs(caller: Job, called: Workflow) -> list[Job]:
    ids = {job.id: f"{caller.id}_{job.id}" for job in called.jobs}
    values = {one.name: _input_value(one, caller.with_.get(one.name)) for one in called.inputs}
    rewrite = functools.partial(_rewritten, inputs=values, ids=ids)
    jobs: list[Job] = []
    for job in called.jobs:
        own = _mapped_job(job, rewrite)
        roots = not job.needs
        condition = own.condition
        if roots and caller.condition:
            condition = _both(caller.condition, condition) if condition else caller.condition
        jobs.append(
            dataclasses.replace(
                own,
                id=ids[job.id],
                name=f"{caller.name or caller.id} / {job.name or job.id}",
                needs=tuple(caller.needs) if roots else tuple(ids[need] for need in job.needs),
                condition=condition,
            )
        )
    outputs = {name: _jobs_as_needs(text, ids) for name, text in called.outputs.items()}
    gate = f"!cancelled() && ({_inner(caller.condition)})" if caller.condition else "!cancelled()"
    closing = Job(
        id=caller.id,
        location=caller.location,
        name=caller.name,
        needs=tuple(ids.values()),
        condition="${{ " + gate + " }}",
        outputs=outputs,
        steps=(
            WorkflowStep(
                location=caller.location,
                name=f"The jobs of {caller.uses}",
                run="test \"${{ contains(needs.*.result, 'failure') }}\" = false",
            ),
        ),
        noted={"calls": f"{caller.uses}: its jobs run as {', '.join(ids.values())}"},
    )
    return [*jobs, closing]


def _mapped_job(job: Job, rewrite: Callable[[str], str]) -> Job:
    changes = {
        field.name: _mapped(getattr(job, field.name), rewrite)
        for field in dataclasses.fields(job)
        if field.name not in _KEPT_FIELDS and field.name != "steps"
    }
    steps = tuple(_mapped_step(step, rewrite) for step in job.steps)
    if job.condition is not None:  # a bare `if:` is an expression without `${{ }}`
        changes["condition"] = rewrite(_wrapped(job.condition))
    return dataclasses.replace(job, steps=steps, **changes)


def _mapped_step(step: WorkflowStep, rewrite: Callable[[str], str]) -> WorkflowStep:
    changes = {
        field.name: _mapped(getattr(step, field.name), rewrite)
        for field in dataclasses.fields(step)
        if field.name not in _KEPT_FIELDS
    }
    if step.condition is not None:
        changes["condition"] = rewrite(_wrapped(step.condition))
    return dataclasses.replace(step, **changes)


def _mapped(value: Any, rewrite: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return rewrite(value)
    if isinstance(value, dict):
        return {key: _mapped(item, rewrite) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_mapped(item, rewrite) for item in value)
    return value


def _wrapped(condition: str) -> str:
    return condition if "${{" in condition else "${{ " + condition + " }}"


def _inner(condition: str) -> str:
    found = _EXPRESSION.fullmatch(condition.strip())
    return found.group(1).strip() if found else condition


def _both(first: str, second: str) -> str:
    return "${{ (" + _inner(first) + ") && (" + _inner(_wrapped(second)) + ") }}"


def _rewritten(text: str, *, inputs: Mapping[str, str], ids: Mapping[str, str]) -> str:
    """`inputs.NAME` and `needs.JOB` of the called workflow's expressions, as the call gives them."""

    def expression(match: re.Match[str]) -> str:
        inner = match.group(1)
        for name, value in inputs.items():
            inner = _named(inner, rf"inputs\.{re.escape(name)}(?![\w-])", f"({value})")
            inner = _named(inner, rf"inputs\[\s*'{re.escape(name)}'\s*\]", f"({value})")
        for old, new in ids.items():
            inner = _named(inner, rf"needs\.{re.escape(old)}(?![\w-])", f"needs.{new}")
        return "${{" + inner + "}}"

    return _EXPRESSION.sub(expression, text) if "${{" in text else text


def _jobs_as_needs(text: str, ids: Mapping[str, str]) -> str:
    """A called workflow's output (`jobs.JOB.outputs.NAME`) read by the job standing for the call."""

    def expression(match: re.Match[str]) -> str:
        inner = match.group(1)
        for old, new in ids.items():
            inner = _named(inner, rf"jobs\.{re.escape(old)}(?![\w-])", f"needs.{new}")
        return "${{" + inner + "}}"

    return _EXPRESSION.sub(expression, text)


def _named(expression: str, pattern: str, replacement: str) -> str:
    """`expression` with each context read that `pattern` matches (not a property of something
    else: `github.event.inputs.x` is not `inputs.x`) replaced."""
    return re.sub(r"(?<![\w.-])" + pattern, lambda _: replacement, expression)


def _input_value(spec: WorkflowInput, given: str | None) -> str:
    """The expression an input reads as: the caller's `with` value (a template becomes
    `format`), else the input's default, else GitHub's empty value of its type."""
    text = given if given is not None else spec.default
    if text is None:
        return {"boolean": "false", "number": "0"}.get(spec.type, "''")
    whole = _EXPRESSION.fullmatch(text.strip())
    if whole is not None:
        return whole.group(1).strip()
    if "${{" in text:
        parts = _EXPRESSION.split(text)  # literal, expression, literal, ...
        literal = "".join(
            part.replace("{", "{{").replace("}", "}}") if index % 2 == 0 else "{" + str(index // 2) + "}"
            for index, part in enumerate(parts)
        )
        arguments = ", ".join(part.strip() for part in parts[1::2])
        return f"format({_quoted(literal)}, {arguments})"
    if spec.type == "boolean" and text.strip().lower() in ("true", "false"):
        return text.strip().lower()
    if spec.type == "number" and re.fullmatch(r"-?\d+(\.\d+)?", text.strip()):
        return text.strip()
    return _quoted(text)


def _quoted(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
