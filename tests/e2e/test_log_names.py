"""Each instance's log is its own: ids that read alike once made fit for a file name (`build (c)`
and `build (c++)`, a matrix `build (linux)` and a step `build_linux`, `Lint` and `lint`, a step
`a.attempt2` and the second attempt of `a`) never share a file, and every report shows an
instance's own output. Real runs, real files."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from typing import TYPE_CHECKING

import pytest

from ci_orchestrator.run.process_specs import log_name
from tests.helpers import run_cli

if TYPE_CHECKING:
    from pathlib import Path

ALIKE = """\
name: alike
execution: parallel
fail-fast: false
steps:
  - id: build
    matrix: {lang: [c, c++, "c--"]}
    run: echo "compiler for $MATRIX_LANG"; exit 3
  - id: build_c
    run: echo "the plain build_c step"; exit 3
  - id: pack
    matrix: {target: [linux]}
    run: echo "packing for $MATRIX_TARGET"; exit 3
  - id: pack_linux
    run: echo "the plain pack_linux step"; exit 3
  - id: Lint
    run: echo "upper-case Lint"; exit 3
  - id: lint
    run: echo "lower-case lint"; exit 3
  - id: a
    retry: 1
    run: echo "attempt of a"; exit 3
  - id: a.attempt2
    run: echo "the step a.attempt2"; exit 3
"""

OWN_TEXT = {
    "build (c)": "compiler for c\n",
    "build (c++)": "compiler for c++\n",
    "build (c--)": "compiler for c--\n",
    "build_c": "the plain build_c step\n",
    "pack (linux)": "packing for linux\n",
    "pack_linux": "the plain pack_linux step\n",
    "Lint": "upper-case Lint\n",
    "lint": "lower-case lint\n",
    "a": "attempt of a\n",
    "a.attempt2": "the step a.attempt2\n",
}


def test_instances_with_alike_ids_keep_their_own_logs_and_reports(tmp_path: Path) -> None:
    (tmp_path / "playbooks").mkdir()
    (tmp_path / "playbooks" / "ci.yml").write_text(ALIKE, encoding="utf-8")
    ran = run_cli(tmp_path, "run", "--output", "quiet", "-j", "4")
    assert ran.returncode == 1, ran.stderr
    steps = {
        step["id"]: step
        for step in json.loads((tmp_path / ".ci-orchestrator/reports/run.json").read_text())["steps"]
    }
    assert set(steps) == set(OWN_TEXT)

    logs = {instance: steps[instance]["log"] for instance in OWN_TEXT}
    assert len(set(logs.values())) == len(logs), logs
    for instance, text in OWN_TEXT.items():
        assert (tmp_path / logs[instance]).read_text(encoding="utf-8") == text, instance
    # Every file in the run's log folder is one instance's (and one attempt of `a`'s): none shared.
    folder = (tmp_path / logs["a"]).parent
    assert len([path for path in folder.iterdir() if path.suffix == ".log"]) == len(OWN_TEXT) + 1

    # The JUnit failure of each instance carries its own log tail, not another's.
    junit = ET.parse(tmp_path / ".ci-orchestrator/reports/junit.xml")
    tails = {case.get("name"): case.findtext("failure") or "" for case in junit.iter("testcase")}
    for instance, text in OWN_TEXT.items():
        assert text.strip() in tails[instance], instance
        others = [other.strip() for other in OWN_TEXT.values() if other != text]
        assert not any(other in tails[instance].splitlines() for other in others), instance


@pytest.mark.parametrize(
    "instance_id",
    [
        "x" * 2000,
        "test (" + "é" * 300 + ")",
        "test (" + ", ".join(["value"] * 200) + ")",
        "test (\udcff)",  # a non-UTF-8 `--matrix` value, as the command line decodes it
        "()",
        "/",
    ],
)
def test_a_log_name_fits_any_file_system_whatever_the_id(instance_id: str, tmp_path: Path) -> None:
    name = log_name(instance_id)
    assert len(f"{name}+attempt99.log".encode()) <= 255
    assert "/" not in name
    assert name.isascii()
    (tmp_path / f"{name}.log").write_text("written")  # a name the system takes


def test_a_plain_lower_case_id_is_its_own_log_name() -> None:
    assert log_name("lint") == "lint"
    assert log_name("0407") == "0407"
    assert log_name("test (3.12)").startswith("test_3.12+")
