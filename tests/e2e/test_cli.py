"""The commands as a user runs them: validate, list, plan and run, in a fresh workspace."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from typing import TYPE_CHECKING, Any

import pytest

from tests.helpers import FIXTURES, REPO, invoke, listed_steps, run_cli

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

DATA = FIXTURES / "cli"
ERRORS = DATA / "errors"


@pytest.fixture
def demo(workdir: Path) -> Path:
    """The repository's own demo playbook, in the workspace's `playbooks/`."""
    (workdir / "playbooks").mkdir()
    shutil.copy(REPO / "playbooks" / "demo.yml", workdir / "playbooks" / "demo.yml")
    return workdir


def plan_json(*args: str) -> dict[str, Any]:
    result = invoke("plan", "--format", "json", *args)
    assert result.exit_code == 0, result.output
    plan: dict[str, Any] = json.loads(result.stdout)
    return plan


# validate: the YAML syntax error, each kind of error with its line, several at once


def test_yaml_syntax_error_names_file_and_line_in_a_real_process(workdir: Path) -> None:
    shutil.copy(ERRORS / "syntax.yml", workdir / "syntax.yml")
    result = run_cli(workdir, "validate", "syntax.yml")
    assert result.returncode == 2
    assert result.stdout == ""
    # The parser notices at the end of the file; the message also says where the quote opened.
    assert re.fullmatch(
        r"ci-orchestrator: syntax\.yml:7:1: while scanning a quoted scalar started at line 6, column 10, "
        r"found unexpected end of stream\n",
        result.stderr,
    ), result.stderr


def test_cycle_is_named(workdir: Path) -> None:
    result = invoke("validate", str(ERRORS / "cycle.yml"))
    assert result.exit_code == 2
    cycle = "cycle.yml:6:5: steps[0].needs: dependency cycle: build -> package -> test -> build"
    assert cycle in result.stderr


@pytest.mark.parametrize(
    ("fixture", "place", "message"),
    [
        ("unknown_key.yml", "5:5", "steps[0]: unknown key 'timout' (did you mean 'timeout'?)"),
        ("duplicate_id.yml", "7:5", "steps[2].id: duplicate step id 'test' (first at line 3)"),
        ("bad_duration.yml", "5:14", "steps[0].timeout: invalid duration '10 minutes'"),
        ("bad_id.yml", "5:9", "steps[1].id: 'run tests!' is not a valid id"),
        ("unknown_needs.yml", "7:5", "steps[1].needs: unknown step 'instal' (did you mean 'install'?)"),
        ("unknown_pool.yml", "6:5", "steps[0].resources: unknown resource pool 'gpu'"),
        ("pool_too_small.yml", "6:5", "steps[0].resources: needs 2 of pool 'db', which holds 1"),
        ("matrix_too_big.yml", "7:5", "steps[1].matrix: matrix has 272 combinations; at most 256"),
        ("bad_expression.yml", "7:5", "steps[1].run: unexpected end of expression"),
    ],
)
def test_each_error_kind_names_its_line(workdir: Path, fixture: str, place: str, message: str) -> None:
    shutil.copy(ERRORS / fixture, workdir / fixture)
    result = invoke("validate", fixture)
    assert result.exit_code == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"ci-orchestrator: {fixture}:{place}: {message}"), lines[0]


def test_several_errors_in_one_file_are_all_reported_in_line_order(workdir: Path) -> None:
    shutil.copy(ERRORS / "several.yml", workdir / "several.yml")
    result = invoke("validate", "several.yml")
    assert result.exit_code == 2
    places = [line.split(": ")[1] for line in result.stderr.splitlines()]
    assert places == ["several.yml:7:5", "several.yml:8:5", "several.yml:12:14", "several.yml:13:5"]
    assert "unknown key 'tmeout'" in result.stderr
    assert "duplicate step id 'install'" in result.stderr
    assert "invalid duration 'soon'" in result.stderr
    assert "unknown step 'instal'" in result.stderr


def test_problems_found_after_reading_are_reported_together(workdir: Path) -> None:
    shutil.copy(ERRORS / "several_late.yml", workdir / "late.yml")
    result = invoke("validate", "late.yml")
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert [line.split(": ")[1] for line in lines] == [
        "late.yml:8:5",
        "late.yml:9:5",
        "late.yml:15:5",
        "late.yml:19:5",
    ]
    assert "which holds 1" in lines[0]
    assert "dependency cycle: migrate -> seed -> migrate" in lines[1]
    assert "272 combinations" in lines[2]
    assert "steps[3].if" in lines[3]


def test_unknown_playbook_name_lists_the_playbooks_there_are(demo: Path) -> None:
    (demo / "playbooks" / "ci.yml").write_text("name: ci\nsteps:\n  - {id: a, run: 'true'}\n")
    result = invoke("validate", "demoo")
    assert result.exit_code == 2
    assert "unknown playbook 'demoo' (did you mean 'demo'?); playbooks: ci, demo" in result.stderr


def test_playbook_digest_hashes_the_file_run_would_read(demo: Path) -> None:
    digest = hashlib.sha256((demo / "playbooks" / "demo.yml").read_bytes()).hexdigest()
    by_name = invoke("export", "playbook-digest", "demo")
    assert by_name.exit_code == 0, by_name.output
    assert by_name.stdout == f"{digest}\n"
    assert invoke("export", "playbook-digest", "playbooks/demo.yml").stdout == f"{digest}\n"
    (demo / "playbooks" / "ci.yml").write_text("name: ci\nsteps:\n  - {id: a, run: 'true'}\n")
    default = invoke("export", "playbook-digest").stdout.strip()
    assert default == hashlib.sha256(b"name: ci\nsteps:\n  - {id: a, run: 'true'}\n").hexdigest()
    unknown = invoke("export", "playbook-digest", "demoo")
    assert unknown.exit_code == 2
    assert (
        unknown.stderr
        == "ci-orchestrator: unknown playbook 'demoo' (did you mean 'demo'?); playbooks: ci, demo\n"
    )


def test_validate_several_files_checks_each_and_fails_if_one_is_bad(demo: Path) -> None:
    shutil.copy(ERRORS / "unknown_pool.yml", demo / "bad.yml")
    result = invoke("validate", "demo", "bad.yml")
    assert result.exit_code == 2
    assert result.stdout == "playbooks/demo.yml: valid (8 steps, 9 instances)\n"
    assert "bad.yml:6:5:" in result.stderr

    good = invoke("validate", "demo", str(DATA / "fruit.yml"))
    assert good.exit_code == 0, good.output
    assert good.stdout.count(": valid (") == 2


# plan: SPEC's JSON shape and edges, waves as text, mermaid, --dry-run

# The demo's edges by SPEC's order rules, written by hand: serial steps wait for the one before,
# consecutive parallel steps start together, a matrix step's instances share their waits, a group
# waits for everything before it, and in a parallel group only `needs` orders its steps.
DEMO_EDGES = {
    "prepare": [],
    "lint": ["prepare"],
    "typecheck": ["prepare"],
    "test (3.11)": ["lint", "typecheck"],
    "test (3.12)": ["lint", "typecheck"],
    "build": ["test (3.11)", "test (3.12)"],
    "docs": ["build"],
    "package": ["build"],
    "publish": ["build", "package"],
}
SPEC_KEYS = {"id", "step", "matrix", "needs", "resources", "exclusive", "timeout", "wave", "cache"}


def test_plan_json_has_spec_shape_and_the_edges_the_order_rules_give(demo: Path) -> None:
    plan = plan_json("playbooks/demo.yml")
    assert set(plan) == {"playbook", "instances"}
    assert plan["playbook"] == "demo"
    instances = plan["instances"]
    assert [item["id"] for item in instances] == list(DEMO_EDGES)  # plan order
    assert {item["id"]: sorted(item["needs"]) for item in instances} == DEMO_EDGES
    for item in instances:
        assert set(item) >= SPEC_KEYS, item
        assert isinstance(item["matrix"], dict)
        assert isinstance(item["resources"], dict)
        assert isinstance(item["exclusive"], bool)
        assert item["timeout"] is None or isinstance(item["timeout"], int | float)
        assert isinstance(item["wave"], int)
        assert item["cache"] in ("hit", "miss", None)
    by_id = {item["id"]: item for item in instances}
    assert by_id["test (3.12)"]["step"] == "test"
    assert by_id["test (3.12)"]["matrix"] == {"python": "3.12"}
    assert by_id["prepare"]["matrix"] == {}
    assert by_id["typecheck"]["resources"] == {"cpu-heavy": 1}
    assert by_id["build"]["cache"] == "miss"  # it has inputs; nothing stored yet
    assert by_id["prepare"]["cache"] is None  # not cacheable
    # Every instance is in a later wave than all it waits for.
    for item in instances:
        assert all(by_id[before]["wave"] < item["wave"] for before in item["needs"])
    assert by_id["lint"]["wave"] == by_id["typecheck"]["wave"]
    assert by_id["docs"]["wave"] == by_id["package"]["wave"] < by_id["publish"]["wave"]


def test_plan_text_shows_waves_in_order(demo: Path) -> None:
    result = invoke("plan", "demo")
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert text.startswith("demo: 9 step instances in 6 waves")
    blocks = {
        block.splitlines()[0].split("  ")[0]: block for block in text.split("\n\n")[1:] if block.strip()
    }
    assert list(blocks) == [f"wave {n}" for n in range(1, 7)]
    assert "lint  [after prepare]" in blocks["wave 2"]
    assert "typecheck  [after prepare; pools cpu-heavy:1]" in blocks["wave 2"]
    assert "2 may run together" in blocks["wave 3"]
    assert "test (3.11)" in blocks["wave 3"]
    assert "test (3.12)" in blocks["wave 3"]
    assert "publish  [after build, package]" in blocks["wave 6"]


@pytest.mark.parametrize(
    ("exclusive", "shown"),
    [
        ((), "3 may run together"),
        (("c",), "2 may run together, 1 exclusive runs alone"),
        (("b", "c"), "each runs alone"),
    ],
)
def test_plan_text_says_exclusive_steps_of_a_wave_run_alone(
    workdir: Path, exclusive: tuple[str, ...], shown: str
) -> None:
    alone = "    allow-parallel: false\n"
    steps = "".join(f"  - id: {name}\n    run: echo {name}\n" + alone * (name in exclusive) for name in "abc")
    (workdir / "ci.yml").write_text(f"name: ci\nexecution: parallel\nsteps:\n{steps}")
    result = invoke("plan", "ci.yml")
    assert result.exit_code == 0, result.output
    assert f"wave 1  ({shown})" in result.stdout


@pytest.mark.parametrize(("allow", "shown"), [("true", "1 instance"), ("false", "exclusive: runs alone")])
def test_plan_text_says_a_wave_of_one_runs_alone_only_when_it_is_exclusive(
    workdir: Path, allow: str, shown: str
) -> None:
    """A wave of one instance may still run beside a slower step of the wave before it."""
    (workdir / "ci.yml").write_text(
        f"name: ci\nsteps:\n  - id: a\n    allow-parallel: {allow}\n    run: echo a\n"
    )
    result = invoke("plan", "ci.yml")
    assert result.exit_code == 0, result.output
    assert f"wave 1  ({shown})" in result.stdout


def test_run_dry_run_prints_the_plan_and_runs_nothing(demo: Path) -> None:
    dry = invoke("run", "demo", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert dry.stdout == invoke("plan", "demo").stdout
    assert not (demo / ".ci-orchestrator" / "reports").exists()
    assert not (demo / ".ci-orchestrator" / "demo").exists()  # `prepare` never ran


NODE = re.compile(r'  (n\d+)(?:\["(?P<box>[^"]*)"\]|\[\["(?P<sub>[^"]*)"\]\])')
EDGE = re.compile(r"  (n\d+) (-->|-\.->) (n\d+)")


def mermaid(*args: str) -> tuple[dict[str, str], list[tuple[str, str, str]]]:
    """Node labels by mermaid id, and the edges; fails on any line that is neither (but the
    legend, at the end)."""
    result = invoke("plan", "--format", "mermaid", *args)
    assert result.exit_code == 0, result.output
    lines = result.stdout.split("\n  subgraph legend", 1)[0].splitlines()
    assert lines[0] == "flowchart TD"
    nodes: dict[str, str] = {}
    edges: list[tuple[str, str, str]] = []
    for line in lines[1:]:
        if node := NODE.fullmatch(line):
            nodes[node[1]] = node["box"] if node["box"] is not None else node["sub"]
        elif edge := EDGE.fullmatch(line):
            edges.append((edge[1], edge[2], edge[3]))
        else:
            pytest.fail(f"not a flowchart line: {line!r}")
    return nodes, edges


def test_mermaid_flowchart_has_one_node_per_instance_and_one_arrow_per_wait(demo: Path) -> None:
    nodes, edges = mermaid("demo")
    assert sorted(nodes.values()) == sorted(DEMO_EDGES)
    label = nodes.__getitem__
    drawn = {(label(before), label(after)) for before, _, after in edges}
    assert drawn == {(before, after) for after, befores in DEMO_EDGES.items() for before in befores}
    # `needs` is a solid arrow; waiting by order alone is dotted.
    styles = {(label(before), label(after)): arrow for before, arrow, after in edges}
    assert styles[("package", "publish")] == "-->"
    assert styles[("build", "publish")] == "-.->"


def test_mermaid_escapes_quotes_angles_and_hashes_in_ids(workdir: Path) -> None:
    shutil.copytree(DATA / "scripts", workdir / "scripts")
    shutil.copy(DATA / "release.yml", workdir / "release.yml")
    nodes, _ = mermaid("release.yml")
    labels = set(nodes.values())
    assert "odd (say #quot;hi#quot;)" in labels
    assert "odd (a#lt;b#gt;)" in labels
    assert "odd (#35;quot;)" in labels  # a value that looks like an entity stays literal


def legend(work: Path, playbook: str) -> list[str]:
    """The lines of the flowchart's legend, from a real run of `plan --format mermaid`."""
    result = run_cli(work, "plan", playbook, "--format", "mermaid")
    assert result.returncode == 0, result.stderr
    _, found, rest = result.stdout.partition('  subgraph legend["legend"]\n')
    if not found:
        return []
    block, end, after = rest.partition("  end\n")
    assert end and not after.strip(), result.stdout  # the legend closes the chart
    return block.splitlines()


