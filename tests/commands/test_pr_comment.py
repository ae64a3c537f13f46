"""`report comment`: one comment per playbook on the pull request, made by the first call and edited
by the next, against a server on 127.0.0.1 that plays GitHub's REST API over a real socket; and
every way it cannot comment (no token, no pull request, a read-only token, a server error) is
a warning with exit code 0."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from ci_orchestrator.reporters.comment_body import MAX_CHARACTERS, comment_body, marker
from ci_orchestrator.reporters.run_record import write_run_record
from ci_orchestrator.results import Comparison, Status, TestCaseResult, TestOutcome, TestResults
from tests.commands.fake_github import FakeGitHub, serve
from tests.helpers import cli_environment, run_cli, run_result, step_result

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

TOKEN = "ghs_test-token-1234"


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    yield from serve(FakeGitHub())


def _record(
    work: Path, *, failed: bool = True, comparison: Comparison | None = None, name: str = "ci"
) -> Path:
    steps = [step_result("lint")]
    steps.append(
        step_result("test (3.12)", Status.FAILED, exit_code=3, matrix={"python": "3.12"}, log_tail="boom\n")
        if failed
        else step_result("test (3.12)", matrix={"python": "3.12"})
    )
    path = work / "run.json"
    write_run_record(
        run_result(*steps, run_id="run-7", playbook=name, commit="a" * 40, comparison=comparison), path
    )
    return path


def _env(work: Path, github: FakeGitHub, **extra: str) -> dict[str, str]:
    values = {**github.pull_request_environment(work, number=5), "GITHUB_TOKEN": TOKEN}
    values.update(extra)
    return cli_environment(work, **values)


def test_the_first_call_creates_the_comment_and_the_next_edit_it(tmp_path: Path, github: FakeGitHub) -> None:
    record = _record(tmp_path)
    first = run_cli(tmp_path, "report", "comment", str(record), env=_env(tmp_path, github))
    assert first.returncode == 0, first.stderr
    assert "commented on pull request #5" in first.stdout
    (posted,) = github.calls("POST")
    assert posted.path == "/repos/octo/widgets/issues/5/comments"
    # GitHub's headers: its media type, an API version, the token as a bearer.
    assert posted.headers["authorization"] == f"Bearer {TOKEN}"
    assert posted.headers["accept"] == "application/vnd.github+json"
    assert posted.headers["x-github-api-version"] == "2022-11-28"
    body = posted.body["body"]
    assert body.startswith("<!-- ci-orchestrator: ci -->\n")
    assert "failed" in body
    assert "ci-orchestrator run playbooks/ci.yml --select 'test (3.12)'" in body  # reproduce it here
    assert "boom" in body

    _record(tmp_path, failed=False)
    second = run_cli(tmp_path, "report", "comment", str(record), env=_env(tmp_path, github))
    assert second.returncode == 0, second.stderr
    assert "updated the comment on pull request #5" in second.stdout
    assert len(github.calls("POST")) == 1
    (edited,) = github.calls("PATCH")
    comment_id = github.comments[5][0]["id"]
    assert edited.path == f"/repos/octo/widgets/issues/comments/{comment_id}"
    assert len(github.comments[5]) == 1
    assert "passed" in github.comments[5][0]["body"]
    assert "boom" not in github.comments[5][0]["body"]


def test_the_comment_is_found_on_a_later_page(tmp_path: Path, github: FakeGitHub) -> None:
    for index in range(130):
        github.add_comment(5, f"comment {index}")
    ours = github.add_comment(5, marker("ci") + "\nold results", login="github-actions[bot]")
    github.add_comment(5, "> " + marker("ci") + " quoted by someone: not ours")
    record = _record(tmp_path)
    done = run_cli(tmp_path, "report", "comment", str(record), env=_env(tmp_path, github))
    assert done.returncode == 0, done.stderr
    pages = github.calls("GET")
    assert [request.query.get("page", ["1"]) for request in pages] == [["1"], ["2"]]
    assert all(request.query["per_page"] == ["100"] for request in pages)
    assert not github.calls("POST")
    (edited,) = github.calls("PATCH")
    assert edited.path.endswith(f"/comments/{ours}")


def test_each_playbook_keeps_a_comment_of_its_own(tmp_path: Path, github: FakeGitHub) -> None:
    run_cli(tmp_path, "report", "comment", str(_record(tmp_path, name="ci")), env=_env(tmp_path, github))
    run_cli(tmp_path, "report", "comment", str(_record(tmp_path, name="nightly")), env=_env(tmp_path, github))
    assert len(github.calls("POST")) == 2
    assert {comment["body"].splitlines()[0] for comment in github.comments[5]} == {
        "<!-- ci-orchestrator: ci -->",
        "<!-- ci-orchestrator: nightly -->",
    }


@pytest.mark.parametrize(
    ("setup", "said"),
    [
        ("read-only", "403"),
        ("server error", "500"),
        ("no token", "no GITHUB_TOKEN"),
        ("no pull request", "no pull request"),
    ],
)
def test_what_cannot_comment_is_a_warning_and_exit_0(
    tmp_path: Path, github: FakeGitHub, setup: str, said: str
) -> None:
    env = _env(tmp_path, github)
    if setup == "read-only":
        github.refuse_writes = True
    elif setup == "server error":
        github.fail_with = 500
    elif setup == "no token":
        del env["GITHUB_TOKEN"]
    else:
        del env["GITHUB_EVENT_PATH"]
    done = run_cli(tmp_path, "report", "comment", str(_record(tmp_path)), env=env)
    assert done.returncode == 0
    assert "Traceback" not in done.stderr
    assert "ci-orchestrator: warning: no pull-request comment" in done.stderr
    assert said in done.stderr
    assert TOKEN not in done.stderr + done.stdout
    if setup == "read-only":
        assert "pull-requests: write" in done.stderr
        assert len(github.calls("POST")) == 1  # a refused POST is not made again
    if setup in ("no token", "no pull request"):
        assert not github.requests


def test_the_pull_request_may_be_named(tmp_path: Path, github: FakeGitHub) -> None:
    env = _env(tmp_path, github)
    del env["GITHUB_EVENT_PATH"]
    done = run_cli(tmp_path, "report", "comment", str(_record(tmp_path)), "--pr", "12", env=env)
    assert done.returncode == 0, done.stderr
    assert github.calls("POST")[0].path == "/repos/octo/widgets/issues/12/comments"


@pytest.mark.parametrize("mode", ["failures", "changes"])
def test_quiet_modes_post_nothing_new_but_keep_a_comment_up_to_date(
    tmp_path: Path, github: FakeGitHub, mode: str
) -> None:
    passing = _record(tmp_path, failed=False, comparison=Comparison(baseline_run_id="run-6"))
    done = run_cli(tmp_path, "report", "comment", str(passing), "--mode", mode, env=_env(tmp_path, github))
    assert done.returncode == 0, done.stderr
    assert github.calls("GET")
    assert not github.calls("POST", "PATCH")

    # Something to say: a failure, and the comparison names it.
    failing = _record(tmp_path, comparison=Comparison(baseline_run_id="run-6", new_failures=("test (3.12)",)))
    run_cli(tmp_path, "report", "comment", str(failing), "--mode", mode, env=_env(tmp_path, github))
    assert len(github.calls("POST")) == 1
    # Passing again: the comment there says so, not the old failure.
    run_cli(tmp_path, "report", "comment", str(passing), "--mode", mode, env=_env(tmp_path, github))
    assert len(github.calls("PATCH")) == 1
    assert "passed" in github.comments[5][0]["body"]


def test_off_and_a_bad_mode(tmp_path: Path, github: FakeGitHub) -> None:
    off = run_cli(
        tmp_path, "report", "comment", str(_record(tmp_path)), "--mode", "off", env=_env(tmp_path, github)
    )
    assert off.returncode == 0
    assert not github.requests
    bad = run_cli(
        tmp_path, "report", "comment", str(_record(tmp_path)), "--mode", "loud", env=_env(tmp_path, github)
    )
    assert bad.returncode == 2
    assert "--mode 'loud'" in bad.stderr


def test_a_next_page_on_another_host_is_not_followed(tmp_path: Path, github: FakeGitHub) -> None:
    for index in range(120):
        github.add_comment(5, f"comment {index}")
    github.next_page_host = "http://127.0.0.2:9"
    done = run_cli(tmp_path, "report", "comment", str(_record(tmp_path)), env=_env(tmp_path, github))
    assert done.returncode == 0
    assert "another host" in done.stderr
    assert len(github.calls("GET")) == 1
    assert not github.calls("POST", "PATCH")


def test_the_body_stays_within_githubs_limit() -> None:
    failures = [
        step_result(f"test {index}", Status.FAILED, exit_code=1, log_tail=("x" * 200 + "\n") * 80)
        for index in range(1500)
    ]
    body = comment_body(run_result(*failures))
    assert len(body) <= MAX_CHARACTERS
    assert body.startswith(marker("ci"))
    assert "failures not detailed" in body


def test_failing_tests_fit_the_limit_those_that_fail_since_the_baseline_kept_first() -> None:
    def broken(index: int) -> TestCaseResult:
        return TestCaseResult(
            classname="tests.test_api",
            name=f"test_{index}",
            outcome=TestOutcome.FAILED,
            message=f"case {index} broke " + "x" * 250,
            text=("y" * 250 + "\n") * 30,
        )

    steps = [
        step_result(
            f"test {index}",
            Status.FAILED,
            exit_code=1,
            log_tail="z" * 1900,
            tests=TestResults.of([broken(number) for number in range(50)]),
        )
        for index in range(40)
    ]
    # The last instance is the one that fails since the baseline: it is detailed first.
    comparison = Comparison(
        baseline_run_id="base", new_test_failures=("test 39 :: tests.test_api.test_7",), new_failures=()
    )
    body = comment_body(run_result(*steps, comparison=comparison))
    assert len(body) <= MAX_CHARACTERS
    failures = body.index("### Failures")
    assert body.index("#### ❌ `test 39`", failures) < body.index("#### ❌ `test 0`", failures)
    assert "- 🆕 `tests.test_api.test_7`: case 7 broke" in body
    assert "failing tests' texts left out" in body
    assert "failing tests not named" in body


def test_text_from_the_run_makes_no_mention_or_marker_end() -> None:
    step = step_result(
        "@team `x`", Status.FAILED, exit_code=1, reason="ping @someone", log_tail="@everyone\n"
    )
    body = comment_body(run_result(step, playbook="a --> b"))
    assert body.startswith("<!-- ci-orchestrator: a - -> b -->\n")
    for line in body.splitlines():
        if "@" in line and not line.startswith("```"):
            # Only inside code: a code span or a fenced block.
            assert "`" in line or line == "@everyone", line
