"""The benchmark's generators: every tool gets the same jobs, and the checks catch wrong runs."""

from __future__ import annotations

import json
import shutil
import subprocess
from typing import TYPE_CHECKING

import pytest

from bench import report, server, timing, tools, workload
from bench.peers import Peer
from bench.scenarios import Context

if TYPE_CHECKING:
    from pathlib import Path


def test_dag_is_reproducible_and_only_needs_earlier_layers(tmp_path: Path) -> None:
    first, second = workload.dag(tmp_path), workload.dag(tmp_path)
    assert first == second
    assert len(first.jobs) == 60
    layer_of = {name: index for index, layer in enumerate(first.layers) for name in layer}
    for job in first.jobs:
        assert 0.05 <= job.seconds <= 0.3
        assert all(layer_of[need] < layer_of[job.id] for need in job.needs)
        assert len(job.needs) in ((0,) if layer_of[job.id] == 0 else (1, 2, 3))


def test_bound_is_the_larger_of_critical_path_and_work_per_slot() -> None:
    chain = workload.Workload(
        name="chain",
        jobs=(
            workload.Job(id="a", command="true", seconds=1.0),
            workload.Job(id="b", command="true", needs=("a",), seconds=2.0),
            workload.Job(id="c", command="true", seconds=0.5),
        ),
        layers=(("a", "c"), ("b",)),
    )
    assert workload.bound(chain, 1) == pytest.approx(3.5)
    assert workload.bound(chain, 4) == pytest.approx(3.0)


def test_order_check_accepts_spliced_lines_and_catches_a_step_started_too_early(tmp_path: Path) -> None:
    work = workload.dag(tmp_path, count=12)
    log = tmp_path / "order.log"
    right = "".join(f"start {job.id}\nend {job.id}\n" for job in work.jobs)
    log.write_text(right.replace("\nend", "end", 1))  # two writes of one line spliced by another
    assert workload.check_order(work, log) == ""
    late = next(job for job in work.jobs if job.needs)
    events = [line for line in right.splitlines() if line != f"start {late.id}"]
    log.write_text(f"start {late.id}\n" + "\n".join(events) + "\n")
    assert "started before" in workload.check_order(work, log)


def test_cache_check_counts_which_steps_ran(tmp_path: Path) -> None:
    work = workload.cache(tmp_path, 4)
    workload.write_inputs(tmp_path, work)
    for job in work.jobs:
        subprocess.run(["sh", "-c", job.command], check=True)
    assert workload.check_cache(work, tmp_path, {job.id for job in work.jobs}) == ""
    (tmp_path / "runs.log").unlink()
    changed = workload.change_inputs(tmp_path, work, 2, 1)
    assert len(set(changed)) == 2
    assert "stale" in workload.check_cache(work, tmp_path, set())


@pytest.mark.parametrize("tool", list(tools.WRITERS))
def test_every_tool_gets_every_job(tool: str, tmp_path: Path) -> None:
    folder = tmp_path / tool
    work = workload.cache(folder, 3)
    tools.write(tool, work, folder, cache=True)
    text = "\n".join(path.read_text() for path in folder.rglob("*") if path.is_file())
    for job in work.jobs:
        assert job.command in text or json.dumps(job.command) in text


def test_our_playbook_declares_needs_inputs_and_outputs(tmp_path: Path) -> None:
    work = workload.cache(tmp_path, 2)
    tools.write(tools.OURS, work, tmp_path, cache=True)
    text = (tmp_path / "playbook.yml").read_text()
    assert "execution: parallel" in text
    assert 'inputs: ["in/0.txt"]' in text
    assert 'outputs: ["out/1.txt"]' in text


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_and_xargs_run_a_small_dag_in_a_valid_order(tmp_path: Path) -> None:
    for tool, argv in (("make", ["make", "-s", "-j", "3", "all"]), ("xargs", ["sh", "run.sh", "3"])):
        folder = tmp_path / tool
        work = workload.dag(folder, count=6, layers=3)
        work = workload.Workload(
            name=work.name,
            jobs=tuple(
                workload.Job(
                    id=job.id, command=job.command.replace(f"sleep {job.seconds}", "true"), needs=job.needs
                )
                for job in work.jobs
            ),
            layers=work.layers,
        )
        tools.write(tool, work, folder)
        subprocess.run(argv, cwd=folder, check=True, capture_output=True)
        assert workload.check_order(work, folder / "order.log") == ""


