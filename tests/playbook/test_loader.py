"""The playbook loader: finding playbooks, every key of the format, and located errors."""

from __future__ import annotations

import json
import shutil
import textwrap
import time
from pathlib import Path

import pytest

from ci_orchestrator.errors import EXIT_USAGE, PlaybookError, UsageError
from ci_orchestrator.matrix import expansion
from ci_orchestrator.playbook import loader
from ci_orchestrator.playbook.model import Execution
from tests.helpers import FIXTURES, REPO


def write(folder: Path, text: str, name: str = "playbooks/ci.yml") -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def problems(path: Path) -> list[str]:
    with pytest.raises(PlaybookError) as caught:
        loader.load_playbook(path)
    assert caught.value.exit_code == EXIT_USAGE
    return caught.value.lines()


def only_problem(workdir: Path, text: str) -> str:
    lines = problems(write(workdir, text))
    assert len(lines) == 1, lines
    return lines[0]


# ---------------------------------------------------------------- finding playbooks


def test_find_playbook_defaults_to_ci_yml_and_looks_up_names_by_extension(workdir: Path) -> None:
    write(workdir, "name: ci\nsteps: [{id: a, run: 'true'}]\n")
    write(workdir, "name: nightly\n", "playbooks/nightly.yaml")
    write(workdir, "{}", "playbooks/release.json")
    assert loader.find_playbook(None, root=workdir) == workdir / "playbooks/ci.yml"
    assert loader.find_playbook("nightly", root=workdir) == workdir / "playbooks/nightly.yaml"
    assert loader.find_playbook("release", root=workdir) == workdir / "playbooks/release.json"
    assert loader.find_playbook("playbooks/ci.yml", root=workdir) == Path("playbooks/ci.yml")


def test_unknown_playbook_name_lists_the_playbooks_that_exist(workdir: Path) -> None:
    write(workdir, "name: ci\n")
    write(workdir, "name: nightly\n", "playbooks/nightly.yml")
    with pytest.raises(UsageError) as caught:
        loader.find_playbook("nightyl", root=workdir)
    message = str(caught.value)
    assert "unknown playbook 'nightyl'" in message
    assert "did you mean 'nightly'?" in message
    assert "playbooks: ci, nightly" in message
    assert caught.value.exit_code == EXIT_USAGE


def test_missing_default_playbook_says_so(workdir: Path) -> None:
    with pytest.raises(UsageError, match=r"^no playbook given, and there is no playbooks/ci\.yml$"):
        loader.find_playbook(None, root=workdir)


# ---------------------------------------------------------------- a valid playbook


def test_full_playbook_reads_every_key() -> None:
    playbook = loader.load_playbook(FIXTURES / "loader/full.yml")
    assert playbook.name == "full"
    assert playbook.execution is Execution.PARALLEL
    assert playbook.concurrency is None
    assert playbook.fail_fast is False
    assert playbook.timeout == 1800
    assert playbook.env == {"GREETING": "hello", "DEBUG": "true", "LEVEL": "3"}
    assert playbook.vars == {"target": "prod", "ratio": "1.5"}
    assert playbook.secrets == ("TOKEN",)
    assert playbook.resources == {"db": 1, "network": 4}
    assert playbook.schedule == ("0 3 * * 1-5",)
    assert [step.id for step in playbook.steps] == ["install-deps", "lint", "test", "dynamic", "docs"]

    install, lint, test, dynamic, docs = playbook.steps
    assert install.name == "Install Deps"
    assert (install.shell, install.timeout, install.retry, install.working_directory) == ("sh", 600, 1, "src")
    assert lint.command == ("ruff", "check", ".", "--line-length", "110")
    assert lint.needs == ("install-deps",)
    assert (lint.parallel, lint.group, lint.allow_parallel) == (True, 1, False)
    assert lint.env == {"BASE": "2", "EXTRA": "x"}
    assert test.matrix is not None
    assert dict(test.matrix.axes) == {"python": ("3.11", "3.12"), "os": ("linux", "mac")}
    assert test.matrix.include == ({"python": "3.13", "experimental": True},)
    assert test.matrix.exclude == ({"python": "3.11", "os": "mac"},)
    assert (test.max_parallel, test.resources, test.timeout, test.retry) == (2, {"db": 1}, 5400, 2)
    assert test.continue_on_error == "${{ matrix.experimental }}"
    assert test.condition == "${{ matrix.python != '3.12' }}"
    assert test.shell == "python {0}"
    assert test.cache is None and test.cacheable  # nothing said, inputs given
    assert test.outputs == ("dist/**",)
    assert dynamic.matrix is not None
    assert dynamic.matrix.expression == "${{ fromJSON(vars.matrix) }}"
    assert dynamic.timeout == "${{ vars.timeout }}"
    assert docs.block == "checks"
    assert docs.condition == "false"
    (group,) = playbook.groups
    assert (group.name, group.execution, group.stop_on_error) == ("checks", Execution.PARALLEL, True)
    assert group.step_ids == ("docs",)
    assert group.schedule == ("30 1 * * *", "0 12 * * SUN")


