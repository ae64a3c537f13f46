"""`list`: the steps of a playbook, with what decides how each runs, and its groups."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ci_orchestrator.commands.tables import table
from ci_orchestrator.options import apply_step_defaults
from ci_orchestrator.playbook import loader
from ci_orchestrator.settings import reading
from ci_orchestrator.workflows import generated

if TYPE_CHECKING:
    from ci_orchestrator.options import Selection
    from ci_orchestrator.playbook.model import Playbook, Step


def _mode(step: Step, playbook: Playbook) -> str:
    if step.allow_parallel is False:
        return "exclusive"
    if step.group is not None:
        return f"group {step.group}"
    if step.parallel:
        return "parallel"
    block = next((group for group in playbook.groups if group.name == step.block), None)
    execution = block.execution if block else playbook.execution
    return execution.value


def _matrix(step: Step) -> str:
    """The axes as `--matrix` takes them (`python=3.11,3.12 os=linux,macos`), then how many
    `exclude` and `include` entries; a matrix written as one expression, as written."""
    spec = step.matrix
    if spec is None:
        return "-"
    if spec.expression is not None:
        return spec.expression
    axes = [f"{axis}={','.join(_value(value) for value in values)}" for axis, values in spec.axes.items()]
    counted = [
        f"{name} {len(entries)}"
        for name, entries in (("exclude", spec.exclude), ("include", spec.include))
        if entries
    ]
    return " ".join([*axes, *([f"({', '.join(counted)})"] if counted else [])])


def _value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


def _on_error(step: Step) -> str:
    """`continue` for `continue-on-error: true`, its expression when it is one."""
    if isinstance(step.continue_on_error, str):
        return step.continue_on_error
    return "continue" if step.continue_on_error else "-"


def list_text(selection: Selection) -> str:
    """The steps with id, number, name, stage, tags, parallel mode, needs, matrix, inputs and what a
    failure does (continue-on-error); then the groups."""
    root = Path.cwd()
    config = reading.read_settings(
        root, config=Path(selection.config) if selection.config else None, profile=selection.profile
    )
    playbook = apply_step_defaults(
        loader.load_playbook(generated.playbook_file(selection.playbook, root=root)), config
    )
    rows = [["ID", "NUMBER", "NAME", "STAGE", "TAGS", "MODE", "NEEDS", "MATRIX", "INPUTS", "ON-ERROR"]]
    for step in playbook.steps:
        rows.append(
            [
                step.id,
                step.number or "-",
                step.name,
                step.stage or "-",
                ",".join(step.tags) or "-",
                _mode(step, playbook),
                ",".join(step.needs) or "-",
                _matrix(step),
                ",".join(step.inputs) or "-",
                _on_error(step),
            ]
        )
    count = len(playbook.steps)
    lines = [f"{playbook.name}: {count} step{'s' * (count != 1)} ({playbook.execution.value})", *table(rows)]
    if playbook.groups:
        lines.append("")
        group_rows = []
        for group in playbook.groups:
            flags = [group.execution.value] + (["stop-on-error"] if group.stop_on_error else [])
            count = len(group.step_ids)
            group_rows.append([group.name, f"[{', '.join(flags)}]", f"{count} step{'s' * (count != 1)}"])
        lines.extend(table(group_rows))
    return "\n".join(lines)
