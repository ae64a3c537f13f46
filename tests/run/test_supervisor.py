"""The executor with real processes: exit codes, logs, stdin, deadlines, whole-tree stops, masking,
start errors, cancellation and signals. psutil checks that nothing survives."""

from __future__ import annotations

import itertools
import os
import re
import resource
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from datetime import UTC
from pathlib import Path

import psutil
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ci_orchestrator.output.masking import Masker
from ci_orchestrator.run.argv import build_argv
from ci_orchestrator.run.events import Exited, ProcessSpec, Signalled, WorkDone
from ci_orchestrator.run.supervisor import MAX_GRACE, Supervisor
from tests.helpers import REPO

PY = sys.executable


@pytest.fixture
def run_id() -> str:
    return f"test-{uuid.uuid4().hex}"


@pytest.fixture
def supervisor():
    with Supervisor(grace=0.5) as supervisor:
        yield supervisor


def spec(workdir: Path, run_id: str, key: str, argv: tuple[str, ...], **changes: object) -> ProcessSpec:
    env = dict(os.environ, CI_ORCHESTRATOR_RUN_ID=run_id, CI_ORCHESTRATOR_STEP_ID=key)
    values: dict[str, object] = {
        "key": key,
        "argv": argv,
        "cwd": workdir,
        "env": env,
        "log_path": workdir / "logs" / f"{key}.log",
        "timeout": 30.0,
    }
    values.update(changes)
    return ProcessSpec(**values)  # type: ignore[arg-type]


def finish_all(supervisor: Supervisor) -> dict[str, Exited]:
    """Waits until nothing runs; returns each process's end by key."""
    ended: dict[str, Exited] = {}
    while supervisor.running or not ended:
        events = supervisor.wait()
        if not events:
            break
        ended.update({event.key: event for event in events if isinstance(event, Exited)})
    return ended


def run(supervisor: Supervisor, process: ProcessSpec) -> Exited:
    supervisor.start(process)
    return finish_all(supervisor)[process.key]


def survivors(run_id: str) -> list[psutil.Process]:
    """Live processes (zombies do not count) carrying this run's marker."""
    found = []
    for process in psutil.process_iter(["environ"], ad_value=None):
        environ = process.info["environ"] or {}
        if environ.get("CI_ORCHESTRATOR_RUN_ID") == run_id:
            try:
                if process.status() != psutil.STATUS_ZOMBIE:
                    found.append(process)
            except psutil.NoSuchProcess:
                pass
    return found


def no_survivors(run_id: str) -> bool:
    """True when no marked process runs: the executor reports a tree only once it has ended."""
    return not survivors(run_id)


# -- exit codes, logs, stdin, environment ---------------------------------------------------------


def test_exit_codes_are_reported(supervisor: Supervisor, workdir: Path, run_id: str) -> None:
    supervisor.start(spec(workdir, run_id, "ok", ("true",)))
    supervisor.start(spec(workdir, run_id, "three", ("sh", "-c", "exit 3")))
    supervisor.start(spec(workdir, run_id, "killed", ("sh", "-c", "kill -9 $$")))
    ended = finish_all(supervisor)
    assert {key: event.exit_code for key, event in ended.items()} == {"ok": 0, "three": 3, "killed": 137}
    assert ended["ok"].ok
    assert not ended["three"].ok
    assert not any(event.timed_out or event.cancelled or event.error for event in ended.values())


def test_started_and_finished_are_aware_utc(supervisor: Supervisor, workdir: Path, run_id: str) -> None:
    ended = run(supervisor, spec(workdir, run_id, "a", ("true",)))
    assert ended.started.tzinfo is UTC
    assert ended.started <= ended.finished


def test_stdout_and_stderr_go_to_the_log_file(supervisor: Supervisor, workdir: Path, run_id: str) -> None:
    script = "echo out; echo err >&2; echo $GREETING"
    process = spec(workdir, run_id, "log", ("sh", "-c", script))
    process = spec(workdir, run_id, "log", ("sh", "-c", script), env={**process.env, "GREETING": "hello"})
    assert run(supervisor, process).exit_code == 0
    assert process.log_path.read_text() == "out\nerr\nhello\n"


