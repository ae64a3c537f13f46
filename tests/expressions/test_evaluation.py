"""The `${{ }}` language as a playbook author meets it: values, operators, functions, conditions, errors."""

from __future__ import annotations

import contextlib
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ci_orchestrator.errors import ExpressionError
from ci_orchestrator.expressions.evaluation import (
    JobStatus,
    check,
    evaluate,
    evaluate_condition,
    evaluate_template,
    has_expression,
    interpolate,
    parse,
    uses_status_function,
)

CONTEXTS: dict[str, Any] = {
    "matrix": {"os": "Linux", "python": "3.12", "node": {"version": 20, "tags": ["lts", "x"]}, "n": 3},
    "vars": {"MODE": "release", "EMPTY": "", "LIST": '["a", "b"]'},
    "env": {"HOME_DIR": "/home/ci"},
    "runner": {"os": "Linux", "arch": "X64", "temp": "/tmp"},
}
OK = JobStatus()
FAILED = JobStatus(failure=True)
CANCELLED = JobStatus(cancelled=True)


def value(text: str) -> Any:
    return evaluate(text, CONTEXTS)


# ---------------------------------------------------------------- literals


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("'hello'", "hello"),
        ("'it''s'", "it's"),
        ("''", ""),
        ("42", 42),
        ("-7", -7),
        ("3.5", 3.5),
        ("0xff", 255),
        ("0o17", 15),
        ("1e3", 1000),
        ("2.5E-1", 0.25),
        ("true", True),
        ("false", False),
        ("null", None),
    ],
)
def test_literals(text: str, expected: Any) -> None:
    assert value(text) == expected


def test_nan_and_infinity_literals() -> None:
    assert interpolate("${{ NaN }} ${{ Infinity }} ${{ -Infinity }}", CONTEXTS) == "NaN Infinity -Infinity"


# ---------------------------------------------------------------- property access


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("matrix.os", "Linux"),
        ("matrix['python']", "3.12"),
        ("matrix.node.version", 20),
        ("matrix.node.tags[0]", "lts"),
        ("matrix.node.tags[1.0]", "x"),
        ("matrix.node.tags[5]", None),
        ("matrix.node.tags[-1]", None),
        ("matrix.missing", None),
        ("matrix.missing.deeper", None),
        ("matrix.OS", "Linux"),  # keys are case-insensitive, as on GitHub
        ("MATRIX.os", "Linux"),
        ("matrix.os.length", None),  # strings have no properties
        ("fromJSON(vars.LIST)[1]", "b"),
    ],
)
def test_property_access(text: str, expected: Any) -> None:
    assert value(text) == expected


def test_star_filter_collects_a_property_of_every_item() -> None:
    contexts = {"vars": {"items": [{"name": "a"}, {"name": "b"}, {"other": 1}]}}
    assert evaluate("vars.items.*.name", contexts) == ["a", "b"]
    assert evaluate("contains(vars.items.*.name, 'B')", contexts) is True
    assert evaluate("vars.*", {"vars": {"x": 1, "y": 2}}) == [1, 2]


@pytest.mark.parametrize(
    "text", ["matrix.__class__", "matrix.__init__", "matrix['__dict__']", "env.__class__.__mro__"]
)
def test_python_internals_are_plain_missing_keys(text: str) -> None:
    assert value(text) is None


def test_string_methods_are_not_reachable() -> None:
    assert value("matrix.os.upper") is None
    assert value("vars.MODE['__len__']") is None


