"""Input from outside the process read within bounds: files up to a size, never waited on; JSON
read strictly, each refusal located where the text says where."""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING

import pytest

from ci_orchestrator.output.untrusted import NotJson, Unreadable, parse_json, read_file, read_json_file

if TYPE_CHECKING:
    from pathlib import Path


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ('"\\ud83d\\ude00"', "\U0001f600"),  # a pair is one character
        ('"\\\\ud800"', "\\ud800"),  # an escaped backslash, then text
        ('"\\\\\\ud83d\\ude00"', "\\\U0001f600"),
        ('{"a": [1, 2.5, null, true]}', {"a": [1, 2.5, None, True]}),
    ],
)
def test_json_is_read(text: str, value: object) -> None:
    assert parse_json(text) == value


@pytest.mark.parametrize(
    ("text", "message", "place"),
    [
        ('"\\udc80"', "'\\udc80' is not valid Unicode text", (1, 2)),
        ('{\n  "k": "a\\ud800"}', "'\\ud800' is not valid Unicode text", (2, 10)),
        ('["\\ud800\\u0041"]', "'\\ud800'", (1, 3)),  # a first half followed by no second
        ('["\\ud800", "\\udc00"]', "'\\ud800'", (1, 3)),  # halves of two strings are no pair
        ('{"\\udfff": 1}', "'\\udfff'", (1, 3)),  # in a key too
        ('"\\\\\\udc80"', "'\\udc80'", (1, 4)),
        ("[NaN]", "NaN is not a JSON number", (0, 0)),
        ("[-Infinity]", "-Infinity is not a JSON number", (0, 0)),
        ("[1e400]", "1e400 (past what a number holds) is not a JSON number", (0, 0)),
        ("[" + "9" * 5000 + "]", "a number too long to read", (0, 0)),
        ("[" * 100_000 + "]" * 100_000, "nested more than 100 deep", (0, 0)),
        ("[" * 101 + "]" * 101, "nested more than 100 deep", (0, 0)),
        ("{not json", "invalid JSON (Expecting property name", (1, 2)),
    ],
)
def test_what_json_has_no_place_for_is_refused(text: str, message: str, place: tuple[int, int]) -> None:
    with pytest.raises(NotJson) as caught:
        parse_json(text)
    assert message in caught.value.message
    assert (caught.value.line, caught.value.column) == place


def test_the_caches_byte_escapes_are_kept_and_no_other() -> None:
    assert parse_json('"\\udc80\\udcff"', escaped_bytes=True) == "\udc80\udcff"
    for lone in ("\\ud800", "\\udc7f", "\\udd00"):
        with pytest.raises(NotJson, match="is not valid Unicode text"):
            parse_json(f'"{lone}"', escaped_bytes=True)


def test_a_file_past_the_limit_is_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "big.json"
    with path.open("wb") as file:
        file.truncate(1025)  # sparse: nothing to read
    with pytest.raises(Unreadable, match=r"1,025 bytes, more than the 1,024 bytes read"):
        read_file(path, max_bytes=1024)
    path.write_bytes(b"[1]")
    assert read_json_file(path, max_bytes=1024) == [1]


def test_a_fifo_or_a_folder_is_refused_at_once(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    done: list[str] = []

    def read() -> None:
        try:
            read_file(fifo)
        except Unreadable as why:
            done.append(why.message)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(10)
    assert done == ["not a regular file"]
    with pytest.raises(Unreadable, match="is a folder"):
        read_file(tmp_path)
    with pytest.raises(Unreadable) as missing:
        read_file(tmp_path / "nothing")
    assert missing.value.missing


def test_text_that_is_not_utf8_is_located(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_bytes(b'{\n "a": "\xff"}')
    with pytest.raises(NotJson) as caught:
        read_json_file(path)
    assert caught.value.message == "not UTF-8 text: byte 0xff cannot be read"
    assert (caught.value.line, caught.value.column) == (2, 8)


def test_json_nested_100_deep_is_read() -> None:
    value = parse_json('{"a": ' + "[" * 99 + "1" + "]" * 99 + "}")
    depth, inner = 1, value["a"]
    while isinstance(inner, list):
        depth, inner = depth + 1, inner[0]
    assert (depth, inner) == (100, 1)
