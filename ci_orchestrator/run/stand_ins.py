"""What a job's `uses:` step does here: the common actions stood in for on this machine.

`actions/checkout` is the working copy as it is; `actions/setup-python`, `setup-node`, `setup-go`
and `setup-java` take the local tool that fits the version the step asks (see `setup_tools`);
`actions/cache`, `upload-artifact` and `download-artifact` keep their files in folders under
`.ci-orchestrator/`; a local composite action (`./path`) runs its steps. Any other action is
skipped, its reason naming it.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ci_orchestrator.run.job_runner import JobRun, StepOutcome

STATE = Path(".ci-orchestrator")
_SETUP = frozenset({"setup-python", "setup-node", "setup-go", "setup-java"})


def _outcome(
    title: str, outcome: str, reason: str = "", outputs: dict[str, str] | None = None
) -> StepOutcome:
    from ci_orchestrator.run.job_runner import StepOutcome

    return StepOutcome(title, outcome, outcome, outputs=outputs or {}, reason=reason)


def run_action(
    uses: str, inputs: dict[str, str], env: dict[str, str], job: JobRun, contexts: dict[str, Any]
) -> StepOutcome:
    workspace = job.state.workspace
    if uses.startswith("./") and uses.endswith((".yml", ".yaml")):
        return _outcome(uses, "skipped", f"a reusable workflow called with a strategy of its own: {uses}")
    if uses.startswith("./"):
        return _composite(uses, inputs, env, job, contexts)
    name, _, _ = uses.partition("@")
    owner_action = name.lower()
    action = owner_action.removeprefix("actions/")
    if owner_action == "actions/checkout":
        return _outcome(uses, "success", "stood in for: the working copy as it is")
    if owner_action.startswith("actions/") and action in _SETUP:
        return _setup(action, uses, inputs, job)
    if owner_action == "astral-sh/setup-uv":
        if inputs.get("python-version"):  # as setup-uv sets it: the Python uv's commands use
            job.state.env["UV_PYTHON"] = inputs["python-version"]
        return _setup("setup-uv", uses, inputs, job)
    if owner_action in ("actions/cache", "actions/cache/restore", "actions/cache/save"):
        return _cache(action, inputs, job, workspace)
    if owner_action == "actions/upload-artifact":
        return _upload(inputs, workspace)
    if owner_action == "actions/download-artifact":
        return _download(inputs, workspace)
    return _outcome(uses, "skipped", f"uses: {uses} is not run here")


# --- setup-* ---------------------------------------------------------------------------
def _setup(action: str, uses: str, inputs: dict[str, str], job: JobRun) -> StepOutcome:
    from ci_orchestrator.run import setup_tools

    outputs: dict[str, str] = {}
    said: list[str] = []
    try:
        # Several versions: each is set up, the last first on PATH (setup-python's default one).
        for wanted in setup_tools.wanted_versions(action, inputs, job.state.workspace):
            found = setup_tools.set_up(
                action,
                wanted,
                path=job.process_env({}).get("PATH", ""),
                workspace=job.state.workspace,
                job=str(job.spec["job"]),
            )
            job.state.paths.append((found.folder,))  # as its GITHUB_PATH would
            outputs |= found.outputs
            said.append(found.said)
    except setup_tools.ToolNotFoundError as error:
        return _outcome(uses, "failure", f"{uses} {error}")
    return _outcome(uses, "success", "stood in for: " + "; ".join(said), outputs)


# --- cache and artifacts ------------------------------------------------------------------
def _paths(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("!")]


def _copy(source: Path, target: Path) -> None:
    if source.is_dir():
        shutil.copytree(source, target, dirs_exist_ok=True, symlinks=True)
    elif source.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)


def _matched(workspace: Path, patterns: list[str]) -> list[Path]:
    found: list[Path] = []
    for pattern in patterns:
        expanded = Path(pattern).expanduser()
        if expanded.is_absolute():
            found.extend(sorted(Path(expanded.anchor).glob(str(expanded.relative_to(expanded.anchor)))))
        else:
            found.extend(sorted(workspace.glob(str(expanded))))
    return found


def _cache(action: str, inputs: dict[str, str], job: JobRun, workspace: Path) -> StepOutcome:
    key = inputs.get("key", "")
    paths = _paths(inputs.get("path", ""))
    folder = workspace / STATE / "actions-cache"

    def slot(name: str) -> Path:
        return folder / hashlib.sha256(name.encode()).hexdigest()[:20]

    title = f"actions/{action}"
    hit = ""
    if action != "cache/save":
        candidates = [
            key,
            *(line.strip() for line in inputs.get("restore-keys", "").splitlines() if line.strip()),
        ]
        for index, candidate in enumerate(candidates):
            stored = slot(candidate) if index == 0 else _prefixed(folder, candidate)
            if stored is not None and stored.is_dir():
                for item in stored.glob("*"):
                    if item.name != "key":
                        _copy(item, workspace / item.name)
                hit = "true" if index == 0 else "false"
                break

    def save(succeeded: bool) -> None:
        if not succeeded or hit == "true" or not key:
            return
        target = slot(key)
        shutil.rmtree(target, ignore_errors=True)
        for path in _matched(workspace, paths):
            if path.is_relative_to(workspace):
                _copy(path, target / path.relative_to(workspace))
        target.mkdir(parents=True, exist_ok=True)
        (target / "key").write_text(key, encoding="utf-8")

    if action == "cache/save":
        save(True)
        return _outcome(title, "success", f"stood in for: saved under {folder}")
    if action == "cache":
        job.state.post.append(save)
    reason = f"stood in for: {'restored' if hit else 'nothing stored'} from {folder.relative_to(workspace)}"
    return _outcome(
        title, "success", reason, {"cache-hit": hit or "false", "cache-matched-key": key if hit else ""}
    )


def _prefixed(folder: Path, prefix: str) -> Path | None:
    if not folder.is_dir():
        return None
    for slot in sorted(folder.iterdir(), key=lambda one: one.stat().st_mtime, reverse=True):
        stored = slot / "key"
        if stored.is_file() and stored.read_text(encoding="utf-8").startswith(prefix):
            return slot
    return None


def _upload(inputs: dict[str, str], workspace: Path) -> StepOutcome:
    name = inputs.get("name") or "artifact"
    target = workspace / STATE / "artifacts" / name
    found = [path for path in _matched(workspace, _paths(inputs.get("path", ""))) if path.exists()]
    if not found:
        missing = inputs.get("if-no-files-found", "warn")
        if missing == "error":
            return _outcome("actions/upload-artifact", "failure", "no files found for the artifact")
        return _outcome("actions/upload-artifact", "success", f"no files found for artifact {name!r}")
    shutil.rmtree(target, ignore_errors=True)
    for path in found:
        relative = path.relative_to(workspace) if path.is_relative_to(workspace) else Path(path.name)
        _copy(path, target / relative)
    return _outcome(
        "actions/upload-artifact", "success", f"stood in for: copied to {target.relative_to(workspace)}"
    )


def _download(inputs: dict[str, str], workspace: Path) -> StepOutcome:
    store = workspace / STATE / "artifacts"
    name = inputs.get("name")
    destination = workspace / (inputs.get("path") or ".")
    sources = [store / name] if name else sorted(store.glob("*")) if store.is_dir() else []
    if name and not (store / name).is_dir():
        return _outcome(
            "actions/download-artifact", "failure", f"no artifact {name!r} in {store.relative_to(workspace)}"
        )
    for source in sources:
        into = destination if name else destination / source.name
        _copy(source, into)
    return _outcome(
        "actions/download-artifact", "success", f"stood in for: copied from {store.relative_to(workspace)}"
    )


# --- local composite actions --------------------------------------------------------------
def _composite(
    uses: str, inputs: dict[str, str], env: dict[str, str], job: JobRun, contexts: dict[str, Any]
) -> StepOutcome:
    from ci_orchestrator.workflows.actions import read_action

    folder = job.state.workspace / uses
    action, problem = read_action(folder)
    if action is None:
        return _outcome(uses, "failure", problem)
    if action.using != "composite":
        return _outcome(uses, "skipped", f"uses: {uses} is a {action.using} action, not run here")
    given = {name: inputs.get(name, default) for name, default in action.inputs.items()} | inputs
    inner = contexts | {"inputs": given, "steps": {}}
    outcomes = []
    for step in action.steps:
        outcome = job.run_step(step, inner | {"steps": inner["steps"], "env": contexts["env"] | env})
        outcomes.append(outcome)
        if step.get("id"):
            inner["steps"][step["id"]] = {
                "outputs": outcome.outputs,
                "outcome": outcome.outcome,
                "conclusion": outcome.conclusion,
            }
        if outcome.conclusion == "failure":
            return _outcome(uses, "failure", f"step {outcome.title!r} failed: {outcome.reason}")
    from ci_orchestrator.expressions import evaluation

    outputs = {name: evaluation.interpolate(text, inner) for name, text in action.outputs.items()}
    return _outcome(uses, "success", f"composite action: {len(outcomes)} steps", outputs)
