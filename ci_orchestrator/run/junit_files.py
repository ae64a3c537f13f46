"""The JUnit files a step wrote (its `junit:` globs), read once it ended: its tests, by name.

junitparser reads the dialects test tools write: a `<testsuites>` or a lone `<testsuite>` root,
suites inside suites, `<failure>` and `<error>`, `<skipped>`, attributes left out. The bytes are
whatever the step left, so they are read with care before they reach it: at most
`MAX_FILE_BYTES` of a regular file, in any encoding the file declares (else UTF-8, bad bytes
replaced), terminal escapes and the characters XML forbids dropped (as characters or as
references), and a DTD refused, so that no entity is declared, let alone expanded. A file
missing, empty, stale (older than the step's start), too large or not JUnit is a warning
naming it; what the other files hold still counts, and the step's status is its own.
"""

from __future__ import annotations

import codecs
import dataclasses
import os
import posixpath
import re
import stat
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast
from xml.parsers import expat

import junitparser

from ci_orchestrator import notices
from ci_orchestrator.cache.digests import FileDigests
from ci_orchestrator.cache.keys import instance_patterns
from ci_orchestrator.errors import ExpressionError
from ci_orchestrator.output.paths import shown_path
from ci_orchestrator.output.text import allowed_in_xml, strip_ansi, xml_safe
from ci_orchestrator.results import Status, TestCaseResult, TestOutcome, TestResults

if TYPE_CHECKING:
    from collections.abc import Mapping
    from datetime import datetime

    from ci_orchestrator.playbook.model import Instance
    from ci_orchestrator.results import StepResult

MAX_FILE_BYTES = 64 * 1024 * 1024  # of one file; a larger one is left out
MAX_CASES = 200_000  # kept per instance for the run's JUnit report; the rest are counted
MAX_FAILURES = 1_000  # failing tests kept per instance (run.json keeps fewer)
MAX_DEPTH = 64  # elements inside one another: JUnit needs four
TEXT_BYTES = 16 * 1024  # of a failure's text
MESSAGE_CHARS = 2_000
# A file changed this long before the step started was not written by it. Coarse file times
# (a second, two on some filesystems) and the kernel's coarse clock stay inside it.
STALE_SLACK = 2.0

_BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF32_LE, "utf-32"),  # before UTF-16's: it starts with the same two bytes
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_DECLARED = re.compile(rb"""<\?xml[^>]*?\sencoding\s*=\s*["']([A-Za-z][A-Za-z0-9._-]*)["']""")
_REFERENCE = re.compile(r"&#(?:[xX]([0-9a-fA-F]+)|([0-9]+));")
_ESCAPE = "\x1b"


class _NotRead(Exception):  # noqa: N818 - a reason to leave a file out, said as a warning
    """Why a JUnit file is left out."""


class _Case(junitparser.TestCase):
    # Where the test is: written by pytest (xunit1), jest-junit, PHPUnit and others.
    file = junitparser.Attr()
    line = junitparser.Attr()


class _Suite(junitparser.TestSuite):
    testcase = _Case


class _Report(junitparser.JUnitXml):
    testsuite = _Suite


def with_tests(
    result: StepResult, instance: Instance, *, workspace: Path, variables: Mapping[str, str]
) -> StepResult:
    """`result` with what its `junit:` files hold, for an instance that ran or came from the
    cache (its files restored with it); unchanged for another."""
    if not instance.step.junit or result.started is None:
        return result
    cached = result.status is Status.CACHED
    try:
        patterns = instance_patterns(instance, instance.step.junit, variables)
    except ExpressionError as error:
        notices.warn(f"{result.id}: junit: cannot expand its globs ({error})")
        return dataclasses.replace(result, tests=TestResults())
    tests = read_tests(
        patterns,
        workspace=workspace,
        working_directory=instance.working_directory,
        since=None if cached else result.started,
        instance_id=result.id,
        # An interrupted step had no time to write its files: saying so would be noise.
        quiet=result.status is Status.CANCELLED,
    )
    return dataclasses.replace(result, tests=tests)