def test_mermaid_legend_explains_both_kinds_of_arrow(demo: Path) -> None:
    lines = legend(demo, "demo")
    assert lines[0] == "    direction LR"
    [needs] = [line for line in lines if "-->|needs|" in line]
    [order] = [line for line in lines if "-.->|order|" in line]
    assert "runs only if A passed" in needs
    assert "whatever its result" in order
    assert not any("exclusive" in line for line in lines)  # the demo has no exclusive step


def test_mermaid_legend_shows_only_the_marks_the_chart_uses(workdir: Path) -> None:
    (workdir / "alone.yml").write_text("name: alone\nsteps:\n  - {id: a, run: 'true'}\n")
    assert legend(workdir, "alone.yml") == []
    (workdir / "ordered.yml").write_text(
        "name: ordered\nsteps:\n  - {id: a, run: 'true'}\n  - {id: b, allow-parallel: false, run: 'true'}\n"
    )
    lines = legend(workdir, "ordered.yml")
    assert [line for line in lines if "-.->|order|" in line]
    assert not [line for line in lines if "-->|needs|" in line]
    assert [line for line in lines if '[["exclusive: runs alone"]]' in line]


def test_waves_are_counted_from_one_in_text_and_json(demo: Path) -> None:
    text = run_cli(demo, "plan", "demo")
    document = run_cli(demo, "plan", "demo", "--format", "json")
    assert text.returncode == document.returncode == 0, text.stderr + document.stderr
    shown: dict[str, int] = {}
    for block in text.stdout.split("\n\nwave ")[1:]:
        number, *members = block.splitlines()
        for member in members:
            shown[member.strip().split("  [")[0]] = int(number.split()[0])
    waves = {item["id"]: item["wave"] for item in json.loads(document.stdout)["instances"]}
    assert waves == shown
    assert min(waves.values()) == 1
    assert waves["prepare"] == 1
    assert waves["publish"] == 6


