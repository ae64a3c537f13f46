"""How a step becomes an argv: `run:` scripts written to a file for their shell, `command:` as is,
`script:` files by extension, and what to say when the program is missing."""

from __future__ import annotations

import hashlib
import re
import shlex
import sys
from pathlib import Path, PurePath
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

# GitHub's templates for the shells it names; `{0}` is the script file.
SHELL_TEMPLATES: dict[str, tuple[str, ...]] = {
    "bash": ("bash", "--noprofile", "--norc", "-eo", "pipefail", "{0}"),
    "sh": ("sh", "-e", "{0}"),
    "python": ("python", "{0}"),
    "pwsh": ("pwsh", "-command", ". '{0}'"),
    "powershell": ("powershell", "-command", ". '{0}'"),
}

# GitHub gives the script file the extension its interpreter expects (pwsh refuses others).
_EXTENSIONS = {"bash": ".sh", "sh": ".sh", "python": ".py", "pwsh": ".ps1", "powershell": ".ps1"}

# Programs that this module chooses itself: when one is missing, the user did not misspell a
# command, the machine lacks an interpreter.
INTERPRETERS = frozenset({"bash", "sh", "pwsh", "powershell", "python", "python3"})

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def build_argv(
    *,
    run: str | None,
    command: Sequence[str] | None,
    script: str | None,
    args: Sequence[str],
    shell: str,
    scratch_dir: Path,
    name: str,
) -> tuple[str, ...]:
    """The argv of one step: exactly one of `run`, `command` and `script` is given.

    A `run:` script is written to a file in `scratch_dir` (created when missing) and run by
    `shell`: a name GitHub knows (`bash`, `sh`, `python`, `pwsh`, `powershell`), a template with
    `{0}` for the file (`perl {0}`), or any other program, given the file as last argument.
    `args` follow in every case. A relative `script` path is taken from the current directory.
    """
    given = [value is not None for value in (run, command, script)]
    if sum(given) != 1:
        raise ValueError("exactly one of run, command and script must be given")
    if command is not None:
        return (*command, *args)
    if script is not None:
        return (*script_argv(str(Path(script).absolute())), *args)
    assert run is not None
    path = write_script(run, scratch_dir=scratch_dir, name=name, extension=_EXTENSIONS.get(shell, ""))
    return (*shell_argv(shell, path), *args)


def shell_argv(shell: str, path: str) -> tuple[str, ...]:
    """The argv that runs the script file `path` with `shell` (a name, a `{0}` template, a program)."""
    template = SHELL_TEMPLATES.get(shell)
    if template is None:
        words = shlex.split(shell)
        if not words:
            raise ValueError("the shell is empty")
        template = tuple(words) if any("{0}" in word for word in words) else (*words, "{0}")
    if template[0] == "python":
        # The Python running us, not whichever `python` the PATH finds (GitHub's runner does
        # the same with the Python set up for the job).
        template = (sys.executable, *template[1:])
    quoted = path.replace("'", "''")  # inside pwsh's single quotes
    return tuple(word.replace("{0}", quoted if "'{0}'" in word else path) for word in template)


def script_argv(path: str) -> tuple[str, ...]:
    """How a script file is run, chosen by its extension."""
    extension = PurePath(path).suffix.lower()
    if extension == ".sh":
        return ("bash", path)
    if extension == ".py":
        return (sys.executable, path)
    if extension == ".ps1":
        return ("pwsh", "-NoProfile", "-NonInteractive", "-File", path)
    return (path,)


def write_script(text: str, *, scratch_dir: Path, name: str, extension: str) -> str:
    """Writes `text` to a file named after `name` in `scratch_dir`; returns its absolute path.

    The name is made safe for every shell's quoting and kept unique: two names that become the
    same once made safe (`a b`, `a_b`) still get two files.
    """
    digest = hashlib.sha1(name.encode(), usedforsecurity=False).hexdigest()[:8]
    stem = _UNSAFE.sub("_", name).strip("._-")[:60] or "step"
    path = scratch_dir.absolute() / f"{stem}-{digest}{extension}"
    content = text if text.endswith("\n") else text + "\n"
    try:
        path.write_text(content, encoding="utf-8", newline="\n")
    except FileNotFoundError:  # the folder is made on the first script, not checked on each
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8", newline="\n")
    return str(path)


def missing_program(program: str) -> str:
    """What to tell the user when `program` cannot be found."""
    if program in INTERPRETERS:
        return f"{program} is not installed"
    return f"command not found: {program}"
