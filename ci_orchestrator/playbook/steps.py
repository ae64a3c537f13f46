"""One step entry of a playbook -> a `Step`: every key checked, the playbook's `defaults:` and a
numbered script's header metadata folded in under the step's own keys."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ci_orchestrator.errors import Location
from ci_orchestrator.output.paths import shown_path
from ci_orchestrator.playbook import lookup, matrix_refs
from ci_orchestrator.playbook.checks import (
    SHELLS,
    Checker,
    did_you_mean,
    is_expression,
    kind_of,
    render_scalar,
    slug,
)
from ci_orchestrator.playbook.jobs import read_job_outputs, read_job_steps
from ci_orchestrator.playbook.model import HEADER_KEYS, MatrixSpec, Step
from ci_orchestrator.playbook.nodes import Mapping, Scalar, Sequence, to_python, unreadable
from ci_orchestrator.playbook.scripts import SCRIPT_NAME, ScriptInfo, normalize_number, read_script

if TYPE_CHECKING:
    from collections import abc
    from collections.abc import Callable
    from pathlib import Path

    from ci_orchestrator.playbook.nodes import Node

STEP_KEYS = (
    "id", "name", "run", "script", "command", "args", "needs", "parallel", "group", "allow-parallel",
    "matrix", "max-parallel", "fail-fast", "resources", "timeout", "continue-on-error", "retry", "if", "env",
    "working-directory", "inputs", "outputs", "junit", "cache", "tags", "stage", "description", "shell",
    "shard",
    "steps", "job-outputs", "runs-on",
)  # fmt: skip
# A matrix's own keys; any other key of it is an axis.
MATRIX_KEYS = ("include", "exclude")
_COMMANDS = ("run", "script", "command", "steps")
# Where a script header key lands on the step, for errors found later.
_METADATA_KEYS = {header: key for key, header in HEADER_KEYS.items()}


@dataclass(frozen=True, slots=True, kw_only=True)
class StepDefaults:
    """The playbook's `defaults:`, applied to every step that does not say otherwise."""

    shell: str = "bash"
    timeout: float | str | None = None
    working_directory: str = "."
    env: abc.Mapping[str, str] = field(default_factory=dict)
    retry: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class StepContext:
    """What a step entry is read against: the playbook's folder, its scripts and defaults."""

    base: Path
    scripts_dir: Path | None = None
    scripts: abc.Mapping[str, ScriptInfo] = field(default_factory=dict)
    # `scripts:` is written but names no folder (reported): a numbered `script:` is not looked for.
    scripts_unread: bool = False
    defaults: StepDefaults = field(default_factory=StepDefaults)
    block: str | None = None


def script_step(info: ScriptInfo, defaults: StepDefaults) -> Step:
    """The step a numbered script becomes when no step entry names it."""
    return Step(
        id=info.number,
        name=info.name,
        location=Location(file=shown_path(info.path)),
        script=shown_path(info.path),
        number=info.number,
        shell=defaults.shell,
        needs=info.dependencies,
        allow_parallel=info.allow_parallel,
        timeout=info.timeout if info.timeout is not None else defaults.timeout,
        retry=defaults.retry,
        env=dict(defaults.env),
        working_directory=defaults.working_directory,
        tags=info.tags,
        stage=info.stage,
        description=info.description,
        key_locations={
            _METADATA_KEYS[key]: place for key, place in info.locations.items() if key in _METADATA_KEYS
        },
    )


