"""`--select` expressions: ids, numeric ranges, wildcards, `stage:`, `tag:` and `!` exclusions."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING

from ci_orchestrator.errors import UsageError

if TYPE_CHECKING:
    from ci_orchestrator.plan import Plan
    from ci_orchestrator.playbook import Instance

_RANGE = re.compile(r"^(\d+)-(\d+)$")


@dataclass(frozen=True, slots=True, kw_only=True)
class Term:
    """One comma-separated term; `negated` for a `!TERM`."""

    text: str
    negated: bool = False

    def matches(self, instance: Instance) -> bool:
        step = instance.step
        if self.text.startswith("group:"):
            return step.block is not None and step.block.casefold() == self.text[6:].casefold()
        return matches(
            self.text, instance.id, step_id=step.id, number=step.number, stage=step.stage, tags=step.tags
        )


def matches(
    term: str,
    instance_id: str,
    *,
    step_id: str,
    number: str | None = None,
    stage: str | None = None,
    tags: tuple[str, ...] = (),
) -> bool:
    """Whether one plain term names this instance (by instance id, step id or script number)."""
    if term.startswith("stage:"):
        return stage is not None and stage.casefold() == term[6:].casefold()
    if term.startswith("tag:"):
        wanted = term[4:].casefold()
        return any(tag.casefold() == wanted for tag in tags)
    names = [instance_id, step_id] + ([number] if number else [])
    numeric = _RANGE.match(term)
    if numeric:
        low, high = int(numeric[1]), int(numeric[2])
        if any(name.isdigit() and low <= int(name) <= high for name in names):
            return True
    if any(char in term for char in "*?["):
        return any(fnmatchcase(name, term) for name in names)
    return term in names


def _split(expression: str) -> list[str]:
    """Comma-separated terms; a comma inside parentheses belongs to a matrix instance id."""
    parts, depth, current = [], 0, ""
    for char in expression:
        depth += (char == "(") - (char == ")")
        if char == "," and depth <= 0:
            parts.append(current)
            current = ""
        else:
            current += char
    return [*parts, current]


def parse(expression: str) -> list[Term]:
    terms = []
    for raw in _split(expression):
        text = raw.strip()
        negated = text.startswith("!")
        text = text[1:].strip() if negated else text
        if not text:
            raise UsageError(f"--select {expression!r}: empty term")
        terms.append(Term(text=text, negated=negated))
    return terms


def select(plan: Plan, expression: str | None, *, only: bool = False) -> Plan:
    """The sub-plan of the selected instances, plus what they need unless `only`."""
    if not expression:
        return plan
    terms = parse(expression)
    plain = [term for term in terms if not term.negated]
    excluded = [term for term in terms if term.negated]
    for term in plain:
        if not any(term.matches(instance) for instance in plan.instances):
            names = list(dict.fromkeys(name for i in plan.instances for name in (i.step.id, i.id)))
            hint = difflib.get_close_matches(term.text, names, n=1)
            suggestion = f" (did you mean '{hint[0]}'?)" if hint else ""
            raise UsageError(f"--select: '{term.text}' matches no step{suggestion}")
    chosen = [
        instance.id
        for instance in plan.instances
        if (not plain or any(term.matches(instance) for term in plain))
        and not any(term.matches(instance) for term in excluded)
    ]
    return plan.subset(chosen if only else _with_needs(plan, chosen))


def _with_needs(plan: Plan, chosen: list[str]) -> set[str]:
    wanted = set(chosen)
    stack = list(chosen)
    while stack:
        for needed in plan.requires[stack.pop()]:
            if needed not in wanted:
                wanted.add(needed)
                stack.append(needed)
    return wanted