def test_log_file_is_replaced_not_appended(supervisor: Supervisor, workdir: Path, run_id: str) -> None:
    process = spec(workdir, run_id, "twice", ("echo", "once"))
    run(supervisor, process)
    run(supervisor, process)
    assert process.log_path.read_text() == "once\n"


def test_stdin_is_closed(supervisor: Supervisor, workdir: Path, run_id: str) -> None:
    reader = spec(
        workdir, run_id, "reader", (PY, "-c", "import sys; print(repr(sys.stdin.read()))"), timeout=5
    )
    ended = run(supervisor, reader)
    assert ended.exit_code == 0
    assert not ended.timed_out
    assert reader.log_path.read_text() == "''\n"


def test_each_process_leads_its_own_session(supervisor: Supervisor, workdir: Path, run_id: str) -> None:
    probe = "import os; print(os.getsid(0) == os.getpid(), os.getsid(0) != int(os.environ['PARENT_SID']))"
    process = spec(workdir, run_id, "session", (PY, "-c", probe))
    process = spec(
        workdir, run_id, "session", process.argv, env={**process.env, "PARENT_SID": str(os.getsid(0))}
    )
    run(supervisor, process)
    assert process.log_path.read_text() == "True True\n"


def test_wait_with_nothing_running_returns_at_once() -> None:
    with Supervisor(grace=0.5) as supervisor:
        assert supervisor.wait() == []
        assert supervisor.running == 0


def test_wait_waits_for_work_done_on_another_thread_acting_on_deadlines_meanwhile(
    supervisor: Supervisor, workdir: Path, run_id: str
) -> None:
    supervisor.expect("store")
    supervisor.start(spec(workdir, run_id, "slow", ("sleep", "30"), timeout=0.2))
    (ended,) = supervisor.wait()  # the deadline passes while the work goes on elsewhere
    assert isinstance(ended, Exited) and ended.timed_out
    finisher = threading.Thread(target=supervisor.done, args=("store",))
    finisher.start()
    assert supervisor.wait() == [WorkDone(key="store")]  # nothing runs: it waits for the work alone
    finisher.join()
    assert supervisor.wait() == []


def test_wait_blocks_without_spending_cpu(supervisor: Supervisor, workdir: Path, run_id: str) -> None:
    supervisor.start(spec(workdir, run_id, "sleeper", ("sleep", "0.5")))
    cpu_before = time.process_time()
    finish_all(supervisor)
    assert time.process_time() - cpu_before < 0.1


# -- start errors -----------------------------------------------------------------------------


def test_a_missing_program_is_an_error_not_an_exception(
    supervisor: Supervisor, workdir: Path, run_id: str
) -> None:
    ended = run(supervisor, spec(workdir, run_id, "missing", ("no-such-program-here", "x")))
    assert ended.exit_code is None
    assert ended.error == "command not found: no-such-program-here"
    assert supervisor.running == 0


@pytest.mark.skipif(bool(__import__("shutil").which("pwsh")), reason="pwsh is installed")
def test_a_missing_interpreter_is_named(supervisor: Supervisor, workdir: Path, run_id: str) -> None:
    argv = build_argv(
        run="Write-Output hi", command=None, script=None, args=(), shell="pwsh", scratch_dir=workdir, name="p"
    )
    ended = run(supervisor, spec(workdir, run_id, "pwsh", argv))
    assert ended.error == "pwsh is not installed"


def test_a_missing_working_directory_is_an_error(supervisor: Supervisor, workdir: Path, run_id: str) -> None:
    ended = run(supervisor, spec(workdir, run_id, "cwd", ("true",), cwd=workdir / "nowhere"))
    assert ended.exit_code is None
    assert ended.error == f"working directory does not exist: {workdir / 'nowhere'}"


