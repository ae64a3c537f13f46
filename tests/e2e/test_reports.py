"""Reports end to end, as a user gets them: the CLI run as a real process in a fresh workspace, then
the JUnit file, run.json, the markdown summary and the GitHub files read back as CI tools read them."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import junitparser
import pytest

from tests.github_runner import StepFiles, read_outputs
from tests.helpers import FIXTURES, cli_environment, run_cli

if TYPE_CHECKING:
    import subprocess

DATA = FIXTURES / "reports"
SECRET = "hunter2-s3cr3t-value"
ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
SPEC_RUN_KEYS = {"run_id", "playbook", "status", "started", "finished", "steps", "stats"}
SPEC_STEP_KEYS = {
    "id", "step", "matrix", "status", "exit_code", "started", "finished", "duration", "attempts",
    "cached", "reason", "log",
}  # fmt: skip
SPEC_STATS_KEYS = {
    "max_concurrency_seen", "resource_utilization", "critical_path", "serial_duration", "speedup",
}  # fmt: skip


def workspace(root: Path, playbook: str) -> Path:
    """A fresh project folder holding `playbook` as playbooks/ci.yml."""
    (root / "playbooks").mkdir(parents=True)
    shutil.copy(DATA / playbook, root / "playbooks" / "ci.yml")
    return root


def reports(work: Path) -> Path:
    return work / ".ci-orchestrator" / "reports"


@dataclass(frozen=True)
class Run:
    work: Path
    process: subprocess.CompletedProcess[str]

    @property
    def record(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((reports(self.work) / "run.json").read_text(encoding="utf-8"))
        return data

    @property
    def summary(self) -> str:
        return (reports(self.work) / "summary.md").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def nasty(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """One run of the nasty playbook: a pass, a failure, a timeout and a skipped dependent."""
    work = workspace(tmp_path_factory.mktemp("nasty"), "nasty.yml")
    env = cli_environment(work, NASTY_TOKEN=SECRET)
    return Run(work, run_cli(work, "run", "--no-fail-fast", "-j", "4", env=env))


# ------------------------------------------------------------------------------------- JUnit


def test_the_run_fails_with_each_outcome_once(nasty: Run) -> None:
    assert nasty.process.returncode == 1, nasty.process.stderr
    statuses = {step["id"]: step["status"] for step in nasty.record["steps"]}
    assert statuses == {"good": "passed", "bad (3.11)": "failed", "slow": "timed-out", "after": "skipped"}


def test_junit_is_well_formed_whatever_the_steps_printed(nasty: Run) -> None:
    path = reports(nasty.work) / "junit.xml"
    data = path.read_bytes()
    assert data.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    # Neither raw nor as character references: XML 1.0 forbids these code points.
    for forbidden in (b"\x1b", b"\x00", b"&#27;", b"&#0;", b"&#x1b;", b"[31m"):
        assert forbidden not in data
    data.decode("utf-8")  # invalid bytes were decoded with replacement, not copied

    root = ET.parse(path).getroot()
    assert root.tag == "testsuites"
    suite = root.find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors"), suite.get("skipped")) == (
        "4",
        "2",
        "0",
        "1",
    )
    assert suite.get("file") == "playbooks/ci.yml"
    cases = {case.get("name"): case for case in suite.iter("testcase")}
    assert set(cases) == {"good", "bad (3.11)", "slow", "after"}
    assert {case.get("classname") for case in cases.values()} == {"nasty"}
    for case in cases.values():
        assert float(case.get("time") or "nan") >= 0  # plain decimal seconds
    failure = cases["bad (3.11)"].find("failure")
    assert failure is not None
    assert failure.get("message") == "exit code 3"
    text = failure.text or ""
    assert 'cdata ]]> end <tag> & "amp"' in text
    assert "green" in text
    assert "nul::end" in text
    assert "flavour sour on 3.11" in text
    timeout = cases["slow"].find("failure")
    assert timeout is not None
    assert "timed out" in (timeout.get("message") or "")
    assert "124" in (timeout.get("message") or "")
    skipped = cases["after"].find("skipped")
    assert skipped is not None
    assert "bad (3.11)" in (skipped.get("message") or "")
    assert cases["good"].find("failure") is None
    assert cases["good"].find("skipped") is None


def test_junitparser_reads_the_same_counts(nasty: Run) -> None:
    xml = junitparser.JUnitXml.fromfile(str(reports(nasty.work) / "junit.xml"))
    suites = list(xml)
    assert len(suites) == 1
    suite = suites[0]
    assert (suite.tests, suite.failures, suite.errors, suite.skipped) == (4, 2, 0, 1)
    outcomes: dict[str, str] = {}
    for case in suite:
        kinds = {type(result).__name__ for result in case.result}
        outcomes[case.name] = ",".join(sorted(kinds)) or "passed"
        assert case.time >= 0
    assert outcomes == {"good": "passed", "bad (3.11)": "Failure", "slow": "Failure", "after": "Skipped"}


def test_report_files_follow_the_umask_like_any_file_the_user_writes(nasty: Run) -> None:
    umask = os.umask(0o022)
    os.umask(umask)
    for name in ("junit.xml", "summary.md", "run.json"):
        mode = (reports(nasty.work) / name).stat().st_mode & 0o777
        assert mode == 0o666 & ~umask, f"{name}: {mode:o}"


# ------------------------------------------------------------------------------------- run.json


def test_reports_go_into_fifos_and_through_links_without_replacing_them(tmp_path: Path) -> None:
    import stat
    import threading

    work = tmp_path / "work"
    (work / "playbooks").mkdir(parents=True)
    (work / "playbooks" / "ci.yml").write_text("name: ci\nsteps:\n  - {id: a, run: 'true'}\n")
    fifo = work / "junit.fifo"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()))
    reader.start()
    real = work / "kept" / "run.json"
    real.parent.mkdir()
    real.write_text("old")
    (work / "link.json").symlink_to(real)
    done = run_cli(work, "run", "--junit", str(fifo), "--json", "link.json", "--output", "quiet")
    reader.join(timeout=30)
    assert done.returncode == 0, done.stderr
    assert stat.S_ISFIFO(fifo.stat().st_mode)  # still a FIFO, not a file put in its place
    assert received and b"<testsuite" in received[0]
    assert (work / "link.json").is_symlink()
    assert json.loads(real.read_text())["status"] == "passed"


def test_run_json_has_spec_fields_with_utc_microsecond_times(nasty: Run) -> None:
    record = nasty.record
    assert set(record) >= SPEC_RUN_KEYS
    assert record["playbook"] == "nasty"
    assert record["status"] == "failed"
    assert ISO_UTC.match(record["started"])
    assert ISO_UTC.match(record["finished"])
    assert record["started"] <= record["finished"]
    assert set(record["stats"]) >= SPEC_STATS_KEYS
    assert isinstance(record["stats"]["critical_path"], list)
    assert record["stats"]["max_concurrency_seen"] >= 1
    for step in record["steps"]:
        assert set(step) >= SPEC_STEP_KEYS, step
        assert isinstance(step["matrix"], dict)
        assert isinstance(step["duration"], float)
        assert isinstance(step["attempts"], int)
        assert isinstance(step["cached"], bool)
        for key in ("started", "finished"):
            assert step[key] is None or ISO_UTC.match(step[key]), step[key]
    by_id = {step["id"]: step for step in nasty.record["steps"]}
    assert by_id["bad (3.11)"]["matrix"] == {"py": "3.11"}
    assert by_id["bad (3.11)"]["step"] == "bad"
    assert by_id["bad (3.11)"]["exit_code"] == 3
    assert by_id["slow"]["exit_code"] == 124
    assert by_id["after"]["exit_code"] is None
    assert by_id["after"]["started"] is None
    assert by_id["after"]["attempts"] == 0
    assert by_id["after"]["reason"]
    assert by_id["good"]["reason"] is None
    # Log paths are relative to the working directory and point at the step's output.
    log = by_id["bad (3.11)"]["log"]
    assert not Path(log).is_absolute()
    assert b"flavour sour on 3.11" in (nasty.work / log).read_bytes()


# ------------------------------------------------------------------------------------- summary


def test_summary_has_counts_table_failure_tails_and_a_timeline(nasty: Run) -> None:
    summary = nasty.summary
    assert summary.startswith("## ❌ nasty: failed")
    assert "1 passed" in summary
    assert "1 failed" in summary
    assert "1 timed-out" in summary
    assert "1 skipped" in summary
    # The speed-up only where run.json has one (not for a run this short, or this serial).
    speedup = nasty.record["stats"]["speedup"]
    assert ("faster than one after another" in summary) == (speedup is not None)
    assert "| Status | Instance | Duration | Cached |" in summary
    for instance in ("good", "bad (3.11)", "slow", "after"):
        assert f"| `{instance}` |" in summary
    details = re.findall(r"<details><summary>(.*?)</summary>(.*?)</details>", summary, re.DOTALL)
    assert len(details) == 2
    tails = "".join(body for _, body in details)
    assert "flavour sour on 3.11" in tails
    assert "sleeping ]]>" in tails
    assert "\x1b" not in summary
    assert "\x00" not in summary
    gantt = summary.split("```mermaid", 1)[1].split("```", 1)[0]
    assert gantt.lstrip().startswith("gantt")
    bars = [line for line in gantt.splitlines() if re.search(r":(crit, )?t\d+, \d+, \d+$", line)]
    assert len(bars) == 3  # the skipped dependent never ran
    for bar in bars:
        start, end = (int(value) for value in bar.rsplit(",", 2)[1:])
        assert start < end


def test_the_summary_repro_command_reruns_that_failure(nasty: Run, tmp_path: Path) -> None:
    commands = re.findall(r"```sh\n(ci-orchestrator run .*?)\n```", nasty.summary)
    assert len(commands) == 2
    failed = next(command for command in commands if "bad (3.11)" in command)
    words = shlex.split(failed)
    assert words[:3] == ["ci-orchestrator", "run", "playbooks/ci.yml"]
    assert words[3:5] == ["--select", "bad (3.11)"]
    assert "flavour=sour" in words

    work = workspace(tmp_path / "laptop", "nasty.yml")
    rerun = run_cli(work, *words[1:], env=cli_environment(work, NASTY_TOKEN=SECRET))
    assert rerun.returncode == 1, rerun.stderr
    steps = json.loads((reports(work) / "run.json").read_text(encoding="utf-8"))["steps"]
    ended = [(step["id"], step["status"], step["exit_code"]) for step in steps]
    assert ended == [("bad (3.11)", "failed", 3)]
    log = (work / steps[0]["log"]).read_text(encoding="utf-8", errors="replace")
    assert "flavour sour on 3.11" in log


def test_each_printed_repro_command_reruns_exactly_its_instance(tmp_path: Path) -> None:
    """Matrix values that are syntax to `--select` or `--matrix` (commas, parentheses, brackets,
    wildcards, objects) still give a command that, pasted, reruns that one instance."""
    work = workspace(tmp_path / "ci", "awkward.yml")
    first = run_cli(work, "run", "--no-fail-fast", "--output", "quiet")
    assert first.returncode == 1, first.stderr
    recorded = json.loads((reports(work) / "run.json").read_text(encoding="utf-8"))["steps"]
    failed = [step["id"] for step in recorded if step["status"] == "failed"]
    assert len(failed) == 5
    summary = (reports(work) / "summary.md").read_text(encoding="utf-8")
    commands = re.findall(r"```sh\n(ci-orchestrator run .*?)\n```", summary)
    assert len(commands) == len(failed)

    for number, (instance, command) in enumerate(zip(failed, commands, strict=True)):
        laptop = workspace(tmp_path / f"laptop-{number}", "awkward.yml")
        rerun = run_cli(laptop, *shlex.split(command)[1:], "--output", "quiet")
        assert rerun.returncode == 1, (command, rerun.stderr)
        steps = json.loads((reports(laptop) / "run.json").read_text(encoding="utf-8"))["steps"]
        assert [(step["id"], step["status"]) for step in steps] == [("build", "passed"), (instance, "failed")]


# ------------------------------------------------------------------------------------- secrets


def test_a_secret_from_the_environment_is_masked_everywhere(nasty: Run) -> None:
    state = nasty.work / ".ci-orchestrator"
    files = [reports(nasty.work) / name for name in ("junit.xml", "summary.md", "run.json")]
    files += sorted((state / "logs").rglob("*.log"))
    assert len(files) >= 6
    for path in files:
        assert SECRET.encode() not in path.read_bytes(), path
    assert SECRET not in nasty.process.stdout + nasty.process.stderr
    assert "secret=***" in nasty.process.stdout
    assert "secret=***" in nasty.summary
    good_log = next(path for path in files if path.name == "good.log")
    assert b"token is ***" in good_log.read_bytes()


# ------------------------------------------------------------------------------------- size


def test_a_step_printing_5_mb_gives_a_small_summary_with_its_tail(tmp_path: Path) -> None:
    work = workspace(tmp_path, "loud.yml")
    process = run_cli(work, "run", "--output", "quiet")
    assert process.returncode == 1, process.stderr
    record = json.loads((reports(work) / "run.json").read_text(encoding="utf-8"))
    assert (work / record["steps"][0]["log"]).stat().st_size > 5_000_000
    summary = (reports(work) / "summary.md").read_bytes()
    assert len(summary) < 1024 * 1024
    text = summary.decode("utf-8")
    details = text.split("<details>", 1)[1]
    assert "the last words" in details
    junit = (reports(work) / "junit.xml").read_bytes()
    assert len(junit) < 1024 * 1024
    ET.fromstring(junit)


def test_failure_tails_past_1_mib_are_cut_and_the_cut_is_said(tmp_path: Path) -> None:
    work = workspace(tmp_path, "manyfail.yml")
    process = run_cli(work, "run", "--no-fail-fast", "-j", "8", "--output", "quiet")
    assert process.returncode == 1, process.stderr
    summary = (reports(work) / "summary.md").read_bytes()
    assert len(summary) <= 1024 * 1024
    text = summary.decode("utf-8")
    assert "1 MiB" in text  # the note that says what was cut
    for number in range(1, 25):
        assert f"| `wide ({number})` |" in text  # every row kept: the tails were cut first
        assert f"tail of {number}\n" in text  # and each tail keeps its end
    assert text.count("<details>") == 24


# ------------------------------------------------------------------------------------- GitHub


@pytest.fixture(scope="module")
def github_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Run, Path, Path]:
    """A run in a simulated GitHub Actions step: the flag, the per-step files, a secret."""
    root = tmp_path_factory.mktemp("github")
    work = workspace(root / "workspace", "github.yml")
    files = StepFiles.made_in(root, summary="# Earlier content\n\n")
    env = cli_environment(work, **files.environment(), GH_SECRET=SECRET)
    return Run(work, run_cli(work, "run", "--no-fail-fast", env=env)), files.summary, files.output


def test_github_summary_is_appended(github_run: tuple[Run, Path, Path]) -> None:
    run, summary_file, _ = github_run
    assert run.process.returncode == 1, run.process.stderr
    text = summary_file.read_text(encoding="utf-8")
    assert text.startswith("# Earlier content\n\n")
    appended = text.removeprefix("# Earlier content\n\n")
    assert appended == run.summary
    assert "## ❌ gh: failed" in appended


def test_github_outputs_are_written_in_the_multiline_safe_form(github_run: tuple[Run, Path, Path]) -> None:
    run, _, output_file = github_run
    raw = output_file.read_text(encoding="utf-8")
    assert re.search(r"^result<<\S+$", raw, re.MULTILINE)
    outputs = read_outputs(raw)
    assert set(outputs) == {"result", "failed-steps", "junit-path", "summary-path", "json-path"}
    assert outputs["result"] == "failed"
    assert json.loads(outputs["failed-steps"]) == ["test (linux)", "test (mac)"]
    files = {"junit-path": "junit.xml", "summary-path": "summary.md", "json-path": "run.json"}
    for name, file in files.items():
        assert Path(outputs[name]).resolve() == (reports(run.work) / file).resolve()
        assert Path(outputs[name]).is_file()


def test_github_console_folds_logs_and_annotates_failures(github_run: tuple[Run, Path, Path]) -> None:
    run, _, _ = github_run
    lines = run.process.stdout.splitlines()
    groups = [line for line in lines if line.startswith("::group::")]
    assert len(groups) == 3
    assert lines.count("::endgroup::") == 3
    errors = [line for line in lines if line.startswith("::error ")]
    assert len(errors) == 2
    for error, instance in zip(sorted(errors), ("test (linux)", "test (mac)"), strict=True):
        assert error.startswith(f"::error title={instance} failed::exit code 1")
        assert "%0A" in error or "\n" not in error
    # A step's own `::warning::` line is echoed inside stop-commands, never obeyed.
    echoed = lines.index("::warning::a line that looks like a workflow command")
    before = [line for line in lines[:echoed] if line.startswith("::stop-commands::")]
    assert before
    token = before[-1].removeprefix("::stop-commands::")
    assert f"::{token}::" in lines[echoed:]


def test_github_secret_is_announced_and_masked_everywhere(github_run: tuple[Run, Path, Path]) -> None:
    run, summary_file, output_file = github_run
    stdout = run.process.stdout
    assert stdout.splitlines()[0] == f"::add-mask::{SECRET}"
    assert stdout.count(SECRET) == 1  # only the announcement
    assert SECRET not in run.process.stderr
    assert "with token ***" in stdout
    files = [summary_file, output_file]
    files += [reports(run.work) / name for name in ("junit.xml", "summary.md", "run.json")]
    files += sorted((run.work / ".ci-orchestrator" / "logs").rglob("*.log"))
    assert len(files) >= 8
    for path in files:
        assert SECRET.encode() not in path.read_bytes(), path


def test_off_github_no_workflow_commands_are_printed(nasty: Run) -> None:
    assert not [line for line in nasty.process.stdout.splitlines() if line.startswith("::")]


def test_past_ten_failures_one_annotation_counts_the_rest(tmp_path: Path) -> None:
    work = workspace(tmp_path / "workspace", "manyfail.yml")
    output_file = tmp_path / "output"
    output_file.touch()
    env = cli_environment(work, GITHUB_ACTIONS="true", GITHUB_OUTPUT=str(output_file))
    process = run_cli(work, "run", "--no-fail-fast", "-j", "8", env=env)
    assert process.returncode == 1
    errors = [line for line in process.stdout.splitlines() if line.startswith("::error ")]
    assert len(errors) == 10
    assert "15 more steps failed" in errors[-1]
    assert len(json.loads(read_outputs(output_file.read_text(encoding="utf-8"))["failed-steps"])) == 24


@pytest.mark.parametrize("broken", ["GITHUB_STEP_SUMMARY", "GITHUB_OUTPUT"])
@pytest.mark.parametrize("how", ["missing folder", "a folder"])
def test_a_github_file_that_cannot_be_written_is_a_warning(tmp_path: Path, broken: str, how: str) -> None:
    """The run's own exit code stands, the other file is written, and no traceback is shown."""
    work = workspace(tmp_path / "workspace", "github.yml")
    files = {"GITHUB_STEP_SUMMARY": tmp_path / "step_summary.md", "GITHUB_OUTPUT": tmp_path / "output"}
    files[broken] = tmp_path / "gone" / "file" if how == "missing folder" else tmp_path
    env = cli_environment(
        work, GITHUB_ACTIONS="true", CI="true", **{name: str(path) for name, path in files.items()}
    )
    process = run_cli(work, "run", "--no-fail-fast", env=env)

    assert process.returncode == 1  # a step failed: the run's code, not a crash's
    assert "Traceback" not in process.stderr
    assert "warning: cannot write the" in process.stderr and f"${broken} ({files[broken]})" in process.stderr
    summary_file, output_file = files["GITHUB_STEP_SUMMARY"], files["GITHUB_OUTPUT"]
    if broken == "GITHUB_OUTPUT":
        assert summary_file.read_text(encoding="utf-8") == (reports(work) / "summary.md").read_text(
            encoding="utf-8"
        )
    else:
        assert read_outputs(output_file.read_text(encoding="utf-8"))["result"] == "failed"
    assert (reports(work) / "run.json").is_file()
