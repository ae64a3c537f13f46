"""How a step becomes an argv: `run:` scripts written to a file for their shell, `command:` as is,
`script:` files by extension, and what to say when the program is missing."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import sys
import zlib
from pathlib import Path, PurePath
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

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

# A `run:` text made only of these characters has no expansion, redirection, pipe, glob, list,
# comment or escape: the shell would split it into words, find the program and start it.
_PLAIN = re.compile(r"[A-Za-z0-9 \t_.,:=+@%/'\"-]+")
_PLAIN_SHELLS = frozenset({"bash", "sh"})
# What the shell does itself rather than start a program (its builtins and reserved words).
# `true`, `false` and `echo` are left out: the programs of those names do the same (see
# `_like_program`).
_SHELL_WORDS = frozenset(
    (  # noqa: SIM905 - a list of 80 words reads best as the shell prints it
        ". : [ [[ ]] { } ! alias bg bind break builtin caller case cd command compgen complete "
        "compopt continue coproc declare dirs disown do done elif else enable esac eval exec exit "
        "export fc fg fi for function getopts hash help history if in jobs kill let local logout "
        "mapfile popd printf pushd pwd read readarray readonly return select set shift shopt "
        "source suspend test then time times trap type typeset ulimit umask unalias unset until "
        "wait while"
    ).split()
)
_LIKE_PROGRAMS = frozenset({"true", "false", "echo"})
# Variables a shell reads at start even with --noprofile --norc: with one of them set, only
# the shell can do what the user expects.
_STARTUP_VARIABLES = ("BASH_ENV", "ENV")


def build_argv(
    *,
    run: str | None,
    command: Sequence[str] | None,
    script: str | None,
    args: Sequence[str],
    shell: str,
    scratch_dir: Path,
    name: str,
    env: Mapping[str, str] | None = None,
) -> tuple[str, ...]:
    """The argv of one step: exactly one of `run`, `command` and `script` is given.

    A `run:` script is written to a file in `scratch_dir` (created when missing) and run by
    `shell`: a name GitHub knows (`bash`, `sh`, `python`, `pwsh`, `powershell`), a template with
    `{0}` for the file (`perl {0}`), or any other program, given the file as last argument.
    `args` follow in every case. A relative `script` path is taken from the current directory.
    With the step's environment `env` given, a plain one-line `run:` of bash or sh is started
    without the shell (see `plain_command`).
    """
    given = [value is not None for value in (run, command, script)]
    if sum(given) != 1:
        raise ValueError("exactly one of run, command and script must be given")
    if command is not None:
        return (*command, *args)
    if script is not None:
        return (*script_argv(str(Path(script).absolute())), *args)
    assert run is not None
    if not args and (plain := plain_command(run, shell, env=env)) is not None:
        return plain
    path = write_script(run, scratch_dir=scratch_dir, name=name, extension=_EXTENSIONS.get(shell, ""))
    return (*shell_argv(shell, path), *args)


def plain_command(run: str, shell: str, *, env: Mapping[str, str] | None) -> tuple[str, ...] | None:
    """The argv of a `run:` text the shell would only split into words and start, as `make` does
    for its recipes: one line, no shell syntax, a program found on the step's PATH (so a missing
    one still gets the shell's own "command not found"), nothing the shell runs itself. It saves
    the shell's start and the script file; the process, its exit code and its output are the
    same. None when the shell is needed.
    """
    if env is None or shell not in _PLAIN_SHELLS or any(env.get(name) for name in _STARTUP_VARIABLES):
        return None
    # Every instance of a step, and every attempt, asks again: the answer depends on no more.
    key = (run, env.get("PATH"), "POSIXLY_CORRECT" in env)
    if key not in _PLAIN_SEEN:
        _PLAIN_SEEN[key] = _plain_words(run, env)
    return _PLAIN_SEEN[key]


_PLAIN_SEEN: dict[tuple[str, str | None, bool], tuple[str, ...] | None] = {}


def _plain_words(run: str, env: Mapping[str, str]) -> tuple[str, ...] | None:
    text = run.strip()
    if not _PLAIN.fullmatch(text):
        return None
    try:
        words = tuple(shlex.split(text))
    except ValueError:  # an unclosed quote: the shell's own message says it best
        return None
    if not words or "=" in words[0] or words[0] in _SHELL_WORDS:
        return None
    if words[0] in _LIKE_PROGRAMS and not _like_program(words, env):
        return None
    if "/" in words[0]:  # a relative one is found from the step's own directory: the shell's job
        found = words[0].startswith("/") and os.access(words[0], os.X_OK)
        return words if found else None
    program = find_program(words[0], env.get("PATH"))
    return None if program is None else (program, *words[1:])


def _like_program(words: tuple[str, ...], env: Mapping[str, str]) -> bool:
    """Whether the program `words[0]` does what the shell's builtin of that name would: the
    programs answer `--help` and `--version`, and `echo` reads POSIXLY_CORRECT."""
    if any(word in ("--help", "--version") for word in words[1:]):
        return False
    return words[0] != "echo" or "POSIXLY_CORRECT" not in env


_FOUND: dict[tuple[str, str | None], str | None] = {}


def find_program(name: str, path: str | None) -> str | None:
    """The file `name` runs, looked up on `path` as a shell would (once per name and PATH); a
    name with a `/` is a path already. None when not found."""
    if "/" in name:
        return name
    key = (name, path)
    if key not in _FOUND:
        _FOUND[key] = shutil.which(name, path=path)
    return _FOUND[key]


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
    digest = f"{zlib.crc32(name.encode()):08x}"  # tells apart names made alike; zlib is loaded already
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
