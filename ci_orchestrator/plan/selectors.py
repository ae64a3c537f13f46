"""`--select` expressions: ids, numeric ranges, wildcards, `stage:`, `tag:`, `group:` and `!`
exclusions."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ci_orchestrator.errors import UsageError, did_you_mean
from ci_orchestrator.plan import graph
from ci_orchestrator.playbook import terms

if TYPE_CHECKING:
    from collections.abc import Collection, Sequence

    from ci_orchestrator.plan.ordering import Plan
    from ci_orchestrator.playbook.model import Instance


@dataclass(frozen=True, slots=True, kw_only=True)
class Term:
    """One comma-separated term; `negated` for a `!TERM`."""

    text: str
    negated: bool = False

    def matches(self, instance: Instance) -> bool:
        step = instance.step
        if self.text.startswith("group:"):
            return step.block is not None and step.block.casefold() == self.text[6:].casefold()
        names = [instance.id, step.id] + ([step.number] if step.number else [])
        return terms.matches(self.text, names, stage=step.stage, tags=step.tags)


_GROUP_TERM = re.compile(r"\s*(?:!\s*)?group:")


def _split(expression: str, groups: Collection[str] = ()) -> list[str]:
    """Comma-separated terms. A comma inside parentheses belongs to a matrix instance id; one in
    a `group:NAME` term belongs to the name when a group of that name (commas and all) exists:
    the longest such name followed by a comma or the end is taken whole."""
    names = sorted(groups, key=len, reverse=True)
    parts: list[str] = []
    start = 0
    while True:
        end = _group_term_end(expression, start, names)
        if end is None:
            end = _term_end(expression, start)
        parts.append(expression[start:end])
        if end >= len(expression):
            return parts
        start = end + 1  # past the comma


def _term_end(expression: str, start: int) -> int:
    """Where the term starting at `start` ends: its comma, or the end of the expression."""
    depth = 0
    for index in range(start, len(expression)):
        char = expression[index]
        depth += (char == "(") - (char == ")")
        if char == "," and depth <= 0:
            return index
    return len(expression)


def _group_term_end(expression: str, start: int, names: Sequence[str]) -> int | None:
    """Where a `group:NAME` term naming one of `names` (longest first) ends, or None."""
    prefix = _GROUP_TERM.match(expression, start)
    if prefix is None:
        return None
    for name in names:
        end = prefix.end() + len(name)
        if expression[prefix.end() : end].casefold() != name.casefold():
            continue
        end += len(expression[end:]) - len(expression[end:].lstrip())
        if end == len(expression) or expression[end] == ",":
            return end
    return None


def parse(expression: str, *, groups: Collection[str] = ()) -> list[Term]:
    """The terms of `expression`; `groups` are the group names a `group:` term may name whole."""
    parsed = []
    for raw in _split(expression, groups):
        text = raw.strip()
        negated = text.startswith("!")
        text = text[1:].strip() if negated else text
        if not text:
            raise UsageError(f"--select {expression!r}: empty term")
        problem = terms.range_problem(text)
        if problem is not None:
            raise UsageError(f"--select: {problem}")
        parsed.append(Term(text=text, negated=negated))
    return parsed


def select(plan: Plan, expression: str | None, *, only: bool = False) -> Plan:
    """The sub-plan of the selected instances, plus what they need unless `only`."""
    if not expression:
        return plan
    whole = _named_whole(plan, expression)
    if whole:
        return plan.subset(whole if only else _with_needs(plan, whole))
    groups = {group.name for group in plan.playbook.groups}
    groups.update(i.step.block for i in plan.instances if i.step.block is not None)
    terms = parse(expression, groups=groups)
    plain = [term for term in terms if not term.negated]
    excluded = [term for term in terms if term.negated]
    for term in plain:
        if not any(term.matches(instance) for instance in plan.instances):
            names = list(dict.fromkeys(name for i in plan.instances for name in (i.step.id, i.id)))
            names += [f"group:{name}" for name in sorted(groups)]
            suggestion = did_you_mean(term.text, names)
            raise UsageError(f"--select: '{term.text}' matches no step{suggestion}")
    chosen = [
        instance.id
        for instance in plan.instances
        if (not plain or any(term.matches(instance) for term in plain))
        and not any(term.matches(instance) for term in excluded)
    ]
    if not chosen:
        raise UsageError(f"--select {expression!r}: every step it matches is excluded by a '!' term")
    return plan.subset(chosen if only else _with_needs(plan, chosen))


def select_exact(plan: Plan, ids: Sequence[str], *, only: bool = False) -> Plan:
    """The sub-plan of the instances with exactly these ids (no selector syntax: an id may hold
    wildcard characters or commas of its own), plus what they need unless `only`."""
    missing = [instance_id for instance_id in ids if instance_id not in plan.by_id]
    if missing:
        suggestion = did_you_mean(missing[0], list(plan.by_id))
        raise UsageError(f"no instance {missing[0]!r} in the playbook{suggestion}")
    chosen = list(dict.fromkeys(ids))
    return plan.subset(chosen if only else _with_needs(plan, chosen))


def _named_whole(plan: Plan, expression: str) -> list[str]:
    """The instance of an expression that is exactly one matrix instance's id, taken whole: such
    an id may hold commas, parentheses and wildcard characters of its own (`test (a)b,c)`,
    `test ([x])`), which terms would read as syntax."""
    text = expression.strip()
    instance = plan.by_id.get(text)
    if instance is not None and instance.step.id != text:
        return [text]
    return []


def _with_needs(plan: Plan, chosen: list[str]) -> set[str]:
    return set(chosen) | graph.reachable(plan.requires, chosen)
