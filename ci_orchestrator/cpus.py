"""The CPUs this process may use: its affinity mask, capped by a cgroup v2 or v1 CPU quota."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator


def available_cpus(
    *, proc_cgroup: Path = Path("/proc/self/cgroup"), cgroup_root: Path = Path("/sys/fs/cgroup")
) -> int:
    """The CPUs this process may use: its affinity mask, capped by a cgroup v2 or v1 CPU quota.

    A fractional quota is rounded up: 1.5 CPUs still lets a second process make progress.
    The paths are parameters so that a container's or a test's own files can be read.
    """
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    quota = _cgroup_quota(proc_cgroup, cgroup_root)
    if quota is not None:
        cpus = min(cpus, math.ceil(quota))
    return max(1, cpus)


def _cgroup_quota(proc_cgroup: Path, cgroup_root: Path) -> float | None:
    try:
        lines = proc_cgroup.read_text(encoding="utf-8").splitlines()
    except OSError:
        return None
    quotas: list[float] = []
    for line in lines:
        hierarchy, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        relative = path.strip().lstrip("/")
        if hierarchy == "0" and not controllers:
            for folder in _self_and_ancestors(cgroup_root, relative):
                quotas.extend(_v2_quota(folder / "cpu.max"))
        elif "cpu" in controllers.split(","):
            for mount in ("cpu", "cpu,cpuacct", "cpuacct,cpu"):
                for folder in _self_and_ancestors(cgroup_root / mount, relative):
                    quotas.extend(_v1_quota(folder))
    return min(quotas) if quotas else None


def _self_and_ancestors(base: Path, relative: str) -> Iterator[Path]:
    # A parent's limit binds its children too; inside a container the process's own path may not
    # exist under the mount, and the mount root holds the container's limit.
    parts = [part for part in relative.split("/") if part]
    for depth in range(len(parts), -1, -1):
        yield base.joinpath(*parts[:depth])


def _v2_quota(path: Path) -> list[float]:
    try:
        quota, period = path.read_text(encoding="utf-8").split()[:2]
        return [] if quota == "max" else [int(quota) / int(period)]
    except (OSError, ValueError, ZeroDivisionError):
        return []


def _v1_quota(folder: Path) -> list[float]:
    try:
        quota = int((folder / "cpu.cfs_quota_us").read_text(encoding="utf-8"))
        period = int((folder / "cpu.cfs_period_us").read_text(encoding="utf-8"))
        return [quota / period] if quota > 0 and period > 0 else []
    except (OSError, ValueError):
        return []
