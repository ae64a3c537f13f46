"""Values passed from step to step through GitHub's files, end to end with real playbooks and
processes: GITHUB_OUTPUT to `steps.ID.outputs` / `needs.ID.outputs` (in `if:`, `env:`, `run:` and
`command:`), GITHUB_ENV and GITHUB_PATH to the environment of what waits, GITHUB_STEP_SUMMARY to
the run's summary; given back by the cache; checked by `validate`; recorded in run.json; and,
under GitHub, kept apart from the job's own files."""

from __future__ import annotations

import hashlib
import json
import textwrap
from typing import TYPE_CHECKING

from ci_orchestrator.run.file_commands import parse_pairs
from tests.helpers import cli_environment, run_cli

if TYPE_CHECKING:
    import subprocess
    from pathlib import Path

# The first step computes a version from a file, says it ran (ran.log is no output of the
# step: a cached run leaves it alone), installs a tool and puts it on PATH.
RELEASE = """\
name: release
steps:
  - id: version
    inputs: [VERSION]
    outputs: [tools/**]
    run: |
      echo ran >> ran.log
      echo "version=$(cat VERSION)" >> "$GITHUB_OUTPUT"
      {
        echo "notes<<END_OF_NOTES"
        echo "first line"
        echo "second line"
        echo "END_OF_NOTES"
      } >> "$GITHUB_OUTPUT"
      echo "CHANNEL=stable" >> "$GITHUB_ENV"
      mkdir -p tools
      printf '#!/bin/sh\\necho "mytool says $*"\\n' > tools/mytool
      chmod +x tools/mytool
      echo "$PWD/tools" >> "$GITHUB_PATH"
      echo "Version **$(cat VERSION)** computed" >> "$GITHUB_STEP_SUMMARY"
  - id: build
    if: ${{ steps.version.outputs.version == '1.4.2' && steps.version.outcome == 'success' }}
    env:
      VERSION: ${{ steps.version.outputs.version }}
      NOTES: ${{ steps.version.outputs.notes }}
    run: |
      echo "env VERSION=$VERSION"
      echo "run version=${{ steps.version.outputs.version }} result=${{ needs.version.result }}"
      echo "channel=$CHANNEL"
      echo "notes=$NOTES"
      mytool build "$VERSION"
  - id: skipped-when-other
    if: ${{ steps.version.outputs.version != '1.4.2' }}
    run: echo should not run
  - id: package
    command: [mytool, package, "${{ steps.version.outputs.version }}"]
"""


def write(work: Path, text: str, name: str = "ci.yml") -> None:
    (work / "playbooks").mkdir(exist_ok=True)
    (work / "playbooks" / name).write_text(textwrap.dedent(text), encoding="utf-8")


def log_of(work: Path, record: dict[str, object], instance: str) -> str:
    step = next(step for step in record["steps"] if step["id"] == instance)  # type: ignore[attr-defined]
    return (work / step["log"]).read_text(encoding="utf-8")


def record_of(work: Path) -> dict[str, object]:
    data: dict[str, object] = json.loads(
        (work / ".ci-orchestrator/reports/run.json").read_text(encoding="utf-8")
    )
    return data


def statuses(record: dict[str, object]) -> dict[str, str]:
    return {step["id"]: step["status"] for step in record["steps"]}  # type: ignore[attr-defined]


def test_a_value_computed_once_reaches_if_env_run_and_path_and_comes_back_from_the_cache(
    workdir: Path,
) -> None:
    write(workdir, RELEASE)
    (workdir / "VERSION").write_text("1.4.2\n", encoding="utf-8")
    summary, job_output = workdir / "job-summary.md", workdir / "job-output"
    job_env, job_path = workdir / "job-env", workdir / "job-path"
    for path in (summary, job_output, job_env, job_path):
        path.write_text("", encoding="utf-8")
    github = {
        "GITHUB_ACTIONS": "true",
        "GITHUB_OUTPUT": str(job_output),
        "GITHUB_STEP_SUMMARY": str(summary),
        "GITHUB_ENV": str(job_env),
        "GITHUB_PATH": str(job_path),
    }
    runs: list[subprocess.CompletedProcess[str]] = []
    records: list[dict[str, object]] = []
    for environment in (cli_environment(workdir), cli_environment(workdir, **github)):
        runs.append(run_cli(workdir, "run", env=environment))
        assert runs[-1].returncode == 0, runs[-1].stdout + runs[-1].stderr
        records.append(record_of(workdir))

    first, second = records
    assert statuses(first) == {
        "version": "passed",
        "build": "passed",
        "skipped-when-other": "skipped",
        "package": "passed",
    }
    assert statuses(second)["version"] == "cached"
    assert (workdir / "ran.log").read_text(encoding="utf-8") == "ran\n"  # the cached run did not run it
    for record in records:
        build = log_of(workdir, record, "build")
        assert "env VERSION=1.4.2\n" in build
        assert "run version=1.4.2 result=success\n" in build
        assert "channel=stable\n" in build
        assert "notes=first line\nsecond line\n" in build
        assert "mytool says build 1.4.2\n" in build
        assert "mytool says package 1.4.2" in log_of(workdir, record, "package")
        version = next(step for step in record["steps"] if step["id"] == "version")  # type: ignore[attr-defined]
        assert version["outputs"] == {"version": "1.4.2", "notes": "first line\nsecond line"}
        assert next(step for step in record["steps"] if step["id"] == "build")["outputs"] == {}  # type: ignore[attr-defined]

    # Under GitHub the job's own files receive the tool's results only: no step wrote to them.
    job_outputs = parse_pairs(job_output.read_text(encoding="utf-8"), file="GITHUB_OUTPUT")
    assert set(job_outputs) == {"result", "failed-steps", "junit-path", "summary-path", "json-path"}
    assert job_outputs["result"] == "passed"
    assert job_env.read_text(encoding="utf-8") == ""
    assert job_path.read_text(encoding="utf-8") == ""
    # The step's own summary is in the run's summary, under the step, given back by the cache.
    shown = summary.read_text(encoding="utf-8")
    assert "Version **1.4.2** computed" in shown
    assert shown.index("`version`", shown.index("Step summaries")) < shown.index("Version **1.4.2** computed")


