"""GitHub's own rules for `${{ }}`, one class at a time: what its runner and its published tests
say a value is, and what it refuses."""

from __future__ import annotations

import json
import math
import sys
import time
from typing import TYPE_CHECKING, Any

import pytest

from ci_orchestrator.errors import ExpressionError
from ci_orchestrator.expressions.evaluation import (
    JobStatus,
    check,
    evaluate,
    evaluate_condition,
    evaluate_template,
    interpolate,
    parse,
)
from tests.helpers import run_cli

if TYPE_CHECKING:
    from pathlib import Path

CONTEXTS: dict[str, Any] = {
    "vars": {
        "names": ["ann", "bob", "cy"],
        "config": {"Infinity": "inf key", "NaN": "nan key", "true": "true key", "1": "one", "1.5": "x"},
        "people": [{"name": "ann"}, {"name": None}, {"nick": "c"}, "loose", [10, 20]],
        "branch": "main",
        "count": "12",
    },
}


def value(text: str) -> Any:
    return evaluate(text, CONTEXTS)


def shown(text: str) -> str:
    return interpolate("${{ " + text + " }}", CONTEXTS)


# ---------------------------------------------------------------- case()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("case(vars.branch == 'main', 'prod', 'dev')", "prod"),
        ("case(vars.branch == 'next', 'prod', 'dev')", "dev"),
        ("case(false, 'a', true, 'b', false, 'c', 'none')", "b"),
        ("case(false, 'a', false, 'b', 'none')", "none"),
        ("case(true, 7, 'seven')", 7),  # the chosen value keeps its kind
        ("case(true, vars.names, 'none')[1]", "bob"),
        ("case(false, 1, null)", None),
        ("CASE(true, 'any case', 'no')", "any case"),
    ],
)
def test_case_gives_the_value_of_the_first_true_condition(text: str, expected: Any) -> None:
    assert value(text) == expected


@pytest.mark.parametrize("condition", ["'yes'", "1", "null", "vars.names", "vars.config"])
def test_a_case_condition_must_be_a_boolean(condition: str) -> None:
    with pytest.raises(ExpressionError, match="case\\(\\): a condition must be true or false"):
        value(f"case({condition}, 'a', 'b')")


@pytest.mark.parametrize("text", ["case(true, 'a')", "case(true, 'a', false, 'b')"])
def test_case_needs_an_odd_number_of_arguments(text: str) -> None:
    with pytest.raises(ExpressionError, match="case\\(\\)"):
        parse(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("case(true, 'early', fromJSON('bad'))", "early"),
        ("case(false, fromJSON('bad'), 'late')", "late"),
        ("format('{0}', 'used', fromJSON('bad'))", "used"),
        ("contains(fromJSON('[]'), fromJSON('bad'))", False),
        ("contains(vars.config, fromJSON('bad'))", False),
        ("join(fromJSON('[1]'), fromJSON('bad'))", "1"),
        ("vars.missing[fromJSON('bad')]", None),
        ("startsWith(vars.names, fromJSON('bad'))", False),
    ],
)
def test_an_argument_github_never_evaluates_cannot_fail(text: str, expected: Any) -> None:
    assert value(text) == expected


# ---------------------------------------------------------------- number literals


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("+1", 1),
        ("+2.5", 2.5),
        ("0o17", 15),
        ("0x1F", 31),
        ("0xFFFFFFFF", -1),  # GitHub reads `0x` numbers as 32-bit integers
        (".5", 0.5),
        ("-.5", -0.5),
        ("1.", 1),
        ("0123", 123),
        ("1E+2", 100),
        ("+Infinity", math.inf),
        ("-Infinity", -math.inf),
    ],
)
def test_number_literals_github_accepts(text: str, expected: Any) -> None:
    assert value(text) == expected


