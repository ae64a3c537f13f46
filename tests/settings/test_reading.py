"""Settings files, profiles and step defaults."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from ci_orchestrator.cpus import available_cpus
from ci_orchestrator.errors import PlaybookError, UsageError
from ci_orchestrator.output.mode import OutputMode
from ci_orchestrator.playbook.model import Execution
from ci_orchestrator.settings.model import DEFAULT_CACHE_DIR, most_restrictive, smallest_limit
from ci_orchestrator.settings.reading import read_settings
from tests.helpers import cli_environment, invoke, listed_steps, run_cli


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


def test_the_most_restrictive_parallel_permission_wins() -> None:
    assert most_restrictive() is True
    assert most_restrictive(None, None) is True
    assert most_restrictive(True, None, True) is True
    assert most_restrictive(True, False, None) is False


def test_the_smallest_concurrency_limit_wins() -> None:
    assert smallest_limit() is None
    assert smallest_limit(None, None) is None
    assert smallest_limit(8, None, 3, 4) == 3


def test_the_default_output_is_grouped_under_github_actions_only(workdir: Path) -> None:
    """GitHub folds each log in a group of its own; elsewhere whole logs would bury failures."""
    under_github = read_settings(workdir, environ={"GITHUB_ACTIONS": "true", "CI": "true"}).get("output")
    assert (under_github.value, under_github.origin) == (OutputMode.GROUPED, "default under GitHub Actions")
    for environ in ({}, {"CI": "true"}):
        elsewhere = read_settings(workdir, environ=environ).get("output")
        assert (elsewhere.value, elsewhere.origin) == (OutputMode.QUIET, "default")
    (workdir / "ci-orchestrator.toml").write_text('output = "grouped"\n')
    assert read_settings(workdir, environ={}).output is OutputMode.GROUPED


def test_without_a_file_every_setting_is_a_default(workdir: Path) -> None:
    settings = read_settings(workdir, environ={})
    assert settings.source is None
    assert {setting.origin for setting in settings} == {"default"}
    assert settings.execution is None
    assert settings.concurrency is None
    assert settings.fail_fast is True
    assert settings.allow_parallel is True
    assert settings.output is OutputMode.QUIET  # a passing step's log stays in its file
    assert settings.cache_dir == DEFAULT_CACHE_DIR
    # Unset, the playbook's `fail-fast` decides: `config get` must not claim `true` for a run
    # whose playbook says `fail-fast: false`.
    assert settings.get("fail-fast").value is None
    assert settings.get("fail-fast").text == "unset (the playbook's own, else true)"
    assert settings.step_defaults == ()


def test_file_values_name_their_line(workdir: Path) -> None:
    write(
        workdir / "ci-orchestrator.toml",
        """
        # project settings
        execution = "parallel"
        max-parallel-workers = 3
        timeout = "1h30m"
        cache-size = "2GiB"
        output = "stream"
        allow-parallel = false
        """,
    )
    settings = read_settings(workdir, environ={})
    assert settings.execution is Execution.PARALLEL
    assert settings.concurrency == 3
    assert settings.get("max-parallel-workers").origin == "ci-orchestrator.toml:3"
    assert settings.get("concurrency").origin == "ci-orchestrator.toml:3"
    assert settings.timeout == 5400
    assert settings.cache_size == 2 * 2**30
    assert settings.output is OutputMode.STREAM
    assert settings.allow_parallel is False
    assert settings.get("output").origin == "ci-orchestrator.toml:6"
    assert settings.get("fail-fast").origin == "default"


def test_auto_concurrency_is_the_available_cpus(workdir: Path) -> None:
    write(workdir / "ci-orchestrator.toml", 'concurrency = "auto"\n')
    settings = read_settings(workdir, environ={})
    assert settings.get("concurrency").text == "auto"
    assert settings.concurrency == available_cpus()


def test_pyproject_table_is_read_when_there_is_no_settings_file(workdir: Path) -> None:
    write(
        workdir / "pyproject.toml",
        """
        [project]
        name = "demo"

        [tool.ci-orchestrator]
        fail-fast = false

        [tool.ci-orchestrator.profile.ci]
        concurrency = 2
        """,
    )
    settings = read_settings(workdir, environ={"CI": "true"})
    assert settings.fail_fast is False
    assert settings.get("fail-fast").origin == "pyproject.toml:5"
    assert settings.get("concurrency").origin == "profile ci, pyproject.toml:8"
    write(workdir / "ci-orchestrator.toml", "fail-fast = true\n")
    assert read_settings(workdir, environ={}).get("fail-fast").origin == "ci-orchestrator.toml:1"


def test_a_pyproject_without_our_table_is_ignored(workdir: Path) -> None:
    write(workdir / "pyproject.toml", '[project]\nname = "demo"\n[tool.ruff]\nline-length = 99\n')
    assert read_settings(workdir, environ={}).source is None


def test_config_option_names_the_file(workdir: Path) -> None:
    other = write(workdir / "elsewhere.toml", "timeout = 30\n")
    settings = read_settings(workdir, config=other, environ={})
    assert settings.timeout == 30
    with pytest.raises(UsageError, match=r"missing\.toml"):
        read_settings(workdir, config=workdir / "missing.toml", environ={})


PROFILES = """
    concurrency = 8
    fail-fast = true

    [profile.ci]
    concurrency = 2

    [profile.local]
    fail-fast = false
    """


def test_the_ci_profile_applies_under_ci(workdir: Path) -> None:
    write(workdir / "ci-orchestrator.toml", PROFILES)
    assert read_settings(workdir, environ={}).concurrency == 8
    on_ci = read_settings(workdir, environ={"CI": "true"})
    assert on_ci.profile == "ci"
    assert on_ci.concurrency == 2
    assert on_ci.get("concurrency").origin == "profile ci, ci-orchestrator.toml:5"
    assert on_ci.get("fail-fast").origin == "ci-orchestrator.toml:2"


def test_an_explicit_profile_beats_ci(workdir: Path) -> None:
    write(workdir / "ci-orchestrator.toml", PROFILES)
    local = read_settings(workdir, profile="local", environ={"CI": "true"})
    assert local.profile == "local"
    assert local.concurrency == 8
    assert local.fail_fast is False


@pytest.mark.parametrize("value", ["1", "yes", "True", " on "])
def test_every_spelling_of_ci_takes_the_ci_profile(workdir: Path, value: str) -> None:
    """As the run server and the console tell CI: `CI=1` is CI as much as `CI=true`."""
    write(workdir / "ci-orchestrator.toml", PROFILES)
    shown = run_cli(workdir, "config", "get", "concurrency", env=cli_environment(workdir, CI=value))
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.strip() == "concurrency = 2  (profile ci, ci-orchestrator.toml:5)"


@pytest.mark.parametrize("value", ["", "0", "false", "No", "off"])
def test_a_false_ci_takes_no_profile(workdir: Path, value: str) -> None:
    write(workdir / "ci-orchestrator.toml", PROFILES)
    shown = run_cli(workdir, "config", "get", "concurrency", env=cli_environment(workdir, CI=value))
    assert shown.stdout.strip() == "concurrency = 8  (ci-orchestrator.toml:1)"


def test_config_get_value_prints_what_a_script_would_use(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CI_ORCHESTRATOR_CACHE_DIR")
    assert invoke("config", "get", "cache-dir", "--value").stdout == f"{workdir / '.ci-orchestrator/cache'}\n"
    assert invoke("config", "get", "concurrency", "--value").stdout == "\n"  # no level gives one
    (workdir / "team").mkdir()
    write(workdir / "team" / "settings.toml", 'fail-fast = false\n[profile.night]\ncache-dir = "night"\n')
    chosen = ("--config", "team/settings.toml", "--profile", "night")
    # A folder the settings file names is the file's folder's, shown as the absolute path.
    assert (
        invoke("config", "get", "cache-dir", "--value", *chosen).stdout == f"{workdir / 'team' / 'night'}\n"
    )
    assert invoke("config", "get", "fail-fast", "--value", *chosen).stdout == "false\n"
    monkeypatch.setenv("CI_ORCHESTRATOR_CACHE_DIR", "elsewhere")
    assert invoke("config", "get", "cache-dir", "--value", *chosen).stdout == f"{workdir / 'elsewhere'}\n"
    broken = invoke("config", "get", "cache-dir", "--value", "--config", "missing.toml")
    assert broken.exit_code == 2
    assert broken.stdout == ""


def test_github_actions_alone_takes_the_ci_profile(workdir: Path) -> None:
    write(workdir / "ci-orchestrator.toml", PROFILES)
    assert read_settings(workdir, environ={"GITHUB_ACTIONS": "true"}).profile == "ci"


def test_an_unknown_profile_lists_the_known_ones(workdir: Path) -> None:
    write(workdir / "ci-orchestrator.toml", PROFILES)
    with pytest.raises(UsageError, match=r"'lokal' \(did you mean 'local'\?\).*ci, local") as error:
        read_settings(workdir, profile="lokal", environ={})
    assert error.value.exit_code == 2


def test_mistakes_are_all_reported_with_line_and_suggestion(workdir: Path) -> None:
    write(
        workdir / "ci-orchestrator.toml",
        """
        execution = "paralel"
        concurency = 4
        timeout = "1x"

        [defaults]
        "0499-0400" = {allow-parallel = false}
        "test-*" = { retri = 2 }

        [profile.ci]
        fail-fast = "no"
        """,
    )
    with pytest.raises(PlaybookError) as caught:
        read_settings(workdir, environ={})
    lines = caught.value.lines()
    assert caught.value.exit_code == 2
    assert lines == [
        "ci-orchestrator.toml:1:1: execution: expected one of serial, parallel, got 'paralel' "
        "(did you mean 'parallel'?)",
        "ci-orchestrator.toml:2:1: concurency: unknown key 'concurency' (did you mean 'concurrency'?)",
        "ci-orchestrator.toml:3:1: timeout: invalid duration '1x': use seconds or a form like 90s, 2m, 1h30m",
        "ci-orchestrator.toml:6:1: defaults.0499-0400: invalid range '0499-0400': its start is after its end",
        "ci-orchestrator.toml:7:14: defaults.test-*.retri: unknown key 'retri' (did you mean 'retry'?)",
        "ci-orchestrator.toml:10:1: profile.ci.fail-fast: expected true or false, got 'no'",
    ]


def test_a_key_given_twice_through_its_alias_is_refused(workdir: Path) -> None:
    write(workdir / "ci-orchestrator.toml", "concurrency = 2\nmax-parallel-workers = 4\n")
    with pytest.raises(PlaybookError, match=r"ci-orchestrator.toml:2:1: .*set twice"):
        read_settings(workdir, environ={})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("concurrency = 0", "1 or more"),
        ("concurrency = true", "or 'auto'"),
        ("timeout = 0", "invalid duration 0: must be a finite number of seconds above 0"),
        ("timeout = true", "invalid duration True: use seconds"),
        ('cache-size = "lots"', "invalid size"),
        ("cache-dir = ''", "folder"),
        ('output = "loud"', "grouped"),
    ],
)
def test_bad_values_are_refused(workdir: Path, text: str, message: str) -> None:
    write(workdir / "ci-orchestrator.toml", f"# settings\n{text}\n")
    with pytest.raises(PlaybookError, match=f"ci-orchestrator.toml:2:1: .*{message}"):
        read_settings(workdir, environ={})


def test_broken_toml_points_at_the_spot(workdir: Path) -> None:
    write(workdir / "ci-orchestrator.toml", 'fail-fast = true\ntimeout = "5m\n')
    with pytest.raises(PlaybookError, match=r"^ci-orchestrator.toml:2:\d+: invalid TOML"):
        read_settings(workdir, environ={})


def test_a_settings_file_that_is_not_utf8_is_located_at_the_byte(workdir: Path) -> None:
    (workdir / "ci-orchestrator.toml").write_bytes(b'timeout = "1m"\n# caf\xe9\n')
    (workdir / "p.yml").write_text("name: p\nsteps: [{id: a, run: 'true'}]\n")
    result = run_cli(workdir, "plan", "p.yml")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "ci-orchestrator: ci-orchestrator.toml:2:6: not UTF-8 text: byte 0xe9 cannot be read"
    )


def test_an_error_in_pyproject_is_located_in_pyproject(workdir: Path) -> None:
    write(workdir / "pyproject.toml", '[project]\nname = "x"\n\n[tool.ci-orchestrator]\nfial-fast = false\n')
    with pytest.raises(PlaybookError, match=r"pyproject.toml:5:1: fial-fast: unknown key .*'fail-fast'"):
        read_settings(workdir, environ={})


STEP_DEFAULTS = """
    [defaults]
    "0400-0499" = {allow-parallel = false, timeout = "10m"}
    "test-*" = {retry = 2, tags = ["slow"]}
    "tag:db" = {allow-parallel = false}

    [profile.ci.defaults]
    "0400-0449" = {allow-parallel = true}
    "stage:Testing" = {tags = ["ci"]}
    """


def test_step_defaults_keep_file_order_with_the_profile_after(workdir: Path) -> None:
    write(workdir / "ci-orchestrator.toml", STEP_DEFAULTS)
    entries = read_settings(workdir, environ={"CI": "true"}).step_defaults
    assert [entry.pattern for entry in entries] == [
        "0400-0499",
        "test-*",
        "tag:db",
        "0400-0449",
        "stage:Testing",
    ]
    assert entries[0].timeout == 600
    assert entries[0].origin == "ci-orchestrator.toml:2"
    assert entries[3].origin == "profile ci, ci-orchestrator.toml:7"
    assert [entry.pattern for entry in read_settings(workdir, environ={}).step_defaults] == [
        "0400-0499",
        "test-*",
        "tag:db",
    ]


def test_step_defaults_match_like_selectors_and_later_entries_win(workdir: Path) -> None:
    write(workdir / "ci-orchestrator.toml", STEP_DEFAULTS)
    settings = read_settings(workdir, environ={"CI": "true"})
    script = settings.defaults_for("0402", number="0402", stage="Testing")
    assert script.allow_parallel is False  # the most restrictive wins: a later `true` cannot lift it
    assert settings.defaults_for("0402", number="0402").origin.count(";") == 1  # both entries matched
    assert settings.defaults_for("0460", number="0460").allow_parallel is False
    assert script.timeout == 600
    assert script.tags == ("ci",)
    late = settings.defaults_for("0480")
    assert (late.allow_parallel, late.timeout) == (False, 600)
    unit = settings.defaults_for("test-unit")
    assert (unit.retry, unit.tags, unit.allow_parallel) == (2, ("slow",), None)
    assert settings.defaults_for("migrate", tags=("db",)).allow_parallel is False
    assert settings.defaults_for("lint").pattern == ""
    assert settings.defaults_for("0500").timeout is None


def test_one_false_among_matching_defaults_keeps_a_step_from_running_beside_others(workdir: Path) -> None:
    write(
        workdir / "ci-orchestrator.toml",
        """
        [defaults."0400-0499"]
        allow-parallel = false
        [defaults."0401"]
        allow-parallel = true
        timeout = "1m"
        """,
    )
    (workdir / "scripts").mkdir()
    for name in ("0401_Unit.sh", "0402_Lint.sh"):
        write(workdir / "scripts" / name, f"echo {name} $CI_ORCHESTRATOR_PARALLEL >> parallel.log\n")
    write(workdir / "p.yml", "name: p\nexecution: parallel\nscripts: scripts\n")
    listed = run_cli(workdir, "list", "p.yml")
    assert listed.returncode == 0, listed.stderr
    modes = {step: row["MODE"] for step, row in listed_steps(listed.stdout).items()}
    assert modes == {"0401": "exclusive", "0402": "exclusive"}
    ran = run_cli(workdir, "run", "p.yml", "-j", "2")
    assert ran.returncode == 0, ran.stderr
    assert sorted((workdir / "parallel.log").read_text().splitlines()) == [
        "0401_Unit.sh false",
        "0402_Lint.sh false",
    ]
    unit = read_settings(workdir, environ={}).defaults_for("0401", number="0401")
    assert (unit.allow_parallel, unit.timeout) == (False, 60)  # other keys: the later entry wins


def test_cache_dir_is_relative_to_the_file_and_the_environment_overrides_it(workdir: Path) -> None:
    config_dir = workdir / "config"
    config_dir.mkdir()
    config = write(config_dir / "settings.toml", 'cache-dir = "cache"\n')
    assert read_settings(workdir, config=config, environ={}).cache_dir == config_dir / "cache"
    from_env = read_settings(workdir, config=config, environ={"CI_ORCHESTRATOR_CACHE_DIR": "/tmp/elsewhere"})
    assert from_env.cache_dir == Path("/tmp/elsewhere")
    assert from_env.get("cache-dir").origin == "environment CI_ORCHESTRATOR_CACHE_DIR"


def test_unknown_setting_names_get_a_suggestion(workdir: Path) -> None:
    settings = read_settings(workdir, environ={})
    with pytest.raises(UsageError, match=r"'timout' \(did you mean 'timeout'\?\)"):
        settings.get("timout")


def test_profile_must_be_tables_and_every_profile_is_checked(workdir: Path) -> None:
    write(workdir / "ci-orchestrator.toml", 'profile = "ci"\n')
    with pytest.raises(PlaybookError, match=r"ci-orchestrator.toml:1:1: profile: expected tables"):
        read_settings(workdir, environ={})
    write(workdir / "ci-orchestrator.toml", "[profile.nightly]\ntimeout = -1\n")
    with pytest.raises(PlaybookError, match=r"ci-orchestrator.toml:2:1: profile.nightly.timeout"):
        read_settings(workdir, profile="unknown", environ={})


def test_merged_step_defaults_name_where_they_come_from(workdir: Path) -> None:
    write(workdir / "ci-orchestrator.toml", STEP_DEFAULTS)
    merged = read_settings(workdir, environ={}).defaults_for("0410", number="0410", tags=("db",))
    assert merged.pattern == "0400-0499,tag:db"
    assert merged.origin == "ci-orchestrator.toml:2; ci-orchestrator.toml:4"
    assert read_settings(workdir, environ={}).defaults_for("lint").origin == "default"


def test_a_broken_pyproject_without_our_table_is_not_ours(workdir: Path) -> None:
    write(workdir / "pyproject.toml", "[project\nname = \n")
    assert read_settings(workdir, environ={}).source is None
    write(workdir / "pyproject.toml", "[tool.ci-orchestrator]\ntimeout = \n")
    with pytest.raises(PlaybookError, match=r"^pyproject.toml:2:\d+: invalid TOML"):
        read_settings(workdir, environ={})