def read_step(checker: Checker, node: Node, path: str, context: StepContext) -> Step | None:
    """The step an entry describes, or None when it has no usable id. Problems go to `checker`."""
    entries = checker.mapping(node, path, known=STEP_KEYS)
    if entries is None:
        return None
    values = {key: value for key, (_, value) in entries.items()}
    locations = {key: checker.at(key_node) for key, (key_node, _) in entries.items()}
    fields: dict[str, Any] = {}

    commands = [key for key in _COMMANDS if key in values]
    if not commands:
        checker.problem(node, path, "a step needs one of 'run', 'script', 'command' or 'steps'")
    for extra in commands[1:]:
        checker.problem(entries[extra][0], path, f"{commands[0]!r} and {extra!r} cannot be used together")
    info = None
    if "run" in values:
        fields["run"] = checker.text(values["run"], f"{path}.run")
    elif "command" in values:
        argv = _strings(checker, values["command"], f"{path}.command")
        if argv is not None and not argv:
            checker.problem(values["command"], f"{path}.command", "must hold at least the program to run")
        fields["command"] = tuple(argv) if argv else None
    elif "steps" in values:
        fields["steps"] = read_job_steps(checker, values["steps"], f"{path}.steps")
    elif "script" in values:
        info, script_path = _script(checker, values["script"], f"{path}.script", context)
        fields["script"] = shown_path(script_path) if script_path else None
        fields["number"] = info.number if info else None
    if "job-outputs" in values:
        if "steps" not in values:
            checker.problem(entries["job-outputs"][0], path, "'job-outputs' is only used with 'steps'")
        fields["job_outputs"] = read_job_outputs(checker, values["job-outputs"], f"{path}.job-outputs") or {}
    if "runs-on" in values and "steps" not in values:
        checker.problem(entries["runs-on"][0], path, "'runs-on' is only used with 'steps'")
    if "args" in values:
        if "script" not in values:
            checker.problem(entries["args"][0], path, "'args' is only used with 'script'")
        fields["args"] = _args(
            checker, values["args"], f"{path}.args", powershell=fields.get("script", "") or ""
        )

    name = checker.text(values["name"], f"{path}.name") if "name" in values else None
    step_id = checker.step_id(values["id"], f"{path}.id") if "id" in values else None
    written = values.get("id")
    if step_id is None and isinstance(written, Scalar) and written.text:
        # Not a valid id (reported), kept as written: the steps that need it are not blamed.
        step_id = written.text
    if step_id is None and "id" not in values:
        step_id = slug(name) if name else info.number if info else None
        if not step_id:
            where = values.get("name", node)
            checker.problem(
                where, path, "a step needs an 'id' (or a 'name' or a numbered 'script' to make one)"
            )
    if step_id is None:
        return None
    fields["id"] = step_id
    fields["name"] = name or (info.name if info else step_id)

    _read_options(checker, values, path, fields)
    matrix_refs.check_step(checker, values, path, fields.get("matrix"))
    _fold_defaults(fields, context.defaults, info)
    if info is not None:
        for key, place in info.locations.items():
            if key in _METADATA_KEYS and _METADATA_KEYS[key] not in locations:
                locations[_METADATA_KEYS[key]] = place
    return Step(location=checker.at(node), block=context.block, key_locations=locations, path=path, **fields)


def _read_options(checker: Checker, values: dict[str, Node], path: str, fields: dict[str, Any]) -> None:
    """Every key but the command and the id, into `fields` under the model's names; bad ones left out."""
    for key, node in values.items():
        option = _OPTIONS.get(key)
        if option is not None:
            name, read = option
            value = read(checker, node, f"{path}.{key}")
            if value is not None:
                fields[name] = value


def _fold_defaults(fields: dict[str, Any], defaults: StepDefaults, info: ScriptInfo | None) -> None:
    """Step keys win over script metadata (but for the parallel permission, where the most
    restrictive wins), which wins over the playbook's defaults."""
    if info is not None:
        metadata = {
            "needs": info.dependencies,
            "stage": info.stage,
            "tags": info.tags,
            "allow_parallel": info.allow_parallel,
            "timeout": info.timeout,
            "description": info.description,
        }
        for name, value in metadata.items():
            if value is not None and value != () and name not in fields:
                fields[name] = value
        # Parallel permission is not overridden but combined: the most restrictive level wins,
        # so a step entry cannot let a script that says `AllowParallel: false` run beside others.
        if info.allow_parallel is False:
            fields["allow_parallel"] = False
    fields.setdefault("shell", defaults.shell)
    fields.setdefault("working_directory", defaults.working_directory)
    fields.setdefault("retry", defaults.retry)
    if defaults.timeout is not None:
        fields.setdefault("timeout", defaults.timeout)
    if defaults.env or "env" in fields:
        fields["env"] = {**defaults.env, **fields.get("env", {})}