def test_plan_of_an_unknown_format_is_a_usage_error(demo: Path) -> None:
    result = invoke("plan", "demo", "--format", "dot")
    assert result.exit_code == 2
    assert "expected one of text, json, mermaid, github-matrix" in result.stderr


# list


def test_list_shows_every_column_and_the_groups(workdir: Path) -> None:
    shutil.copytree(DATA / "scripts", workdir / "scripts")
    shutil.copy(DATA / "release.yml", workdir / "release.yml")
    result = invoke("list", "release.yml")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "release: 9 steps (parallel)"
    assert lines[1].split() == [
        "ID", "NUMBER", "NAME", "STAGE", "TAGS", "MODE", "NEEDS", "MATRIX", "INPUTS", "ON-ERROR",
    ]  # fmt: skip
    rows = {row: list(cells.values())[:7] for row, cells in listed_steps(result.stdout).items()}
    assert rows["0100"] == ["0100", "0100", "Setup", "Prep", "setup,fast", "parallel", "-"]
    assert rows["build"] == ["build", "-", "Build it", "Build", "core,fast", "parallel", "-"]
    assert rows["odd"][-2:] == ["exclusive", "-"]
    assert rows["types"][-2:] == ["parallel", "lint"]
    assert rows["stage-db"][-2:] == ["serial", "-"]
    assert rows["notify-mail"][-2:] == ["parallel", "-"]
    groups = [re.sub(r" {2,}", "  ", line) for line in lines[12:]]
    assert groups == ["checks  [parallel]  2 steps", "deploy  [serial, stop-on-error]  4 steps"]


