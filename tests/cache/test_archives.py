"""Stored file names: which are accepted, and where they land in the workspace."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

import pytest

from ci_orchestrator.cache.archives import RestoreError, check_name, destination_inside

INSIDE = [
    "out/a.txt",
    "a",
    "./a",
    "a//b",
    "a/./b",
    "a/b/",
    ".hidden/x",
    "a..b/..c",
    "...",
    "dir with space/f",
]
OUTSIDE = ["/etc/passwd", "//host/x", "C:/x", "c:x", "..", "../a", "a/../../b", "a/..", "", ".", "./", "/"]


@pytest.mark.parametrize("name", INSIDE)
def test_names_inside_the_workspace_split_as_posix_paths_do(name: str) -> None:
    assert check_name(name) == list(PurePosixPath(name).parts)


@pytest.mark.parametrize("name", OUTSIDE)
def test_names_leading_out_or_naming_nothing_are_refused(name: str) -> None:
    with pytest.raises(RestoreError):
        check_name(name)


def test_a_destination_is_under_the_workspace(tmp_path: Path) -> None:
    assert destination_inside(tmp_path, "a//b/./c.txt") == tmp_path / "a" / "b" / "c.txt"
    (tmp_path / "link").symlink_to(tmp_path.parent)
    with pytest.raises(RestoreError, match="symlink"):
        destination_inside(tmp_path, "link/x.txt")
