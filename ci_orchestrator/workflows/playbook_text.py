"""A workflow -> the text of a playbook that runs its jobs here: each job a step made of steps, in
GitHub's order and semantics, commented where a human should look (what is not run here, what
runs differently)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ci_orchestrator.workflows.contexts import DEFAULT_EVENT, GITHUB_PREFIX, INPUTS_PREFIX

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

    from ci_orchestrator.workflows.model import Job, Workflow, WorkflowStep

# GitHub's shell when a step names none (`bash` named is `bash --noprofile --norc -eo pipefail`).
UNNAMED_SHELL = "bash -e {0}"
_PLAIN = re.compile(r"[A-Za-z_./][A-Za-z0-9 _./@+-]*")
_WHOLE_EXPRESSION = re.compile(r"\$\{\{((?:(?!\}\}).)*)\}\}", re.DOTALL)
_MINUTES = "{0}m"
_YAML_WORDS = frozenset({"true", "false", "yes", "no", "on", "off", "null", "y", "n", "~"})


@dataclass(frozen=True, slots=True, kw_only=True)
class ImportOptions:
    jobs: tuple[str, ...] = ()  # `--job`: these and what they need; all when empty
    event: str | None = None
    inputs: Mapping[str, str] = field(default_factory=dict)
    secrets: tuple[str, ...] = ()
    # The cache inputs of every job (see `workflows/tracked`); None: the jobs are not cached.
    cache_inputs: tuple[str, ...] | None = None


def chosen_jobs(workflow: Workflow, wanted: tuple[str, ...]) -> list[Job]:
    """The jobs asked for and every job they need, in the workflow's order."""
    if not wanted:
        return list(workflow.jobs)
    keep: set[str] = set()
    todo = list(wanted)
    while todo:
        job_id = todo.pop()
        if job_id not in keep:
            keep.add(job_id)
            todo.extend(workflow.job(job_id).needs)
    return [job for job in workflow.jobs if job.id in keep]


def scalar(value: Any) -> str:
    """One value as YAML: plain where that reads back as the same string, else JSON-quoted."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    if value is None:
        return "null"
    text = str(value)
    if (
        _PLAIN.fullmatch(text)
        and text.lower() not in _YAML_WORDS
        and text == text.strip()
        and " #" not in text
    ):
        return text
    return json.dumps(text, ensure_ascii=False)


def block(key: str, value: Any, indent: str) -> Iterator[str]:
    """`key: value` lines: mappings and lists in block style, multi-line text as a literal block."""
    if isinstance(value, dict):
        if not value:
            yield f"{indent}{key}: {{}}"
            return
        yield f"{indent}{key}:"
        for name, item in value.items():
            yield from block(scalar(name), item, indent + "  ")
    elif isinstance(value, list):
        if all(not isinstance(item, dict | list) for item in value):
            yield f"{indent}{key}: [{', '.join(scalar(item) for item in value)}]"
            return
        yield f"{indent}{key}:"
        for item in value:
            if isinstance(item, dict):
                yield from _list_mapping(item, indent + "  ")
            elif isinstance(item, list):  # JSON is YAML's flow style: `- ["ubuntu", "3.12"]`
                yield f"{indent}  - {json.dumps(item, ensure_ascii=False)}"
            else:
                yield f"{indent}  - {scalar(item)}"
    elif isinstance(value, str) and "\n" in value.rstrip("\n") and _literal_ok(value):
        chomp = (
            ""
            if value.endswith("\n") and not value.endswith("\n\n")
            else "-"
            if not value.endswith("\n")
            else "+"
        )
        yield f"{indent}{key}: |{chomp}"
        for line in value.rstrip("\n").split("\n"):
            yield f"{indent}  {line}" if line else ""
    else:
        yield f"{indent}{key}: {scalar(value)}"


def _list_mapping(item: dict[str, Any], indent: str) -> list[str]:
    lines: list[str] = []
    for index, (name, value) in enumerate(item.items()):
        for number, line in enumerate(block(scalar(name), value, indent + "  ")):
            lines.append(f"{indent}- {line.lstrip()}" if index == 0 and number == 0 else line)
    return lines or [f"{indent}- {{}}"]


def _literal_ok(text: str) -> bool:
    first = text.split("\n", 1)[0]
    return (
        not first.startswith((" ", "\t"))
        and "\r" not in text
        and "\t" not in text.replace("\n", "")[:0]
        and all(not line.endswith((" ", "\t")) for line in text.split("\n"))
    )


def playbook_text(workflow: Workflow, options: ImportOptions) -> str:
    """The playbook, as text, that runs the workflow's (chosen) jobs here."""
    jobs = chosen_jobs(workflow, options.jobs)
    out: list[str] = [
        f"# Runs the jobs of {workflow.path} on this machine (ci-orchestrator import github-workflow).",
        "# Each job is a step made of steps: they run in order in one environment, as on a runner.",
        f"name: {scalar(workflow.name)}",
        "execution: parallel  # jobs wait only for their `needs`, as on GitHub",
        "fail-fast: false  # a failed job does not stop the others: what needs it is skipped",
    ]
    for key, value in workflow.noted.items():
        out.append(f"# {key}: {value}  (not applied here)")
    secrets = sorted({*workflow.secrets, *options.secrets})
    if secrets:
        out.append(f"secrets: [{', '.join(secrets)}]  # read from the environment, masked")
    variables: dict[str, str] = {f"{GITHUB_PREFIX}event_name": options.event or DEFAULT_EVENT}
    for one in workflow.inputs:
        variables[f"{INPUTS_PREFIX}{one.name}"] = options.inputs.get(one.name, one.default or "")
    for name, value in options.inputs.items():
        variables.setdefault(f"{INPUTS_PREFIX}{name}", value)
    out.append("# github.*: the github context (event_name: --event), inputs.*: the inputs (--input)")
    missing = [one.name for one in workflow.inputs if one.required and one.default is None]
    for name in (name for name in missing if name not in options.inputs):
        out.append(f"# inputs.{name} is required and has no default: give it with --input {name}=VALUE")
    out.extend(block("vars", variables, ""))
    if workflow.env:
        out.extend(block("env", dict(workflow.env), ""))
    out.append("steps:")
    anchored = False
    for job in jobs:
        out.append("")
        lines = list(_job(job, workflow))
        if job.uses is None:
            at = next(index for index, line in enumerate(lines) if line == "    steps:")
            lines[at:at] = _cache_inputs(options.cache_inputs, first=not anchored)
            anchored = True
        out.extend(lines)
    return "\n".join(out) + "\n"