@pytest.mark.parametrize(
    "text", ["-0xFF", "+0x10", "0X1F", "0O17", "0o8", "0b101", "1e", "1e+", "1e309", "1_000", "-NaN", "1.2.3"]
)
def test_number_literals_github_refuses(text: str) -> None:
    with pytest.raises(ExpressionError, match="is not a number"):
        parse(text)


# ---------------------------------------------------------------- numbers written as text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0.84551240822557006", "0.84551240822557"),  # at most 15 significant digits
        ("123456.789", "123456.789"),
        ("1.2e-2", "0.012"),
        ("-0", "0"),
        ("-0.0", "0"),
        ("2.0", "2"),
        ("100000000000000", "100000000000000"),
        ("1000000000000000", "1E+15"),
        ("9007199254740993", "9.00719925474099E+15"),
        ("0.0001", "0.0001"),
        ("0.00001", "1E-05"),
        ("1e123", "1E+123"),
        ("NaN", "NaN"),
        ("-Infinity", "-Infinity"),
    ],
)
def test_numbers_are_written_as_github_writes_them(text: str, expected: str) -> None:
    assert shown(text) == expected
    assert value(f"format('{{0}}', {text})") == expected


def test_to_json_writes_numbers_the_same_way() -> None:
    assert value("toJSON(0.00001)") == "1E-05"
    assert value("toJSON(NaN)") == "NaN"
    assert (
        value("toJSON(fromJSON('[1.5, 12345678901234567890, -0]'))")
        == "[\n  1.5,\n  1.23456789012346E+19,\n  0\n]"
    )


def test_whole_numbers_keep_their_type_for_the_settings_that_read_them() -> None:
    assert evaluate_template("${{ 30 }}", CONTEXTS) == 30
    assert isinstance(evaluate_template("${{ 1e1 }}", CONTEXTS), int)
    assert evaluate_template("${{ fromJSON('2.5') }}", CONTEXTS) == 2.5


# ---------------------------------------------------------------- text read as a number


@pytest.mark.parametrize(
    "text",
    [
        "' 0o10 ' == 8",
        "'0x1F' == 31",
        "'' == 0",
        "'   ' == 0",
        "'\t12\n' == 12",
        "'\u00a012\u2003' == 12",
        "' +1.5E1 ' == 15",
        "'017' == 17",  # leading zeros are decimal
        "'1.' == 1",
        "' infinity ' == Infinity",
        "'1e400' == Infinity",
        "vars.count > 9",  # '12' is read as 12, not compared as text
        "'0xFFFFFFFF' == -1",
        "null == 0",
        "true == '1'",
    ],
)
def test_text_is_read_as_a_number_the_way_github_reads_it(text: str) -> None:
    assert value(text) is True


@pytest.mark.parametrize(
    "text",
    [
        "'0X1F' == 31",
        "'0b11' == 3",
        "'1_0' == 10",
        "'abc' == NaN",
        "NaN == NaN",
        "'-0x1F' == -31",
        "'1e' == 1",
    ],
)
def test_text_github_does_not_read_as_a_number_is_nan(text: str) -> None:
    assert value(text) is False


# ---------------------------------------------------------------- arrays and objects as text


def test_an_array_or_object_in_text_is_array_or_object() -> None:
    assert value("format('{0}|{1}', vars.names, vars.config)") == "Array|Object"
    assert interpolate("${{ vars.names }} ${{ vars.config }}", CONTEXTS) == "Array Object"
    assert value("join(fromJSON('[[1], {\"a\": 1}, null, 2.50]'), ' ')") == "Array Object  2.5"


def test_join_of_an_object_is_empty_and_of_text_is_the_text() -> None:
    assert value("join(vars.config)") == ""
    assert value("join(vars.branch, '-')") == "main"
    assert value("join(vars.names, vars.names)") == "ann,bob,cy"  # a separator must be a plain value


