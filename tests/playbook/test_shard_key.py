"""A step's `shard:` key: `all` marks a setup step that runs in every shard that needs it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ci_orchestrator.playbook import loader
from tests.playbook.test_loader import only_problem, write

if TYPE_CHECKING:
    from pathlib import Path


def test_shard_all_marks_a_setup_step(workdir: Path) -> None:
    path = write(
        workdir,
        """\
        name: x
        steps:
          - {id: venv, run: x, shard: all}
          - {id: test, run: x, needs: [venv]}
        groups:
          - name: later
            steps:
              - {id: build, run: x, shard: all}
        """,
    )
    venv, test, build = loader.load_playbook(path).steps
    assert (venv.shard_all, test.shard_all, build.shard_all) == (True, False, True)


def test_another_shard_value_is_an_error_at_its_place(workdir: Path) -> None:
    text = "name: x\nsteps:\n  - {id: a, run: x, shard: al}\n"
    assert (
        only_problem(workdir, text)
        == "playbooks/ci.yml:3:28: steps[0].shard: must be one of all, not 'al' (did you mean 'all'?)"
    )


def test_a_shard_number_is_an_error_too(workdir: Path) -> None:
    text = "name: x\nsteps:\n  - {id: a, run: x, shard: 2}\n"
    assert only_problem(workdir, text) == "playbooks/ci.yml:3:28: steps[0].shard: must be one of all, not '2'"
