"""Values no one means but anyone can type, end to end through the real command: durations past
what clocks and waits hold, numbers thousands of digits long, names longer than the system
takes, bytes that are not UTF-8, NUL characters. Each is a clear error (exit 2, located when it
comes from a file) or simply works; never a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest

from tests.helpers import cli_environment

if TYPE_CHECKING:
    from pathlib import Path

DIGITS = "9" * 5000  # past the 4300 digits Python's int() reads from text
LONG = "p" * 300  # past the 255 bytes of a file name
PLAIN = "name: ci\nsteps:\n  - id: a\n    run: echo ran a\n"


def run(work: Path, *args: str | bytes) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "ci_orchestrator", *args],
        cwd=work,
        env=cli_environment(work),
        capture_output=True,
        text=True,
        errors="replace",
        timeout=120,
        check=False,
    )
    assert "Traceback" not in result.stderr, result.stderr
    return result


def project(work: Path, playbook: str = PLAIN, files: dict[str, str] | None = None) -> Path:
    (work / "playbooks").mkdir(parents=True, exist_ok=True)
    (work / "playbooks" / "ci.yml").write_text(playbook, encoding="utf-8")
    for name, text in (files or {}).items():
        path = work / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return work


def refused(result: subprocess.CompletedProcess[str], *expected: str) -> None:
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    for text in expected:
        assert text in result.stderr, result.stderr
    assert not (result.stdout.strip()), result.stdout  # nothing ran


# ---------------------------------------------------------------- durations and sizes


@pytest.mark.parametrize(
    ("playbook", "settings", "args", "expected"),
    [
        (PLAIN, None, ("--timeout", "600h"), "--timeout: invalid duration '600h': at most 168h"),
        (PLAIN, None, ("--timeout", "1e300"), "at most 168h"),
        (PLAIN, None, ("--timeout", DIGITS), "at most 168h"),
        ("name: ci\ntimeout: 1e300\n" + PLAIN[9:], None, (), "ci.yml:2:10: timeout: invalid duration"),
        (PLAIN + "    timeout: 600h\n", None, (), "ci.yml:5:14: steps[0].timeout: invalid duration '600h'"),
        (
            PLAIN + "    timeout: ${{ matrix.t }}\n    matrix: {t: [999h]}\n",
            None,
            (),
            "steps[0].timeout: invalid duration '999h': at most 168h (7 days)",
        ),
        (PLAIN, 'timeout = "600h"\n', (), "ci-orchestrator.toml:1:1: timeout: invalid duration '600h'"),
        (PLAIN, 'cache-size = "' + "9" * 400 + 'TB"\n', (), "cache-size: invalid size"),
        (PLAIN, "cache-size = 1000000000000000000000000000000\n", (), "at most 1024TiB"),
        (PLAIN, f"concurrency = {DIGITS}\n", (), "ci-orchestrator.toml: invalid TOML: a number too long"),
    ],
)
def test_durations_and_sizes_past_the_limits_are_refused(
    tmp_path: Path, playbook: str, settings: str | None, args: tuple[str, ...], expected: str
) -> None:
    project(tmp_path, playbook)
    if settings is not None:
        (tmp_path / "ci-orchestrator.toml").write_text(settings, encoding="utf-8")
    refused(run(tmp_path, "run", *args), expected)


def test_the_longest_timeout_is_kept_by_a_real_run(tmp_path: Path) -> None:
    project(tmp_path, PLAIN + "    timeout: 168h\n")
    ran = run(tmp_path, "run", "--timeout", "168h", "--output", "quiet")
    assert ran.returncode == 0, ran.stderr


def test_a_script_header_timeout_past_the_limit_is_located(tmp_path: Path) -> None:
    project(
        tmp_path, "name: ci\nscripts: s\n", {"playbooks/s/0001_x.sh": "#!/bin/bash\n# Timeout: 600h\ntrue\n"}
    )
    refused(run(tmp_path, "run"), "0001_x.sh:2:3: Timeout: invalid duration '600h': at most 168h")


def test_a_prune_size_past_the_limit_is_refused(tmp_path: Path) -> None:
    refused(run(tmp_path, "cache", "prune", "--max-size", "9" * 400), "at most 1024TiB")


# ---------------------------------------------------------------- long numbers


def test_a_script_range_of_any_length_selects(tmp_path: Path) -> None:
    project(tmp_path, "name: ci\nscripts: s\n", {"playbooks/s/0007_x.sh": "#!/bin/sh\necho seven\n"})
    ran = run(tmp_path, "run", "--select", f"1-{DIGITS}", "--output", "quiet")
    assert ran.returncode == 0, ran.stderr
    record = json.loads((tmp_path / ".ci-orchestrator/reports/run.json").read_text())
    assert [step["id"] for step in record["steps"]] == ["0007"]
    refused(run(tmp_path, "run", "--select", f"{DIGITS}-1"), "its start is after its end")


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("--shard", f"1/{DIGITS}"), "N must be at most 256"),
        (("--shard", "1/257"), "N must be at most 256"),
        (("--shard", f"{DIGITS}/3"), "I must be between 1 and N"),
    ],
)
def test_shards_past_the_limit_are_refused(tmp_path: Path, args: tuple[str, ...], expected: str) -> None:
    project(tmp_path)
    refused(run(tmp_path, "run", *args), expected)


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        (f"schedule: ['*/1 {DIGITS} * * *']\n", "ci.yml:2:12: schedule[0]: "),
        ("schedule: ['*/\u00b2 * * * *']\n", "has a bad step"),
        (f"schedule: ['{DIGITS} * * * *']\n", "is out of range 0-59"),
        (PLAIN[9:] + f"    matrix: {{x: [{DIGITS}]}}\n", "ci.yml:5:18: steps[0].matrix.x: '9999"),
    ],
)
def test_long_numbers_in_a_playbook_are_located(tmp_path: Path, lines: str, expected: str) -> None:
    body = lines if lines.startswith("steps") else lines + PLAIN[9:]
    project(tmp_path, "name: ci\n" + body)
    refused(run(tmp_path, "run"), expected)


@pytest.mark.parametrize(
    ("expression", "printed"),
    [
        (f"fromJSON('{DIGITS}') == 1", "false"),  # JSON reads it as a double
        (f"fromJSON('[{DIGITS}]')[0] > 1", "true"),
    ],
)
def test_long_numbers_in_json_are_numbers_as_on_github(tmp_path: Path, expression: str, printed: str) -> None:
    project(tmp_path, f'name: ci\nsteps:\n  - id: a\n    run: "echo ${{{{ {expression} }}}}"\n')
    ran = run(tmp_path, "run", "--output", "quiet")
    assert ran.returncode == 0, ran.stderr
    record = json.loads((tmp_path / ".ci-orchestrator/reports/run.json").read_text())
    assert (tmp_path / record["steps"][0]["log"]).read_text() == f"{printed}\n"


@pytest.mark.parametrize(
    "expression",
    ["0x" + "f" * 400 + " > 1", "0x" + "f" * 4000, DIGITS, f"fromJSON('[1]')[0x{'f' * 400}]"],
)
def test_long_number_literals_are_refused_as_github_refuses_them(tmp_path: Path, expression: str) -> None:
    """GitHub's runner reads a literal as a double or a 32-bit hex number: past them, it refuses."""
    project(tmp_path, f'name: ci\nsteps:\n  - id: a\n    run: "echo ${{{{ {expression} }}}}"\n')
    refused(run(tmp_path, "run"), "ci.yml:4:5: steps[0].run: ")