LISTED = """
name: listed
vars: {axes: '{"n": [1, 2]}'}
steps:
  - id: plain
    run: "true"
  - id: test
    matrix:
      python: ["3.11", "3.12"]
      os: [linux, macos]
      exclude: [{os: macos, python: "3.11"}]
      include: [{python: "3.13", os: linux, experimental: true}]
    continue-on-error: ${{ matrix.experimental == true }}
    inputs: ["src/**/*.py", pyproject.toml]
    run: "true"
  - id: whole
    matrix: ${{ fromJSON(vars.axes) }}
    continue-on-error: true
    run: "true"
  - id: typed
    matrix: {flag: [true, false], n: [1, 2.5]}
    inputs: data.csv
    run: "true"
"""


def test_list_shows_each_steps_matrix_inputs_and_continue_on_error(workdir: Path) -> None:
    (workdir / "listed.yml").write_text(LISTED)
    result = run_cli(workdir, "list", "listed.yml")
    assert result.returncode == 0, result.stderr
    rows = listed_steps(result.stdout)
    shown = {step: (row["MATRIX"], row["INPUTS"], row["ON-ERROR"]) for step, row in rows.items()}
    assert shown == {
        "plain": ("-", "-", "-"),
        "test": (
            "python=3.11,3.12 os=linux,macos (exclude 1, include 1)",
            "src/**/*.py,pyproject.toml",
            "${{ matrix.experimental == true }}",
        ),
        "whole": ("${{ fromJSON(vars.axes) }}", "-", "continue"),
        "typed": ("flag=true,false n=1,2.5", "data.csv", "-"),
    }


