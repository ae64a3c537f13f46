"""A local action's `action.yml`: its kind (`runs.using`), inputs with their defaults, outputs,
and a composite action's steps in the form a job's steps are run in."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ci_orchestrator.playbook import nodes

if TYPE_CHECKING:
    from pathlib import Path


@dataclass(frozen=True, slots=True, kw_only=True)
class Action:
    using: str
    inputs: dict[str, str] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)
    steps: tuple[dict[str, Any], ...] = ()


def read_action(folder: Path) -> tuple[Action | None, str]:
    """The action in `folder`, or None and why it cannot be read."""
    for name in ("action.yml", "action.yaml"):
        path = folder / name
        if path.is_file():
            break
    else:
        return None, f"no action.yml in {folder}"
    try:
        document, _ = nodes.compose(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, nodes.ComposeError) as error:
        return None, f"{path}: cannot be read: {error}"
    data = nodes.to_python(document)
    runs = data.get("runs") if isinstance(data, dict) else None
    if not isinstance(runs, dict) or not isinstance(runs.get("using"), str):
        return None, f"{path}: has no runs.using"
    inputs = {
        str(name): _text(spec.get("default")) if isinstance(spec, dict) else ""
        for name, spec in (data.get("inputs") or {}).items()
    }
    outputs = {
        str(name): _text(spec.get("value")) if isinstance(spec, dict) else ""
        for name, spec in (data.get("outputs") or {}).items()
    }
    steps = tuple(_step(step) for step in runs.get("steps") or () if isinstance(step, dict))
    return Action(using=runs["using"], inputs=inputs, outputs=outputs, steps=steps), ""


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _step(step: dict[str, Any]) -> dict[str, Any]:
    uses = step.get("uses")
    run = step.get("run")
    first = str(run or "").strip().splitlines()
    title = step.get("name") or (f"Run {uses}" if uses else f"Run {first[0]}" if first else "Run")
    minutes = step.get("timeout-minutes")
    return {
        "id": step.get("id"),
        "title": str(title),
        "run": None if run is None else str(run),
        "uses": uses,
        "with": {str(key): _text(value) for key, value in (step.get("with") or {}).items()},
        "shell": step.get("shell"),
        "working-directory": step.get("working-directory"),
        "env": {str(key): _text(value) for key, value in (step.get("env") or {}).items()},
        "if": None if step.get("if") is None else _text(step.get("if")),
        "continue-on-error": step.get("continue-on-error", False),
        "timeout": f"{minutes}m" if isinstance(minutes, int | float) else minutes,
    }