def test_a_format_placeholder_of_any_length_is_an_error(tmp_path: Path) -> None:
    project(
        tmp_path, f"name: ci\nsteps:\n  - id: a\n    run: \"echo ${{{{ format('{{{DIGITS}}}', 1) }}}}\"\n"
    )
    refused(run(tmp_path, "run"), "ci.yml:4:5: steps[0].run: format(): invalid format string '{9999")


# ---------------------------------------------------------------- names the system refuses


@pytest.mark.parametrize(
    ("args", "playbook", "expected"),
    [
        (("run", LONG), PLAIN, f"{LONG}: File name too long"),
        (("validate", LONG), PLAIN, f"{LONG}: File name too long"),
        (("run", "--config", LONG), PLAIN, "--config: settings file"),
        (("run",), f"name: ci\nscripts: {LONG}\n", "ci.yml:2:10: scripts: scripts folder"),
        (
            ("run",),
            f"name: ci\nsteps:\n  - id: a\n    script: {LONG}\n",
            "ci.yml:4:13: steps[0].script: script",
        ),
    ],
)
def test_names_longer_than_the_system_takes_are_errors(
    tmp_path: Path, args: tuple[str, ...], playbook: str, expected: str
) -> None:
    project(tmp_path, playbook)
    result = run(tmp_path, *args)
    refused(result, expected)
    assert "File name too long" in result.stderr


