"""A `.github/workflows/*.yml` file -> a checked `Workflow`, or one `PlaybookError` listing every
place where GitHub's own parser would refuse the file (exit 2), each with its line and key path."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ci_orchestrator.errors import ExpressionError, Location, PlaybookError, in_place_order
from ci_orchestrator.output.paths import shown_path
from ci_orchestrator.playbook import nodes
from ci_orchestrator.playbook.checks import Checker, did_you_mean, is_expression, kind_of, render_scalar
from ci_orchestrator.playbook.loader import read_text
from ci_orchestrator.playbook.nodes import Mapping, Scalar, Sequence, to_python
from ci_orchestrator.workflows import rules
from ci_orchestrator.workflows.model import Job, Workflow, WorkflowInput
from ci_orchestrator.workflows.steps import StepReader, needs_problems

if TYPE_CHECKING:
    from pathlib import Path

    from ci_orchestrator.playbook.nodes import Node


def is_workflow(path: Path) -> bool:
    """Whether a file read as a playbook is a GitHub workflow: it has a top-level `jobs:` key,
    which no playbook has."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return any(line.startswith(("jobs:", '"jobs":', "'jobs':")) for line in text.splitlines())


def read_workflow(path: Path) -> Workflow:
    """The workflow in `path`; raises PlaybookError with every problem found."""
    shown = shown_path(path)
    text = read_text(path, shown)
    try:
        document, duplicates = nodes.compose(text)
    except nodes.ComposeError as error:
        where = Location(file=shown, line=error.line, column=error.column)
        raise PlaybookError(error.message, location=where) from None
    checker = Checker(shown)
    for duplicate in duplicates:
        where = Location(file=shown, line=duplicate.line, column=duplicate.column)
        message = f"duplicate key {duplicate.key!r} (first at line {duplicate.first_line})"
        checker.problem(where, duplicate.path, message)
    workflow = _WorkflowReader(checker, path, shown).read(document)
    if checker.problems or workflow is None:
        raise PlaybookError.from_problems(in_place_order(checker.problems, main=shown))
    return workflow