# ---------------------------------------------------------------- operators


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # GitHub's loose equality: strings ignore case, mixed types compare as numbers.
        ("'abc' == 'ABC'", True),
        ("'abc' != 'abd'", True),
        ("1 == 1.0", True),
        ("'1' == 1", True),
        ("' 2 ' == 2", True),
        ("'0x10' == 16", True),
        ("'' == 0", True),
        ("null == 0", True),
        ("null == false", True),
        ("null == ''", True),
        ("null == null", True),
        ("true == 1", True),
        ("true == '1'", True),
        ("false == 0", True),
        ("'true' == true", False),  # 'true' is NaN as a number
        ("'abc' == 0", False),
        ("NaN == NaN", False),
        ("NaN != NaN", True),
        ("matrix.node == matrix.node", True),  # the same object
        ("fromJSON('{}') == fromJSON('{}')", False),  # objects are only equal to themselves
        ("matrix.node == 'Object'", False),
        ("fromJSON('[]') == 0", False),
    ],
)
def test_equality(text: str, expected: bool) -> None:
    assert value(text) is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1 < 2", True),
        ("2 <= 2", True),
        ("3 > 2", True),
        ("2 >= 3", False),
        ("'a' < 'B'", True),  # case-insensitive ordering
        ("'b' > 'A'", True),
        ("'10' > 9", True),  # mixed types as numbers
        ("'10' > '9'", False),  # two strings compare as text
        ("null < 1", True),
        ("true > false", True),
        ("'abc' < 1", False),  # NaN orders with nothing
        ("'abc' >= 1", False),
        ("matrix.node > 0", False),
    ],
)
def test_ordering(text: str, expected: bool) -> None:
    assert value(text) is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("'a' && 'b'", "b"),  # && gives its first falsy operand, else the last
        ("'' && 'b'", ""),
        ("0 && 'b'", 0),
        ("null || 'fallback'", "fallback"),  # || gives its first truthy operand, else the last
        ("'x' || 'y'", "x"),
        ("0 || ''", ""),
        ("vars.EMPTY || 'default'", "default"),
        ("!0", True),
        ("!''", True),
        ("!'a'", False),
        ("!!matrix.node", True),
        ("!null", True),
    ],
)
def test_logical_operators_return_operands(text: str, expected: Any) -> None:
    assert value(text) == expected
    assert type(value(text)) is type(expected)


def test_precedence_and_parentheses() -> None:
    assert value("true || false && false") is True  # && binds tighter
    assert value("(true || false) && false") is False
    assert value("!true == false") is True  # ! binds tighter than ==
    assert value("1 < 2 == true") is True  # ordering binds tighter than equality
    assert value("matrix.os == 'linux' && matrix.python >= 3.11") is True


def test_logical_operators_short_circuit() -> None:
    # The right side would fail (bad JSON) if it were evaluated.
    assert value("false && fromJSON('{')") is False
    assert value("true || fromJSON('{')") is True


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("''", False),
        ("0", False),
        ("-0", False),
        ("0.0", False),
        ("NaN", False),
        ("null", False),
        ("false", False),
        ("'0'", True),
        ("'false'", True),
        ("' '", True),
        ("1", True),
        ("-1", True),
        ("fromJSON('[]')", True),
        ("fromJSON('{}')", True),
    ],
)
def test_truthiness_in_conditions(text: str, expected: bool) -> None:
    assert evaluate_condition(f"${{{{ {text} }}}}", CONTEXTS, OK) is expected


# ---------------------------------------------------------------- functions


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("contains('Hello world', 'WORLD')", True),
        ("contains('Hello', 'xyz')", False),
        ("contains(matrix.node.tags, 'LTS')", True),
        ("contains(matrix.node.tags, 'y')", False),
        ("contains(fromJSON('[1, 2]'), '2')", True),
        ("contains(123, 2)", True),
        ("startsWith('refs/heads/main', 'REFS/')", True),
        ("startsWith('main', 'refs/')", False),
        ("endsWith('build.yml', '.YML')", True),
        ("endsWith('build.yml', '.json')", False),
        ("CONTAINS('abc', 'b')", True),  # function names ignore case
        ("StartsWith('abc', 'a')", True),
        ("format('{0} is {1}', 'os', matrix.os)", "os is Linux"),
        ("format('{{0}} {0}{0}', 'x')", "{0} xx"),
        ("format('{1}-{0}', 1, true)", "true-1"),
        ("format('plain')", "plain"),
        ("join(matrix.node.tags)", "lts,x"),
        ("join(matrix.node.tags, ' | ')", "lts | x"),
        ("join('single', '+')", "single"),
        ("toJSON(matrix.node.tags)", '[\n  "lts",\n  "x"\n]'),
        ("toJSON('text')", '"text"'),
        ("toJSON(null)", "null"),
        ("fromJSON('{\"a\": [1, 2]}').a[1]", 2),
        ("fromJSON('true')", True),
        ("fromJSON('3.5')", 3.5),
        ("fromJSON(toJSON(matrix.node)).version", 20),
    ],
)
def test_functions(text: str, expected: Any) -> None:
    assert value(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("format('{0} {1}', 'a')", "refers to argument 1, but only 1 given"),
        ("format('{', 'a')", "invalid format string"),
        ("format('}')", "unmatched '}'"),
        ("fromJSON('{not json')", "not valid JSON"),
        ("fromJSON('[' * 1)", "unexpected"),
    ],
)
def test_function_errors_are_expression_errors(text: str, message: str) -> None:
    with pytest.raises(ExpressionError, match=message):
        value(text)


