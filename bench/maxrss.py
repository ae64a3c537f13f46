"""Run ci-orchestrator in this very process, then write its peak resident memory to a file.

`python bench/maxrss.py OUT ARGS...` is `ci-orchestrator ARGS...` plus, at exit,
`getrusage(RUSAGE_SELF).ru_maxrss` (KiB on Linux) written to OUT. RUSAGE_SELF is this process
alone, all its threads and none of its children, so a step's own memory is not counted. The
output scenario runs it with ours' interpreter: the python of the venv ours is installed in
(`bench/.peers/ours`), so the package and its dependencies are the installed ones.
"""

import resource
import sys
from pathlib import Path

from ci_orchestrator.__main__ import command

target = Path(sys.argv[1])
sys.argv = ["ci-orchestrator", *sys.argv[2:]]
# `command` is what `main` runs before it ends the process on the spot, which would skip this.
try:
    code = command()
finally:
    target.write_text(f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}\n")
sys.exit(code)