# ---------------------------------------------------------------- bytes that are not UTF-8


@pytest.mark.parametrize(
    "args",
    [
        (b"--var", b"V=a\xffb"),
        (b"--matrix", b"x=\xff"),
        (b"--select", b"a (\xff)"),
        (b"playbooks/\xff.yml",),
        (b"--json", b"r\xff.json"),
    ],
)
def test_arguments_that_are_not_utf8_are_refused(tmp_path: Path, args: tuple[bytes, ...]) -> None:
    project(tmp_path, PLAIN + "    matrix: {x: ['1']}\n")
    (tmp_path / "playbooks" / os.fsdecode(b"\xff.yml")).write_text(PLAIN, encoding="utf-8")
    result = run(tmp_path, b"run", *args)
    refused(result, "is not UTF-8 text")
    assert "\\xff" in result.stderr
    assert not (tmp_path / ".ci-orchestrator" / "reports").exists()


def test_a_numbered_script_whose_name_is_not_utf8_is_located(tmp_path: Path) -> None:
    project(tmp_path, "name: ci\nscripts: s\n")
    folder = tmp_path / "playbooks" / "s"
    folder.mkdir()
    (folder / os.fsdecode(b"0001_\xff.sh")).write_text("echo hi\n")
    refused(run(tmp_path, "run"), "playbooks/s: script '0001_\\xff.sh' has a file name that is not UTF-8")


# ---------------------------------------------------------------- NUL characters


def test_a_nul_in_a_playbook_env_value_is_located(tmp_path: Path) -> None:
    project(tmp_path, PLAIN + '    env: {X: "a\\0b"}\n')
    refused(run(tmp_path, "run"), "ci.yml:5:14: steps[0].env.X: holds a NUL character")


@pytest.mark.parametrize(
    ("keys", "reason"),
    [
        ('    working-directory: "a\\0b"\n', "the working directory holds a NUL character"),
        ('    matrix: {x: ["\\0"]}\n', "environment variable MATRIX_X holds a NUL character"),
        ('    command: ["echo", "a\\0b"]\n', "argument 1 holds a NUL character"),
    ],
)
def test_a_step_given_a_nul_fails_to_start_and_says_why(tmp_path: Path, keys: str, reason: str) -> None:
    body = PLAIN.replace("    run: echo ran a\n", "") if "command" in keys else PLAIN
    project(tmp_path, body + keys + "  - id: b\n    run: echo ran b\n")
    ran = run(tmp_path, "run", "--no-fail-fast", "--output", "quiet")
    assert ran.returncode == 1, ran.stderr
    record = json.loads((tmp_path / ".ci-orchestrator/reports/run.json").read_text())
    first, second = record["steps"]
    assert first["status"] == "failed"
    assert first["reason"] == f"cannot start: {reason}, which no process can be given"
    assert second["status"] == "passed"  # the run went on


