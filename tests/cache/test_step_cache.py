"""The step cache against real files, real cache directories and real concurrent processes."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import textwrap
from pathlib import Path
from typing import Any

import diskcache
import pytest

from ci_orchestrator.cache import digests
from ci_orchestrator.cache.step_cache import CacheKey, StepCache
from ci_orchestrator.errors import Location
from ci_orchestrator.plan.ordering import build_plan
from ci_orchestrator.playbook.model import Instance, Step
from tests.helpers import REPO, playbook


def instance(
    step_id: str = "build",
    *,
    run: str | None = "make all",
    command: tuple[str, ...] | None = None,
    script: str | None = None,
    args: tuple[str, ...] = (),
    inputs: tuple[str, ...] = ("src/**/*.py",),
    outputs: tuple[str, ...] = (),
    cache: bool | None = None,
    env: dict[str, str] | None = None,
    matrix: dict[str, Any] | None = None,
    shell: str = "bash",
    working_directory: str = ".",
) -> Instance:
    if command is not None or script is not None:
        run = None
    step = Step(
        id=step_id,
        name=step_id,
        location=Location(file="playbooks/ci.yml", line=1),
        run=run,
        command=command,
        script=script,
        args=args,
        shell=shell,
        inputs=inputs,
        outputs=outputs,
        cache=cache,
    )
    values = matrix or {}
    instance_id = f"{step_id} ({', '.join(map(str, values.values()))})" if values else step_id
    return Instance(
        id=instance_id,
        step=step,
        matrix=values,
        name=step_id,
        run=run,
        command=command,
        args=args,
        env=env or {},
        working_directory=working_directory,
        timeout=None,
        continue_on_error=False,
    )


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    (root / "src" / "pkg").mkdir(parents=True)
    (root / "src" / "main.py").write_text("print('main')\n")
    (root / "src" / "pkg" / "util.py").write_text("VALUE = 1\n")
    (root / "README.md").write_text("readme\n")
    return root


def open_cache(workspace: Path, **options: Any) -> StepCache:
    directory = options.pop("directory", workspace / ".ci-orchestrator" / "cache")
    return StepCache.open(directory, workspace=workspace, **options)


def build_outputs(workspace: Path) -> dict[str, bytes]:
    (workspace / "dist" / "bin").mkdir(parents=True, exist_ok=True)
    files = {
        "dist/app.whl": bytes(range(256)) * 400,  # large enough to live in its own file
        "dist/bin/run": b"#!/bin/sh\necho run\n",
    }
    for name, content in files.items():
        (workspace / name).write_bytes(content)
    (workspace / "dist" / "bin" / "run").chmod(0o755)
    (workspace / "dist" / "app.whl").chmod(0o640)
    return files


def key_in_run(cache: StepCache, item: Instance, *before: Instance) -> CacheKey | None:
    """The key a run gives `item` when it is planned after the instances `before`, as the
    scheduler asks for it (None for an instance that is not cacheable, or a cache that is off)."""
    book = playbook(*(earlier.step for earlier in before), item.step)  # serial: each waits for those before
    return cache.key_in_plan(build_plan(book, [*before, item]), {}, item)


def stored(cache: StepCache, workspace: Path, item: Instance, log_text: str = "built\n") -> str:
    key = key_in_run(cache, item)
    assert key is not None
    log = workspace.parent / "logs" / f"{item.step.id}.log"
    log.parent.mkdir(exist_ok=True)
    log.write_text(log_text)
    cache.store(key, item, log_path=log, duration=1.5)
    return key.digest


# --- store, lookup, restore -------------------------------------------------------------


def test_warm_hit_restores_outputs_byte_for_byte_with_modes_and_the_log(
    workspace: Path, warned: list[str]
) -> None:
    item = instance(outputs=("dist/**",))
    files = build_outputs(workspace)
    with open_cache(workspace) as cache:
        key = key_in_run(cache, item)
        assert key is not None
        assert cache.lookup(key) is None
        stored(cache, workspace, item, log_text="compiled 2 files\n")

    shutil.rmtree(workspace / "dist")
    with open_cache(workspace) as cache:
        key = key_in_run(cache, item)
        assert key is not None
        entry = cache.lookup(key)
        assert entry is not None
        assert entry.files == ("dist/app.whl", "dist/bin/run")
        assert cache.explain(item, key) == []
        restored_log = workspace.parent / "restored.log"
        assert cache.take(key, log_path=restored_log) == entry
        assert warned == []

    for name, content in files.items():
        assert (workspace / name).read_bytes() == content
    assert (workspace / "dist/bin/run").stat().st_mode & 0o777 == 0o755
    assert (workspace / "dist/app.whl").stat().st_mode & 0o777 == 0o640
    assert restored_log.read_text() == "compiled 2 files\n"


def test_take_serves_a_hit_from_the_archive_then_from_the_outputs_in_place(
    workspace: Path, warned: list[str]
) -> None:
    item = instance(outputs=("dist/**",))
    files = build_outputs(workspace)
    logs = workspace.parent
    with open_cache(workspace) as cache:
        key = key_in_run(cache, item)
        assert key is not None
        assert cache.take(key, log_path=logs / "miss.log") is None
        stored(cache, workspace, item, log_text="compiled 2 files\n")

    (workspace / "dist" / "bin" / "run").unlink()
    with open_cache(workspace) as cache:
        key = key_in_run(cache, item)
        assert key is not None
        restored = cache.take(key, log_path=logs / "restored.log")  # from the archive
        in_place = cache.take(key, log_path=logs / "in-place.log")  # every output there now
        assert restored is not None and in_place is not None
        assert restored.files == in_place.files == ("dist/app.whl", "dist/bin/run")
        assert warned == []

    for name, content in files.items():
        assert (workspace / name).read_bytes() == content
    assert (workspace / "dist/bin/run").stat().st_mode & 0o777 == 0o755
    assert (logs / "restored.log").read_text() == (logs / "in-place.log").read_text() == "compiled 2 files\n"
    assert not (logs / "miss.log").exists()


def test_a_step_without_inputs_or_cache_flag_is_not_cacheable(workspace: Path) -> None:
    with open_cache(workspace) as cache:
        assert key_in_run(cache, instance(inputs=())) is None
        assert key_in_run(cache, instance(inputs=(), cache=True)) is not None


def test_force_stores_but_never_finds(workspace: Path) -> None:
    item = instance()
    with open_cache(workspace, read=False) as cache:
        digest = stored(cache, workspace, item)
        key = key_in_run(cache, item)
        assert key is not None and key.digest == digest
        assert cache.lookup(key) is None
    with open_cache(workspace) as cache:
        assert cache.lookup(key) is not None


# --- what the key is made of ------------------------------------------------------------


def key_of(workspace: Path, item: Instance) -> str:
    # A fresh cache each time: nothing remembered from an earlier call can hide a change.
    with open_cache(workspace) as cache:
        key = key_in_run(cache, item)
        assert key is not None
        return key.digest


def test_changing_one_input_file_changes_the_key_and_explain_names_it(workspace: Path) -> None:
    item = instance()
    with open_cache(workspace) as cache:
        stored(cache, workspace, item)
    before = key_of(workspace, item)
    (workspace / "src" / "pkg" / "util.py").write_text("VALUE = 2\n")
    assert key_of(workspace, item) != before
    with open_cache(workspace) as cache:
        key = key_in_run(cache, item)
        assert cache.explain(item, key) == ["input src/pkg/util.py changed"]


def test_a_file_outside_the_inputs_does_not_change_the_key(workspace: Path) -> None:
    item = instance()
    before = key_of(workspace, item)
    (workspace / "README.md").write_text("other\n")
    (workspace / "src" / "notes.txt").write_text("not python\n")
    assert key_of(workspace, item) == before


@pytest.mark.parametrize(
    ("changed", "reason"),
    [
        ({"env": {"MODE": "release"}}, "env MODE changed"),
        ({"matrix": {"python": "3.12"}}, "matrix value python changed"),
        ({"run": "make other"}, "the command changed"),
        ({"shell": "sh"}, "the shell changed (bash -> sh)"),
        ({"working_directory": "src"}, "the working directory changed (. -> src)"),
        ({"outputs": ("dist/**",)}, "the outputs globs changed ([] -> ['dist/**'])"),
    ],
)
def test_env_matrix_command_shell_directory_and_outputs_are_in_the_key(
    workspace: Path, changed: dict[str, Any], reason: str
) -> None:
    base: dict[str, Any] = {"env": {"MODE": "debug"}, "matrix": {"python": "3.11"}}
    item = instance(**base)
    with open_cache(workspace) as cache:
        stored(cache, workspace, item)
    other = instance(**{**base, **changed})
    assert key_of(workspace, other) != key_of(workspace, item)
    with open_cache(workspace) as cache:
        lines = cache.explain(other, key_in_run(cache, other))
    if "matrix" in changed:
        assert lines == ["no stored success"]  # another matrix value is another instance
    else:
        assert lines == [reason]


def test_env_values_are_not_kept_in_the_cache(workspace: Path) -> None:
    item = instance(env={"TOKEN": "s3cr3t-value"})
    with open_cache(workspace) as cache:
        stored(cache, workspace, item)
    for path in (workspace / ".ci-orchestrator" / "cache").rglob("*"):
        if path.is_file():
            assert b"s3cr3t-value" not in path.read_bytes()


def test_command_argv_and_script_content_are_in_the_key(workspace: Path) -> None:
    argv = instance(command=("python", "-m", "build"))
    assert key_of(workspace, argv) != key_of(workspace, instance(command=("python", "-m", "pytest")))
    script = workspace / "scripts" / "0100_build.sh"
    script.parent.mkdir()
    script.write_text("echo one\n")
    item = instance(script="scripts/0100_build.sh", args=("--fast",))
    before = key_of(workspace, item)
    assert key_of(workspace, instance(script="scripts/0100_build.sh", args=("--slow",))) != before
    script.write_text("echo two\n")
    assert key_of(workspace, item) != before


def test_a_glob_gaining_a_file_changes_the_key(workspace: Path) -> None:
    item = instance(inputs=("src/**/*.py", "config/*.toml"))
    (workspace / "config").mkdir()
    (workspace / "config" / "base.toml").write_text("")
    with open_cache(workspace) as cache:
        stored(cache, workspace, item)
    before = key_of(workspace, item)
    (workspace / "src" / "pkg" / "deep").mkdir()
    (workspace / "src" / "pkg" / "deep" / "new.py").write_text("")
    after_python = key_of(workspace, item)
    assert after_python != before
    (workspace / "config" / "app.toml").write_text("")
    assert key_of(workspace, item) != after_python
    with open_cache(workspace) as cache:
        lines = cache.explain(item, key_in_run(cache, item))
    assert lines == ["input config/app.toml added", "input src/pkg/deep/new.py added"]


def test_a_glob_sees_files_created_during_the_run(workspace: Path) -> None:
    # Keys are taken as instances become ready; an upstream step may have just written inputs.
    item = instance(inputs=("src/**/*.py",))
    with open_cache(workspace) as cache:
        first = key_in_run(cache, item)
        (workspace / "src" / "pkg" / "generated.py").write_text("X = 1\n")
        second = key_in_run(cache, item)
        (workspace / "src" / "main.py").write_text("print('changed')\n")
        third = key_in_run(cache, item)
    assert first is not None and second is not None and third is not None
    assert len({first.digest, second.digest, third.digest}) == 3
    assert "src/pkg/generated.py" in second.manifest.inputs


def test_glob_forms(workspace: Path) -> None:
    (workspace / ".hidden.py").write_text("")
    (workspace / ".git").mkdir()
    (workspace / ".git" / "HEAD.py").write_text("")
    with open_cache(workspace) as cache:
        stored(cache, workspace, instance())  # the cache's own files are in the workspace now

        def manifest(*globs: str) -> Any:
            key = key_in_run(cache, instance(inputs=globs))
            assert key is not None
            return key.manifest

        assert set(manifest("**/*.py").inputs) == {".hidden.py", "src/main.py", "src/pkg/util.py"}
        assert set(manifest("**").inputs) == {".hidden.py", "README.md", "src/main.py", "src/pkg/util.py"}
        assert set(manifest(".git/*").inputs) == {".git/HEAD.py"}  # named, not wildcarded
        assert set(manifest("src/*.py").inputs) == {"src/main.py"}
        assert set(manifest("src").inputs) == {"src/main.py", "src/pkg/util.py"}
        assert set(manifest("src/**").inputs) == {"src/main.py", "src/pkg/util.py"}
        assert set(manifest("src/p?g/[a-u]til.py").inputs) == {"src/pkg/util.py"}
        assert set(manifest("./README.md").inputs) == {"README.md"}
        assert set(manifest("nothing/*.py").inputs) == set()


def test_upstream_keys_are_in_the_key_and_explain_names_the_upstream(workspace: Path) -> None:
    item = instance("test", run="make test")
    with open_cache(workspace) as cache:
        key = key_in_run(cache, item, instance("build", run="make all"))
        assert key is not None
        cache.store(key, item, log_path=workspace / "missing.log", duration=0.1)
        again = key_in_run(cache, item, instance("build", run="make all"))
        assert again is not None and again.digest == key.digest
        changed = key_in_run(cache, item, instance("build", run="make other"))
        assert changed is not None and changed.digest != key.digest
        assert cache.explain(item, changed) == ["upstream build changed"]
        # A step that is not cacheable itself still keys what comes after it.
        uncached = key_in_run(cache, item, instance("build", run="make other", inputs=()))
        assert uncached is not None and uncached.digest not in {key.digest, changed.digest}
        assert cache.explain(item, uncached) == ["upstream build changed"]


def test_a_relocated_checkout_keeps_its_keys_and_hits(workspace: Path, tmp_path: Path) -> None:
    item = instance(inputs=("**/*.py", "*.md"), outputs=("dist/**",))
    build_outputs(workspace)
    with open_cache(workspace) as cache:
        digest = stored(cache, workspace, item)
    moved = tmp_path / "elsewhere" / "checkout"
    shutil.copytree(workspace, moved, symlinks=True)
    shutil.rmtree(moved / "dist")
    with open_cache(moved) as cache:
        key = key_in_run(cache, item)
        assert key is not None and key.digest == digest
        entry = cache.take(key, log_path=tmp_path / "moved.log")
        assert entry is not None
    assert (moved / "dist" / "bin" / "run").read_bytes() == (workspace / "dist" / "bin" / "run").read_bytes()
    assert str(workspace) not in json.dumps(key.manifest.to_json())


def test_an_unchanged_file_is_not_read_again(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(digests, "RACY_WINDOW_NS", 0)  # the files were written just now
    item = instance()
    before = key_of(workspace, item)

    def no_read(path: object) -> str:
        raise AssertionError(f"{path} was read again")

    monkeypatch.setattr(digests, "digest_file", no_read)
    assert key_of(workspace, item) == before  # a new run: the digests came from the memo


def test_content_changed_behind_the_same_size_mtime_and_inode_changes_the_key(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`cp -p` of a same-size file with the same mtime writes into the same inode and puts the
    mtime back: only the change time tells."""
    monkeypatch.setattr(digests, "RACY_WINDOW_NS", 0)
    target, twin = workspace / "src" / "main.py", workspace / "twin.py"
    twin.write_bytes(target.read_bytes().replace(b"main", b"MAIN"))
    old = 1_600_000_000_000_000_000
    for path in (target, twin):
        os.utime(path, ns=(old, old))
    item = instance()
    before = key_of(workspace, item)
    inode = target.stat().st_ino
    subprocess.run(["cp", "-p", str(twin), str(target)], check=True)
    assert (target.stat().st_size, target.stat().st_mtime_ns, target.stat().st_ino) == (
        twin.stat().st_size,
        old,
        inode,
    )
    assert key_of(workspace, item) != before