def test_list_of_the_demo_names_its_group(demo: Path) -> None:
    result = invoke("list", "demo")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == "ship  [parallel]  3 steps"
    publish = listed_steps(result.stdout)["publish"]
    assert (publish["MODE"], publish["NEEDS"]) == ("parallel", "package")


# matrix and expressions through the command line


def test_github_include_example_gives_its_six_jobs_in_order(workdir: Path) -> None:
    plan = plan_json(str(DATA / "fruit.yml"))
    assert [item["matrix"] for item in plan["instances"]] == [
        {"fruit": "apple", "animal": "cat", "color": "pink", "shape": "circle"},
        {"fruit": "apple", "animal": "dog", "color": "green", "shape": "circle"},
        {"fruit": "pear", "animal": "cat", "color": "pink"},
        {"fruit": "pear", "animal": "dog", "color": "green"},
        {"fruit": "banana"},
        {"fruit": "banana", "animal": "cat"},
    ]
    assert [item["id"] for item in plan["instances"]] == [
        "example_matrix (apple, cat, pink, circle)",
        "example_matrix (apple, dog, green, circle)",
        "example_matrix (pear, cat, pink)",
        "example_matrix (pear, dog, green)",
        "example_matrix (banana)",
        "example_matrix (banana, cat)",
    ]


def test_one_ci_cell_reruns_alone(demo: Path) -> None:
    result = run_cli(demo, "run", "--matrix", "python=3.12", "--select", "test", "demo")
    assert result.returncode == 0, result.stderr
    record = json.loads((demo / ".ci-orchestrator" / "reports" / "run.json").read_text())
    assert record["status"] == "passed"
    assert [(step["id"], step["matrix"], step["status"]) for step in record["steps"]] == [
        ("test (3.12)", {"python": "3.12"}, "passed")
    ]
    log = demo / record["steps"][0]["log"]
    assert "testing on python 3.12" in log.read_text()


