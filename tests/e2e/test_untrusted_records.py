"""A run record is untrusted input (another job's artifact): `report merge` opens no file a
record names, shows what a record says only as text, and lets nothing in it reach GitHub as a
workflow command, whatever the record holds."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from typing import TYPE_CHECKING, Any

import pytest

from tests.github_runner import Runner
from tests.helpers import cli_environment, run_cli

if TYPE_CHECKING:
    from pathlib import Path

LOOT = "AWS_SECRET_ACCESS_KEY=loot-7d1f0e"


def step(step_id: str, status: str = "failed", **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": step_id,
        "step": step_id.split(" ", maxsplit=1)[0],
        "matrix": {},
        "status": status,
        "exit_code": 1 if status == "failed" else 0,
        "started": "2026-11-25T10:00:00.000000Z",
        "finished": "2026-11-25T10:00:02.000000Z",
        "duration": 2.0,
        "attempts": 1,
        "cached": False,
        "reason": None,
        "log": None,
    }
    return base | fields


def record(*steps: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {
        "run_id": "r-1",
        "playbook": "ci",
        "status": "failed",
        "started": "2026-11-25T10:00:00.000000Z",
        "finished": "2026-11-25T10:00:05.000000Z",
        "steps": list(steps),
        "stats": {},
    } | fields


def merge(work: Path, *records: dict[str, Any]) -> tuple[Any, Runner, dict[str, str]]:
    names = []
    for number, data in enumerate(records, start=1):
        (work / f"run-{number}.json").write_text(json.dumps(data), encoding="utf-8")
        names.append(f"run-{number}.json")
    files = {"GITHUB_STEP_SUMMARY": work / "step_summary.md", "GITHUB_OUTPUT": work / "output"}
    for path in files.values():
        path.touch()
    env = cli_environment(work, GITHUB_ACTIONS="true", CI="true", **{k: str(v) for k, v in files.items()})
    process = run_cli(work, "report", "merge", *names, env=env)
    runner = Runner().read(process.stdout).read(process.stderr)
    reports = work / ".ci-orchestrator" / "reports"
    texts = {
        name: path.read_text(encoding="utf-8") if path.exists() else ""
        for name, path in {
            "summary": reports / "summary.md",
            "junit": reports / "junit.xml",
            "json": reports / "run.json",
            "step_summary": files["GITHUB_STEP_SUMMARY"],
            "output": files["GITHUB_OUTPUT"],
        }.items()
    }
    texts["stdout"], texts["stderr"] = process.stdout, process.stderr
    return process, runner, texts


def outside_code(markdown: str) -> str:
    """The summary without its fenced blocks and code spans: where markup would act."""
    without_blocks = re.sub(r"(?ms)^(`{3,}).*?^\1$", "", markdown)
    return re.sub(r"(`+)(?:(?!\1).)+?\1", "", without_blocks)


def test_merge_reads_no_file_a_record_names(tmp_path: Path) -> None:
    (tmp_path / "credentials").write_text(f"{LOOT}\n", encoding="utf-8")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "env").write_text(f"{LOOT}\n", encoding="utf-8")
    work = tmp_path / "merge-job"
    work.mkdir()
    (work / "step.log").write_text(f"{LOOT}\n", encoding="utf-8")
    crafted = record(
        step("relative", log="step.log"),
        step("parent", log="../credentials"),
        step("absolute", log=str(tmp_path / "elsewhere" / "env")),
        step("timed", "timed-out", exit_code=124, log="/proc/self/environ"),
    )
    process, _, texts = merge(work, crafted)

    assert process.returncode == 1, process.stderr
    for name, text in texts.items():
        assert "loot-7d1f0e" not in text, name
    # Where the log is, said instead of its lines; a JUnit failure always has text.
    summary = texts["summary"]
    assert "../credentials" in summary and "not in the run record" in summary
    failures = {
        case.get("name"): case.find("failure") for case in ET.fromstring(texts["junit"]).iter("testcase")
    }
    for name, failure in failures.items():
        assert failure is not None, name
        assert (failure.text or "").strip(), name
    assert "../credentials" in (failures["parent"].text or "")


def test_the_tail_a_record_carries_is_shown_as_text_and_kept_short(tmp_path: Path) -> None:
    hostile = "```` </details> <script>x</script> ::error::pwn ##[error]pwn"
    tail = "\n".join(f"line {n} {hostile}" for n in range(5000))
    crafted = record(step("build", log="build.log", log_tail=tail))
    process, runner, texts = merge(tmp_path, crafted)

    assert process.returncode == 1, process.stderr
    assert [command.name for command in runner.commands] == []
    summary = texts["summary"]
    assert "<script>" not in outside_code(summary)
    assert outside_code(summary).count("<details>") == outside_code(summary).count("</details>") == 1
    assert "line 4999" in summary and "line 0 " not in summary  # the end of it, not the whole
    again = json.loads(texts["json"])
    assert len(again["steps"][0]["log_tail"].encode("utf-8")) <= 16 * 1024


HOSTILE_ID = "x (</details><script>alert(1)</script> ##[error]pwn | ``` [l](http://e) ::warning::pwn)"


def test_record_text_is_text_in_every_merged_report(tmp_path: Path) -> None:
    crafted = record(
        step(HOSTILE_ID, reason="<img src=x onerror=alert(1)> ##[add-mask]pwn", log_tail="boom"),
        step("::error::pwn", "skipped", reason="</details>", exit_code=None),
        playbook="##[error]pwn </details>",
        notes=["##[error]pwn"],
        stats={"critical_path": [HOSTILE_ID]},
    )
    process, runner, texts = merge(tmp_path, crafted)

    assert process.returncode == 1, process.stderr
    assert [command.name for command in runner.commands] == []
    # Markup from the record never becomes markup: no raw tag, balanced details and fences.
    text = outside_code(texts["summary"])
    assert "<script>" not in text and "<img" not in text
    assert text.count("<details>") == text.count("</details>")
    assert "](http" not in text
    ET.fromstring(texts["junit"])  # well-formed


@pytest.mark.parametrize(
    "change",
    [
        {"status": "##[error]pwn"},
        {"steps": [step("a", "::error::pwn\n::warning::pwn")]},
        {"shard": "##[add-mask]pwn"},
        {"started": "##[error]pwn"},
        {"steps": [step("a") | {"outputs": {"::error::pwn": 1}}]},
        {"steps": [step("a") | {"outputs": ["##[error]pwn"]}]},
    ],
)
def test_a_bad_record_is_an_error_that_acts_as_no_command(tmp_path: Path, change: dict[str, Any]) -> None:
    process, runner, _ = merge(tmp_path, record(step("a")) | change)
    assert process.returncode == 2
    assert "run-1.json" in process.stderr and "Traceback" not in process.stderr
    assert [command.name for command in runner.commands] == []
