"""GitHub's environment files as GitHub's runner reads them: `NAME=VALUE` lines, `NAME<<DELIMITER`
blocks, GITHUB_PATH folders, and what is an error, checked on real files."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from ci_orchestrator.run.file_commands import (
    MAX_FILE_BYTES,
    FileCommandError,
    added_paths,
    parse_env,
    parse_pairs,
    parse_path,
    read_text,
    with_path,
)

if TYPE_CHECKING:
    from pathlib import Path


def test_name_value_lines_keep_everything_after_the_first_equals_sign() -> None:
    text = "version=1.2.3\nquery=a=b&c=d\nempty=\n\n"
    assert parse_pairs(text, file="GITHUB_OUTPUT") == {"version": "1.2.3", "query": "a=b&c=d", "empty": ""}


def test_a_block_keeps_its_lines_without_the_last_newline() -> None:
    text = "notes<<EOF\nfirst line\n\nthird = line << here\nEOF\nafter=1\n"
    assert parse_pairs(text, file="GITHUB_OUTPUT") == {
        "notes": "first line\n\nthird = line << here",
        "after": "1",
    }


def test_an_empty_block_is_an_empty_value() -> None:
    assert parse_pairs("x<<END\nEND\n", file="GITHUB_OUTPUT") == {"x": ""}


def test_the_form_is_the_one_whose_marker_comes_first() -> None:
    # `=` before `<<`: a plain value that holds `<<`; `<<` first: a block whose delimiter holds `=`.
    assert parse_pairs("a=x<<y\n", file="GITHUB_OUTPUT") == {"a": "x<<y"}
    assert parse_pairs("b<<x=y\nvalue\nx=y\n", file="GITHUB_OUTPUT") == {"b": "value"}


def test_a_later_write_of_a_name_wins() -> None:
    assert parse_pairs("v=1\nv=2\n", file="GITHUB_OUTPUT") == {"v": "2"}


def test_the_last_line_needs_no_newline() -> None:
    assert parse_pairs("a=1\nb=2", file="GITHUB_OUTPUT") == {"a": "1", "b": "2"}


def test_a_carriage_return_stays_in_its_line_as_on_linux_runners() -> None:
    assert parse_pairs("a=1\r\n", file="GITHUB_OUTPUT") == {"a": "1\r"}
    assert parse_pairs("a<<EOF\r\nx\r\nEOF\r\n", file="GITHUB_OUTPUT") == {"a": "x\r"}
    with pytest.raises(FileCommandError, match="no closing line 'EOF'"):
        parse_pairs("a<<EOF\nx\r\nEOF\r\n", file="GITHUB_OUTPUT")


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("ok=1\nno markers here\n", 2, "neither NAME=VALUE nor NAME<<DELIMITER"),
        ("=value\n", 1, "no name before '='"),
        ("<<EOF\nx\nEOF\n", 1, "a block needs a name and a delimiter"),
        ("name<<\nx\n", 1, "a block needs a name and a delimiter"),
        ("a=1\nnotes<<EOF\nline\n", 2, "no closing line 'EOF'"),
        # The delimiter as the last text, without its newline, does not close the block either
        # way a writer meant it: the value's last line would then be unterminated.
        ("notes<<EOF\nline", 2, "the file ends inside the block"),
    ],
)
def test_what_github_refuses_is_an_error_naming_the_file_and_line(text: str, line: int, message: str) -> None:
    with pytest.raises(FileCommandError, match=message) as raised:
        parse_pairs(text, file="GITHUB_OUTPUT")
    assert raised.value.line == line
    assert str(raised.value).startswith(f"GITHUB_OUTPUT line {line}: ")


def test_a_delimiter_inside_a_value_ends_the_block_there() -> None:
    # The writer must pick a delimiter its value does not hold: the rest is then read as lines.
    with pytest.raises(FileCommandError, match="neither NAME=VALUE"):
        parse_pairs("v<<EOF\nbefore\nEOF\nafter\nEOF\n", file="GITHUB_OUTPUT")


def test_github_env_leaves_out_node_options_whatever_its_case() -> None:
    env, refused = parse_env("NODE_OPTIONS=--require evil.js\nnode_options=x\nKEEP=1\n")
    assert env == {"KEEP": "1"}
    assert refused == ["NODE_OPTIONS", "node_options"]


def test_github_env_refuses_what_no_process_can_be_given() -> None:
    with pytest.raises(FileCommandError, match="NUL"):
        parse_env("A=x\0y\n")


def test_path_lines_in_order_and_empty_ones_passed_over() -> None:
    assert parse_path("/opt/a/bin\n\n/opt/b/bin") == ("/opt/a/bin", "/opt/b/bin")
    with pytest.raises(FileCommandError, match="GITHUB_PATH line 1"):
        parse_path("/opt\0/bin\n")


def test_folders_added_later_come_first_and_a_repeated_one_moves_to_the_front() -> None:
    assert added_paths([("/a", "/b"), ("/c",), ("/a",)]) == ("/a", "/c", "/b")
    assert with_path({"PATH": "/usr/bin"}, ("/a", "/c")) == "/a:/c:/usr/bin"
    assert with_path({}, ("/a",)) == "/a"


def test_a_file_is_read_whole_up_to_the_limit_and_refused_past_it(tmp_path: Path) -> None:
    path = tmp_path / "output"
    path.write_bytes(b"\xef\xbb\xbfa=\xff\xfe ok\n")  # a byte-order mark, bytes that are not UTF-8
    text = read_text(path, file="GITHUB_OUTPUT")
    assert parse_pairs(text, file="GITHUB_OUTPUT") == {"a": "\ufffd\ufffd ok"}
    path.write_bytes(b"a=" + b"x" * MAX_FILE_BYTES)
    with pytest.raises(FileCommandError, match="more than the 1024 KiB"):
        read_text(path, file="GITHUB_OUTPUT")
    assert read_text(tmp_path / "removed", file="GITHUB_OUTPUT") == ""
    with pytest.raises(FileCommandError, match="cannot be read"):
        read_text(tmp_path, file="GITHUB_OUTPUT")
