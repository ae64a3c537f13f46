"""What reaches GitHub's runner, end to end: the real command line under a simulated GitHub
Actions step, its stdout and stderr read as the runner reads them (tests/github_runner.py).

- The tool's own lines carry values (matrix values, `--matrix` values, the playbook's name):
  none of them acts as a workflow command.
- A step's own workflow commands do what they do on GitHub (its masks hide its secrets, its
  annotations are made, within GitHub's limits), but none can stop the tool's commands, end or
  nest its groups, or set the tool's outputs.
"""

from __future__ import annotations

import json
import re
import textwrap
from typing import TYPE_CHECKING

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ci_orchestrator import notices
from ci_orchestrator.output.workflow_commands import inert
from tests.github_runner import LEVELS, Runner
from tests.helpers import cli_environment, run_cli

if TYPE_CHECKING:
    import subprocess
    from pathlib import Path

MODES = ["grouped", "stream", "quiet"]


def github_run(
    work: Path, playbook: str, *args: str, summary: str = ""
) -> tuple[subprocess.CompletedProcess[str], Runner, dict[str, Path]]:
    """`run` of `playbook` as a GitHub Actions step; the runner that read its output."""
    (work / "ci.yml").write_text(textwrap.dedent(playbook), encoding="utf-8")
    files = {"GITHUB_STEP_SUMMARY": work / "step_summary.md", "GITHUB_OUTPUT": work / "output"}
    files["GITHUB_STEP_SUMMARY"].write_text(summary, encoding="utf-8")
    files["GITHUB_OUTPUT"].touch()
    env = cli_environment(work, GITHUB_ACTIONS="true", CI="true", **{k: str(v) for k, v in files.items()})
    process = run_cli(work, "run", "ci.yml", "--no-fail-fast", *args, env=env)
    runner = Runner().read(process.stdout).read(process.stderr)
    return process, runner, files


def assert_sane(runner: Runner) -> None:
    assert not runner.stopped, "commands were left stopped"
    assert runner.nested_groups == 0
    assert runner.stray_endgroups == 0


HOSTILE_VALUES = """
name: values
execution: parallel
steps:
  - id: t
    matrix:
      v:
        - "##[error]pwn-1"
        - "::warning::pwn-2"
        - "x ##[add-mask]pwn"
        - "##[stop-commands]pwntoken"
        - "a\\r::error::pwn-3"
    run: "true"
  - id: u
    matrix: {w: [plain]}
    run: "true"
"""


@pytest.mark.parametrize("mode", MODES)
def test_values_in_the_tools_own_lines_act_as_no_command(tmp_path: Path, mode: str) -> None:
    process, runner, _ = github_run(
        tmp_path, HOSTILE_VALUES, "--output", mode, "--matrix", "w=##[set-output name=result]pwn-4"
    )
    assert process.returncode == 0, process.stderr
    assert "pwn-1" in process.stdout or mode == "quiet"  # the values are shown, as text
    assert_sane(runner)
    assert [command for command in runner.commands if command.name not in ("group", "endgroup")] == []


SECRET = "tok-5f3a9c1e77"
SETUP_SECRET = "tok-setup-0b1d2c"

OWN_COMMANDS = f"""
name: own
steps:
  - id: setup
    run: |
      echo "::add-mask::{SETUP_SECRET}"
      echo "setup made {SETUP_SECRET}"
  - id: lint
    run: |
      echo "::add-mask::{SECRET}"
      echo "using {SECRET}"
      echo "::error file=src/app.py,line=3,col=5,title=E501::line too long: {SECRET}"
      echo "##[warning]legacy form"
      echo "  ::notice::fyi"
      echo "::debug::details"
      exit 1
  - id: later
    run: |
      echo "the tokens again: {SECRET} {SETUP_SECRET}"
      exit 2
"""