def test_a_matrix_value_the_axis_lacks_replaces_its_values(workdir: Path) -> None:
    (workdir / "m.yml").write_text(
        "name: m\n"
        "steps:\n"
        "  - id: test\n"
        "    matrix: {python: ['3.11', '3.12'], os: [linux], include: [{python: '3.12', extra: x}]}\n"
        "    command: [sh, -c, 'echo \"$1 $MATRIX_PYTHON\" >> seen.txt', -, '${{ matrix.python }}']\n"
    )
    result = invoke("run", "m.yml", "--matrix", "python=3.11,3.13", "--output", "quiet")
    assert result.exit_code == 0, result.output
    record = json.loads((workdir / ".ci-orchestrator" / "reports" / "run.json").read_text())
    assert [step["id"] for step in record["steps"]] == ["test (3.11, linux)", "test (3.13, linux)"]
    assert sorted((workdir / "seen.txt").read_text().splitlines()) == ["3.11 3.11", "3.13 3.13"]

    only_included = invoke("plan", "m.yml", "--matrix", "extra=y")
    assert only_included.exit_code == 2
    assert "extra=y: step 'test' has no such value (its extra values: x;" in only_included.stderr

    unknown = invoke("plan", "m.yml", "--matrix", "pyhton=3.12")
    assert unknown.exit_code == 2
    assert "no step has a matrix axis 'pyhton' (did you mean 'python'?)" in unknown.stderr


def test_expressions_reach_command_argv_and_script_args(workdir: Path) -> None:
    (workdir / "echo.sh").write_text('echo "$@" >> args.txt\n')
    (workdir / "a.yml").write_text(
        "name: a\n"
        "vars: {who: team}\n"
        "steps:\n"
        "  - {id: c, matrix: {n: [1, 2]}, command: [sh, -c, 'echo $0 >> args.txt', 'n=${{ matrix.n }}']}\n"
        "  - {id: s, script: echo.sh, args: ['--to', '${{ vars.who }}']}\n"
    )
    result = invoke("run", "a.yml", "--var", "who=ops", "--output", "quiet")
    assert result.exit_code == 0, result.output
    lines = (workdir / "args.txt").read_text().splitlines()
    assert sorted(lines[:2]) == ["n=1", "n=2"]  # the two instances may run together
    assert lines[2:] == ["--to ops"]


def test_var_reaches_the_vars_context(workdir: Path) -> None:
    shutil.copy(DATA / "vars.yml", workdir / "vars.yml")
    result = invoke("run", "vars.yml", "--var", "greeting=bonjour", "--output", "quiet")
    assert result.exit_code == 0, result.output
    # The playbook's own value stays where no --var overrides it.
    assert (workdir / "greeting.txt").read_text() == "bonjour staging\n"

    bad = invoke("plan", "vars.yml", "--var", "greeting")
    assert bad.exit_code == 2
    assert "--var 'greeting': expected KEY=VALUE" in bad.stderr


def record_of(workdir: Path) -> dict[str, tuple[str, str | None]]:
    record = json.loads((workdir / ".ci-orchestrator" / "reports" / "run.json").read_text())
    return {step["id"]: (step["status"], step["reason"]) for step in record["steps"]}


def test_an_if_that_cannot_be_evaluated_fails_its_step_and_the_run_reports(workdir: Path) -> None:
    (workdir / "c.yml").write_text(
        "name: c\n"
        "vars: {CFG: '{\"deploy\": true}'}\n"
        "steps:\n"
        "  - {id: build, run: echo built > built.txt}\n"
        "  - {id: deploy, if: '${{ fromJSON(vars.CFG).deploy }}', run: echo deployed > deployed.txt}\n"
        "  - {id: after, run: 'true'}\n"
    )
    assert invoke("run", "c.yml", "--output", "quiet").exit_code == 0
    result = invoke("run", "c.yml", "--var", "CFG={deploy", "--output", "quiet")
    assert result.exit_code == 1
    outcome = record_of(workdir)
    assert outcome["build"] == ("passed", None)
    status, reason = outcome["deploy"]
    assert status == "failed"
    assert reason is not None and reason.startswith("if: cannot be evaluated: fromJSON(): not valid JSON")
    assert outcome["after"] == ("skipped", "fail-fast")
    assert "deploy" in (workdir / ".ci-orchestrator" / "reports" / "junit.xml").read_text()


