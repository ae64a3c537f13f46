"""The run history and what reads it, end to end through the CLI: `history`, `history show`, the
scheduler's priorities from past durations, and `repro` of a recorded run."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from tests.helpers import cli_environment, repro_record, run_cli

if TYPE_CHECKING:
    from pathlib import Path

MATRIX_PLAYBOOK = """\
name: repro
execution: parallel
vars: {mode: relaxed}
steps:
  - id: build
    run: echo built > built.txt
  - id: test
    needs: [build]
    matrix: {py: ["3.11", "3.12"], os: [linux]}
    run: |
      echo "mode ${{ vars.mode }} py $MATRIX_PY on ${{ matrix.os }}"
      test -f built.txt
      if [ "${{ vars.mode }}" = strict ] && [ "$MATRIX_PY" = 3.12 ]; then exit 4; fi
  - id: lint
    run: |
      echo "lint in ${{ vars.mode }} mode"
      [ "${{ vars.mode }}" != strict ]
  - id: docs
    run: echo docs
"""


def project(folder: Path, playbook: str) -> Path:
    (folder / "playbooks").mkdir(parents=True)
    (folder / "playbooks" / "ci.yml").write_text(playbook, encoding="utf-8")
    return folder


def test_questions_in_an_empty_folder_leave_it_empty(tmp_path: Path) -> None:
    env = cli_environment(CI_ORCHESTRATOR_CACHE_DIR="")
    assert run_cli(tmp_path, "history", env=env).stdout.strip() == "no runs recorded yet"
    missing = run_cli(tmp_path, "history", "show", "20261125T000000-abcdef", env=env)
    assert missing.returncode == 2
    assert "no run '20261125T000000-abcdef' in the history" in missing.stderr
    assert "`ci-orchestrator history` lists the runs" in missing.stderr
    stats = run_cli(tmp_path, "cache", "stats", env=env)
    assert stats.returncode == 0, stats.stderr
    assert "entries  0 (no run has stored anything there yet)" in stats.stdout
    assert list(tmp_path.iterdir()) == []


def record(work: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(
        (work / ".ci-orchestrator" / "reports" / "run.json").read_text(encoding="utf-8")
    )
    return data


def start_order(work: Path) -> list[str]:
    steps = record(work)["steps"]
    return [step["id"] for step in sorted(steps, key=lambda step: step["started"])]


# ------------------------------------------------------------------------------------- history


def test_history_lists_runs_newest_first_and_shows_one(tmp_path: Path) -> None:
    work = project(tmp_path, MATRIX_PLAYBOOK)
    assert run_cli(work, "run", "--output", "quiet").returncode == 0
    passed = record(work)["run_id"]
    assert run_cli(work, "run", "--var", "mode=strict", "--no-fail-fast", "--output", "quiet").returncode == 1
    failed = record(work)["run_id"]

    listing = run_cli(work, "history")
    assert listing.returncode == 0, listing.stderr
    lines = listing.stdout.splitlines()
    assert lines[0].split()[:3] == ["RUN", "PLAYBOOK", "STATUS"]
    rows = [line.split() for line in lines[1:]]
    assert [row[0] for row in rows] == [failed, passed]
    assert [row[2] for row in rows] == ["failed", "passed"]
    assert "2 failed" in lines[1]
    assert "5 passed" in lines[2]

    shown = run_cli(work, "history", "show", failed)
    assert shown.returncode == 0, shown.stderr
    assert failed in shown.stdout
    by_id = {
        line.split("  ")[0].strip(): line
        for line in shown.stdout.splitlines()[2:]
        if line.strip()  # the run line and the column heads come first
    }
    assert set(by_id) == {"build", "test (3.11, linux)", "test (3.12, linux)", "lint", "docs"}
    assert " failed " in by_id["test (3.12, linux)"]
    assert " 4 " in by_id["test (3.12, linux)"]  # the exit code
    assert " passed " in by_id["test (3.11, linux)"]

    newest = run_cli(work, "history", "--limit", "1")
    assert newest.returncode == 0, newest.stderr
    assert [line.split()[0] for line in newest.stdout.splitlines()[1:]] == [failed]
    for limit in ("0", "-1"):
        refused = run_cli(work, "history", f"--limit={limit}")
        assert refused.returncode == 2, refused.stdout
        assert f"--limit must be at least 1, got {limit}" in refused.stderr
        assert not refused.stdout

    prefix = run_cli(work, "history", "show", passed[:-3])
    assert prefix.returncode == 0
    assert passed in prefix.stdout

    unknown = run_cli(work, "history", "show", "no-such-run")
    assert unknown.returncode == 2
    assert "no-such-run" in unknown.stderr


def test_an_empty_history_is_not_an_error(tmp_path: Path) -> None:
    listing = run_cli(project(tmp_path, MATRIX_PLAYBOOK), "history")
    assert listing.returncode == 0, listing.stderr


def test_durations_from_history_start_the_longest_chain_first(tmp_path: Path) -> None:
    # Two chains of two steps each: with no history they tie and plan order decides (`a` first);
    # once the history knows `x` is slow, `x` heads the longest remaining path and goes first.
    work = project(
        tmp_path,
        """\
