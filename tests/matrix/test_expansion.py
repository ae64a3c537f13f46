"""Matrix expansion as GitHub does it, and the instances a playbook's steps become."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from typing import Any

import pytest

from ci_orchestrator.errors import ExpressionError, Location, PlaybookError, UsageError
from ci_orchestrator.expressions import evaluation
from ci_orchestrator.matrix.evaluator import contexts_for, default_runner
from ci_orchestrator.matrix.expansion import expand
from ci_orchestrator.matrix.rules import combinations, instance_id
from ci_orchestrator.playbook.model import MatrixSpec, Step
from tests.helpers import FIXTURES, REPO, playbook

DOCS_CASES = json.loads((FIXTURES / "matrix" / "github_docs.json").read_text())


def step(step_id: str, **fields: Any) -> Step:
    fields.setdefault("run", "true")
    fields.setdefault("name", step_id)
    return Step(id=step_id, location=Location(file="test.yml", line=1, column=1), **fields)


def spec(matrix: dict[str, Any]) -> MatrixSpec:
    """A MatrixSpec from a `matrix:` mapping as written in YAML."""
    return MatrixSpec(
        axes={key: tuple(values) for key, values in matrix.items() if key not in ("include", "exclude")},
        include=tuple(matrix.get("include", ())),
        exclude=tuple(matrix.get("exclude", ())),
    )


def ids(instances: list[Any]) -> list[str]:
    return [instance.id for instance in instances]


# ---------------------------------------------------------------- GitHub's rules


@pytest.mark.parametrize("case", sorted(DOCS_CASES))
def test_github_documented_examples(case: str) -> None:
    example = DOCS_CASES[case]
    result = combinations(spec(example["matrix"]))
    assert result == example["expected"]
    # Key order is part of the result: it orders the values in instance ids.
    assert [list(c) for c in result] == [list(c) for c in example["expected"]]


def test_exclude_example_leaves_nine_of_twelve() -> None:
    assert len(combinations(spec(DOCS_CASES["exclude-partial"]["matrix"]))) == 9


def test_include_example_gives_exactly_the_six_documented_jobs() -> None:
    result = combinations(spec(DOCS_CASES["include-expand"]["matrix"]))
    assert result == [
        {"fruit": "apple", "animal": "cat", "color": "pink", "shape": "circle"},
        {"fruit": "apple", "animal": "dog", "color": "green", "shape": "circle"},
        {"fruit": "pear", "animal": "cat", "color": "pink"},
        {"fruit": "pear", "animal": "dog", "color": "green"},
        {"fruit": "banana"},
        {"fruit": "banana", "animal": "cat"},
    ]


def test_include_equal_to_an_existing_combination_adds_nothing() -> None:
    result = combinations(spec({"os": ["linux", "mac"], "include": [{"os": "mac"}]}))
    assert result == [{"os": "linux"}, {"os": "mac"}]


def test_include_only_entries_each_become_a_combination_even_when_equal() -> None:
    result = combinations(spec({"include": [{"os": "linux"}, {"os": "linux"}, {"os": "mac", "x": 1}]}))
    assert result == [{"os": "linux"}, {"os": "linux"}, {"os": "mac", "x": 1}]


def test_values_match_by_type_not_by_text() -> None:
    # `true` is not `1` and `'3'` is not `3`: such includes do not merge, they add jobs.
    result = combinations(
        spec({"flag": [True], "n": [3], "include": [{"flag": 1, "a": 1}, {"n": "3", "b": 2}]})
    )
    assert result == [{"flag": True, "n": 3}, {"flag": 1, "a": 1}, {"n": "3", "b": 2}]


def test_exclude_with_an_object_value() -> None:
    result = combinations(spec({"node": [{"v": 14}, {"v": 20}], "exclude": [{"node": {"v": 14}}]}))
    assert result == [{"node": {"v": 20}}]


def test_256_combinations_are_allowed_and_257_are_not() -> None:
    assert len(combinations(spec({"a": list(range(16)), "b": list(range(16))}))) == 256
    with pytest.raises(PlaybookError, match="257 combinations; at most 256"):
        combinations(spec({"a": list(range(16)), "b": list(range(16)), "include": [{"a": 99}]}))
    # The limit counts what is left after exclude: 20 x 20 = 400, less 8 x 20, is 240.
    excluded = [{"a": n} for n in range(8)]
    assert len(combinations(spec({"a": list(range(20)), "b": list(range(20)), "exclude": excluded}))) == 240


def test_a_runaway_product_is_refused_without_being_built() -> None:
    with pytest.raises(PlaybookError, match="at most 256"):
        combinations(spec({f"axis{i}": list(range(10)) for i in range(12)}))


@pytest.mark.parametrize(
    ("matrix", "message"),
    [
        ({"os": []}, "matrix axis 'os' has no values"),
        ({"os": ["a"], "exclude": [{"arch": "x"}]}, "exclude key 'arch' is not a matrix axis (axes: os)"),
        ({"os": ["a"], "exclude": [{"os": "a"}]}, "removes every combination"),
    ],
)
def test_invalid_matrices(matrix: dict[str, Any], message: str) -> None:
    with pytest.raises(PlaybookError) as caught:
        combinations(spec(matrix))
    assert message in str(caught.value)


# ---------------------------------------------------------------- instance ids


@pytest.mark.parametrize(
    ("combination", "expected"),
    [
        ({}, "test"),
        ({"python": "3.12"}, "test (3.12)"),
        ({"os": "linux", "python": "3.12"}, "test (linux, 3.12)"),
        ({"python": "3.12", "os": "linux"}, "test (3.12, linux)"),
        ({"n": 3, "f": 1.5, "big": 2.0, "ok": True, "no": False}, "test (3, 1.5, 2, true, false)"),
        ({"os": "linux", "extra": None, "empty": ""}, "test (linux)"),
        ({"node": {"version": 20, "lts": "iron"}, "os": "mac"}, "test (20, iron, mac)"),
        ({"list": ["a", ["b"]]}, "test (a, b)"),
    ],
)
def test_instance_id(combination: dict[str, Any], expected: str) -> None:
    assert instance_id("test", combination) == expected


# ---------------------------------------------------------------- expand


def test_expand_keeps_step_order_and_matrix_order() -> None:
    book = playbook(
        step("lint"),
        step("test", matrix=spec({"os": ["linux", "mac"], "python": ["3.11", "3.12"]})),
        step("build"),
    )
    assert ids(expand(book)) == [
        "lint",
        "test (linux, 3.11)",
        "test (linux, 3.12)",
        "test (mac, 3.11)",
        "test (mac, 3.12)",
        "build",
    ]


def test_expressions_are_evaluated_per_instance() -> None:
    book = playbook(
        step(
            "test",
            name="Test",
            matrix=spec({"python": ["3.11", "3.12"], "include": [{"python": "3.12", "experimental": True}]}),
            run="tox -e py${{ matrix.python }} --mode ${{ vars.MODE }}",
            env={"PY": "${{ matrix.python }}", "WHERE": "${{ env.BASE }}/${{ matrix.python }}"},
            working_directory="src/${{ matrix.python }}",
            continue_on_error="${{ matrix.experimental == true }}",
            timeout="${{ matrix.python == '3.12' && '2m' || '90s' }}",
        ),
        env={"BASE": "/opt/${{ runner.os }}"},
        vars={"MODE": "fast"},
    )
    first, second = expand(book, runner={"os": "Linux", "arch": "X64", "temp": "/tmp"})
    assert first.run == "tox -e py3.11 --mode fast"
    assert first.working_directory == "src/3.11"
    assert first.env["PY"] == "3.11"
    assert first.env["WHERE"] == "/opt/Linux/3.11"
    assert first.env["MATRIX_PYTHON"] == "3.11"
    assert (first.timeout, second.timeout) == (90.0, 120.0)
    assert (first.continue_on_error, second.continue_on_error) == (False, True)
    assert second.env["MATRIX_EXPERIMENTAL"] == "true"
    assert second.matrix == {"python": "3.12", "experimental": True}


def test_step_env_overrides_playbook_env_and_matrix_env_is_added() -> None:
    book = playbook(
        step("s", matrix=spec({"python-version": ["3.12"], "node": [{"v": 20}]}), env={"A": "step"}),
        env={"A": "playbook", "B": "playbook"},
    )
    (instance,) = expand(book)
    assert instance.env["A"] == "step"
    assert instance.env["B"] == "playbook"
    assert instance.env["MATRIX_PYTHON_VERSION"] == "3.12"
    assert json.loads(instance.env["MATRIX_NODE"]) == {"v": 20}


def test_matrix_values_reach_a_real_shell() -> None:
    book = playbook(
        step(
            "s",
            matrix=spec({"os": ["linux"], "node": [{"version": 20}]}),
            run='echo "$MATRIX_OS ${{ matrix.node.version }} $WHO"',
            env={"WHO": "${{ matrix.os }}-user"},
        )
    )
    (instance,) = expand(book)
    done = subprocess.run(
        ["bash", "--noprofile", "--norc", "-c", instance.run or ""],
        env={"PATH": "/usr/bin:/bin", **instance.env},
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout == "linux 20 linux-user\n"


def test_names_get_the_matrix_suffix_unless_they_hold_an_expression() -> None:
    book = playbook(
        step("a", name="Tests", matrix=spec({"py": ["3.12"]})),
        step("b", name="Tests on ${{ matrix.py }}", matrix=spec({"py": ["3.12"]})),
        step("c", name="Lint"),
    )
    assert [instance.name for instance in expand(book)] == ["Tests (3.12)", "Tests on 3.12", "Lint"]


def test_variables_overlay_playbook_vars() -> None:
    book = playbook(step("s", run="echo ${{ vars.A }} ${{ vars.B }}"), vars={"A": "1", "B": "2"})
    (instance,) = expand(book, variables={"B": "override"})
    assert instance.run == "echo 1 override"


def test_the_runner_context_defaults_to_this_machine() -> None:
    runner = default_runner()
    assert runner["os"] in ("Linux", "macOS", "Windows")
    assert runner["arch"]
    book = playbook(step("s", run="${{ runner.os }} ${{ runner.temp }}"))
    (instance,) = expand(book)
    assert instance.run == f"{runner['os']} {runner['temp']}"


def test_timeouts_accept_numbers_durations_and_nothing() -> None:
    book = playbook(
        step("a", timeout=30.0),
        step("b", timeout="1h30m"),
        step("c"),
        step("d", timeout="${{ vars.T }}"),
        step("e", timeout="${{ 45 }}"),
        vars={"T": "2m"},
    )
    assert [instance.timeout for instance in expand(book)] == [30.0, 5400.0, None, 120.0, 45.0]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("0", "invalid duration '0': must be a finite number of seconds above 0"),
        ("-5", "invalid duration '-5': must be a finite number of seconds above 0"),
        ("${{ true }}", "invalid duration 'true': use seconds or a form like 90s, 2m, 1h30m"),
    ],
)
def test_a_timeout_from_an_expression_has_the_bound_of_any_other(value: str, message: str) -> None:
    book = playbook(
        step("s", timeout="${{ vars.T }}" if not value.startswith("$") else value), vars={"T": value}
    )
    with pytest.raises(ExpressionError, match=re.escape(f"steps.s.timeout: {message}")):
        expand(book)


def test_continue_on_error_accepts_true_false_text() -> None:
    book = playbook(
        step("a", continue_on_error=True),
        step("b", continue_on_error="${{ vars.FLAG }}"),
        step("c", continue_on_error="${{ vars.OFF }}"),
        vars={"FLAG": "true", "OFF": "false"},
    )
    assert [instance.continue_on_error for instance in expand(book)] == [True, True, False]


def test_the_condition_is_kept_and_evaluated_later_with_the_instance_contexts() -> None:
    book = playbook(
        step("t", matrix=spec({"py": ["3.11", "3.12"]}), condition="${{ matrix.py != '3.12' && vars.GO }}"),
        vars={"GO": "yes"},
    )
    instances = expand(book)
    assert all(instance.condition == "${{ matrix.py != '3.12' && vars.GO }}" for instance in instances)
    ok = evaluation.JobStatus()
    verdicts = [
        evaluation.evaluate_condition(i.condition or "", contexts_for(i, {"GO": "yes"}), ok)
        for i in instances
    ]
    assert verdicts == [True, False]


def test_contexts_for_gives_the_instance_values() -> None:
    (instance,) = expand(playbook(step("s", matrix=spec({"os": ["mac"]}), env={"A": "1"})))
    contexts = contexts_for(instance, {"V": "x"}, runner={"os": "Linux"})
    assert contexts["matrix"] == {"os": "mac"}
    assert contexts["vars"] == {"V": "x"}
    assert contexts["env"]["A"] == "1"
    assert contexts["runner"] == {"os": "Linux"}


def test_whole_matrix_from_json() -> None:
    matrix = MatrixSpec(axes={}, expression="${{ fromJSON(vars.MATRIX) }}")
    value = {"os": ["linux", "mac"], "include": [{"os": "mac", "arm": True}], "exclude": []}
    book = playbook(step("s", matrix=matrix), vars={"MATRIX": json.dumps(value)})
    assert ids(expand(book)) == ["s (linux)", "s (mac, true)"]


def test_an_axis_from_an_expression() -> None:
    matrix = MatrixSpec(axes={"py": ("${{ fromJSON(vars.PYTHONS) }}",), "os": ("${{ runner.os }}",)})
    book = playbook(step("s", matrix=matrix), vars={"PYTHONS": '["3.11", "3.12"]'})
    assert ids(expand(book, runner={"os": "Linux"})) == ["s (3.11, Linux)", "s (3.12, Linux)"]


def test_duplicate_ids_are_numbered() -> None:
    book = playbook(step("s", matrix=spec({"include": [{"os": "linux"}, {"os": "linux"}]})))
    assert ids(expand(book)) == ["s (linux)", "s (linux) #2"]


# ---------------------------------------------------------------- --matrix filters


def filtered_book() -> Any:
    return playbook(
        step("lint"),
        step("test", matrix=spec({"os": ["linux", "mac"], "python": ["3.11", "3.12", "3.13"]})),
        step("docs", matrix=spec({"python": ["3.12", "3.13"]})),
    )


def test_filters_keep_only_the_given_values() -> None:
    instances = expand(filtered_book(), matrix_filters={"python": ["3.12", "3.13"], "os": ["mac"]})
    assert ids(instances) == ["lint", "test (mac, 3.12)", "test (mac, 3.13)", "docs (3.12)", "docs (3.13)"]


def test_a_filter_value_an_axis_lacks_replaces_the_axis_values() -> None:
    instances = expand(filtered_book(), matrix_filters={"python": ["3.11", "3.14"]})
    assert ids(instances) == [
        "lint",
        "test (linux, 3.11)",
        "test (linux, 3.14)",
        "test (mac, 3.11)",
        "test (mac, 3.14)",
        "docs (3.11)",
        "docs (3.14)",
    ]
    assert instances[-1].env["MATRIX_PYTHON"] == "3.14"


def test_an_override_keeps_exclude_and_include() -> None:
    book = playbook(
        step(
            "s",
            matrix=spec(
                {
                    "os": ["linux", "mac"],
                    "python": ["3.11"],
                    "exclude": [{"os": "mac", "python": "3.15"}],
                    "include": [{"os": "linux", "experimental": True}],
                }
            ),
        )
    )
    assert ids(expand(book, matrix_filters={"python": ["3.15"]})) == ["s (linux, 3.15, true)"]


def test_a_value_only_include_gives_cannot_be_overridden() -> None:
    book = playbook(step("s", matrix=spec({"os": ["linux"], "include": [{"os": "linux", "extra": "a"}]})))
    with pytest.raises(UsageError) as caught:
        expand(book, matrix_filters={"extra": ["b"]})
    assert caught.value.exit_code == 2
    assert "step 's' has no such value (its extra values: a; only an axis under" in str(caught.value)


def test_a_filter_on_an_axis_no_step_has_lists_the_axes() -> None:
    with pytest.raises(UsageError) as caught:
        expand(filtered_book(), matrix_filters={"pyton": ["3.12"]})
    assert "no step has a matrix axis 'pyton' (did you mean 'python'?); axes: os, python" in str(caught.value)


def test_filters_match_numbers_as_written() -> None:
    book = playbook(step("s", matrix=spec({"node": [18, 20], "flag": [True, False]})))
    assert ids(expand(book, matrix_filters={"node": ["20"], "flag": ["true"]})) == ["s (20, true)"]


# ---------------------------------------------------------------- located errors


def located_step(step_id: str, line: int, **fields: Any) -> Any:
    keys = {"run": 3, "env.TOKEN": 4, "if": 5, "timeout": 6, "matrix": 7, "name": 8}
    return step(
        step_id,
        key_locations={
            key: Location(file="ci.yml", line=line + offset, column=5) for key, offset in keys.items()
        },
        **fields,
    )


def test_every_expression_error_is_reported_at_once_with_its_place() -> None:
    book = playbook(
        located_step("build", 10, run="make ${{ matrix.os ==  }}"),
        located_step("test", 20, env={"TOKEN": "${{ job.status }}"}, condition="${{ success() && nope() }}"),
        located_step("docs", 30, run="echo ${{ success() }}", timeout="${{ vars.T }}"),
        vars={"T": "soon"},
    )
    with pytest.raises(ExpressionError) as caught:
        expand(book)
    lines = caught.value.lines()
    assert len(lines) == 4
    assert lines[0].startswith("ci.yml:13:5: steps.build.run: unexpected end of expression")
    assert lines[1].startswith("ci.yml:24:5: steps.test.env.TOKEN: unknown context 'job'")
    assert lines[2].startswith("ci.yml:25:5: steps.test.if: unknown function 'nope'")
    assert lines[3].startswith("ci.yml:33:5: steps.docs.run: success() can only be used in an if: condition")
    assert caught.value.exit_code == 2


def test_evaluation_errors_are_located_too() -> None:
    book = playbook(
        located_step("s", 1, timeout="${{ vars.T }}", name="${{ fromJSON('{') }}"), vars={"T": "soon"}
    )
    with pytest.raises(ExpressionError) as caught:
        expand(book)
    assert caught.value.lines() == [
        "ci.yml:9:5: steps.s.name: fromJSON(): not valid JSON: '{' "
        "(Expecting property name enclosed in double quotes: line 1 column 2 (char 1)) (in 'fromJSON('{')')",
        "ci.yml:7:5: steps.s.timeout: invalid duration 'soon': use seconds or a form like 90s, 2m, 1h30m",
    ]


def test_an_error_repeated_by_every_instance_is_reported_once() -> None:
    book = playbook(located_step("s", 1, matrix=spec({"n": [1, 2, 3]}), run="${{ fromJSON('x') }}"))
    with pytest.raises(ExpressionError) as caught:
        expand(book)
    assert len(caught.value.problems) == 1


def test_matrix_errors_are_located_at_the_matrix() -> None:
    book = playbook(
        located_step("a", 1, matrix=spec({"n": list(range(300))})),
        located_step("b", 20, matrix=MatrixSpec(axes={}, expression="${{ fromJSON(vars.M) }}")),
        located_step("c", 40, matrix=spec({"os": ["${{ matrix.os }}"]})),
        vars={"M": "[1, 2]"},
    )
    with pytest.raises(PlaybookError) as caught:
        expand(book)
    assert caught.value.lines() == [
        "ci.yml:8:5: steps.a.matrix: matrix has 300 combinations; at most 256 are allowed",
        "ci.yml:27:5: steps.b.matrix: matrix expression must give an object, got '[1, 2]'",
        "ci.yml:47:5: steps.c.matrix: unknown context 'matrix' (available: vars, runner, github, inputs) "
        "at position 2 in expression 'matrix.os'",
    ]


def test_an_unknown_key_location_falls_back_to_the_step() -> None:
    book = playbook(step("s", working_directory="${{ nope.x }}"))
    with pytest.raises(ExpressionError) as caught:
        expand(book)
    assert caught.value.lines()[0].startswith(
        "test.yml:1:1: steps.s.working-directory: unknown context 'nope'"
    )


def test_playbook_env_errors_point_at_the_playbook() -> None:
    book = playbook(step("a"), step("b"), env={"X": "${{ env. }}"})
    with pytest.raises(ExpressionError) as caught:
        expand(book)
    assert len(caught.value.problems) == 1
    assert caught.value.lines()[0].startswith(
        "test.yml: env.X: unexpected end of expression, expected a property name"
    )


# ---------------------------------------------------------------- steps with nothing to evaluate


def test_a_plain_step_becomes_the_instance_evaluation_would_give() -> None:
    written = {"name": "Build", "run": "make all", "working_directory": "src", "env": {"A": "step"}}
    plain = step("s", timeout=30.0, continue_on_error=True, **written)
    evaluated = step(
        "s",
        timeout="${{ 30 }}",
        continue_on_error="${{ true }}",
        **{**written, "run": "make ${{ 'all' }}"},
    )
    env = {"A": "playbook", "B": "playbook"}
    (fast,) = expand(playbook(plain, env=env))
    (slow,) = expand(playbook(evaluated, env=env))
    fields = ("id", "matrix", "name", "run", "working_directory", "timeout", "continue_on_error", "condition")
    assert [getattr(fast, name) for name in fields] == [getattr(slow, name) for name in fields]
    assert list(fast.env.items()) == list(slow.env.items()) == [("A", "step"), ("B", "playbook")]


def test_plain_playbooks_expand_without_the_expression_modules() -> None:
    """Start-up: the evaluator is imported only when a playbook has something to evaluate."""
    probe = (
        "import sys\n"
        "from ci_orchestrator.matrix.expansion import expand\n"
        "from tests.helpers import playbook, step\n"
        "expand(playbook(step('a', timeout=5.0), step('b', env={'X': '1'}), env={'Y': '2'}))\n"
        "print(sorted(name for name in sys.modules if name.startswith('ci_orchestrator.expressions')))\n"
        "expand(playbook(step('c', run='echo ${{ vars.V }}'), vars={'V': '1'}))\n"
        "print('ci_orchestrator.expressions.evaluation' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.split("\n")[:2] == ["[]", "True"]