def read_tests(
    patterns: tuple[str, ...],
    *,
    workspace: Path,
    working_directory: str = ".",
    since: datetime | None = None,
    instance_id: str = "",
    quiet: bool = False,
) -> TestResults:
    """The tests of the files the globs match (workspace-relative, as `outputs`), in file order;
    files changed before `since` are stale and left out."""
    files = FileDigests(workspace)
    found: dict[str, None] = {}
    for pattern in patterns:
        matched = files.expand(pattern)
        if not matched and not quiet:
            notices.warn(f"{instance_id}: junit: no file matches {pattern!r}")
        found.update(dict.fromkeys(matched))
    base = _relative_directory(workspace, working_directory)
    counts = dict.fromkeys(TestOutcome, 0)
    kept: list[TestCaseResult] = []
    failures: list[TestCaseResult] = []
    for name in found:
        try:
            cases = read_file(Path(files.root) / name, since=since, base=base, workspace=workspace)
        except _NotRead as why:
            notices.warn(f"{instance_id}: junit file {name}: {why}")
            continue
        for case in cases:
            counts[case.outcome] += 1
            if len(kept) < MAX_CASES:
                kept.append(case)
            if case.failed and len(failures) < MAX_FAILURES:
                failures.append(case)
    return TestResults(
        total=sum(counts.values()),
        passed=counts[TestOutcome.PASSED],
        failed=counts[TestOutcome.FAILED] + counts[TestOutcome.ERROR],
        skipped=counts[TestOutcome.SKIPPED],
        failures=tuple(failures),
        cases=tuple(kept),
    )


def read_file(
    path: Path, *, since: datetime | None = None, base: str = ".", workspace: Path | None = None
) -> list[TestCaseResult]:
    """The test cases of one JUnit file; `_NotRead` says why there are none to take.

    `base` is the step's working directory relative to the workspace: where a relative `file`
    attribute starts.
    """
    data = _read_bytes(path, since=since)
    if not data.strip():
        raise _NotRead("empty")
    root = _parse(_clean(_decode(data)))
    try:
        report = _Report.fromroot(cast("Any", root))  # an ElementTree element, as it parses
    except junitparser.JUnitXmlError:
        raise _NotRead(f"not JUnit XML: its root is <{root.tag}>, not <testsuites> or <testsuite>") from None
    # Its suites are `_Suite`, their cases `_Case`: the classes `_Report` names.
    return [_case(cast("_Case", case), base=base, workspace=workspace) for suite in report for case in suite]


def _read_bytes(path: Path, *, since: datetime | None) -> bytes:
    # Not blocking: a FIFO where the file should be would otherwise wait for a writer for ever.
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as error:
        raise _NotRead(f"cannot be read ({error.strerror or error})") from None
    with os.fdopen(descriptor, "rb") as file:
        info = os.fstat(descriptor)
        if not stat.S_ISREG(info.st_mode):
            raise _NotRead("not a regular file")
        if info.st_size > MAX_FILE_BYTES:
            raise _NotRead(f"{info.st_size:,} bytes, more than the {MAX_FILE_BYTES:,} read")
        if since is not None and info.st_mtime < since.timestamp() - STALE_SLACK:
            raise _NotRead("not written by this run of the step (last changed before it started)")
        data = file.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:  # grew while read
        raise _NotRead(f"more than the {MAX_FILE_BYTES:,} bytes read")
    return data


def _decode(data: bytes) -> str:
    """The file's text: in the encoding its byte order mark or XML declaration gives (one that
    keeps ASCII as ASCII), else UTF-8; bytes that are not of it replaced."""
    encoding = next((name for bom, name in _BOMS if data.startswith(bom)), None)
    if encoding is None:
        encoding = "utf-8"
        if (declared := _DECLARED.match(data[:256])) and _ascii_compatible(declared[1].decode("ascii")):
            encoding = declared[1].decode("ascii")
    return data.decode(encoding, errors="replace")


def _ascii_compatible(encoding: str) -> bool:
    try:
        return codecs.lookup(encoding)._is_text_encoding and "<?xml".encode(encoding) == b"<?xml"
    except (LookupError, UnicodeError, AttributeError):
        return False


def _clean(text: str) -> str:
    """`text` without terminal escapes and without what XML 1.0 forbids, written as it is or as
    a character reference (Surefire and others write `&#27;`): a parser refuses the file else."""
    if "&#" in text:
        text = _REFERENCE.sub(_reference, text)
    return xml_safe(strip_ansi(text)) if _ESCAPE in text or "\x9b" in text else xml_safe(text)


def _reference(match: re.Match[str]) -> str:
    hexadecimal, decimal = match.groups()
    code = int(hexadecimal, 16) if hexadecimal else int(decimal)
    if code == 0x1B:
        return _ESCAPE  # the start of a colour: stripped with the rest of it
    return match[0] if allowed_in_xml(code) else ""