def read_shell(checker: Checker, node: Node, path: str) -> str | None:
    text = checker.text(node, path)
    if text is None or text in SHELLS or "{0}" in text:
        return text
    choices = ", ".join(SHELLS)
    message = f"must be one of {choices} or a command template with {{0}}, not {text!r}"
    checker.problem(node, path, message + did_you_mean(text, SHELLS))
    return None


def read_matrix(checker: Checker, node: Node, path: str) -> MatrixSpec | None:
    """GitHub's `matrix:`: axes of non-empty lists (or a `${{ }}` giving one), `include` and
    `exclude` lists of mappings, or one `${{ }}` expression for the whole matrix."""
    if isinstance(node, Scalar) and is_expression(node.text):
        return MatrixSpec(axes={}, expression=node.text)
    if not isinstance(node, Mapping):
        checker.problem(
            node, path, f"must be a mapping of axes or a ${{{{ }}}} expression, not {kind_of(node)}"
        )
        return None
    axes: dict[str, tuple[Any, ...]] = {}
    lists: dict[str, list[tuple[Mapping, dict[str, Any]]]] = {key: [] for key in MATRIX_KEYS}
    valid = True
    for key, value in node.entries:
        name = checker.text(key, path)
        where = f"{path}.{name}"
        if (unread := unreadable(value)) is not None:
            checker.problem(unread, where, f"{unread.text[:40]!r}... is too long a number")
            valid = False
            continue
        if name in lists:
            if not isinstance(value, Sequence) or not all(isinstance(item, Mapping) for item in value.items):
                checker.problem(value, where, "must be a list of mappings")
                valid = False
                continue
            lists[name] = [(item, to_python(item)) for item in value.items if isinstance(item, Mapping)]
        elif name is not None:
            if isinstance(value, Scalar) and is_expression(value.text):
                axes[name] = (value.text,)  # the whole list, as `fromJSON` gives it (see `resolved`)
                continue
            if not isinstance(value, Sequence) or not value.items:
                shown = "an empty list" if isinstance(value, Sequence) else kind_of(value)
                checker.problem(value, where, f"an axis must be a non-empty list of values, not {shown}")
                valid = False
                continue
            axes[name] = tuple(to_python(item) for item in value.items)
    for index, (item, exclude) in enumerate(lists["exclude"]):
        for (key_node, _), axis in zip(item.entries, exclude, strict=False):
            if axis not in axes:
                message = f"exclude key {axis!r} is not a matrix axis{did_you_mean(str(axis), axes)}"
                checker.problem(key_node, f"{path}.exclude[{index}]", message)
                valid = False
    if valid and not axes and not lists["include"]:
        checker.problem(node, path, "a matrix needs at least one axis or an 'include' list")
        valid = False
    if not valid:
        return None
    return MatrixSpec(
        axes=axes,
        include=tuple(entry for _, entry in lists["include"]),
        exclude=tuple(entry for _, entry in lists["exclude"]),
    )


def _script(
    checker: Checker, node: Node, path: str, context: StepContext
) -> tuple[ScriptInfo | None, Path | None]:
    """The script a `script:` names: a number from the scripts folder, or a path from the playbook."""
    text = checker.text(node, path)
    if text is None:
        return None, None
    number = normalize_number(text) if text.strip().isdigit() else None
    if number is not None:
        if context.scripts_unread:
            return None, None
        if context.scripts_dir is None:
            checker.problem(
                node, path, f"script {text!r} is a number, but the playbook sets no 'scripts:' folder"
            )
            return None, None
        info = context.scripts.get(number)
        if info is None:
            folder = shown_path(context.scripts_dir)
            message = f"no script numbered {number} in {folder}{did_you_mean(number, context.scripts)}"
            checker.problem(node, path, message)
            return None, None
        return info, info.path
    script_path = context.base / text
    found = lookup.look(script_path)
    if found.kind is lookup.Kind.REFUSED:
        checker.problem(node, path, f"script {text!r} cannot be read: {found.problem}")
        return None, None
    if found.kind is not lookup.Kind.FILE:
        checker.problem(node, path, f"script {text!r} not found (looked for {shown_path(script_path)})")
        return None, None
    for info in context.scripts.values():
        if info.path.resolve() == script_path.resolve():
            return info, info.path
    if SCRIPT_NAME.fullmatch(script_path.name):
        return read_script(script_path, checker.problems), script_path
    return None, script_path


