"""A cache is untrusted input: a cache folder restored by actions/cache or shared between projects
may have been written by anyone. These tests poison a real cache as an attacker would, writing
its SQLite rows, value files and archives directly, then run the real CLI on it: nothing is
unpickled, no file outside the cache is read or removed, nothing is written outside the step's
declared outputs; the poisoned entry is a warning and a miss, and the step simply runs.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import shutil
import sqlite3
import tarfile
import zlib
from contextlib import closing, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.e2e.cache_project import ran, run, statuses
from tests.helpers import invoke

if TYPE_CHECKING:
    from collections.abc import Iterator

MODE_BINARY, MODE_TEXT, MODE_PICKLE = 2, 3, 4  # diskcache's value modes, as its table stores them


def stored_digest(cache_dir: Path, instance: str) -> str:
    """The digest of the result stored for `instance`, read from the index as an attacker would."""
    with database(cache_dir, "index") as db:
        for key, value in db.execute("SELECT key, value FROM Cache WHERE key LIKE 'entry:%'"):
            if json.loads(value)["instance"] == instance:
                return str(key).removeprefix("entry:")
    raise AssertionError(f"no stored entry for {instance}")


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    """A file of the user's, outside the workspace and the cache."""
    path = tmp_path / "victim.txt"
    path.write_text("precious\n")
    return path


class _Payload:
    """What an attacker pickles: unpickling it calls `open(marker, "w")`, which makes the marker."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (str(self.marker), "w"))


def payload(marker: Path) -> bytes:
    return pickle.dumps(_Payload(marker))


def warm(project: Path) -> str:
    """A cold run storing every cacheable step; the digest of `gen`'s stored result."""
    run()
    assert set(statuses().values()) == {"passed"}
    ran()
    return stored_digest(Path(os.environ["CI_ORCHESTRATOR_CACHE_DIR"]), "gen")


@contextmanager
def database(cache_dir: Path, store: str) -> Iterator[sqlite3.Connection]:
    """A store's database, written in place as an attacker would, closed after."""
    with closing(sqlite3.connect(cache_dir / store / "cache.db", isolation_level=None)) as db:
        yield db


def archive_row(cache_dir: Path, digest: str) -> int:
    """The rowid of `gen`'s archive (the archive store's keys are zlib-compressed JSON)."""
    with database(cache_dir, "entries") as db:
        for rowid, key in db.execute("SELECT rowid, key FROM Cache WHERE raw = 1"):
            if json.loads(zlib.decompress(key)) == "data:" + digest:
                return int(rowid)
    raise AssertionError("no archive stored for gen")


def forge_row(
    cache_dir: Path, store: str, rowid: int, *, mode: int, filename: str | None, value: object
) -> None:
    with database(cache_dir, store) as db:
        db.execute(
            "UPDATE Cache SET mode = ?, filename = ?, value = ? WHERE rowid = ?",
            (mode, filename, value, rowid),
        )


def add_row(
    cache_dir: Path, store: str, *, key: object, raw: int, mode: int, filename: str | None, value: object
) -> None:
    with database(cache_dir, store) as db:
        db.execute(
            "INSERT INTO Cache (key, raw, store_time, expire_time, access_time, access_count, tag, size,"
            " mode, filename, value) VALUES (?, ?, 0, NULL, 0, 0, NULL, 0, ?, ?, ?)",
            (key, raw, mode, filename, value),
        )


def workspace_files() -> dict[Path, bytes]:
    """Every file of the workspace but the tool's own, gen's output and the record of what ran."""
    return {
        path: path.read_bytes()
        for path in Path().rglob("*")
        if path.is_file() and not {".ci-orchestrator", "build"} & set(path.parts) and path.name != "ran.log"
    }


def warnings_of(output: str) -> list[str]:
    return [line for line in output.splitlines() if "warning" in line]


def assert_gen_ran_again() -> None:
    """The poisoned result was a miss: gen ran, made its output, and stored a good result."""
    assert ran() == ["always", "gen"]
    assert statuses()["gen"] == "passed"
    assert Path("build/gen.txt").read_text() == "alpha\nbeta\n"
    run()
    assert statuses()["gen"] == "cached"