def test_failure_is_seen_through_steps_that_ran_after_it(workdir: Path) -> None:
    (workdir / "f.yml").write_text(
        "name: f\n"
        "steps:\n"
        "  - {id: a, run: exit 1}\n"
        "  - {id: b, run: 'true'}\n"
        "  - {id: notify, if: '${{ failure() }}', run: 'true'}\n"
        "  - {id: happy, if: '${{ success() }}', run: 'true'}\n"
    )
    assert invoke("run", "f.yml", "--no-fail-fast", "--output", "quiet").exit_code == 1
    outcome = record_of(workdir)
    assert outcome["b"] == ("passed", None)
    assert outcome["notify"] == ("passed", None)
    assert outcome["happy"] == ("skipped", "condition is false")


def test_sequential_runs_in_plan_order(workdir: Path) -> None:
    # The longest remaining path (a, b, c) would go first in a parallel run.
    (workdir / "s.yml").write_text(
        "name: s\n"
        "execution: parallel\n"
        "steps:\n"
        "  - {id: x, run: echo x >> order.txt}\n"
        "  - {id: y, run: echo y >> order.txt}\n"
        "  - {id: a, run: echo a >> order.txt}\n"
        "  - {id: b, needs: [a], run: echo b >> order.txt}\n"
        "  - {id: c, needs: [b], run: echo c >> order.txt}\n"
    )
    plan = json.loads(invoke("plan", "s.yml", "--format", "json").stdout)
    assert invoke("run", "s.yml", "--sequential", "--output", "quiet").exit_code == 0
    ran = (workdir / "order.txt").read_text().split()
    assert ran == [instance["id"] for instance in plan["instances"]] == ["x", "y", "a", "b", "c"]


def test_stream_output_shows_each_line_prefixed_with_its_step(workdir: Path) -> None:
    (workdir / "o.yml").write_text("name: o\nsteps:\n  - {id: hello, run: printf 'one\\ntwo\\n'}\n")
    streamed = invoke("run", "o.yml", "--output", "stream")
    assert streamed.exit_code == 0, streamed.output
    lines = streamed.stdout.splitlines()
    assert [line for line in lines if line.startswith("[")] == ["[hello] one", "[hello] two"]
    grouped = invoke("run", "o.yml", "--output", "grouped")
    assert grouped.exit_code == 0, grouped.output
    assert "[hello]" not in grouped.stdout
    assert grouped.stdout.splitlines().count("one") == 1  # the log, echoed once the step ended


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "--timeout", "bogus"], "--timeout: invalid duration 'bogus'"),
        (["plan", "--timeout", "bogus"], "--timeout: invalid duration 'bogus'"),
        (
            ["run", "--timeout", "0"],
            "--timeout: invalid duration '0': must be a finite number of seconds above 0",
        ),
        (["run", "--output", "loud"], "--output 'loud': expected one of grouped, stream, quiet"),
        (["plan", "-j", "abc"], "--concurrency 'abc': expected a number or 'auto'"),
        (["plan", "-j", "0"], "--concurrency must be at least 1"),
        (["plan", "--shards", "3"], "--shards goes with --format github-matrix"),
        (["plan", "--format", "github-matrix", "--shards", "0"], "--shards must be at least 1"),
    ],
)
def test_bad_option_values_are_usage_errors(demo: Path, args: list[str], message: str) -> None:
    result = invoke(*args, "demo")
    assert result.exit_code == 2
    assert message in result.stderr
    assert not (demo / ".ci-orchestrator" / "reports").exists()


def test_select_may_be_given_more_than_once(demo: Path) -> None:
    both = plan_json("demo", "--select", "lint", "--select", "typecheck", "--only")
    assert [item["id"] for item in both["instances"]] == ["lint", "typecheck"]