class _WorkflowReader:
    def __init__(self, checker: Checker, path: Path, shown: str) -> None:
        self.checker = checker
        self.path = path
        self.shown = shown
        self.secrets: set[str] = set()

    def read(self, document: Node) -> Workflow | None:
        checker = self.checker
        if not isinstance(document, Mapping):
            checker.problem(document, "", f"a workflow must be a mapping of keys, not {kind_of(document)}")
            return None
        entries = checker.mapping(document, "", known=rules.ROOT_KEYS) or {}
        values = {key: value for key, (_, value) in entries.items()}
        for required in ("on", "jobs"):
            if required not in values:
                checker.problem(document, "", f"missing required key {required!r}")
        events, inputs, outputs = self.read_on(values["on"]) if "on" in values else ((), (), {})
        env = self.env(values["env"], "env", "workflow-env") if "env" in values else {}
        shell, directory = self.defaults(values.get("defaults"), "defaults", "job")
        if "run-name" in values:
            self.expressions(values["run-name"], "run-name", "run-name")
        noted: dict[str, str] = {
            key: _summary(values[key]) for key in ("permissions", "concurrency") if key in values
        }
        jobs = self.read_jobs(values["jobs"]) if "jobs" in values else []
        name = self.path.stem
        if "name" in values:
            name = checker.text(values["name"], "name") or name
        return Workflow(
            name=name,
            path=self.shown,
            location=checker.at(document),
            events=events,
            inputs=inputs,
            outputs=outputs,
            env=env,
            shell=shell,
            working_directory=directory,
            jobs=tuple(jobs),
            noted=noted,
            secrets=tuple(sorted(self.secrets)),
        )

    # --- on --------------------------------------------------------------------------
    def read_on(self, node: Node) -> tuple[tuple[str, ...], tuple[WorkflowInput, ...], dict[str, str]]:
        checker = self.checker
        if isinstance(node, Scalar | Sequence):
            named = checker.strings(node, "on") or ()
            for index, event in enumerate(named):
                where = node.items[index] if isinstance(node, Sequence) else node
                self.event_name(where, event)
            return named, (), {}
        if not isinstance(node, Mapping):
            checker.problem(
                node, "on", f"must be an event, a list of events or a mapping, not {kind_of(node)}"
            )
            return (), (), {}
        events: list[str] = []
        inputs: dict[str, WorkflowInput] = {}
        outputs: dict[str, str] = {}
        for key, value in node.entries:
            written = checker.text(key, "on")
            if written is None or not self.event_name(key, written):
                continue
            event = written
            events.append(event)
            if event in ("workflow_dispatch", "workflow_call") and isinstance(value, Mapping):
                for name, item in _entries(value):
                    if name == "inputs":
                        inputs.update({one.name: one for one in self.inputs(item, f"on.{event}.inputs")})
                    elif name == "outputs" and event == "workflow_call" and isinstance(item, Mapping):
                        for output, spec in _entries(item):
                            spec_values = dict(_entries(spec)) if isinstance(spec, Mapping) else {}
                            if "value" in spec_values and isinstance(spec_values["value"], Scalar):
                                outputs[output] = spec_values["value"].text
            elif event == "schedule" and not isinstance(value, Sequence):
                checker.problem(
                    value, "on.schedule", f"must be a list of {{cron: ...}}, not {kind_of(value)}"
                )
        return tuple(events), tuple(inputs.values()), outputs

    def event_name(self, node: Node, event: str) -> bool:
        if event in rules.EVENTS:
            return True
        self.checker.problem(node, "on", f"unknown event {event!r}{did_you_mean(event, rules.EVENTS)}")
        return False

    def inputs(self, node: Node, path: str) -> list[WorkflowInput]:
        checker = self.checker
        if not isinstance(node, Mapping):
            if kind_of(node) != "null":
                checker.problem(node, path, f"must be a mapping of inputs, not {kind_of(node)}")
            return []
        found = []
        for name, spec in _entries(node):
            where = f"{path}.{name}"
            fields = checker.mapping(
                spec, where, known=("description", "type", "required", "default", "options")
            )
            if fields is None:
                continue
            values = {key: value for key, (_, value) in fields.items()}
            kind = (
                checker.choice(values["type"], f"{where}.type", rules.INPUT_TYPES)
                if "type" in values
                else None
            )
            default = values.get("default")
            required = (
                checker.boolean(values["required"], f"{where}.required") if "required" in values else None
            )
            found.append(
                WorkflowInput(
                    name=name,
                    default=render_scalar(default) if isinstance(default, Scalar) else None,
                    required=bool(required),
                    type=kind or "string",
                    description=checker.text(values["description"], where)
                    if "description" in values
                    else None,
                )
            )
        return found

    # --- jobs ------------------------------------------------------------------------
    def read_jobs(self, node: Node) -> list[Job]:
        checker = self.checker
        if not isinstance(node, Mapping) or not node.entries:
            shown = "an empty mapping" if isinstance(node, Mapping) else kind_of(node)
            checker.problem(node, "jobs", f"must be a mapping of one job or more, not {shown}")
            return []
        jobs: list[Job] = []
        for key, value in node.entries:
            job_id = checker.text(key, "jobs")
            if job_id is None:
                continue
            if not rules.ID_PATTERN.fullmatch(job_id):
                message = (
                    f"job id {job_id!r} must start with a letter or '_' and hold only letters, digits,"
                    " '-' and '_'"
                )
                checker.problem(key, f"jobs.{job_id}", message)
            job = self.read_job(job_id, value, f"jobs.{job_id}")
            if job is not None:
                jobs.append(job)
        checker.problems.extend(needs_problems(jobs, self.shown))
        return jobs

    def read_job(self, job_id: str, node: Node, path: str) -> Job | None:
        checker = self.checker
        calls = isinstance(node, Mapping) and any(
            isinstance(key, Scalar) and key.text == "uses" for key, _ in node.entries
        )
        entries = checker.mapping(node, path, known=rules.CALLER_KEYS if calls else rules.JOB_KEYS)
        if entries is None:
            return None
        values = {key: value for key, (_, value) in entries.items()}
        fields: dict[str, Any] = {}
        if not calls:
            if "runs-on" not in values:
                checker.problem(node, path, "a job needs 'runs-on' (or 'uses' to call a reusable workflow)")
            if "steps" not in values:
                checker.problem(node, path, "a job needs 'steps' (or 'uses' to call a reusable workflow)")
        for key in ("name", "runs-on", "timeout-minutes", "continue-on-error", "concurrency"):
            if key in values:
                self.expressions(values[key], f"{path}.{key}", "job")
        environment = values.get("environment")
        if isinstance(environment, Mapping):  # its `url` is evaluated after the steps, with theirs
            for name, value in _entries(environment):
                where = "environment-url" if name == "url" else "job"
                self.expressions(value, f"{path}.environment.{name}", where)
        elif environment is not None:
            self.expressions(environment, f"{path}.environment", "job")
        if "name" in values:
            fields["name"] = checker.text(values["name"], f"{path}.name")
        if "needs" in values:
            fields["needs"] = checker.strings(values["needs"], f"{path}.needs") or ()
        if "if" in values:
            fields["condition"] = self.condition(values["if"], f"{path}.if", "job-if")
        if "strategy" in values:
            self.strategy(values["strategy"], f"{path}.strategy", fields)
        if "continue-on-error" in values:
            fields["continue_on_error"] = self.flag(values["continue-on-error"], f"{path}.continue-on-error")
        if "timeout-minutes" in values:
            fields["timeout_minutes"] = self.minutes(values["timeout-minutes"], f"{path}.timeout-minutes")
        if "env" in values:
            fields["env"] = self.env(values["env"], f"{path}.env", "job-env")
        if "defaults" in values:
            fields["shell"], fields["working_directory"] = self.defaults(
                values["defaults"], f"{path}.defaults", "job-defaults"
            )
        if "outputs" in values:
            fields["outputs"] = self.env(values["outputs"], f"{path}.outputs", "job-outputs")
        if "steps" in values:
            fields["steps"] = tuple(StepReader(self, path).read(values["steps"]))
        if calls:
            fields["uses"] = checker.text(values["uses"], f"{path}.uses")
            if "with" in values:
                fields["with_"] = self.env(values["with"], f"{path}.with", "caller-with")
            if "secrets" in values:
                secrets = values["secrets"]
                inherit = isinstance(secrets, Scalar) and secrets.text == "inherit"
                fields["secrets"] = (
                    "inherit" if inherit else self.env(secrets, f"{path}.secrets", "caller-with")
                )
        if "runs-on" in values:
            fields["runs_on"] = _labels(to_python(values["runs-on"]))
        noted = ("container", "services", "permissions", "concurrency", "environment", "snapshot")
        fields["noted"] = {key: _summary(values[key]) for key in noted if key in values}
        return Job(id=job_id, location=checker.at(node), **fields)

    def strategy(self, node: Node, path: str, fields: dict[str, Any]) -> None:
        checker = self.checker
        if isinstance(node, Scalar) and is_expression(node.text):
            self.expressions(node, path, "strategy")
            return
        entries = checker.mapping(node, path, known=rules.STRATEGY_KEYS) or {}
        values = {key: value for key, (_, value) in entries.items()}
        if "fail-fast" in values:
            fields["fail_fast"] = self.flag(values["fail-fast"], f"{path}.fail-fast", context="strategy")
        if "max-parallel" in values:
            node_ = values["max-parallel"]
            if isinstance(node_, Scalar) and is_expression(node_.text):
                self.expressions(node_, f"{path}.max-parallel", "strategy")
                fields["max_parallel"] = node_.text
            else:
                fields["max_parallel"] = checker.integer(node_, f"{path}.max-parallel", minimum=1)
        if "matrix" in values:
            fields["matrix"] = self.matrix(values["matrix"], f"{path}.matrix")

    def matrix(self, node: Node, path: str) -> Any:
        checker = self.checker
        if isinstance(node, Scalar) and is_expression(node.text):
            self.expressions(node, path, "strategy")
            return node.text
        if not isinstance(node, Mapping):
            checker.problem(
                node, path, f"must be a mapping of axes or a ${{{{ }}}} expression, not {kind_of(node)}"
            )
            return None
        matrix: dict[str, Any] = {}
        for name, value in _entries(node):
            where = f"{path}.{name}"
            self.expressions(value, where, "strategy")
            if name in ("include", "exclude"):
                if isinstance(value, Scalar) and is_expression(value.text):
                    matrix[name] = value.text
                elif not isinstance(value, Sequence) or not all(
                    isinstance(item, Mapping) for item in value.items
                ):
                    checker.problem(value, where, "must be a list of mappings")
                else:
                    matrix[name] = to_python(value)
            elif isinstance(value, Scalar) and is_expression(value.text):
                matrix[name] = value.text
            elif not isinstance(value, Sequence) or not value.items:
                shown = "an empty list" if isinstance(value, Sequence) else kind_of(value)
                checker.problem(value, where, f"a matrix axis must be a non-empty list, not {shown}")
            else:
                matrix[name] = to_python(value)
        return matrix

    # --- values ----------------------------------------------------------------------
    def defaults(self, node: Node | None, path: str, context: str) -> tuple[str | None, str | None]:
        if node is None:
            return None, None
        entries = self.checker.mapping(node, path, known=rules.DEFAULTS_KEYS) or {}
        if "run" not in entries:
            return None, None
        run = self.checker.mapping(entries["run"][1], f"{path}.run", known=rules.DEFAULTS_RUN_KEYS) or {}
        found: list[str | None] = []
        for key in rules.DEFAULTS_RUN_KEYS:
            value = run[key][1] if key in run else None
            found.append(self.text(value, f"{path}.run.{key}", context) if value is not None else None)
        return found[0], found[1]

    def text(self, node: Node, path: str, context: str) -> str | None:
        text = self.checker.text(node, path)
        if text is not None and not text:
            self.checker.problem(node, path, "must not be empty")
            return None
        if text is not None:
            self.expressions(node, path, context)
        return text

    def env(self, node: Node, path: str, context: str) -> dict[str, str]:
        if isinstance(node, Scalar) and is_expression(node.text):
            self.expressions(node, path, context)
            return {}
        env = self.checker.env(node, path) or {}
        if isinstance(node, Mapping):
            for _, value in node.entries:
                self.expressions(value, path, context)
        return env

    def flag(self, node: Node, path: str, *, context: str = "job") -> bool | str:
        if isinstance(node, Scalar) and is_expression(node.text):
            self.expressions(node, path, context)
            return node.text
        return bool(self.checker.boolean(node, path))

    def minutes(self, node: Node, path: str, *, context: str = "job") -> float | str | None:
        if isinstance(node, Scalar) and is_expression(node.text):
            self.expressions(node, path, context)
            return node.text
        value = self.checker.scalar_value(node, path, "a number of minutes")
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            self.checker.problem(node, path, f"must be a number of minutes, not {_shown(node)}")
            return None
        return float(value)

    def condition(self, node: Node, path: str, context: str) -> str | None:
        if not isinstance(node, Scalar) or kind_of(node) == "null":
            self.checker.problem(node, path, f"must be an expression, not {kind_of(node)}")
            return None
        text = render_scalar(node)
        self.check(node, path, text, context, condition=True)
        return text

    def expressions(self, node: Node, path: str, context: str) -> None:
        """Checks every `${{ }}` in the scalars under `node` against what `context` may read."""
        if isinstance(node, Scalar):
            if "${{" in node.text:
                self.check(node, path, node.text, context)
        elif isinstance(node, Sequence):
            for item in node.items:
                self.expressions(item, path, context)
        else:
            for _, value in node.entries:
                self.expressions(value, path, context)

    def check(self, node: Node, path: str, text: str, context: str, *, condition: bool = False) -> None:
        from ci_orchestrator.expressions import evaluation

        try:
            evaluation.check(text, contexts=rules.CONTEXTS[context], condition=condition)
            self.secrets.update(evaluation.keys_named(text, "secrets", condition=condition))
        except ExpressionError as error:
            self.checker.problem(node, path, error.problems[0].message if error.problems else str(error))


def _entries(node: Mapping) -> list[tuple[str, Node]]:
    return [(key.text, value) for key, value in node.entries if isinstance(key, Scalar)]


def _shown(node: Node) -> str:
    return repr(node.text) if isinstance(node, Scalar) else kind_of(node)


def _labels(value: Any) -> str | tuple[str, ...] | None:
    """`runs-on` as a label (or expression) or labels; a runner group's labels, else None."""
    if isinstance(value, dict):
        value = value.get("labels")
    if isinstance(value, list):
        return tuple(str(item) for item in value)
    return None if value is None else str(value)


def _summary(node: Node) -> str:
    """A noted key's value in one line: `ubuntu-latest`, `[self-hosted, linux]`, `postgres, redis`."""
    value = to_python(node)
    if value in ({}, []):
        return "{}" if value == {} else "[]"
    if isinstance(value, dict):
        if "image" in value:
            return str(value["image"])
        if "group" in value:
            return f"group {value['group']}"
        return ", ".join(
            f"{key}: {item}" if isinstance(item, str) else str(key) for key, item in value.items()
        )
    if isinstance(value, list):
        return ", ".join(str(item) for item in value)
    return str(value)
