"""Run the benchmark suite and regenerate RESULTS.md: `python bench/run.py [--quick]`.

The full suite takes about ten minutes on two cores. `--quick` (a minute or two) is a smoke
run: 3 rounds, ours, make, go-task and doit only, a 30-step dag at -j 2, scale at 1,000 steps
and 256 MiB of output; it writes `bench/.work/RESULTS-quick.md`.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    # Run as a script: make `bench` and `ci_orchestrator` importable from the checkout.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import peers, report, server, tools
from bench.scenarios import Context, cache, dag, noop, output, scale, startup

SCENARIOS = {
    "noop": noop.run,
    "dag": dag.run,
    "cache": cache.run,
    "startup": startup.run,
    "scale": scale.run,
    "output": output.run,
}
WORK = peers.BENCH / ".work"
QUICK_LEAVES_OUT = ("turbo", "xargs", "parallel")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run in a minute or two")
    parser.add_argument("--only", action="append", choices=sorted(SCENARIOS), help="run only this scenario")
    parser.add_argument("--runs", type=int, help="timed runs after the warm-up (default 5, 3 with --quick)")
    parser.add_argument("--live", action="store_true", help="time the working tree, not the package at HEAD")
    parser.add_argument("--results", type=Path, help="where to write the results page")
    options = parser.parse_args(argv)
    started = time.perf_counter()
    root, source = peers.snapshot(live=options.live)
    found, notes = peers.install(root, source)
    if options.quick:
        # turbo needs minutes for 500 steps; xargs and parallel are the least like us.
        for name in QUICK_LEAVES_OUT:
            found[name] = peers.Peer(name=name, version=found[name].version, missing="left out by --quick")
    context = Context(
        peers=found, work=WORK, runs=options.runs or (3 if options.quick else 5), quick=options.quick
    )
    # Ours' run server: stopped before, so that no server of an earlier sitting serves the timed
    # runs (the first warm-up run of ours starts one), and after, so that none is left running.
    ours = found[tools.OURS]
    notes += [problem for problem in [server.stop(ours)] if problem]
    sections = []
    try:
        for name in options.only or SCENARIOS:
            print(f"[{time.perf_counter() - started:6.1f}s] {name}", flush=True)
            sections.append(SCENARIOS[name](context))
    finally:
        stopped = server.stop(ours)
    notes += [stopped] if stopped else []
    tools.empty_trash()
    elapsed = time.perf_counter() - started
    page = report.render(sections, found, notes=notes, quick=options.quick, elapsed=elapsed)
    default = WORK / "RESULTS-quick.md" if options.quick or options.only else peers.BENCH / "RESULTS.md"
    target = options.results or default
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(page)
    print(f"[{elapsed:6.1f}s] wrote {target}")
    for section in sections:
        for goal in section.targets:
            mark = {True: "met    ", False: "NOT MET", None: "n/a    "}[goal.met]
            print(f"  {mark} {goal.goal}: {goal.measured}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