# --- a cache that cannot be used --------------------------------------------------------


def _damage(store: Path) -> None:
    """Overwrites a diskcache store's database with junk (and drops its journal)."""
    (store / "cache.db").write_bytes(b"this is not a database" * 100)
    for suffix in ("-wal", "-shm"):
        (store / f"cache.db{suffix}").unlink(missing_ok=True)


@pytest.mark.parametrize("store", ["index", "entries"])
def test_a_corrupt_store_is_one_warning_and_the_cache_is_off(
    workspace: Path, tmp_path: Path, warned: list[str], store: str
) -> None:
    directory = tmp_path / "cache"
    item = instance()
    with open_cache(workspace, directory=directory) as cache:
        stored(cache, workspace, item)
    _damage(directory / store)
    with open_cache(workspace, directory=directory) as cache:
        if store == "entries":
            assert cache.enabled  # the archive store is opened when first needed, not before
            key = key_in_run(cache, item)
            assert key is not None
            assert cache.lookup(key) is not None  # served in place: no archive to read
            assert warned == []
        else:
            assert not cache.enabled  # the index is opened with the cache
        assert cache.stats().entries == 0  # counting archives opens the archive store
        assert not cache.enabled
        assert len(warned) == 1
        assert str(directory) in warned[0]
        assert key_in_run(cache, item) is None
        cache.record(1, 1)
        assert len(warned) == 1


