"""`python -m ci_orchestrator` and the `ci-orchestrator` command.

`--version` is answered before the CLI loads: start-up time matters in CI. Outside CI a command
is handed to a run server that has everything loaded already (`server/`), when there is one.
"""

from __future__ import annotations

# Before anything else is loaded (the C module: nothing to load), so that from here on SIGINT,
# SIGTERM and SIGHUP end the process with 128 + the signal's number, not killed by it (`main`
# hands them to `interrupts`); an ignored one stays ignored (`nohup`). SIGCHLD left ignored by a
# parent gets its default back before any child is started (see `interrupts.install`).
import _signal
import os


def _signalled(signum: int, _frame: object) -> None:
    os._exit(128 + signum)  # nothing is under way yet, nor written


for _signum in (_signal.SIGINT, _signal.SIGTERM, _signal.SIGHUP):
    if _signal.getsignal(_signum) is not _signal.SIG_IGN:
        _signal.signal(_signum, _signalled)
if _signal.getsignal(_signal.SIGCHLD) is _signal.SIG_IGN:
    _signal.signal(_signal.SIGCHLD, _signal.SIG_DFL)

import gc  # noqa: E402
import sys  # noqa: E402


def main() -> None:
    """The `ci-orchestrator` command: runs it, then ends the process with its exit code."""
    try:
        if sys.argv[1:] == ["--version"]:
            from ci_orchestrator import __version__

            sys.stdout.write(f"ci-orchestrator {__version__}\n")
            return
        from ci_orchestrator.run import interrupts

        interrupts.install()
        from ci_orchestrator.server.client import run_on_server

        code = run_on_server(sys.argv)
        if code is None:
            code = command()
    except SystemExit as exit:
        code = _status(exit.code)
    from ci_orchestrator.run import interrupts

    # Without the interpreter's shutdown: a signal during it would kill the process or print a
    # traceback (Python puts the default handlers back part way through), and its collections
    # would only walk what goes with the process anyway (15-30 ms after a run).
    interrupts.end(code)


def command() -> int:
    """The command `sys.argv` names, run to its exit code."""
    # Most of what a command allocates it keeps to the end (the playbook, the plan, results):
    # collecting every 700 new objects only walks them again (~8 ms a run). In batches of
    # 50,000 a run of hours still frees its garbage cycles.
    gc.set_threshold(50_000, 20, 20)
    from ci_orchestrator.run import interrupts

    # First thing (a run server's worker comes here straight): a signal during start-up ends
    # the process with its exit code (143 for SIGTERM), not with a traceback or by the signal.
    interrupts.install()
    _open_closed_streams()
    _whole_writes()
    if sys.argv[1:2] in (["run"], ["repro"]):
        from ci_orchestrator.run.orphans import adopt_orphans

        # This process exists for the steps it starts: what they leave behind becomes its
        # child, and the end of the run asks the kernel whether anything is left.
        adopt_orphans()
    try:
        from ci_orchestrator import cli

        cli.main()
    except SystemExit as exit:
        return _status(exit.code)
    finally:
        # Everything still alive goes with the process: a collection would only walk it first.
        gc.freeze()
    return 0


def _open_closed_streams() -> None:
    """A console closed before start (`>&-`, `2>&-`) writes to /dev/null: the run and its
    reports matter more than what it would have shown. Python leaves such a stream None."""
    for fd, name in ((1, "stdout"), (2, "stderr")):
        if getattr(sys, name) is None:
            null = os.open(os.devnull, os.O_WRONLY)  # the lowest free descriptor: this one
            if null != fd:
                os.dup2(null, fd)
                os.close(null)
            setattr(sys, name, open(fd, "w", encoding="utf-8", closefd=False))  # noqa: SIM115


def _whole_writes() -> None:
    """stdout and stderr write all of each text, also when Python runs unbuffered (`python -u`,
    PYTHONUNBUFFERED, which many CI images set).

    Unbuffered, the text layer hands its bytes to the file itself and never looks at how many
    were taken: a write to a full pipe that a signal cuts short loses the rest without a word
    (CPython issue 85393), a piece of a step's log, two lines glued into one. Such signals come:
    a step's exit (SIGCHLD) while the step loop starts another with signals blocked, a stop and
    continue. A buffered layer writes the rest; flushed at each line and each flush, the text
    still reaches the reader as it is written."""
    import _io  # the interpreter's own, loaded already

    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if isinstance(stream, _io.TextIOWrapper) and isinstance(stream.buffer, _io.FileIO):
            buffered = _io.TextIOWrapper(
                _io.BufferedWriter(stream.buffer),
                encoding=stream.encoding,
                errors=stream.errors,
                newline="\n",  # as the interpreter's own: written as they are
                line_buffering=True,
                write_through=True,
            )
            setattr(sys, name, buffered)


def _status(code: object) -> int:
    """The exit status `sys.exit(code)` gives: None is 0, a message is printed and 1."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


if __name__ == "__main__":
    main()