def _cache_inputs(globs: tuple[str, ...] | None, *, first: bool) -> list[str]:
    """A job's `inputs:` (the first job's list named `&checkout`, the others' pointing at it)."""
    if globs is None:
        return ["    # not cached: no git working copy, whose files would be its inputs"]
    if not globs:  # the working copy holds the workflow alone
        return ["    cache: true  # taken from the cache when its definition and what it needs are unchanged"]
    if not first:
        return ["    inputs: *checkout"]
    return [
        "    # cached: taken from the cache when these files, the job's definition, the variables",
        "    # and what it needs are as when it last passed (the files of the working copy git",
        "    # does not ignore, the workflow file left out)",
        "    inputs: &checkout",
        *(f"      - {scalar(one)}" for one in globs),
    ]


def _job(job: Job, workflow: Workflow) -> Iterator[str]:
    indent = "    "
    yield f"  - id: {job.id}"
    if job.matrix is not None and "needs." in repr(job.matrix):
        if job.needs:
            yield f"{indent}needs: [{', '.join(job.needs)}]"
        yield f"{indent}# strategy.matrix: made from another job's outputs, known only as the workflow runs"
        yield f"{indent}if: false  # not run here"
        yield f"{indent}steps:"
        yield f'{indent}  - run: "true"'
        return
    if job.name:
        yield f"{indent}name: {scalar(job.name)}"
    for key, value in job.noted.items():
        where = "" if key == "calls" else "  (not applied here: the steps run on this machine)"
        yield f"{indent}# {key}: {value}{where}"
    if job.needs:
        yield f"{indent}needs: [{', '.join(job.needs)}]"
    if job.condition:
        yield f"{indent}if: {scalar(job.condition)}"
    if job.matrix is not None:
        yield from block("matrix", job.matrix if isinstance(job.matrix, str) else dict(job.matrix), indent)
        if job.fail_fast is True:  # GitHub's default
            yield f"{indent}fail-fast: true  # a failed combination cancels the others"
        elif job.fail_fast is not False:
            yield f"{indent}# strategy.fail-fast: {job.fail_fast}  (an expression: not applied here)"
    if isinstance(job.max_parallel, int):
        yield f"{indent}max-parallel: {job.max_parallel}"
    elif job.max_parallel is not None:
        yield f"{indent}# strategy.max-parallel: {job.max_parallel}  (an expression: not applied here)"
    if job.continue_on_error is not False:
        yield f"{indent}continue-on-error: {scalar(job.continue_on_error)}"
    if job.timeout_minutes is not None:
        yield f"{indent}{_timeout(job.timeout_minutes)}"
    if job.runs_on is not None:
        labels = [job.runs_on] if isinstance(job.runs_on, str) else list(job.runs_on)
        shown = ", ".join(scalar(label) for label in labels)
        yield f"{indent}runs-on: [{shown}]  # another system's runner: the job is skipped here"
    if job.env:
        yield from block("env", dict(job.env), indent)
    shell = job.shell or workflow.shell
    yield f"{indent}shell: {scalar(shell or UNNAMED_SHELL)}" + (
        "" if shell else "  # GitHub's shell when none is named"
    )
    directory = job.working_directory or workflow.working_directory
    if directory:
        yield f"{indent}working-directory: {scalar(directory)}"
    if job.outputs:
        yield from block("job-outputs", dict(job.outputs), indent)
    yield f"{indent}steps:"
    if job.uses is not None:
        yield f"{indent}  # calls a reusable workflow: not run here"
        yield f"{indent}  - uses: {scalar(job.uses)}"
        if job.with_:
            yield from block("with", dict(job.with_), indent + "    ")
        return
    for step in job.steps:
        yield from _step(step, indent + "  ")


