"""The run server as a user meets it outside CI, with real processes and signals: a command leaves
a server behind and the next one like it runs there, with the output, exit code and reports it
would have had in its own process, in the client's directory, environment, umask and signals; a
signal to the client reaches the run; a killed client stops its run; another context gets another
server; a server stops on SIGTERM or `server stop`; a stale socket or a folder others could write
to never stops a command.

Whether a command was served shows in its step's parent: the client itself when it ran in-process,
else a worker whose parent is the server. Every server a test starts is stopped at its end."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import pty
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import pytest

from ci_orchestrator import __version__
from ci_orchestrator.server.client import ANSWER_SECONDS
from ci_orchestrator.server.runtime import at_socket
from tests.helpers import (
    REPO,
    assert_143_and_quiet,
    cli_environment,
    early_sigterms,
    entry_points,
    start_cli,
    table_rows,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="pidfds and /proc")

T = TypeVar("T")

PLAYBOOK = """\
name: p
steps:
  - id: greet
    run: echo "hello $WHO"; echo "to stderr" >&2
  - id: where
    run: |
      echo $PPID > parent
      awk '/^PPid:/ {print $2}' /proc/$PPID/status > grandparent
"""
FAILING = """\
name: f
steps:
  - id: fine
    run: echo fine
  - id: broken
    run: |
      echo $PPID > parent
      awk '/^PPid:/ {print $2}' /proc/$PPID/status > grandparent
      echo "it broke" >&2
      exit 3
  - id: after
    needs: [broken]
    run: echo never
"""
CONTEXT = """\
name: c
steps:
  - id: context
    run: |
      echo $PPID > parent
      awk '/^PPid:/ {print $2}' /proc/$PPID/status > grandparent
      pwd
      echo "token=$TOKEN"
      umask
      grep -E '^Sig(Ign|Blk):' /proc/self/status
"""
SLEEPER = """\
name: s
steps:
  - id: sleeper
    run: |
      echo $PPID > parent
      awk '/^PPid:/ {print $2}' /proc/$PPID/status > grandparent
      echo $$ > step.pid
      exec sleep 300
"""
GATED = """\
name: g
steps:
  - id: gated
    run: |
      echo $PPID > parent
      awk '/^PPid:/ {print $2}' /proc/$PPID/status > grandparent
      echo $$ > step.pid
      while [ ! -e go ]; do sleep 0.05; done
      echo "it broke" >&2
      exit 3