def _parse(text: str) -> ET.Element:
    """The document's elements, by expat, with no DTD: no entity can be declared, so none
    expands (no "billion laughs"), and none is fetched from outside."""
    builder = ET.TreeBuilder()
    parser = expat.ParserCreate()  # given text, expat reads it as it is, whatever is declared
    parser.buffer_text = True
    depth = 0

    def start(tag: str, attributes: dict[str, str]) -> None:
        nonlocal depth
        depth += 1
        if depth > MAX_DEPTH:
            raise _NotRead(f"elements nested more than {MAX_DEPTH} deep")
        builder.start(tag, attributes)

    def end(tag: str) -> None:
        nonlocal depth
        depth -= 1
        builder.end(tag)

    def refuse(*_: object) -> None:
        raise _NotRead("it declares a DTD, which a JUnit file has no use for: refused")

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = builder.data
    parser.StartDoctypeDeclHandler = refuse
    parser.EntityDeclHandler = refuse
    try:
        parser.Parse(text, True)
    except expat.ExpatError as error:
        message = expat.ErrorString(error.code) if error.code else str(error)
        where = f"line {error.lineno}, column {error.offset + 1}"
        raise _NotRead(f"not well-formed XML ({where}: {message})") from None
    return builder.close()


def _case(case: _Case, *, base: str, workspace: Path | None) -> TestCaseResult:
    name = (case.name or "").strip() or "(unnamed test)"
    classname = (case.classname or "").strip()
    entries = case.result
    if not entries:  # most tests: nothing more to look at
        return TestCaseResult(classname=classname, name=name, outcome=TestOutcome.PASSED, time=_seconds(case))
    found = next((entry for entry in entries if not isinstance(entry, junitparser.Skipped)), entries[0])
    if isinstance(found, junitparser.Skipped):
        outcome = TestOutcome.SKIPPED
    else:
        outcome = TestOutcome.ERROR if isinstance(found, junitparser.Error) else TestOutcome.FAILED
    failed = outcome is not TestOutcome.SKIPPED
    text = _bounded(found.text or "") if failed else ""
    message = " ".join((found.message or "").split())[:MESSAGE_CHARS]
    file = _place(case.file, base=base, workspace=workspace) if failed and case.file else None
    return TestCaseResult(
        classname=classname,
        name=name,
        outcome=outcome,
        time=_seconds(case),
        message=message or _first_line(text),
        text=text,
        kind=found.type or "",
        file=file,
        line=_line(case.file, case.line, text) if file else None,
    )


def _seconds(case: _Case) -> float:
    try:
        seconds = case.time
    except ValueError:  # `time="soon"`
        return 0.0
    return seconds if seconds is not None and 0 <= seconds < float("inf") else 0.0


def _bounded(text: str) -> str:
    text = text.strip("\n").rstrip()
    data = text.encode("utf-8")
    if len(data) <= TEXT_BYTES:
        return text
    return data[:TEXT_BYTES].decode("utf-8", errors="ignore") + "\n[...]"


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")[:MESSAGE_CHARS]


def _relative_directory(workspace: Path, directory: str) -> str:
    """The step's working directory relative to the workspace, as POSIX text."""
    path = Path(directory)
    shown = shown_path(path if path.is_absolute() else workspace / path, workspace)
    return posixpath.normpath(shown.replace(os.sep, "/"))


def _place(file: str, *, base: str, workspace: Path | None) -> str:
    """A test's `file` as GitHub places an annotation: relative to the workspace where it is
    inside it; a relative one starts at the step's working directory."""
    file = file.strip().replace("\\", "/")
    if posixpath.isabs(file):
        return shown_path(Path(file), workspace).replace(os.sep, "/") if workspace else file
    return posixpath.normpath(posixpath.join(base, file))


def _line(file: str | None, written: str | None, text: str) -> int | None:
    """The line of the failure in the test's file: the last place of that file its text names
    (`tests/test_x.py:42: AssertionError`, `at (…/sum.test.js:5:17)`), else the `line` the
    file gives (pytest's is the test's `def`, counted from 0)."""
    if file and text:
        name = re.escape(file.strip().replace("\\", "/").removeprefix("./"))
        places = re.findall(rf"(?:^|[\s(\"'/\\]){name}:(\d+)", text, flags=re.MULTILINE)
        if places and int(places[-1]) > 0:
            return int(places[-1])
    try:
        line = int(written) if written is not None else None
    except ValueError:
        return None
    return line if line is not None and line > 0 else None