def _step(step: WorkflowStep, indent: str) -> Iterator[str]:
    lines: list[str] = []
    inner = indent + "  "
    if step.id:
        lines.append(f"id: {step.id}")
    if step.name:
        lines.append(f"name: {scalar(step.name)}")
    comment = _uses_comment(step.uses) if step.uses else ""
    if step.uses:
        lines.append(f"uses: {scalar(step.uses)}{comment}")
    if step.with_:
        lines.extend(line[len(inner) :] for line in block("with", dict(step.with_), inner))
    if step.run is not None:
        lines.extend(line[len(inner) :] if line else "" for line in block("run", step.run, inner))
    if step.shell:
        lines.append(f"shell: {scalar(step.shell)}")
    if step.working_directory:
        lines.append(f"working-directory: {scalar(step.working_directory)}")
    if step.env:
        lines.extend(line[len(inner) :] for line in block("env", dict(step.env), inner))
    if step.condition:
        lines.append(f"if: {scalar(step.condition)}")
    if step.continue_on_error is not False:
        lines.append(f"continue-on-error: {scalar(step.continue_on_error)}")
    if step.timeout_minutes is not None:
        lines.append(_timeout(step.timeout_minutes))
    for number, line in enumerate(lines):
        yield (f"{indent}- {line}" if number == 0 else f"{inner}{line}" if line else "")


def _uses_comment(uses: str) -> str:
    name = uses.partition("@")[0].lower()
    if name == "actions/checkout":
        return "  # here: the working copy as it is"
    setups = ("actions/setup-python", "actions/setup-node", "actions/setup-go", "actions/setup-java")
    if name in (*setups, "astral-sh/setup-uv"):
        return "  # here: the local tool when its version fits, else it fails"
    if name in ("actions/cache", "actions/cache/restore", "actions/cache/save"):
        return "  # here: a folder under .ci-orchestrator/actions-cache"
    if name in ("actions/upload-artifact", "actions/download-artifact"):
        return "  # here: .ci-orchestrator/artifacts"
    if uses.startswith("./"):
        return "  # a local action: a composite one runs its steps"
    return "  # not run here: skipped"


def _timeout(minutes: float | str) -> str:
    """`timeout-minutes` as a `timeout:` line: a duration, or an expression that gives one (the
    expression language has no arithmetic: `format` makes `N` minutes `Nm`); a text that is more
    than one expression as a comment."""
    if isinstance(minutes, float):
        return f"timeout: {_minutes(minutes)}"
    whole = _WHOLE_EXPRESSION.fullmatch(minutes.strip())
    if whole is None:
        return f"# timeout-minutes: {minutes}  (not one expression: not applied here)"
    return f"timeout: {scalar(f'${{{{ format({_MINUTES!r}, {whole.group(1).strip()}) }}}}')}"


def _minutes(minutes: float) -> str:
    seconds = round(minutes * 60)
    return f"{seconds // 60}m" if seconds % 60 == 0 else f"{seconds}s"