def test_old_work_is_moved_aside_during_timing_and_deleted_at_the_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tools, "TRASH", tmp_path / "trash")
    folder = tmp_path / "noop" / "ci-orchestrator"
    tools.write("ci-orchestrator", workload.noop(count=3), folder)
    (folder / ".ci-orchestrator" / "logs").mkdir(parents=True)
    tools.write("ci-orchestrator", workload.noop(count=3), folder)  # a second sitting
    assert not (folder / ".ci-orchestrator").exists()
    [old] = (tmp_path / "trash").iterdir()
    assert (old / ".ci-orchestrator" / "logs").is_dir()  # moved, not deleted yet
    tools.empty_trash()
    assert not (tmp_path / "trash").exists()
    assert (folder / "playbook.yml").is_file()


def test_a_case_s_environment_is_the_timed_one_with_its_own_on_top(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CI", "true")
    monkeypatch.setenv("CI_ORCHESTRATOR_SERVER", "off")
    monkeypatch.setenv("CI_ORCHESTRATOR_JOBS", "7")
    assert "CI" not in timing.environment()
    assert not any(name.startswith("CI_ORCHESTRATOR") for name in timing.environment())
    assert timing.environment(server.ON)["CI_ORCHESTRATOR_SERVER"] == "on"
    waited: list[str] = []

    def ready() -> str:
        waited.append("after the warm-up")
        return "no run server answered"

    case = timing.Case(
        name="ours",
        argv=["sh", "-c", 'test "$CI_ORCHESTRATOR_SERVER" = on && test -z "$CI_ORCHESTRATOR_JOBS"'],
        cwd=tmp_path,
        env=server.ON,
        ready=ready,
    )
    [timed] = timing.compare([case], runs=2, log_folder=tmp_path / "logs").values()
    assert timed.ok, timed.wrong
    assert len(timed.seconds) == 2
    assert waited == ["after the warm-up"]  # once, untimed
    assert report.verdict(timed) == "ok (2 runs); no run server answered"


def test_ours_is_timed_with_its_run_server_and_without(tmp_path: Path) -> None:
    peers = {
        tools.OURS: Peer(name=tools.OURS, argv=("python", "-P", "-m", "ci_orchestrator"), version="1.0"),
        "make": Peer(name="make", argv=("make",), version="4.3"),
        "doit": Peer(name="doit", missing="not installed"),
    }
    context = Context(peers=peers, work=tmp_path, runs=1, quick=True)
    rows = context.rows(no_server=True)
    assert [(row.name, row.folder, dict(row.env)) for row in rows] == [
        (tools.OURS, tools.OURS, {"CI_ORCHESTRATOR_SERVER": "on"}),
        (tools.OURS_NO_SERVER, "ci-orchestrator-no-server", {"CI_ORCHESTRATOR_SERVER": "off"}),
        ("make", "make", {}),
    ]
    assert [row.name for row in context.rows()] == [tools.OURS, "make"]
    assert context.row_peers[tools.OURS_NO_SERVER].version == "1.0"

    timings = {
        name: timing.Timing(name=name, seconds=[median])
        for name, median in ((tools.OURS, 0.1), (tools.OURS_NO_SERVER, 0.2), ("make", 0.05))
    }
    table = report.timing_rows(timings, context.row_peers, reference=tools.OURS, also=tools.OURS_NO_SERVER)
    assert [row[4:6] for row in table] == [("1.00", "0.50"), ("2.00", "1.00"), ("0.50", "0.25")]
    assert len(table[0]) == len(report.BOTH_HEADER) + 1  # and the check


def test_ours_runs_as_its_installed_command_and_the_server_key_is_computed_as_it_would(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTHONPATH", "/somewhere/else")
    assert "PYTHONPATH" not in timing.environment()  # it would come before the installed package
    script = tmp_path / "ours" / "bin" / "ci-orchestrator"
    script.parent.mkdir(parents=True)
    script.write_text("")
    (tmp_path / "link").symlink_to(script.parent)
    installed = Peer(
        name=tools.OURS, argv=(str(tmp_path / "link" / "ci-orchestrator"),), python="/v/bin/python"
    )
    argv = server.helper_argv(installed, "wait", 1.0)
    # `python -c` with the module path of the command: its folder (links resolved) first.
    assert (argv[:2], argv[3:]) == (["/v/bin/python", "-c"], ["wait", "1.0", str(script.parent)])

    snapshot = {"PYTHONPATH": "/snapshot"}
    fallback = Peer(name=tools.OURS, argv=("python", "-P", "-m", "ci_orchestrator"), env=snapshot)
    argv = server.helper_argv(fallback, "stop", 2.0)
    assert (argv[:3], argv[4:]) == (["python", "-P", "-c"], ["stop", "2.0", ""])
    context = Context(peers={tools.OURS: fallback}, work=tmp_path, runs=1, quick=True)
    assert [dict(row.env) for row in context.rows(no_server=True)] == [
        {**snapshot, "CI_ORCHESTRATOR_SERVER": "on"},
        {**snapshot, "CI_ORCHESTRATOR_SERVER": "off"},
    ]
