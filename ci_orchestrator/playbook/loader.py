"""Find a playbook and read it: YAML or JSON text -> a checked `Playbook`, or one `PlaybookError`
that lists every problem of the file, each with its line, column and key path."""

from __future__ import annotations

import codecs
import os
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ci_orchestrator.errors import Location, PlaybookError, UsageError, in_place_order
from ci_orchestrator.output.paths import shown_path
from ci_orchestrator.playbook import lookup, matrix_refs, nodes
from ci_orchestrator.playbook.checks import ENV_NAME_PATTERN, Checker, did_you_mean, kind_of
from ci_orchestrator.playbook.model import Execution, Group, Playbook, Step, within
from ci_orchestrator.playbook.nodes import Sequence
from ci_orchestrator.playbook.references import reference_problems
from ci_orchestrator.playbook.scripts import discover
from ci_orchestrator.playbook.steps import StepContext, StepDefaults, read_shell, read_step, script_step

if TYPE_CHECKING:
    from ci_orchestrator.errors import Problem
    from ci_orchestrator.playbook.nodes import Node
    from ci_orchestrator.playbook.scripts import ScriptInfo

PLAYBOOK_DIR = "playbooks"
DEFAULT_PLAYBOOK = "ci"
EXTENSIONS = (".yml", ".yaml", ".json")
PLAYBOOK_KEYS = (
    "name", "description", "execution", "concurrency", "fail-fast", "timeout", "env", "secrets", "vars",
    "resources", "scripts", "defaults", "steps", "groups", "schedule",
)  # fmt: skip
GROUP_KEYS = ("name", "execution", "stop-on-error", "steps", "schedule")
DEFAULTS_KEYS = ("shell", "timeout", "working-directory", "env", "retry")
_EXECUTIONS = tuple(execution.value for execution in Execution)


def find_playbook(name: str | None, *, root: Path) -> Path:
    """The playbook file `name` means: a path to a file, or a name in `root/playbooks/`.

    None means `playbooks/ci.yml`. Raises UsageError when nothing matches: a name written as a
    path (with a folder or a playbook extension) says there is no such file, another one lists
    the playbooks there are.
    """
    if name is not None:
        given = Path(name)
        for candidate in (given, root / given) if not given.is_absolute() else (given,):
            found = lookup.look(candidate)
            if found.kind is lookup.Kind.FILE:
                return candidate
            if found.kind is lookup.Kind.FOLDER:
                raise UsageError(f"{name}: is a folder, not a playbook file")
            if found.kind is lookup.Kind.OTHER:
                raise UsageError(f"{name}: not a regular file")
            if found.kind is lookup.Kind.REFUSED:
                raise UsageError(f"{name}: {found.problem}")
        if _is_path(name):
            inside = root / PLAYBOOK_DIR / given.name
            hint = f" (did you mean {shown_path(inside)}?)" if inside.is_file() else ""
            raise UsageError(f"{name}: no such file{hint}")
    wanted = DEFAULT_PLAYBOOK if name is None else name
    folder = root / PLAYBOOK_DIR
    for extension in EXTENSIONS:
        candidate = folder / f"{wanted}{extension}"
        found = lookup.look(candidate)
        if found.kind is lookup.Kind.FILE:
            return candidate
        if found.kind is lookup.Kind.REFUSED:
            raise UsageError(f"playbook {wanted!r}: {shown_path(candidate)}: {found.problem}")
    known = available_playbooks(root)
    listed = f"; playbooks: {', '.join(known)}" if known else ""
    if name is None:
        raise UsageError(f"no playbook given, and there is no {PLAYBOOK_DIR}/{DEFAULT_PLAYBOOK}.yml{listed}")
    if not known:
        there = "holds no playbooks (.yml, .yaml, .json)" if folder.is_dir() else "does not exist"
        listed = f": {shown_path(folder)}/ {there}"
    raise UsageError(f"unknown playbook {wanted!r}{did_you_mean(wanted, known)}{listed}")


def _is_path(name: str) -> bool:
    """Whether a playbook argument is written as a path rather than a name in playbooks/."""
    return "/" in name or os.sep in name or name.endswith(EXTENSIONS)


def available_playbooks(root: Path) -> list[str]:
    """The names (without extension) of the playbooks in `root/playbooks/`, sorted."""
    folder = root / PLAYBOOK_DIR
    if not folder.is_dir():
        return []
    names = {path.stem for path in folder.iterdir() if path.suffix in EXTENSIONS and path.is_file()}
    return sorted(names)