def test_an_unwritable_log_is_an_error(supervisor: Supervisor, workdir: Path, run_id: str) -> None:
    (workdir / "file").write_text("")
    ended = run(supervisor, spec(workdir, run_id, "log", ("true",), log_path=workdir / "file" / "x.log"))
    assert ended.exit_code is None
    assert ended.error is not None
    assert ended.error.startswith(f"cannot write the log file {workdir / 'file' / 'x.log'}")


def test_a_file_that_is_not_executable_is_an_error(
    supervisor: Supervisor, workdir: Path, run_id: str
) -> None:
    (workdir / "tool.sh").write_text("echo hi\n")
    ended = run(supervisor, spec(workdir, run_id, "noexec", (str(workdir / "tool.sh"),)))
    assert ended.error is not None
    assert "permission denied" in ended.error


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("#!/no/such/interpreter\necho hi\n", "the interpreter on its #! line is not installed"),
        ("\x7fELF not really\n", "not an executable file"),
    ],
)
def test_executables_that_cannot_run_say_why(
    supervisor: Supervisor, workdir: Path, run_id: str, text: str, expected: str
) -> None:
    tool = workdir / "tool"
    tool.write_text(text)
    tool.chmod(0o755)
    ended = run(supervisor, spec(workdir, run_id, "tool", (str(tool),)))
    assert ended.exit_code is None
    assert ended.error is not None
    assert ended.error.startswith(f"cannot run {tool}: {expected}")


def test_the_log_folder_is_created(supervisor: Supervisor, workdir: Path, run_id: str) -> None:
    process = spec(workdir, run_id, "deep", ("echo", "x"), log_path=workdir / "a" / "b" / "deep.log")
    assert run(supervisor, process).exit_code == 0
    assert process.log_path.read_text() == "x\n"


# -- deadlines and trees ----------------------------------------------------------------------


def test_timeout_stops_a_tree_that_ignores_sigterm(
    supervisor: Supervisor, workdir: Path, run_id: str
) -> None:
    process = spec(workdir, run_id, "stubborn", ("bash", "-c", 'trap "" TERM; sleep 300 & wait'), timeout=1)
    began = time.monotonic()
    ended = run(supervisor, process)
    elapsed = time.monotonic() - began
    assert ended.timed_out
    assert ended.exit_code == 124
    assert not ended.cancelled
    assert 1 + supervisor.grace <= elapsed < 8
    assert no_survivors(run_id)


@pytest.mark.slow
def test_timeout_with_the_default_grace_ends_well_under_eight_seconds(workdir: Path, run_id: str) -> None:
    with Supervisor() as supervisor:
        process = spec(
            workdir, run_id, "stubborn", ("bash", "-c", 'trap "" TERM; sleep 300 & wait'), timeout=1
        )
        began = time.monotonic()
        ended = run(supervisor, process)
    assert ended.exit_code == 124
    assert time.monotonic() - began < 7
    assert no_survivors(run_id)


def test_timeout_reaches_grandchildren_and_setsid_daemons(
    supervisor: Supervisor, workdir: Path, run_id: str
) -> None:
    # A grandchild, a daemon in its own session whose parent is gone (only the marker finds it),
    # and one still under its parent.
    script = "sleep 300 & (setsid sleep 301 &); setsid sleep 302 & sleep 0.1; echo ready; wait"
    process = spec(workdir, run_id, "tree", ("bash", "-c", script), timeout=1.0)
    with Supervisor(grace=2.0) as patient:
        ended = run(patient, process)
    assert ended.timed_out
    assert process.log_path.read_text() == "ready\n"
    assert no_survivors(run_id)


def test_a_tree_that_obeys_sigterm_does_not_wait_for_the_grace(workdir: Path, run_id: str) -> None:
    with Supervisor(grace=MAX_GRACE) as supervisor:
        process = spec(
            workdir, run_id, "obedient", ("bash", "-c", "sleep 300 & sleep 301 & wait"), timeout=0.2
        )
        began = time.monotonic()
        ended = run(supervisor, process)
    assert ended.exit_code == 124
    assert time.monotonic() - began < MAX_GRACE / 2
    assert no_survivors(run_id)