def test_a_pickled_value_in_the_index_is_refused_never_loaded(
    workspace: Path, tmp_path: Path, warned: list[str]
) -> None:
    directory = tmp_path / "cache"
    item = instance()
    with open_cache(workspace, directory=directory) as cache:
        digest = stored(cache, workspace, item)
    index = diskcache.Cache(str(directory / "index"))  # diskcache's default Disk pickles
    index.set("entry:" + digest, {"planted": True})
    index.close()
    with open_cache(workspace, directory=directory) as cache:
        key = key_in_run(cache, item)
        assert key is not None
        assert cache.lookup(key) is None  # a miss, and forgotten: the step runs and stores anew
        assert cache.enabled
        assert len(warned) == 1
        assert "build" in warned[0] and "pickled" in warned[0]
        stored(cache, workspace, item)
        assert cache.lookup(key) is not None


def test_a_cache_dir_that_cannot_be_created_is_a_warning(
    workspace: Path, tmp_path: Path, warned: list[str]
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    cache = open_cache(workspace, directory=blocker / "cache")
    assert not cache.enabled
    assert len(warned) == 1
    assert key_in_run(cache, instance()) is None
    cache.close()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through permissions")
def test_a_read_only_cache_dir_is_a_warning(workspace: Path, tmp_path: Path, warned: list[str]) -> None:
    directory = tmp_path / "readonly"
    directory.mkdir()
    directory.chmod(0o500)
    try:
        cache = open_cache(workspace, directory=directory)
        assert not cache.enabled
        assert len(warned) == 1
        cache.close()
    finally:
        directory.chmod(0o700)


def test_a_damaged_archive_is_refused_and_dropped(workspace: Path, warned: list[str]) -> None:
    item = instance(outputs=("dist/**",))
    build_outputs(workspace)
    with open_cache(workspace) as cache:
        digest = stored(cache, workspace, item)
    shutil.rmtree(workspace / "dist")  # outputs in place would be served without the archive
    entries = diskcache.Cache(str(workspace / ".ci-orchestrator/cache/entries"), disk=diskcache.JSONDisk)
    entries.set("data:" + digest, io.BytesIO(b"\x00garbage" * 1000), read=True)
    entries.close()
    with open_cache(workspace) as cache:
        key = key_in_run(cache, item)
        assert key is not None
        assert cache.lookup(key) is not None
        assert cache.take(key, log_path=workspace.parent / "x.log") is None  # the step runs
        assert len(warned) == 1
        assert warned[0].startswith("build: cached result ")
        assert cache.lookup(key) is None  # dropped: the next run stores a good one
        assert cache.enabled


def test_a_result_with_an_output_outside_the_workspace_is_not_stored(
    workspace: Path, tmp_path: Path, warned: list[str]
) -> None:
    (tmp_path / "sibling").mkdir()
    (tmp_path / "sibling" / "artifact.bin").write_bytes(b"outside")
    (tmp_path / "sibling" / "other.bin").write_bytes(b"outside too")
    item = instance(outputs=("dist/**", "../sibling/*.bin"))
    build_outputs(workspace)
    with open_cache(workspace) as cache:
        stored(cache, workspace, item)
        key = key_in_run(cache, item)
        assert key is not None
        assert cache.lookup(key) is None  # a hit would never make the outside files again
        assert warned == [
            "build: result not cached: output '../sibling/artifact.bin' climbs out of the workspace"
            " with '..' (and 1 more)"
        ]


@pytest.mark.parametrize(
    ("output", "stored_as"),
    [
        ("dist/../dist/app.whl", "dist/app.whl"),
        ("./dist//bin/../app.whl", "dist/app.whl"),
        ("{workspace}/dist/app.whl", "dist/app.whl"),
        ("{link}/dist/app.whl", "dist/app.whl"),  # the workspace through a symlink to it
        ("{workspace}/dist/*.whl", "dist/app.whl"),
    ],
)
def test_output_paths_are_normalised_when_stored(
    workspace: Path,
    tmp_path: Path,
    output: str,
    stored_as: str,
    warned: list[str],
) -> None:
    (tmp_path / "link").symlink_to(workspace)
    item = instance(outputs=(output.format(workspace=workspace, link=tmp_path / "link"),))
    build_outputs(workspace)
    with open_cache(workspace) as cache:
        stored(cache, workspace, item)
        key = key_in_run(cache, item)
        assert key is not None
        entry = cache.lookup(key)
        assert entry is not None and entry.files == (stored_as,)
        (workspace / stored_as).unlink()
        assert cache.take(key, log_path=tmp_path / "restored.log") == entry
        assert (workspace / stored_as).read_bytes() == bytes(range(256)) * 400
        assert warned == []


@pytest.mark.parametrize(
    ("output", "message"),
    [
        ("dist/../../outside/x.txt", "'../outside/x.txt' climbs out of the workspace with '..'"),
        ("{outside}/x.txt", "'{outside}/x.txt' is an absolute path, outside the workspace"),
        ("out/x.txt", "'out/x.txt' leads outside the workspace through a symlink"),
    ],
)
def test_an_output_a_restore_would_refuse_is_refused_when_stored(
    workspace: Path,
    tmp_path: Path,
    output: str,
    message: str,
    warned: list[str],
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "x.txt").write_text("outside\n")
    (workspace / "dist").mkdir()
    (workspace / "out").symlink_to(outside)
    item = instance(outputs=(output.format(outside=outside),))
    with open_cache(workspace) as cache:
        stored(cache, workspace, item)
        key = key_in_run(cache, item)
        assert key is not None and cache.lookup(key) is None
        assert warned == [f"build: result not cached: output {message.format(outside=outside)}"]


# --- path escapes -----------------------------------------------------------------------


def plant_archive(workspace: Path, digest: str, members: list[tuple[tarfile.TarInfo, bytes]]) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, content in members:
            info.size = len(content) if info.isreg() else 0
            tar.addfile(info, io.BytesIO(content) if info.isreg() else None)
    buffer.seek(0)
    entries = diskcache.Cache(str(workspace / ".ci-orchestrator/cache/entries"), disk=diskcache.JSONDisk)
    entries.set("data:" + digest, buffer, read=True)
    entries.close()


def member(name: str, kind: bytes = tarfile.REGTYPE, target: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    info.mode = 0o644
    return info


@pytest.mark.parametrize(
    ("bad", "named"),
    [
        (member("files//tmp/escaped-absolute"), "'/tmp/escaped-absolute'"),
        (member("files/../escaped-parent"), "'../escaped-parent'"),
        (member("files/dist/../../escaped-deep"), "'dist/../../escaped-deep'"),
        (member("files/dist/link", tarfile.SYMTYPE, "/etc/passwd"), "'files/dist/link'"),
    ],
)
def test_members_leading_outside_the_workspace_are_refused_and_nothing_is_written(
    workspace: Path,
    bad: tarfile.TarInfo,
    named: str,
    warned: list[str],
) -> None:
    item = instance(outputs=("dist/**",))
    build_outputs(workspace)
    with open_cache(workspace) as cache:
        digest = stored(cache, workspace, item)
    shutil.rmtree(workspace / "dist")  # outputs in place would be served without the archive
    plant_archive(
        workspace, digest, [(member("log"), b"log\n"), (member("files/dist/ok.txt"), b"ok"), (bad, b"x")]
    )
    log = workspace.parent / "refused.log"
    with open_cache(workspace) as cache:
        key = key_in_run(cache, item)
        assert key is not None
        assert cache.lookup(key) is not None
        assert cache.take(key, log_path=log) is None  # the step runs
        assert len(warned) == 1
        assert warned[0].startswith("build: cached result refused: ")
        assert named in warned[0]
        assert cache.lookup(key) is None  # dropped
    assert not (workspace / "dist").exists()
    assert not log.exists()
    assert not (workspace.parent / "escaped-parent").exists()
    assert not Path("/tmp/escaped-absolute").exists()


def test_a_member_is_refused_when_a_symlinked_directory_leads_out(
    workspace: Path, tmp_path: Path, warned: list[str]
) -> None:
    item = instance(outputs=("out/**",))
    (workspace / "out").mkdir()
    (workspace / "out" / "report.txt").write_text("stored\n")
    with open_cache(workspace) as cache:
        stored(cache, workspace, item)
    outside = tmp_path / "outside"
    outside.mkdir()
    shutil.rmtree(workspace / "out")
    (workspace / "out").symlink_to(outside)
    with open_cache(workspace) as cache:
        key = key_in_run(cache, item)
        assert key is not None
        assert cache.lookup(key) is not None
        assert cache.take(key, log_path=tmp_path / "log") is None  # the step runs
        assert len(warned) == 1
        assert re.search(r"'out/report\.txt' leads outside .* through a symlink", warned[0])
    assert list(outside.iterdir()) == []


# --- stats and upkeep -------------------------------------------------------------------


def test_stats_record_prune_and_clear(workspace: Path, warned: list[str]) -> None:
    with open_cache(workspace) as cache:
        for index in range(3):
            (workspace / "src" / "main.py").write_text(f"print({index})\n")
            stored(cache, workspace, instance(), log_text="x" * 50_000)
        cache.record(hits=2, misses=1)
        cache.record(hits=5, misses=0)
        stats = cache.stats()
        assert (stats.entries, stats.hits, stats.misses, stats.runs) == (3, 7, 1, 2)
        assert stats.size > 150_000
        assert cache.prune(stats.size) == 0
        removed = cache.prune(0)
        assert removed == 3
        assert cache.stats().entries == 0
        stored(cache, workspace, instance())
        cache.clear()
        after = cache.stats()
        assert (after.entries, after.runs) == (0, 0)
        assert warned == []


def test_the_oldest_used_results_go_first_when_the_size_limit_is_reached(workspace: Path) -> None:
    item = instance()
    digests = []
    with open_cache(workspace, size_limit=400_000) as cache:
        for index in range(8):
            (workspace / "src" / "main.py").write_text(f"print({index})\n")
            digests.append(stored(cache, workspace, item, log_text="y" * 100_000))
        stats = cache.stats()
        assert 0 < stats.entries < 8
        key = key_in_run(cache, item)
        assert key is not None and key.digest == digests[-1]
        assert cache.lookup(key) is not None  # the newest survives
        (workspace / "src" / "main.py").write_text("print(0)\n")
        oldest = key_in_run(cache, item)
        assert oldest is not None and oldest.digest == digests[0]
        assert cache.lookup(oldest) is None


def test_results_stored_by_a_run_that_never_closed_its_cache_are_ordered_by_when_stored(
    workspace: Path, warned: list[str]
) -> None:
    item = instance()
    cache = open_cache(workspace)
    digests = []
    for index in range(3):
        (workspace / "src" / "main.py").write_text(f"print({index})\n")
        digests.append(stored(cache, workspace, item, log_text="z" * 100_000))
    # Killed here: the uses of this run were never written, only each result's own metadata.
    with open_cache(workspace) as cache:
        assert cache.prune(cache.stats().size - 50_000) == 1
        found = []
        for index in range(3):
            (workspace / "src" / "main.py").write_text(f"print({index})\n")
            key = key_in_run(cache, item)
            assert key is not None and key.digest == digests[index]
            found.append(cache.lookup(key) is not None)
        assert found == [False, True, True]


# --- two processes ----------------------------------------------------------------------

WORKER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from ci_orchestrator import notices
    from ci_orchestrator.cache.step_cache import StepCache
    from ci_orchestrator.errors import Location
    from ci_orchestrator.plan.ordering import build_plan
    from ci_orchestrator.playbook.model import Instance, Playbook, Step

    workspace, directory, name = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
    warned = []
    notices.sent_to(warned.append).__enter__()  # for the whole of this process
    sys.stdin.readline()  # both start together
    log = workspace.parent / f"{name}.log"
    log.write_text(name * 1000)
    found = 0
    cache = StepCache.open(directory, workspace=workspace)
    for index in range(40):
        step = Step(id=f"s{index % 10}", name="s", location=Location(file="ci.yml"),
                    run=f"echo {index % 20}", inputs=("src/**/*.py",), outputs=("src/main.py",))
        item = Instance(id=step.id, step=step, matrix={}, name="s", run=step.run, env={},
                        working_directory=".", timeout=None, continue_on_error=False)
        book = Playbook(name="ci", path="ci.yml", location=step.location, steps=(step,))
        key = cache.key_in_plan(build_plan(book, [item]), {}, item)
        if cache.take(key, log_path=workspace.parent / f"{name}-restored.log") is None:
            cache.store(key, item, log_path=log, duration=0.1)
        else:
            found += 1
        cache.record(1, 0)
    cache.close()
    print(found, len(warned), *warned)
    """
)


def test_two_processes_share_a_cache_without_damage(
    workspace: Path, tmp_path: Path, warned: list[str]
) -> None:
    directory = tmp_path / "shared-cache"
    environment = {**os.environ, "PYTHONPATH": str(REPO)}
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(workspace), str(directory), name],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=environment,
        )
        for name in ("a", "b")
    ]
    for worker in workers:
        assert worker.stdin is not None
        worker.stdin.write("go\n")
        worker.stdin.flush()
    outputs = [worker.communicate(timeout=60) for worker in workers]
    for worker, (out, err) in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, err
        found, warnings = out.split()[:2]
        assert warnings == "0", out
        assert int(found) >= 20  # each of the 20 distinct keys is stored at most twice
    with open_cache(workspace, directory=directory) as cache:
        stats = cache.stats()
        assert stats.entries == 20
        assert (stats.runs, stats.hits) == (20, 20)  # the window of recent runs keeps the last 20
        assert warned == []
    assert (workspace / "src" / "main.py").read_text() == "print('main')\n"
