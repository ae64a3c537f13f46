"""The markdown summary: what it tells, how it survives hostile logs, and its 1 MiB ceiling."""

from __future__ import annotations

import dataclasses
import re
import shlex
from typing import TYPE_CHECKING, Any

from ci_orchestrator.reporters.markdown import render_summary, repro_command
from ci_orchestrator.results import RunResult, RunStats, RunStatus, Status
from tests.helpers import run_result, step_result

if TYPE_CHECKING:
    from pathlib import Path

MIB = 1024 * 1024


# As a failed run hands its result to the reports.
REPORTED: dict[str, Any] = {
    "status": RunStatus.FAILED,
    "stats": RunStats(serial_duration=12.5, speedup=2.5, critical_path=("lint",)),
    "vars": {"ENV": "staging eu"},
    "secrets": ("hunter2",),
    "with_tails": True,
}


def sample(log: str | None = "step.log") -> RunResult:
    return run_result(
        step_result("lint", Status.PASSED, exit_code=0),
        step_result(
            "test (3.12, a:b)",
            Status.FAILED,
            offset=1,
            exit_code=3,
            log=log,
            matrix={"python": "3.12", "flavour": "a:b"},
        ),
        step_result("deploy", Status.SKIPPED, reason="fail-fast"),
        step_result("build", Status.CACHED, cached=True),
        **REPORTED,
    )


def test_the_summary_tells_result_counts_times_and_steps(workdir: Path) -> None:
    (workdir / "step.log").write_text("collecting\nFAILED test_x - assert 1 == 2\n")
    text = render_summary(sample())

    assert text.startswith("## ❌ ci: failed")
    assert "✅ 1 passed" in text and "❌ 1 failed" in text and "⏭️ 1 skipped" in text and "💾 1 cached" in text
    assert "Wall time **5.0s**" in text and "**12.5s**" in text and "2.50×" in text
    assert "| Status | Instance | Duration | Cached |" in text
    assert "| ❌ failed | `test (3.12, a:b)` | 2.0s |  | exit code 3 |" in text
    assert "| 💾 cached | `build` | 0.0s | yes |" in text
    assert "<details><summary>" in text and "FAILED test_x - assert 1 == 2" in text


def test_the_repro_command_runs_that_instance_and_what_it_needs(workdir: Path) -> None:
    result = sample()
    command = repro_command(result, result.steps[1])

    assert shlex.split(command) == [
        "ci-orchestrator", "run", "playbooks/ci.yml", "--select", "test (3.12, a:b)",
        "--var", "ENV=staging eu",
    ]  # fmt: skip
    assert command in render_summary(result)


def test_the_repro_command_repeats_the_runs_own_matrix_values(workdir: Path) -> None:
    result = run_result(
        step_result("t (x,y)", Status.FAILED, exit_code=1, matrix={"v": "x,y"}),
        matrix_filters={"v": ("x", "z"), "os": ("linux",)},
        **{**REPORTED, "vars": {}},
    )
    command = repro_command(result, result.steps[0])

    assert shlex.split(command) == [
        "ci-orchestrator", "run", "playbooks/ci.yml", "--select", "t (x,y)",
        "--matrix", "v=x,z", "--matrix", "os=linux",
    ]  # fmt: skip


def test_the_reproduce_commands_check_out_the_commit_the_run_tested(workdir: Path) -> None:
    sha = "0123456789abcdef0123456789abcdef01234567"
    text = render_summary(dataclasses.replace(sample(), commit=sha, branch="main"))
    block = f"```sh\ngit checkout {sha}\nci-orchestrator repro ci-reports/reports/run.json\n```"
    assert block in text
    assert f"at commit `{sha}`" in text and "`ci-orchestrator-reports` artifact" in text
    assert "Reproduce locally: `ci-orchestrator repro ci-reports/reports/run.json 'test (3.12, a:b)'`" in text


def test_without_a_commit_id_the_reproduce_commands_check_nothing_out(workdir: Path) -> None:
    # A record read back is untrusted: what is not a commit id is not put in a command.
    for commit in (None, "main; rm -rf ~", "`x`"):
        text = render_summary(dataclasses.replace(sample(), commit=commit))
        assert "git checkout" not in text and "rm -rf" not in text
        assert "at the commit this run tested" in text
        assert "```sh\nci-orchestrator repro ci-reports/reports/run.json\n```" in text


