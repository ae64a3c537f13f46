"""Bad input, generated: whatever a playbook file holds, `validate` answers with exit 0 or with
exit 2 and located messages, never a traceback; hostile expressions and matrix values are
errors or plain text, never evaluated.

Every example goes through the real `validate` command (typer's CliRunner, in process). The
example counts are explicit and add up to more than 1,000 per run.
"""

from __future__ import annotations

import json
import string
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import typer.testing
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ci_orchestrator.cli import app
from ci_orchestrator.playbook.loader import GROUP_KEYS, PLAYBOOK_KEYS
from ci_orchestrator.playbook.steps import STEP_KEYS
from tests.helpers import invoke

if TYPE_CHECKING:
    from collections.abc import Iterator

FUZZ = settings(
    deadline=None,
    derandomize=True,  # the same examples on every run: a failure here is never a fluke
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
FILE = "fuzzed.yml"


@pytest.fixture(scope="module", autouse=True)
def command_built_once() -> Iterator[None]:
    """typer builds the command from the app's signatures on every invoke, which costs more
    than an example here: it is built once for this module."""
    command = typer.testing._get_command(app)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(typer.testing, "_get_command", lambda _app: command)
        yield


def validate(path: Path) -> tuple[int, list[str]]:
    """Runs `ci-orchestrator validate PATH`; returns the exit code and the stderr lines.

    Fails the test on any exception other than the command's own exit.
    """
    try:
        result = invoke("validate", str(path))
    except Exception as error:
        raise AssertionError(f"traceback for {path.read_bytes()[:300]!r}") from error
    return result.exit_code, result.stderr.splitlines()


def assert_answered(path: Path, data: bytes) -> list[str]:
    """Writes `data` to `path`, validates it, and checks the answer is a clean one."""
    path = Path(path.name)  # relative to the working folder, as a user would type it
    path.write_bytes(data)
    code, lines = validate(path)
    assert code in (0, 2), (code, data[:300])
    if code == 2:
        assert lines, data[:300]
        # The first problem names the file; the others may name a script or settings file.
        assert lines[0].startswith(f"ci-orchestrator: {path.name}"), (lines[0], data[:300])
    return lines


# ---------------------------------------------------------------- generated documents

_huge = st.one_of(
    st.integers(),
    st.integers(min_value=10**30, max_value=10**400),
    st.floats(allow_nan=True, allow_infinity=True),
)
_words = st.sampled_from(
    [*PLAYBOOK_KEYS, *STEP_KEYS, *GROUP_KEYS, "include", "exclude", "0100", "<<", "", "${{ matrix.x }}"]
)
_scalars = st.one_of(
    st.none(),
    st.booleans(),
    _huge,
    st.text(max_size=30),
    _words,
    st.sampled_from(["${{", "}}", "${{ matrix.__class__ }}", "1h30m", "-1", "auto", "!!python/name:os"]),
)


def _nested(leaves: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.recursive(
        leaves,
        lambda inner: st.one_of(
            st.lists(inner, max_size=4),
            st.dictionaries(st.one_of(_words, st.text(max_size=8)), inner, max_size=5),
        ),
        max_leaves=25,
    )


_values = _nested(_scalars)
_step = st.dictionaries(st.sampled_from(STEP_KEYS), _values, max_size=6)
# Shaped like a playbook, so the fuzzing reaches the checks past the first few keys.
_playbooks = st.fixed_dictionaries(
    {"name": st.one_of(st.text(min_size=1, max_size=10), _values)},
    optional={
        "steps": st.one_of(st.lists(_step, max_size=4), _values),
        "groups": st.lists(
            st.fixed_dictionaries(
                {"name": st.text(max_size=5)}, optional={"steps": st.lists(_step, max_size=3)}
            ),
            max_size=2,
        ),
        **{key: _values for key in PLAYBOOK_KEYS if key not in ("name", "steps", "groups", "scripts")},
    },
)


@settings(FUZZ, max_examples=300)
@given(document=st.one_of(_playbooks, _values))
def test_random_documents_as_yaml(workdir: Path, document: Any) -> None:
    text = yaml.safe_dump(document, allow_unicode=True, sort_keys=False)
    assert_answered(workdir / FILE, text.encode())


@settings(FUZZ, max_examples=250)
@given(document=st.one_of(_playbooks, _values))
def test_random_documents_as_json(workdir: Path, document: Any) -> None:
    text = json.dumps(document, allow_nan=True)  # NaN and Infinity: not JSON, still answered
    assert_answered(workdir / "fuzzed.json", text.encode())


# YAML's own punctuation, anchors, aliases, tags and merge keys, put together at random.
_tokens = st.sampled_from(
    [
        "name: x\n", "steps:\n", "  - ", "- ", "id: a", "run: true", "&a ", "*a", "&b ", "*b", "<<: ",
        "<<: *a", "{", "}", "[", "]", ", ", ": ", "\n", "  ", "\t", "'", '"', "? ", "!!str ", "!!int ",
        "!!python/object:os.system ", "!custom ", "%YAML 1.1\n", "---\n", "...\n", "# c\n", "|\n", ">-\n",
        "${{ ", " }}", "matrix: ", "needs: [a]", "9" * 400, "1e999", "0x", "~", "\ufeff", "\x00", "\udcff",
    ]
)  # fmt: skip


@settings(FUZZ, max_examples=300)
@given(pieces=st.lists(st.one_of(_tokens, st.text(max_size=5)), max_size=40))
def test_random_yaml_text(workdir: Path, pieces: list[str]) -> None:
    data = "".join(pieces).encode("utf-8", "surrogatepass")
    assert_answered(workdir / FILE, data)


@settings(FUZZ, max_examples=150)
@given(data=st.binary(max_size=200))
def test_random_bytes(workdir: Path, data: bytes) -> None:
    assert_answered(workdir / FILE, data)


@settings(FUZZ, max_examples=30)
@given(depth=st.integers(min_value=1, max_value=5000), flow=st.booleans())
def test_deep_nesting(workdir: Path, depth: int, flow: bool) -> None:
    if flow:
        body = "[" * depth + "]" * depth
    else:
        body = "".join(f"{'  ' * level}k{level}:\n" for level in range(min(depth, 400))) + "  " * 400 + "x\n"
    lines = assert_answered(workdir / FILE, f"name: deep\nsteps: {body}\n".encode())
    assert lines  # never a valid playbook


# ---------------------------------------------------------------- targeted bad files


def _bomb(levels: int, width: int) -> str:
    lines = [f"a0: &a0 [{', '.join(['lol'] * width)}]"]
    for level in range(1, levels):
        lines.append(f"a{level}: &a{level} [{', '.join([f'*a{level - 1}'] * width)}]")
    return "name: bomb\nsteps:\n  - id: x\n    run: true\n    env: {}\nvars:\n  " + "\n  ".join(lines) + "\n"


@pytest.mark.parametrize(("levels", "width"), [(9, 10), (30, 2), (6, 100)])
def test_alias_bombs_are_refused_quickly_and_located(workdir: Path, levels: int, width: int) -> None:
    path = workdir / FILE
    started = time.perf_counter()
    lines = assert_answered(path, _bomb(levels, width).encode())
    elapsed = time.perf_counter() - started
    assert elapsed < 2.0  # 10**9 nodes if expanded: refused while reading
    assert len(lines) == 1
    assert "refusing to read it" in lines[0]
    assert lines[0].startswith(f"ci-orchestrator: {FILE}:")  # with a line number


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", "the file is empty"),
        (b"   \n# only a comment\n", "the file is empty"),
        (b"name: caf\xe9\nsteps: []\n", f"{FILE}:1:10: not UTF-8"),
        (b"\xff\xfe\x00n\x00a", f"{FILE}:1:1: not UTF-8"),
        (b"name: x\nsteps: [\n", f"{FILE}:3:1:"),
        (b"name: x\nsteps:\n  - id: a\n   run: true\n", f"{FILE}:4:"),
        (b"name: x\nsteps: !!python/object/apply:os.system [touch pwned]\n", "unsupported tag"),
        (b"name: x\nconcurrency: " + b"9" * 10_000 + b"\nsteps: [{id: a, run: x}]\n", f"{FILE}:2:"),
        (b"name: x\nsteps: [{id: a, run: x, timeout: 1e99999}]\n", f"{FILE}:2:"),
        (b"\x00\x01\x02", FILE),
    ],
)
def test_bad_files_give_one_located_message(workdir: Path, data: bytes, expected: str) -> None:
    lines = assert_answered(workdir / FILE, data)
    assert expected in lines[0]
    assert not (workdir / "pwned").exists()