def test_a_child_that_ignores_sigterm_is_killed_after_the_grace(
    supervisor: Supervisor, workdir: Path, run_id: str
) -> None:
    # The leader dies of SIGTERM; its child does not.
    script = '(trap "" TERM; exec sleep 300); echo after'
    process = spec(workdir, run_id, "ignorer", ("sh", "-c", script), timeout=0.3)
    began = time.monotonic()
    ended = run(supervisor, process)
    elapsed = time.monotonic() - began
    assert ended.exit_code == 124
    assert elapsed >= 0.3 + supervisor.grace  # the grace was given before SIGKILL
    assert elapsed < 0.3 + supervisor.grace + 2
    assert no_survivors(run_id)


def test_steps_without_deadline_are_not_stopped_by_others(
    supervisor: Supervisor, workdir: Path, run_id: str
) -> None:
    supervisor.start(spec(workdir, run_id, "slow", ("sh", "-c", "sleep 0.6; echo done"), timeout=None))
    supervisor.start(spec(workdir, run_id, "short", ("sleep", "30"), timeout=0.1))
    ended = finish_all(supervisor)
    assert ended["short"].timed_out
    assert ended["slow"].exit_code == 0
    assert not ended["slow"].timed_out
    assert ended["short"].finished < ended["slow"].finished


# -- cancellation ---------------------------------------------------------------------------


def test_cancel_all_stops_every_tree(supervisor: Supervisor, workdir: Path, run_id: str) -> None:
    for key in ("one", "two", "three"):
        supervisor.start(spec(workdir, run_id, key, ("bash", "-c", "sleep 300 & wait")))
    supervisor.cancel_all()
    ended = finish_all(supervisor)
    assert sorted(ended) == ["one", "three", "two"]
    assert all(event.cancelled and not event.timed_out for event in ended.values())
    assert all(event.exit_code == 128 + signal.SIGTERM for event in ended.values())
    assert no_survivors(run_id)


def test_cancel_all_leaves_a_step_that_has_ended_as_it_ended(
    supervisor: Supervisor, workdir: Path, run_id: str
) -> None:
    supervisor.start(spec(workdir, run_id, "keep", ("sh", "-c", "echo kept")))
    supervisor.start(spec(workdir, run_id, "drop", ("sleep", "300")))
    kept = supervisor.wait()
    assert [event.key for event in kept] == ["keep"]
    supervisor.cancel_all()
    ended = finish_all(supervisor)
    assert list(ended) == ["drop"]
    assert ended["drop"].cancelled
    assert isinstance(kept[0], Exited)
    assert kept[0].exit_code == 0
    assert not kept[0].cancelled


def test_kill_all_now_does_not_wait_for_the_grace(workdir: Path, run_id: str) -> None:
    with Supervisor(grace=MAX_GRACE) as supervisor:
        supervisor.start(spec(workdir, run_id, "stubborn", ("bash", "-c", 'trap "" TERM; sleep 300 & wait')))
        supervisor.start(spec(workdir, run_id, "pause", ("sleep", "0.2")))
        assert [event.key for event in supervisor.wait()] == ["pause"]  # by now the trap is set
        supervisor.cancel_all()
        began = time.monotonic()
        supervisor.kill_all_now()
        ended = finish_all(supervisor)
    assert ended["stubborn"].cancelled
    assert ended["stubborn"].exit_code == 128 + signal.SIGKILL
    assert time.monotonic() - began < MAX_GRACE / 2
    assert no_survivors(run_id)


def test_closing_kills_what_still_runs(workdir: Path, run_id: str) -> None:
    with Supervisor(grace=0.5) as supervisor:
        supervisor.start(spec(workdir, run_id, "left", ("bash", "-c", "sleep 300 & wait")))
    assert supervisor.running == 0
    assert no_survivors(run_id)