def load_playbook(path: Path) -> Playbook:
    """The checked playbook in `path` (YAML or JSON). Raises PlaybookError with every problem."""
    playbook, problems = read_playbook(path)
    if problems:
        raise PlaybookError.from_problems(list(problems))
    return playbook


def read_playbook(path: Path) -> tuple[Playbook, tuple[Problem, ...]]:
    """The playbook in `path` as far as it could be read, and every problem found reading it, by
    place: what is broken is left out (a step without a usable id, a value of the wrong type) so
    that later stages check the rest. Raises PlaybookError when nothing could be read: no such
    file, not UTF-8, not YAML (or JSON), not a mapping."""
    shown = shown_path(path)
    text = read_text(path, shown)
    try:
        compose = nodes.compose_json if path.suffix == ".json" else nodes.compose
        document, duplicates = compose(text)
    except nodes.ComposeError as error:
        raise PlaybookError(
            error.message, location=Location(file=shown, line=error.line, column=error.column)
        ) from None
    checker = Checker(shown)
    for duplicate in duplicates:
        where = Location(file=shown, line=duplicate.line, column=duplicate.column)
        checker.problem(
            where, duplicate.path, f"duplicate key {duplicate.key!r} (first at line {duplicate.first_line})"
        )
    playbook = _PlaybookReader(checker, path, shown).read(document)
    problems = tuple(in_place_order(checker.problems, main=shown))
    if playbook is None:
        raise PlaybookError.from_problems(list(problems))
    return playbook, problems


def read_text(path: Path, shown: str) -> str:
    where = Location(file=shown)
    if path.is_dir():
        raise PlaybookError("is a folder, not a playbook file", location=where)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise PlaybookError("no such file", location=where) from None
    except OSError as error:
        raise PlaybookError(f"cannot read the file: {error.strerror or error}", location=where) from None
    try:
        # As the `utf-8-sig` codec reads it, without loading that codec's module mid-run.
        return data.removeprefix(codecs.BOM_UTF8).decode("utf-8")
    except UnicodeDecodeError as error:
        raise PlaybookError.not_utf8(data, error, file=shown) from None


def _needs_as_ids(steps: list[tuple[str, Step]]) -> list[tuple[str, Step]]:
    """Script numbers in `needs` replaced by the ids of the steps running those scripts: a numbered
    script given an id of its own (`{id: prep, script: "0100"}`) is still what other scripts'
    `Dependencies: 0100` name. A script's `Dependencies:` are numbers whatever the ids; a `needs:`
    entry of the playbook is an id first, a number only when no step has that id."""
    ids = {step.id for _, step in steps}
    by_number: dict[str, list[str]] = {}
    for _, step in steps:
        if step.number is not None:
            by_number.setdefault(step.number, []).append(step.id)
    resolved = []
    for path, step in steps:
        where = step.key_locations.get("needs")
        from_script = step.script is not None and where is not None and where.file == step.script
        needs: list[str] = []
        for need in step.needs:
            numbered = by_number.get(need) if from_script or need not in ids else None
            needs.extend(numbered or [need])
        needs = list(dict.fromkeys(needs))
        resolved.append((path, step if tuple(needs) == step.needs else replace(step, needs=tuple(needs))))
    return resolved


def _placed(unnamed: list[tuple[str, Step]], steps: list[tuple[str, Step]]) -> list[tuple[str, Step]]:
    """The numbered scripts no step names, listed first in number order (SPEC), but each after the
    top-level steps it needs (its `Dependencies:` name a script a step entry runs), and so every
    script after it: in serial execution the listed order then agrees with the needs instead of
    making a cycle."""
    listed = list(steps)
    at = 0
    for item in unnamed:
        for index, (_, step) in enumerate(listed):
            if step.block is None and step.id in item[1].needs:
                at = max(at, index + 1)
        listed.insert(at, item)
        at += 1
    return listed