"""
CODES = [(signal.SIGTERM, 143), (signal.SIGINT, 130)]
IDS = ["SIGTERM", "SIGINT"]

# A client in a context of its own: umask, signals ignored and blocked, then the command.
IN_CONTEXT = textwrap.dedent(
    """
    import os, signal, sys
    umask, ignored, blocked, *command = sys.argv[1:]
    os.umask(int(umask, 8))
    for name in filter(None, ignored.split(",")):
        signal.signal(getattr(signal, name), signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_BLOCK, [getattr(signal, n) for n in filter(None, blocked.split(","))])
    os.execv(command[0], command)
    """
)


def in_context(*, umask: str = "022", ignored: str = "", blocked: str = "") -> tuple[str, ...]:
    """The launcher of a client in that context."""
    return (sys.executable, "-c", IN_CONTEXT, umask, ignored, blocked)


def wait_for(condition: Callable[[], T | None], what: str, seconds: float = 60) -> T:
    """The first true value of `condition`, asked until `seconds` have passed."""
    deadline = time.monotonic() + seconds
    while not (value := condition()):
        assert time.monotonic() < deadline, f"still waiting for {what} after {seconds} s"
        time.sleep(0.01)
    return value


def wait_gone(pid: int, what: str, seconds: float = 60) -> None:
    wait_for(lambda: not alive(pid), f"{what} to end", seconds)


def alive(pid: int) -> bool:
    """Whether process `pid` runs (a zombie has ended)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def listening_pid(sock: Path) -> int | None:
    """The pid of the server listening on `sock`; None when nothing listens there."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
        try:
            at_socket(str(sock), connection.connect)
        except OSError:
            return None
        credentials = connection.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12)
    return int.from_bytes(credentials[:4], "little")


def signal_mask(text: str, name: str) -> int:
    """The SigIgn or SigBlk mask a step printed."""
    found = re.search(rf"^{name}:\s*([0-9a-f]+)$", text, re.MULTILINE)
    assert found, text
    return int(found[1], 16)


def bit(signum: int) -> int:
    return 1 << (signum - 1)


def normal(text: str) -> str:
    """`text` without what differs from one run to the next: run ids, times, durations."""
    text = re.sub(r"\d{8}T\d{6}-[0-9a-f]{6}", "RUN-ID", text)
    text = re.sub(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z?", "TIME", text)
    text = re.sub(r"\b\d{13}\b", "MILLISECONDS", text)
    return re.sub(r"\d+\.\d+", "N", text)


@dataclass(frozen=True, slots=True, kw_only=True)
class Done:
    """A command that ended, and where its step ran (see `Servers.run`)."""

    pid: int
    code: int
    out: str
    err: str
    parent: int | None  # the step's parent: the client, or a server's worker
    grandparent: int | None  # the worker's parent: its server

    @property
    def in_process(self) -> bool:
        return self.parent == self.pid

    @property
    def server(self) -> int | None:
        """The pid of the server that ran the command, None when it ran in its own process."""
        assert self.parent is not None, "no step said where it ran"
        return None if self.in_process else self.grandparent


@dataclass(slots=True, kw_only=True)
class Servers:
    """Commands run as a user runs them, from `work`, with run servers in `runtime`."""

    work: Path
    runtime: Path
    package: Path
    started: list[subprocess.Popen[str]] = field(default_factory=list)
    steps: list[int] = field(default_factory=list)

    @property
    def folder(self) -> Path:
        return self.runtime / "ci-orchestrator"

    def env(self, **extra: str) -> dict[str, str]:
        env = cli_environment(self.work)
        env.update(
            PYTHONPATH=str(self.package), XDG_RUNTIME_DIR=str(self.runtime), CI_ORCHESTRATOR_SERVER="on"
        )
        env.update(extra)
        return env

    def start(
        self,
        *args: str,
        env: dict[str, str] | None = None,
        launcher: tuple[str, ...] = (),
        stderr: int = subprocess.PIPE,
    ) -> subprocess.Popen[str]:
        for name in ("parent", "grandparent", "step.pid"):
            (self.work / name).unlink(missing_ok=True)
        process = start_cli(
            self.work,
            *args,
            env=self.env() if env is None else env,
            launcher=launcher,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            errors="replace",
        )
        self.started.append(process)
        return process

    def finish(self, process: subprocess.Popen[str], timeout: float = 120) -> Done:
        out, err = process.communicate(timeout=timeout)
        return Done(
            pid=process.pid,
            code=process.returncode,
            out=out,
            err=err,
            parent=self._number("parent"),
            grandparent=self._number("grandparent"),
        )

    def run(
        self,
        *args: str,
        env: dict[str, str] | None = None,
        launcher: tuple[str, ...] = (),
        timeout: float = 120,
    ) -> Done:
        return self.finish(self.start(*args, env=env, launcher=launcher), timeout=timeout)

    def _number(self, name: str) -> int | None:
        path = self.work / name
        return int(path.read_text()) if path.exists() else None

    def step_pid(self) -> int:
        """The pid of the step that wrote step.pid, once it has."""
        path = self.work / "step.pid"
        pid = wait_for(
            lambda: int(path.read_text()) if path.exists() and path.read_text().strip() else None,
            "the step to start",
        )
        self.steps.append(pid)
        return pid

    def sockets(self) -> list[Path]:
        return sorted(self.folder.glob("*.sock")) if self.folder.is_dir() else []

    def wait_for_sockets(self, count: int) -> list[Path]:
        return wait_for(
            lambda: found if len(found := self.sockets()) == count else None, f"{count} server socket(s)"
        )

    def start_server(self) -> tuple[Path, int]:
        """A server for this test's context, started by a first command: its socket and pid."""
        (self.work / "p.yml").write_text(PLAYBOOK)
        first = self.run("run", "p.yml")
        assert first.code == 0, first.err
        assert first.in_process
        (sock,) = self.wait_for_sockets(1)
        pid = listening_pid(sock)
        assert pid is not None
        return sock, pid

    def reports(self) -> dict[str, str]:
        folder = self.work / ".ci-orchestrator" / "reports"
        return {name: normal((folder / name).read_text()) for name in ("run.json", "junit.xml", "summary.md")}

    def record(self) -> dict[str, object]:
        """The run record of the last run, without its times."""
        path = self.work / ".ci-orchestrator" / "reports" / "run.json"
        record = json.loads(path.read_text())
        return {
            "status": record["status"],
            "interrupted_by": record["interrupted_by"],
            "steps": [(step["id"], step["status"], step["exit_code"]) for step in record["steps"]],
        }


def _processes_of(folder: Path) -> list[int]:
    """The servers and workers whose folder is in `folder` (their command line names it), and
    the steps whose script is."""
    mark = os.path.join(folder, "").encode()
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                command = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if mark in command and alive(int(entry.name)):
                found.append(int(entry.name))
    return found