def test_key_locations_point_at_each_key() -> None:
    playbook = loader.load_playbook(FIXTURES / "loader/full.yml")
    lint = playbook.step("lint")
    assert str(lint.key_locations["needs"]) == "tests/data/loader/full.yml:19:5"
    assert lint.location.line == 17
    assert playbook.location.line == 2


def test_json_playbook_loads_like_yaml(workdir: Path) -> None:
    shutil.copy(FIXTURES / "loader/small.json", workdir / "small.json")
    playbook = loader.load_playbook(loader.find_playbook("small.json", root=workdir))
    assert playbook.name == "from-json"
    assert playbook.concurrency == 2
    assert playbook.env == {"FLAG": "false"}
    assert playbook.step("check").command == ("make", "check")
    assert playbook.step("check").timeout == 90
    assert playbook.path == "small.json"


def test_json_playbook_errors_are_located(workdir: Path) -> None:
    document = {"name": "j", "steps": [{"id": "a", "run": "x", "retyr": 1}]}
    path = write(workdir, json.dumps(document, indent=2), "playbooks/j.json")
    (line,) = problems(path)
    assert line.startswith("playbooks/j.json:7:7: steps[0]: unknown key 'retyr'")


def test_durations_and_yaml_scalars_become_model_values(workdir: Path) -> None:
    path = write(
        workdir,
        """\
        name: values
        timeout: 90
        env: {A: yes, B: 1.0, C: ~, D: 0x10, E: "quoted"}
        steps:
          - {id: a, run: x, timeout: 90s}
          - {id: b, run: x, timeout: 2m, needs: [0407], continue-on-error: true}
          - {id: "0407", run: x, timeout: 1h30m, if: true}
        """,
    )
    playbook = loader.load_playbook(path)
    assert playbook.timeout == 90
    assert playbook.env == {"A": "yes", "B": "1.0", "C": "", "D": "16", "E": "quoted"}  # YAML 1.2, as GitHub
    assert [step.timeout for step in playbook.steps] == [90, 120, 5400]
    assert playbook.step("b").needs == ("0407",)  # written digits, not YAML 1.1 octal
    assert playbook.step("b").continue_on_error is True
    assert playbook.step("0407").condition == "true"


def test_json_playbook_takes_escaped_emoji_as_json_dumps_writes_them(workdir: Path) -> None:
    document = {"name": "j", "env": {"MOOD": "\U0001f600 \\ud83d"}, "steps": [{"id": "a", "run": "true"}]}
    path = write(workdir, json.dumps(document), "j.json")
    assert "\\ud83d\\ude00" in path.read_text()
    assert loader.load_playbook(path).env == {"MOOD": "\U0001f600 \\ud83d"}


