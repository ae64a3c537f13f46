"""What the engines ci-orchestrator replaces did, done here through the command line as a user runs it:
numbered scripts with metadata headers, settings and profiles, groups, the step environment and
schedules (docs/migrating.md maps each of their features to the test that proves it)."""

from __future__ import annotations

import json
import os
import shutil
import stat
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from ci_orchestrator.cpus import available_cpus
from tests.helpers import FIXTURES, REPO, cli_environment, invoke, listed_steps, run_cli

DATA = FIXTURES / "seeds"
RUN_JSON = ".ci-orchestrator/reports/run.json"


def write(path: Path, text: str, *, executable: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    if executable:
        path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def record() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(Path(RUN_JSON).read_text(encoding="utf-8"))
    return data


def statuses() -> dict[str, str]:
    return {step["id"]: step["status"] for step in record()["steps"]}


def events(path: Path = Path("events.log")) -> dict[str, tuple[float, float]]:
    """step id -> (start, end), as the fixture scripts record them."""
    seen: dict[str, dict[str, float]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        kind, step, when = line.split()
        seen.setdefault(step, {})[kind] = float(when)
    return {step: (times["start"], times["end"]) for step, times in seen.items()}


def overlap(a: tuple[float, float], b: tuple[float, float]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


@pytest.fixture
def scripts_project(workdir: Path) -> Path:
    """The numbered scripts fixture under playbooks/automation-scripts, with a parallel playbook."""
    shutil.copytree(DATA / "scripts", workdir / "playbooks/automation-scripts")
    write(
        workdir / "playbooks/auto.yml",
        """
        name: auto
        execution: parallel
        scripts: automation-scripts
        """,
    )
    return workdir


def plan_ids(*args: str) -> list[str]:
    outcome = invoke("plan", *args, "--format", "json")
    assert outcome.exit_code == 0, outcome.output
    return [instance["id"] for instance in json.loads(outcome.output)["instances"]]


def plan_instances(*args: str) -> dict[str, dict[str, Any]]:
    outcome = invoke("plan", *args, "--format", "json")
    assert outcome.exit_code == 0, outcome.output
    return {instance["id"]: instance for instance in json.loads(outcome.output)["instances"]}


# ---------------------------------------------------------------- numbered scripts


def test_list_shows_number_name_stage_tags_parallel_mode_and_dependencies(scripts_project: Path) -> None:
    outcome = invoke("list", "auto")
    assert outcome.exit_code == 0, outcome.output
    rows = {row: list(cells.values())[:7] for row, cells in listed_steps(outcome.output).items()}
    assert rows["0403"] == ["0403", "0403", "Pester", "Testing", "testing,pester", "exclusive", "0100"]
    assert rows["0401"] == ["0401", "0401", "Lint", "Validation", "validation,fast", "parallel", "0100"]
    assert rows["0450"][-1] == "0402,0403"
    assert rows["0100"][-1] == "-"  # `Dependencies: none`


def test_powershell_notes_block_is_read_as_metadata(workdir: Path) -> None:
    shutil.copytree(DATA / "powershell", workdir / "playbooks/ps")
    write(workdir / "playbooks/ps.yml", "name: ps\nscripts: ps\n")
    instances = plan_instances("ps")
    deploy = instances["0500"]
    assert deploy["needs"] == ["0100"]
    assert deploy["exclusive"] is True
    assert deploy["timeout"] == 900
    assert deploy["stage"] == "Release"
    assert (instances["0100"]["wave"], deploy["wave"]) == (1, 2)
    listed = invoke("list", "ps").output
    assert "release,prod" in listed


def test_select_range_with_exclusion_adds_what_is_needed(scripts_project: Path) -> None:
    assert sorted(plan_ids("auto", "--select", "0400-0499,!0450")) == ["0100", "0401", "0402", "0403", "0404"]
    assert sorted(plan_ids("auto", "--select", "0400-0499,!0450", "--only")) == [
        "0401",
        "0402",
        "0403",
        "0404",
    ]


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("0403", ["0403"]),
        ("04*", ["0401", "0402", "0403", "0404", "0450"]),
        ("0401,0404", ["0401", "0404"]),
        ("stage:Testing", ["0402", "0403", "0450"]),
        ("tag:validation", ["0401", "0404"]),
        ("tag:testing,!tag:slow", ["0402", "0403"]),
        ("!04*", ["0100"]),
    ],
)
def test_selectors_over_script_numbers(scripts_project: Path, expression: str, expected: list[str]) -> None:
    assert sorted(plan_ids("auto", "--select", expression, "--only")) == expected


def test_exclusive_scripts_run_alone_in_number_order_before_parallel_ones(scripts_project: Path) -> None:
    outcome = invoke("run", "auto", "-j", "4")
    assert outcome.exit_code == 0, outcome.output
    times = events()
    assert set(times) == {"0100", "0401", "0402", "0403", "0404", "0450"}
    # Dependencies are edges: everything waits for 0100, 0450 for both exclusive scripts.
    assert all(times["0100"][1] <= times[step][0] for step in times if step != "0100")
    assert times["0450"][0] >= max(times["0402"][1], times["0403"][1])
    # AllowParallel: false scripts run with nothing beside them, lowest number first, and
    # before the parallel scripts that became ready with them.
    for exclusive in ("0402", "0403"):
        assert not any(overlap(times[exclusive], times[other]) for other in times if other != exclusive)
    assert times["0402"][1] <= times["0403"][0]
    assert times["0403"][1] <= min(times["0401"][0], times["0404"][0])
    # The parallel ones do run together.
    assert overlap(times["0401"], times["0404"])
    assert record()["stats"]["max_concurrency_seen"] >= 2


def test_script_entries_with_args_as_list_and_mapping(scripts_project: Path) -> None:
    write(
        scripts_project / "playbooks/args.yml",
        """
        name: args
        scripts: automation-scripts
        steps:
          - script: "0401"
            args: [--maxfail, 1, "two words"]
          - id: lint-again
            script: automation-scripts/0401_Lint.py
            args: {format: json, verbose: true, quiet: false, path: [a, b]}
        """,
    )
    assert invoke("run", "args").exit_code == 0
    assert Path("args-0401.txt").read_text(encoding="utf-8").splitlines() == ["--maxfail", "1", "two words"]
    assert Path("args-lint-again.txt").read_text(encoding="utf-8").splitlines() == [
        "--format",
        "json",
        "--verbose",
        "--path",
        "a",
        "--path",
        "b",
    ]
    # The step entry keeps the script's metadata under what it says itself.
    assert plan_instances("args", "--select", "lint-again", "--only")["lint-again"]["stage"] == "Validation"


def fake_program(folder: Path, name: str) -> Path:
    """A stand-in for a program on PATH that writes its arguments to `<name>-args.txt`."""
    return write(
        folder / name,
        f"""
        #!{sys.executable}
        import sys
        open("{name}-args.txt", "w").write("\\n".join(sys.argv[1:]))
        """,
        executable=True,
    )


def test_powershell_script_gets_dash_key_value_arguments(
    workdir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copytree(DATA / "powershell", workdir / "playbooks/ps")
    write(
        workdir / "playbooks/ps.yml",
        """
        name: ps
        scripts: ps
        steps:
          - script: "0500"
            args: {Environment: prod, Force: true}
        """,
    )
    fake_program(tmp_path / "bin", "pwsh")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    outcome = invoke("run", "ps")
    assert outcome.exit_code == 0, outcome.output
    argv = Path("pwsh-args.txt").read_text(encoding="utf-8").splitlines()
    assert argv[-3:] == ["-Environment", "prod", "-Force"]
    assert argv[-4].endswith("0500_Deploy.ps1")


def test_powershell_script_without_pwsh_is_a_clear_failure(
    workdir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copytree(DATA / "powershell", workdir / "playbooks/ps")
    write(workdir / "playbooks/ps.yml", "name: ps\nscripts: ps\n")
    bin_dir = tmp_path / "bin"  # bash and nothing else: no pwsh, whatever the machine has
    bin_dir.mkdir()
    (bin_dir / "bash").symlink_to(shutil.which("bash") or "/bin/bash")
    monkeypatch.setenv("PATH", str(bin_dir))
    outcome = invoke("run", "ps")
    assert outcome.exit_code == 1
    assert "pwsh is not installed" in outcome.output
    assert statuses() == {"0100": "passed", "0500": "failed"}
    assert "pwsh is not installed" in record()["steps"][1]["reason"]


def test_other_scripts_run_directly_and_must_be_executable(workdir: Path) -> None:
    write(workdir / "playbooks/tools/0100_Hello.pl", "#!/bin/sh\n# Stage: Tools\necho hello > hello.txt\n")
    write(workdir / "playbooks/tools.yml", "name: tools\nscripts: tools\n")
    outcome = invoke("run", "tools")
    assert outcome.exit_code == 1
    assert "0100_Hello.pl: permission denied (is it executable?)" in outcome.output
    (workdir / "playbooks/tools/0100_Hello.pl").chmod(0o755)
    assert invoke("run", "tools").exit_code == 0
    assert Path("hello.txt").read_text(encoding="utf-8") == "hello\n"


def test_malformed_metadata_names_file_and_line(workdir: Path) -> None:
    write(workdir / "playbooks/bad/0100_Bad.sh", "#!/bin/bash\n# Stage: x\n# AllowParallel: maybe\necho\n")
    write(workdir / "playbooks/bad.yml", "name: bad\nscripts: bad\n")
    outcome = invoke("validate", "bad")
    assert outcome.exit_code == 2
    assert (
        "playbooks/bad/0100_Bad.sh:3:3: AllowParallel: must be true or false, not 'maybe'" in outcome.output
    )


# ---------------------------------------------------------------- settings and profiles

SETTINGS = """
# project settings
execution = "parallel"
concurrency = 8
timeout = "30m"

[profile.ci]
concurrency = 4
fail-fast = false

[defaults."0400-0499"]
allow-parallel = false
timeout = "10m"

[defaults."tag:slow"]
timeout = "1h"
retry = 1
"""


def test_config_get_under_ci_reports_the_ci_profile_and_its_line(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(workdir / "ci-orchestrator.toml", SETTINGS)
    assert (
        invoke("config", "get", "concurrency").output.strip() == "concurrency = 8  (ci-orchestrator.toml:3)"
    )
    monkeypatch.setenv("CI", "true")
    assert invoke("config", "get", "concurrency").output.strip() == (
        "concurrency = 4  (profile ci, ci-orchestrator.toml:7)"
    )
    assert invoke("config", "get", "max-parallel-workers").output.strip().startswith("concurrency = 4")
    assert invoke("config", "get", "fail-fast").output.strip() == (
        "fail-fast = false  (profile ci, ci-orchestrator.toml:8)"
    )
    assert invoke("config", "get", "timeout").output.strip() == "timeout = 1800.0  (ci-orchestrator.toml:4)"
    assert invoke("config", "get", "output").output.strip() == "output = quiet  (default)"
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    assert (
        invoke("config", "get", "output").output.strip() == "output = grouped  (default under GitHub Actions)"
    )
    unknown = invoke("config", "get", "concurency")
    assert unknown.exit_code == 2
    assert "did you mean 'concurrency'" in unknown.output
    far = invoke("config", "get", "colour")
    assert far.exit_code == 2
    assert "unknown setting 'colour'; settings: execution, concurrency, timeout," in far.output


def test_config_get_says_what_a_setting_nobody_gives_means(workdir: Path) -> None:
    assert invoke("config", "get", "concurrency").output.strip() == (
        "concurrency = auto (the playbook's, else the CPUs this process may use)  (default)"
    )
    assert invoke("config", "get", "timeout").output.strip().startswith("timeout = none (")


def test_profile_option_wins_over_ci_and_pyproject_table_is_read(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(
        workdir / "pyproject.toml",
        """
        [project]
        name = "x"

        [tool.ci-orchestrator]
        max-parallel-workers = 5

        [tool.ci-orchestrator.profile.local]
        concurrency = 2

        [tool.ci-orchestrator.profile.ci]
        concurrency = 3
        """,
    )
    assert invoke("config", "get", "concurrency").output.strip() == "concurrency = 5  (pyproject.toml:5)"
    monkeypatch.setenv("CI", "true")
    assert invoke("config", "get", "concurrency").output.strip() == (
        "concurrency = 3  (profile ci, pyproject.toml:11)"
    )
    assert invoke("config", "get", "concurrency", "--profile", "local").output.strip() == (
        "concurrency = 2  (profile local, pyproject.toml:8)"
    )
    assert invoke("config", "get", "concurrency", "--profile", "nope").exit_code == 2


def test_settings_defaults_by_range_and_selector(scripts_project: Path) -> None:
    write(scripts_project / "ci-orchestrator.toml", SETTINGS)
    instances = plan_instances("auto")
    assert instances["0401"]["exclusive"] is True  # 0400-0499: allow-parallel = false
    assert instances["0401"]["timeout"] == 600
    assert instances["0450"]["timeout"] == 3600  # tag:slow
    assert instances["0100"]["exclusive"] is False
    assert instances["0100"]["timeout"] == 1800  # the file's default timeout


def run_sleepers(workdir: Path, playbook: str, *args: str) -> dict[str, Any]:
    write(workdir / "playbooks/p.yml", playbook)
    outcome = invoke("run", "p", *args)
    assert outcome.exit_code == 0, outcome.output
    return record()


FOUR_SLEEPERS = """
name: p
execution: parallel
steps:
{steps}
"""


def sleepers(extra: str = "", count: int = 4) -> str:
    lines = []
    for index in range(count):
        lines.append(f"  - id: s{index}\n    run: sleep 0.05{extra}")
    return FOUR_SLEEPERS.format(steps="\n".join(lines))


@pytest.mark.parametrize(
    ("toml", "playbook", "args", "expected"),
    [
        ("concurrency = 3", sleepers(), ("-j", "4"), 3),  # settings lowest
        ("concurrency = 3", sleepers().replace("execution", "concurrency: 2\nexecution"), ("-j", "4"), 2),
        ("concurrency = 3", sleepers(), ("-j", "1"), 1),  # command line lowest
        ("", sleepers(), ("--sequential",), 1),
        ("allow-parallel = false", sleepers(), ("-j", "4"), 1),  # settings say no
        ("", sleepers("\n    allow-parallel: false"), ("-j", "4"), 1),  # steps say no
        ('execution = "serial"', sleepers(), ("-j", "4"), 4),  # the playbook writes its own
    ],
)
def test_most_restrictive_parallel_permission_and_smallest_concurrency(
    workdir: Path, toml: str, playbook: str, args: tuple[str, ...], expected: int
) -> None:
    write(workdir / "ci-orchestrator.toml", toml + "\n")
    stats = run_sleepers(workdir, playbook, *args)["stats"]
    assert stats["max_concurrency_seen"] == expected


def test_settings_execution_is_the_default_of_a_playbook_without_one(workdir: Path) -> None:
    unsaid = sleepers().replace("execution: parallel\n", "")
    assert run_sleepers(workdir, unsaid, "-j", "4")["stats"]["max_concurrency_seen"] == 1  # serial
    write(workdir / "ci-orchestrator.toml", 'execution = "parallel"\n')
    assert run_sleepers(workdir, unsaid, "-j", "4")["stats"]["max_concurrency_seen"] == 4


def test_script_metadata_cannot_be_lifted_by_a_step_entry(scripts_project: Path) -> None:
    write(
        scripts_project / "playbooks/lift.yml",
        """
        name: lift
        execution: parallel
        scripts: automation-scripts
        steps:
          - script: "0402"
            allow-parallel: true
        """,
    )
    assert plan_instances("lift")["0402"]["exclusive"] is True


def test_ci_profile_applies_to_a_run(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(workdir / "ci-orchestrator.toml", "concurrency = 4\n[profile.ci]\nconcurrency = 1\n")
    assert run_sleepers(workdir, sleepers())["stats"]["max_concurrency_seen"] >= 2
    monkeypatch.setenv("CI", "true")
    assert run_sleepers(workdir, sleepers())["stats"]["max_concurrency_seen"] == 1


# ---------------------------------------------------------------- groups

GROUPS = """
name: g
steps:
  - id: setup
    run: echo setup
groups:
  - name: checks
    execution: parallel
    steps:
      - id: web
        run: sleep 0.2
      - id: database
        run: exit 3
      - id: cache
        run: sleep 0.2
  - name: deploy
    execution: serial
    stop-on-error: true
    steps:
      - id: backup
        run: echo backup
      - id: migrate
        run: exit 1
      - id: release
        run: echo release
      - id: smoke
        run: echo smoke
  - name: import
    steps:
      - id: source-a
        run: exit 1
      - id: report
        run: echo report
"""


def test_list_prints_each_group_with_its_mode(workdir: Path) -> None:
    write(workdir / "playbooks/g.yml", GROUPS)
    lines = [" ".join(line.split()) for line in invoke("list", "g").output.splitlines()]
    assert "checks [parallel] 3 steps" in lines
    assert "deploy [serial, stop-on-error] 4 steps" in lines
    assert "import [serial] 2 steps" in lines


def test_groups_parallel_summary_stop_on_error_and_continue(workdir: Path) -> None:
    write(workdir / "playbooks/g.yml", GROUPS)
    outcome = invoke("run", "g", "--no-fail-fast")
    assert outcome.exit_code == 1
    assert "group checks: 3 completed, 2 successful, 1 failed (database)" in outcome.output
    got = statuses()
    assert got["release"] == got["smoke"] == "skipped"  # stop-on-error
    assert "stop-on-error" in next(s["reason"] for s in record()["steps"] if s["id"] == "release")
    assert got["report"] == "passed"  # a serial group without stop-on-error goes on
    assert got["web"] == got["cache"] == "passed"


def test_numbered_group_phases(scripts_project: Path) -> None:
    write(
        scripts_project / "playbooks/phases.yml",
        """
        name: phases
        execution: parallel
        defaults:
          env: {SEED_SLEEP: "0.2"}
        steps:
          - {id: deploy-backend, group: 2, script: automation-scripts/0100_Prepare.sh}
          - {id: validate, group: 1, script: automation-scripts/0100_Prepare.sh}
          - {id: scan, group: 1, script: automation-scripts/0100_Prepare.sh}
        """,
    )
    outcome = invoke("run", "phases", "-j", "4")
    assert outcome.exit_code == 0, outcome.output
    times = events()
    assert overlap(times["validate"], times["scan"])
    assert times["deploy-backend"][0] >= max(times["validate"][1], times["scan"][1])


# ---------------------------------------------------------------- step environment

ENV_DUMP = (
    "env | grep '^CI_ORCHESTRATOR' | grep -v CACHE_DIR | sort > \\\"env-$CI_ORCHESTRATOR_STEP_ID.txt\\\""
)


def step_env(step: str) -> dict[str, str]:
    lines = Path(f"env-{step}.txt").read_text(encoding="utf-8").splitlines()
    return dict(line.split("=", 1) for line in lines)


def test_step_environment(workdir: Path) -> None:
    write(
        workdir / "playbooks/env.yml",
        f"""
        name: env
        execution: parallel
        steps:
          - id: first
            run: "{ENV_DUMP}"
          - id: left
            needs: [first]
            run: "{ENV_DUMP}; sleep 0.2"
          - id: right
            needs: [first]
            run: "{ENV_DUMP}; sleep 0.2"
          - id: alone
            needs: [left, right]
            allow-parallel: false
            run: "{ENV_DUMP}"
        """,
    )
    assert invoke("run", "env", "-j", "2").exit_code == 0
    run_id = record()["run_id"]
    cpus = available_cpus()
    first, left, right, alone = (step_env(step) for step in ("first", "left", "right", "alone"))
    for step, env in (("first", first), ("left", left), ("right", right), ("alone", alone)):
        assert env["CI_ORCHESTRATOR"] == "true"
        assert env["CI_ORCHESTRATOR_RUN_ID"] == run_id
        assert env["CI_ORCHESTRATOR_STEP_ID"] == step
        assert env["CI_ORCHESTRATOR_NONINTERACTIVE"] == "true"
    # `first` and `alone` are ordered against every other step: nothing can run beside them.
    assert first["CI_ORCHESTRATOR_PARALLEL"] == alone["CI_ORCHESTRATOR_PARALLEL"] == "false"
    assert left["CI_ORCHESTRATOR_PARALLEL"] == right["CI_ORCHESTRATOR_PARALLEL"] == "true"
    assert first["CI_ORCHESTRATOR_JOBS"] == alone["CI_ORCHESTRATOR_JOBS"] == str(cpus)
    assert left["CI_ORCHESTRATOR_JOBS"] == right["CI_ORCHESTRATOR_JOBS"] == str(max(1, cpus // 2))


def test_serial_playbook_steps_are_told_they_run_alone(workdir: Path) -> None:
    write(
        workdir / "playbooks/serial.yml",
        f"""
        name: serial
        steps:
          - id: one
            run: "{ENV_DUMP}"
          - id: two
            matrix: {{python: ["3.11"]}}
            run: "{ENV_DUMP}"
        """,
    )
    outcome = invoke("run", "serial", "-j", "4")
    assert outcome.exit_code == 0, outcome.output
    assert step_env("one")["CI_ORCHESTRATOR_PARALLEL"] == "false"
    matrix_env = step_env("two (3.11)")
    assert matrix_env["CI_ORCHESTRATOR_STEP_ID"] == "two (3.11)"
    assert matrix_env["CI_ORCHESTRATOR_PARALLEL"] == "false"


# ---------------------------------------------------------------- schedules

SCHEDULED = """
name: monitor
schedule: "0 6 * * 1"
steps:
  - id: build
    run: echo build
groups:
  - name: health
    execution: parallel
    schedule: ["* * * * *"]
    steps:
      - {id: check-api, run: echo api}
      - {id: check-db, run: echo db}
  - name: metrics
    execution: parallel
    schedule: "*/10 * * * *"
    steps:
      - {id: cpu, run: echo cpu}
"""


def test_export_turns_schedules_into_triggers_that_select_their_groups(workdir: Path) -> None:
    write(workdir / "playbooks/monitor.yml", SCHEDULED)
    outcome = invoke("export", "github-workflow", "monitor")
    assert outcome.exit_code == 0, outcome.output
    document = yaml.safe_load(outcome.output)
    triggers = document[True] if True in document else document["on"]  # YAML 1.1 reads `on` as true
    assert [entry["cron"] for entry in triggers["schedule"]] == ["0 6 * * 1", "* * * * *", "*/10 * * * *"]
    select = next(
        step["with"]["select"]
        for step in document["jobs"]["run"]["steps"]
        if "with" in step and "select" in step["with"]
    )
    assert "github.event.schedule == '* * * * *' && 'group:health'" in select
    assert "github.event.schedule == '*/10 * * * *' && 'group:metrics'" in select
    # The selection the schedule uses runs only that group.
    assert sorted(plan_ids("monitor", "--select", "group:health", "--only")) == ["check-api", "check-db"]


@pytest.mark.parametrize(
    ("cron", "message"),
    [
        ("0 6 * *", "it needs 5 fields"),
        ("61 * * * *", "minute 61 is out of range 0-59"),
        ("0 0 * * FUNDAY", "day of week 'FUNDAY' is not a number"),
    ],
)
def test_bad_schedule_is_a_located_error(workdir: Path, cron: str, message: str) -> None:
    write(workdir / "playbooks/monitor.yml", SCHEDULED.replace("*/10 * * * *", cron))
    outcome = invoke("validate", "monitor")
    assert outcome.exit_code == 2
    assert "playbooks/monitor.yml:15:15: groups[1].schedule:" in outcome.output
    assert message in outcome.output


# ---------------------------------------------------------------- the other engines' features


def test_workflow_engine_features(workdir: Path) -> None:
    """Dependencies, automatic parallelism, pools, per-step concurrency, error isolation, statistics."""
    write(
        workdir / "playbooks/wf.yml",
        """
        name: wf
        execution: parallel
        concurrency: 6
        resources: {cpu: 2, database: 1}
        steps:
          - {id: install, run: sleep 0.1}
          - {id: lint, needs: [install], run: sleep 1}
          - {id: type-check, needs: [install], run: sleep 1}
          - {id: build, needs: [install], matrix: {part: [a, b, c]}, resources: [cpu], run: sleep 0.2}
          - id: migrate
            needs: [install]
            max-parallel: 1
            matrix: {db: [x, y]}
            resources: [database]
            run: sleep 0.1
          - {id: optional, needs: [install], continue-on-error: true, run: exit 1}
          - {id: deploy, needs: [lint, type-check, build, migrate, optional], run: echo deploy}
        """,
    )
    outcome = invoke("run", "wf")
    assert outcome.exit_code == 0, outcome.output
    run = record()
    steps = {step["id"]: step for step in run["steps"]}
    assert steps["optional"]["status"] == "failed" and steps["deploy"]["status"] == "passed"
    assert run["stats"]["max_concurrency_seen"] >= 2
    assert 0 < run["stats"]["resource_utilization"]["cpu"] <= 1
    assert run["stats"]["speedup"] > 1
    builds = [steps[f"build ({part})"] for part in "abc"]
    at_once = max(
        sum(1 for other in builds if other["started"] <= b["started"] < other["finished"]) for b in builds
    )
    assert at_once <= 2  # the cpu pool holds two
    # Every step is recorded in the run database.
    history = invoke("history", "show", run["run_id"])
    assert "optional" in history.output and "failed" in history.output


def test_playbook_engine_features(workdir: Path) -> None:
    """Dry run, variables, timeouts (exit 124), continue on error, matrix, cache, summary."""
    write(
        workdir / "playbooks/pb.yml",
        """
        name: pb
        vars: {environment: test}
        steps:
          - id: build
            inputs: [src.txt]
            run: echo "built for ${{ vars.environment }}" > out.txt
          - id: analyze
            continue-on-error: true
            run: exit 2
          - id: slow
            timeout: 1s
            continue-on-error: true
            run: sleep 30
          - id: test
            matrix: {profile: [quick, comprehensive]}
            run: echo "$MATRIX_PROFILE"
        """,
    )
    Path("src.txt").write_text("v1", encoding="utf-8")
    dry = invoke("run", "pb", "--dry-run")
    assert dry.exit_code == 0 and "test (quick)" in dry.output and not Path("out.txt").exists()
    assert invoke("run", "pb", "--var", "environment=prod").exit_code == 0
    assert Path("out.txt").read_text(encoding="utf-8") == "built for prod\n"
    steps = {step["id"]: step for step in record()["steps"]}
    assert steps["slow"]["status"] == "timed-out" and steps["slow"]["exit_code"] == 124
    assert steps["analyze"]["status"] == "failed"
    assert {steps["test (quick)"]["status"], steps["test (comprehensive)"]["status"]} == {"passed"}
    summary = Path(".ci-orchestrator/reports/summary.md").read_text(encoding="utf-8")
    assert "analyze" in summary
    assert invoke("run", "pb", "--var", "environment=prod", "--select", "build", "--only").exit_code == 0
    assert statuses() == {"build": "cached"}
    stopping = invoke("run", "pb", "--select", "analyze,test", "--only", "--matrix", "profile=quick")
    assert stopping.exit_code == 0  # continue-on-error keeps the run green


def test_stop_on_first_error_by_default(workdir: Path) -> None:
    write(
        workdir / "playbooks/stop.yml",
        "name: stop\nsteps:\n  - {id: a, run: exit 1}\n  - {id: b, run: echo b}\n",
    )
    assert invoke("run", "stop").exit_code == 1
    assert statuses() == {"a": "failed", "b": "skipped"}
    assert invoke("run", "stop", "--no-fail-fast").exit_code == 1
    assert statuses() == {"a": "failed", "b": "passed"}
    Path("playbooks/stop.yml").write_text("fail-fast: false\n" + Path("playbooks/stop.yml").read_text())
    assert invoke("run", "stop").exit_code == 1
    assert statuses() == {"a": "failed", "b": "passed"}


def test_example_playbook_runs_from_a_real_process(tmp_path: Path) -> None:
    """The shipped example, as a user runs it: `python -m ci_orchestrator run scripts`."""
    shutil.copytree(REPO / "playbooks", tmp_path / "playbooks")
    done = run_cli(tmp_path, "run", "scripts", env=cli_environment())
    assert done.returncode == 0, done.stdout + done.stderr
    assert "group nightly: 2 completed, 2 successful, 0 failed" in done.stdout
    # Off a terminal, a passing step is one line; what it printed is in its log.
    assert "report --format markdown --verbose" not in done.stdout
    record = json.loads((tmp_path / ".ci-orchestrator/reports/run.json").read_text(encoding="utf-8"))
    logs = "".join((tmp_path / step["log"]).read_text(encoding="utf-8") for step in record["steps"])
    assert "report --format markdown --verbose" in logs
    assert len([line for line in done.stdout.splitlines() if line.startswith("passed ")]) == len(
        record["steps"]
    )
