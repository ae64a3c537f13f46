"""Log tails for reports: read from the end, decoded whatever the bytes, ANSI stripped, secrets masked."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ci_orchestrator.output.masking import mask
from ci_orchestrator.reporters.logs import clean, clean_tail, log_end, read_tail, strip_ansi, xml_safe

if TYPE_CHECKING:
    from pathlib import Path


def test_a_missing_log_reads_as_empty(workdir: Path) -> None:
    assert read_tail("no-such.log") == ""
    assert read_tail(None) == ""
    assert read_tail(workdir) == ""  # a directory is not a log


def test_tail_keeps_the_last_lines(workdir: Path) -> None:
    (workdir / "step.log").write_text("".join(f"line {n}\n" for n in range(200)))

    tail = read_tail("step.log", lines=3)

    assert tail.splitlines() == ["line 197", "line 198", "line 199"]


def test_tail_of_a_huge_log_stays_within_its_byte_budget(workdir: Path) -> None:
    with (workdir / "big.log").open("wb") as file:
        for n in range(100_000):
            file.write(f"noise line {n:06d} ".encode() + b"x" * 30 + b"\n")
        file.write(b"the real error\n")

    tail = read_tail("big.log", lines=1000, max_bytes=4096)

    assert len(tail.encode()) <= 4096
    assert tail.endswith("the real error")
    assert tail.splitlines()[0].startswith("noise line ")  # begins at a whole line


def test_the_end_of_a_log_and_the_lines_before_it(workdir: Path) -> None:
    log = workdir / "a.log"
    assert log_end(log, lines=3) == ("", 0)  # missing
    log.write_text("one\ntwo\n")
    assert log_end(log, lines=3) == ("one\ntwo\n", 0)
    log.write_text("".join(f"line {i}\n" for i in range(10)) + "no end")
    assert log_end(log, lines=3) == ("line 8\nline 9\nno end", 8)
    # Past the bytes read: from the first whole line in them, the lines before counted all the same.
    log.write_text("x" * 100 + "\n" + "".join(f"{i}\n" for i in range(5)))
    assert log_end(log, lines=50, max_bytes=12) == ("0\n1\n2\n3\n4\n", 1)
    log.write_text("a\n" + "y" * 100)  # one long line at the end: its end
    assert log_end(log, lines=2, max_bytes=10) == ("y" * 10, 1)


def test_invalid_utf8_is_replaced_not_fatal(workdir: Path) -> None:
    (workdir / "bad.log").write_bytes(b"ok \xff\xfe\xc3 end\n")

    assert read_tail("bad.log") == "ok \ufffd\ufffd\ufffd end"


def test_a_cut_through_one_long_line_does_not_start_with_half_a_character(workdir: Path) -> None:
    (workdir / "one.log").write_bytes("é".encode() * 10_000)

    tail = read_tail("one.log", max_bytes=1001)  # odd: the cut falls inside a two-byte character

    assert tail
    assert set(tail) == {"é"}


def test_strip_ansi_removes_colours_titles_and_links() -> None:
    text = "\x1b[1;31mred\x1b[0m \x1b]0;title\x07\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\ \x1b[2K\x1b[Adone"

    assert strip_ansi(text) == "red link done"


def test_xml_safe_drops_what_xml_forbids_and_keeps_the_rest() -> None:
    text = "a\x00b\x1bc\x0bd\x7fe\ud800f\ufffeg\uffffh\ttab\nnl\r🙂é"

    assert xml_safe(text) == "abcd\x7fefgh\ttab\nnl\r🙂é"


def test_mask_replaces_every_secret_value() -> None:
    assert mask("token=abc123 and abc123x", ["abc123"]) == "token=*** and ***x"
    assert mask("nothing here", ["", "zzz"]) == "nothing here"


def test_a_secret_holding_another_is_masked_whole() -> None:
    assert mask("key=abcdef", ["abc", "abcdef"]) == "key=***"


def test_each_line_of_a_multiline_secret_is_masked() -> None:
    key = "-----BEGIN KEY-----\nMIIEsecretbody\n-----END KEY-----"

    # A tail that starts inside the key still hides what it shows of it.
    assert mask("MIIEsecretbody\n-----END KEY-----\nafter", [key]) == "***\n***\nafter"


def test_a_secret_split_by_colour_codes_is_still_masked(workdir: Path) -> None:
    (workdir / "step.log").write_bytes(b"pass=hun\x1b[1mter2\x1b[0m\x00\n")

    assert clean_tail("step.log", secrets=["hunter2"]) == "pass=***"
    assert clean("hunter2", ["hunter2"]) == "***"
