"""A step's `junit:` key: globs read as `inputs` and `outputs` are, checked as they are."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ci_orchestrator.matrix import expansion
from ci_orchestrator.playbook import loader
from tests.playbook.test_loader import only_problem, write

if TYPE_CHECKING:
    from pathlib import Path


def test_junit_takes_a_glob_or_a_list_of_them(workdir: Path) -> None:
    path = write(
        workdir,
        """\
        name: x
        steps:
          - {id: one, run: x, junit: reports/one.xml}
          - {id: many, run: x, junit: ["reports/*.xml", "sub/**/TEST-*.xml"]}
        """,
    )
    one, many = loader.load_playbook(path).steps
    assert one.junit == ("reports/one.xml",)
    assert many.junit == ("reports/*.xml", "sub/**/TEST-*.xml")


def test_junit_that_is_not_globs_is_an_error_at_its_place(workdir: Path) -> None:
    text = "name: x\nsteps:\n  - {id: a, run: x, junit: {a: 1}}\n"
    assert (
        only_problem(workdir, text)
        == "playbooks/ci.yml:3:28: steps[0].junit: must be a list of strings, not a mapping"
    )


def test_a_junit_glob_names_its_instances_files_with_their_matrix_values(workdir: Path) -> None:
    text = """\
    name: x
    steps:
      - id: test
        matrix: {python: ["3.11"]}
        run: x
        junit: ["reports/${{ matrix.pyhton }}.xml"]
    """
    assert "steps[0].junit[0]: matrix has no key 'pyhton' (did you mean 'python'?)" in only_problem(
        workdir, text
    )
    fixed = write(workdir, text.replace("pyhton", "python"))
    (instance,) = expansion.expand(loader.load_playbook(fixed))
    assert instance.step.junit == ("reports/${{ matrix.python }}.xml",)  # evaluated once the step ends