@pytest.mark.parametrize("mode", MODES)
def test_a_steps_own_masks_and_annotations_work_as_on_github(tmp_path: Path, mode: str) -> None:
    process, runner, files = github_run(tmp_path, OWN_COMMANDS, "--output", mode)
    assert process.returncode == 1, process.stderr
    assert_sane(runner)

    assert {SECRET, SETUP_SECRET} <= set(runner.masks)
    assert runner.check_leaks(SECRET) == [] and runner.check_leaks(SETUP_SECRET) == []
    errors = runner.annotations("error")
    lint = [command for command in errors if command.properties.get("file") == "src/app.py"]
    assert len(lint) == 1
    assert lint[0].properties == {"file": "src/app.py", "line": "3", "col": "5", "title": "E501"}
    assert lint[0].data == "line too long: ***"
    assert [command.data for command in runner.annotations("warning")] == ["legacy form"]
    assert [command.data for command in runner.annotations("notice")] == ["fyi"]
    assert [command.data for command in runner.named("debug")] == ["details"]
    titles = {command.properties.get("title") for command in errors}
    assert {"lint failed", "later failed"} <= titles

    reports = tmp_path / ".ci-orchestrator" / "reports"
    outputs = [reports / "summary.md", reports / "junit.xml", reports / "run.json", *files.values()]
    for path in outputs:
        text = path.read_text(encoding="utf-8")
        assert SECRET not in text and SETUP_SECRET not in text, path
    assert SECRET not in process.stderr
    # The failures' tails are in the reports, masked.
    assert "the tokens again: *** ***" in (reports / "summary.md").read_text(encoding="utf-8")
    record = json.loads((reports / "run.json").read_text(encoding="utf-8"))
    tails = {step["id"]: step.get("log_tail") for step in record["steps"]}
    assert "the tokens again: *** ***" in tails["later"]


KEPT = """
name: kept
secrets: [PIPED]
steps:
  - id: announces
    cache: true
    run: |
      echo "before: {value}"
      echo "::add-mask::{value}"
      printf 'after: {value}\\r\\n'
      echo "  ##[ADD-MASK]{other}"
      echo "then: {value} {other}"
  - id: later
    needs: [announces]
    run: 'echo "later: {value} {other}"'
"""
VALUE = "tok-kept-81f2a4"
OTHER = "tok-other-6c03d9"


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("piped", [False, True], ids=["straight-to-the-file", "through-the-masking-pipe"])
def test_a_steps_own_mask_hides_its_value_in_the_kept_log_from_the_announcement_on(
    tmp_path: Path, mode: str, piped: bool
) -> None:
    # Before, the log files kept under .ci-orchestrator/logs held the value a step announced,
    # whatever the console and the reports hid; the cached copy of the log too.
    playbook = KEPT.format(value=VALUE, other=OTHER)
    if not piped:  # no secrets: the step writes its log itself
        playbook = playbook.replace("secrets: [PIPED]\n", "")
    process, runner, _ = github_run(tmp_path, playbook, "--output", mode)
    assert process.returncode == 0, process.stderr
    assert {VALUE, OTHER} <= set(runner.masks)
    # Streamed, the line before the announcement is shown as it came, as on GitHub.
    assert [line for line in runner.check_leaks(VALUE) if "before: " not in line] == []
    assert runner.check_leaks(OTHER) == []
    logs = {path.name: path.read_bytes() for path in (tmp_path / ".ci-orchestrator" / "logs").glob("*/*.log")}
    # What came before the announcement is as it was (GitHub masks from then on); the rest not.
    assert logs["announces.log"] == (
        f"before: {VALUE}\n::add-mask::***\nafter: ***\r\n  ##[ADD-MASK]***\nthen: *** ***\n".encode()
    )
    assert logs["later.log"] == b"later: *** ***\n"  # started after: masked as a secret is

    # Served from the cache, its masks are announced again, and its stored log holds none.
    again, runner, _ = github_run(tmp_path, playbook, "--output", mode)
    assert again.returncode == 0, again.stderr
    assert "cached" in again.stdout or mode == "quiet"
    assert {VALUE, OTHER} <= set(runner.masks)
    assert runner.check_leaks(VALUE) == [] and runner.check_leaks(OTHER) == []
    folders = sorted((tmp_path / ".ci-orchestrator" / "logs").iterdir())
    assert len(folders) == 2
    assert (folders[1] / "announces.log").read_bytes() == logs["announces.log"]  # as the cache kept it
    assert (folders[1] / "later.log").read_bytes() == b"later: *** ***\n"


BLOCKED = """
name: blocked
steps:
  - id: sneaky
    run: |
      echo "::stop-commands::sneakytoken"
      echo "::endgroup::"
      echo "::group::inner"
      echo "::set-output name=result::passed"
      echo "::set-env name=X::y"
      echo "::add-path::/evil"
      echo "::echo::on"
      echo "::save-state name=s::v"
      echo "::add-matcher::matcher.json"
      echo "##[endgroup]"
      echo "::sneakytoken::"
      exit 1
"""