# ---------------------------------------------------------------- indexes


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("vars.names[true]", "bob"),
        ("vars.names[false]", "ann"),
        ("vars.names[null]", "ann"),
        ("vars.names['2']", "cy"),
        ("vars.names[' 0x1 ']", "bob"),
        ("vars.names[1.9]", "bob"),  # rounded down
        ("vars.names[-0.5]", None),
        ("vars.names[NaN]", None),
        ("vars.names[Infinity]", None),
        ("vars.names[vars.names]", None),
        ("vars.config[1]", "one"),  # an object's key is the index as text
        ("vars.config[1.5]", "x"),
        ("vars.config.Infinity", "inf key"),
        ("vars.config.NaN", "nan key"),
        ("vars.config.true", "true key"),
        ("vars.config[format('{0}', Infinity)]", "inf key"),
    ],
)
def test_indexes_are_coerced_as_github_coerces_them(text: str, expected: Any) -> None:
    assert value(text) == expected


def test_a_filter_keeps_null_values_and_skips_what_has_no_such_key() -> None:
    assert value("vars.people.*.name") == ["ann", None]
    assert value("vars.people[*][1]") == [20]
    assert value("vars.people.*.*") == ["ann", None, "c", 10, 20]
    assert value("vars.branch.*") == []


@pytest.mark.parametrize("text", ["'abc'[0]", "1.foo", "vars.1", "true.x", "format('{0}', 'a',)"])
def test_what_github_does_not_parse(text: str) -> None:
    with pytest.raises(ExpressionError):
        parse(text)


# ---------------------------------------------------------------- case-insensitive comparison


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("'ABC' == 'abc'", True),
        ("'ı' == 'I'", False),  # the dotless i is not folded
        ("'i' == 'İ'", False),
        ("'I' < 'ı'", True),
        ("startsWith('ı_x', 'I')", False),
        ("endsWith('x_I', 'ı')", False),
        ("contains('ABC', 'b')", True),
        ("'a' < 'B'", True),  # case ignored in ordering too
        ("'\U0001f600' > '\uffff'", False),  # ordered by UTF-16 code units
        ("'a' < '\U0001f600'", True),
        ("'\ue000' > '\U0001f600'", True),
    ],
)
def test_text_comparison_ignores_case_the_way_github_does(text: str, expected: bool) -> None:
    assert value(text) is expected


# ---------------------------------------------------------------- what GitHub refuses


@pytest.mark.parametrize(
    ("refused", "accepted"),
    [
        ("!" * 50 + "true", "!" * 49 + "true"),
        ("vars" + ".a" * 50, "vars" + ".a" * 49),
        ("vars" + "[0]" * 50, "vars" + "[0]" * 49),
        ("(" * 50 + "1" + ")" * 50, "(" * 49 + "1" + ")" * 49),
        ("format('{0}', " * 50 + "1" + ")" * 50, "format('{0}', " * 49 + "1" + ")" * 49),
        ("1" + " == 1" * 50, "1" + " == 1" * 49),
    ],
)
def test_nesting_deeper_than_50_is_refused(refused: str, accepted: str) -> None:
    with pytest.raises(ExpressionError, match="nested deeper than 50 levels"):
        parse(refused)
    evaluate(accepted, CONTEXTS)


def test_an_expression_longer_than_21000_characters_is_refused() -> None:
    evaluate("'" + "a" * 20_998 + "'", CONTEXTS)
    with pytest.raises(ExpressionError, match="longer than 21000"):
        parse("'" + "a" * 20_999 + "'")


def doubled(times: int) -> str:
    """`format('{0}{0}', ...)` nested: 2 ** (times + 1) characters."""
    text = "'ab'"
    for _ in range(times):
        text = f"format('{{0}}{{0}}', {text})"
    return text


