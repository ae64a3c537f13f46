"""The cache's values as files: stored logs written back out."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ci_orchestrator.cache.entries import LogWriter

if TYPE_CHECKING:
    from pathlib import Path


def test_empty_logs_share_one_file_and_logs_with_text_get_their_own(tmp_path: Path) -> None:
    writer = LogWriter()
    logs = tmp_path / "logs"
    for name, content in (("a", b""), ("b", b"text\n"), ("c", b""), ("d", b"")):
        writer.write(logs / f"{name}.log", content)  # the folder is made when missing
    assert {name: (logs / f"{name}.log").read_bytes() for name in "abcd"} == {
        "a": b"",
        "b": b"text\n",
        "c": b"",
        "d": b"",
    }
    inode = (logs / "a.log").stat().st_ino
    assert (logs / "c.log").stat().st_ino == (logs / "d.log").stat().st_ino == inode
    assert (logs / "b.log").stat().st_ino != inode


def test_an_empty_log_written_into_since_is_not_linked_to(tmp_path: Path) -> None:
    writer = LogWriter()
    writer.write(tmp_path / "a.log", b"")
    (tmp_path / "a.log").write_bytes(b"appended by someone\n")
    writer.write(tmp_path / "b.log", b"")
    assert (tmp_path / "b.log").read_bytes() == b""
    assert (tmp_path / "b.log").stat().st_ino != (tmp_path / "a.log").stat().st_ino


def test_a_log_already_there_is_overwritten(tmp_path: Path) -> None:
    writer = LogWriter()
    writer.write(tmp_path / "a.log", b"")
    (tmp_path / "b.log").write_bytes(b"old text\n")
    writer.write(tmp_path / "b.log", b"")
    assert (tmp_path / "b.log").read_bytes() == b""