@pytest.mark.parametrize("mode", MODES)
def test_a_step_cannot_stop_or_end_the_tools_commands_and_its_groups_never_nest(
    tmp_path: Path, mode: str
) -> None:
    process, runner, _ = github_run(tmp_path, BLOCKED, "--output", mode)
    assert process.returncode == 1, process.stderr
    assert_sane(runner)
    held = ("set-output", "set-env", "add-path", "echo", "save-state", "add-matcher", "stop-commands")
    assert runner.named(*held) == []
    assert [command.properties.get("title") for command in runner.annotations("error")] == ["sneaky failed"]
    # What was held back is shown in the log as the step printed it.
    assert any("::set-output name=result::passed" in line for line in runner.shown)
    # The step's own group folds its lines, beside the group of its log, never inside it; with
    # the lines of several steps in turn (streamed) there is no group of its own to fold.
    groups = [command.data for command in runner.named("group")]
    if mode == "stream":
        assert groups == []
    else:
        assert len(groups) == 3
        assert groups[0].startswith("failed    sneaky after")
        assert groups[1:] == ["inner", f"{groups[0]} (continued)"]


NOISY = """
name: noisy
execution: parallel
steps:
  - id: linter
    run: |
      for i in $(seq 25); do
        echo "::error file=a.py,line=$i::problem $i"
        echo "::warning::warn $i"
        echo "::notice::note $i"
      done
      exit 1
  - id: other
    matrix: {n: [1, 2, 3]}
    run: exit 3
"""


@pytest.mark.parametrize("mode", ["grouped", "stream"])
def test_annotations_stay_within_githubs_limits_and_failures_are_named(tmp_path: Path, mode: str) -> None:
    process, runner, _ = github_run(tmp_path, NOISY, "--output", mode, "-j", "1")
    assert process.returncode == 1, process.stderr
    assert_sane(runner)
    for level in LEVELS:
        assert 1 <= len(runner.annotations(level)) <= 10, level
    said = " ".join(f"{c.properties.get('title')} {c.data}" for c in runner.annotations("error"))
    for instance in ("linter", "other (1)", "other (2)", "other (3)"):
        assert instance in said


LOUD = """
name: loud
steps:
  - id: loud
    run: |
      for i in $(seq 200); do echo "line $i of a long log ....................................."; done
      exit 1
"""


def fences_closed(markdown: str) -> bool:
    fence = None
    for line in markdown.splitlines():
        if fence is None and (opening := re.match(r"`{3,}", line)):
            fence = opening.group()
        elif fence is not None and line == fence:
            fence = None
    return fence is None


def test_a_summary_appended_to_a_nearly_full_step_summary_is_cut_between_blocks(tmp_path: Path) -> None:
    earlier = "# Earlier step\n\n" + ("x" * 99 + "\n") * ((1024 * 1024 - 3000) // 100)
    process, _, files = github_run(tmp_path, LOUD, summary=earlier)
    assert process.returncode == 1, process.stderr

    data = files["GITHUB_STEP_SUMMARY"].read_bytes()
    assert len(data) <= 1024 * 1024
    text = data.decode("utf-8")
    assert text.startswith(earlier)
    appended = text[len(earlier) :]
    assert "## ❌ loud: failed" in appended
    assert fences_closed(appended)
    assert appended.count("<details>") == appended.count("</details>")
    assert "1 MiB" in appended  # the note that says it was cut


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list(":#[] \t\r\n\u3000\u2028aZ-=,;%")), max_size=60))
def test_inert_text_acts_as_no_command_whatever_it_holds(text: str) -> None:
    view = Runner().read(inert(text))
    assert view.commands == [] and not view.stopped


def test_inert_text_reads_as_written_but_for_a_backslash() -> None:
    assert inert("start     t (##[error]x)") == "start     t (##[\\error]x)"
    assert inert("::warning::x") == "\\::warning::x"
    assert inert("a\r  ::error::b") == "a\r  \\::error::b"
    assert inert("plain: text :: here") == "plain: text :: here"


def test_warnings_on_stderr_act_as_no_command(
    monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    notices.warn("t (##[error]pwn): result not cached\n::warning::pwn")
    err = capfd.readouterr().err
    assert "pwn" in err
    assert Runner().read(err).commands == []
