"""A one-line `run:` with no shell syntax starts its program directly, as make does: the same
output, exit code and environment as through the shell, without the shell's start."""

from __future__ import annotations

import json
import shutil
import textwrap
from typing import TYPE_CHECKING

from tests.helpers import run_cli

if TYPE_CHECKING:
    from pathlib import Path


def test_a_plain_step_behaves_as_it_does_through_the_shell(workdir: Path) -> None:
    """The same step, once plain and once with shell syntax that changes nothing: same output,
    exit code and environment (the step's directory in PWD, as bash sets it)."""
    (workdir / "sub").mkdir()
    (workdir / "show.py").write_text(
        textwrap.dedent(
            """
            import json, os, sys
            print(json.dumps({"args": sys.argv[1:], "pwd": os.environ["PWD"], "cwd": os.getcwd(),
                              "step": os.environ["CI_ORCHESTRATOR_STEP_ID"]}))
            sys.exit(int(sys.argv[1]))
            """
        )
    )
    python = shutil.which("python3")
    assert python is not None
    (workdir / "ci.yml").write_text(
        textwrap.dedent(
            f"""
            name: same
            execution: parallel
            steps:
              - id: plain
                run: {python} ../show.py 3 'a b' --x=y
                working-directory: sub
                continue-on-error: true
              - id: shell
                run: {python} ../show.py 3 'a b' --x=y; true
                working-directory: sub
                continue-on-error: true
            """
        )
    )
    result = run_cli(workdir, "run", "ci.yml")
    assert result.returncode == 0, result.stderr
    record = json.loads((workdir / ".ci-orchestrator" / "reports" / "run.json").read_text())
    steps = {step["id"]: step for step in record["steps"]}
    outputs = {name: json.loads((workdir / steps[name]["log"]).read_text()) for name in ("plain", "shell")}
    assert steps["plain"]["exit_code"] == steps["shell"]["exit_code"] == 3
    assert outputs["plain"] == {**outputs["shell"], "step": "plain"}
    assert outputs["plain"]["pwd"] == outputs["plain"]["cwd"] == str(workdir / "sub")
    scratch = workdir / ".ci-orchestrator" / "logs" / record["run_id"] / "scripts"
    assert [path.name.split("-")[0] for path in scratch.iterdir()] == ["shell"]  # no file for plain