@pytest.fixture(scope="session")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The package as the commands import it: a copy, since a server's key takes in the package's
    files, and a file of the working tree saved while the tests run would start a second one."""
    root = tmp_path_factory.mktemp("package")
    shutil.copytree(
        REPO / "ci_orchestrator", root / "ci_orchestrator", ignore=shutil.ignore_patterns("__pycache__")
    )
    return root


@pytest.fixture
def servers(workdir: Path, tmp_path: Path, package: Path) -> Iterator[Servers]:
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    # What the steps print on the console too: the tests compare it with and without a server.
    (workdir / "ci-orchestrator.toml").write_text('output = "grouped"\n')
    found = Servers(work=workdir, runtime=runtime, package=package)
    yield found
    for process in found.started:
        if process.poll() is None:
            process.kill()
            process.wait()
    for pid in found.steps:
        if alive(pid) and Path(f"/proc/{pid}/cmdline").read_bytes().startswith(b"sleep"):
            os.kill(pid, signal.SIGKILL)
    # Every server and worker still there gets SIGTERM: a worker stops its run, a server ends.
    left = _processes_of(tmp_path)
    for pid in left:
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 30
    while (left := [pid for pid in left if alive(pid)]) and time.monotonic() < deadline:
        time.sleep(0.01)
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    for process in found.started:
        process.communicate()  # what is left in its pipes, which its worker held open until now
    assert not left, f"processes still there 30 s after SIGTERM: {left}"


# A command leaves a server behind; the next runs there as it would have run by itself.


def test_a_command_leaves_a_server_and_the_next_runs_there_as_it_would_by_itself(servers: Servers) -> None:
    (servers.work / "p.yml").write_text(PLAYBOOK)
    # An earlier run: each run below compares itself with the one before, as alike as they are.
    servers.run("run", "p.yml", env=servers.env(CI_ORCHESTRATOR_SERVER="off", WHO="world"))
    alone = servers.run("run", "p.yml", env=servers.env(CI_ORCHESTRATOR_SERVER="off", WHO="world"))
    assert alone.code == 0, alone.err
    assert alone.in_process
    assert "hello world" in alone.out
    expected = (alone.code, normal(alone.out), normal(alone.err), servers.reports())

    first = servers.run("run", "p.yml", env=servers.env(WHO="world"))
    assert first.in_process  # no server yet: the command ran in its own process, and started one
    assert (first.code, normal(first.out), normal(first.err), servers.reports()) == expected
    (sock,) = servers.wait_for_sockets(1)

    second = servers.run("run", "p.yml", env=servers.env(WHO="world"))
    assert second.server == listening_pid(sock)
    assert (second.code, normal(second.out), normal(second.err), servers.reports()) == expected


def test_a_failing_step_exits_1_with_the_output_it_has_by_itself(servers: Servers) -> None:
    servers.start_server()
    (servers.work / "f.yml").write_text(FAILING)
    # An earlier run: each run below compares itself with the one before, as alike as they are.
    servers.run("run", "f.yml", env=servers.env(CI_ORCHESTRATOR_SERVER="off"))
    alone = servers.run("run", "f.yml", env=servers.env(CI_ORCHESTRATOR_SERVER="off"))
    assert alone.code == 1
    assert "it broke" in alone.out + alone.err
    expected = (normal(alone.out), normal(alone.err), servers.reports())
    served = servers.run("run", "f.yml")
    assert served.server is not None
    assert served.code == 1
    assert (normal(served.out), normal(served.err), servers.reports()) == expected


def _imports(stderr: str) -> tuple[list[str], str]:
    """The modules a process imported itself (PYTHONPROFILEIMPORTTIME), and the rest of stderr."""
    imported, rest = [], []
    for line in stderr.splitlines(keepends=True):
        if line.startswith("import time:"):
            imported.append(line.rpartition("|")[2].strip())
        else:
            rest.append(line)
    return imported, "".join(rest)


@pytest.mark.parametrize(
    "args",
    [["run", "p.yml", "--no-such-option"], ["run", "missing.yml"], ["frobnicate"]],
    ids=["unknown option", "missing playbook", "unknown command"],
)
def test_a_usage_error_exits_2_with_the_message_it_has_by_itself(servers: Servers, args: list[str]) -> None:
    """No step runs: the served client shows itself by what it did not import (the CLI)."""
    env = servers.env(PYTHONPROFILEIMPORTTIME="1")
    (servers.work / "p.yml").write_text(PLAYBOOK)
    assert servers.run("run", "p.yml", env=env).in_process
    servers.wait_for_sockets(1)
    alone = servers.run(*args, env={**env, "CI_ORCHESTRATOR_SERVER": "off"})
    served = servers.run(*args, env=env)
    alone_imports, alone_err = _imports(alone.err)
    served_imports, served_err = _imports(served.err)
    assert "ci_orchestrator.cli" in alone_imports
    assert "ci_orchestrator.cli" not in served_imports  # the server's worker ran the command
    assert alone.code == 2
    assert alone_err.strip()
    assert (served.code, served.out, served_err) == (alone.code, alone.out, alone_err)


# The worker takes on the client's context.


def test_the_run_takes_on_the_clients_directory_environment_umask_and_signals(servers: Servers) -> None:
    servers.start_server()  # by a client with another environment, umask and signals
    (servers.work / "c.yml").write_text(CONTEXT)
    # Ignored as by `nohup`, a shell's background job and a job-control shell; a step inherits
    # SIGQUIT and SIGTTOU (SIGHUP the run handles itself while steps run, as SIGINT and SIGTERM).
    client = in_context(umask="027", ignored="SIGHUP,SIGQUIT,SIGTTOU", blocked="SIGUSR1")
    alone = servers.run(
        "run",
        "c.yml",
        launcher=client,
        env=servers.env(CI_ORCHESTRATOR_SERVER="off", TOKEN="this-client-only"),
    )
    assert alone.code == 0, alone.err
    assert alone.in_process
    assert f"{servers.work}\ntoken=this-client-only\n0027\n" in alone.out
    inherited = bit(signal.SIGQUIT) | bit(signal.SIGTTOU)
    assert signal_mask(alone.out, "SigIgn") & inherited == inherited
    assert signal_mask(alone.out, "SigBlk") & bit(signal.SIGUSR1)

    served = servers.run("run", "c.yml", launcher=client, env=servers.env(TOKEN="this-client-only"))
    assert served.server is not None
    assert (served.code, normal(served.out), normal(served.err)) == (
        alone.code,
        normal(alone.out),
        normal(alone.err),
    )


def test_a_server_started_by_a_client_that_ignores_or_blocks_signals_serves_others_as_themselves(
    servers: Servers,
) -> None:
    """The first client ignores SIGINT and SIGQUIT (a shell's background job) and blocks SIGCHLD:
    none of it is the next clients', and the server still hears of its workers' ends."""
    (servers.work / "c.yml").write_text(CONTEXT)
    first = servers.run("run", "c.yml", launcher=in_context(ignored="SIGINT,SIGQUIT", blocked="SIGCHLD"))
    assert first.code == 0, first.err
    assert first.in_process
    assert signal_mask(first.out, "SigIgn") & bit(signal.SIGQUIT)
    (sock,) = servers.wait_for_sockets(1)

    alone = servers.run("run", "c.yml", env=servers.env(CI_ORCHESTRATOR_SERVER="off"))
    assert not signal_mask(alone.out, "SigIgn") & bit(signal.SIGQUIT)
    served = servers.run("run", "c.yml", timeout=60)
    assert served.server == listening_pid(sock)
    assert (served.code, normal(served.out)) == (alone.code, normal(alone.out))


WRAPPED = """\
name: w
steps:
  - id: shows
    run: |
      echo $PPID > parent
      awk '/^PPid:/ {{print $2}}' /proc/$PPID/status > grandparent
      {shows}
"""


@pytest.mark.parametrize(
    ("wrapper", "shows", "servers_wanted"),
    [
        (["ionice", "-c3"], "ionice -p $$", 1),  # the worker takes it on
        (["chrt", "--idle", "0"], "chrt -p $$ | cut -d: -f2", 2),  # a server of its own
        (["chrt", "--batch", "0"], "chrt -p $$ | cut -d: -f2", 2),
        (["setarch", "-R"], "cat /proc/self/personality", 2),
    ],
    ids=["ionice -c3", "chrt --idle", "chrt --batch", "setarch -R"],
)
def test_the_io_priority_scheduling_policy_and_personality_are_the_clients(
    servers: Servers, wrapper: list[str], shows: str, servers_wanted: int
) -> None:
    """What a forked worker would otherwise have from its server: the run sees what it would
    have seen by itself, the first time and the next (served, once a server of its kind is
    there)."""
    if shutil.which(wrapper[0]) is None:
        pytest.skip(f"no {wrapper[0]} here")
    default_sock, _ = servers.start_server()
    (servers.work / "w.yml").write_text(WRAPPED.format(shows=shows))
    launcher = tuple(wrapper)
    alone = servers.run("run", "w.yml", launcher=launcher, env=servers.env(CI_ORCHESTRATOR_SERVER="off"))
    assert alone.code == 0, alone.err
    plain = servers.run("run", "w.yml", env=servers.env(CI_ORCHESTRATOR_SERVER="off"))
    assert normal(plain.out) != normal(alone.out)  # the wrapper shows, or the test shows nothing
    expected = (alone.code, normal(alone.out), normal(alone.err))
    first = servers.run("run", "w.yml", launcher=launcher)
    assert (first.code, normal(first.out), normal(first.err)) == expected
    servers.wait_for_sockets(servers_wanted)
    again = servers.run("run", "w.yml", launcher=launcher)
    assert again.server is not None
    assert (again.code, normal(again.out), normal(again.err)) == expected
    assert servers.run("run", "w.yml").server == listening_pid(default_sock)


def test_a_client_started_with_sigchld_ignored_has_its_failures_reported(servers: Servers) -> None:
    """The worker would take the client's ignored SIGCHLD on, and read no exit status."""
    servers.start_server()
    (servers.work / "f.yml").write_text(FAILING)
    launcher = in_context(ignored="SIGCHLD")
    alone = servers.run("run", "f.yml", launcher=launcher, env=servers.env(CI_ORCHESTRATOR_SERVER="off"))
    served = servers.run("run", "f.yml", launcher=launcher)
    assert alone.in_process
    assert served.server is not None
    assert (alone.code, served.code) == (1, 1), served.out
    assert normal(served.out) == normal(alone.out)


def test_a_descriptor_the_first_command_inherited_is_not_kept_open_by_its_server(servers: Servers) -> None:
    """A parent that reads a pipe until its end (the command's, and only its) is not held up."""
    (servers.work / "p.yml").write_text(PLAYBOOK)
    read, write = os.pipe()
    try:
        command = start_cli(
            servers.work, "run", "p.yml", env=servers.env(), stdout=subprocess.DEVNULL, pass_fds=(write,)
        )
        os.close(write)
        assert command.wait(timeout=120) == 0
        servers.wait_for_sockets(1)
        readable, _, _ = select.select([read], [], [], 30)
        assert readable, "the pipe is still open 30 s after the command ended"
        assert os.read(read, 1) == b""
    finally:
        os.close(read)


# Signals to the client reach the run.


@pytest.mark.parametrize(("signum", "code"), CODES, ids=IDS)
def test_a_signal_to_the_client_stops_the_run_as_it_would_by_itself(
    servers: Servers, signum: signal.Signals, code: int
) -> None:
    servers.start_server()
    (servers.work / "s.yml").write_text(SLEEPER)
    outcomes = []
    for env in (servers.env(CI_ORCHESTRATOR_SERVER="off"), servers.env()):
        client = servers.start("run", "s.yml", env=env)
        step = servers.step_pid()
        client.send_signal(signum)
        done = servers.finish(client, timeout=60)
        assert done.code == code, done.err
        assert "Traceback" not in done.err
        wait_gone(step, "the step", seconds=10)
        outcomes.append((done, servers.record()))
    (alone, alone_record), (served, served_record) = outcomes
    assert alone.in_process
    assert served.server is not None
    assert alone_record["status"] == "cancelled"
    assert served_record == alone_record


def test_a_killed_client_stops_its_run_and_the_server_serves_on(servers: Servers) -> None:
    sock, pid = servers.start_server()
    (servers.work / "s.yml").write_text(SLEEPER)
    client = servers.start("run", "s.yml")
    step = servers.step_pid()
    assert int((servers.work / "parent").read_text()) != client.pid  # a worker of the server runs it
    client.kill()
    client.wait()
    wait_gone(step, "the step", seconds=10)
    record = servers.work / ".ci-orchestrator" / "reports" / "run.json"
    wait_for(
        lambda: record.exists() and json.loads(record.read_text())["playbook"] == "s", "the run's record"
    )
    assert servers.record()["status"] == "cancelled"

    assert listening_pid(sock) == pid
    again = servers.run("run", "p.yml")
    assert again.code == 0
    assert again.server == pid


@pytest.mark.slow
def test_a_sigterm_in_the_first_fraction_of_a_second_gives_143_every_time(servers: Servers) -> None:
    """In the client before it hands the command over, during the handshake, in the worker
    before the command handles signals, or in the run: 143, never a death by the signal."""
    _, pid = servers.start_server()
    (servers.work / "l.yml").write_text("name: l\nsteps:\n  - id: a\n    run: sleep 30\n")
    ended = early_sigterms(entry_points("run", "l.yml"), cwd=servers.work, env=servers.env(), runs=40)
    assert_143_and_quiet(ended)
    assert servers.run("run", "p.yml").server == pid


# A server that does not answer holds up no command.


@contextmanager
def held_up(sock: Path) -> Iterator[None]:
    """Another client that connects and then says next to nothing: a byte every half second,
    never a whole request."""
    done = threading.Event()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as idle:
        at_socket(str(sock), idle.connect)
        idle.sendall((1000).to_bytes(4, "big"))  # the length of a request that never comes

        def drip() -> None:
            for _ in range(240):
                if done.wait(0.5):
                    return
                with contextlib.suppress(OSError):
                    idle.sendall(b"\0")

        dripping = threading.Thread(target=drip)
        dripping.start()
        try:
            yield
        finally:
            done.set()
            dripping.join()


@contextmanager
def stopped(pid: int) -> Iterator[None]:
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


def connected(pid: int) -> bool:
    """Whether process `pid` has a socket open: the client, once it has reached its server."""
    try:
        return any(os.readlink(fd).startswith("socket:") for fd in Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return False


def test_a_client_held_up_by_another_is_served_all_the_same(servers: Servers) -> None:
    sock, pid = servers.start_server()
    with held_up(sock):
        done = servers.run("run", "p.yml", timeout=60)
    assert done.code == 0, done.err
    assert done.server == pid


def test_a_stopped_server_has_the_command_run_by_itself_in_a_bounded_time(servers: Servers) -> None:
    sock, pid = servers.start_server()
    with stopped(pid):
        started = time.monotonic()
        done = servers.run("run", "p.yml", timeout=60)
        took = time.monotonic() - started
    assert done.code == 0, done.err
    assert done.in_process
    assert "the run server did not answer" in done.err
    assert "hello" in done.out
    assert took >= ANSWER_SECONDS  # it did wait for the server, that long and no longer
    assert listening_pid(sock) == pid


@pytest.mark.parametrize("how", ["stopped", "held up by another client"])
def test_a_sigterm_to_a_client_waiting_for_its_server_ends_it_at_once(servers: Servers, how: str) -> None:
    """What would run for a minute ends with 143 in a fraction of that, and never starts."""
    sock, pid = servers.start_server()
    (servers.work / "m.yml").write_text("name: m\nsteps:\n  - id: a\n    run: touch started; sleep 60\n")
    with stopped(pid) if how == "stopped" else held_up(sock):
        client = servers.start("run", "m.yml")
        wait_for(lambda: connected(client.pid), "the client to reach its server")
        signalled = time.monotonic()
        client.send_signal(signal.SIGTERM)
        done = servers.finish(client, timeout=60)
        took = time.monotonic() - signalled
    assert done.code == 143, done.err
    assert "Traceback" not in done.err
    assert took < 60 / 5
    if how == "stopped":
        assert not (servers.work / "started").exists()


def test_a_run_ends_with_its_code_while_its_server_is_stopped(servers: Servers) -> None:
    """The worker tells its client how it ended: a server stopped meanwhile holds up no one."""
    _, pid = servers.start_server()
    (servers.work / "g.yml").write_text(GATED)
    client = servers.start("run", "g.yml")
    servers.step_pid()
    with stopped(pid):
        (servers.work / "go").touch()
        done = servers.finish(client, timeout=60)
    assert done.code == 1  # the step failed
    assert "it broke" in done.out + done.err
    assert done.server == pid


@pytest.mark.parametrize(("signum", "code"), CODES, ids=IDS)
def test_a_signal_reaches_the_run_while_its_server_is_stopped(
    servers: Servers, signum: signal.Signals, code: int
) -> None:
    _, pid = servers.start_server()
    (servers.work / "s.yml").write_text(SLEEPER)
    client = servers.start("run", "s.yml")
    step = servers.step_pid()
    with stopped(pid):
        client.send_signal(signum)
        done = servers.finish(client, timeout=60)
        wait_gone(step, "the step", seconds=10)
    assert done.code == code, done.err
    assert done.server == pid
    assert servers.record()["status"] == "cancelled"


# Which commands use a server, and which server.


@pytest.mark.parametrize(
    "setting",
    [
        {"CI": "true"},
        {"GITHUB_ACTIONS": "true"},
        {"CI_ORCHESTRATOR_SERVER": "off"},
        {"CI_ORCHESTRATOR_SERVER": "0"},
    ],
    ids=["CI", "GitHub Actions", "off", "0"],
)
def test_no_server_under_ci_or_when_turned_off(servers: Servers, setting: dict[str, str]) -> None:
    (servers.work / "p.yml").write_text(PLAYBOOK)
    env = servers.env()
    del env["CI_ORCHESTRATOR_SERVER"]
    env.update(setting)
    for _ in range(2):
        done = servers.run("run", "p.yml", env=env)
        assert done.code == 0, done.err
        assert done.in_process
    assert not servers.folder.exists()  # not even the folder a server would need for its lock


def test_on_gives_a_server_under_ci_too(servers: Servers) -> None:
    (servers.work / "p.yml").write_text(PLAYBOOK)
    env = servers.env(CI="true")
    assert servers.run("run", "p.yml", env=env).in_process
    (sock,) = servers.wait_for_sockets(1)
    assert servers.run("run", "p.yml", env=env).server == listening_pid(sock)


@pytest.mark.parametrize(
    ("name", "one", "other"), [("PYTHONHASHSEED", "1", "2"), ("TERMINAL_WIDTH", "80", "120")]
)
def test_another_context_gets_another_server_and_the_same_context_the_same(
    servers: Servers, name: str, one: str, other: str
) -> None:
    (servers.work / "p.yml").write_text(PLAYBOOK)
    first_env, second_env = servers.env(**{name: one}), servers.env(**{name: other})
    assert servers.run("run", "p.yml", env=first_env).in_process
    (first_sock,) = servers.wait_for_sockets(1)
    first = listening_pid(first_sock)

    assert servers.run("run", "p.yml", env=second_env).in_process  # no server of its kind yet
    (second_sock,) = set(servers.wait_for_sockets(2)) - {first_sock}
    second = listening_pid(second_sock)
    assert second not in (None, first)

    assert servers.run("run", "p.yml", env=first_env).server == first
    assert servers.run("run", "p.yml", env=second_env).server == second
    assert servers.run("run", "p.yml", env=first_env).server == first
    assert len(servers.sockets()) == 2


def test_a_change_to_the_code_gets_a_new_server(servers: Servers, tmp_path: Path) -> None:
    servers.package = tmp_path / "code"
    shutil.copytree(
        REPO / "ci_orchestrator",
        servers.package / "ci_orchestrator",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    old_sock, old = servers.start_server()
    with (servers.package / "ci_orchestrator" / "playbook" / "model.py").open("a") as source:
        source.write("\n# edited\n")
    assert servers.run("run", "p.yml").in_process
    (new_sock,) = set(servers.wait_for_sockets(2)) - {old_sock}
    assert servers.run("run", "p.yml").server == listening_pid(new_sock) != old


# A server stops; a stale socket or an unsafe folder does not stop a command.


@pytest.mark.parametrize("how", ["SIGTERM", "server stop"])
def test_a_stopped_server_removes_its_socket_and_the_next_command_starts_a_new_one(
    servers: Servers, how: str
) -> None:
    sock, pid = servers.start_server()
    if how == "SIGTERM":
        os.kill(pid, signal.SIGTERM)
    else:
        stop = servers.run("server", "stop")
        assert (stop.code, stop.out) == (0, f"stopped the run server of this context (pid {pid})\n")
    wait_for(lambda: not sock.exists(), "the socket to go")
    wait_gone(pid, "the server")

    again = servers.run("run", "p.yml")
    assert again.code == 0
    assert again.in_process
    wait_for(lambda: listening_pid(sock) not in (None, pid), "a new server")
    assert servers.run("run", "p.yml").server == listening_pid(sock)


def test_a_server_stopped_during_a_command_lets_new_commands_run_at_once(servers: Servers) -> None:
    """Its socket goes at once; it ends once the command it runs has ended."""
    sock, pid = servers.start_server()
    (servers.work / "s.yml").write_text(SLEEPER)
    running = servers.start("run", "s.yml")
    servers.step_pid()
    os.kill(pid, signal.SIGTERM)
    wait_for(lambda: not sock.exists(), "the socket to go")

    meanwhile = servers.run("run", "p.yml", timeout=60)
    assert meanwhile.code == 0
    assert meanwhile.in_process
    assert running.poll() is None  # still running: the new command did not wait for it
    assert alive(pid)

    running.send_signal(signal.SIGTERM)
    assert servers.finish(running, timeout=60).code == 143
    wait_gone(pid, "the server, its last command over,")


def test_a_stale_socket_does_not_stop_a_command_and_a_new_server_replaces_it(servers: Servers) -> None:
    sock, pid = servers.start_server()
    os.kill(pid, signal.SIGKILL)
    wait_gone(pid, "the server")
    assert sock.exists()
    assert listening_pid(sock) is None

    done = servers.run("run", "p.yml")
    assert done.code == 0, done.err
    assert done.in_process
    new = wait_for(lambda: listening_pid(sock), "a new server on the socket")
    assert new != pid
    assert servers.run("run", "p.yml").server == new


@pytest.mark.parametrize("unsafe", ["group-writable", "world-writable", "another user's"])
def test_a_folder_that_is_not_the_users_alone_is_not_used(servers: Servers, unsafe: str) -> None:
    servers.folder.mkdir(mode=0o700)
    if unsafe == "group-writable":
        servers.folder.chmod(0o770)
    elif unsafe == "world-writable":
        servers.folder.chmod(0o1777)
    elif os.getuid() == 0:
        os.chown(servers.folder, 65534, 65534)
    else:
        pytest.skip("giving a folder to another user takes root")
    (servers.work / "p.yml").write_text(PLAYBOOK)
    for _ in range(2):
        done = servers.run("run", "p.yml")
        assert done.code == 0, done.err
        assert done.in_process
        assert "hello" in done.out
    assert list(servers.folder.iterdir()) == []


def test_a_runtime_folder_deeper_than_a_socket_address_holds_works(servers: Servers, tmp_path: Path) -> None:
    servers.runtime = tmp_path / ("deep-" * 20) / "runtime"
    servers.runtime.mkdir(mode=0o700, parents=True)
    assert len(str(servers.folder / f"{'0' * 32}.sock")) > 108
    sock, pid = servers.start_server()
    assert servers.run("run", "p.yml").server == pid
    os.kill(pid, signal.SIGTERM)
    wait_for(lambda: not sock.exists(), "the socket to go")


# What a user sees of servers: a word when one starts, `server status` and `server stop`.


def on_terminal(servers: Servers, *args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    """`args` run with stderr on a terminal (stdout a pipe): the exit code and what stderr showed."""
    master, slave = pty.openpty()
    try:
        process = servers.start(*args, env=env, stderr=slave)
    finally:
        os.close(slave)
    shown = b""
    with contextlib.suppress(OSError):  # EIO once no process holds the terminal any more
        while chunk := os.read(master, 4096):
            shown += chunk
    os.close(master)
    process.communicate(timeout=120)
    return process.returncode, shown.decode("utf-8", "replace").replace("\r\n", "\n")


def test_a_server_start_is_said_once_on_a_terminal_with_how_to_stop_it(servers: Servers) -> None:
    (servers.work / "p.yml").write_text(PLAYBOOK)
    code, said = on_terminal(servers, "run", "p.yml")
    assert code == 0
    (sock,) = servers.wait_for_sockets(1)
    pid = listening_pid(sock)
    assert f"ci-orchestrator: started a run server (pid {pid})" in said
    assert "after 30 idle minutes" in said
    assert "`ci-orchestrator server stop` stops it" in said
    assert "CI_ORCHESTRATOR_SERVER=off starts none" in said
    for _ in range(2):  # served: nothing started, nothing said
        code, said = on_terminal(servers, "run", "p.yml")
        assert code == 0
        assert "run server" not in said
    assert servers.run("run", "p.yml").server == pid

    assert servers.run("server", "stop").code == 0
    wait_gone(pid, "the server")
    code, said = on_terminal(servers, "run", "p.yml")  # a new server: said again
    (sock,) = servers.wait_for_sockets(1)
    new = wait_for(lambda: listening_pid(sock), "the new server")
    assert f"started a run server (pid {new})" in said


def test_a_server_start_off_a_terminal_says_nothing(servers: Servers) -> None:
    (servers.work / "p.yml").write_text(PLAYBOOK)
    first = servers.run("run", "p.yml")
    assert first.in_process
    servers.wait_for_sockets(1)
    assert "run server" not in first.err


def status_rows(text: str) -> list[dict[str, str]]:
    """`server status`'s table: a row per server, each cell by its column's header."""
    return table_rows(text.splitlines())


def test_status_shows_each_servers_directory_version_and_idle_time(servers: Servers) -> None:
    (servers.work / "p.yml").write_text(PLAYBOOK)
    one, other = servers.env(PYTHONHASHSEED="1"), servers.env(PYTHONHASHSEED="2")
    assert servers.run("run", "p.yml", env=one).in_process
    (one_sock,) = servers.wait_for_sockets(1)
    assert servers.run("run", "p.yml", env=other).in_process
    (other_sock,) = set(servers.wait_for_sockets(2)) - {one_sock}

    shown = servers.run("server", "status", env=one)
    assert shown.code == 0, shown.err
    rows = status_rows(shown.out)
    assert [row["PID"] for row in rows] == [str(listening_pid(one_sock)), str(listening_pid(other_sock))]
    assert rows[0]["DIRECTORY"] == f"{servers.package / 'ci_orchestrator'}  (this context)"
    assert rows[1]["DIRECTORY"] == str(servers.package / "ci_orchestrator")
    assert {row["VERSION"] for row in rows} == {__version__}
    assert {row["PYTHON"] for row in rows} == {platform.python_version()}
    idle = [float(re.fullmatch(r"idle (\d+\.\d)s", row["STATE"])[1]) for row in rows]  # type: ignore[index]
    time.sleep(1.2)
    # Asking (or connecting and saying nothing, as `listening_pid` does) is no work: idle goes on.
    later = status_rows(servers.run("server", "status", env=one).out)
    assert float(later[0]["STATE"].removeprefix("idle ").removesuffix("s")) >= idle[0] + 1
    assert "use: `server stop` stops it, `server stop --all` every one." in shown.out
    # The other context sees its own first.
    assert status_rows(servers.run("server", "status", env=other).out)[0]["PID"] == rows[1]["PID"]

    (servers.work / "s.yml").write_text(SLEEPER)
    running = servers.start("run", "s.yml", env=one)
    servers.step_pid()
    assert status_rows(servers.run("server", "status", env=one).out)[0]["STATE"] == "running 1 command"
    running.send_signal(signal.SIGTERM)
    assert servers.finish(running).code == 143


def test_stop_stops_this_contexts_server_and_all_of_them_with_all(servers: Servers) -> None:
    (servers.work / "p.yml").write_text(PLAYBOOK)
    one, other = servers.env(PYTHONHASHSEED="1"), servers.env(PYTHONHASHSEED="2")
    third = servers.env(PYTHONHASHSEED="3")
    pids = {}
    for name, env in (("one", one), ("other", other), ("third", third)):
        before = set(servers.sockets())
        assert servers.run("run", "p.yml", env=env).in_process
        (sock,) = set(servers.wait_for_sockets(len(before) + 1)) - before
        pids[name] = wait_for(lambda sock=sock: listening_pid(sock), "the server")

    stopped = servers.run("server", "stop", env=one)
    assert (stopped.code, stopped.out) == (0, f"stopped the run server of this context (pid {pids['one']})\n")
    wait_gone(pids["one"], "this context's server")
    assert alive(pids["other"]) and alive(pids["third"])

    again = servers.run("server", "stop", env=one)
    assert again.code == 0
    assert again.out.startswith("no run server of this context; 2 others of this user")
    assert "`server stop --all`" in again.out

    every = servers.run("server", "stop", "--all", env=one)
    assert (every.code, every.out) == (0, "stopped 2 run servers\n")
    wait_gone(pids["other"], "the other server")
    wait_gone(pids["third"], "the third server")
    assert servers.run("server", "stop", env=one).out == "no run server\n"


HANDING_ON = """\
name: handing-on
steps:
  - id: make
    run: |
      echo "value=from-make" >> "$GITHUB_OUTPUT"
      echo "MADE=yes" >> "$GITHUB_ENV"
      mkdir -p bin && printf '#!/bin/sh\\necho tool $*\\n' > bin/tool && chmod +x bin/tool
      echo "$PWD/bin" >> "$GITHUB_PATH"
  - id: use
    if: ${{ steps.make.outputs.value == 'from-make' }}
    run: echo "got ${{ steps.make.outputs.value }} made=$MADE $(tool ran)"
  - id: where
    run: |
      echo $PPID > parent
      awk '/^PPid:/ {print $2}' /proc/$PPID/status > grandparent
"""


def test_a_served_run_hands_outputs_env_and_path_on_as_a_run_by_itself(servers: Servers) -> None:
    servers.start_server()
    (servers.work / "h.yml").write_text(HANDING_ON)
    served = servers.run("run", "h.yml", "--output", "stream")
    assert served.server is not None
    assert served.code == 0, served.err
    assert "got from-make made=yes tool ran" in served.out
    record = json.loads((servers.work / ".ci-orchestrator" / "reports" / "run.json").read_text())
    assert record["steps"][0]["outputs"] == {"value": "from-make"}


def test_status_says_which_servers_did_not_answer() -> None:
    """A server that says nothing of itself is `no answer`, with a line saying what that means,
    not a row of dashes."""
    from ci_orchestrator.server import control

    found = [
        control.Listening(
            key="a", pid=11, ours=True, version="0.1.0", python="3.12.3", directory="/x", idle=3.0
        ),
        control.Listening(key="b", pid=12, ours=False),
    ]
    lines = control.status_text(found).splitlines()
    assert lines[1].split()[:4] == ["11", "0.1.0", "3.12.3", "idle"]
    assert lines[2].split() == ["12", "-", "-", "no", "answer", "-"]
    assert lines[-1].startswith("No answer: a server that took the connection")

    found.pop()
    assert "No answer" not in control.status_text(found)