@pytest.mark.parametrize(
    ("text", "place", "message"),
    [
        ('{"name": "j",\n "steps": [{"id": "a", "run": "true"},]}', "2:39", "invalid JSON: Expecting value"),
        ('{"name": "j", // a comment\n "steps": []}', "1:15", "invalid JSON: Expecting property name"),
        ("{'name': 'j', 'steps': []}", "1:2", "invalid JSON: Expecting property name"),
        ('{"name": "j", "vars": {"v": NaN}, "steps": []}', "", "invalid JSON: NaN is not a JSON value"),
        ('{"name": "j", "timeout": -Infinity}', "", "invalid JSON: -Infinity is not a JSON value"),
    ],
)
def test_json_playbook_must_be_strict_json(workdir: Path, text: str, place: str, message: str) -> None:
    path = write(workdir, text, "j.json")
    with pytest.raises(PlaybookError) as caught:
        loader.load_playbook(path)
    assert f"j.json:{place}{': ' if place else ' '}{message}" in str(caught.value)


def test_plain_scalars_follow_yaml_1_2_as_github_reads_them(workdir: Path) -> None:
    path = write(
        workdir,
        """\
        name: norway
        env: {COUNTRY: NO, T: 010, O: on, H: 0x10, OC: 0o17, F: 1e3, N: null, B: True, U: 1_000}
        steps:
          - {id: t, run: x, matrix: {answer: [yes, no, on, off]}}
        """,
    )
    playbook = loader.load_playbook(path)
    assert playbook.env == {
        "COUNTRY": "NO",
        "T": "10",
        "O": "on",
        "H": "16",
        "OC": "15",
        "F": "1000.0",
        "N": "",
        "B": "true",
        "U": "1_000",
    }
    instances = expansion.expand(playbook)
    assert [instance.id for instance in instances] == ["t (yes)", "t (no)", "t (on)", "t (off)"]
    assert instances[0].env["MATRIX_ANSWER"] == "yes"


def test_defaults_fold_into_steps_and_step_keys_win(workdir: Path) -> None:
    path = write(
        workdir,
        """\
        name: d
        defaults: {shell: pwsh, timeout: 5m, working-directory: sub, env: {A: "1", B: "1"}, retry: 3}
        steps:
          - {id: plain, run: x}
          - {id: own, run: x, shell: bash, timeout: 1m, working-directory: ., env: {B: "2"}, retry: 0}
        """,
    )
    plain, own = loader.load_playbook(path).steps
    assert (plain.shell, plain.timeout, plain.working_directory, plain.env, plain.retry) == (
        "pwsh",
        300,
        "sub",
        {"A": "1", "B": "1"},
        3,
    )
    assert (own.shell, own.timeout, own.working_directory, own.env, own.retry) == (
        "bash",
        60,
        ".",
        {"A": "1", "B": "2"},
        0,
    )


def test_merge_keys_and_anchors_are_followed(workdir: Path) -> None:
    path = write(
        workdir,
        """\
        name: anchors
        steps:
          - &base {id: one, run: make, tags: [a]}
          - <<: *base
            id: two
        """,
    )
    one, two = loader.load_playbook(path).steps
    assert (two.id, two.run, two.tags) == ("two", "make", ("a",))
    assert one.id == "one"


