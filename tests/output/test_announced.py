"""A step's log as GitHub keeps it: what the step announces with `::add-mask::` is `***` from the
line of the announcement on, whether the log comes through a pipe in chunks or is a file."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from hypothesis import given, settings
from hypothesis import strategies as st

from ci_orchestrator.output.announced import LONGEST_LINE, AnnouncedMasks, mask_file

if TYPE_CHECKING:
    from pathlib import Path

LOG = (
    b"before tok-12345\n"
    b"::add-mask::tok-12345\n"
    b"after tok-12345 x\r\n"
    b"  ##[ADD-MASK]other-value\r"
    b"other-value tok-12345\n"
    b"::add-mask::abc\n"  # too short to be masked, as `secrets:`
    b"abc\n"
    b"::Add-Mask::multi%0Aline-two\n"
    b"multi\nline-two and multi\nline-two\n"
    b"::add-mask::pct%25sign\n"
    b"pct%sign\n"
    b"::add-mask::bytes-\xff\xfe-value\n"
    b"bytes-\xff\xfe-value end"
)
MASKED = (
    b"before tok-12345\n"
    b"::add-mask::***\n"
    b"after *** x\r\n"
    b"  ##[ADD-MASK]***\r"
    b"*** ***\n"
    b"::add-mask::abc\n"
    b"abc\n"
    b"::Add-Mask::***\n"
    b"*** and ***\n"  # the value whole, as it spans two lines
    b"::add-mask::***\n"
    b"***\n"
    b"::add-mask::***\n"
    b"*** end"
)


def masked(data: bytes, cuts: list[int]) -> tuple[bytes, tuple[str, ...]]:
    stream = AnnouncedMasks()
    out = []
    start = 0
    for cut in sorted(cuts):
        out.append(stream.feed(data[start:cut]))
        start = cut
    out.append(stream.feed(data[start:]))
    out.append(stream.flush())
    return b"".join(out), stream.values


def test_a_value_is_masked_from_the_line_of_its_announcement_on() -> None:
    text, values = masked(LOG, [])
    assert text == MASKED
    assert values == ("tok-12345", "other-value", "multi\nline-two", "pct%sign", "bytes-\udcff\udcfe-value")


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=len(LOG)), max_size=12))
def test_chunks_cut_anywhere_give_the_same_bytes(cuts: list[int]) -> None:
    assert masked(LOG, cuts) == (MASKED, masked(LOG, [])[1])


def test_a_log_that_announces_nothing_passes_as_it_is() -> None:
    data = b"a -mask and --MASK flag\n::add-mask::\n##[group]x ##[add-mask]not the first\n" + b"z" * 100_000
    assert masked(data, [7, 70_000]) == (data, ())


def test_a_line_longer_than_the_longest_held_is_passed_on_in_pieces() -> None:
    stream = AnnouncedMasks()
    out = stream.feed(b"y" * (LONGEST_LINE + 10))
    assert len(out) == LONGEST_LINE + 10  # not held back whole
    assert stream.feed(b"tail\n") == b"tail\n"


def test_a_file_is_rewritten_only_when_it_announces(tmp_path: Path) -> None:
    plain = tmp_path / "plain.log"
    plain.write_bytes(b"nothing to hide\n" * 1000)
    inode = plain.stat().st_ino
    assert mask_file(plain) == ()
    assert plain.stat().st_ino == inode  # left alone

    log = tmp_path / "step.log"
    log.write_bytes(LOG)
    log.chmod(0o640)
    assert mask_file(log) == masked(LOG, [])[1]
    assert log.read_bytes() == MASKED
    assert log.stat().st_mode & 0o777 == 0o640
    assert sorted(path.name for path in tmp_path.iterdir()) == ["plain.log", "step.log"]


def test_a_file_whose_masked_copy_cannot_be_written_still_tells_its_values(tmp_path: Path) -> None:
    log = tmp_path / "step.log"
    log.write_bytes(LOG)
    tmp_path.chmod(0o500)  # no new file in the folder (root writes all the same)
    try:
        values = mask_file(log)
    finally:
        tmp_path.chmod(0o700)
    assert values == masked(LOG, [])[1]
    assert log.read_bytes() in (LOG, MASKED)
    assert os.listdir(tmp_path) == ["step.log"]
