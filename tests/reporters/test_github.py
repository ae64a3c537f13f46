"""GitHub Actions integration in a simulated runner environment: workflow commands in the console
output, the job summary and the step outputs files."""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ci_orchestrator.output.mode import OutputMode
from ci_orchestrator.reporters import github
from ci_orchestrator.reporters.console import ConsoleReporter
from ci_orchestrator.reporters.markdown import render_summary
from ci_orchestrator.results import RunResult, Status, StepResult
from tests.github_runner import Runner, StepFiles
from tests.helpers import run_result, step_result


@dataclass(frozen=True, slots=True, kw_only=True)
class Paths:
    junit: Path | None
    summary: Path | None
    json: Path | None


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> StepFiles:
    """The environment of a GitHub Actions step: the flag and the per-step files."""
    files = StepFiles.made_in(tmp_path)
    for name, value in files.environment().items():
        monkeypatch.setenv(name, value)
    return files


def step(
    instance_id: str, status: Status = Status.PASSED, log: Path | None = None, **extra: Any
) -> StepResult:
    return step_result(instance_id, status, log=log, **extra)


def play(reporter: ConsoleReporter, results: list[StepResult], **extra: Any) -> RunResult:
    reporter.run_started(run_id="run-1", playbook="ci", total=len(results))
    for result in results:
        reporter.step_started(instance_id=result.id, attempt=1)
        reporter.step_finished(result)
    run = run_result(*results, **extra)
    reporter.run_finished(run)
    return run


def test_escaping_follows_the_toolkit() -> None:
    assert github.escape_data("100%\r\ndone: a,b") == "100%25%0D%0Adone: a,b"
    assert github.escape_property("100%\r\ndone: a,b") == "100%25%0D%0Adone%3A a%2Cb"
    assert github.command("error", "line 1\nline 2", title="test (3.11, ubuntu): failed") == (
        "::error title=test (3.11%2C ubuntu)%3A failed::line 1%0Aline 2"
    )
    assert github.command("endgroup") == "::endgroup::"


def test_active_only_under_github(monkeypatch: pytest.MonkeyPatch) -> None:
    assert not github.active()
    assert github.active({"GITHUB_ACTIONS": "true"})
    monkeypatch.setenv("GITHUB_ACTIONS", "false")
    assert not github.active()


def test_off_github_no_workflow_commands(tmp_path: Path) -> None:
    log = tmp_path / "lint.log"
    log.write_text("boom\n")
    out = io.StringIO()
    play(ConsoleReporter(out, secrets=["s3cret"]), [step("lint", Status.FAILED, log=log)])
    assert "::" not in out.getvalue()


def test_each_log_is_folded_and_its_commands_pass_or_stay_text(runner: StepFiles, tmp_path: Path) -> None:
    log = tmp_path / "lint.log"
    log.write_text("checking\n::error::made by the step\n::endgroup::\n", encoding="utf-8")
    out = io.StringIO()
    play(ConsoleReporter(out), [step("lint", log=log), step("empty")])
    lines = out.getvalue().splitlines()
    opening = next(i for i, line in enumerate(lines) if line.startswith("::group::"))
    assert "lint" in lines[opening] and "passed" in lines[opening]
    stop = re.fullmatch(r"::stop-commands::([0-9a-f]{32})", lines[opening + 1])
    assert stop
    token = stop.group(1)
    # The step's annotation is written as ours, outside the stopped part; its `::endgroup::`
    # ends no group of its own, so nothing (ours is not the step's to end).
    assert lines[opening + 2 : opening + 6] == [
        "checking",
        f"::{token}::",
        "::error::made by the step",
        "::endgroup::",
    ]
    assert lines[opening + 6] == "start     empty"
    runner_view = Runner().read(out.getvalue())
    assert [command.data for command in runner_view.annotations("error")] == ["made by the step"]
    assert (runner_view.nested_groups, runner_view.stray_endgroups, runner_view.stopped) == (0, 0, False)


def test_summary_tails_are_guarded_too(runner: StepFiles, tmp_path: Path) -> None:
    log = tmp_path / "test.log"
    log.write_text("::warning::from the step\n", encoding="utf-8")
    out = io.StringIO()
    play(ConsoleReporter(out, mode=OutputMode.STREAM), [step("test", Status.FAILED, log=log)])
    text = out.getvalue()
    tail_at = text.index("      ::warning::from the step")
    token = re.findall(r"::stop-commands::(\w+)", text)[-1]
    assert text.rindex("::stop-commands::", 0, tail_at) < tail_at < text.index(f"::{token}::", tail_at)


def test_a_streamed_mask_hides_the_value_from_then_on(runner: StepFiles) -> None:
    out = io.StringIO()
    reporter = ConsoleReporter(out, mode=OutputMode.STREAM)
    reporter.run_started(run_id="run-1", playbook="ci", total=1)
    reporter.step_output(instance_id="x", chunk=b"::add-mask::nothing-to-see\n::set-output name=a::b\n")
    reporter.step_output(instance_id="x", chunk=b"here: nothing-to-see\n")
    reporter.close()
    lines = out.getvalue().splitlines()
    assert "::add-mask::nothing-to-see" in lines
    assert "[x] here: ***" in lines
    assert "[x] ::set-output name=a::b" in lines  # held back: text, commands stopped
    assert reporter.announced_masks == ("nothing-to-see",)
    assert Runner().read(out.getvalue()).named("set-output") == []


