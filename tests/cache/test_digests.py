"""File digests: what a glob matches and the content digest of each file, from real files."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from ci_orchestrator.cache.digests import FileDigests, digest_file

if TYPE_CHECKING:
    from pathlib import Path


@pytest.fixture
def root(tmp_path: Path) -> Path:
    for name, content in {"a.txt": "alpha", "src/b.py": "beta", "src/deep/c.py": "gamma"}.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(content)
    (tmp_path / "src" / "run.sh").write_text("#!/bin/sh\n")
    (tmp_path / "src" / "run.sh").chmod(0o750)
    return tmp_path


@pytest.mark.parametrize(
    "pattern", ["a.txt", "./a.txt", "src", "src/", "src/**/*.py", "*.txt", "missing.txt", "."]
)
def test_digests_of_a_pattern_are_the_digests_of_what_it_expands_to(root: Path, pattern: str) -> None:
    files = FileDigests(root)
    assert files.digests_of(pattern) == FileDigests(root).digests(files.expand(pattern))


def test_state_is_the_digest_and_permission_bits_of_a_regular_file_only(root: Path) -> None:
    files = FileDigests(root)
    assert files.state("src/run.sh") == (digest_file(root / "src" / "run.sh"), 0o750)
    assert files.state("src") is None  # a directory has no content digest
    assert files.state("missing.txt") is None


def test_a_file_rewritten_gets_its_new_digest(root: Path) -> None:
    files = FileDigests(root)
    before = files.digests_of("a.txt")
    (root / "a.txt").write_text("changed, and longer")
    after = files.digests_of("a.txt")
    assert before != after
    assert after == {"a.txt": digest_file(root / "a.txt")}
    assert files.state("a.txt") == (after["a.txt"], (root / "a.txt").stat().st_mode & 0o777)


@pytest.mark.parametrize("pattern", ["src", "src/d*", "s?c", "*/deep", "src/**", "[s]rc"])
def test_a_directory_matched_by_a_literal_or_a_wildcard_stands_for_every_file_below_it(
    root: Path, pattern: str
) -> None:
    below = {"src": ["src/b.py", "src/deep/c.py", "src/run.sh"], "src/deep": ["src/deep/c.py"]}
    wanted = below["src/deep" if "deep" in pattern or "d*" in pattern else "src"]
    assert list(FileDigests(root).expand(pattern)) == wanted


def test_a_wildcard_still_matches_only_the_files_it_names_beside_the_directories(root: Path) -> None:
    (root / "src" / "deep.py").write_text("a file named like the folder\n")
    files = FileDigests(root)
    assert files.expand("src/*.py") == ("src/b.py", "src/deep.py")
    assert files.expand("src/deep*") == ("src/deep.py", "src/deep/c.py")
    assert files.expand("*") == ("a.txt", "src/b.py", "src/deep.py", "src/deep/c.py", "src/run.sh")


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("src/../a.txt", ("a.txt",)),
        ("./src//deep/./c.py", ("src/deep/c.py",)),
        ("src/deep/../*.py", ("src/b.py",)),
        ("{root}/src/deep", ("src/deep/c.py",)),
        (".", ("a.txt", "src/b.py", "src/deep/c.py", "src/run.sh")),
    ],
)
def test_patterns_are_normalised_and_matches_are_root_relative(
    root: Path, pattern: str, expected: tuple[str, ...]
) -> None:
    assert FileDigests(root).expand(pattern.format(root=root)) == expected


@pytest.mark.parametrize(
    "pattern",
    ["a.txt", "src", "src/**", "src/**/*.py", "**", "**/*.py", "*", "src/*", "*/deep/*.py", ".", "x/../s*/*"],
)
def test_covers_names_exactly_the_files_expand_finds(root: Path, pattern: str) -> None:
    """What a stored result may hold is judged from names alone, as the walk would find them: never
    in `.git`, the tool's own folder or a folder to skip, unless named literally."""
    hidden = (".git/hooks/pre-commit", "src/.git/config", ".ci-orchestrator/cache/x.py")
    for name in (*hidden, "cache/y.py"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text("planted")
    files = FileDigests(root, skip=[root / "cache"])
    every = {*FileDigests(root).expand("."), *hidden}
    found = set(files.expand(pattern))
    assert {name for name in every if files.covers(pattern, name)} == found
    assert files.covers(".git/hooks/pre-commit", ".git/hooks/pre-commit")  # named literally
    assert not files.covers("../outside/**", "outside/a.txt")
