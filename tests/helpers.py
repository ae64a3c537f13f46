"""What tests build and run: model objects for tests that do not go through the loader, results
as the scheduler hands them to reporters, and the command line as a user runs it, in process
(typer's CliRunner) or as a real `python -m ci_orchestrator`."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from typer.testing import CliRunner, Result

from ci_orchestrator.cli import app
from ci_orchestrator.errors import Location
from ci_orchestrator.playbook.model import Execution, Group, Instance, Playbook, Step
from ci_orchestrator.results import RunResult, RunStatus, Status, StepResult

if TYPE_CHECKING:
    from collections.abc import Sequence

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "data"  # playbooks, scripts and files the tests start from


def step(step_id: str, **fields: Any) -> Step:
    fields.setdefault("run", "true")
    return Step(id=step_id, name=step_id, location=Location(file="test.yml", line=1, column=1), **fields)


def playbook(*steps: Step, groups: tuple[Group, ...] = (), **fields: Any) -> Playbook:
    execution = fields.pop("execution", Execution.SERIAL)
    return Playbook(
        name=fields.pop("name", "test"),
        path="test.yml",
        location=Location(file="test.yml"),
        execution=execution,
        steps=steps,
        groups=groups,
        **fields,
    )


def instances(book: Playbook) -> list[Instance]:
    """One instance per step, without a matrix."""
    return [
        dataclasses.replace(
            Instance.as_written(
                s,
                env=dict(book.env) | dict(s.env),
                timeout=s.timeout if isinstance(s.timeout, float | int) else None,
                continue_on_error=bool(s.continue_on_error),
            ),
            condition=s.condition,
        )
        for s in book.steps
    ]


def invoke(*args: str) -> Result:
    """The command in this process, through typer's CliRunner. An exception other than the
    command's own exit is raised here: a traceback fails the test whatever it looks at."""
    result = CliRunner().invoke(app, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def cli_environment(work: Path | None = None, **extra: str) -> dict[str, str]:
    """The machine's environment without GitHub or CI variables, the package importable, no run
    server (a test that wants one says so); with `work`, the step cache inside it."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("GITHUB_", "CI_ORCHESTRATOR", "RUNNER_")) and name != "CI"
    }
    env["PYTHONPATH"] = str(REPO)
    env["CI_ORCHESTRATOR_SERVER"] = "off"
    if work is not None:
        env["CI_ORCHESTRATOR_CACHE_DIR"] = str(work / ".cache-dir")
    env.update(extra)
    return env


def cli_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "ci_orchestrator", *args]


def entry_points(*args: str) -> list[list[str]]:
    """The command as a user starts it: `python -m ci_orchestrator`, and the installed
    `ci-orchestrator` script where there is one beside this interpreter."""
    found = [cli_command(*args)]
    script = Path(sys.executable).with_name("ci-orchestrator")
    if script.is_file():
        found.append([str(script), *args])
    return found


def handles(pid: int, signum: int) -> bool:
    """Whether process `pid` has a handler of its own for `signum` now (SigCgt in /proc): until
    then its interpreter is still starting, and none of our code has run."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    mask = next((line.split()[1] for line in status.splitlines() if line.startswith("SigCgt:")), "0")
    return bool(int(mask, 16) & 1 << (signum - 1))


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Signalled:
    """How a command signalled soon after its start ended (see `signal_soon_after_start`)."""

    code: int
    err: str
    handled: bool  # it had a handler of its own when the signal was sent


def signal_soon_after_start(
    argv: list[str], *, delay: float, signum: int, cwd: Path, env: dict[str, str], once_handled: bool
) -> Signalled:
    """Starts `argv`, sends it `signum` `delay` seconds after its start or, `once_handled`,
    after it first handles the signal itself, and waits for its end."""
    process = subprocess.Popen(
        argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 60
    while once_handled and not handles(process.pid, signum) and process.poll() is None:
        assert time.monotonic() < deadline, "no handler after 60 s"
        time.sleep(0.001)
    time.sleep(delay)
    handled = handles(process.pid, signum)
    process.send_signal(signum)
    _, err = process.communicate(timeout=120)
    return Signalled(code=process.returncode, err=err, handled=handled)


def early_sigterms(ways: list[list[str]], *, cwd: Path, env: dict[str, str], runs: int) -> list[Signalled]:
    """SIGTERM sent 0 to 300 ms after start, `runs` times, each of the `ways` in turn; every
    other time counted from the moment the process first handles it, however loaded the machine
    (its interpreter's start can take that long, and then some)."""
    return [
        signal_soon_after_start(
            ways[number // 2 % len(ways)],
            delay=number * 7 % 16 / 50,
            signum=signal.SIGTERM,
            cwd=cwd,
            env=env,
            once_handled=number % 2 == 1,
        )
        for number in range(runs)
    ]


def assert_143_and_quiet(ended: list[Signalled]) -> None:
    """Each ended with 143 and no traceback, but one signalled while its interpreter was still
    starting (none of our code had run: no program can handle a signal then, the kernel ends it)."""
    for one in ended:
        assert "Traceback" not in one.err and "Exception ignored" not in one.err, one.err
        if one.handled:
            assert one.code == 143, one
        else:
            assert one.code in (143, -signal.SIGTERM), one
    assert sum(one.handled for one in ended) >= len(ended) // 2


def run_cli(
    work: Path,
    *args: str,
    env: dict[str, str] | None = None,
    launcher: Sequence[str] = (),
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """The command as a separate process in `work`, as CI runs it, waited for (undecodable
    output replaced). The environment is `cli_environment(work)` unless given; `launcher` goes
    before the command: a program that sets something up, then runs the rest of its arguments."""
    return subprocess.run(
        [*launcher, *cli_command(*args)],
        cwd=work,
        env=cli_environment(work) if env is None else env,
        capture_output=True,
        text=True,
        errors="replace",
        timeout=timeout,
        check=False,
    )


def repro_record(work: Path, done: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    """The run record a `repro` wrote, found where its last line of output says."""
    found = re.search(
        r"^reports of this repro: (\S+)/ \(junit\.xml, summary\.md, run\.json\)$", done.stdout, re.M
    )
    assert found, done.stdout
    loaded: dict[str, Any] = json.loads((work / found[1] / "run.json").read_text(encoding="utf-8"))
    return loaded


def start_cli(
    work: Path,
    *args: str,
    env: dict[str, str] | None = None,
    launcher: Sequence[str] = (),
    **popen: Any,
) -> subprocess.Popen[Any]:
    """The command started as a separate process in `work`, as `run_cli` runs it, for a test
    that signals it or reads its output while it runs; `popen` says where that output goes."""
    return subprocess.Popen(
        [*launcher, *cli_command(*args)],
        cwd=work,
        env=cli_environment(work) if env is None else env,
        **popen,
    )


def listed_steps(output: str) -> dict[str, dict[str, str]]:
    """The steps table of `list` (the lines after its title, up to a blank line): each row by id."""
    return {row["ID"]: row for row in table_rows(output.splitlines()[1:])}


def table_rows(lines: list[str]) -> list[dict[str, str]]:
    """A printed table (its header line, then rows up to a blank line): each cell by its column's
    header, cut where the header's columns start."""
    header, *rows = lines
    rows = rows[: rows.index("")] if "" in rows else rows
    starts = [match.start() for match in re.finditer(r"\S+", header)]
    bounds = list(zip(starts, [*starts[1:], None], strict=True))
    names = [header[start:end].strip() for start, end in bounds]
    return [
        {name: row[start:end].strip() for name, (start, end) in zip(names, bounds, strict=True)}
        for row in rows
    ]


T0 = datetime(2026, 11, 25, 10, 0, 0, 123456, tzinfo=UTC)


def step_result(
    instance_id: str,
    status: Status = Status.PASSED,
    *,
    log: Path | str | None = None,
    offset: float = 0.0,
    duration: float | None = None,
    **fields: Any,
) -> StepResult:
    """A finished instance, as the scheduler reports it: one that ran started `offset` seconds
    after T0 and took `duration` (2 s by default); a skipped or cached one has no times, no
    attempts, and no duration unless given (a cached one keeps the stored run's)."""
    ran = status not in (Status.SKIPPED, Status.CACHED)
    taken = 2.0 if duration is None else duration
    values: dict[str, Any] = {
        "id": instance_id,
        "step": instance_id.split(" ", maxsplit=1)[0],
        "name": instance_id,
        "matrix": {},
        "status": status,
        "exit_code": {Status.PASSED: 0, Status.FAILED: 1, Status.TIMED_OUT: 124}.get(status),
        "started": T0 + timedelta(seconds=offset) if ran else None,
        "finished": T0 + timedelta(seconds=offset + taken) if ran else None,
        "duration": taken if ran or duration is not None else 0.0,
        "attempts": 1 if ran else 0,
        "log": str(log) if log else None,
    }
    values.update(fields)
    return StepResult(**values)


def run_result(
    *steps: StepResult,
    status: RunStatus | None = None,
    offset: float = 0.0,
    seconds: float = 5.0,
    with_tails: bool = False,
    **fields: Any,
) -> RunResult:
    """A finished run of `steps` that started `offset` seconds after T0 and took `seconds`; its
    status follows the steps and an interruption, as the scheduler's does, unless given.
    `with_tails`: as a run hands its result to the reports, each failure's log tail read from
    its log file (masked)."""
    if status is None:
        status = RunStatus.of(steps, interrupted=fields.get("interrupted_by") is not None)
    values: dict[str, Any] = {
        "run_id": "run-1",
        "playbook": "ci",
        "playbook_path": "playbooks/ci.yml",
        "status": status,
        "started": T0 + timedelta(seconds=offset),
        "finished": T0 + timedelta(seconds=offset + seconds),
        "steps": tuple(steps),
    }
    values.update(fields)
    result = RunResult(**values)
    if with_tails:
        from ci_orchestrator.reporters.logs import with_tails as read_tails

        return read_tails(result)
    return result
