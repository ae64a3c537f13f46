"""The step cache as a user meets it: the CLI on a real workspace, real step processes, a real
cache directory; two real processes sharing one cache; tampered and damaged cache files."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import diskcache
import pytest

from ci_orchestrator.cache import digests
from ci_orchestrator.cache.disks import JSONTextDisk
from tests.e2e.cache_project import ran, run, statuses
from tests.helpers import cli_environment, invoke, run_cli, start_cli

CACHEABLE = ["gen", "pack", "docs", "check (3.11)", "check (3.12)"]
OUTPUTS = ["build/gen.txt", "dist/pack.bin", "site/index.html", "out/check-3.11.txt", "out/check-3.12.txt"]


def snapshot(paths: list[str]) -> dict[str, tuple[str, int]]:
    return {
        path: (hashlib.sha256(Path(path).read_bytes()).hexdigest(), Path(path).stat().st_mode & 0o777)
        for path in paths
    }


def write_playbook(text: str) -> None:
    """playbooks/ci.yml, named `edges`, with these keys."""
    Path("playbooks").mkdir(exist_ok=True)
    Path("playbooks/ci.yml").write_text("name: edges\n" + textwrap.dedent(text))


def plan_cache() -> dict[str, str | None]:
    """instance id -> `hit`, `miss` or None, as `plan` shows them now."""
    plan = json.loads(invoke("plan", "--format", "json").output)
    return {item["id"]: item["cache"] for item in plan["instances"]}


def warm(project: Path) -> None:
    """A cold run that stores every cacheable step."""
    run()
    assert set(statuses().values()) == {"passed"}
    ran()


# --- cold, warm, restore ------------------------------------------------------------------


def test_cold_run_stores_and_the_warm_rerun_takes_every_cacheable_step_from_the_cache(project: Path) -> None:
    run()
    assert statuses() == dict.fromkeys([*CACHEABLE, "always"], "passed")
    assert ran() == ["always", "check 3.11", "check 3.12", "docs", "gen", "pack"]

    result = invoke("run")  # the default console output, as a user reads it
    assert result.exit_code == 0, result.output
    assert statuses() == {**dict.fromkeys(CACHEABLE, "cached"), "always": "passed"}
    assert ran() == ["always"]  # a step without inputs is not cacheable: it always runs
    record = json.loads(Path(".ci-orchestrator/reports/run.json").read_text())
    assert all(step["cached"] for step in record["steps"] if step["id"] in CACHEABLE)
    assert record["status"] == "passed"
    # Nothing ran for them in this run: no exit code (SPEC: null when it never ran), no attempt.
    cached = [step for step in record["steps"] if step["id"] in CACHEABLE]
    assert {(step["exit_code"], step["attempts"]) for step in cached} == {(None, 0)}
    suite = ET.parse(".ci-orchestrator/reports/junit.xml").getroot().find("testsuite")
    assert suite is not None and suite.get("failures") == "0" and suite.get("errors") == "0"
    summary = Path(".ci-orchestrator/reports/summary.md").read_text(encoding="utf-8")
    assert f"💾 {len(CACHEABLE)} cached" in summary and "| 💾 cached | `gen` |" in summary
    for instance in CACHEABLE:
        assert any(line.split()[:2] == ["cached", instance.split()[0]] for line in result.output.splitlines())
    assert "5 cached" in result.output


def test_outputs_are_restored_byte_for_byte_with_their_modes_after_deletion(project: Path) -> None:
    warm(project)
    before = snapshot(OUTPUTS)
    assert before["dist/pack.bin"][1] == 0o750
    assert Path("dist/pack.bin").read_bytes().endswith(b"\x00\x01\xfe\xff")
    for folder in ("build", "dist", "site", "out"):
        shutil.rmtree(folder)

    run()
    assert ran() == ["always"]
    assert snapshot(OUTPUTS) == before
    assert Path("out/check-3.12.txt").read_text() == "plain fast 3.12\n"  # per-instance output glob


def test_a_cached_step_keeps_its_log(project: Path) -> None:
    warm(project)
    run()
    record = json.loads(Path(".ci-orchestrator/reports/run.json").read_text())
    gen = next(step for step in record["steps"] if step["id"] == "gen")
    assert gen["status"] == "cached"
    assert Path(gen["log"]).read_text() == "gen: 2 lines\n"


# --- what reruns -------------------------------------------------------------------------


def test_one_input_changed_reruns_that_step_and_what_depends_on_it_and_nothing_else(project: Path) -> None:
    warm(project)
    Path("src/a.txt").write_text("alpha, changed\n")
    run()
    assert ran() == ["always", "gen", "pack"]
    assert statuses() == {
        "gen": "passed",
        "pack": "passed",
        "docs": "cached",
        "check (3.11)": "cached",
        "check (3.12)": "cached",
        "always": "passed",
    }
    assert Path("dist/pack.bin").read_bytes().startswith(b"alpha, changed\nbeta\n")


def test_a_step_run_alone_or_in_a_shard_keeps_the_key_of_the_whole_run(project: Path) -> None:
    """`pack` waits for `gen`: run without it (`--only`, or a shard that left it out) it is still
    the step a whole run stored, and a change to gen's inputs still reaches it."""
    warm(project)
    run("--select", "pack", "--only")
    assert statuses() == {"pack": "cached"}
    for index in ("1/2", "2/2"):
        run("--shard", index)
        assert set(statuses().values()) <= {"cached", "passed"}
        assert all(status == "cached" for name, status in statuses().items() if name != "always")
    assert ran() == ["always"]  # in one of the shards
    Path("src/a.txt").write_text("alpha, changed\n")
    run("--select", "pack", "--only")
    assert statuses() == {"pack": "passed"}
    assert ran() == ["pack"]