def test_reap_leftovers_stops_daemons_of_passing_steps(
    supervisor: Supervisor, workdir: Path, run_id: str
) -> None:
    ended = run(
        supervisor, spec(workdir, run_id, "daemon", ("bash", "-c", "(setsid sleep 300 &); echo started"))
    )
    assert ended.exit_code == 0
    assert len(survivors(run_id)) == 1
    assert supervisor.reap_leftovers(run_id) == 1
    assert no_survivors(run_id)
    assert supervisor.reap_leftovers(run_id) == 0


def test_grace_is_at_most_five_seconds() -> None:
    with Supervisor(grace=60) as supervisor:
        assert supervisor.grace == MAX_GRACE


# -- masking and streaming ------------------------------------------------------------------


def test_masks_hide_values_across_chunk_boundaries(
    supervisor: Supervisor, workdir: Path, run_id: str
) -> None:
    # 300 KB in odd-sized writes: the 64 KiB reads cut the values in many places.
    writer = "import sys\nfor i in range(20000):\n    sys.stdout.write(f'{i} s3cret-value ')\n"
    process = spec(workdir, run_id, "masked", (PY, "-c", writer), masks=("s3cret-value", "", "other"))
    assert run(supervisor, process).exit_code == 0
    log = process.log_path.read_bytes()
    assert b"s3cret" not in log
    assert log.count(b"***") == 20000
    assert log.startswith(b"0 *** 1 *** ")


def test_on_output_gets_the_masked_stream(workdir: Path, run_id: str) -> None:
    chunks: list[tuple[str, bytes]] = []
    with Supervisor(grace=0.5, on_output=lambda key, chunk: chunks.append((key, chunk))) as supervisor:
        process = spec(
            workdir, run_id, "stream", ("sh", "-c", "echo token=abc123; echo done >&2"), masks=("abc123",)
        )
        run(supervisor, process)
    assert {key for key, _ in chunks} == {"stream"}
    assert b"".join(chunk for _, chunk in chunks) == b"token=***\ndone\n"
    assert process.log_path.read_bytes() == b"token=***\ndone\n"


def test_piped_output_keeps_memory_bounded(supervisor: Supervisor, workdir: Path, run_id: str) -> None:
    writer = "import sys\nblock = b'x' * 65536\nfor _ in range(1600):\n    sys.stdout.buffer.write(block)\n"
    process = spec(workdir, run_id, "big", (PY, "-c", writer), masks=("never-printed",))
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert run(supervisor, process).exit_code == 0
    assert process.log_path.stat().st_size == 1600 * 65536  # 100 MiB
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before
    assert grown_kib < 32 * 1024


@given(
    text=st.text(alphabet="abcx", max_size=60),
    cuts=st.lists(st.integers(min_value=0, max_value=60), max_size=6),
    masks=st.lists(st.text(alphabet="abc", min_size=4, max_size=6), min_size=1, max_size=3),
)
def test_masking_in_chunks_equals_masking_at_once(text: str, cuts: list[int], masks: list[str]) -> None:
    data = text.encode()
    whole = Masker(tuple(masks))
    expected = whole.feed(data) + whole.flush()
    masker = Masker(tuple(masks))
    points = [0, *sorted(cut for cut in cuts if cut <= len(data)), len(data)]
    pieces = [masker.feed(data[start:end]) for start, end in itertools.pairwise(points)]
    assert b"".join(pieces) + masker.flush() == expected
    assert not any(mask.encode() in expected for mask in masks if "*" not in mask)


def test_masking_prefers_the_longest_value() -> None:
    masker = Masker(("abcd", "abcdef"))
    assert masker.feed(b"xabcdefy abcd abcde") + masker.flush() == b"x***y *** ***e"


def test_masking_holds_back_only_a_tail_that_begins_a_value() -> None:
    masker = Masker(("s3cret-value",))
    assert masker.feed(b"line one\n") == b"line one\n"  # nothing a value begins with
    assert masker.feed(b"token s3cr") == b"token "  # may be the value: held
    assert masker.feed(b"et-value and s") == b"*** and "
    assert masker.feed(b"o on\n") == b"so on\n"