def test_matrix_instances_read_their_own_and_others_read_the_last_in_matrix_order(workdir: Path) -> None:
    write(
        workdir,
        """\
        name: matrix
        execution: parallel
        steps:
          - id: build
            matrix: {python: ["3.11", "3.12", "3.13"]}
            run: |
              echo "artifact=dist-${{ matrix.python }}" >> "$GITHUB_OUTPUT"
              if [ "${{ matrix.python }}" != "3.13" ]; then
                echo "only-early=${{ matrix.python }}" >> "$GITHUB_OUTPUT"
              fi
              echo "BUILT_FOR=${{ matrix.python }}" >> "$GITHUB_ENV"
          - id: test
            needs: [build]
            matrix: {python: ["3.11", "3.12", "3.13"]}
            run: echo "got ${{ needs.build.outputs.artifact }} env $BUILT_FOR"
          - id: report
            needs: [build]
            run: >-
              echo "last ${{ needs.build.outputs.artifact }}
              early ${{ steps.build.outputs.only-early }} ${{ needs.build.result }}"
        """,
    )
    process = run_cli(workdir, "run", "-j", "3")
    assert process.returncode == 0, process.stdout + process.stderr
    record = record_of(workdir)
    for python in ("3.11", "3.12", "3.13"):
        assert f"got dist-{python} env {python}\n" in log_of(workdir, record, f"test ({python})")
    assert "last dist-3.13 early 3.12 success\n" in log_of(workdir, record, "report")


def test_a_failed_step_hands_on_its_outputs_and_its_status(workdir: Path) -> None:
    write(
        workdir,
        """\
        name: statuses
        steps:
          - id: probe
            continue-on-error: true
            run: |
              echo "reason=disk full" >> "$GITHUB_OUTPUT"
              exit 3
          - id: after
            if: ${{ always() }}
            run: >-
              echo "${{ steps.probe.outcome }} ${{ steps.probe.conclusion }}
              ${{ needs.probe.result }} ${{ steps.probe.outputs.reason }}"
        """,
    )
    process = run_cli(workdir, "run")
    assert process.returncode == 0, process.stdout + process.stderr
    assert "failure success success disk full\n" in log_of(workdir, record_of(workdir), "after")


def test_validate_locates_a_read_of_a_step_that_is_not_waited_for(workdir: Path) -> None:
    write(
        workdir,
        """\
        name: refs
        execution: parallel
        steps:
          - id: version
            run: echo "v=1" >> "$GITHUB_OUTPUT"
          - id: build
            env:
              V: ${{ steps.version.outputs.v }}
            run: echo "${{ needs.versoin.outputs.v }}"
          - id: ok
            needs: [version]
            run: echo "${{ needs.version.outputs.v }}"
        """,
    )
    process = run_cli(workdir, "validate")
    assert process.returncode == 2
    lines = process.stderr.splitlines()
    assert any(
        line.startswith("ci-orchestrator: playbooks/ci.yml:7:")
        and "steps[1].env.V: steps.version: step 'build' does not wait for 'version' (add it to needs)"
        in line
        for line in lines
    ), process.stderr
    assert any(
        "playbooks/ci.yml:9:" in line and "needs.versoin: no step 'versoin' (did you mean 'version'?)" in line
        for line in lines
    ), process.stderr
    assert "steps[2]" not in process.stderr
    assert "Traceback" not in process.stderr