def test_a_dependent_whose_inputs_come_out_the_same_is_still_cached(project: Path) -> None:
    warm(project)
    Path("docs/guide/start.md").write_text("## Guide, rewritten\n")
    run()
    assert ran() == ["always", "docs"]
    assert statuses()["gen"] == statuses()["pack"] == "cached"


def test_a_glob_gaining_a_file_reruns_the_step(project: Path) -> None:
    warm(project)
    Path("src/c.txt").write_text("gamma\n")
    run()
    assert ran() == ["always", "gen", "pack"]
    Path("docs/guide/more").mkdir()
    Path("docs/guide/more/deep.md").write_text("deep\n")  # `**` reaches any depth
    run()
    assert ran() == ["always", "docs"]


def test_an_env_value_changed_reruns_the_steps_that_see_it(project: Path) -> None:
    warm(project)
    run("--var", "MODE=thorough")  # MODE reaches only the check instances' env
    assert ran() == ["always", "check 3.11", "check 3.12"]
    assert Path("out/check-3.11.txt").read_text() == "plain thorough 3.11\n"
    run("--var", "MODE=thorough")
    assert ran() == ["always"]


def test_a_matrix_value_changed_reruns_only_the_new_instance(project: Path) -> None:
    warm(project)
    playbook = Path("playbooks/ci.yml")
    playbook.write_text(playbook.read_text().replace('["3.11", "3.12"]', '["3.11", "3.13"]'))
    run()
    assert ran() == ["always", "check 3.13"]
    assert statuses()["check (3.11)"] == "cached"


def test_a_changed_command_reruns_the_step(project: Path) -> None:
    warm(project)
    playbook = Path("playbooks/ci.yml")
    playbook.write_text(
        playbook.read_text().replace("find docs -type f | sort", "find docs -type f | sort -r")
    )
    run()
    assert ran() == ["always", "docs"]


def test_a_changed_command_of_a_needed_step_that_is_not_cached_reruns_its_dependents(workdir: Path) -> None:
    Path("test.txt").write_text("test input\n")
    book = """
        execution: parallel
        steps:
          - {id: build, run: "echo v1 > built.txt"}
          - {id: test, needs: [build], inputs: [test.txt], run: "cat built.txt >> seen.txt"}
          - {id: other, inputs: [test.txt], run: "echo other >> other.txt"}
        """
    write_playbook(book)
    run()
    run()
    assert statuses() == {"build": "passed", "test": "cached", "other": "cached"}
    write_playbook(book.replace("echo v1", "echo v2"))
    explained = invoke("cache", "explain", "test").output
    assert "test: will run" in explained
    assert "upstream build changed" in explained
    assert plan_cache() == {"build": None, "test": "miss", "other": "hit"}
    run()
    assert statuses() == {"build": "passed", "test": "passed", "other": "cached"}
    assert Path("seen.txt").read_text() == "v1\nv2\n"  # it ran on what the new build made
    run()
    assert statuses()["test"] == "cached"


