"""Numbered scripts: discovery, header metadata in both comment styles, and their use by the loader."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest

from ci_orchestrator.errors import PlaybookError
from ci_orchestrator.playbook import loader
from ci_orchestrator.playbook.scripts import discover, normalize_number
from tests.helpers import FIXTURES, listed_steps, run_cli


@pytest.fixture
def project(workdir: Path) -> Path:
    """A copy of the scripts fixtures and the playbook that uses them, under the working directory."""
    shutil.copytree(FIXTURES / "scripts", workdir / "tests/data/scripts")
    shutil.copytree(FIXTURES / "loader", workdir / "tests/data/loader")
    return workdir


def test_discover_finds_numbered_scripts_in_number_order(project: Path) -> None:
    scripts = discover(project / "tests/data/scripts/automation")
    assert [(info.number, info.name) for info in scripts] == [
        ("0401", "Install-Deps"),
        ("0402", "Lint"),
        ("0407", "Run-Tests"),
        ("0500", "Deploy"),
    ]


def test_hash_comment_header_metadata(project: Path) -> None:
    info = {info.number: info for info in discover(project / "tests/data/scripts/automation")}["0407"]
    assert info.stage == "Testing"  # the later "Stage:" line after the code is not header
    assert info.dependencies == ("0401", "0402")
    assert info.tags == ("tests",)
    assert info.allow_parallel is False
    assert info.timeout == 1200
    assert info.description == "Runs the unit tests."
    assert str(info.locations["Timeout"]) == "tests/data/scripts/automation/0407_Run-Tests.sh:6:3"


def test_powershell_help_block_header_metadata(project: Path) -> None:
    info = {info.number: info for info in discover(project / "tests/data/scripts/automation")}["0500"]
    assert info.stage == "Release"
    assert info.dependencies == ("0407",)
    assert info.tags == ("release", "prod")
    assert info.timeout == 3600
    assert info.allow_parallel is None
    assert info.locations["Stage"].line == 6


def test_malformed_metadata_is_reported_with_file_and_line(project: Path) -> None:
    with pytest.raises(PlaybookError) as caught:
        discover(project / "tests/data/scripts/bad")
    assert caught.value.lines() == [
        "tests/data/scripts/bad/0100_Bad.sh:3:3: AllowParallel: must be true or false, not 'sometimes'",
        "tests/data/scripts/bad/0100_Bad.sh:4:3: Timeout: invalid duration 'soon': "
        "use seconds or a form like 90s, 2m, 1h30m",
        "tests/data/scripts/bad/0100_Bad.sh:5:3: Dependencies: 'abc' is not a script number (like 0401)",
    ]


def test_two_scripts_with_one_number_are_an_error(workdir: Path) -> None:
    (workdir / "0100_A.sh").write_text("echo a\n")
    (workdir / "0100_B.py").write_text("print('b')\n")
    with pytest.raises(PlaybookError, match=r"two scripts are numbered 0100: 0100_A\.sh and 0100_B\.py"):
        discover(workdir)


def test_missing_scripts_folder_is_an_error(workdir: Path) -> None:
    with pytest.raises(PlaybookError, match="does not exist"):
        discover(workdir / "nowhere")


def test_script_numbers_are_normalized() -> None:
    assert normalize_number("407") == "0407"
    assert normalize_number(" 0407 ") == "0407"
    assert normalize_number("12345") is None
    assert normalize_number("4a") is None


def test_loader_makes_unnamed_scripts_steps_first_and_takes_metadata_for_named_ones(project: Path) -> None:
    playbook = loader.load_playbook(project / "tests/data/loader/scripted.yml")
    assert [step.id for step in playbook.steps] == ["0401", "0402", "unit", "deploy", "plain"]

    install = playbook.step("0401")
    assert (install.name, install.number, install.stage) == ("Install-Deps", "0401", "Setup")
    assert install.script == "tests/data/scripts/automation/0401_Install-Deps.sh"
    assert install.env == {"MODE": "ci"}  # playbook defaults apply to script steps too
    assert playbook.step("0402").allow_parallel is True

    unit = playbook.step("unit")
    assert unit.number == "0407"
    assert unit.needs == ("0401", "0402")  # Dependencies
    assert unit.timeout == 300  # the step's own key wins over the header's 20m
    assert unit.allow_parallel is False
    assert unit.args == ("--coverage", "--junit", "out.xml", "--marker", "slow", "--marker", "db")
    assert unit.key_locations["needs"].file.endswith("0407_Run-Tests.sh")

    deploy = playbook.step("deploy")
    assert deploy.args == ("-Environment", "staging", "-Force")  # PowerShell parameters
    assert deploy.needs == ("unit",)  # `Dependencies: 0407`: the script step `unit` runs

    plain = playbook.step("plain")
    assert plain.script == "tests/data/scripts/tool.py"
    assert plain.number is None
    assert plain.args == ("--fast", "3")


def numbered(folder: Path, scripts: dict[str, str]) -> None:
    folder.mkdir(exist_ok=True)
    for name, header in scripts.items():
        (folder / name).write_text(f"#!/bin/bash\n{header}\necho {name} >> order.log\n")


def test_a_numbered_script_given_its_own_id_is_still_what_dependencies_name_by_number(
    workdir: Path,
) -> None:
    numbered(
        workdir / "scripts", {"0100_Prepare.sh": "# Stage: Prep", "0400_Unit.sh": "# Dependencies: 0100"}
    )
    Path("playbooks").mkdir()
    Path("playbooks/ci.yml").write_text(
        'name: ci\nscripts: ../scripts\nsteps:\n  - {id: prep, script: "0100"}\n'
    )
    validated = run_cli(workdir, "validate", "playbooks/ci.yml")
    assert validated.returncode == 0, validated.stderr
    listed = listed_steps(run_cli(workdir, "list").stdout)
    assert list(listed) == ["prep", "0400"]  # what it needs first
    assert listed["0400"]["NEEDS"] == "prep"
    ran = run_cli(workdir, "run")
    assert ran.returncode == 0, ran.stderr
    assert Path("order.log").read_text() == "0100_Prepare.sh\n0400_Unit.sh\n"
    assert run_cli(workdir, "plan", "--select", "0400").stdout.count("prep") >= 1  # needed, so added


def test_dependencies_are_numbers_and_needs_are_ids_first(workdir: Path) -> None:
    numbered(
        workdir / "scripts",
        {
            "0100_Prepare.sh": "",
            "0300_Early.sh": "",
            "0400_Unit.sh": "# Dependencies: 0100",
            "0500_Late.sh": "",
        },
    )
    Path("p.yml").write_text(
        textwrap.dedent(
            """\
            name: p
            scripts: scripts
            steps:
              - {id: prep, script: "0100"}
              - {id: "0100", run: echo not the script}
              - {id: after, run: echo, needs: ["0100", "0500"]}
            """
        )
    )
    playbook = loader.load_playbook(Path("p.yml"))
    assert playbook.step("0400").needs == ("prep",)  # the script numbered 0100, not the step with that id
    assert playbook.step("after").needs == ("0100", "0500")  # ids: the run step, the unnamed script
    # Unnamed scripts first, in number order; 0400 (and what comes after it) after the step it needs.
    assert [step.id for step in playbook.steps] == ["0300", "prep", "0400", "0500", "0100", "after"]


def test_unknown_script_number_is_reported_with_a_suggestion(project: Path) -> None:
    path = project / "tests/data/loader/bad.yml"
    path.write_text(
        textwrap.dedent(
            """\
            name: bad
            scripts: ../scripts/automation
            steps:
              - {id: x, script: "0408"}
              - {id: y, script: missing.sh}
            """
        )
    )
    with pytest.raises(PlaybookError) as caught:
        loader.load_playbook(path)
    assert caught.value.lines() == [
        "tests/data/loader/bad.yml:4:21: steps[0].script: no script numbered 0408 in "
        "tests/data/scripts/automation (did you mean '0407'?)",
        "tests/data/loader/bad.yml:5:21: steps[1].script: script 'missing.sh' not found "
        "(looked for tests/data/loader/missing.sh)",
    ]


def test_unknown_dependency_of_a_script_points_at_its_header(project: Path) -> None:
    folder = project / "more"
    folder.mkdir()
    (folder / "0001_First.sh").write_text("#!/bin/sh\n# Dependencies: 0009\necho\n")
    (project / "p.yml").write_text("name: p\nscripts: more\n")
    with pytest.raises(PlaybookError) as caught:
        loader.load_playbook(project / "p.yml")
    assert caught.value.lines() == [
        "more/0001_First.sh:2:3: Dependencies: unknown step '0009' (did you mean '0001'?)"
    ]


def test_missing_scripts_folder_in_a_playbook_is_located(workdir: Path) -> None:
    (workdir / "p.yml").write_text("name: p\nscripts: nowhere\nsteps:\n  - {id: a, script: '0100'}\n")
    with pytest.raises(PlaybookError) as caught:
        loader.load_playbook(workdir / "p.yml")
    # Said once: the step that runs a script of the folder is not blamed for its absence.
    assert caught.value.lines() == ["p.yml:2:10: scripts: scripts folder 'nowhere' does not exist"]