# -- signals --------------------------------------------------------------------------------

SIGNAL_SCRIPT = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    from ci_orchestrator.run.supervisor import Supervisor
    from ci_orchestrator.run.fresh_thread import on_fresh_thread
    from ci_orchestrator.run.events import ProcessSpec, Signalled

    work, run_id, where = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
    env = dict(os.environ, CI_ORCHESTRATOR_RUN_ID=run_id, CI_ORCHESTRATOR_STEP_ID="long")

    def loop(supervisor):
        code = 0
        supervisor.start(ProcessSpec(key="long", argv=("sleep", "300"), cwd=work, env=env,
                                     log_path=work / "long.log", timeout=None))
        print("waiting", flush=True)
        while supervisor.running:
            for event in supervisor.wait():
                if isinstance(event, Signalled):
                    print("signalled", event.signum, flush=True)
                    code = 128 + event.signum
                    supervisor.cancel_all()
                else:
                    print("exited", event.key, event.cancelled, flush=True)
        return code

    with Supervisor(grace=0.5) as supervisor:
        if where == "thread":
            code = on_fresh_thread(lambda: loop(supervisor), name="loop")
        else:
            code = loop(supervisor)
    restored = signal.getsignal(signal.SIGTERM) is signal.SIG_DFL and signal.set_wakeup_fd(-1) == -1
    print("restored", restored, flush=True)
    sys.exit(code)
    """
)


@pytest.mark.parametrize("where", ["main", "thread"])
def test_sigterm_while_waiting_becomes_an_event(workdir: Path, run_id: str, where: str) -> None:
    """Also when `wait()` runs on another thread than the one that entered the supervisor (as
    the scheduler's loop does): Python runs handlers on the main thread only."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    with subprocess.Popen(
        [PY, "-c", SIGNAL_SCRIPT, str(workdir), run_id, where], stdout=subprocess.PIPE, text=True, env=env
    ) as script:
        assert script.stdout is not None
        assert script.stdout.readline() == "waiting\n"
        script.send_signal(signal.SIGTERM)
        output, _ = script.communicate(timeout=20)
    assert output.splitlines() == [f"signalled {int(signal.SIGTERM)}", "exited long True", "restored True"]
    assert script.returncode == 143
    assert no_survivors(run_id)


def test_handlers_come_back_after_the_context(workdir: Path) -> None:
    before = signal.getsignal(signal.SIGINT)
    with Supervisor(grace=0.5):
        assert signal.getsignal(signal.SIGINT) is not before
    assert signal.getsignal(signal.SIGINT) is before


def test_a_signal_before_wait_is_not_lost(workdir: Path, run_id: str) -> None:
    with Supervisor(grace=0.5) as supervisor:
        supervisor.start(spec(workdir, run_id, "long", ("sleep", "300")))
        os.kill(os.getpid(), signal.SIGHUP)
        events = supervisor.wait()
        assert events[0] == Signalled(signum=signal.SIGHUP)
        supervisor.cancel_all()
        assert finish_all(supervisor)["long"].cancelled


# -- without pidfds (macOS) -------------------------------------------------------------------


def test_works_where_there_are_no_pidfds(monkeypatch: pytest.MonkeyPatch, workdir: Path, run_id: str) -> None:
    monkeypatch.delattr(os, "pidfd_open")
    with Supervisor(grace=0.5) as supervisor:
        supervisor.start(spec(workdir, run_id, "ok", ("sh", "-c", "exit 4")))
        supervisor.start(spec(workdir, run_id, "late", ("bash", "-c", "sleep 300 & wait"), timeout=0.2))
        ended = finish_all(supervisor)
    assert ended["ok"].exit_code == 4
    assert ended["late"].timed_out
    assert no_survivors(run_id)