def test_a_folder_and_a_missing_file_are_clear_errors(workdir: Path) -> None:
    (workdir / "folder.yml").mkdir()
    code, lines = validate(Path("folder.yml"))
    assert (code, lines) == (2, ["ci-orchestrator: folder.yml: is a folder, not a playbook file"])
    code, lines = validate(Path("missing.yml"))
    assert code == 2
    assert "missing" in lines[0]


def test_an_unreadable_file_is_a_clear_error(workdir: Path) -> None:
    # Root reads through permissions: a FIFO with no writer stands in for a file that
    # cannot be read; it must not hang either, so it is refused as not a regular file.
    pytest.importorskip("os").mkfifo(workdir / "pipe.yml")
    code, lines = validate(Path("pipe.yml"))
    assert code == 2
    assert lines[0].startswith("ci-orchestrator: pipe.yml")


# ---------------------------------------------------------------- hostile expressions and matrices

_HOSTILE_EXPRESSIONS = [
    "${{ matrix.__class__ }}",
    "${{ matrix.__class__.__mro__[1].__subclasses__() }}",
    "${{ vars['__class__'] }}",
    "${{ format('{0.__class__}', matrix) }}",
    "${{ format('{0:>999999999}', 1) }}",
    "${{ __import__('os').system('touch pwned') }}",
    "${{ fromJSON('" + "[" * 5000 + "]" * 5000 + "') }}",
    "${{ " + "(" * 5000 + "1" + ")" * 5000 + " }}",
    "${{ " + "!" * 5000 + "true }}",
    "${{ '" + "a" * 100_000 + "' }}",
    "${{ ${{ vars.x }} }}",
    "${{ vars.x",
    "${{ lambda: 1 }}",
    "${{ 1 if true else 2 }}",
]