def test_a_malformed_output_file_fails_the_step_naming_the_file_and_line(workdir: Path) -> None:
    write(
        workdir,
        """\
        name: bad
        fail-fast: false
        steps:
          - id: writer
            run: printf 'ok=1\\nnotes<<EOF\\nno end\\n' >> "$GITHUB_OUTPUT"
          - id: node
            run: |
              echo "NODE_OPTIONS=--require ./evil.js" >> "$GITHUB_ENV"
              echo "KEPT=yes" >> "$GITHUB_ENV"
          - id: reader
            needs: [node]
            run: echo "node=${NODE_OPTIONS:-unset} kept=$KEPT"
        """,
    )
    process = run_cli(workdir, "run")
    assert process.returncode == 1
    record = record_of(workdir)
    writer = next(step for step in record["steps"] if step["id"] == "writer")  # type: ignore[attr-defined]
    assert writer["status"] == "failed"
    assert writer["reason"] == "cannot take in GITHUB_OUTPUT line 2: notes<<EOF: no closing line 'EOF'"
    assert "node: GITHUB_ENV may not set NODE_OPTIONS" in process.stderr
    assert "node=unset kept=yes\n" in log_of(workdir, record, "reader")


def test_secret_values_in_outputs_are_masked_in_run_json(workdir: Path) -> None:
    write(
        workdir,
        """\
        name: secret
        secrets: [TOKEN, DEPLOY_KEY, API_KEY]
        steps:
          - id: login
            run: |
              echo "token=$TOKEN" >> "$GITHUB_OUTPUT"
              echo "::add-mask::session-5f2e9c"
              echo "session=session-5f2e9c" >> "$GITHUB_OUTPUT"
              echo "user=octocat" >> "$GITHUB_OUTPUT"
              echo "DEPLOY_KEY=deploy-key-9a8b7c" >> "$GITHUB_ENV"
              echo "api=api-key-4d5e6f" >> "$GITHUB_OUTPUT"
          - id: deploy
            env:
              API_KEY: ${{ steps.login.outputs.api }}
            run: |
              echo "using $DEPLOY_KEY and $API_KEY"
              echo "out=$DEPLOY_KEY" >> "$GITHUB_OUTPUT"
              exit 1
        """,
    )
    environment = cli_environment(workdir, TOKEN="s3cr3t-value-77")
    process = run_cli(workdir, "run", "--output", "stream", env=environment)
    assert process.returncode == 1, process.stdout + process.stderr
    assert "using *** and ***" in process.stdout
    reports = "".join(
        path.read_text(encoding="utf-8") for path in (workdir / ".ci-orchestrator/reports").iterdir()
    )
    logs = "".join(path.read_text(encoding="utf-8") for path in (workdir / ".ci-orchestrator").rglob("*.log"))
    for secret in ("s3cr3t-value-77", "session-5f2e9c", "deploy-key-9a8b7c"):
        assert secret not in reports
    # Not the session: its log holds the `::add-mask::` line, written before the mask existed.
    for secret in ("s3cr3t-value-77", "deploy-key-9a8b7c", "api-key-4d5e6f"):
        assert secret not in logs + process.stdout + process.stderr
    assert record_of(workdir)["steps"][1]["outputs"] == {"out": "***"}  # type: ignore[index]
    login = record_of(workdir)["steps"][0]  # type: ignore[index]
    assert login["outputs"] == {"token": "***", "session": "***", "user": "octocat", "api": "***"}


def test_hash_files_digests_the_files_as_the_step_starts(workdir: Path) -> None:
    write(
        workdir,
        """\
        name: hashing
        steps:
          - id: lock
            run: |
              mkdir -p deps
              echo "pinned 1" > deps/a.lock
              echo "pinned 2" > deps/b.lock
              echo "skip me" > deps/c.tmp
          - id: key
            env:
              KEY: ${{ hashFiles('deps/**', '!deps/*.tmp') }}
            if: ${{ hashFiles('missing/**') == '' }}
            run: echo "key=$KEY folder=${{ hashFiles('deps') }}"
        """,
    )
    process = run_cli(workdir, "run")
    assert process.returncode == 0, process.stdout + process.stderr

    def digest(*contents: bytes) -> str:
        return hashlib.sha256(b"".join(hashlib.sha256(content).digest() for content in contents)).hexdigest()

    locks = digest(b"pinned 1\n", b"pinned 2\n")
    everything = digest(b"pinned 1\n", b"pinned 2\n", b"skip me\n")
    assert f"key={locks} folder={everything}\n" in log_of(workdir, record_of(workdir), "key")


def test_numbered_scripts_write_and_read_the_files_too(workdir: Path) -> None:
    scripts = workdir / "playbooks" / "automation"
    scripts.mkdir(parents=True)
    version = 'echo "version=2.0.1" >> "$GITHUB_OUTPUT"\necho "STAGE_DIR=out" >> "$GITHUB_ENV"\n'
    (scripts / "0100_Version.sh").write_text("#!/usr/bin/env bash\n" + version, encoding="utf-8")
    (scripts / "0200_Package.py").write_text(
        "# Dependencies: 0100\nimport os, sys\nprint('packaging', sys.argv[1:], os.environ['STAGE_DIR'])\n",
        encoding="utf-8",
    )
    write(
        workdir,
        """\
        name: scripted
        scripts: automation
        steps:
          - id: package
            script: "0200"
            args: ["${{ steps['0100'].outputs.version }}"]
        """,
    )
    process = run_cli(workdir, "run")
    assert process.returncode == 0, process.stdout + process.stderr
    assert "packaging ['2.0.1'] out\n" in log_of(workdir, record_of(workdir), "package")