def test_a_failed_step_is_never_stored(project: Path) -> None:
    playbook = Path("playbooks/ci.yml")
    playbook.write_text(playbook.read_text().replace("chmod 750 dist/pack.bin", "exit 3"))
    run(code=1)
    assert "pack" in ran()
    run(code=1)
    assert "pack" in ran()  # not taken from the cache: it ran, and failed, again
    assert statuses()["pack"] == "failed"
    assert statuses()["gen"] == "cached"


def test_cache_false_turns_caching_off_for_a_step_with_inputs(workdir: Path) -> None:
    Path("in.txt").write_text("input\n")
    write_playbook(
        """
        steps:
          - {id: x, inputs: [in.txt], cache: false, run: "echo ran >> ranx.log"}
          - {id: y, inputs: [in.txt], run: "echo ran >> rany.log"}
        """
    )
    run()
    run()
    assert statuses() == {"x": "passed", "y": "cached"}
    assert Path("ranx.log").read_text() == "ran\nran\n"
    assert Path("rany.log").read_text() == "ran\n"
    plan = json.loads(invoke("plan", "--format", "json").output)
    assert {item["id"]: item["cache"] for item in plan["instances"]} == {"x": None, "y": "hit"}
    assert "x  [" not in invoke("plan").output  # no cache note
    assert "`cache: false`" in invoke("cache", "explain", "x").output


