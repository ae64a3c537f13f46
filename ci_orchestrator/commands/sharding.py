"""The split of a plan into shards, for `run --shard`, `plan --shards` and `export --shards`.

The parts are the plan's independent parts, `shard: all` steps running in each shard that needs
them; they are balanced by the durations of earlier runs of the whole plan in the run history
(a shard run must not change the split the other shards of its set compute), and an instance
without one counts as a typical one. A shard job of a workflow may instead be given its
instances, as the workflow's plan job split them (`--shard-instances`): then every shard of the
workflow run has the same split, whatever history each job holds.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from ci_orchestrator import notices
from ci_orchestrator.errors import UsageError
from ci_orchestrator.options import STATE_DIR
from ci_orchestrator.plan import selectors
from ci_orchestrator.plan import shards as sharding
from ci_orchestrator.units import parse_shard

if TYPE_CHECKING:
    from pathlib import Path

    from ci_orchestrator.plan.ordering import Plan
    from ci_orchestrator.plan.shards import Parts, Split

_SHOWN = 5  # instances named in a warning; the rest are counted


def plan_parts(plan: Plan) -> Parts[str]:
    """The plan's independent parts, its `shard: all` instances running where they are needed."""
    marked = [instance.id for instance in plan.instances if instance.step.shard_all]
    return sharding.independent_parts(plan.waits_for, marked)


def plan_split(plan: Plan, count: int, *, root: Path, parts: Parts[str] | None = None) -> Split[str]:
    """`count` shards of `plan` (of its `parts`, when known already), balanced by the durations
    the run history holds, with a warning for what cannot be balanced by them (no duration
    known) or split as asked (a `shard: all` step that waits for one that is not)."""
    parts = plan_parts(plan) if parts is None else parts
    _warn_tied(plan, parts)
    known = known_durations(plan.playbook.name, root=root, min_total=len(plan.instances))
    if count > 1 and len(parts.groups) > 1:  # else there is nothing to balance
        _warn_unknown(plan, known)
    weights = sharding.fill_weights(plan.order, known)
    return sharding.split(plan.waits_for, weights, count, parts=parts)


def shard_plan(plan: Plan, shard: str, *, root: Path, instances: str | None = None) -> tuple[Plan, str]:
    """Shard `I/N` of the plan, and its label as run.json records it (so that `report merge`
    can tell a shard missing). With `instances` (a JSON list of instance ids, as a github-matrix
    entry lists them), the shard is those instances and what they wait for.

    A split leaves no shard empty while another has two parts, so the empty shards of a plan
    of P parts are those after P: asking for one is a usage error.
    """
    try:
        index, count = parse_shard(shard)
    except ValueError as error:
        raise UsageError(str(error), path="--shard") from None
    label = f"{index}/{count}"
    if instances is not None:
        return selectors.select_exact(plan, parse_instances(instances)), label
    parts = plan_parts(plan)
    found = len(parts.groups)
    if index > found:
        raise UsageError(
            f"{label}: {_parts_text(found)}, so shard {index} would run nothing;"
            f" split it into at most {found} (--shard I/{found})",
            path="--shard",
        )
    split = plan_split(plan, count, root=root, parts=parts)
    return plan.subset(split.shards[index - 1]), label


def parse_instances(text: str) -> tuple[str, ...]:
    """`--shard-instances`: a JSON list of instance ids, at least one."""
    try:
        value = json.loads(text)
    except ValueError as error:
        raise UsageError(f"not JSON: {error}", path="--shard-instances") from None
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise UsageError("expected a JSON list of instance ids", path="--shard-instances")
    if not value:
        raise UsageError("names no instance: a shard runs at least one", path="--shard-instances")
    return tuple(value)


def matrix_shards(plan: Plan, asked: int, *, root: Path) -> Split[str]:
    """The shards of a GitHub matrix: no more than the plan's independent parts (more would run
    empty) nor the jobs GitHub makes of one matrix, with a warning when fewer than asked."""
    from ci_orchestrator.plan import views

    parts = plan_parts(plan)
    count = min(asked, max(len(parts.groups), 1))
    if count < asked:
        notices.warn(f"--shards {asked}: {_parts_text(len(parts.groups))}, so {_shards_text(count)}")
    if count > views.MAX_MATRIX_JOBS:
        count = views.MAX_MATRIX_JOBS
        notices.warn(f"--shards {asked}: GitHub runs at most {count} jobs of one matrix, so {count} shards")
    return plan_split(plan, count, root=root, parts=parts)


def warn_fewer_parts(plan: Plan, asked: int) -> None:
    """`export --shards N`: as `plan` says it, when the plan has fewer parts than N."""
    parts = len(plan_parts(plan).groups)
    if parts < asked:
        notices.warn(f"--shards {asked}: {_parts_text(parts)}, so the plan job makes {_shards_text(parts)}")


def _parts_text(parts: int) -> str:
    return f"the plan has {parts} independent part{'s' * (parts != 1)}"


def _shards_text(count: int) -> str:
    return f"{count} shard{'s' * (count != 1)}"


def known_durations(playbook_name: str, *, root: Path, min_total: int = 0) -> dict[str, float]:
    """Instance id -> its recent duration in the run history (none when it cannot be read)."""
    from ci_orchestrator.history.database import History

    try:
        with History.open(root / STATE_DIR / "history.db") as history:
            return history.durations(playbook_name, min_total=min_total)
    except Exception:
        return {}


def _warn_unknown(plan: Plan, known: dict[str, float]) -> None:
    unknown = [node for node in plan.order if node not in known]
    if not unknown:
        return
    if len(unknown) == len(plan.order):
        notices.warn(
            "shards balanced by the number of instances: the run history holds no durations of"
            " this plan (of runs of the whole plan)"
        )
        return
    shown = ", ".join(unknown[:_SHOWN]) + (
        f" and {len(unknown) - _SHOWN} more" if len(unknown) > _SHOWN else ""
    )
    notices.warn(
        f"{len(unknown)} of {len(plan.order)} instances have no duration in the run history ({shown}):"
        " each counts as the median of the others"
    )


def _warn_tied(plan: Plan, parts: Parts[str]) -> None:
    said: set[str] = set()
    for node in parts.tied:
        step = plan.by_id[node].step
        if step.id in said:
            continue
        said.add(step.id)
        before = next(
            earlier
            for earlier in plan.waits_for[node]
            if not plan.by_id[earlier].step.shard_all or earlier in parts.tied
        )
        notices.warn(
            f"step {step.id!r} is `shard: all` but waits for {before!r}, which does not run in every"
            " shard: it runs in one shard, with what it waits for and what waits for it"
        )