# ---------------------------------------------------------------- one error of each kind


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "name: x\nsteps:\n  - id: a\n    run: x\n    nedds: [b]\n",
            "playbooks/ci.yml:5:5: steps[0]: unknown key 'nedds' (did you mean 'needs'?)",
        ),
        (
            "name: x\nexecusion: parallel\nsteps: [{id: a, run: x}]\n",
            "playbooks/ci.yml:2:1: unknown key 'execusion' (did you mean 'execution'?)",
        ),
        (
            "name: x\nsteps:\n  - id: a\n    run: x\n    run: y\n",
            "playbooks/ci.yml:5:5: steps[0].run: duplicate key 'run' (first at line 4)",
        ),
        (
            "name: x\nsteps:\n  - {id: a, run: x}\n  - {id: a, run: y}\n",
            "playbooks/ci.yml:4:6: steps[1].id: duplicate step id 'a' (first at line 3)",
        ),
        (
            "name: x\nsteps:\n  - {id: 'a b', run: x}\n",
            "playbooks/ci.yml:3:10: steps[0].id: 'a b' is not a valid id: use ASCII letters, digits,",
        ),
        (
            "name: ' '\nsteps:\n  - {id: a, run: x}\n",
            "playbooks/ci.yml:1:7: name: must not be empty",
        ),
        (
            "name: x\nsteps:\n  - {id: a, run: x, timeout: soon}\n",
            "playbooks/ci.yml:3:30: steps[0].timeout: invalid duration 'soon'",
        ),
        (
            "name: x\nsteps:\n  - {id: a, run: x, timeout: 0}\n",
            "playbooks/ci.yml:3:30: steps[0].timeout: invalid duration 0: must be a finite number of seconds",
        ),
        (
            "name: x\nconcurrency: 0\nsteps: [{id: a, run: x}]\n",
            "playbooks/ci.yml:2:14: concurrency: must be 'auto' or a number of steps (1 or more), not '0'",
        ),
        (
            "name: x\nsteps:\n  - {id: a, run: x, command: [y]}\n",
            "playbooks/ci.yml:3:21: steps[0]: 'run' and 'command' cannot be used together",
        ),
        (
            "name: x\nsteps:\n  - {id: a, needs: []}\n",
            "playbooks/ci.yml:3:5: steps[0]: a step needs one of 'run', 'script', 'command' or 'steps'",
        ),
        (
            "name: x\nresources: {db: 1}\nsteps:\n  - {id: a, run: x, resources: {db: 0}}\n",
            "playbooks/ci.yml:4:37: steps[0].resources.db: must be at least 1, not 0",
        ),
        (
            "name: x\nsteps:\n  - id: a\n    run: x\n    matrix: {python: []}\n",
            "playbooks/ci.yml:5:22: steps[0].matrix.python: an axis must be a non-empty list of values",
        ),
        (
            "name: x\nsteps:\n  - id: a\n    run: x\n    matrix: {python: [1], exclude: [{pyton: 1}]}\n",
            "playbooks/ci.yml:5:38: steps[0].matrix.exclude[0]: exclude key 'pyton' is not a matrix axis "
            "(did you mean 'python'?)",
        ),
        (
            "name: x\nsteps:\n  - {id: a, run: x, retry: -1}\n",
            "playbooks/ci.yml:3:28: steps[0].retry: must be at least 0, not -1",
        ),
        (
            "name: x\nsteps:\n  - {id: a, run: x, max-parallel: 0}\n",
            "playbooks/ci.yml:3:35: steps[0].max-parallel: must be at least 1, not 0",
        ),
        (
            "name: x\nsteps:\n  - {id: a, run: x, group: one}\n",
            "playbooks/ci.yml:3:28: steps[0].group: must be a whole number, not 'one'",
        ),
        (
            "name: x\nsteps:\n  - {id: a, run: x, needs: {b: 1}}\n",
            "playbooks/ci.yml:3:28: steps[0].needs: must be a list of strings, not a mapping",
        ),
        (
            "name: x\nsteps:\n  - {id: a, run: x, if: [x]}\n",
            "playbooks/ci.yml:3:25: steps[0].if: must be an expression or true/false, not a list",
        ),
        (
            "name: x\nsteps:\n  - {id: a, run: x, continue-on-error: maybe}\n",
            "playbooks/ci.yml:3:40: steps[0].continue-on-error: must be true or false, not 'maybe'",
        ),
        (
            "name: x\nsteps:\n  - {id: a, run: x, env: {A: [1]}}\n",
            "playbooks/ci.yml:3:30: steps[0].env.A: must be a string, not a list",
        ),
        (
            "name: x\nsecrets: [MY-TOKEN]\nsteps: [{id: a, run: x}]\n",
            "playbooks/ci.yml:2:11: secrets[0]: 'MY-TOKEN' is not an environment variable name",
        ),
        (
            "name: x\nsteps:\n  - {id: a, run: x, shell: bsh}\n",
            "playbooks/ci.yml:3:28: steps[0].shell: must be one of bash, sh, python, pwsh or a command "
            "template with {0}, not 'bsh' (did you mean 'bash'?)",
        ),
        (
            "name: x\nschedule: '61 * * * *'\nsteps: [{id: a, run: x}]\n",
            "playbooks/ci.yml:2:11: schedule: '61 * * * *' is not a cron schedule: "
            "minute 61 is out of range 0-59",
        ),
        (
            "name: x\nschedule: ['0 3 * *']\nsteps: [{id: a, run: x}]\n",
            "playbooks/ci.yml:2:12: schedule[0]: '0 3 * *' is not a cron schedule: it needs 5 fields",
        ),
        (
            "name: x\ngroups:\n  - steps: [{id: a, run: x}]\n",
            "playbooks/ci.yml:3:5: groups[0]: a group needs a 'name'",
        ),
        (
            "description: no name\nsteps: [{id: a, run: x}]\n",
            "playbooks/ci.yml:1:1: missing required key 'name'",
        ),
        (
            "name: x\nexecution: paralel\nsteps: [{id: a, run: x}]\n",
            "playbooks/ci.yml:2:12: execution: must be one of serial, parallel, not 'paralel' "
            "(did you mean 'parallel'?)",
        ),
        (
            "name: x\nresources: {db: 1}\nsteps:\n  - {id: a, run: x, resources: [bd]}\n",
            "playbooks/ci.yml:4:21: steps[0].resources: unknown resource pool 'bd'",
        ),
        (
            "name: x\nsteps:\n  - {id: a, run: x, script: '0407'}\n",
            "playbooks/ci.yml:3:21: steps[0]: 'run' and 'script' cannot be used together",
        ),
        (
            "name: x\nsteps:\n  - {id: a, script: '0407'}\n",
            "playbooks/ci.yml:3:21: steps[0].script: script '0407' is a number, but the playbook sets no "
            "'scripts:' folder",
        ),
        (
            "name: x\nsteps:\n  - {id: a, run: x, args: [y]}\n",
            "playbooks/ci.yml:3:21: steps[0]: 'args' is only used with 'script'",
        ),
        ("name: x\n", "playbooks/ci.yml:1:1: the playbook has no steps: give 'steps', 'groups' or 'scripts'"),
    ],
)
def test_each_kind_of_error_is_reported_with_its_place(workdir: Path, text: str, expected: str) -> None:
    assert only_problem(workdir, text).startswith(expected)


