"""Runs the steps of one job instance in order, in one environment, as a GitHub runner does:
`python -m ci_orchestrator.run.job_runner SPEC.json` (the spec `job_spec` wrote).

Each step's `if:` is asked with the job's status so far (`success()`: no step before it failed),
its expressions are evaluated when it starts (with `steps.ID.outputs` of the steps before it),
what it writes to `GITHUB_ENV`, `GITHUB_PATH` and `GITHUB_OUTPUT` reaches the steps after it,
and `continue-on-error` makes a failure's conclusion a success. The job fails (exit 1) when a
step's conclusion is a failure; its `job-outputs` are written to the job's own `GITHUB_OUTPUT`.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ci_orchestrator.errors import ExpressionError
from ci_orchestrator.expressions import evaluation
from ci_orchestrator.run import job_steps, stand_ins
from ci_orchestrator.run.argv import shell_argv
from ci_orchestrator.run.file_commands import added_paths, with_path
from ci_orchestrator.run.step_files import StepFolders
from ci_orchestrator.units import parse_duration
from ci_orchestrator.workflows import contexts as workflow_contexts

_EXTENSIONS = {"bash": ".sh", "sh": ".sh", "python": ".py", "pwsh": ".ps1", "powershell": ".ps1"}


@dataclass(slots=True)
class StepOutcome:
    title: str
    outcome: str  # success, failure, skipped
    conclusion: str
    outputs: dict[str, str] = field(default_factory=dict)
    reason: str = ""
    seconds: float = 0.0


@dataclass(slots=True)
class JobState:
    """What the steps of a job share: the environment, PATH additions, outputs, the post steps."""

    workspace: Path
    env: dict[str, str]  # the `env` context: the job's env and what GITHUB_ENV added
    paths: list[tuple[str, ...]] = field(default_factory=list)  # what each step's GITHUB_PATH added
    steps: dict[str, dict[str, Any]] = field(default_factory=dict)
    failed: bool = False
    post: list[Any] = field(default_factory=list)  # callables run at the job's end (cache saves)


class JobRun:
    def __init__(self, spec: dict[str, Any], scratch: Path) -> None:
        self.spec = spec
        self.scratch = scratch
        self.state = JobState(workspace=Path(spec["workspace"]), env=dict(spec["env"]))
        variables = spec["vars"]
        self.contexts: dict[str, Any] = {
            "matrix": spec["matrix"],
            "vars": variables,
            "inputs": workflow_contexts.inputs_context(variables),
            "secrets": workflow_contexts.secrets_context(spec["secrets"]),
            "github": workflow_contexts.github_context(variables, workspace=spec["workspace"]),
            "runner": _runner(),
            "needs": spec["needs"],
            "strategy": {},
            "job": {"status": "success"},
        }
        self.outcomes: list[StepOutcome] = []
        self.folders = StepFolders()  # each step's own GITHUB_OUTPUT, GITHUB_ENV, ... files
        self.started = 0

    def context_now(self, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        found = dict(self.contexts)
        found["env"] = dict(self.state.env)
        found["steps"] = self.state.steps
        found["job"] = {"status": "failure" if self.state.failed else "success"}
        return found | (extra or {})

    def run(self) -> int:
        steps = self.spec["steps"]
        elsewhere = self.other_system()
        if elsewhere is not None:
            _say(f"==> not run here: {elsewhere}")
            with contextlib.suppress(OSError):
                job_steps.write(Path(self.spec["record"]), [], skipped=elsewhere)
            return job_steps.SKIPPED_EXIT
        try:
            for number, step in enumerate(steps, start=1):
                _say(f"\n==> Step {number}/{len(steps)}: {step['title']}")
                outcome = self.run_step(step, self.context_now())
                self.record(step.get("id"), outcome)
        finally:
            self.folders.close()
        for post in self.state.post:
            with contextlib.suppress(OSError):
                post(not self.state.failed)
        self.write_outputs()
        _say("\n==> Steps")
        for outcome in self.outcomes:
            reason = f"  ({outcome.reason})" if outcome.reason else ""
            _say(f"  {outcome.outcome:<8} {outcome.title}{reason}")
        return 1 if self.state.failed else 0

    def other_system(self) -> str | None:
        """Why the job's `runs-on` names another system than this machine's, or None."""
        labels: list[Any] = []
        for label in self.spec.get("runs-on") or ():
            try:
                value = evaluation.evaluate_template(label, self.context_now())
            except ExpressionError:
                return None  # as GitHub would, it starts: its steps say what cannot be evaluated
            labels.extend(value if isinstance(value, list) else [value])
        return job_steps.other_system([str(label) for label in labels], self.contexts["runner"]["os"])

    def write_record(self) -> None:
        """How each step ended so far, for the reports (see `job_steps`): written after each
        step, so that a job stopped part way still shows the steps it ran."""
        if not self.spec.get("record"):
            return
        steps = [
            {
                "title": one.title,
                "outcome": one.outcome,
                "conclusion": one.conclusion,
                "reason": one.reason,
                "seconds": round(one.seconds, 3),
            }
            for one in self.outcomes
        ]
        with contextlib.suppress(OSError):
            job_steps.write(Path(self.spec["record"]), steps)

    def record(self, step_id: str | None, outcome: StepOutcome) -> None:
        self.outcomes.append(outcome)
        self.write_record()
        if outcome.conclusion == "failure":
            self.state.failed = True
        if step_id:
            self.state.steps[step_id] = {
                "outputs": outcome.outputs,
                "outcome": outcome.outcome,
                "conclusion": outcome.conclusion,
            }
        if outcome.outcome != "success" or outcome.reason:
            _say(f"--> {outcome.outcome}{': ' + outcome.reason if outcome.reason else ''}")

    def run_step(
        self, step: dict[str, Any], contexts: dict[str, Any], *, shell: str | None = None
    ) -> StepOutcome:
        title = step["title"]
        status = evaluation.JobStatus(
            success=not self.state.failed, failure=self.state.failed, cancelled=False
        )
        try:
            if not evaluation.evaluate_condition(step.get("if") or "", contexts, status):
                # As GitHub: a step with no `if:` is `if: success()`.
                why = "a step before it failed" if not step.get("if") else "condition is false"
                return StepOutcome(title, "skipped", "skipped", reason=why)
            env = {name: evaluation.interpolate(value, contexts) for name, value in step["env"].items()}
            contexts = contexts | {"env": contexts["env"] | env}
            allowed = step["continue-on-error"]
            allowed = (
                evaluation.truthy(evaluation.evaluate_template(allowed, contexts))
                if isinstance(allowed, str)
                else allowed
            )
            timeout = step.get("timeout")
            if isinstance(timeout, str):
                timeout = parse_duration(evaluation.evaluate_template(timeout, contexts))
            directory = step.get("working-directory") or self.spec.get("working-directory") or "."
            directory = evaluation.interpolate(directory, contexts)
        except (ExpressionError, ValueError) as error:
            return StepOutcome(title, "failure", "failure", reason=f"cannot evaluate: {error}")
        started = time.monotonic()
        if step.get("uses"):
            with_values = {}
            try:
                with_values = {
                    name: evaluation.interpolate(value, contexts) for name, value in step["with"].items()
                }
            except ExpressionError as error:
                return StepOutcome(title, "failure", "failure", reason=f"cannot evaluate: {error}")
            result = stand_ins.run_action(step["uses"], with_values, env, self, contexts)
        else:
            try:
                script = evaluation.interpolate(step["run"], contexts)
            except ExpressionError as error:
                return StepOutcome(title, "failure", "failure", reason=f"cannot evaluate: {error}")
            chosen = step.get("shell") or shell or self.spec.get("shell") or "bash"
            result = self.run_script(script, chosen, env, directory, timeout)
        result.title = title
        result.seconds = time.monotonic() - started
        if result.outcome == "failure" and allowed:
            result.conclusion = "success"
            result.reason = (result.reason + "; " if result.reason else "") + "allowed by continue-on-error"
        return result

    def run_script(
        self, script: str, shell: str, env: dict[str, str], directory: str, timeout: float | None
    ) -> StepOutcome:
        """Runs one `run:` script with the job's environment and its own environment files."""
        self.scratch.mkdir(parents=True, exist_ok=True)
        handle, script_path = tempfile.mkstemp(dir=self.scratch, suffix=_EXTENSIONS.get(shell, ""))
        with os.fdopen(handle, "w", encoding="utf-8", newline="\n") as file:
            file.write(script if script.endswith("\n") else script + "\n")
        self.started += 1
        try:
            files = self.folders.make(str(self.started))
        except OSError as error:
            return StepOutcome("", "failure", "failure", reason=f"cannot make the step's files: {error}")
        try:
            argv = shell_argv(shell, script_path)
        except ValueError as error:
            return StepOutcome("", "failure", "failure", reason=str(error))
        code, reason = _run(
            argv, cwd=self.state.workspace / directory, env=self.process_env(env) | files, timeout=timeout
        )
        outcome = StepOutcome(
            "", "success" if code == 0 else "failure", "success" if code == 0 else "failure", reason=reason
        )
        read = self.folders.read(files)
        for note in read.notes:
            _say(f"warning: {note}")
        if read.error is not None:
            outcome.outcome = outcome.conclusion = "failure"
            outcome.reason = read.error
            return outcome
        outcome.outputs = dict(read.files.outputs)
        self.state.env.update(read.files.env)
        self.state.paths.append(read.files.path)
        summary = os.environ.get("GITHUB_STEP_SUMMARY")
        if summary and read.files.summary:
            with contextlib.suppress(OSError), Path(summary).open("a", encoding="utf-8") as out:
                out.write(read.files.summary)
        return outcome

    def process_env(self, step_env: dict[str, str]) -> dict[str, str]:
        env = dict(os.environ) | self.state.env | step_env
        if self.state.paths:
            env["PATH"] = with_path(env, added_paths(self.state.paths))
        return env

    def write_outputs(self) -> None:
        target = os.environ.get("GITHUB_OUTPUT")
        outputs = self.spec.get("outputs") or {}
        if not outputs:
            return
        contexts = self.context_now()
        lines = []
        for name, text in outputs.items():
            try:
                value = evaluation.interpolate(text, contexts)
            except ExpressionError as error:
                _say(f"job output {name!r} cannot be evaluated: {error}")
                continue
            _say(
                f"output {name}={value}"
                if "\n" not in value
                else f"output {name} ({value.count(chr(10)) + 1} lines)"
            )
            delimiter = "ci_orchestrator_eof"
            lines.append(f"{name}<<{delimiter}\n{value}\n{delimiter}\n")
        if target:
            with Path(target).open("a", encoding="utf-8") as file:
                file.writelines(lines)


def _run(argv: tuple[str, ...], *, cwd: Path, env: dict[str, str], timeout: float | None) -> tuple[int, str]:
    """Runs a step's process in a session of its own (stopped whole on its timeout)."""
    sys.stdout.flush()
    try:
        process = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, start_new_session=True)
    except OSError as error:
        return 127, f"cannot start: {error.strerror or error}"
    try:
        code = process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        return 124, f"timed out after {timeout:g} s"
    return code, "" if code == 0 else f"exit code {code}"


def _runner() -> dict[str, str]:
    from ci_orchestrator.matrix.evaluator import default_runner

    return default_runner()


def _say(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        _say("usage: python -m ci_orchestrator.run.job_runner SPEC.json")
        return 2
    spec_path = Path(argv[0])
    spec = json.loads(spec_path.read_text(encoding="utf-8"))
    return JobRun(spec, spec_path.with_suffix(".files")).run()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
