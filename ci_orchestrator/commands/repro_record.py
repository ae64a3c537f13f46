"""What `repro` takes from the run record it reruns. A record is untrusted input: another job's
artifact, and a pull request's job writes whatever the code it tests wants. So the record never
decides what code runs here:

- The playbook is one of this project's: the one `--playbook` names; else the record's
  `playbook_path` when it is one of the files in `playbooks/` (what `run NAME` finds) or one
  that `run WORKFLOW.yml` wrote in `.ci-orchestrator/workflows/`; else the
  one playbook there whose `name:` is the record's playbook, said on the console. Anything else
  (a path elsewhere, a file that came with the downloaded artifact) is a usage error that asks
  for `--playbook`.
- The record's variables and `--matrix` values are taken where the playbook has them already (a
  variable with the playbook's own value, matrix values that its axis lists: they only choose
  among its instances), and `--var` and `--matrix` given to `repro` take the place of the
  record's. Any other value of the record would reach the steps' commands (`${{ vars.X }}`,
  `${{ matrix.K }}` in a `run:`): it is a usage error that lists each one as the option that
  gives it, for the user to give, having read it (the job summary's repro commands give the
  run's own values so).
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ci_orchestrator import notices
from ci_orchestrator.errors import OrchestratorError, UsageError
from ci_orchestrator.options import parse_pairs
from ci_orchestrator.playbook import loader
from ci_orchestrator.workflows.generated import GENERATED_DIR

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from pathlib import Path

    from ci_orchestrator.playbook.model import Playbook
    from ci_orchestrator.results import RunResult

_LISTED = 5  # values or playbooks a message names, at most


@dataclass(frozen=True, slots=True, kw_only=True)
class Rerun:
    """The playbook and the values a repro runs with."""

    playbook: str
    variables: tuple[str, ...] = ()  # KEY=VALUE, as `--var` takes them
    matrix: tuple[str, ...] = ()  # KEY=V1,V2, as `--matrix` takes them


def rerun_of(
    recorded: RunResult,
    *,
    record: Path,
    playbook: str | None,
    variables: Sequence[str] = (),
    matrix: Sequence[str] = (),
    root: Path,
) -> Rerun:
    """The playbook (a path or a name, as `run` takes it) and values to rerun `recorded` with:
    the record's, but where `variables` and `matrix` (`KEY=VALUE`, `KEY=V1,V2`) give others."""
    chosen = playbook if playbook is not None else _project_playbook(recorded, record=record, root=root)
    given_vars = parse_pairs(variables, option="--var")
    given_axes = parse_pairs(matrix, option="--matrix")
    kept_vars = {key: value for key, value in recorded.vars.items() if key not in given_vars}
    kept_axes = {key: values for key, values in recorded.matrix_filters.items() if key not in given_axes}
    read, _ = loader.read_playbook(loader.find_playbook(chosen, root=root))  # its problems: `run`'s to say
    brought = _values_it_lacks(read, kept_vars, kept_axes)
    if brought:
        raise UsageError(
            f"{record}: the record runs the steps with values that the playbook does not have:"
            f" {_listed(brought)}. A run record may come from anyone's job: give the values to run"
            " with yourself (these, once read, to rerun as the run ran)"
        )
    return Rerun(
        playbook=chosen,
        variables=(*(f"{key}={value}" for key, value in kept_vars.items()), *variables),
        matrix=(*(f"{key}={','.join(values)}" for key, values in kept_axes.items()), *matrix),
    )


def _project_playbook(recorded: RunResult, *, record: Path, root: Path) -> str:
    """The project's playbook the record names: by its path, else by its name."""
    own = _playbooks(root)
    named = recorded.playbook_path
    try:
        found = (root / named).resolve() if named else None
    except (OSError, ValueError):  # a loop of links, a NUL in the name
        found = None
    for path in own:
        if found is not None and path.resolve() == found:
            return str(path.relative_to(root))
    same_name = [path for path in own if _name(path) == recorded.playbook]
    if len(same_name) == 1:
        chosen = str(same_name[0].relative_to(root))
        notices.warn(
            f"{record}: the run's playbook {named!r} is not one of this project's: rerunning {chosen},"
            f" the project's playbook {recorded.playbook!r}"
        )
        return chosen
    if same_name:
        which = f"; {len(same_name)} of this project's are named {recorded.playbook!r}"
    else:
        names = [str(path.relative_to(root)) for path in own]
        which = f" ({_listed(names)})" if names else f" (there are none in {loader.PLAYBOOK_DIR}/)"
    raise UsageError(
        f"{record}: the run's playbook {named!r} is not one of this project's playbooks{which}:"
        " give the playbook to rerun with --playbook"
    )


def _playbooks(root: Path) -> list[Path]:
    """The project's playbooks: the files in `playbooks/` that `run NAME` finds, and those that
    `run WORKFLOW.yml` wrote of the project's GitHub workflows in the tool's own folder."""
    found: list[Path] = []
    for folder in (root / loader.PLAYBOOK_DIR, root / GENERATED_DIR):
        try:
            found += sorted(
                path for path in folder.iterdir() if path.suffix in loader.EXTENSIONS and path.is_file()
            )
        except OSError:  # no such folder, or one that may not be read
            continue
    return found


def _name(path: Path) -> str | None:
    try:
        return loader.read_playbook(path)[0].name
    except OrchestratorError:  # not a playbook that can be read: not the one
        return None


def _values_it_lacks(
    playbook: Playbook, variables: Mapping[str, str], axes: Mapping[str, Sequence[str]]
) -> list[str]:
    """The values of `variables` and `axes` that the playbook does not have, as the options that
    give them."""
    from ci_orchestrator.expressions.evaluation import as_text
    from ci_orchestrator.matrix.expansion import expanded

    brought = [
        f"--var {shlex.quote(f'{key}={value}')}"
        for key, value in variables.items()
        if playbook.vars.get(key) != value
    ]
    if axes:
        instances, _ = expanded(playbook)  # the playbook's own values; its problems: `run`'s to say
        own: dict[str, set[str]] = {}
        for instance in instances:
            for key, value in instance.matrix.items():
                own.setdefault(key, set()).add(as_text(value))
        for key, values in axes.items():
            if any(value not in own.get(key, set()) for value in values):
                joined = ",".join(values)
                brought.append(f"--matrix {shlex.quote(f'{key}={joined}')}")
    return brought


def _listed(items: list[str]) -> str:
    more = f" and {len(items) - _LISTED} more" if len(items) > _LISTED else ""
    return ", ".join(items[:_LISTED]) + more
