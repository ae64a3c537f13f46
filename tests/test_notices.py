"""The warning channel: what the core says reaches the sink in place, and only the channel prints."""

from __future__ import annotations

import ast
import subprocess
from pathlib import Path

import pytest

from ci_orchestrator import notices
from ci_orchestrator.cache.step_cache import StepCache
from ci_orchestrator.errors import Location
from ci_orchestrator.history.recorder import HistoryRecorder
from ci_orchestrator.playbook.model import Playbook
from tests.helpers import start_cli

PACKAGE = Path(__file__).resolve().parent.parent / "ci_orchestrator"


def test_a_sink_sees_what_a_cache_and_a_history_that_cannot_be_used_say(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    (tmp_path / "history.db").mkdir()  # a folder where the database should be
    playbook = Playbook(name="ci", path="ci.yml", location=Location(file="ci.yml"))
    said: list[str] = []
    with notices.sent_to(said.append):
        cache = StepCache.open(blocker / "cache", workspace=tmp_path)
        recorder = HistoryRecorder.open(tmp_path / "history.db", playbook)
    cache.close()
    recorder.close()

    assert len(said) == 2, said
    assert said[0].startswith(f"cache at {blocker / 'cache'} is unusable (")
    assert said[0].endswith("; running without it")
    assert said[0] == cache.unusable  # kept: `cache stats` and `cache explain` answer with it
    assert said[1].startswith("run history unavailable: ")
    assert capfd.readouterr() == ("", "")  # the sink took them: nothing printed


def test_by_default_a_warning_is_one_line_on_stderr(capfd: pytest.CaptureFixture[str]) -> None:
    notices.warn("the history is full")
    assert capfd.readouterr() == ("", "ci-orchestrator: warning: the history is full\n")


def test_the_sink_before_is_back_after_the_block() -> None:
    outer: list[str] = []
    inner: list[str] = []
    with notices.sent_to(outer.append):
        with notices.sent_to(inner.append), pytest.raises(RuntimeError):
            notices.warn("inner")
            raise RuntimeError
        notices.warn("outer")
    assert (outer, inner) == (["outer"], ["inner"])


def test_held_warnings_are_said_at_the_end_in_order_even_when_the_block_raises() -> None:
    said: list[str] = []
    with notices.sent_to(said.append):
        with pytest.raises(RuntimeError), notices.held():
            notices.warn("first")
            notices.warn("second")
            assert said == []
            raise RuntimeError
        notices.warn("after")
    assert said == ["first", "second", "after"]


REFUSED = """\
name: ci
steps:
  - id: build
    run: echo built > ../outside.txt
    inputs: [playbooks/ci.yml]
    outputs: [../outside.txt]
  - id: after
    run: echo after
    needs: [build]
"""


def test_a_warning_said_while_steps_run_comes_after_the_run_s_output(workdir: Path) -> None:
    (workdir / "playbooks").mkdir()
    (workdir / "playbooks" / "ci.yml").write_text(REFUSED)
    process = start_cli(workdir, "run", stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output, _ = process.communicate(timeout=120)  # one stream: the order the reader sees
    assert process.returncode == 0, output
    lines = output.splitlines()
    assert lines[-2].startswith("ci passed in ")
    assert lines[-1] == (
        "ci-orchestrator: warning: build: result not cached:"
        " output '../outside.txt' climbs out of the workspace with '..'"
    )


def _strings(node: ast.AST) -> list[str]:
    return [
        part.value
        for part in ast.walk(node)
        if isinstance(part, ast.Constant) and isinstance(part.value, str)
    ]


def test_only_the_channel_prints_warnings_and_none_is_passed_around() -> None:
    printing: set[str] = set()
    passing: set[str] = set()
    for path in PACKAGE.rglob("*.py"):
        module = ".".join(path.relative_to(PACKAGE).with_suffix("").parts)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call):
                called = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
                if called in ("print", "write") and any("warning" in text for text in _strings(node)):
                    printing.add(module)
            elif isinstance(node, ast.arg) and node.arg in ("warn", "warnings"):
                passing.add(module)
    assert printing == {"notices"}
    assert passing == set()