def test_an_expression_that_would_hold_more_than_a_megabyte_is_refused_quickly() -> None:
    assert len(evaluate(doubled(16), CONTEXTS)) == 2**17
    started = time.monotonic()
    with pytest.raises(ExpressionError, match="maximum allowed memory size was exceeded"):
        evaluate(doubled(24), CONTEXTS)  # 32 million characters, if it were built
    assert time.monotonic() - started < 30  # refused as it grows
    with pytest.raises(ExpressionError, match="maximum allowed memory size was exceeded"):
        evaluate("join(vars.names, '')", {"vars": {"names": ["1,"] * 300_000}})
    with pytest.raises(ExpressionError, match="maximum allowed memory size was exceeded"):
        evaluate("toJSON(vars)", {"vars": {"names": ["x" * 1000] * 1000}})


# ---------------------------------------------------------------- empty expressions and conditions


def test_an_empty_expression_is_null() -> None:
    assert evaluate("", CONTEXTS) is None
    assert interpolate("[${{ }}]", CONTEXTS) == "[]"


def test_an_empty_condition_is_success() -> None:
    assert evaluate_condition("", CONTEXTS, JobStatus()) is True
    assert evaluate_condition("  ", CONTEXTS, JobStatus(failure=True)) is False


# ---------------------------------------------------------------- validate, end to end


def test_validate_locates_too_deep_a_nesting(tmp_path: Path) -> None:
    deep = "!" * 60 + "true"
    (tmp_path / "ci.yml").write_text(
        "name: deep\nsteps:\n  - id: ok\n    run: echo fine\n"
        f"  - id: deep\n    run: echo ${{{{ {deep} }}}}\n"
        f"  - id: deep-if\n    run: echo x\n    if: ${{{{ {deep} }}}}\n"
    )
    done = run_cli(tmp_path, "validate", "ci.yml")
    assert done.returncode == 2, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 2, lines
    assert "ci.yml:6:5: steps[1].run: nested deeper than 50 levels" in lines[0]
    assert "ci.yml:9:5: steps[2].if: nested deeper than 50 levels" in lines[1]
    assert "Traceback" not in done.stderr


def test_check_reports_a_refused_number_where_it_is() -> None:
    with pytest.raises(ExpressionError, match="'-0xFF' is not a number at position 7"):
        check("echo ${{ 1 == -0xFF }}", contexts=["vars"])


def test_a_run_hands_steps_the_values_github_would(tmp_path: Path) -> None:
    printer = (
        "import json, os; "
        "json.dump({k: v for k, v in os.environ.items() if k[:2] in ('E_', 'MA')}, open('seen.json', 'w'))"
    )
    (tmp_path / "ci.yml").write_text(
        "name: rules\n"
        "steps:\n"
        "  - id: show\n"
        "    matrix: {include: [{cfg: {n: 1, tags: [a, b]}}]}\n"
        f"    command: [{json.dumps(sys.executable)}, -c, {json.dumps(printer)}]\n"
        "    env:\n"
        "      E_TEXT: >-\n"
        "        ${{ format('{0} {1} {2} {3}', matrix.cfg, matrix.cfg.tags, 1e-5, ' 0o10 ' == 8) }}\n"
        "      E_CASE: \"${{ case(matrix.cfg.n == 1, 'one', 'other') }}\"\n"
        '      E_JSON: "${{ toJSON(matrix.cfg.tags) }}"\n'
        "      E_JOIN: \"${{ join(matrix.cfg.*, '+') }}\"\n"
    )
    done = run_cli(tmp_path, "run", "ci.yml")
    assert done.returncode == 0, done.stderr
    seen = json.loads((tmp_path / "seen.json").read_text())
    assert seen["E_TEXT"] == "Object Array 1E-05 true"
    assert seen["E_CASE"] == "one"
    assert seen["E_JSON"] == '[\n  "a",\n  "b"\n]'
    assert seen["E_JOIN"] == "1+Array"
    assert json.loads(seen["MATRIX_CFG"]) == {
        "n": 1,
        "tags": ["a", "b"],
    }  # the tool's own variable stays JSON
