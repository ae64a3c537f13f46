"""A JUnit file's bytes as test cases, whatever the tool that wrote them and whatever the bytes.

junitparser reads the dialects test tools write: a `<testsuites>` or a lone `<testsuite>` root,
suites inside suites, `<failure>` and `<error>`, `<skipped>`, attributes left out. The bytes are
the step's, so they are made safe before they reach it: decoded in the encoding the file
declares (else UTF-8, bad bytes replaced), terminal escapes and the characters XML forbids
dropped (as characters or as references), and a DTD refused, so that no entity is declared, let
alone expanded or fetched. Loaded only when a step has a JUnit file to read (junitparser takes
tens of milliseconds to import).
"""

from __future__ import annotations

import codecs
import os
import posixpath
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any, cast
from xml.parsers import expat

import junitparser

from ci_orchestrator.output.paths import shown_path
from ci_orchestrator.output.text import allowed_in_xml, strip_ansi, xml_safe
from ci_orchestrator.results import TestCaseResult, TestOutcome
from ci_orchestrator.run.junit_files import NotRead

MAX_DEPTH = 64  # elements inside one another: JUnit needs four
TEXT_BYTES = 16 * 1024  # of a failure's text
MESSAGE_CHARS = 2_000

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


class _Case(junitparser.TestCase):
    # Where the test is: written by pytest (xunit1), jest-junit, PHPUnit and others.
    file = junitparser.Attr()
    line = junitparser.Attr()


class _Suite(junitparser.TestSuite):
    testcase = _Case


class _Report(junitparser.JUnitXml):
    testsuite = _Suite


def parse_cases(data: bytes, *, base: str = ".", workspace: Path | None = None) -> list[TestCaseResult]:
    """The test cases of a JUnit file's bytes; `NotRead` says why there are none to take.

    `base` is the step's working directory relative to the workspace: where a relative `file`
    attribute starts.
    """
    if not data.strip():
        raise NotRead("empty")
    root = _parse(_clean(_decode(data)))
    try:
        report = _Report.fromroot(cast("Any", root))  # an ElementTree element, as it parses
    except junitparser.JUnitXmlError:
        raise NotRead(f"not JUnit XML: its root is <{root.tag}>, not <testsuites> or <testsuite>") from None
    # Its suites are `_Suite`, their cases `_Case`: the classes `_Report` names.
    return [_case(cast("_Case", case), base=base, workspace=workspace) for suite in report for case in suite]


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
            raise NotRead(f"elements nested more than {MAX_DEPTH} deep")
        builder.start(tag, attributes)

    def end(tag: str) -> None:
        nonlocal depth
        depth -= 1
        builder.end(tag)

    def refuse(*_: object) -> None:
        raise NotRead("it declares a DTD, which a JUnit file has no use for: refused")

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
        raise NotRead(f"not well-formed XML ({where}: {message})") from None
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