def test_unknown_needs_is_reported_at_the_needs_key_with_a_suggestion(workdir: Path) -> None:
    text = "name: ci\nsteps:\n" + "".join(f"  - id: s{index}\n    run: x\n" for index in range(5))
    text += "  - id: install\n    run: x\n  - id: test\n    run: x\n    needs: [instal]\n"
    assert only_problem(workdir, text) == (
        "playbooks/ci.yml:17:5: steps[6].needs: unknown step 'instal' (did you mean 'install'?)"
    )


def test_all_problems_of_a_file_are_reported_together_in_file_order(workdir: Path) -> None:
    lines = problems(
        write(
            workdir,
            """\
            name: many
            concurrency: lots
            steps:
              - id: a
                run: x
                retry: -2
              - id: a
                run: y
                timeout: never
                colour: red
            """,
        )
    )
    assert [line.split(": ")[0] for line in lines] == [
        "playbooks/ci.yml:2:14",
        "playbooks/ci.yml:6:12",
        "playbooks/ci.yml:7:5",
        "playbooks/ci.yml:9:14",
        "playbooks/ci.yml:10:5",
    ]


# ---------------------------------------------------------------- hostile input


def test_yaml_syntax_error_is_located(workdir: Path) -> None:
    line = only_problem(workdir, "name: x\nsteps: [{id: a, run: x}\n")
    assert line.startswith("playbooks/ci.yml:3:1: ")


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", "playbooks/ci.yml: the file is empty"),
        (b"# only a comment\n", "playbooks/ci.yml: the file is empty"),
        (
            b"- a\n- b\n",
            "playbooks/ci.yml:1:1: a playbook must be a mapping of keys (name, steps, ...), not a list",
        ),
        (b"---\n", "playbooks/ci.yml:2:1: a playbook must be a mapping of keys (name, steps, ...), not null"),
        (b"name: caf\xe9\n", "playbooks/ci.yml:1:10: not UTF-8 text: byte 0xe9 cannot be read"),
        (b"a: 1\n---\nb: 2\n", "playbooks/ci.yml:2:1: a playbook is a single document"),
        (
            b"name: t\nsteps:\n\t- {id: a, run: x}\n",
            "playbooks/ci.yml:3:1: while scanning for the next token found character that cannot start "
            "any token (a tab: YAML indents with spaces only)",
        ),
        (b"name: x\nsteps: !!python/object:os.system x\n", "playbooks/ci.yml:2:8: unsupported tag"),
        (b"name: x\nsteps: *nothing\n", "playbooks/ci.yml:2:8: unknown alias *nothing"),
    ],
)
def test_unusable_files_are_clear_errors(workdir: Path, content: bytes, expected: str) -> None:
    path = workdir / "playbooks/ci.yml"
    path.parent.mkdir()
    path.write_bytes(content)
    (line,) = problems(path)
    assert line.startswith(expected)


