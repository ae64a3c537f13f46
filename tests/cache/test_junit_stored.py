"""A step's `junit:` files in the step cache: stored with its result, restored with it (so a
cached step reports the same tests), keying it, and no more trusted than its outputs."""

from __future__ import annotations

import dataclasses
import shutil
from typing import TYPE_CHECKING

import pytest

from tests.cache.test_step_cache import instance, key_in_run, open_cache, stored

if TYPE_CHECKING:
    from pathlib import Path

    from ci_orchestrator.playbook.model import Instance

JUNIT = '<testsuite><testcase classname="t" name="ok"/></testsuite>\n'


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    (root / "src").mkdir(parents=True)
    (root / "src" / "main.py").write_text("print('main')\n")
    return root


def with_junit(item: Instance, *patterns: str) -> Instance:
    return dataclasses.replace(item, step=dataclasses.replace(item.step, junit=patterns))


def test_a_stored_result_holds_its_junit_files_and_puts_them_back(workspace: Path, warned: list[str]) -> None:
    item = with_junit(instance(outputs=("dist/*",)), "reports/*.xml")
    (workspace / "dist").mkdir()
    (workspace / "dist" / "app.whl").write_bytes(b"wheel")
    (workspace / "reports").mkdir()
    (workspace / "reports" / "unit.xml").write_text(JUNIT)
    with open_cache(workspace) as cache:
        stored(cache, workspace, item)
    shutil.rmtree(workspace / "reports")
    with open_cache(workspace) as cache:
        key = key_in_run(cache, item)
        assert key is not None
        entry = cache.take(key, log_path=workspace.parent / "restored.log")
        assert entry is not None
        assert entry.files == ("dist/app.whl", "reports/unit.xml")
    assert (workspace / "reports" / "unit.xml").read_text() == JUNIT
    assert warned == []


def test_the_junit_globs_key_the_step_and_explain_says_so(workspace: Path) -> None:
    plain = instance()
    item = with_junit(plain, "reports/*.xml")
    with open_cache(workspace) as cache:
        stored(cache, workspace, plain)
        before, after = key_in_run(cache, plain), key_in_run(cache, item)
        assert before is not None and after is not None
        # A result stored before `junit:` was added holds no JUnit file: it must not be served.
        assert before.digest != after.digest
        assert cache.explain(item, after) == ["the junit globs changed ([] -> ['reports/*.xml'])"]
        # A step without `junit:` keeps the key it had: its stored results still serve.
        assert "junit" not in before.manifest.to_json()