@pytest.mark.parametrize("expression", _HOSTILE_EXPRESSIONS, ids=lambda text: text[:40])
@pytest.mark.parametrize("where", ["if", "env", "run", "timeout"])
def test_hostile_expressions_are_errors_or_text(workdir: Path, expression: str, where: str) -> None:
    value = {
        "if": {"if": expression},
        "env": {"env": {"X": expression}},
        "run": {"run": f"echo {expression}"},
        "timeout": {"timeout": expression},
    }[where]
    document = {"name": "hostile", "vars": {"x": "1"}, "steps": [{"id": "a", "run": "true", **value}]}
    assert_answered(workdir / FILE, json.dumps(document).encode())
    # `plan` evaluates what `validate` only checks: it must not reach Python either.
    result = invoke("plan", FILE, "--format", "json")
    assert result.exit_code in (0, 2), result.output
    if result.exit_code == 0:
        assert "<class" not in result.stdout and "__subclasses__" not in result.stdout.replace(expression, "")
    assert not (workdir / "pwned").exists()


_matrix_values = st.one_of(
    st.text(alphabet=string.printable, max_size=20),
    st.sampled_from(["${{ vars.payload }}", "$(touch pwned)", "'; touch pwned; '", "__class__", "${{"]),
    _huge,
    st.booleans(),
    st.none(),
    st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=2),
)


