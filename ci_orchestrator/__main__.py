"""`python -m ci_orchestrator` and the `ci-orchestrator` command.

`--version` is answered before the CLI loads: start-up time matters in CI.
"""

from __future__ import annotations

import gc
import sys


def main() -> None:
    # Most of what a command allocates it keeps to the end (the playbook, the plan, results):
    # collecting every 700 new objects only walks them again (~8 ms a run). In batches of
    # 50,000 a run of hours still frees its garbage cycles.
    gc.set_threshold(50_000, 20, 20)
    if sys.argv[1:] == ["--version"]:
        from ci_orchestrator import __version__

        sys.stdout.write(f"ci-orchestrator {__version__}\n")
        return
    if sys.argv[1:2] in (["run"], ["repro"]):
        from ci_orchestrator.orphans import adopt_orphans

        # This process exists for the steps it starts: what they leave behind becomes its
        # child, and the end of the run asks the kernel whether anything is left.
        adopt_orphans()
    from ci_orchestrator import cli

    try:
        cli.main()
    finally:
        # Everything still alive goes with the process: the collections run while the
        # interpreter shuts down would only walk it all first (15-30 ms after a run).
        gc.freeze()


if __name__ == "__main__":
    main()
