"""The CPUs a run may use: the affinity mask, capped by cgroup v1 and v2 quotas."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from ci_orchestrator.cpus import available_cpus

if TYPE_CHECKING:
    from pathlib import Path


def affinity() -> int:
    return len(os.sched_getaffinity(0))


def fake_cgroup(tmp_path: Path, membership: str, files: dict[str, str]) -> dict[str, Path]:
    tmp_path.mkdir(exist_ok=True)
    proc = tmp_path / "cgroup"
    proc.write_text(membership, encoding="utf-8")
    root = tmp_path / "sys"
    for relative, content in files.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(content, encoding="utf-8")
    return {"proc_cgroup": proc, "cgroup_root": root}


def test_available_cpus_follow_the_affinity_mask_on_this_machine() -> None:
    assert 1 <= available_cpus() <= affinity()


def test_a_cgroup_v2_quota_caps_the_cpus(tmp_path: Path) -> None:
    paths = fake_cgroup(
        tmp_path, "0::/job/step\n", {"job/cpu.max": "50000 100000\n", "job/step/cpu.max": "max 100000"}
    )
    assert available_cpus(**paths) == 1


def test_a_fractional_quota_rounds_up_but_never_beyond_the_affinity(tmp_path: Path) -> None:
    paths = fake_cgroup(tmp_path, "0::/\n", {"cpu.max": "150000 100000\n"})
    assert available_cpus(**paths) == min(2, affinity())
    unlimited = fake_cgroup(tmp_path / "u", "0::/\n", {"cpu.max": "max 100000\n"})
    assert available_cpus(**unlimited) == affinity()


def test_a_cgroup_v1_quota_caps_the_cpus(tmp_path: Path) -> None:
    paths = fake_cgroup(
        tmp_path,
        "4:memory:/x\n3:cpu,cpuacct:/docker/abc\n",
        {
            "cpu,cpuacct/docker/abc/cpu.cfs_quota_us": "100000\n",
            "cpu,cpuacct/docker/abc/cpu.cfs_period_us": "100000",
        },
    )
    assert available_cpus(**paths) == 1
    unlimited = fake_cgroup(
        tmp_path / "u", "3:cpu:/\n", {"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000"}
    )
    assert available_cpus(**unlimited) == affinity()


def test_unreadable_cgroup_files_fall_back_to_the_affinity(tmp_path: Path) -> None:
    assert available_cpus(proc_cgroup=tmp_path / "absent", cgroup_root=tmp_path) == affinity()
    garbage = fake_cgroup(tmp_path, "0::/\n", {"cpu.max": "lots\n"})
    assert available_cpus(**garbage) == affinity()
