"""`actions/setup-python`, `setup-node`, `setup-go`, `setup-java` and `astral-sh/setup-uv` here:
the newest tool of this machine that fits the version the step asks for, first on the job's
`PATH`.

Tools are looked for on the job's `PATH` and where version managers and runners keep them
(pyenv, uv, nvm, a runner's tool cache). A Python is given to the job as a virtual environment
of its own, made from the interpreter found and kept under `.ci-orchestrator/python/` for the
next run: what the job installs stays out of the machine's interpreter, as on a runner's fresh
one. When nothing fits, the step fails, as setup-python fails for a version it cannot get; its
reason names the versions this machine has.
"""

from __future__ import annotations

import dataclasses
import glob
import hashlib
import os
import re
import shutil
import subprocess
from pathlib import Path

from ci_orchestrator.run.stand_ins import STATE


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Tool:
    """How one setup action's tool is found: the `with` key of its version, the programs to
    ask, their version option and the version's pattern, the folders (globs) where managers
    keep installs, and the output that names the program."""

    version_key: str
    programs: tuple[str, ...]
    option: str
    pattern: str
    installs: tuple[str, ...] = ()
    path_output: str = ""
    version_output: str = ""  # "": the version key

    @property
    def output(self) -> str:
        return self.version_output or self.version_key


def _home(*parts: str) -> str:
    return str(Path.home().joinpath(*parts))


def _environ(name: str, default: str) -> str:
    return os.environ.get(name) or default


TOOLS = {
    "setup-python": Tool(
        version_key="python-version",
        programs=("python3", "python"),
        option="--version",
        pattern=r"Python (\d+(?:\.\d+)*)",
        installs=(
            f"{_environ('PYENV_ROOT', _home('.pyenv'))}/versions/*/bin/python3",
            f"{_environ('UV_PYTHON_INSTALL_DIR', _home('.local', 'share', 'uv', 'python'))}/*/bin/python3",
            f"{_environ('RUNNER_TOOL_CACHE', '/opt/hostedtoolcache')}/Python/*/*/bin/python3",
        ),
        path_output="python-path",
    ),
    "setup-node": Tool(
        version_key="node-version",
        programs=("node",),
        option="--version",
        pattern=r"v?(\d+(?:\.\d+)*)",
        installs=(
            f"{_environ('NVM_DIR', _home('.nvm'))}/versions/node/*/bin/node",
            f"{_environ('RUNNER_TOOL_CACHE', '/opt/hostedtoolcache')}/node/*/*/bin/node",
        ),
    ),
    "setup-go": Tool(
        version_key="go-version",
        programs=("go",),
        option="version",
        pattern=r"go(\d+(?:\.\d+)*)",
        installs=(f"{_environ('RUNNER_TOOL_CACHE', '/opt/hostedtoolcache')}/go/*/*/bin/go",),
    ),
    "setup-java": Tool(
        version_key="java-version",
        programs=("java",),
        option="-version",
        pattern=r'version "?(\d+(?:\.\d+)*)',
        installs=(f"{_environ('RUNNER_TOOL_CACHE', '/opt/hostedtoolcache')}/Java_*/*/*/bin/java",),
        path_output="path",
    ),
    # astral-sh/setup-uv: the most used setup action after GitHub's own.
    "setup-uv": Tool(
        version_key="version",
        programs=("uv",),
        option="--version",
        pattern=r"uv (\d+(?:\.\d+)*)",
        installs=(_home(".local", "bin", "uv"), _home(".cargo", "bin", "uv")),
        path_output="uv-path",
        version_output="uv-version",
    ),
}
_ANY_VERSION = frozenset({"", "latest", "stable", "lts/*", "node", "*", "x", "oldstable"})


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Found:
    """What a setup step gives the job: the folder for `PATH`, its outputs, and what it says."""

    folder: str
    outputs: dict[str, str]
    said: str


class ToolNotFoundError(Exception):
    """No tool of this machine fits: the message names what was wanted and what was found."""