def test_an_input_rewritten_with_its_size_mtime_and_inode_kept_reruns_the_step(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(digests, "RACY_WINDOW_NS", 0)  # its digest is remembered across runs
    old = 1_600_000_000_000_000_000
    for name, content in (("in.txt", "aaaa\n"), ("other.txt", "bbbb\n")):
        Path(name).write_text(content)
        os.utime(name, ns=(old, old))
    write_playbook(
        """
        steps:
          - {id: x, inputs: [in.txt], outputs: [out.txt], run: "cp in.txt out.txt; echo ran >> ranx.log"}
        """
    )
    run()
    run()
    assert statuses() == {"x": "cached"}
    subprocess.run(["cp", "-p", "other.txt", "in.txt"], check=True)
    assert Path("in.txt").stat().st_mtime_ns == old
    run()
    assert statuses() == {"x": "passed"}
    assert Path("out.txt").read_text() == "bbbb\n"
    assert Path("ranx.log").read_text() == "ran\nran\n"


@pytest.mark.parametrize("pattern", ["src/p*", "src/pkg"])
def test_a_directory_matched_by_an_input_glob_keys_the_step_by_every_file_below_it(
    workdir: Path, pattern: str
) -> None:
    Path("src/pkg/sub").mkdir(parents=True)
    Path("src/pkg/sub/deep.py").write_text("VALUE = 1\n")
    write_playbook(
        f"""
        steps:
          - {{id: x, inputs: ["{pattern}"], run: "echo ran >> ranx.log"}}
        """
    )
    run()
    run()
    assert statuses() == {"x": "cached"}
    Path("src/pkg/sub/deep.py").write_text("VALUE = 2\n")
    run()
    assert statuses() == {"x": "passed"}
    assert "input src/pkg/sub/deep.py changed" not in invoke("cache", "explain", "x").output  # stored now
    Path("src/pkg/new.py").write_text("NEW = 1\n")
    assert "input src/pkg/new.py added" in invoke("cache", "explain", "x").output
    assert Path("ranx.log").read_text() == "ran\nran\n"


# --- outputs ----------------------------------------------------------------------------


def test_outputs_written_with_dots_or_as_absolute_paths_inside_the_workspace_are_restored(
    workdir: Path,
) -> None:
    Path("sub").mkdir()
    Path("in.txt").write_text("input\n")
    write_playbook(
        f"""
        steps:
          - id: x
            inputs: [in.txt]
            outputs: ["sub/../o1.txt", "{workdir}/o2.txt", "./sub//o3.txt"]
            run: "echo one > o1.txt; echo two > o2.txt; echo three > sub/o3.txt; echo ran >> ranx.log"
        """
    )
    first = run()
    assert "warning" not in first.stderr, first.stderr
    for name in ("o1.txt", "o2.txt", "sub/o3.txt"):
        Path(name).unlink()
    for _ in range(2):
        assert plan_cache() == {"x": "hit"}
        result = run()
        assert "warning" not in result.stderr, result.stderr
        assert statuses() == {"x": "cached"}
    assert [Path(name).read_text() for name in ("o1.txt", "o2.txt", "sub/o3.txt")] == [
        "one\n",
        "two\n",
        "three\n",
    ]
    assert Path("ranx.log").read_text() == "ran\n"


def test_a_step_whose_output_leads_outside_the_workspace_is_not_stored_and_reruns(
    workdir: Path,
) -> None:
    Path("sub").mkdir()
    Path("in.txt").write_text("input\n")
    write_playbook(
        """
        steps:
          - id: x
            inputs: [in.txt]
            outputs: ["inside.txt", "sub/../../outside/x.txt"]
            run: "mkdir -p ../outside; echo made > ../outside/x.txt; echo in > inside.txt; echo r >> ranx.log"
        """
    )
    for count in (1, 2):
        result = run()
        warnings = [line for line in result.stderr.splitlines() if "warning" in line]
        assert len(warnings) == 1, result.stderr
        assert "x: result not cached: output '../outside/x.txt' climbs out of the workspace" in warnings[0]
        assert statuses() == {"x": "passed"}
        assert Path("ranx.log").read_text() == "r\n" * count
        assert plan_cache() == {"x": "miss"}
    Path("../outside/x.txt").unlink()
    run()
    assert Path("../outside/x.txt").read_text() == "made\n"  # made again: the step ran


# --- eviction ---------------------------------------------------------------------------


def megabyte_steps(count: int) -> None:
    """`count` steps, each storing a 1 MB output; serial, so stored in order s0, s1, ..."""
    for index in range(count):
        Path(f"in{index}.txt").write_text(f"{index}\n")
    write_playbook(
        "steps:\n"
        + "".join(
            f"  - {{id: s{i}, inputs: [in{i}.txt], outputs: [o{i}.bin], "
            f'run: "head -c 1000000 /dev/zero > o{i}.bin"}}\n'
            for i in range(count)
        )
    )


def test_prune_evicts_least_recently_used_results_one_at_a_time_until_the_cache_fits(workdir: Path) -> None:
    megabyte_steps(12)
    run()
    run("--select", "s0", "--only")  # a hit, outputs in place: s0 is now the most recently used
    assert statuses() == {"s0": "cached"}
    Path("o3.bin").unlink()
    run("--select", "s3", "--only")  # a hit restored from its archive counts too
    assert statuses() == {"s3": "cached"}

    pruned = invoke("cache", "prune", "--max-size", "11M")  # 12 x 1 MB = 11.4 MiB
    assert pruned.exit_code == 0, pruned.output
    assert "evicted 1 entry " in pruned.output
    assert "11 entries left" in pruned.output
    assert plan_cache() == {f"s{i}": "miss" if i == 1 else "hit" for i in range(12)}
    pruned = invoke("cache", "prune", "--max-size", "9M")  # 9.5 MB left
    assert "evicted 2 entries" in pruned.output
    assert plan_cache() == {f"s{i}": "miss" if i in (1, 2, 4) else "hit" for i in range(12)}


def test_a_full_cache_evicts_what_was_used_longest_ago_not_what_was_just_hit(workdir: Path) -> None:
    Path("ci-orchestrator.toml").write_text('cache-size = "3.5MB"\n')
    megabyte_steps(4)
    run("--select", "s0,s1,s2", "--only")
    run("--select", "s0", "--only")
    assert statuses() == {"s0": "cached"}
    run("--select", "s3", "--only")  # the fourth megabyte: one result goes, the least recently used
    assert plan_cache() == {"s0": "hit", "s1": "miss", "s2": "hit", "s3": "hit"}
    assert "entries  3" in invoke("cache", "stats").output


# --- where the cache lives ---------------------------------------------------------------


def test_a_relocated_checkout_still_hits(project: Path, tmp_path: Path) -> None:
    warm(project)
    elsewhere = tmp_path / "somewhere" / "else" / "checkout"
    shutil.copytree(project, elsewhere, ignore=shutil.ignore_patterns(".ci-orchestrator"))
    os.chdir(elsewhere)
    for folder in ("build", "dist", "site", "out"):
        shutil.rmtree(folder)
    run()
    assert statuses(elsewhere) == {**dict.fromkeys(CACHEABLE, "cached"), "always": "passed"}
    assert ran() == ["always"]
    assert Path("dist/pack.bin").read_bytes() == (project / "dist/pack.bin").read_bytes()


def test_cache_dir_option_and_no_cache_and_force(project: Path, tmp_path: Path, cache_dir: Path) -> None:
    own = tmp_path / "own-cache"
    run("--cache-dir", str(own))
    run("--cache-dir", str(own))
    assert set(statuses().values()) == {"cached", "passed"}
    assert not cache_dir.exists()  # the option wins over the environment
    ran()

    run("--cache-dir", str(own), "--no-cache")  # neither read ...
    assert ran() == ["always", "check 3.11", "check 3.12", "docs", "gen", "pack"]
    before = invoke("cache", "stats", "--cache-dir", str(own)).output
    run("--no-cache")  # ... nor written
    assert not cache_dir.exists()
    after = invoke("cache", "stats", "--cache-dir", str(own)).output
    assert after.split("hits")[0] == before.split("hits")[0]
    ran()

    Path("playbooks/ci.yml").write_text(
        Path("playbooks/ci.yml").read_text().replace('echo "gen: ', 'echo "gen (refreshed): ')
    )
    run("--cache-dir", str(own), "--force")  # runs everything, even what is cached ...
    assert ran() == ["always", "check 3.11", "check 3.12", "docs", "gen", "pack"]
    run("--cache-dir", str(own))  # ... and what it stored is what the next run restores
    assert ran() == ["always"]
    record = json.loads(Path(".ci-orchestrator/reports/run.json").read_text())
    gen = next(step for step in record["steps"] if step["id"] == "gen")
    assert Path(gen["log"]).read_text() == "gen (refreshed): 2 lines\n"


# --- damaged, tampered, shared -----------------------------------------------------------


def test_a_corrupt_cache_file_is_one_warning_and_the_run_goes_on(project: Path, cache_dir: Path) -> None:
    warm(project)
    (cache_dir / "index" / "cache.db").write_bytes(b"this is not a database" * 100)
    result = run()
    warnings = [line for line in result.stderr.splitlines() if "warning" in line]
    assert len(warnings) == 1, result.stderr
    assert "cache" in warnings[0]
    assert "unusable" in warnings[0]
    assert statuses() == dict.fromkeys([*CACHEABLE, "always"], "passed")

    assert "damaged cache" in invoke("cache", "clear").output  # starts it afresh
    run()
    run()
    assert statuses()["gen"] == "cached"


@pytest.mark.parametrize("damage", ["cache-dir is a file", "garbage index"])
def test_plan_says_the_cache_is_unusable_as_run_does(project: Path, damage: str) -> None:
    warm(project)
    args: tuple[str, ...] = ()
    if damage == "cache-dir is a file":
        Path("not-a-folder").write_text("a file\n")
        args = ("--cache-dir", "not-a-folder")
    else:
        (Path(os.environ["CI_ORCHESTRATOR_CACHE_DIR"]) / "index" / "cache.db").write_bytes(b"junk" * 1000)
    planned = invoke("plan", *args)
    as_json = invoke("plan", "--format", "json", *args)
    ran_anyway = run(*args)
    said = [line for line in ran_anyway.stderr.splitlines() if "warning" in line]
    assert len(said) == 1 and "unusable" in said[0], ran_anyway.stderr
    for result in (planned, as_json):
        assert result.exit_code == 0, result.output
        assert [line for line in result.stderr.splitlines() if "warning" in line] == said
    assert "[cache:" not in planned.stdout
    assert {item["cache"] for item in json.loads(as_json.stdout)["instances"]} == {None}


def test_a_damaged_stored_result_is_one_warning_and_the_step_runs(project: Path, cache_dir: Path) -> None:
    warm(project)
    entries = diskcache.Cache(str(cache_dir / "entries"), disk=diskcache.JSONDisk)
    for key in list(entries.iterkeys()):
        entries.set(key, io.BytesIO(b"\x00garbage" * 100), read=True)
    entries.close()
    shutil.rmtree("dist")  # a hit must now read pack's archive

    result = run()
    warnings = [line for line in result.stderr.splitlines() if "warning" in line]
    assert len(warnings) == 1, result.stderr
    assert "pack" in warnings[0]
    assert "damaged" in warnings[0]
    assert ran() == ["always", "pack"]
    assert statuses()["gen"] == "cached"
    assert Path("dist/pack.bin").exists()


def stored_digest(cache_dir: Path, instance: str) -> str:
    index = diskcache.Cache(str(cache_dir / "index"), disk=JSONTextDisk)
    try:
        for key in index.iterkeys():
            if str(key).startswith("entry:") and index[key]["instance"] == instance:
                return str(key).removeprefix("entry:")
    finally:
        index.close()
    raise AssertionError(f"no stored entry for {instance}")


@pytest.mark.parametrize(
    ("name", "kind", "quoted"),
    [
        ("files/../escaped.txt", tarfile.REGTYPE, "'../escaped.txt'"),
        ("files//tmp/ci-orchestrator-escaped.txt", tarfile.REGTYPE, "absolute"),
        ("files/build/link", tarfile.SYMTYPE, "'files/build/link'"),
    ],
)
def test_a_stored_result_leading_outside_the_workspace_is_refused_with_a_message(
    project: Path, cache_dir: Path, name: str, kind: bytes, quoted: str
) -> None:
    warm(project)
    digest = stored_digest(cache_dir, "gen")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for member_name, content in (("log", b"forged\n"), (name, b"planted\n")):
            info = tarfile.TarInfo(member_name)
            info.type = kind if member_name == name else tarfile.REGTYPE
            info.linkname = "/etc/passwd" if info.issym() else ""
            info.size = len(content) if info.isreg() else 0
            tar.addfile(info, io.BytesIO(content) if info.isreg() else None)
    buffer.seek(0)
    entries = diskcache.Cache(str(cache_dir / "entries"), disk=diskcache.JSONDisk)
    entries.set("data:" + digest, buffer, read=True)
    entries.close()
    shutil.rmtree("build")  # the hit needs the archive

    result = run()
    refused = [line for line in result.stderr.splitlines() if "refused" in line]
    assert len(refused) == 1, result.stderr
    assert "gen" in refused[0]
    assert quoted in refused[0]
    assert not (project.parent / "escaped.txt").exists()
    assert not Path("/tmp/ci-orchestrator-escaped.txt").exists()
    assert statuses()["gen"] == "passed"  # it ran instead, and stored a good result
    assert Path("build/gen.txt").read_text() == "alpha\nbeta\n"
    run()
    assert statuses()["gen"] == "cached"


@pytest.mark.slow  # four real processes: several seconds on a loaded machine
def test_two_runs_at_once_sharing_a_cache_both_succeed_and_the_cache_stays_usable(
    project: Path, tmp_path: Path, cache_dir: Path
) -> None:
    # Two checkouts, one cache folder, two real processes started together.
    second = tmp_path / "second"
    shutil.copytree(project, second)
    env = cli_environment(CI_ORCHESTRATOR_CACHE_DIR=str(cache_dir))
    command = ("run", "--output", "quiet")
    processes = [
        start_cli(folder, *command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for folder in (project, second)
    ]
    for process in processes:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, out + err
        assert "warning" not in err, err
    for folder in (project, second):  # either may have taken what the other stored first
        assert set(statuses(folder).values()) <= {"passed", "cached"}
    for folder in (project, second):
        rerun = run_cli(folder, *command, env=env)
        assert rerun.returncode == 0, rerun.stderr
        assert statuses(folder) == {**dict.fromkeys(CACHEABLE, "cached"), "always": "passed"}
    stats = invoke("cache", "stats").output
    assert "entries  5" in stats


# --- plan, explain, stats, clear, prune ----------------------------------------------------


def test_plan_shows_hit_or_miss_per_instance_and_runs_nothing(project: Path) -> None:
    text = invoke("plan")
    assert text.exit_code == 0, text.output
    assert "gen  [cache: miss]" in text.output
    assert "always" in text.output
    assert "always  [" not in text.output  # not cacheable: no cache note
    warm(project)
    Path("check.cfg").write_text("strict = false\n")

    text = invoke("plan")
    as_json = invoke("plan", "--format", "json")
    assert not Path("ran.log").exists()  # nothing ran
    assert "gen  [cache: hit]" in text.output
    assert "check (3.11)  [cache: miss]" in text.output
    instances = {item["id"]: item["cache"] for item in json.loads(as_json.output)["instances"]}
    assert instances == {
        "gen": "hit",
        "pack": "hit",
        "docs": "hit",
        "check (3.11)": "miss",
        "check (3.12)": "miss",
        "always": None,
    }
    no_cache = json.loads(invoke("plan", "--format", "json", "--no-cache").output)
    assert {item["cache"] for item in no_cache["instances"]} == {None}


def test_cache_explain_names_what_changed(project: Path) -> None:
    assert "no stored success" in invoke("cache", "explain", "gen").output
    warm(project)
    assert invoke("cache", "explain", "gen").output.strip() == (
        "gen: cached, nothing changed since its last stored success"
    )

    Path("src/b.txt").write_text("beta, changed\n")
    Path("src/c.txt").write_text("gamma\n")
    explained = invoke("cache", "explain", "ci", "gen")  # with the playbook named
    assert explained.exit_code == 0, explained.output
    assert "gen: will run" in explained.output
    assert "input src/b.txt changed" in explained.output
    assert "input src/c.txt added" in explained.output
    assert "upstream gen changed" in invoke("cache", "explain", "pack").output

    explained = invoke("cache", "explain", "check", "--var", "MODE=slow")
    assert explained.output.count("env MODE changed") == 2  # both instances
    playbook = Path("playbooks/ci.yml")
    playbook.write_text(playbook.read_text().replace("sort | xargs", "sort -r | xargs"))
    assert "the command changed" in invoke("cache", "explain", "docs").output
    assert "not cacheable" in invoke("cache", "explain", "always").output

    unknown = invoke("cache", "explain", "gne")
    assert unknown.exit_code == 2
    assert "did you mean 'gen'" in unknown.stderr


def test_cache_commands_find_the_cache_of_a_settings_file_and_profile(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CI_ORCHESTRATOR_CACHE_DIR")
    settings = 'cache-dir = "team-cache"\n[profile.nightly]\ncache-dir = "night-cache"\n'
    (project / "team.toml").write_text(settings)
    run("--config", "team.toml", "--profile", "nightly")
    assert "entries  5" in invoke("cache", "stats", "--config", "team.toml", "--profile", "nightly").output
    assert "entries  0" in invoke("cache", "stats", "--config", "team.toml").output
    explained = invoke("cache", "explain", "gen", "--config", "team.toml", "--profile", "nightly").output
    assert "gen: cached, nothing changed" in explained
    cleared = invoke("cache", "clear", "--config", "team.toml", "--profile", "nightly")
    assert f"5 entries removed from {project / 'night-cache'}" in cleared.output

    (project / "ci-orchestrator.toml").write_text('concurrency = "x\n')
    for command in (["stats"], ["clear"], ["prune", "--max-size", "1M"]):
        broken = invoke("cache", *command)
        assert broken.exit_code == 2
        assert "ci-orchestrator.toml:1:" in broken.stderr
        assert "Traceback" not in broken.output


def test_prune_without_a_size_prunes_to_the_settings_cache_size(project: Path) -> None:
    warm(project)
    (project / "ci-orchestrator.toml").write_text('cache-size = "1K"\n')
    pruned = invoke("cache", "prune")
    assert pruned.exit_code == 0, pruned.output
    assert "evicted 5 entries (limit 1.0 KiB" in pruned.output


def test_cache_stats_clear_and_prune(project: Path) -> None:
    warm(project)
    run()
    stats = invoke("cache", "stats").output
    assert "entries  5" in stats
    assert "hits     5" in stats  # the warm run's hits ...
    assert "misses   5" in stats  # ... and the cold run's misses
    assert "bytes)" in stats

    pruned = invoke("cache", "prune", "--max-size", "1K")
    assert pruned.exit_code == 0, pruned.output
    assert "evicted 5 entries" in pruned.output
    assert "entries  0" in invoke("cache", "stats").output
    shutil.rmtree("build")
    run()
    assert statuses()["gen"] == "passed"  # evicted: it runs again, and is stored again

    assert "5 entries removed" in invoke("cache", "clear").output
    assert "entries  0" in invoke("cache", "stats").output
    assert "hits     0" in invoke("cache", "stats").output
    bad = invoke("cache", "prune", "--max-size", "lots")
    assert bad.exit_code == 2