def test_a_script_text_that_is_not_unicode_fails_to_start_and_says_why(tmp_path: Path) -> None:
    # fromJSON reads a lone surrogate escape, which no file can hold.
    project(
        tmp_path, 'name: ci\nsteps:\n  - id: a\n    run: "echo ${{ fromJSON(\'\\"\\\\ud800\\"\') }}; echo"\n'
    )
    ran = run(tmp_path, "run", "--output", "quiet")
    assert ran.returncode == 1, ran.stderr
    record = json.loads((tmp_path / ".ci-orchestrator/reports/run.json").read_text())
    assert record["steps"][0]["reason"] == "cannot write the step's script: its text is not valid Unicode"


def test_a_record_whose_text_is_not_unicode_is_refused_by_repro(tmp_path: Path) -> None:
    project(tmp_path, PLAIN + "  - id: b\n    run: 'false'\n")
    assert run(tmp_path, "run", "--output", "quiet").returncode == 1
    record = json.loads((tmp_path / ".ci-orchestrator/reports/run.json").read_text())
    record["vars"] = {"X": "\ud800"}  # JSON's escape of half a character: no text holds it
    (tmp_path / "crafted.json").write_text(json.dumps(record), encoding="utf-8")
    refused(run(tmp_path, "repro", "crafted.json"), "not a run record: '\\ud800' is not valid Unicode text")


@pytest.mark.parametrize(
    ("settings", "args", "expected"),
    [
        (f'concurrency = "{DIGITS}"\n', (), None),
        (None, ("-j", DIGITS), None),
        (
            'concurrency = "\u00b2"\n',
            (),
            "concurrency: expected a number of processes (1 or more) or 'auto', got",
        ),
        (None, ("-j", "\u00b2"), "--concurrency '\u00b2': expected a number or 'auto'"),
    ],
)
def test_a_concurrency_of_any_length_is_no_limit_or_refused(
    tmp_path: Path, settings: str | None, args: tuple[str, ...], expected: str | None
) -> None:
    project(tmp_path)
    if settings is not None:
        (tmp_path / "ci-orchestrator.toml").write_text(settings, encoding="utf-8")
    result = run(tmp_path, "run", "--output", "quiet", *args)
    if expected is None:
        assert result.returncode == 0, result.stderr
    else:
        refused(result, expected)


@pytest.mark.parametrize(
    "command",
    [("repro",), ("report", "merge"), ("report", "compare"), ("report", "comment"), ("run", "--baseline")],
)
def test_a_run_record_that_is_a_device_is_refused_not_read_for_ever(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    project(tmp_path)
    refused(run(tmp_path, *command, "/dev/zero"), "/dev/zero: cannot read run record: not a regular file")


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("ci-orchestrator.toml", "concurrency = " + "[" * 50_000 + "]" * 50_000 + "\n"),
        ("ci-orchestrator.toml", "a = " + "{b = " * 5_000 + "1" + "}" * 5_000 + "\n"),
        ("pyproject.toml", "[tool.ci-orchestrator]\nx = " + "[" * 50_000 + "]" * 50_000 + "\n"),
    ],
)
def test_settings_nested_past_what_the_reader_recurses_are_refused(
    tmp_path: Path, name: str, text: str
) -> None:
    # Before: a RecursionError traceback from the TOML reader, for `run`, `plan` and `config get`.
    project(tmp_path, files={name: text})
    for command in (("run",), ("plan",), ("config", "get", "concurrency")):
        refused(run(tmp_path, *command), f"{name}: invalid TOML: nested too deeply")


def test_a_settings_file_that_is_a_fifo_is_refused_not_waited_on(tmp_path: Path) -> None:
    project(tmp_path)
    os.mkfifo(tmp_path / "settings.toml")
    refused(
        run(tmp_path, "run", "--config", "settings.toml"),
        "settings file 'settings.toml' is not a regular file",
    )