# --- nothing read from a cache is unpickled -------------------------------------------------


@pytest.mark.parametrize("in_file", [False, True], ids=["in-row", "in-value-file"])
def test_a_pickled_archive_is_never_loaded_and_the_step_runs(
    project: Path, cache_dir: Path, tmp_path: Path, in_file: bool
) -> None:
    digest = warm(project)
    marker = tmp_path / "code-ran"
    rowid = archive_row(cache_dir, digest)
    if in_file:  # diskcache keeps large values in files named by the row
        with database(cache_dir, "entries") as db:
            (name,) = db.execute("SELECT filename FROM Cache WHERE rowid = ?", (rowid,)).fetchone()
        (cache_dir / "entries" / name).write_bytes(payload(marker))
        forge_row(cache_dir, "entries", rowid, mode=MODE_PICKLE, filename=name, value=None)
    else:
        forge_row(cache_dir, "entries", rowid, mode=MODE_PICKLE, filename=None, value=payload(marker))
    shutil.rmtree("build")  # the hit needs the archive

    result = run()
    assert not marker.exists()
    said = warnings_of(result.stderr)
    assert len(said) == 1, result.stderr
    assert "gen" in said[0]
    assert_gen_ran_again()


@pytest.mark.parametrize("store", ["entries", "index"])
def test_a_pickled_key_is_never_loaded_by_prune_stats_or_clear(
    project: Path, cache_dir: Path, tmp_path: Path, store: str
) -> None:
    warm(project)
    marker = tmp_path / "code-ran"
    add_row(cache_dir, store, key=payload(marker), raw=0, mode=1, filename=None, value=b"x")
    for command in (("cache", "stats"), ("cache", "prune", "--max-size", "1"), ("cache", "clear")):
        result = invoke(*command)
        assert "Traceback" not in result.output + result.stderr
        assert not marker.exists(), command
    run()
    assert not marker.exists()


# --- no path a cache names is opened or removed outside the cache ---------------------------


@pytest.mark.parametrize("form", ["absolute", "climbing"])
def test_a_damaged_entry_naming_a_file_outside_the_cache_neither_reads_nor_removes_it(
    project: Path, cache_dir: Path, victim: Path, form: str
) -> None:
    digest = warm(project)
    name = str(victim) if form == "absolute" else "../" * 12 + str(victim).lstrip("/")
    forge_row(
        cache_dir, "entries", archive_row(cache_dir, digest), mode=MODE_BINARY, filename=name, value=None
    )
    shutil.rmtree("build")  # the hit needs the archive: it is found damaged and dropped

    result = run()
    assert victim.read_text() == "precious\n"
    said = warnings_of(result.stderr)
    assert len(said) == 1, result.stderr
    assert "gen" in said[0]
    assert_gen_ran_again()
    assert victim.read_text() == "precious\n"


@pytest.mark.parametrize("store", ["entries", "index"])
def test_cache_clear_removes_no_file_outside_the_cache(
    project: Path, cache_dir: Path, victim: Path, store: str
) -> None:
    warm(project)
    add_row(cache_dir, store, key="planted", raw=1, mode=MODE_TEXT, filename=str(victim), value=None)
    add_row(cache_dir, store, key="planted-2", raw=1, mode=MODE_TEXT, filename="../../" + "x" * 3, value=None)
    result = invoke("cache", "clear")
    assert result.exit_code == 0, result.output + result.stderr
    assert victim.read_text() == "precious\n"
    run()
    assert statuses()["gen"] == "passed"  # cleared: every step ran again
    assert victim.read_text() == "precious\n"


