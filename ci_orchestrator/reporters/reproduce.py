"""How a reader reruns the failures of a run on their own machine: the commands the summary gives.

Under GitHub Actions the documented workflow uploads the run's reports and logs as one artifact,
`ci-orchestrator-reports`, holding `reports/` and `logs/` as they were in `.ci-orchestrator/`.
Downloaded into `ci-reports/`, in a checkout of the commit the run tested, `repro` reruns the
failures with the run's playbook, matrix values and variables: the commands give the run's own
`--matrix` and `--var` values, which `repro` takes from a record only when the playbook has them
or the command gives them (a record may come from anyone's job). Each instance also has a
command that needs no record (`repro_command`).
"""

from __future__ import annotations

import re
import shlex
from typing import TYPE_CHECKING

from ci_orchestrator.output.masking import mask

if TYPE_CHECKING:
    from ci_orchestrator.results import RunResult, StepResult

ARTIFACT = "ci-orchestrator-reports"  # as docs/github-actions.md and `export github-workflow` name it
DOWNLOADED = "ci-reports"  # where the docs download it
RECORD = f"{DOWNLOADED}/reports/run.json"  # the run record in it
_COMMIT = re.compile(r"[0-9a-fA-F]{7,64}")  # a record read back is untrusted: only a commit id is shown


def commit(result: RunResult) -> str | None:
    """The commit the run tested, when its result knows it and it is a commit id."""
    return result.commit if result.commit and _COMMIT.fullmatch(result.commit) else None


def repro_commands(result: RunResult) -> str:
    """The shell lines that rerun every failure of `result` from its downloaded record."""
    tested = commit(result)
    lines = [f"git checkout {tested}"] if tested else []
    lines.append(_command(result, ["ci-orchestrator", "repro", RECORD]))
    return "\n".join(lines)


def repro_where(result: RunResult) -> str:
    """Where the commands of `repro_commands` are run, as a sentence to put before them."""
    tested = commit(result)
    at = f"commit `{tested}`" if tested else "the commit this run tested"
    return (
        f"In a clone of the repository at {at}, with this run's `{ARTIFACT}` artifact (its reports"
        f" and logs, as the documented workflow uploads them) downloaded into `{DOWNLOADED}/`"
        f" (`gh run download RUN_ID -n {ARTIFACT} -D {DOWNLOADED}`):"
    )


def repro_instance(result: RunResult, step: StepResult) -> str:
    """The `repro` command that reruns this instance alone (with what it needs) from the record."""
    return _command(result, ["ci-orchestrator", "repro", RECORD, step.id])


def repro_command(result: RunResult, step: StepResult) -> str:
    """The shell command that runs this instance again here, with the run's values, no record needed.

    The instance id alone selects it, whatever its matrix values hold (commas, objects): the
    run's own `--matrix` and `--var` values give the same instances as in CI. What the instance
    needs runs too (or comes from the cache): on a fresh checkout the failure would otherwise be
    a missing build, not the one CI saw.
    """
    return _command(
        result, ["ci-orchestrator", "run", result.playbook_path or result.playbook, "--select", step.id]
    )


def _command(result: RunResult, words: list[str]) -> str:
    """`words` and the run's own `--matrix` and `--var` values, as one shell line."""
    for key, values in result.matrix_filters.items():
        # The values were split at commas when the run read them: joined, they read back the same.
        words += ["--matrix", f"{key}={','.join(values)}"]
    for key, value in result.vars.items():
        words += ["--var", f"{key}={value}"]
    # Each word masked before quoting, which could otherwise split a value the mask looks for.
    return shlex.join(mask(word, result.secrets) for word in words)