def test_the_timeline_is_a_mermaid_gantt_of_what_ran(workdir: Path) -> None:
    text = render_summary(sample(log=None))
    block = re.search(r"```mermaid\n(.*?)\n```", text, re.DOTALL)

    assert block is not None
    chart = block.group(1).splitlines()
    assert chart[0] == "gantt"
    tasks = [line.strip() for line in chart if re.search(r":.*t\d+, \d+, \d+$", line)]
    assert len(tasks) == 2  # skipped and cached did not run
    names = [task.split(" :", 1)[0] for task in tasks]
    for name in names:
        # Mermaid misreads these characters; it decodes `#NN;` entities before parsing.
        assert not set(re.sub(r"#\d+;", "", name)) & set(":;#()"), name
    decoded = [re.sub(r"#(\d+);", lambda m: chr(int(m.group(1))), name) for name in names]
    assert decoded == ["lint", "test (3.12, a:b)"]
    start, end = (int(n) for n in tasks[1].rsplit(",", 2)[1:])
    assert end - start == 2000
    assert "crit" in tasks[1]


def test_log_content_cannot_break_out_of_its_fence(workdir: Path) -> None:
    (workdir / "step.log").write_text("before\n```\n# Injected heading\n`````\n</details>\nafter\n")
    text = render_summary(sample())

    fence = re.search(r"^(`{3,})text$", text, re.MULTILINE)
    assert fence is not None
    ticks = fence.group(1)
    assert len(ticks) > 5
    body = text[fence.end() :].split("\n" + ticks + "\n", 1)[0]
    assert "# Injected heading" in body and "after" in body


def test_secrets_and_control_bytes_never_reach_the_summary(workdir: Path) -> None:
    (workdir / "step.log").write_bytes(b"\x1b[31mtoken=hunter2\x1b[0m\x00 \xff\n")
    result = run_result(
        step_result("t", Status.FAILED, exit_code=1, log="step.log", reason="hunter2"),
        **{**REPORTED, "vars": {"TOKEN": "hunter2"}},
    )
    text = render_summary(result)

    assert "hunter2" not in text
    assert "token=***" in text
    assert "\x1b" not in text and "\x00" not in text


def test_a_secret_is_masked_in_its_escaped_forms_too() -> None:
    secret = 'p<a|s&s"1'
    result = run_result(
        step_result(f"t ({secret})", Status.FAILED, exit_code=1, reason=f"bad {secret}"),
        **{**REPORTED, "secrets": (secret,)},
    )
    text = render_summary(result)
    # As written, in a table cell (`\\|`), as HTML, as markdown text, in the mermaid timeline.
    for fragment in ("a|s", "a\\|s", "s&s", "s&amp;s", "#60;a"):
        assert fragment not in text
    assert "`t (***)`" in text


def test_a_5_mb_log_keeps_the_summary_under_1_mib_with_the_failure_tail(workdir: Path) -> None:
    line = "x" * 2000 + "\n"
    (workdir / "huge.log").write_text(line * (5 * MIB // len(line)) + "FATAL: the cause\n")
    failures = [step_result(f"t{n}", Status.FAILED, exit_code=1, log="huge.log") for n in range(40)]
    text = render_summary(run_result(*failures, **REPORTED))

    assert len(text.encode()) <= MIB
    assert text.count("FATAL: the cause") == 40
    assert "Cut to stay under GitHub's 1 MiB summary limit" in text
    assert "log tails shortened" in text


def test_too_many_rows_are_cut_failures_first_and_said(workdir: Path) -> None:
    steps = [step_result(f"passing-step-number-{n}", Status.PASSED, offset=n) for n in range(3000)]
    steps.append(step_result("the-failure", Status.FAILED, offset=5, exit_code=2))
    text = render_summary(run_result(*steps, **REPORTED), max_bytes=64 * 1024)

    assert len(text.encode()) <= 64 * 1024
    assert "| ❌ failed | `the-failure` |" in text
    assert re.search(r"\d+ of 3001 instances left out of the table", text)


def test_a_cut_summary_fills_the_mib_and_its_timeline_counts_every_instance_that_ran(workdir: Path) -> None:
    name = "a-step-with-a-name-long-enough-to-fill-the-table-quickly-" + "x" * 60
    steps = [step_result(f"{name}-{n:05d}", Status.PASSED, offset=n / 100, exit_code=0) for n in range(8000)]
    steps.append(step_result("the-failure", Status.FAILED, offset=5, exit_code=2))
    text = render_summary(run_result(*steps, **REPORTED))

    size = len(text.encode())
    assert 0.95 * MIB < size <= MIB
    assert re.search(r"The timeline shows \d+ of the 8001 instances that ran", text)
    assert "| ❌ failed | `the-failure` |" in text
    left_out = re.search(r"(\d+) of 8001 instances left out of the table", text)
    assert left_out and int(left_out.group(1)) < 2000  # halving kept 4000 rows
    assert "log tails" not in text  # the failure has no log: nothing was cut from one


def test_the_summary_shows_a_passed_run_without_failures(workdir: Path) -> None:
    text = render_summary(
        run_result(step_result("lint", Status.PASSED), **{**REPORTED, "status": RunStatus.PASSED})
    )

    assert text.startswith("## ✅ ci: passed")
    assert "### Failures" not in text
    assert "Cut to stay" not in text