def test_plan_text_says_how_many_run_at_a_time_when_the_user_limits_it(workdir: Path) -> None:
    steps = "".join(f"  - {{id: s{index}, run: 'true'}}\n" for index in range(3))
    (workdir / "p.yml").write_text("name: p\nexecution: parallel\nsteps:\n" + steps)
    assert "wave 1  (3 may run together)" in invoke("plan", "p.yml").stdout
    assert "wave 1  (3 ready together, 2 at a time)" in invoke("plan", "p.yml", "-j", "2").stdout
    assert "wave 1  (each runs alone)" in invoke("plan", "p.yml", "--sequential").stdout
    (workdir / "q.yml").write_text("name: q\nexecution: parallel\nconcurrency: 2\nsteps:\n" + steps)
    assert "wave 1  (3 ready together, 2 at a time)" in invoke("plan", "q.yml").stdout


def test_plan_text_counts_in_the_singular_too(workdir: Path) -> None:
    (workdir / "one.yml").write_text("name: one\nsteps:\n  - {id: a, run: 'true'}\n")
    assert invoke("plan", "one.yml").stdout.startswith("one: 1 step instance in 1 wave\n")


def test_more_shards_than_independent_parts_gives_no_empty_shard(workdir: Path) -> None:
    (workdir / "two.yml").write_text(
        "name: two\nexecution: parallel\nsteps:\n  - {id: a, run: 'true'}\n  - {id: b, run: 'true'}\n"
    )
    result = invoke("plan", "two.yml", "--format", "github-matrix", "--shards", "5")
    assert result.exit_code == 0
    assert [entry["shard"] for entry in json.loads(result.stdout)["include"]] == ["1/2", "2/2"]
    assert "--shards 5: the plan has 2 independent parts, so 2 shards" in result.stderr


def test_conditions_in_a_real_run(workdir: Path) -> None:
    shutil.copy(DATA / "conditions.yml", workdir / "conditions.yml")
    # Without fail-fast the independent steps run whatever the timing: the outcome is fixed.
    result = invoke("run", "conditions.yml", "--no-fail-fast", "--output", "quiet")
    assert result.exit_code == 1
    record = json.loads((workdir / ".ci-orchestrator" / "reports" / "run.json").read_text())
    outcome = {step["id"]: (step["status"], step["reason"]) for step in record["steps"]}
    assert outcome["build"] == ("failed", "exit code 3")
    assert outcome["deploy"] == ("skipped", "needs 'build', which failed")
    assert outcome["report"] == ("passed", None)  # if: failure()
    assert outcome["cleanup"] == ("passed", None)  # if: always(), after a skipped need
    assert outcome["prod-only"] == ("skipped", "condition is false")
    assert outcome["fmt"] == ("passed", None)
    assert (workdir / "label.txt").read_text() == "staging-1+2\n"
    build_log = (workdir / record["steps"][0]["log"]).read_text()
    assert re.search(r"building on (Linux|macOS|Windows)/\w+", build_log)


def test_select_by_tag_and_stage_through_the_command_line(demo: Path) -> None:
    tagged = plan_json("demo", "--select", "tag:checks")
    assert [item["id"] for item in tagged["instances"]] == ["lint", "typecheck"]
    staged = plan_json("demo", "--select", "stage:Testing,!test (3.11)")
    assert [item["id"] for item in staged["instances"]] == ["test (3.12)"]


def test_plan_json_puts_one_instance_on_each_line(demo: Path) -> None:
    result = invoke("plan", "--format", "json", "demo")
    lines = result.stdout.splitlines()
    assert lines[0] == '{"playbook": "demo", "instances": ['
    assert lines[-1] == "]}"
    assert [json.loads(line.rstrip(","))["id"] for line in lines[1:-1]] == list(DEMO_EDGES)


@pytest.mark.parametrize(
    "args",
    [
        ["run", "--help"],
        ["plan", "--format", "nope"],
        ["list", "--bogus"],
        ["validate"],
        ["runn"],
        ["cache", "stats", "--help"],
        [],
    ],
)
def test_main_answers_as_the_whole_app_does(
    workdir: Path, args: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`main` builds only the command named (start-up): what it prints and exits with is the same."""
    from ci_orchestrator import cli

    def outcome(call: Callable[[], object]) -> tuple[object, str, str]:
        with pytest.raises(SystemExit) as exited:
            call()
        out, err = capsys.readouterr()
        return exited.value.code, out, err

    monkeypatch.setattr("sys.argv", ["ci-orchestrator", *args])
    whole = outcome(lambda: cli.app(args, prog_name="ci-orchestrator"))
    assert outcome(cli.main) == whole