# -- build_argv -------------------------------------------------------------------------------


def argv_of(
    workdir: Path, *, shell: str = "bash", run: str | None = "echo hi", **given: object
) -> tuple[str, ...]:
    values: dict[str, object] = {
        "run": run,
        "command": None,
        "script": None,
        "args": (),
        "shell": shell,
        "scratch_dir": workdir / "scratch",
        "name": "build (3.12)",
    }
    values.update(given)
    return build_argv(**values)  # type: ignore[arg-type]


def test_run_scripts_are_written_to_a_file_and_run_like_github(workdir: Path) -> None:
    argv = argv_of(workdir, run="echo hi")
    script = Path(argv[-1])
    assert argv[:-1] == ("bash", "--noprofile", "--norc", "-eo", "pipefail")
    assert script.parent == workdir / "scratch"
    assert script.suffix == ".sh"
    assert script.read_text() == "echo hi\n"
    assert set(script.name) <= set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")


@pytest.mark.parametrize(
    ("shell", "expected", "suffix"),
    [
        ("sh", ("sh", "-e", "{0}"), ".sh"),
        ("python", (PY, "{0}"), ".py"),
        ("pwsh", ("pwsh", "-command", ". '{0}'"), ".ps1"),
        ("perl -w {0}", ("perl", "-w", "{0}"), ""),
        ("zsh", ("zsh", "{0}"), ""),
    ],
)
def test_shells(workdir: Path, shell: str, expected: tuple[str, ...], suffix: str) -> None:
    argv = argv_of(workdir, shell=shell)
    script = next(Path(word.strip(". '")) for word in argv if "scratch" in word)
    assert re.fullmatch(r"build_3\.12-[0-9a-f]{8}" + re.escape(suffix), script.name)
    assert argv == tuple(word.replace("{0}", str(script)) for word in expected)


def test_bash_scripts_stop_at_the_first_failure_even_in_a_pipe(
    supervisor: Supervisor, workdir: Path, run_id: str
) -> None:
    argv = argv_of(workdir, run="echo one\nfalse | cat\necho two\n")
    process = spec(workdir, run_id, "strict", argv)
    assert run(supervisor, process).exit_code == 1
    assert process.log_path.read_text() == "one\n"


def test_python_run_scripts_use_this_python(supervisor: Supervisor, workdir: Path, run_id: str) -> None:
    argv = argv_of(
        workdir, shell="python", run="import sys\nprint(sys.executable, sys.argv[1:])", args=("x",)
    )
    process = spec(workdir, run_id, "py", argv)
    assert run(supervisor, process).exit_code == 0
    assert process.log_path.read_text() == f"{PY} ['x']\n"


def test_names_that_become_alike_get_their_own_files(workdir: Path) -> None:
    first = argv_of(workdir, name="test (3.12)")[-1]
    second = argv_of(workdir, name="test_3.12_")[-1]
    assert first != second


def test_commands_run_without_a_shell(workdir: Path) -> None:
    assert argv_of(workdir, run=None, command=["echo", "$HOME"], args=("x",)) == ("echo", "$HOME", "x")


@pytest.mark.parametrize(
    ("name", "prefix"),
    [
        ("0101_Build.sh", ("bash",)),
        ("0102_Test.py", (PY,)),
        ("0103_Deploy.ps1", ("pwsh", "-NoProfile", "-NonInteractive", "-File")),
        ("0104_Tool", ()),
    ],
)
def test_scripts_run_by_extension(workdir: Path, name: str, prefix: tuple[str, ...]) -> None:
    argv = argv_of(workdir, run=None, script=f"scripts/{name}", args=("--fast",))
    assert argv == (*prefix, str(workdir / "scripts" / name), "--fast")


def test_exactly_one_of_run_command_script(workdir: Path) -> None:
    with pytest.raises(ValueError, match="exactly one"):
        argv_of(workdir, run=None)
    with pytest.raises(ValueError, match="exactly one"):
        argv_of(workdir, run="x", command=["y"])