def wanted_versions(action: str, inputs: dict[str, str], workspace: Path) -> list[str]:
    """The versions a setup step asks for: its version input (several: one a line or comma),
    else what its version file says, else any."""
    key = TOOLS[action].version_key
    wanted = inputs.get(key, "").strip()
    version_file = inputs.get(f"{key}-file", "").strip()
    if not wanted and version_file:
        try:
            text = (workspace / version_file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            raise ToolNotFoundError(f"{key}-file {version_file!r} cannot be read") from None
        return [_from_file(Path(version_file).name, text, tool=action.removeprefix("setup-"))]
    return [part.strip() for part in re.split(r"[\n,]", wanted) if part.strip()] or [""]


def _from_file(name: str, text: str, *, tool: str) -> str:
    """The version a version file asks for, as setup-python and setup-node read one:
    `pyproject.toml`'s `requires-python` (its lower bound), `.tool-versions` (`python 3.12.1`),
    else the file's first word (`.python-version`, `.nvmrc`)."""
    if name == "pyproject.toml":
        import tomllib

        try:
            project = tomllib.loads(text).get("project", {})
        except tomllib.TOMLDecodeError:
            raise ToolNotFoundError("pyproject.toml cannot be read as TOML") from None
        requires = str(project.get("requires-python", "")) if isinstance(project, dict) else ""
        bound = re.search(r"(>=|==|~=)\s*(\d+(?:\.\d+)*)", requires)
        return (">=" if bound and bound.group(1) != "==" else "") + bound.group(2) if bound else ""
    lines = [line.split() for line in text.splitlines() if line.strip() and not line.startswith("#")]
    if name == ".tool-versions":
        named = {"python": "python", "node": "nodejs", "go": "golang", "java": "java"}.get(tool, tool)
        return next((words[1] for words in lines if len(words) > 1 and words[0] in (tool, named)), "")
    return lines[0][0] if lines else ""


def set_up(action: str, wanted: str, *, path: str, workspace: Path, job: str) -> Found:
    """The newest tool that fits `wanted` (ToolNotFoundError when none does); for Python, the job's
    virtual environment made from it. `path` is the job's PATH, `job` its instance id."""
    tool = TOOLS[action]
    have = candidates(tool, path=path, wanted=wanted)
    fitting = [(version, program) for version, program in have if fits(version, wanted)]
    if not fitting:
        versions = sorted({version for version, _ in have}, key=_numbers)
        shown = ", ".join(versions) or "none found"
        raise ToolNotFoundError(f"wants version {wanted or 'any'}; this machine has {shown}")
    version, program = max(fitting, key=lambda pair: _numbers(pair[0]))
    outputs = {tool.output: version}
    if action != "setup-python":
        if tool.path_output:
            outputs[tool.path_output] = program
        return Found(
            folder=str(Path(program).parent), outputs=outputs, said=f"{program} is version {version}"
        )
    folder = _environment(program, version, workspace=workspace, job=job)
    python = folder / "bin" / "python"
    outputs |= {"python-path": str(python), "cache-hit": "false"}
    said = f"{program} is version {version}; the job's packages go to {folder.relative_to(workspace)}"
    return Found(folder=str(folder / "bin"), outputs=outputs, said=said)


def candidates(tool: Tool, *, path: str, wanted: str) -> list[tuple[str, str]]:
    """(version, program) of each distinct tool found: on `path` (`python3.12` too when
    `3.12` is wanted) and where managers keep installs."""
    programs = list(tool.programs)
    if tool.version_key == "python-version" and re.fullmatch(r"\d+\.\d+", wanted):
        programs.insert(0, f"python{wanted}")
    places = [place for program in programs if (place := shutil.which(program, path=path))]
    for pattern in tool.installs:
        places.extend(sorted(glob.glob(pattern)))  # noqa: PTH207 - absolute patterns
    seen: set[str] = set()
    found: list[tuple[str, str]] = []
    for place in places:
        real = os.path.realpath(place)
        if real in seen:
            continue
        seen.add(real)
        version = _version_of(place, tool.option, tool.pattern)
        if version is not None:
            found.append((version, place))
    return found


def _environment(program: str, version: str, *, workspace: Path, job: str) -> Path:
    """The job's virtual environment of this interpreter: made once, kept for the next run."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", job)[:60] + "-" + hashlib.sha256(job.encode()).hexdigest()[:8]
    folder = workspace / STATE / "python" / name / version
    stamp = folder / "made-from"
    if (
        stamp.is_file()
        and stamp.read_text(encoding="utf-8") == program
        and (folder / "bin" / "python").exists()
    ):
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    # A runner's Python has a current pip (`pip install --group`...): upgraded as the environment
    # is made, or, offline, the interpreter's own.
    for options in (["--upgrade-deps"], []):
        shutil.rmtree(folder, ignore_errors=True)
        try:
            done = subprocess.run(
                [program, "-m", "venv", *options, str(folder)],
                capture_output=True,
                text=True,
                errors="replace",
                timeout=600,
                check=False,
                stdin=subprocess.DEVNULL,
            )
        except (OSError, subprocess.SubprocessError) as error:
            raise ToolNotFoundError(f"{program} cannot make a virtual environment: {error}") from None
        if done.returncode == 0:
            stamp.write_text(program, encoding="utf-8")
            return folder
    last = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
    raise ToolNotFoundError(f"{program} -m venv failed: {last[0]}")


def _version_of(path: str, option: str, pattern: str) -> str | None:
    try:
        done = subprocess.run(
            [path, option], capture_output=True, text=True, timeout=20, check=False, stdin=subprocess.DEVNULL
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode != 0:  # a pyenv shim of a version that is not active, a broken install
        return None
    match = re.search(pattern, done.stdout + done.stderr)
    return match.group(1) if match else None


def _numbers(text: str) -> list[int]:
    return [int(part) for part in re.findall(r"\d+", text)]


def fits(version: str, wanted: str) -> bool:
    """Whether a tool's `version` is what a setup action's version spec asks: `3.12`, `3.x`,
    `>=3.9`, `^18`, `20.x`, `lts/*`, `pypy3.9` (never), `3.13-dev`, `stable`."""
    wanted = wanted.strip().strip("'\"").removeprefix("v")
    if wanted.lower() in _ANY_VERSION:
        return True
    if wanted.startswith(("pypy", "graalpy")):
        return False
    have = _numbers(version)
    for operator in (">=", ">", "<=", "<", "^", "~", "="):
        if wanted.startswith(operator):
            return _compared(operator, have, _numbers(wanted))
    parts = re.split(r"[.]", wanted.split("-")[0])
    for index, part in enumerate(parts):
        if part in ("x", "X", "*"):
            return True
        if not part.isdigit() or index >= len(have) or have[index] != int(part):
            return False
    return True


def _compared(operator: str, have: list[int], limit: list[int]) -> bool:
    if not limit:
        return False
    size = len(limit)
    head = have[:size] + [0] * (size - len(have[:size]))
    if operator == ">=":
        return head >= limit
    if operator == ">":
        return head > limit
    if operator == "<=":
        return head <= limit
    if operator == "<":
        return head < limit
    if operator == "^":
        return have[:1] == limit[:1] and head >= limit
    if operator == "~":
        return have[:2] == limit[:2] and head >= limit
    return have[:size] == limit
