"""Security as a user relies on it: secret values never appear in the console, logs, JUnit,
summary or run record (nor under GitHub Actions), even when a step prints one in pieces; the
action passes its inputs to scripts only through `env:`.

Cache entries that would write outside the workspace are refused: tests/test_cache.py
(test_members_leading_outside_the_workspace_are_refused_and_nothing_is_written,
test_a_member_is_refused_when_a_symlinked_directory_leads_out,
test_outputs_outside_the_workspace_are_not_stored) and tests/test_cache_e2e.py
(test_a_stored_result_leading_outside_the_workspace_is_refused_with_a_message).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from ci_orchestrator.masking import Masker, mask, mask_values

REPO = Path(__file__).resolve().parent.parent
SECRET = "hunter2-Zq9"
OTHER = "s3cr3t-long-value-0123456789"

PLAYBOOK = r"""
name: secrets
secrets: [TOKEN, OTHER_TOKEN]
env: {OTHER_TOKEN: "%(other)s"}
fail-fast: false
steps:
  - id: whole
    run: echo "token is $TOKEN and $OTHER_TOKEN"
  - id: split
    # The value leaves the step in pieces, each its own write (and its own chunk for us).
    command:
      - python3
      - -c
      - |
        import os, sys, time
        value = os.environ["TOKEN"]
        for piece in (value[:3], value[3:7], value[7:]):
            sys.stdout.write(piece); sys.stdout.flush(); time.sleep(0.15)
        print(" <- split")
        big = "x" * 65533 + value + "y" * 10  # straddles a 64 KiB read boundary
        sys.stdout.write(big + "\n")
  - id: failing
    run: |
      echo "about to fail with $TOKEN"
      printf '%%s' "$OTHER_TOKEN" | fold -w 5
      echo "$OTHER_TOKEN"
      exit 3
  - id: stderr
    name: stderr ${{ matrix.v }}
    matrix: {v: [one]}
    continue-on-error: true
    run: echo "$TOKEN" >&2; exit 1
"""


def run_cli(
    workdir: Path, *args: str, extra_env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "TOKEN": SECRET, **(extra_env or {})}
    return subprocess.run(
        [sys.executable, "-m", "ci_orchestrator", *args],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def everything_written(workdir: Path) -> dict[str, str]:
    """Every file under the workspace but the playbook, by relative path."""
    files = {}
    for path in workdir.rglob("*"):
        if path.is_file() and path.name != "secrets.yml" and "cache" not in path.parts[-3:-1]:
            files[str(path.relative_to(workdir))] = path.read_bytes().decode("utf-8", "replace")
    return files


@pytest.mark.parametrize("output", ["grouped", "stream"])
def test_secret_values_are_masked_everywhere(workdir: Path, output: str) -> None:
    (workdir / "secrets.yml").write_text(PLAYBOOK % {"other": OTHER})
    result = run_cli(workdir, "run", "secrets.yml", "--output", output, "-j", "1")
    assert result.returncode == 1, result.stderr
    console = result.stdout + result.stderr
    assert "***" in console
    written = everything_written(workdir)
    reports = [".ci-orchestrator/reports/junit.xml", ".ci-orchestrator/reports/summary.md"]
    assert set(reports) <= set(written)
    assert any(name.endswith(".log") for name in written)
    for where, text in {"console": console, **written}.items():
        assert SECRET not in text, where
        assert OTHER not in text, where
    logs = "".join(text for name, text in written.items() if name.endswith(".log"))
    assert "*** <- split" in logs  # the pieces were joined and masked
    assert "x***y" in logs  # across the 64 KiB read boundary
    # The history database holds no step output, only reasons; those are masked too.
    database = (workdir / ".ci-orchestrator/history.db").read_bytes()
    assert SECRET.encode() not in database


def test_under_github_actions_secrets_are_announced_and_masked(workdir: Path) -> None:
    (workdir / "secrets.yml").write_text(PLAYBOOK % {"other": OTHER})
    summary, outputs = workdir / "step-summary.md", workdir / "outputs.txt"
    env = {"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary), "GITHUB_OUTPUT": str(outputs)}
    result = run_cli(workdir, "run", "secrets.yml", "-j", "1", extra_env=env)
    assert result.returncode == 1
    console = result.stdout + result.stderr
    # The only place a value may appear is the mask announcement itself, so GitHub hides it.
    assert f"::add-mask::{SECRET}" in console
    assert console.replace(f"::add-mask::{SECRET}", "").replace(f"::add-mask::{OTHER}", "").count(SECRET) == 0
    for path in (summary, outputs):
        assert SECRET not in path.read_text()
        assert OTHER not in path.read_text()


def test_one_rule_masks_text_and_streams() -> None:
    secrets = ["tok-1", "multi\nline-x\n", "  ", ""]
    assert mask_values(secrets) == ("multi\nline-x\n", "line-x", "multi", "tok-1")
    text = "a tok-1 b multi\nline-x\n c line-x d multi"
    masker = Masker(secrets)
    streamed = b"".join(masker.feed(text[i : i + 3].encode()) for i in range(0, len(text), 3))
    assert mask(text, secrets) == (streamed + masker.flush()).decode() == "a *** b *** c *** d ***"


# ---------------------------------------------------------------- the action

ACTION = REPO / "action.yml"


def _action() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(ACTION.read_text())
    return data


@pytest.mark.skipif(not ACTION.exists(), reason="no action.yml")
def test_the_action_passes_inputs_to_scripts_only_through_env() -> None:
    steps = _action()["runs"]["steps"]
    scripts = [step for step in steps if "run" in step]
    assert scripts
    for step in scripts:
        # Nothing is pasted into a script: an input such as `"; rm -rf ~; echo "` stays data.
        assert "${{" not in step["run"], step.get("name")
        assert not re.search(r"\binputs\.", step["run"]), step.get("name")
    inputs = set(_action().get("inputs", {}))
    passed = {
        match
        for step in scripts
        for value in (step.get("env") or {}).values()
        for match in re.findall(r"inputs\.([A-Za-z0-9_-]+)", str(value))
    }
    assert passed <= inputs
    # Hostile inputs fed to the action's scripts: tests/test_action.py
    # (test_hostile_inputs_are_taken_literally).


def test_a_step_script_is_a_file_so_values_in_the_environment_stay_data(workdir: Path) -> None:
    # The playbook's own `env` carries a hostile value; the step uses it only as a variable.
    (workdir / "env.yml").write_text(
        textwrap.dedent(
            """\
            name: env
            env: {PAYLOAD: '"; touch pwned-1; echo "', OTHER: '$(touch pwned-2)'}
            steps:
              - id: a
                run: printf '%s|%s\\n' "$PAYLOAD" "$OTHER" > seen.txt
            """
        )
    )
    result = run_cli(workdir, "run", "env.yml")
    assert result.returncode == 0, result.stderr
    assert (workdir / "seen.txt").read_text() == '"; touch pwned-1; echo "|$(touch pwned-2)\n'
    assert not list(workdir.glob("pwned-*"))
