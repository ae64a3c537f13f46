"""Ours and the peers it is measured against: where they come from, where they live, their versions.

Everything is installed under the git-ignored `bench/.peers/`: a virtualenv with ours as a user
has it (`pip install` of the snapshot, not editable, and its `ci-orchestrator` command), a
virtualenv with doit and go-task (PyPI's `go-task-bin` ships the `task` binary), an npm prefix
with turbo. GNU make and GNU parallel come from Debian (installed only when missing and running
as root) and xargs from the system. A peer that cannot be installed is kept with the reason, so
the suite reports it instead of stopping.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping

BENCH = Path(__file__).resolve().parent
PEERS_DIR = BENCH / ".peers"
VENV = PEERS_DIR / "venv"
OURS_VENV = PEERS_DIR / "ours"
NPM_PREFIX = PEERS_DIR / "npm"
REPO = BENCH.parent
# What of a commit is taken for ours: the package and what `pip install` needs to build it.
PACKAGE_FILES = ("pyproject.toml", "README.md", "ci_orchestrator")

# Turbo phones home and prints update notices unless told not to; neither belongs in a timing.
QUIET_ENV = {
    "TURBO_TELEMETRY_DISABLED": "1",
    "DO_NOT_TRACK": "1",
    "TURBO_NO_UPDATE_NOTIFIER": "1",
    "NPM_CONFIG_UPDATE_NOTIFIER": "false",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Peer:
    """One tool: the argv that starts it, its version, or why it is missing."""

    name: str
    argv: tuple[str, ...] = ()
    version: str = ""
    missing: str = ""  # why the peer is not available; empty when it is
    # Ours only: the interpreter `argv` runs on (for `bench/maxrss.py` and `bench/server.py`), and
    # what its processes need in their environment (PYTHONPATH when it runs from the snapshot).
    python: str = ""
    env: Mapping[str, str] = field(default_factory=dict)

    @property
    def available(self) -> bool:
        return not self.missing


def _run(
    argv: list[str], *, timeout: float = 600, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False, env=env)


def _first_line(argv: list[str], env: Mapping[str, str] | None = None) -> str:
    try:
        done = _run(argv, timeout=60, env=env)
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"unknown ({error})"
    text = (done.stdout or done.stderr).strip()
    return text.splitlines()[0] if text else "unknown"


SMOKE = """\
name: smoke
execution: parallel
steps:
  - {id: a, run: "true"}
  - {id: b, run: "true", needs: [a], inputs: [smoke.yml]}
"""


def _works(root: Path) -> bool:
    """Whether the package under `root` plans and runs a two-step playbook."""
    folder = BENCH / ".work" / "smoke"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    (folder / "smoke.yml").write_text(SMOKE)
    # No run server: this only asks whether the package works, and must leave nothing running.
    env = {**os.environ, "PYTHONPATH": str(root), "CI_ORCHESTRATOR_SERVER": "off"}
    argv = [sys.executable, "-m", "ci_orchestrator"]
    for command in (["plan", "smoke.yml"], ["run", "smoke.yml", "-j", "2", "--cache-dir", "cache"]):
        try:
            done = subprocess.run(
                [*argv, *command], cwd=folder, env=env, capture_output=True, timeout=60, check=False
            )
        except subprocess.TimeoutExpired:
            return False
        if done.returncode:
            return False
    return True


def _compiled(root: Path) -> Path:
    """`root` with its bytecode written, as an installed package has it: with
    PYTHONDONTWRITEBYTECODE set (as on some CI machines) every run would compile every module."""
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(root / "ci_orchestrator")], check=False)
    return root


def snapshot(*, live: bool, depth: int = 20) -> tuple[Path, str]:
    """The folder that holds the package of ours to time (its `pyproject.toml` and
    `ci_orchestrator/`), and which version of the package it holds.

    By default the newest commit whose package plans and runs a small playbook, copied to
    `bench/.work/snapshot`: the working tree is shared and may be half-edited while a run of
    several minutes goes on, and a commit can be named. `live` takes the working tree as it is.
    """
    if live:
        return _compiled(REPO), "working tree"
    target = BENCH / ".work" / "snapshot"
    log = _run(["git", "-C", str(REPO), "log", f"-{depth}", "--format=%h"]).stdout.split()
    for commit in log:
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        # What `pip install` needs besides the package: its metadata (and the README it names).
        listed = _run(["git", "-C", str(REPO), "ls-tree", "--name-only", commit]).stdout.split()
        paths = [path for path in PACKAGE_FILES if path in listed]
        archive = subprocess.run(
            ["git", "-C", str(REPO), "archive", commit, "--", *paths], capture_output=True, check=True
        )
        subprocess.run(["tar", "-x", "-C", str(target)], input=archive.stdout, check=True)
        if _works(target):
            return _compiled(target), f"commit {commit}"
    return REPO, "working tree (none of the last commits ran)"


def _without_pythonpath(env: Mapping[str, str]) -> dict[str, str]:
    """`env` for ours: no PYTHONPATH of the bench's own, which would come before the install."""
    return {name: value for name, value in env.items() if name != "PYTHONPATH"}