def test_from_json_of_deeply_nested_text_is_an_error_not_a_crash() -> None:
    deep = "[" * 100_000 + "]" * 100_000
    with pytest.raises(ExpressionError, match="fromJSON"):
        evaluate("fromJSON(vars.deep)", {"vars": {"deep": deep}})


# ---------------------------------------------------------------- templates


def test_interpolate_renders_values_as_github_does() -> None:
    text = (
        "s=${{ matrix.os }} n=${{ matrix.n }} f=${{ 1.5 }} i=${{ 2.0 }} b=${{ true }} "
        "z=${{ null }} o=${{ matrix.node }}"
    )
    assert interpolate(text, CONTEXTS) == "s=Linux n=3 f=1.5 i=2 b=true z= o=Object"


def test_interpolate_leaves_text_without_expressions_alone() -> None:
    assert interpolate("echo $HOME ${HOME} {{ x }}", CONTEXTS) == "echo $HOME ${HOME} {{ x }}"


def test_closing_braces_inside_a_string_literal_do_not_end_the_expression() -> None:
    assert interpolate("${{ format('{0}}}', 'a') }}!", CONTEXTS) == "a}!"
    assert interpolate("<${{ '}}' }}>", CONTEXTS) == "<}}>"


def test_unclosed_expression_is_an_error() -> None:
    with pytest.raises(ExpressionError, match="no closing"):
        interpolate("echo ${{ matrix.os", CONTEXTS)


def test_evaluate_template_keeps_the_type_of_a_whole_value_expression() -> None:
    assert evaluate_template("${{ fromJSON('[1, 2]') }}", CONTEXTS) == [1, 2]
    assert evaluate_template("  ${{ matrix.n }}  ", CONTEXTS) == 3
    assert evaluate_template("n=${{ matrix.n }}", CONTEXTS) == "n=3"


def test_has_expression() -> None:
    assert has_expression("run ${{ matrix.os }}")
    assert not has_expression("run ${HOME} {{ x }}")


# ---------------------------------------------------------------- conditions and status functions


def test_condition_without_status_function_means_success_and() -> None:
    assert evaluate_condition("matrix.os == 'linux'", CONTEXTS, OK) is True
    assert evaluate_condition("matrix.os == 'linux'", CONTEXTS, FAILED) is False
    assert evaluate_condition("${{ true }}", CONTEXTS, CANCELLED) is False


@pytest.mark.parametrize(
    ("condition", "ok", "failed", "cancelled"),
    [
        ("success()", True, False, False),
        ("failure()", False, True, False),
        ("always()", True, True, True),
        ("cancelled()", False, False, True),
        ("${{ always() && matrix.os == 'Linux' }}", True, True, True),
        ("${{ failure() || cancelled() }}", False, True, True),
        ("!cancelled()", True, True, False),
        ("SUCCESS()", True, False, False),
    ],
)
def test_status_functions(condition: str, ok: bool, failed: bool, cancelled: bool) -> None:
    assert evaluate_condition(condition, CONTEXTS, OK) is ok
    assert evaluate_condition(condition, CONTEXTS, FAILED) is failed
    assert evaluate_condition(condition, CONTEXTS, CANCELLED) is cancelled


def test_an_explicit_success_flag_is_respected() -> None:
    assert evaluate_condition("success()", CONTEXTS, JobStatus(success=False)) is False
    assert evaluate_condition("success()", CONTEXTS, JobStatus(success=True, cancelled=True)) is False


def test_uses_status_function_looks_at_calls_not_at_text() -> None:
    assert uses_status_function("${{ always() }}")
    assert uses_status_function("failure() && matrix.os == 'x'")
    assert not uses_status_function("'always()' == matrix.os")


def test_text_around_a_condition_expression_is_refused() -> None:
    # GitHub would take this as a non-empty string, which is always true.
    with pytest.raises(ExpressionError, match="one expression"):
        evaluate_condition("${{ false }} && true", CONTEXTS, OK)