@settings(FUZZ, max_examples=60)
@given(
    values=st.lists(_matrix_values, min_size=1, max_size=4),
    key=st.one_of(st.sampled_from(["python", "__class__", "include", "x y"]), st.text(max_size=6)),
)
def test_hostile_matrix_values_are_values_never_code(workdir: Path, key: str, values: list[Any]) -> None:
    # A value written as an expression is evaluated once, as GitHub does; what it yields (here
    # text that looks like another expression) is never evaluated again.
    document = {
        "name": "matrix",
        "vars": {"secret": "s3cr3t", "payload": "${{ vars.secret }}"},
        "steps": [{"id": "t", "matrix": {key: values}, "run": "echo ${{ matrix." + key + " }}"}],
    }
    path = workdir / FILE
    path.write_text(json.dumps(document))
    assert_answered(path, path.read_bytes())
    result = invoke("plan", FILE, "--format", "json")
    assert result.exit_code in (0, 2)
    assert "s3cr3t" not in result.stdout
    assert not (workdir / "pwned").exists()


def test_matrix_and_variable_values_reach_the_step_as_text(workdir: Path) -> None:
    document = {
        "name": "literal",
        "vars": {"secret": "s3cr3t", "payload": "${{ vars.secret }}", "given": "x"},
        "steps": [
            {
                "id": "t",
                "matrix": {"v": ["${{ vars.payload }}", "$(touch pwned)", "`touch pwned`"]},
                "env": {"GIVEN": "${{ vars.given }}"},
                "run": 'printf "%s %s\\n" "$MATRIX_V" "$GIVEN" >> seen.txt',
            }
        ],
    }
    (workdir / FILE).write_text(json.dumps(document))
    args = ["run", FILE, "--no-cache", "-j", "1", "--output", "quiet", "--var", "given=$(touch pwned)"]
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    assert sorted((workdir / "seen.txt").read_text().splitlines()) == [
        "$(touch pwned) $(touch pwned)",
        "${{ vars.secret }} $(touch pwned)",
        "`touch pwned` $(touch pwned)",
    ]
    assert not (workdir / "pwned").exists()


# ---------------------------------------------------------------- hostile command-line values

_LONG_DIGITS = "9" * 5000  # past the digits Python's int() reads from text
_option_text = st.one_of(
    st.text(max_size=12),
    st.sampled_from(
        [
            "600h", "1e300", "1e400", "99999999999h", "nan", "inf", "-1", "0", _LONG_DIGITS,
            f"1-{_LONG_DIGITS}", f"{_LONG_DIGITS}-1", f"1/{_LONG_DIGITS}", "1/257", "99999999999999999999/3",
            "a (1)", "a ([x])", "a*", "[", "!", "!a", "tag:", "stage:x", "group:", "0000-9999", "\u00b2",
            "x=1", "=1", "x=", "x=" + _LONG_DIGITS, "p" * 300,
        ]
    ),
)  # fmt: skip
_options = st.lists(
    st.tuples(st.sampled_from(["--select", "--timeout", "--shard", "-j", "--matrix", "--var"]), _option_text),
    max_size=4,
)


@settings(FUZZ, max_examples=200)
@given(options=_options)
def test_hostile_option_values_plan_or_are_refused(workdir: Path, options: list[tuple[str, str]]) -> None:
    (workdir / FILE).write_text(
        "name: options\nvars: {x: '1'}\nsteps:\n  - id: a\n    run: 'true'\n"
        "  - id: b\n    run: 'true'\n    matrix: {x: ['1', '[x]']}\n"
    )
    args = ["plan", FILE, "--no-cache", *(word for pair in options for word in pair)]
    result = invoke(*args)  # a traceback raises here
    assert result.exit_code in (0, 2), (args, result.output)
    if result.exit_code == 2:
        assert result.stderr.startswith("ci-orchestrator: ") or "Error:" in result.stderr, result.stderr


@settings(FUZZ, max_examples=300)
@given(value=st.one_of(_option_text, _huge, st.booleans(), st.none(), st.lists(st.integers(), max_size=2)))
def test_durations_and_sizes_are_in_range_or_refused(value: Any) -> None:
    from ci_orchestrator import units

    for parse, low, high in (
        (units.parse_duration, 0, units.MAX_DURATION),
        (units.parse_size, 1, units.MAX_SIZE),
    ):
        try:
            parsed = parse(value)
        except (ValueError, TypeError) as error:
            assert len(str(error)) < 200  # a value thousands of characters long is cut short
        else:
            assert low <= parsed <= high
