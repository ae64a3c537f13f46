"""Ours' run server during the suite: waited for after a warm-up run, stopped before and after.

Outside CI a `ci-orchestrator` command hands itself to a run server of its own context (its key:
interpreter, flags, module path, the package's files...) and, when there is none, starts one in
the background and runs in-process. The suite times ours with the server (what a laptop gets)
and without (`CI_ORCHESTRATOR_SERVER=off`, what a CI job gets); see README.md.

Ours runs as the `ci-orchestrator` command of its own venv (`bench/.peers/ours`, `peers.ours`):
its module path starts with the script's folder, not the working folder, so every timed command
of ours has one key and one server. The module path is part of the key: with the working folder
on it, each folder would have a server of its own, and with the key as of commit deb72bb (a path
entry counted with its time of change) a run that adds or removes a file there (the dag's
`order.log`, the cache's `runs.log`) gave the next run a new key: no run found its server. Where
ours cannot be installed it runs as `python -P -m ci_orchestrator` (`peers.from_snapshot`), `-P`
for the same reason.

The helpers below compute the key of the timed runs: in the timed environment, with ours'
interpreter (the venv's python, or the bench's with ours' flags), and for the command with the
module path the command has (the script's folder first, as Python puts it: symbolic links
resolved). `wait` looks for a server of that key, so a key computed otherwise would show as "no
run server answered". They touch only the server of that key: `server stop` would also end the
servers of this user's other work (other checkouts, tests).
"""

from __future__ import annotations

import os
import subprocess
from typing import TYPE_CHECKING

from bench.timing import environment

if TYPE_CHECKING:
    from bench.peers import Peer

SETTING = "CI_ORCHESTRATOR_SERVER"
ON = {SETTING: "on"}  # explicit: a CI=true in the bench's own environment would mean off
OFF = {SETTING: "off"}
# Loading everything takes the server well under a second on a calm machine.
WAIT_SECONDS = 20.0

_NO_SERVER = 3
_SCRIPT = """\
import sys, time
if sys.argv[3]:
    sys.path[0] = sys.argv[3]  # for `python -c`, the working folder; for the command, its folder
try:
    from ci_orchestrator.server import control, identity
except ImportError:
    sys.exit(3)
action, seconds = sys.argv[1], float(sys.argv[2])
key = identity.key()
def ours():
    return [found for found in control.listening() if found.key == key]
if action == "stop":
    for found in ours():
        control.stop(found)
deadline = time.monotonic() + seconds
while bool(ours()) != (action == "wait"):
    if time.monotonic() > deadline:
        sys.exit(1)
    time.sleep(0.02)
"""


def helper_argv(ours: Peer, action: str, seconds: float) -> list[str]:
    """The argv of the helper: `python -c`, with ours' interpreter and flags (they are in the key)
    and, for the installed command, the module path starting where the command's does."""
    if "-m" in ours.argv:  # python [flags] -m ci_orchestrator: `-P` leaves no entry to replace
        return [*ours.argv[: ours.argv.index("-m")], "-c", _SCRIPT, action, str(seconds), ""]
    script_folder = os.path.dirname(os.path.realpath(ours.argv[0]))
    return [ours.python, "-c", _SCRIPT, action, str(seconds), script_folder]


def _call(ours: Peer, action: str, seconds: float) -> int:
    # The helper itself must neither use a server nor start one.
    env = environment({**ours.env, **OFF})
    argv = helper_argv(ours, action, seconds)
    done = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, capture_output=True, check=False)
    return done.returncode


def wait(ours: Peer, seconds: float = WAIT_SECONDS) -> str:
    """Wait until ours' run server answers; why it does not, or "".

    After ours' warm-up run, which started the server and ran in-process meanwhile: the first timed
    run would otherwise find it still loading and run in-process too (a run with its start-up
    counted in a row meant to be without). Polling for the server itself is simpler and surer than
    guessing how many extra warm-up runs a busy machine needs.
    """
    code = _call(ours, "wait", seconds)
    if code == _NO_SERVER:
        return "this version of ci-orchestrator has no run server"
    return f"no run server answered {seconds:.0f} s after the warm-up" if code else ""


def stop(ours: Peer, seconds: float = WAIT_SECONDS) -> str:
    """Stop ours' run server (the one of the timed context) and wait until it is gone."""
    code = _call(ours, "stop", seconds)
    if code == _NO_SERVER:
        return ""
    return f"ours' run server was still there {seconds:.0f} s after `stop`" if code else ""