def test_status_functions_outside_conditions_are_errors() -> None:
    with pytest.raises(ExpressionError, match=r"success\(\) can only be used in an if: condition"):
        interpolate("${{ success() }}", CONTEXTS)
    with pytest.raises(ExpressionError, match="if: condition"):
        check("echo ${{ always() }}", contexts=CONTEXTS)


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("matrix.os ==", "unexpected end of expression at position 13"),
        ("(1", "expected ')'"),
        ("1 2", "unexpected '2' at position 3"),
        ("'open", "unterminated string at position 1"),
        ("matrix.os = 'x'", "unexpected '=' at position 11"),
        ("a.", "expected a property name"),
        ("a[1", "expected ']'"),
        ("contains('a')", "contains() takes 2 argument(s), got 1"),
        ("success(1)", "success() takes 0"),
        ("join()", "join() takes 1 to 2"),
        ("frobnicate(1)", "unknown function 'frobnicate'"),
        ("tojson1(1)", "did you mean 'toJSON'"),
        ("hashFiles()", "hashFiles() takes 1 to 255"),
    ],
)
def test_syntax_errors_say_what_and_where(text: str, message: str) -> None:
    with pytest.raises(ExpressionError, match=re.escape(message)):
        parse(text)


def test_check_finds_unknown_contexts_with_a_suggestion() -> None:
    with pytest.raises(
        ExpressionError, match=r"unknown context 'matirx' \(did you mean 'matrix'\?"
    ) as caught:
        check("echo ${{ matrix.os }} ${{ matirx.os }}", contexts=["matrix", "env"])
    assert "position 2" in str(caught.value)
    check("${{ matrix.os }} ${{ ENV.x }}", contexts=["matrix", "env"])  # context names ignore case


def test_check_of_a_condition_accepts_bare_and_wrapped_forms() -> None:
    check("matrix.os == 'x' && always()", contexts=["matrix"], condition=True)
    check("${{ failure() }}", contexts=["matrix"], condition=True)
    with pytest.raises(ExpressionError, match="unknown context 'github'"):
        check("github.ref == 'main'", contexts=["matrix"], condition=True)


def test_evaluating_an_unknown_context_is_an_error() -> None:
    with pytest.raises(ExpressionError, match="unknown context 'secrets'"):
        evaluate("secrets.TOKEN", CONTEXTS)


# ---------------------------------------------------------------- hostile input


@pytest.mark.parametrize(
    "text",
    [
        "(" * 150 + "1" + ")" * 150,
        "!" * 500 + "true",
        "a" + ".b" * 200,
        "a" + "[0]" * 200,
        "contains(" * 120 + "'a'" + ", 'b')" * 120,
        "1" + " == 1" * 300,
        "a[" * 150 + "0" + "]" * 150,
        "(" * 15_000,
    ],
)
def test_deep_nesting_is_refused_cleanly(text: str) -> None:
    with pytest.raises(ExpressionError, match="nested deeper than 50 levels"):
        parse(text)


def test_nesting_within_the_limit_works() -> None:
    assert evaluate("(" * 49 + "1" + ")" * 49, {}) == 1
    assert evaluate("!" * 48 + "true", {}) is True


def test_long_and_or_chains_stay_flat() -> None:
    chain = " || ".join(f"matrix.n == {n}" for n in range(500))
    assert value(chain) is True
    assert value(" && ".join(["true"] * 1000)) is True


def test_very_long_input_is_refused() -> None:
    with pytest.raises(ExpressionError, match="longer than"):
        parse("'" + "a" * 30_000 + "'")


def test_long_text_around_expressions_is_fine() -> None:
    text = "x" * 200_000 + "${{ matrix.os }}" + "y" * 200_000
    assert len(interpolate(text, CONTEXTS)) == 400_005


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from([*"ab.()[]'!=<>&|,*0x1e -_", "matrix", "true", "contains("]), max_size=40))
def test_arbitrary_text_gives_a_value_or_an_expression_error(pieces: list[str]) -> None:
    with contextlib.suppress(ExpressionError):
        evaluate("".join(pieces), CONTEXTS)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=80))
def test_arbitrary_templates_give_text_or_an_expression_error(text: str) -> None:
    with contextlib.suppress(ExpressionError):
        assert isinstance(interpolate(text, CONTEXTS), str)