def _args(checker: Checker, node: Node, path: str, *, powershell: str) -> tuple[str, ...]:
    """`args:` as a list, or a mapping turned into `--key value` (`-Key value` for PowerShell)."""
    if isinstance(node, Sequence):
        return tuple(_strings(checker, node, path) or ())
    if not isinstance(node, Mapping):
        checker.problem(
            node, path, f"must be a list of arguments or a mapping of options, not {kind_of(node)}"
        )
        return ()
    dash = "-" if powershell.endswith(".ps1") else "--"
    argv: list[str] = []
    for key, value in node.entries:
        name = checker.text(key, path)
        if name is None:
            continue
        items = value.items if isinstance(value, Sequence) else (value,)
        for item in items:
            if not isinstance(item, Scalar):
                checker.problem(
                    item, f"{path}.{name}", f"must be a value or a list of values, not {kind_of(item)}"
                )
                continue
            rendered = render_scalar(item)
            # A true flag is a switch (`--verbose`, `-Force`); a false or empty one is left out.
            if item.plain and rendered in ("true", "false", ""):
                argv.extend([f"{dash}{name}"] if rendered == "true" else [])
            else:
                argv.extend([f"{dash}{name}", rendered])
    return tuple(argv)


def _strings(checker: Checker, node: Node, path: str) -> list[str] | None:
    """A list of scalars as strings, numbers and booleans rendered as YAML writes them."""
    if not isinstance(node, Sequence):
        checker.problem(node, path, f"must be a list, not {kind_of(node)}")
        return None
    argv: list[str] = []
    for index, item in enumerate(node.items):
        if isinstance(item, Scalar) and kind_of(item) != "null":
            argv.append(render_scalar(item))
        else:
            checker.problem(item, f"{path}[{index}]", f"must be a string, not {kind_of(item)}")
    return argv


def _flag(checker: Checker, node: Node, path: str) -> bool | str | None:
    if isinstance(node, Scalar) and is_expression(node.text):
        return node.text
    return checker.boolean(node, path)


def _shard(checker: Checker, node: Node, path: str) -> bool | None:
    """`shard: all`, the one value: the step runs in every shard that runs a step waiting for it."""
    return None if checker.choice(node, path, ("all",)) is None else True


def _condition(checker: Checker, node: Node, path: str) -> str | None:
    if isinstance(node, Scalar) and kind_of(node) != "null":
        return render_scalar(node)
    checker.problem(node, path, f"must be an expression or true/false, not {kind_of(node)}")
    return None


# key -> (Step field, reader); the command keys and `id`/`name`/`args` are read by `read_step`.
_OPTIONS: dict[str, tuple[str, Callable[[Checker, Node, str], Any]]] = {
    "needs": ("needs", Checker.strings),
    "parallel": ("parallel", Checker.boolean),
    "group": ("group", Checker.integer),
    "allow-parallel": ("allow_parallel", Checker.boolean),
    "matrix": ("matrix", read_matrix),
    "max-parallel": ("max_parallel", lambda checker, node, path: checker.integer(node, path, minimum=1)),
    "fail-fast": ("fail_fast", Checker.boolean),
    "runs-on": ("runs_on", lambda checker, node, path: tuple(checker.strings(node, path) or ())),
    "resources": ("resources", Checker.resources),
    "timeout": ("timeout", lambda checker, node, path: checker.duration(node, path, expression=True)),
    "continue-on-error": ("continue_on_error", _flag),
    "retry": ("retry", lambda checker, node, path: checker.integer(node, path, minimum=0)),
    "if": ("condition", _condition),
    "env": ("env", Checker.env),
    "working-directory": ("working_directory", Checker.text),
    "inputs": ("inputs", Checker.strings),
    "outputs": ("outputs", Checker.strings),
    "junit": ("junit", Checker.strings),
    "cache": ("cache", Checker.boolean),
    "tags": ("tags", Checker.strings),
    "stage": ("stage", Checker.text),
    "description": ("description", Checker.text),
    "shell": ("shell", read_shell),
    "shard": ("shard_all", _shard),
}