class _PlaybookReader:
    def __init__(self, checker: Checker, path: Path, shown: str) -> None:
        self.checker = checker
        self.base = path.parent
        self.shown = shown

    def read(self, document: Node) -> Playbook | None:
        checker = self.checker
        if not isinstance(document, nodes.Mapping):
            message = f"a playbook must be a mapping of keys (name, steps, ...), not {kind_of(document)}"
            checker.problem(document, "", message)
            return None
        entries = checker.mapping(document, "", known=PLAYBOOK_KEYS)
        values = {key: value for key, (_, value) in (entries or {}).items()}
        fields: dict[str, Any] = {}
        if "name" not in values:
            checker.problem(document, "", "missing required key 'name'")
        self.read_options(values, fields)
        defaults = self.read_defaults(values.get("defaults"))
        scripts_dir, scripts = self.read_scripts(values.get("scripts"))
        context = StepContext(
            base=self.base,
            scripts_dir=scripts_dir,
            scripts=scripts,
            scripts_unread=self.reported("scripts"),
            defaults=defaults,
        )
        steps = self.read_steps(values.get("steps"), "steps", context)
        groups: list[Group] = []
        if "groups" in values:
            groups, group_steps = self.read_groups(values["groups"], context)
            steps.extend(group_steps)
        named = {step.number for _, step in steps if step.number}
        unnamed = [
            (f"scripts.{number}", script_step(info, defaults))
            for number, info in scripts.items()
            if number not in named
        ]
        resolved = _needs_as_ids(unnamed + steps)
        steps = _placed(resolved[: len(unnamed)], resolved[len(unnamed) :])
        if not steps and not checker.problems:
            checker.problem(document, "", "the playbook has no steps: give 'steps', 'groups' or 'scripts'")
        pools = None if self.reported("resources") else fields.get("resources", {})
        checker.problems.extend(reference_problems([step for _, step in steps], pools))
        matrix_refs.check_shared(checker, values, [step for _, step in steps])
        # Without a usable name the playbook is still checked through: it is never run.
        fields.setdefault("name", "")
        return Playbook(
            path=self.shown,
            location=checker.at(document),
            steps=tuple(step for _, step in steps),
            groups=tuple(groups),
            key_locations={key: checker.at(key_node) for key, (key_node, _) in (entries or {}).items()},
            unread=frozenset(problem.path for problem in checker.problems),
            variable_reads=tuple(checker.variable_reads),
            **fields,
        )

    def reported(self, key: str) -> bool:
        """Whether a problem was found at `key` or under it, so far."""
        return any(within(problem.path, key) for problem in self.checker.problems)

    def name(self, node: Node, path: str) -> str | None:
        text = self.checker.text(node, path)
        if text is not None and not text.strip():
            self.checker.problem(node, path, "must not be empty: the name titles every report")
            return None
        return text

    def read_options(self, values: dict[str, Node], fields: dict[str, Any]) -> None:
        checker = self.checker
        readers: dict[str, tuple[str, Any]] = {
            "name": ("name", self.name),
            "description": ("description", checker.text),
            "execution": ("execution", self.execution),
            "concurrency": ("concurrency", self.concurrency),
            "fail-fast": ("fail_fast", checker.boolean),
            "timeout": ("timeout", checker.duration),
            "env": ("env", checker.env),
            "secrets": ("secrets", self.secrets),
            "vars": ("vars", checker.env),
            "resources": ("resources", checker.resources),
            "scripts": ("scripts", checker.text),
            "schedule": ("schedule", checker.schedule),
        }
        for key, (name, read) in readers.items():
            if key in values:
                value = read(values[key], key)
                if value is not None:
                    fields[name] = value
        if fields.get("concurrency") == "auto":
            fields["concurrency"] = None

    def execution(self, node: Node, path: str) -> Execution | None:
        text = self.checker.choice(node, path, _EXECUTIONS)
        return Execution(text) if text is not None else None

    def concurrency(self, node: Node, path: str) -> int | str | None:
        if isinstance(node, nodes.Scalar) and node.text == "auto":
            return "auto"
        value = self.checker.scalar_value(node, path, "'auto' or a number of steps")
        if value is None and kind_of(node) != "null":
            return None  # already reported: a list, a mapping or an unreadable number
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            if isinstance(node, nodes.Scalar):
                self.checker.problem(
                    node, path, f"must be 'auto' or a number of steps (1 or more), not {node.text!r}"
                )
            return None
        return value

    def secrets(self, node: Node, path: str) -> tuple[str, ...] | None:
        names = self.checker.strings(node, path)
        for index, name in enumerate(names or ()):
            if not ENV_NAME_PATTERN.fullmatch(name):
                item = node.items[index] if isinstance(node, Sequence) else node
                self.checker.problem(
                    item, f"{path}[{index}]", f"{name!r} is not an environment variable name"
                )
        return names

    def read_defaults(self, node: Node | None) -> StepDefaults:
        if node is None:
            return StepDefaults()
        checker = self.checker
        entries = checker.mapping(node, "defaults", known=DEFAULTS_KEYS) or {}
        fields: dict[str, Any] = {}
        for key, (_, value) in entries.items():
            path = f"defaults.{key}"
            if key == "shell":
                fields["shell"] = read_shell(checker, value, path)
            elif key == "timeout":
                fields["timeout"] = checker.duration(value, path, expression=True)
            elif key == "working-directory":
                fields["working_directory"] = checker.text(value, path)
            elif key == "env":
                fields["env"] = checker.env(value, path)
            else:
                fields["retry"] = checker.integer(value, path, minimum=0)
        return StepDefaults(**{name: value for name, value in fields.items() if value is not None})

    def read_scripts(self, node: Node | None) -> tuple[Path | None, dict[str, ScriptInfo]]:
        if node is None:
            return None, {}
        text = self.checker.text(node, "scripts")
        if text is None:
            return None, {}
        folder = self.base / text
        found = lookup.look(folder)
        if found.kind is not lookup.Kind.FOLDER:
            why = {
                lookup.Kind.MISSING: "does not exist",
                lookup.Kind.REFUSED: f"cannot be read: {found.problem}",
            }.get(found.kind, "is not a folder")
            self.checker.problem(node, "scripts", f"scripts folder {shown_path(folder)!r} {why}")
            return folder, {}
        # A bad header leaves out its values, not its script: the steps that run it still find it.
        return folder, {info.number: info for info in discover(folder, self.checker.problems)}

    def read_steps(self, node: Node | None, path: str, context: StepContext) -> list[tuple[str, Step]]:
        """The steps of a list, each with its key path."""
        if node is None:
            return []
        if not isinstance(node, Sequence):
            self.checker.problem(node, path, f"must be a list of steps, not {kind_of(node)}")
            return []
        steps = []
        for index, item in enumerate(node.items):
            where = f"{path}[{index}]"
            step = read_step(self.checker, item, where, context)
            if step is not None:
                steps.append((where, step))
        return steps

    def read_groups(self, node: Node, context: StepContext) -> tuple[list[Group], list[tuple[str, Step]]]:
        checker = self.checker
        if not isinstance(node, Sequence):
            checker.problem(node, "groups", f"must be a list of groups, not {kind_of(node)}")
            return [], []
        groups: list[Group] = []
        steps: list[tuple[str, Step]] = []
        seen: dict[str, int] = {}
        for index, item in enumerate(node.items):
            path = f"groups[{index}]"
            entries = checker.mapping(item, path, known=GROUP_KEYS)
            if entries is None:
                continue
            values = {key: value for key, (_, value) in entries.items()}
            name = checker.text(values["name"], f"{path}.name") if "name" in values else None
            if "name" not in values:
                checker.problem(item, path, "a group needs a 'name'")
            if name is not None and name in seen:
                checker.problem(
                    values["name"], f"{path}.name", f"duplicate group {name!r} (first at line {seen[name]})"
                )
            own = name if name is not None and name not in seen else None  # None: no usable name
            if name is not None:
                seen.setdefault(name, item.line)
            execution = (
                self.execution(values["execution"], f"{path}.execution") if "execution" in values else None
            )
            stop = (
                checker.boolean(values["stop-on-error"], f"{path}.stop-on-error")
                if "stop-on-error" in values
                else None
            )
            schedule = (
                checker.schedule(values["schedule"], f"{path}.schedule") if "schedule" in values else None
            )
            # The steps of a group without a usable name are checked all the same, in a block of
            # their own that no order rule joins: other steps may need them.
            block = replace(context, block=path if own is None else own)
            members = self.read_steps(values.get("steps"), f"{path}.steps", block)
            if "steps" not in values:
                checker.problem(item, path, "a group needs 'steps'")
            steps.extend(members)
            if own is None:
                continue
            groups.append(
                Group(
                    name=own,
                    location=checker.at(item),
                    execution=execution or Execution.SERIAL,
                    stop_on_error=bool(stop),
                    step_ids=tuple(step.id for _, step in members),
                    schedule=schedule or (),
                    path=path,
                )
            )
        return groups, steps