def _pip_install_ours(root: Path, log: list[str]) -> str:
    """Install the package in `root` into `bench/.peers/ours` as a user would: `pip install`, not
    editable. The first time with its dependencies; after that, when the snapshot changed, only
    the package again (`--force-reinstall --no-deps`, a few seconds), and its dependencies only if
    `pip check` finds one missing. Why it failed, or ""."""
    python = OURS_VENV / "bin" / "python"
    try:
        if not python.exists():
            # The bench's own interpreter makes the venv: no other Python is assumed.
            made = _run([sys.executable, "-m", "venv", str(OURS_VENV)])
            if made.returncode:
                return f"venv: {made.stderr.strip()[-300:]}"
        pip = [str(python), "-m", "pip", "install", "--quiet"]
        env = _without_pythonpath(os.environ)
        if (OURS_VENV / "bin" / "ci-orchestrator").exists():
            done = _run([*pip, "--force-reinstall", "--no-deps", str(root)], env=env)
            if not done.returncode and _run([str(python), "-m", "pip", "check"], env=env).returncode:
                done = _run([*pip, str(root)], env=env)
        else:
            done = _run([*pip, str(root)], env=env)
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"pip: {error}"
    if done.returncode:
        log.append(f"pip (ours): {done.stderr.strip()[-300:]}")
        return "pip install failed"
    return ""


def ours(root: Path, source: str, log: list[str]) -> Peer:
    """ci-orchestrator as a user has it: the `ci-orchestrator` command of a non-editable install
    of the snapshot `root` into its own venv, `bench/.peers/ours` (installed again when the
    snapshot is another commit). If it cannot be installed, it runs from the snapshot as
    `python -P -m ci_orchestrator` with `root` on PYTHONPATH, and `log` says so.

    Not the bench's own interpreter: the project may be installed there in editable mode, whose
    finder (a .pth file) imports pathlib, urllib.parse, ipaddress, fnmatch and importlib.util at
    every start of the interpreter, about 11 ms no installed copy pays.
    """
    script = OURS_VENV / "bin" / "ci-orchestrator"
    marker = OURS_VENV / "snapshot.txt"  # which snapshot is installed
    problem = "" if (root / "pyproject.toml").exists() else f"no pyproject.toml in {root}"
    current = (
        script.exists() and source.startswith("commit") and marker.exists() and marker.read_text() == source
    )
    if not (problem or current):
        marker.unlink(missing_ok=True)
        problem = _pip_install_ours(root, log)
        if not problem:
            marker.write_text(source)
    version = ""
    if not problem:
        try:
            done = _run([str(script), "--version"], timeout=60, env=_without_pythonpath(os.environ))
        except (OSError, subprocess.TimeoutExpired) as error:
            problem = f"`{script} --version` failed: {error}"
        else:
            version = done.stdout.strip().removeprefix("ci-orchestrator ")
            if done.returncode or not done.stdout.startswith("ci-orchestrator "):
                problem = f"`{script} --version` failed: {(done.stderr or done.stdout).strip()[-300:]}"
    if problem:
        log.append(
            f"ci-orchestrator: not installed into `bench/.peers/ours` ({problem}); timed as "
            f"`python -P -m ci_orchestrator` with the snapshot of {source} on PYTHONPATH instead, with "
            "the bench's own interpreter (an editable install of the project there costs every start "
            "about 11 ms)"
        )
        return from_snapshot(root, source)
    log.append(
        f"ci-orchestrator: installed (not editable) with `pip install` of the snapshot of {source} "
        f"into `bench/.peers/ours`, a venv of the bench's Python ({platform.python_version()}); "
        "timed as that venv's `bin/ci-orchestrator` command, as `pip install` and the GitHub Action "
        "give it to a user"
    )
    return Peer(
        name="ci-orchestrator",
        argv=(str(script),),
        version=f"{version} ({source})",
        python=str(OURS_VENV / "bin" / "python"),
    )