def injected(text: str) -> list[str]:
    """The commands GitHub's runner obeys in `text` that neither the console nor a step may
    make (a step's annotations and masks pass)."""
    allowed = ("group", "endgroup", "add-mask", "error", "warning", "notice", "debug")
    view = Runner().read(text)
    assert not view.stopped and view.nested_groups == 0 and view.stray_endgroups == 0
    return [command.name for command in view.commands if command.name not in allowed]


HOSTILE = (
    b"progress 10%\r::set-output name=result::pwn\n##[stop-commands]pwn too\n50%\r\r  ::endgroup::\r\n"
    b"x\r::error title=made::by the step\n"
)


def test_streamed_text_is_read_line_by_line_as_the_runner_does(runner: StepFiles, tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    log.write_bytes(HOSTILE)
    out = io.StringIO()
    reporter = ConsoleReporter(out, mode=OutputMode.STREAM)
    reporter.run_started(run_id="run-1", playbook="ci", total=1)
    reporter.step_started(instance_id="a", attempt=1)
    for piece in (HOSTILE[:15], HOSTILE[15:40], HOSTILE[40:], b"done 100%\r::add-path::/pwn at the end"):
        reporter.step_output(instance_id="a", chunk=piece)
    reporter.step_finished(step("a", Status.FAILED, log=log, exit_code=1))
    reporter.run_finished(run_result(step("a", Status.FAILED, log=log, exit_code=1)))
    text = out.getvalue()

    assert not injected(text)
    view = Runner().read(text)
    assert [c.properties.get("title") for c in view.annotations("error")] == ["made", "a failed"]
    pieces = re.split(r"\r\n|\r|\n", text)
    assert "[a] progress 10%" in pieces and "[a] ::set-output name=result::pwn" in pieces
    assert "[a] ##[stop-commands]pwn too" in pieces and "[a]   ::endgroup::" in pieces
    assert "[a] ::add-path::/pwn at the end" in pieces


@pytest.mark.parametrize("mode", [OutputMode.GROUPED, OutputMode.QUIET])
def test_echoed_logs_are_read_line_by_line_as_the_runner_does(
    runner: StepFiles, tmp_path: Path, mode: OutputMode
) -> None:
    log = tmp_path / "a.log"
    log.write_bytes(HOSTILE + b"no newline at the end\r::add-matcher::pwn")
    out = io.StringIO()
    results = [step("a", Status.FAILED, log=log, exit_code=1), step("b", log=log)]
    play(ConsoleReporter(out, mode=mode), results)

    assert not injected(out.getvalue())
    titles = [c.properties.get("title") for c in Runner().read(out.getvalue()).annotations("error")]
    # Each step's own annotation, once (a passed step's log in quiet mode is read, not shown).
    assert titles == ["made", "a failed", "made"]


def test_an_instance_id_holding_a_line_end_stays_on_one_line(runner: StepFiles) -> None:
    out = io.StringIO()
    hostile = step("t (x\r::error::pwn)", exit_code=0)
    reporter = ConsoleReporter(out, mode=OutputMode.STREAM)
    play(reporter, [hostile])
    reporter.step_output(instance_id=hostile.id, chunk=b"hello\n")
    reporter.close()

    assert not injected(out.getvalue())
    assert "passed    t (x\\r::error::pwn) in 2.0s" in out.getvalue().splitlines()


def test_failed_steps_are_annotated_with_escaped_text(runner: StepFiles, tmp_path: Path) -> None:
    log = tmp_path / "t.log"
    log.write_text("collected 10 items\nFAILED test_x.py::test_a - 50% off, 2:1\n", encoding="utf-8")
    out = io.StringIO()
    play(
        ConsoleReporter(out),
        [
            step("test (3.11, ubuntu)", Status.FAILED, log=log),
            step("lint", Status.FAILED, continue_on_error=True),
            step("ok"),
        ],
    )
    errors = [line for line in out.getvalue().splitlines() if line.startswith("::error ")]
    assert len(errors) == 1
    header, message = errors[0][len("::error ") :].split("::", 1)
    assert header == "title=test (3.11%2C ubuntu) failed"
    assert "\n" not in message
    assert message.split("%0A") == [
        "exit code 1",
        "collected 10 items",
        "FAILED test_x.py::test_a - 50%25 off, 2:1",
    ]
    # A step allowed to fail is a warning, not an error.
    warnings = [line for line in out.getvalue().splitlines() if line.startswith("::warning ")]
    assert warnings == ["::warning title=lint failed::exit code 1"]


@pytest.mark.parametrize(("failures", "single"), [(9, 9), (10, 10), (11, 9), (25, 9)])
def test_at_most_ten_annotations(runner: StepFiles, failures: int, single: int) -> None:
    out = io.StringIO()
    play(ConsoleReporter(out), [step(f"t{i:02d}", Status.FAILED) for i in range(failures)])
    errors = [line for line in out.getvalue().splitlines() if line.startswith("::error")]
    assert len(errors) == min(failures, 10)
    named = [line for line in errors if line.endswith("::exit code 1")]
    assert len(named) == single
    if failures > 10:
        rest = failures - single
        assert errors[-1].startswith(f"::error title={rest} more steps failed::")
        assert errors[-1].endswith(", ".join(f"t{i:02d}" for i in range(single, failures)))


def test_secrets_are_announced_and_masked(runner: StepFiles, tmp_path: Path) -> None:
    log = tmp_path / "deploy.log"
    log.write_text("using token abc-123-xyz\nkey line 2\n", encoding="utf-8")
    out = io.StringIO()
    reporter = ConsoleReporter(out, secrets=["abc-123-xyz", ""])
    reporter.run_started(run_id="run-1", playbook="ci", total=1)
    lines = out.getvalue().splitlines()
    assert lines[0] == "::add-mask::abc-123-xyz"
    reporter.step_started(instance_id="deploy", attempt=1)
    result = step("deploy", Status.FAILED, log=log)
    reporter.step_finished(result)
    reporter.run_finished(run_result(result, secrets=("abc-123-xyz", "key line 1\nkey line 2")))
    text = out.getvalue()
    masks = [line for line in text.splitlines() if line.startswith("::add-mask::")]
    assert masks == [
        "::add-mask::abc-123-xyz",
        "::add-mask::key line 1%0Akey line 2",
        "::add-mask::key line 1",
        "::add-mask::key line 2",
    ]
    others = "\n".join(line for line in text.splitlines() if not line.startswith("::add-mask::"))
    assert "abc-123-xyz" not in others
    assert "using token ***" in others
    # The second secret became known only at the end: the summary's tail is masked.
    assert "      ***" in others


def test_failed_steps_output_masks_a_secret_json_would_escape(runner: StepFiles) -> None:
    secret = 'tök"42'
    result = run_result(step(f"deploy ({secret})", Status.FAILED), secrets=(secret,))
    paths = Paths(junit=None, summary=None, json=None)
    github.publish(result, summary_text="", paths=paths)
    # The value alone: its random delimiter around it may hold "42" by chance.
    value = runner.outputs()["failed-steps"]
    assert "42" not in value
    assert json.loads(value) == ["deploy (***)"]


def test_publish_appends_summary_and_writes_outputs(runner: StepFiles) -> None:
    runner.summary.write_text("# Earlier step\n", encoding="utf-8")
    runner.output.write_text("before=1\n", encoding="utf-8")
    result = run_result(
        *[step("lint"), step("test (3.12)", Status.FAILED), step("slow", Status.TIMED_OUT), step("doc")],
        secrets=("tok-999",),
    )
    paths = Paths(junit=Path("reports/junit.xml"), summary=Path("reports/summary.md"), json=None)
    github.publish(result, summary_text="## ci failed\nleaked tok-999\n", paths=paths)
    assert runner.summary.read_text() == "# Earlier step\n## ci failed\nleaked ***\n"
    outputs = runner.outputs()
    assert outputs["before"] == "1"
    assert outputs["result"] == "failed"
    assert json.loads(outputs["failed-steps"]) == ["test (3.12)", "slow"]
    assert outputs["junit-path"] == str(Path("reports/junit.xml"))
    assert outputs["summary-path"] == str(Path("reports/summary.md"))
    assert outputs["json-path"] == ""
    delimiters = re.findall(r"^[\w-]+<<(.+)$", runner.output.read_text(), flags=re.MULTILINE)
    assert len(set(delimiters)) == 5  # one fresh random delimiter per value


def test_publish_keeps_the_summary_within_one_mib_cut_between_blocks(runner: StepFiles) -> None:
    summary_file = runner.summary
    summary_file.write_text("x" * (1024 * 1024 - 20_000), encoding="utf-8")  # no line end
    tail = "\n".join(f"é line {n} " + "y" * 200 for n in range(50))
    failures = [step(f"t{n}", Status.FAILED, log_tail=tail) for n in range(10)]
    result = run_result(*failures)
    text = render_summary(result)
    assert len(text.encode("utf-8")) > 20_000
    github.publish(result, summary_text=text, paths=Paths(junit=None, summary=None, json=None))

    data = summary_file.read_bytes()
    assert len(data) <= github.SUMMARY_LIMIT
    appended = data.decode("utf-8").removeprefix("x" * (1024 * 1024 - 20_000))
    assert appended.startswith("\n## ❌ ci: failed")  # on a line of its own
    assert appended.count("```") % 2 == 0 and appended.count("<details>") == appended.count("</details>")
    assert "counting the 1,028,576 bytes this step's summary already held" in appended


def test_publish_does_nothing_off_github(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    github.publish(run_result(), summary_text="hello", paths=Paths(junit=None, summary=None, json=None))
    assert not summary.exists()


def test_publish_without_the_files_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    github.publish(run_result(), summary_text="hello", paths=Paths(junit=None, summary=None, json=None))