name: priority
execution: parallel
steps:
  - id: a
    run: sleep 0.05
  - id: a2
    needs: [a]
    run: "true"
  - id: x
    run: sleep 0.6
  - id: x2
    needs: [x]
    run: "true"
""",
    )
    assert run_cli(work, "run", "-j", "1", "--output", "quiet").returncode == 0
    first = start_order(work)
    assert first[0] == "a"
    durations = {step["id"]: step["duration"] for step in record(work)["steps"]}
    assert max(durations, key=durations.__getitem__) == "x"

    assert run_cli(work, "run", "-j", "1", "--output", "quiet").returncode == 0
    second = start_order(work)
    assert second[0] == "x"
    assert second.index("x2") > second.index("x")


# ------------------------------------------------------------------------------------- repro


def test_repro_reruns_the_failed_instances_with_their_matrix_values_and_variables(tmp_path: Path) -> None:
    ci = project(tmp_path / "ci", MATRIX_PLAYBOOK)
    assert run_cli(ci, "run", "--var", "mode=strict", "--no-fail-fast", "--output", "quiet").returncode == 1
    statuses = {step["id"]: step["status"] for step in record(ci)["steps"]}
    assert statuses["test (3.12, linux)"] == "failed"
    assert statuses["lint"] == "failed"

    # A fresh checkout on a laptop with the run record downloaded from CI.
    laptop = project(tmp_path / "laptop", MATRIX_PLAYBOOK)
    downloaded = laptop / "downloads" / "run.json"
    downloaded.parent.mkdir()
    downloaded.write_bytes((ci / ".ci-orchestrator" / "reports" / "run.json").read_bytes())

    rerun = run_cli(laptop, "repro", "downloads/run.json")
    assert rerun.returncode == 1, rerun.stderr
    steps = {step["id"]: step for step in repro_record(laptop, rerun)["steps"]}
    # The failed instances, and what they need (the build), nothing else.
    assert set(steps) == {"build", "test (3.12, linux)", "lint"}
    assert steps["test (3.12, linux)"]["status"] == "failed"
    assert steps["test (3.12, linux)"]["exit_code"] == 4
    assert steps["test (3.12, linux)"]["matrix"] == {"py": "3.12", "os": "linux"}
    log = (laptop / steps["test (3.12, linux)"]["log"]).read_text(encoding="utf-8")
    assert "mode strict py 3.12 on linux" in log  # the recorded --var, not the playbook default
    assert repro_record(laptop, rerun)["vars"] == {"mode": "strict"}

    one = run_cli(laptop, "repro", "downloads/run.json", "lint")
    assert one.returncode == 1, one.stderr
    assert [step["id"] for step in repro_record(laptop, one)["steps"]] == ["lint"]


def test_repro_repeats_a_matrix_value_the_playbook_does_not_list(tmp_path: Path) -> None:
    work = project(tmp_path, MATRIX_PLAYBOOK)
    ran = run_cli(
        work,
        "run",
        "--matrix",
        "py=3.12,3.13",
        "--var",
        "mode=strict",
        "--select",
        "test",
        "--output",
        "quiet",
    )
    assert ran.returncode == 1
    saved = work / "ci.json"
    saved.write_bytes((work / ".ci-orchestrator" / "reports" / "run.json").read_bytes())

    again = run_cli(work, "repro", "ci.json", "test (3.13, linux)")
    assert again.returncode == 0, again.stderr
    steps = {step["id"]: step for step in repro_record(work, again)["steps"]}
    assert set(steps) == {"build", "test (3.13, linux)"}
    assert steps["test (3.13, linux)"]["matrix"] == {"py": "3.13", "os": "linux"}


def test_repro_of_a_passing_instance_passes_and_unknown_ones_are_refused(tmp_path: Path) -> None:
    work = project(tmp_path, MATRIX_PLAYBOOK)
    assert run_cli(work, "run", "--output", "quiet").returncode == 0
    saved = work / "passed.json"
    saved.write_bytes((work / ".ci-orchestrator" / "reports" / "run.json").read_bytes())

    nothing = run_cli(work, "repro", "passed.json")
    assert nothing.returncode == 2
    assert "nothing failed" in nothing.stderr

    one = run_cli(work, "repro", "passed.json", "test (3.11, linux)")
    assert one.returncode == 0, one.stderr
    assert {step["id"] for step in repro_record(work, one)["steps"]} == {"build", "test (3.11, linux)"}

    unknown = run_cli(work, "repro", "passed.json", "test (3.13, linux)")
    assert unknown.returncode == 2
    assert "test (3.13, linux)" in unknown.stderr

    missing = run_cli(work, "repro", "nowhere.json")
    assert missing.returncode == 2
    assert "nowhere.json" in missing.stderr


EXTRAS_PLAYBOOK = """\
name: extras
execution: parallel
fail-fast: false
steps:
  - id: test
    # pip extras and globs as matrix values: ids a selector would read as wildcards
    matrix: {extra: [".[test]", ".t", "[xy]", "x", "a*", "ab", "b?", "bc", "c,d"]}
    run: |
      echo "installing $MATRIX_EXTRA"
      case "$MATRIX_EXTRA" in *[[*?,]*) exit 3 ;; esac
  - id: other
    matrix: {n: [1, 2]}
    run: echo other
