"""What is said of globs that match no file: the near path a typo meant, and the outputs of steps
upstream that will make what an `inputs` glob names."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from ci_orchestrator.cache.digests import FileDigests
from ci_orchestrator.cache.patterns import PatternNotices

if TYPE_CHECKING:
    from pathlib import Path


@pytest.fixture
def notices(tmp_path: Path) -> PatternNotices:
    (tmp_path / "src" / "pkg").mkdir(parents=True)
    (tmp_path / "src" / "pkg" / "mod.py").write_text("")
    (tmp_path / "requirements.txt").write_text("")
    (tmp_path / "dist").mkdir()
    return PatternNotices(FileDigests(tmp_path))


@pytest.mark.parametrize(
    ("pattern", "meant"),
    [
        ("scr/**", "src/**"),
        ("requirments.txt", "requirements.txt"),
        ("src/pkgs/*.py", "src/pkg/*.py"),
        ("./src/pgk/mod.py", "src/pkg/mod.py"),
        ("docs/**", None),  # nothing close
        ("src/*/nothing.py", None),  # past a wildcard: not guessed
        ("scr/*.rs", None),  # the near folder holds no such file
        ("../elsewhere/x", None),
    ],
)
def test_the_near_glob_a_typo_meant(notices: PatternNotices, pattern: str, meant: str | None) -> None:
    assert notices.near(pattern) == meant


@pytest.mark.parametrize(
    ("pattern", "outputs", "made"),
    [
        ("dist/**", ["dist/"], True),  # the folder is there but empty: not made yet
        ("build/**", ["build/"], True),
        ("build/app.whl", ["build/*.whl"], True),
        ("build", ["build/lib/x.so"], True),
        ("build/app.whl", ["out/"], False),
        ("build/app.whl", ["src/"], False),  # src/ holds files already: made, and missed
    ],
)
def test_inputs_a_step_upstream_will_make(
    notices: PatternNotices, pattern: str, outputs: list[str], made: bool
) -> None:
    assert notices.made_upstream(pattern, outputs) is made