def test_missing_file_and_folder_are_clear_errors(workdir: Path) -> None:
    assert problems(workdir / "nope.yml") == ["nope.yml: no such file"]
    (workdir / "folder.yml").mkdir()
    assert problems(workdir / "folder.yml") == ["folder.yml: is a folder, not a playbook file"]


def test_alias_bomb_is_refused_quickly(workdir: Path) -> None:
    lines = ['lol: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for level in range(1, 10):
        previous = chr(ord("a") + level - 1)
        lines.append(f"l{level}: &{chr(ord('a') + level)} [{', '.join([f'*{previous}'] * 9)}]")
    path = write(workdir, "\n".join(lines) + "\n")
    started = time.perf_counter()
    (line,) = problems(path)
    assert time.perf_counter() - started < 2  # a billion nodes if expanded; refused while reading
    assert "refusing to read it" in line
    assert line.startswith("playbooks/ci.yml:")


def test_deep_nesting_is_refused(workdir: Path) -> None:
    (line,) = problems(write(workdir, "name: x\nsteps: " + "[" * 150 + "]" * 150 + "\n"))
    assert "nested more than" in line


def test_huge_numbers_are_errors_not_crashes(workdir: Path) -> None:
    digits = "9" * 5000
    text = f"name: x\nconcurrency: {digits}\nsteps:\n  - {{id: a, run: x, timeout: 1e999, retry: {digits}}}\n"
    lines = problems(write(workdir, text))
    assert len(lines) == 3
    assert "too long a number" in lines[0]
    assert "timeout" in lines[1]


# ---------------------------------------------------------------- the project's own playbooks


PLAYBOOKS = sorted(path for path in (REPO / "playbooks").glob("*") if path.suffix in loader.EXTENSIONS)


@pytest.mark.skipif(not PLAYBOOKS, reason="no playbooks in playbooks/ yet")
@pytest.mark.parametrize("path", PLAYBOOKS, ids=lambda path: path.name)
def test_every_playbook_of_the_project_loads(path: Path) -> None:
    playbook = loader.load_playbook(path)
    assert playbook.steps
