"""What a run masks: the value each name listed in `secrets` takes in the environment of each
instance's process, and the variables those values are made of.

A secret may come from the calling environment, the playbook's `env` or a step's own `env`, and
be written as an expression (`${{ vars.TOKEN }}`, `${{ matrix.key }}`): what counts is the value
the process gets, the instance's evaluated `env` over the base environment, as
`process_specs.step_environment` builds it. A variable that an expression of a secret reads (given
with `--var`, say) is a secret too: reports that name variables (the reproduce command, the run
record) must not show it either.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ci_orchestrator.matrix.evaluator import templates
from ci_orchestrator.output.masking import mask_values, maskable

if TYPE_CHECKING:
    from collections.abc import Collection, Iterable, Mapping

    from ci_orchestrator.plan.ordering import Plan
    from ci_orchestrator.playbook.model import Playbook, Step


@dataclass(frozen=True, slots=True, kw_only=True)
class RunSecrets:
    """What a run masks, and the secret names left unmasked for being too short."""

    masks: tuple[str, ...] = ()  # every text to hide (see `masking.mask_values`), longest first
    too_short: tuple[str, ...] = ()  # in the order the playbook lists them


def secret_values(plan: Plan, *, base_env: Mapping[str, str]) -> RunSecrets:
    """What a run of `plan` masks, with this environment under each instance's own."""
    names = plan.playbook.secrets
    if not names:
        return RunSecrets()
    # Each secret name with each value it takes in the environment of an instance's process.
    named = {
        (name, instance.env[name] if name in instance.env else base_env.get(name, ""))
        for instance in plan.instances
        for name in names
    }
    values = {value for _, value in named}
    steps = {instance.step.id: instance.step for instance in plan.instances}.values()
    read = variables_read(plan.playbook, steps, names)
    values.update(value for key, value in plan.variables.items() if read is None or key.casefold() in read)
    short = {name for name, value in named if value.strip() and not maskable(value)}
    return RunSecrets(masks=mask_values(values), too_short=tuple(name for name in names if name in short))


def variables_read(
    playbook: Playbook, steps: Iterable[Step], names: Collection[str]
) -> frozenset[str] | None:
    """The variables (case-folded) that the `env` entries `names` of these steps read, directly or
    through the other `env` entries or the matrix values they read; None when any may be read
    (`toJSON(vars)`, a computed key)."""
    read: set[str] = set()
    for step in steps:
        env = {**playbook.env, **step.env}
        by_folded = {name.casefold(): name for name in env}
        pending = [env[name] for name in names if name in env]
        seen = {name.casefold() for name in names}
        matrix_seen = False
        while pending:
            text = pending.pop()
            if "${{" not in text:
                continue
            from ci_orchestrator.expressions import evaluation  # only for secrets written as expressions

            contexts = evaluation.keys_read(text)
            if "vars" in contexts:
                keys = contexts["vars"]
                if keys is None:
                    return None
                read.update(keys)
            if "env" in contexts:
                env_keys = contexts["env"]
                for key in (set(by_folded) if env_keys is None else set(env_keys)) - seen:
                    seen.add(key)
                    if key in by_folded:
                        pending.append(env[by_folded[key]])
            if "matrix" in contexts and step.matrix is not None and not matrix_seen:
                matrix_seen = True
                pending.extend(templates(step.matrix))
    return frozenset(read)