def from_snapshot(root: Path, source: str = "") -> Peer:
    """ci-orchestrator run as `python -P -m ci_orchestrator` with the bench's interpreter, the package
    found through PYTHONPATH (`root`): the way when it cannot be installed.

    `-P`: the working folder is not put on the module path, as it is not for the installed
    `ci-orchestrator` command; there, it would be part of the run server's key (`bench/server.py`).
    """
    argv = (sys.executable, "-P", "-m", "ci_orchestrator")
    env = {"PYTHONPATH": str(root)}
    version = _first_line([*argv, "--version"], env={**os.environ, **env}).removeprefix("ci-orchestrator ")
    return Peer(
        name="ci-orchestrator",
        argv=argv,
        version=f"{version.strip()} ({source})" if source else version.strip(),
        python=sys.executable,
        env=env,
    )


def _venv_peers(log: list[str]) -> tuple[Peer, Peer]:
    doit = VENV / "bin" / "doit"
    task = VENV / "bin" / "task"
    if not (doit.exists() and task.exists()):
        try:
            if not (VENV / "bin" / "python").exists():
                # The bench's own interpreter makes the venv: no other Python is assumed.
                made = _run([sys.executable, "-m", "venv", str(VENV)])
                if made.returncode:
                    log.append(f"venv: {made.stderr.strip()[-300:]}")
            pip = _run([str(VENV / "bin" / "python"), "-m", "pip", "install", "-q", "doit", "go-task-bin"])
            if pip.returncode:
                log.append(f"pip: {pip.stderr.strip()[-300:]}")
        except (OSError, subprocess.TimeoutExpired) as error:
            log.append(f"pip: {error}")
    peers = []
    for name, path, version_argv in (
        ("doit", doit, [str(doit), "--version"]),
        ("go-task", task, [str(task), "--version"]),
    ):
        if path.exists():
            version = _first_line(version_argv)
            peers.append(Peer(name=name, argv=(str(path),), version=version))
        else:
            peers.append(Peer(name=name, missing="pip install into bench/.peers/venv failed"))
    return peers[0], peers[1]


def _turbo(log: list[str]) -> Peer:
    turbo = NPM_PREFIX / "node_modules" / ".bin" / "turbo"
    if not turbo.exists():
        npm = shutil.which("npm")
        if npm is None:
            return Peer(name="turbo", missing="npm is not installed")
        try:
            done = _run([npm, "install", "--no-audit", "--no-fund", "--prefix", str(NPM_PREFIX), "turbo"])
        except (OSError, subprocess.TimeoutExpired) as error:
            return Peer(name="turbo", missing=f"npm install failed: {error}")
        if done.returncode or not turbo.exists():
            log.append(f"npm: {done.stderr.strip()[-300:]}")
            return Peer(name="turbo", missing="npm install turbo failed")
    return Peer(name="turbo", argv=(str(turbo),), version=_first_line([str(turbo), "--version"]))


def _debian(name: str, command: str, package: str, log: list[str]) -> Peer:
    path = shutil.which(command)
    if path is None:
        if os.geteuid() != 0 or shutil.which("apt-get") is None:
            return Peer(name=name, missing=f"`{command}` is missing and apt-get needs root")
        try:
            done = _run(["apt-get", "install", "-y", "-q", package])
            if done.returncode:
                # A stale package index is the usual cause; one refresh, then give up.
                _run(["apt-get", "update", "-q"])
                done = _run(["apt-get", "install", "-y", "-q", package])
        except (OSError, subprocess.TimeoutExpired) as error:
            return Peer(name=name, missing=f"apt-get install {package} failed: {error}")
        if done.returncode:
            log.append(f"apt-get: {done.stderr.strip()[-300:]}")
        path = shutil.which(command)
        if path is None:
            return Peer(name=name, missing=f"apt-get install {package} failed")
    return Peer(name=name, argv=(path,), version=_first_line([path, "--version"]))


def _xargs() -> Peer:
    path = shutil.which("xargs")
    if path is None:
        return Peer(name="xargs", missing="xargs is not installed")
    return Peer(name="xargs", argv=(path,), version=_first_line([path, "--version"]))


def install(root: Path, source: str = "") -> tuple[dict[str, Peer], list[str]]:
    """Every tool by name (ours, from the package in `root`, first), installed when missing, and
    notes on how ours was installed and on what went wrong."""
    PEERS_DIR.mkdir(parents=True, exist_ok=True)
    log: list[str] = []
    doit, task = _venv_peers(log)
    found = [
        ours(root, source, log),
        _debian("make", "make", "make", log),
        task,
        doit,
        _turbo(log),
        _xargs(),
        _debian("parallel", "parallel", "parallel", log),
    ]
    return {peer.name: peer for peer in found}, log


if __name__ == "__main__":
    tools, notes = install(*snapshot(live=False))
    for tool in tools.values():
        print(f"{tool.name:16} {tool.version or '-':40} {tool.missing}")
    for note in notes:
        print(note)
