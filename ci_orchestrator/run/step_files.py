"""Each step process's own GitHub files: GITHUB_OUTPUT, GITHUB_ENV, GITHUB_PATH and
GITHUB_STEP_SUMMARY, made empty in a private folder of the run before it starts and read once
it has ended (`file_commands` reads their formats).

Every process gets files of its own, a retry too: a step never sees what another wrote, and
under GitHub never the job's own files, which only the tool's reports write to.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ci_orchestrator.results import NO_FILES, StepFiles
from ci_orchestrator.run.file_commands import FileCommandError, parse_env, parse_pairs, parse_path, read_text

if TYPE_CHECKING:
    from collections.abc import Mapping

FILES = {
    "GITHUB_OUTPUT": "output",
    "GITHUB_ENV": "env",
    "GITHUB_PATH": "path",
    "GITHUB_STEP_SUMMARY": "step_summary",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class FilesRead:
    """What a step's files hold, why they cannot be taken in (`error`: the step fails, as on
    GitHub), and what was left out with a warning (`notes`)."""

    files: StepFiles = NO_FILES
    error: str | None = None
    notes: tuple[str, ...] = ()


class StepFolders:
    """The run's folder of step files (made with the first, removed by `close`)."""

    def __init__(self) -> None:
        self._root: Path | None = None

    def make(self, name: str) -> dict[str, str]:
        """Empty files for one process (`name`: unique in the run), as the variables naming
        them. OSError when they cannot be made."""
        if self._root is None:
            self._root = Path(tempfile.mkdtemp(prefix="ci-orchestrator-files-"))  # 0700: the user's own
        folder = self._root / name
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir()
        paths: dict[str, str] = {}
        for variable, stem in FILES.items():
            path = folder / stem
            path.touch()
            paths[variable] = str(path)
        return paths

    def read(self, paths: Mapping[str, str]) -> FilesRead:
        """What the process wrote to the files `make` gave it."""
        try:
            outputs = parse_pairs(
                read_text(Path(paths["GITHUB_OUTPUT"]), file="GITHUB_OUTPUT"), file="GITHUB_OUTPUT"
            )
            env, refused = parse_env(read_text(Path(paths["GITHUB_ENV"]), file="GITHUB_ENV"))
            path = parse_path(read_text(Path(paths["GITHUB_PATH"]), file="GITHUB_PATH"))
        except FileCommandError as error:
            return FilesRead(error=f"cannot take in {error}")
        notes = [f"GITHUB_ENV may not set {name}: left out, as GitHub leaves it out" for name in refused]
        try:
            summary = read_text(Path(paths["GITHUB_STEP_SUMMARY"]), file="GITHUB_STEP_SUMMARY")
        except FileCommandError as error:
            summary = ""
            notes.append(f"{error}: left out of the summary")
        files = StepFiles(outputs=outputs, env=env, path=path, summary=summary)
        return FilesRead(files=files, notes=tuple(notes))

    def close(self) -> None:
        if self._root is not None:
            shutil.rmtree(self._root, ignore_errors=True)
            self._root = None
