"""The environment is untrusted input: it holds any bytes, and Python keeps those that are not
UTF-8 as lone surrogates, which no report, console or database can write. GitHub's variables are
read as text (bytes that are not UTF-8 become U+FFFD, as in a step's log), a secret is masked as
the bytes it is; the run, its reports, its history and `report comment` go on."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from ci_orchestrator.reporters.run_record import write_run_record
from ci_orchestrator.results import Status
from tests.commands.fake_github import FakeGitHub, serve
from tests.github_runner import Runner
from tests.helpers import cli_environment, run_cli, run_result, step_result

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

NOT_UTF8 = "x\udcff\udcfey"  # the bytes x, 0xff, 0xfe, y, as Python holds them
READ = "x\ufffd\ufffdy"

PLAYBOOK = """\
name: ci
secrets: [TOKEN]
steps:
  - id: a
    run: echo "token=$TOKEN"; exit 1
"""


def github_env(work: Path, **extra: str) -> dict[str, str]:
    files = {"GITHUB_STEP_SUMMARY": work / "step_summary.md", "GITHUB_OUTPUT": work / "output"}
    for path in files.values():
        path.touch()
    values = {name: str(path) for name, path in files.items()}
    return cli_environment(work, GITHUB_ACTIONS="true", CI="true", **values, **extra)


@pytest.mark.parametrize(
    ("variables", "field"),
    [
        ({"GITHUB_HEAD_REF": NOT_UTF8}, "branch"),
        ({"GITHUB_REF": f"refs/heads/{NOT_UTF8}"}, "branch"),
        ({"GITHUB_SHA": NOT_UTF8}, "commit"),
        ({"GITHUB_BASE_REF": NOT_UTF8, "GITHUB_EVENT_NAME": "pull_request", "GITHUB_HEAD_REF": "b"}, None),
        ({"GITHUB_REF_NAME": NOT_UTF8, "GITHUB_REPOSITORY": NOT_UTF8, "GITHUB_RUN_ID": NOT_UTF8}, None),
    ],
)
def test_github_variables_that_are_not_utf8_are_read_as_text(
    tmp_path: Path, variables: dict[str, str], field: str | None
) -> None:
    # Before, a traceback at the end of the run (the history, run.json or the summary refused
    # to write them): no reports, no outputs.
    (tmp_path / "playbooks").mkdir()
    (tmp_path / "playbooks" / "ci.yml").write_text(PLAYBOOK, encoding="utf-8")
    env = github_env(tmp_path, TOKEN="secret-value", **variables)
    process = run_cli(tmp_path, "run", env=env)
    assert process.returncode == 1, process.stderr
    assert "Traceback" not in process.stderr
    record = json.loads((tmp_path / ".ci-orchestrator/reports/run.json").read_text(encoding="utf-8"))
    if field is not None:
        assert record[field] == READ
    assert "result<<" in (tmp_path / "output").read_text(encoding="utf-8")
    assert "## " in (tmp_path / "step_summary.md").read_text(encoding="utf-8")
    history = run_cli(tmp_path, "history", env=env)
    assert history.returncode == 0, history.stderr
    again = run_cli(tmp_path, "run", env=env)  # compared with the first run, found by its branch
    assert again.returncode == 1 and "Traceback" not in again.stderr, again.stderr


def test_a_secret_that_is_not_utf8_is_masked_as_its_bytes(tmp_path: Path) -> None:
    # Before, a traceback before any step ran: the masker took the value for UTF-8 text.
    (tmp_path / "playbooks").mkdir()
    (tmp_path / "playbooks" / "ci.yml").write_text(PLAYBOOK, encoding="utf-8")
    env = github_env(tmp_path, TOKEN=f"secret-{NOT_UTF8}")
    process = run_cli(tmp_path, "run", env=env)
    assert process.returncode == 1, process.stderr
    assert "Traceback" not in process.stderr
    (log,) = (tmp_path / ".ci-orchestrator" / "logs").glob("*/a.log")
    assert log.read_bytes() == b"token=***\n"
    assert "token=***" in process.stdout
    # Announced as GitHub's runner reads the bytes: where its log shows them, it hides them.
    masks = [command.data for command in Runner().read(process.stdout).commands if command.name == "add-mask"]
    assert masks == [f"secret-{READ}"]


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    yield from serve(FakeGitHub())


@pytest.mark.parametrize(
    ("variables", "said"),
    [
        ({"GITHUB_TOKEN": NOT_UTF8}, "GITHUB_TOKEN is not a token"),
        ({"GITHUB_TOKEN": "t\u00e9"}, "GITHUB_TOKEN is not a token"),
        ({"GITHUB_API_URL": f"http://{NOT_UTF8}.invalid"}, "cannot be sent"),
        ({"GITHUB_REPOSITORY": f"octo/{NOT_UTF8}"}, "GitHub answered GET /repos/octo/x%EF%BF%BD%EF%BF%BDy/"),
    ],
)
def test_report_comment_with_variables_that_are_not_text_warns_and_succeeds(
    tmp_path: Path, github: FakeGitHub, variables: dict[str, str], said: str
) -> None:
    # Before, a traceback (exit 1): the variables went as they were into HTTP headers and URLs.
    record = tmp_path / "run.json"
    write_run_record(run_result(step_result("a", Status.FAILED, exit_code=1), playbook="ci"), record)
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"pull_request": {"number": 5}}), encoding="utf-8")
    values = {
        "GITHUB_API_URL": github.url,
        "GITHUB_TOKEN": "ghs_token",
        "GITHUB_REPOSITORY": "octo/widgets",
        "GITHUB_EVENT_PATH": str(event),
        "NO_PROXY": "127.0.0.1",
        "no_proxy": "127.0.0.1",
        **variables,
    }
    process = run_cli(tmp_path, "report", "comment", str(record), env=cli_environment(tmp_path, **values))
    assert process.returncode == 0, process.stderr
    assert "Traceback" not in process.stderr
    assert said in process.stderr, process.stderr
