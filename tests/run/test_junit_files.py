"""Reading the JUnit files steps write: the files real tools produce (pytest here; jest-junit's
own code when it is installed, as .ci/run installs it), the documented formats of the others
(go-junit-report, Maven Surefire, PHPUnit's nested suites), and hostile bytes: each file that
cannot be taken is a warning naming it, never an exception."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest

from ci_orchestrator.results import TestOutcome
from ci_orchestrator.run.junit_files import MAX_FILE_BYTES, read_tests
from ci_orchestrator.run.junit_parsing import MAX_DEPTH
from tests.helpers import FIXTURES, REPO

if TYPE_CHECKING:
    from pathlib import Path

DATA = FIXTURES / "junit"
JEST_JUNIT = REPO / ".venv" / "jest-junit" / "node_modules" / "jest-junit"


def project(root: Path) -> Path:
    """The fixture project (one test broken on purpose, one whose setup breaks, one skipped)."""
    shutil.copytree(DATA / "project", root, dirs_exist_ok=True)
    return root


def run_pytest(work: Path, *options: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *options, "tests"],
        cwd=work,
        capture_output=True,
        check=False,
        timeout=120,
    )


def outcomes(tests: object) -> dict[str, str]:
    return {case.test: case.outcome.value for case in tests.cases}  # type: ignore[attr-defined]


@pytest.mark.parametrize("family", ["xunit2", "xunit1"])
def test_pytest_files_read_with_their_counts_and_names(
    tmp_path: Path, family: str, warned: list[str]
) -> None:
    work = project(tmp_path)
    run_pytest(work, "-o", f"junit_family={family}", "--junitxml=reports/pytest.xml")
    tests = read_tests(("reports/*.xml",), workspace=work, instance_id="unit")
    assert (tests.total, tests.passed, tests.failed, tests.skipped) == (4, 1, 2, 1)
    assert outcomes(tests) == {
        "tests.test_arithmetic.TestSums.test_small_numbers_add_up": "passed",
        "tests.test_arithmetic.TestSums.test_deliberately_broken": "failed",
        "tests.test_arithmetic.test_setup_breaks": "error",
        "tests.test_arithmetic.test_skipped_on_purpose": "skipped",
    }
    broken, raising = tests.failures
    assert "two and two make four, not five" in broken.message
    assert "assert 2 + 2 == 5" in broken.text
    assert "an error, not a failed assertion" in raising.message
    if family == "xunit1":  # the legacy format gives where each test is: the failing line wins
        assert (broken.file, broken.line) == ("tests/test_arithmetic.py", 11)
        assert (raising.file, raising.line) == ("tests/test_arithmetic.py", 16)  # in its fixture
    else:
        assert broken.file is None and broken.line is None
    assert warned == []


def test_a_file_in_a_working_directory_is_placed_from_the_workspace(tmp_path: Path) -> None:
    work = project(tmp_path / "services" / "api")
    run_pytest(work, "-o", "junit_family=xunit1", "--junitxml=reports/pytest.xml")
    tests = read_tests(
        ("services/api/reports/pytest.xml",), workspace=tmp_path, working_directory="services/api"
    )
    assert tests.failures[0].file == "services/api/tests/test_arithmetic.py"


@pytest.mark.skipif(
    shutil.which("node") is None or not JEST_JUNIT.is_dir(), reason="jest-junit is installed by .ci/run"
)
def test_jest_junit_files_read_with_their_counts_and_places(tmp_path: Path, warned: list[str]) -> None:
    subprocess.run(
        ["node", str(DATA / "jest_report.js"), str(JEST_JUNIT), "reports/jest.xml", str(tmp_path)],
        check=True,
        timeout=60,
    )
    tests = read_tests(("reports/jest.xml",), workspace=tmp_path)
    assert (tests.total, tests.passed, tests.failed, tests.skipped) == (4, 2, 1, 1)
    (failure,) = tests.failures
    # jest-junit writes the same text as class and name: the name is said once.
    assert failure.test == "sum carries over ten"
    assert failure.message == "Error: expect(received).toBe(expected)"
    assert (failure.file, failure.line) == ("src/sum.test.js", 14)  # from the stack: no `line` given
    assert "\x1b" not in failure.text
    assert warned == []


@pytest.mark.parametrize(
    ("name", "counts", "failing"),
    [
        (
            "go-junit-report.xml",
            (5, 2, 2, 1),
            {
                "example.com/shop/cart.TestDiscount/over_limit": "failed",
                "example.com/shop/tax.[build failed]": "error",
            },
        ),
        # A lone <testsuite> root; a flaky failure that passed on a rerun is a pass.
        ("surefire.xml", (4, 2, 1, 1), {"org.example.LedgerTest.rejectsNegative": "failed"}),
        # Suites inside suites; a test case without class or time.
        ("nested.xml", (3, 2, 1, 0), {"App.Tests.Unit.MoneyTest.testSplit": "failed"}),
    ],
)
def test_documented_dialects_read_with_their_counts(
    tmp_path: Path, name: str, counts: tuple[int, ...], failing: dict[str, str], warned: list[str]
) -> None:
    shutil.copy(DATA / "dialects" / name, tmp_path / name)
    tests = read_tests((name,), workspace=tmp_path)
    assert (tests.total, tests.passed, tests.failed, tests.skipped) == counts
    assert {case.test: case.outcome.value for case in tests.failures} == failing
    assert warned == []


def test_a_test_without_class_or_time_keeps_its_name(tmp_path: Path) -> None:
    shutil.copy(DATA / "dialects" / "nested.xml", tmp_path / "nested.xml")
    tests = read_tests(("nested.xml",), workspace=tmp_path)
    bare = tests.cases[-1]
    assert (bare.test, bare.time, bare.outcome) == ("testRound", 0.0, TestOutcome.PASSED)
    split = tests.failures[0]
    assert (split.file, split.line) == ("tests/Unit/MoneyTest.php", 24)
    assert split.message.startswith("App\\Tests\\Unit\\MoneyTest::testSplit")  # no message: its first line


CASE = '<testcase classname="c" name="n" time="1"/>'
HOSTILE = [
    ("", "empty"),
    ("   \n", "empty"),
    ("<html><body>404</body></html>", "not JUnit XML: its root is <html>"),
    ("<testsuites><testsuite>", "not well-formed XML (line 1"),
    ("\x00\x01PK\x03\x04 binary", "not well-formed XML"),
    # Entities declared in a DTD: a billion laughs, a file read from outside. Refused unread.
    (
        '<?xml version="1.0"?><!DOCTYPE t [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">'
        '<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]><testsuite name="&c;"/>',
        "declares a DTD",
    ),
    ('<!DOCTYPE t [<!ENTITY x SYSTEM "file:///etc/passwd">]><testsuite name="&x;"/>', "declares a DTD"),
    ('<!DOCTYPE testsuite SYSTEM "http://127.0.0.1:9/junit.dtd"><testsuite/>', "declares a DTD"),
    ("<testsuite name='&undeclared;'/>", "not well-formed XML"),
    ("<testsuite>" * (MAX_DEPTH + 1), f"nested more than {MAX_DEPTH} deep"),
]


@pytest.mark.parametrize(("content", "said"), HOSTILE)
def test_a_file_that_is_not_junit_is_a_warning_naming_it(
    tmp_path: Path, content: str, said: str, warned: list[str]
) -> None:
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "bad.xml").write_bytes(content.encode("utf-8"))
    (tmp_path / "reports" / "good.xml").write_text(f"<testsuite>{CASE}</testsuite>")
    tests = read_tests(("reports/*.xml",), workspace=tmp_path, instance_id="unit (3.12)")
    assert tests.total == 1  # the other file still counts
    assert len(warned) == 1
    assert warned[0].startswith("unit (3.12): junit file reports/bad.xml: ")
    assert said in warned[0]


def test_a_glob_matching_nothing_is_a_warning_naming_it(tmp_path: Path, warned: list[str]) -> None:
    tests = read_tests(("reports/*.xml",), workspace=tmp_path, instance_id="unit")
    assert (tests.total, tests.failures) == (0, ())
    assert warned == ["unit: junit: no file matches 'reports/*.xml'"]


def test_any_encoding_and_bytes_that_are_none_are_read(tmp_path: Path, warned: list[str]) -> None:
    declared = '<?xml version="1.0" encoding="{}"?><testsuite><testcase name="{}"/></testsuite>'
    files = {
        "latin1.xml": declared.format("ISO-8859-1", "café").encode("latin-1"),
        "utf16.xml": declared.format("UTF-16", "naïve").encode("utf-16"),  # with its byte order mark
        "broken.xml": b'<testsuite><testcase name="bad \xff\xfe bytes"/></testsuite>',
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    tests = read_tests(tuple(files), workspace=tmp_path)
    assert [case.name for case in tests.cases] == ["café", "naïve", "bad \ufffd\ufffd bytes"]
    assert warned == []


def test_terminal_escapes_and_forbidden_characters_are_dropped(tmp_path: Path, warned: list[str]) -> None:
    # Written raw, and as character references (Surefire writes `&#27;`): XML 1.0 allows neither.
    document = (
        '<testsuite><testcase classname="c" name="colours">'
        '<failure message="boom &#27;[31mred&#27;[0m&#1;">text \x1b[1mbold\x1b[0m\x07 end &#x1B;[2K</failure>'
        "</testcase></testsuite>"
    )
    (tmp_path / "t.xml").write_text(document)
    (failure,) = read_tests(("t.xml",), workspace=tmp_path).failures
    assert (failure.message, failure.text) == ("boom red", "text bold end")
    assert warned == []


def test_a_huge_file_is_left_out_unread(tmp_path: Path, warned: list[str]) -> None:
    with (tmp_path / "huge.xml").open("wb") as file:
        file.truncate(MAX_FILE_BYTES + 1)  # sparse: nothing written, nothing to read
    assert read_tests(("huge.xml",), workspace=tmp_path).total == 0
    assert len(warned) == 1 and "more than the 64 MiB read" in warned[0]


def test_a_fifo_in_place_of_a_file_does_not_hang_the_run(tmp_path: Path, warned: list[str]) -> None:
    os.mkfifo(tmp_path / "pipe.xml")
    done: list[int] = []
    reader = threading.Thread(
        target=lambda: done.append(read_tests(("pipe.xml",), workspace=tmp_path).total), daemon=True
    )
    reader.start()
    reader.join(timeout=30)
    assert done == [0]
    assert len(warned) == 1 and "pipe.xml" in warned[0]


def test_a_file_older_than_the_step_is_stale(tmp_path: Path, warned: list[str]) -> None:
    old = tmp_path / "old.xml"
    old.write_text(f"<testsuite>{CASE}</testsuite>")
    an_hour_ago = time.time() - 3600
    os.utime(old, (an_hour_ago, an_hour_ago))
    fresh = tmp_path / "fresh.xml"
    fresh.write_text(f"<testsuite>{CASE}{CASE}</testsuite>")
    tests = read_tests(("*.xml",), workspace=tmp_path, since=datetime.now(UTC), instance_id="unit")
    assert tests.total == 2
    assert warned == [
        "unit: junit file old.xml: not written by this run of the step (last changed before it started)"
    ]


def test_a_cancelled_step_says_nothing_of_files_it_had_no_time_to_write(
    tmp_path: Path, warned: list[str]
) -> None:
    assert read_tests(("reports/*.xml",), workspace=tmp_path, quiet=True).total == 0
    assert warned == []
