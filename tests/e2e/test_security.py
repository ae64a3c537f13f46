"""Security as a user relies on it: secret values never appear in the console, logs, JUnit,
summary or run record (nor under GitHub Actions), even when a step prints one in pieces; the
action passes its inputs to scripts only through `env:`.

Cache entries that would write outside the workspace are refused: tests/cache/test_step_cache.py
(test_members_leading_outside_the_workspace_are_refused_and_nothing_is_written,
test_a_member_is_refused_when_a_symlinked_directory_leads_out,
test_a_result_with_an_output_outside_the_workspace_is_not_stored) and tests/e2e/test_cache.py
(test_a_stored_result_leading_outside_the_workspace_is_refused_with_a_message).
"""

from __future__ import annotations

import os
import re
import select
import subprocess
import textwrap
import time
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from ci_orchestrator.output.masking import Masker, mask, mask_values
from tests.helpers import REPO, cli_environment, run_cli, start_cli

if TYPE_CHECKING:
    from pathlib import Path

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


def run_with_secret(workdir: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """The command run where the environment holds SECRET as TOKEN, and `env`."""
    return run_cli(workdir, *args, env=cli_environment(workdir, TOKEN=SECRET, **env))


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
    result = run_with_secret(workdir, "run", "secrets.yml", "--output", output, "-j", "1")
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
    result = run_with_secret(workdir, "run", "secrets.yml", "-j", "1", **env)
    assert result.returncode == 1
    console = result.stdout + result.stderr
    # The only place a value may appear is the mask announcement itself, so GitHub hides it.
    assert f"::add-mask::{SECRET}" in console
    assert console.replace(f"::add-mask::{SECRET}", "").replace(f"::add-mask::{OTHER}", "").count(SECRET) == 0
    for path in (summary, outputs):
        assert SECRET not in path.read_text()
        assert OTHER not in path.read_text()


# Secrets set where a step sees them: its own `env`, an expression of a variable or a matrix
# value, the playbook's `env` over the calling environment, a multi-line value.
WHERE_SET = r"""
name: where-set
secrets: [OWN, FROM_VAR, BEARER, FROM_MATRIX, BOTH, MULTI]
env: {BOTH: from-the-playbook-8c1}
fail-fast: false
steps:
  - id: own
    env:
      OWN: step-own-value-5d2
      FROM_VAR: "${{ vars.TOK }}"
      BEARER: "Bearer ${{ vars.PASS }}"
      MULTI: "first-line-a7f\nsecond-line-b3e\n"
    run: |
      echo "own=$OWN var=$FROM_VAR bearer=$BEARER both=$BOTH"
      echo "pass alone: ${BEARER#Bearer }"
      echo "multi: $MULTI"
      echo $MULTI
      printf '%s' "$MULTI" | tail -n 1
      exit 1
  - id: matrixed
    matrix: {k: [matrix-value-e4c]}
    env: {FROM_MATRIX: "${{ matrix.k }}"}
    run: echo "matrix=$FROM_MATRIX"; exit 1
"""
WHERE_SET_VALUES = [
    "step-own-value-5d2",
    "var-value-91a",
    "pass-value-0f3",
    "from-the-playbook-8c1",
    "first-line-a7f",
    "second-line-b3e",
    "matrix-value-e4c",
]


@pytest.mark.parametrize("github", [False, True], ids=["local", "github"])
def test_secrets_are_masked_with_the_values_the_steps_get(workdir: Path, github: bool) -> None:
    (workdir / "secrets.yml").write_text(WHERE_SET)
    summary, outputs = workdir / "step-summary.md", workdir / "outputs.txt"
    env = {"BOTH": "from-the-caller-3aa"}
    if github:
        env |= {"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary), "GITHUB_OUTPUT": str(outputs)}
    variables = ["--var", "TOK=var-value-91a", "--var", "PASS=pass-value-0f3"]
    result = run_with_secret(workdir, "run", "secrets.yml", "-j", "1", *variables, **env)
    assert result.returncode == 1, result.stderr
    console = result.stdout + result.stderr
    if github:
        announced = {line.removeprefix("::add-mask::") for line in console.splitlines()}
        assert set(WHERE_SET_VALUES) <= announced
        console = "\n".join(line for line in console.splitlines() if not line.startswith("::add-mask::"))
    written = everything_written(workdir)
    assert {".ci-orchestrator/reports/run.json", ".ci-orchestrator/reports/summary.md"} <= set(written)
    for where, text in {"console": console, **written}.items():
        if where.endswith("history.db"):
            continue  # the local run database keeps instance ids, which hold matrix values
        for value in WHERE_SET_VALUES:
            assert value not in text, (where, value)
    logs = "".join(text for name, text in written.items() if name.endswith(".log"))
    # The steps got the values; what they printed of them is masked, line by line too.
    assert "own=*** var=*** bearer=*** both=***" in logs
    assert "pass alone: ***" in logs
    assert "*** ***" in logs  # `echo $MULTI`: the lines, on one line
    assert "matrix=***" in logs
    repro = written[".ci-orchestrator/reports/summary.md"]
    assert "--var 'TOK=***' --var 'PASS=***'" in repro
    assert "`matrixed (***)`" in repro


def test_one_rule_masks_text_and_streams() -> None:
    secrets = ["tok-1", "multi\nline-x\n", "  ", ""]
    assert mask_values(secrets) == ("multi\nline-x\n", "line-x", "multi", "tok-1")
    assert mask_values(["a", " ab ", "abc", '{\n  "k": "json-1"\n}']) == (
        '{\n  "k": "json-1"\n}',
        '"k": "json-1"',
    )
    text = "a tok-1 b multi\nline-x\n c line-x d multi"
    masker = Masker(secrets)
    streamed = b"".join(masker.feed(text[i : i + 3].encode()) for i in range(0, len(text), 3))
    assert mask(text, secrets) == (streamed + masker.flush()).decode() == "a *** b *** c *** d ***"


SHORT = """\
name: short
secrets: [TOKEN, TINY, JSON]
fail-fast: false
steps:
  - id: prints
    run: |
      echo "a banana; $TOKEN"
      printf '%s\\n' "$JSON" | sed -n 2p
      echo "empty: {}"
  - id: fails
    run: echo "a failure"; exit 3
"""

JSON_SECRET = '{\n  "key": "json-secret-1234"\n}\n'


def test_too_short_secrets_are_not_masked_and_said_so_once(workdir: Path) -> None:
    (workdir / "short.yml").write_text(SHORT)
    result = run_with_secret(workdir, "run", "short.yml", TINY="a", JSON=JSON_SECRET)
    assert result.returncode == 1, result.stderr
    warning = "secret TINY is shorter than 4 characters: not masked, it would hide ordinary text"
    assert result.stderr.count(warning) == 1, result.stderr
    assert "JSON is shorter" not in result.stderr  # only its lines `{` and `}` are, and they are kept
    written = everything_written(workdir)
    log = "".join(text for name, text in written.items() if name.endswith("prints.log"))
    assert "a banana; ***" in log
    assert "\n  ***\nempty: {}\n" in log  # a line of the JSON value is masked, a brace is not
    summary = written[".ci-orchestrator/reports/summary.md"]
    assert "<details>" in summary
    assert "gantt" in summary
    assert "det***ils" not in summary and "g***ntt" not in summary
    for where, text in written.items():
        assert "json-secret-1234" not in text, where
        assert SECRET not in text, where


STREAMED = """\
name: streamed
secrets: [TOKEN]
steps:
  - id: talk
    run: |
      echo "first line"
      sleep 1
      touch second.flag
      echo "second line"
"""


def test_a_long_secret_does_not_hold_back_streamed_lines(workdir: Path) -> None:
    # A line ends with a line break, which no value begins with: nothing to wait for.
    (workdir / "streamed.yml").write_text(STREAMED)
    env = cli_environment(workdir, TOKEN="f" * 3000)
    command = ("run", "streamed.yml", "--output", "stream")
    with start_cli(workdir, *command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT) as process:
        assert process.stdout is not None
        seen = b""
        deadline = time.monotonic() + 30
        while b"first line" not in seen and time.monotonic() < deadline:
            ready, _, _ = select.select([process.stdout], [], [], deadline - time.monotonic())
            chunk = os.read(process.stdout.fileno(), 65536) if ready else b""
            if not chunk:
                break
            seen += chunk
        # The first line reached the console while the step was still sleeping.
        assert b"first line" in seen, seen.decode(errors="replace")
        assert not (workdir / "second.flag").exists()
        rest, _ = process.communicate(timeout=60)
    assert process.returncode == 0, (seen + rest).decode(errors="replace")
    assert b"second line" in seen + rest


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
    # Hostile inputs fed to the action's scripts: tests/e2e/test_action.py
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
    result = run_with_secret(workdir, "run", "env.yml")
    assert result.returncode == 0, result.stderr
    assert (workdir / "seen.txt").read_text() == '"; touch pwned-1; echo "|$(touch pwned-2)\n'
    assert not list(workdir.glob("pwned-*"))