def test_a_value_file_behind_a_symlink_is_not_read_or_removed(
    project: Path, cache_dir: Path, victim: Path
) -> None:
    digest = warm(project)
    rowid = archive_row(cache_dir, digest)
    with database(cache_dir, "entries") as db:
        (name,) = db.execute("SELECT filename FROM Cache WHERE rowid = ?", (rowid,)).fetchone()
    value_file = cache_dir / "entries" / name
    value_file.unlink()
    value_file.symlink_to(victim)  # a name of the right shape, leading out
    shutil.rmtree("build")

    result = run()
    assert len(warnings_of(result.stderr)) == 1, result.stderr
    assert_gen_ran_again()
    assert invoke("cache", "clear").exit_code == 0
    assert victim.read_text() == "precious\n"


# --- a restore writes nothing but the step's declared outputs ---------------------------------


def forged_archive(*members: tuple[str, bytes, bytes, str]) -> bytes:
    """A tar of (name, type, content, link target) members, with gen's good log and output first."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, kind, content, target in (
            ("log", tarfile.REGTYPE, b"forged\n", ""),
            ("files/build/gen.txt", tarfile.REGTYPE, b"alpha\nbeta\n", ""),
            *members,
        ):
            info = tarfile.TarInfo(name)
            info.type = kind
            info.linkname = target
            info.mode = 0o755
            info.size = len(content) if info.isreg() else 0
            tar.addfile(info, io.BytesIO(content) if info.isreg() else None)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("name", "kind", "target", "named"),
    [
        ("files/.git/hooks/pre-commit", tarfile.REGTYPE, "", "'.git/hooks/pre-commit'"),
        ("files/src/a.txt", tarfile.REGTYPE, "", "'src/a.txt'"),  # an input, not an output
        ("files/build/other.txt", tarfile.REGTYPE, "", "'build/other.txt'"),  # beside the output
        ("files/../escaped.txt", tarfile.REGTYPE, "", "'../escaped.txt'"),
        ("files//tmp/ci-orchestrator-escaped.txt", tarfile.REGTYPE, "", "absolute"),
        ("files/build/gen.txt", tarfile.SYMTYPE, "/etc/passwd", "'files/build/gen.txt'"),
        ("files/build/gen.txt", tarfile.LNKTYPE, "/etc/passwd", "'files/build/gen.txt'"),
        ("files/build/gen.txt", tarfile.CHRTYPE, "", "'files/build/gen.txt'"),
        ("files/build", tarfile.DIRTYPE, "", "'files/build'"),
    ],
    ids=["git-hook", "input", "undeclared", "dotdot", "absolute", "symlink", "hardlink", "device", "dir"],
)
def test_a_stored_archive_writes_nothing_but_the_declared_outputs(
    project: Path, cache_dir: Path, name: str, kind: bytes, target: str, named: str
) -> None:
    digest = warm(project)
    Path(".git/hooks").mkdir(parents=True)
    before = workspace_files()
    rowid = archive_row(cache_dir, digest)
    with database(cache_dir, "entries") as db:
        (value_name,) = db.execute("SELECT filename FROM Cache WHERE rowid = ?", (rowid,)).fetchone()
    archive = forged_archive((name, kind, b"#!/bin/sh\necho owned\n", target))
    (cache_dir / "entries" / value_name).write_bytes(archive)
    shutil.rmtree("build")  # the hit needs the archive

    result = run()
    refused = [line for line in warnings_of(result.stderr) if "refused" in line]
    assert len(refused) == 1, result.stderr
    assert "gen" in refused[0]
    assert named in refused[0]
    assert workspace_files() == before  # nothing but gen's own output was written, by gen itself
    assert not (project.parent / "escaped.txt").exists()
    assert not Path("/tmp/ci-orchestrator-escaped.txt").exists()
    assert_gen_ran_again()


def test_an_entry_naming_files_outside_the_declared_outputs_is_not_served(
    project: Path, cache_dir: Path
) -> None:
    """An entry whose outputs are in place is served from the index alone: the files it names must
    be the step's declared outputs, or it could pass off any file as the step's result."""
    digest = warm(project)
    with database(cache_dir, "index") as db:
        (value,) = db.execute("SELECT value FROM Cache WHERE key = ?", ("entry:" + digest,)).fetchone()
        entry = json.loads(value)
        state = entry["outputs"]["build/gen.txt"]
        entry["files"] = ["src/a.txt"]  # an input file, in place, as stored
        entry["outputs"] = {"src/a.txt": [digests_of("src/a.txt"), Path("src/a.txt").stat().st_mode & 0o777]}
        assert state
        db.execute("UPDATE Cache SET value = ? WHERE key = ?", (json.dumps(entry), "entry:" + digest))
    shutil.rmtree("build")

    result = run()
    said = warnings_of(result.stderr)
    assert len(said) == 1 and "gen" in said[0] and "'src/a.txt'" in said[0], result.stderr
    assert_gen_ran_again()


def digests_of(name: str) -> str:
    from ci_orchestrator.cache.digests import digest_file

    return digest_file(name)


# --- the stores' own settings ------------------------------------------------------------------


def test_a_setting_planted_in_a_store_does_not_point_the_cache_elsewhere(
    project: Path, cache_dir: Path, tmp_path: Path
) -> None:
    """diskcache applies every row of a store's Settings table: `_directory` would point it at
    another database, `sqlite_*` rows run PRAGMAs. Only its own settings are taken."""
    warm(project)
    other = tmp_path / "other"
    other.mkdir()
    with database(cache_dir, "index") as db:
        db.execute("INSERT INTO Settings VALUES ('_directory', ?)", (str(other),))
        db.execute("INSERT INTO Settings VALUES ('sqlite_temp_store_directory', ?)", (f"'{other}'",))
    run()
    assert statuses()["gen"] == "cached"
    assert invoke("cache", "clear").exit_code == 0
    assert list(other.iterdir()) == []


@pytest.mark.parametrize("planted", ["store folder", "database", "journal"])
def test_a_symlink_in_the_cache_folder_is_not_followed(
    project: Path, cache_dir: Path, tmp_path: Path, victim: Path, planted: str
) -> None:
    warm(project)
    other = tmp_path / "other"
    other.mkdir()
    if planted == "store folder":
        shutil.rmtree(cache_dir / "index")
        (cache_dir / "index").symlink_to(other)
    elif planted == "database":
        (cache_dir / "index" / "cache.db").unlink()
        (cache_dir / "index" / "cache.db").symlink_to(victim)
    else:
        (cache_dir / "index" / "cache.db-wal").unlink(missing_ok=True)
        (cache_dir / "index" / "cache.db-wal").symlink_to(victim)
    result = run()
    said = warnings_of(result.stderr)
    assert len(said) == 1 and "unusable" in said[0], result.stderr
    assert list(other.iterdir()) == []
    assert victim.read_text() == "precious\n"


@pytest.mark.parametrize(
    "step_files",
    [
        {"outputs": {}, "env": {"NODE_OPTIONS": "--require /tmp/evil.js"}, "path": [], "summary": ""},
        {"outputs": {}, "env": {"LD_PRELOAD\u0000": "x"}, "path": [], "summary": ""},
        {"outputs": {"v": 1}, "env": {}, "path": [], "summary": ""},
        {"outputs": {}, "env": {}, "path": [""], "summary": ""},
        {"outputs": {}, "env": {}, "path": [], "summary": "x" * (1024 * 1024 + 1)},
        "not an object",
    ],
    ids=["refused-name", "nul", "not-text", "empty-folder", "oversized", "not-an-object"],
)
def test_what_a_step_handed_on_is_checked_as_reading_its_files_checks_it(
    project: Path, cache_dir: Path, step_files: object
) -> None:
    """A stored result gives back a step's outputs and environment: one that a step's files
    could not have given (a name GitHub refuses, a NUL, a value that is not text, past the
    limits) is not served."""
    digest = warm(project)
    with database(cache_dir, "index") as db:
        (value,) = db.execute("SELECT value FROM Cache WHERE key = ?", ("entry:" + digest,)).fetchone()
        entry = json.loads(value)
        assert entry["step_files"] == {"outputs": {}, "env": {}, "path": [], "summary": ""}
        entry["step_files"] = step_files
        db.execute("UPDATE Cache SET value = ? WHERE key = ?", (json.dumps(entry), "entry:" + digest))
    run()
    assert_gen_ran_again()
