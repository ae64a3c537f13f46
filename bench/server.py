"""Ours' run server during the suite: waited for after a warm-up run, stopped before and after.

Outside CI a `ci-orchestrator` command hands itself to a run server of its own context (its key:
interpreter, flags, module path, the package's files...) and, when there is none, starts one in
the background and runs in-process. The suite times ours with the server (what a laptop gets)
and without (`CI_ORCHESTRATOR_SERVER=off`, what a CI job gets); see README.md.

Ours runs as `python -P -m ci_orchestrator`: `-P` leaves the working folder off the module path,
as the installed `ci-orchestrator` command does (its path starts with the folder of the script),
so every timed command of ours has one key and one server. The module path is part of the key:
with the working folder on it, each folder would have a server of its own, and with the key as of
commit deb72bb (a path entry counted with its time of change) a run that adds or removes a file
there (the dag's `order.log`, the cache's `runs.log`) gave the next run a new key: no run found
its server.

The helpers below run in the timed environment, with ours' interpreter and flags, so the key they
compute is the one of the timed runs. They touch only the server of that key: `server stop`
would also end the servers of this user's other work (other checkouts, tests).
"""

from __future__ import annotations

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


def _call(ours: Peer, action: str, seconds: float) -> int:
    interpreter = ours.argv[: ours.argv.index("-m")]  # with ours' flags: they are in the key
    argv = [*interpreter, "-c", _SCRIPT, action, str(seconds)]
    env = environment(OFF)  # the helper itself must neither use a server nor start one
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