"""
FAILING_EXTRAS = {"test (.[test])", "test ([xy])", "test (a*)", "test (b?)", "test (c,d)"}


def test_repro_reruns_exactly_the_failed_ids_that_hold_wildcard_characters(tmp_path: Path) -> None:
    work = project(tmp_path, EXTRAS_PLAYBOOK)
    assert run_cli(work, "run", "--output", "quiet").returncode == 1
    failed = {step["id"] for step in record(work)["steps"] if step["status"] == "failed"}
    assert failed == FAILING_EXTRAS
    saved = work / "ci.json"
    saved.write_bytes((work / ".ci-orchestrator" / "reports" / "run.json").read_bytes())

    again = run_cli(work, "repro", "ci.json")
    assert again.returncode == 1, again.stderr
    steps = {step["id"]: step for step in repro_record(work, again)["steps"]}
    # Each failed instance, and none of those its id would match as a wildcard (`.t`, `x`, `ab`).
    assert set(steps) == FAILING_EXTRAS
    for instance, step in steps.items():
        value = instance[len("test (") : -1]
        assert (work / step["log"]).read_text(encoding="utf-8") == f"installing {value}\n"

    one = run_cli(work, "repro", "ci.json", "test ([xy])")
    assert one.returncode == 1, one.stderr
    assert [step["id"] for step in repro_record(work, one)["steps"]] == ["test ([xy])"]


def test_repro_of_a_step_reruns_its_failed_instances(tmp_path: Path) -> None:
    work = project(tmp_path, EXTRAS_PLAYBOOK)
    assert run_cli(work, "run", "--output", "quiet").returncode == 1
    saved = work / "ci.json"
    saved.write_bytes((work / ".ci-orchestrator" / "reports" / "run.json").read_bytes())

    again = run_cli(work, "repro", "ci.json", "test")
    assert again.returncode == 1, again.stderr
    assert {step["id"] for step in repro_record(work, again)["steps"]} == FAILING_EXTRAS

    passed = run_cli(work, "repro", "ci.json", "other")
    assert passed.returncode == 2
    assert "no instance of step 'other' failed" in passed.stderr
    listed = "'test (.[test])', 'test ([xy])', 'test (a*)', 'test (b?)', 'test (c,d)'"
    assert f"; failed: {listed}" in passed.stderr
    unknown = run_cli(work, "repro", "ci.json", "nothing-like-it")
    assert unknown.returncode == 2
    assert "no instance or step 'nothing-like-it' in this run" in unknown.stderr


CACHED_SETUP = """\
name: setup
steps:
  - id: venv
    inputs: [requirements.txt]
    outputs: [venv/**]
    run: |
      echo run >> venv.runs
      mkdir -p venv && cp requirements.txt venv/installed.txt
  - id: test
    needs: [venv]
    inputs: [requirements.txt]
    run: |
      echo run >> test.runs
      test -f venv/installed.txt
      [ ! -e broken ]
"""


def runs(work: Path, step: str) -> int:
    """How many times `step` ran: each run adds a line to its file."""
    path = work / f"{step}.runs"
    return len(path.read_text().splitlines()) if path.exists() else 0


def test_repro_takes_what_the_failures_need_from_the_cache_and_reruns_the_failures_fresh(
    tmp_path: Path,
) -> None:
    work = project(tmp_path, CACHED_SETUP)
    (work / "requirements.txt").write_text("pytest\n")
    assert run_cli(work, "run").returncode == 0  # both stored in the cache
    assert (runs(work, "venv"), runs(work, "test")) == (1, 1)
    (work / "broken").touch()  # not an input: the test's cached success still matches its key
    failed = run_cli(work, "run", "--select", "test", "--only", "--force")
    assert failed.returncode == 1
    assert (runs(work, "venv"), runs(work, "test")) == (1, 2)
    (work / "ci.json").write_bytes((work / ".ci-orchestrator/reports/run.json").read_bytes())

    again = run_cli(work, "repro", "ci.json")
    assert again.returncode == 1, again.stderr
    # The setup it needs comes from the cache; the failure itself runs, its stored success unused.
    assert (runs(work, "venv"), runs(work, "test")) == (1, 3)
    statuses = {step["id"]: step["status"] for step in repro_record(work, again)["steps"]}
    assert statuses == {"venv": "cached", "test": "failed"}
    assert (work / "venv" / "installed.txt").read_text() == "pytest\n"

    uncached = run_cli(work, "repro", "ci.json", "--no-cache")
    assert uncached.returncode == 1, uncached.stderr
    assert (runs(work, "venv"), runs(work, "test")) == (2, 4)

    (work / "broken").unlink()
    fixed = run_cli(work, "repro", "ci.json")
    assert fixed.returncode == 0, fixed.stderr
    assert (runs(work, "venv"), runs(work, "test")) == (2, 5)


def test_repro_never_overwrites_the_record_it_reads(tmp_path: Path) -> None:
    work = project(tmp_path, MATRIX_PLAYBOOK)
    assert run_cli(work, "run", "--var", "mode=strict", "--no-fail-fast").returncode == 1
    own = work / ".ci-orchestrator/reports/run.json"
    written = own.read_bytes()
    run_id = json.loads(written)["run_id"]

    again = run_cli(work, "repro", ".ci-orchestrator/reports/run.json")
    assert again.returncode == 1, again.stderr
    assert own.read_bytes() == written
    folder = f".ci-orchestrator/reports/repro/{run_id}"
    assert f"reports of this repro: {folder}/ (junit.xml, summary.md, run.json)" in again.stdout
    rerun = repro_record(work, again)
    assert rerun["run_id"] != run_id
    assert {path.name for path in (work / folder).iterdir()} == {"junit.xml", "summary.md", "run.json"}

    # The repro's own record reproduces in turn, into a folder of its own.
    twice = run_cli(work, "repro", f"{folder}/run.json", "lint")
    assert twice.returncode == 1, twice.stderr
    assert repro_record(work, twice)["steps"][0]["id"] == "lint"
    assert f".ci-orchestrator/reports/repro/{rerun['run_id']}/" in twice.stdout

    history = run_cli(work, "history").stdout
    for option in ("--json", "--junit", "--summary"):
        refused = run_cli(work, "repro", ".ci-orchestrator/reports/run.json", option, str(own))
        assert refused.returncode == 2
        assert "the record repro reads, which it never overwrites" in refused.stderr
        assert own.read_bytes() == written
    assert run_cli(work, "history").stdout == history  # nothing ran


def test_a_repro_is_recorded_as_a_selection_so_the_next_run_counts_nothing_as_added(tmp_path: Path) -> None:
    work = project(tmp_path, MATRIX_PLAYBOOK)
    assert run_cli(work, "run", "--var", "mode=strict", "--no-fail-fast").returncode == 1
    again = run_cli(work, "repro", ".ci-orchestrator/reports/run.json", "lint")
    assert again.returncode == 1, again.stderr
    rerun = repro_record(work, again)
    assert rerun["select"] == "lint"

    # The next whole run compares itself with the repro, the newest run: what the repro left out
    # is neither added nor anything else, and what it failed is fixed.
    assert run_cli(work, "run").returncode == 0
    comparison = record(work)["comparison"]
    assert comparison["baseline"]["run_id"] == rerun["run_id"]
    assert comparison["added"] == []
    assert comparison["fixed"] == ["lint"]


def test_repro_of_a_misspelt_id_suggests_one(tmp_path: Path) -> None:
    work = project(tmp_path, MATRIX_PLAYBOOK)
    assert run_cli(work, "run", "--var", "mode=strict", "--no-fail-fast").returncode == 1
    (work / "ci.json").write_bytes((work / ".ci-orchestrator/reports/run.json").read_bytes())
    for asked, suggested in (("tset", "test"), ("test (3.12,linux)", "test (3.12, linux)")):
        done = run_cli(work, "repro", "ci.json", asked)
        assert done.returncode == 2
        assert f"no instance or step {asked!r} in this run (did you mean {suggested!r}?)" in done.stderr
    far = run_cli(work, "repro", "ci.json", "nothing-like-it")
    assert "; failed: 'test (3.12, linux)', 'lint'" in far.stderr
