"""`--select` expressions: ids, numeric ranges, wildcards, `stage:`, `tag:` and `!` exclusions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ci_orchestrator import graph, terms
from ci_orchestrator.errors import UsageError, did_you_mean

if TYPE_CHECKING:
    from ci_orchestrator.plan import Plan
    from ci_orchestrator.playbook import Instance


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
    parsed = []
    for raw in _split(expression):
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
    terms = parse(expression)
    plain = [term for term in terms if not term.negated]
    excluded = [term for term in terms if term.negated]
    for term in plain:
        if not any(term.matches(instance) for instance in plan.instances):
            names = list(dict.fromkeys(name for i in plan.instances for name in (i.step.id, i.id)))
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


def _named_whole(plan: Plan, expression: str) -> list[str]:
    """The instances of an expression that is exactly one matrix instance's id or `group:NAME` of
    a group, taken whole: such names may hold commas, parentheses and wildcard characters of their
    own (`test (a)b,c)`, `test ([x])`, `group:lint, test`), which terms would read as syntax."""
    text = expression.strip()
    instance = plan.by_id.get(text)
    if instance is not None and instance.step.id != text:
        return [text]
    if text.startswith("group:"):
        name = text[6:].casefold()
        return [i.id for i in plan.instances if i.step.block is not None and i.step.block.casefold() == name]
    return []


def _with_needs(plan: Plan, chosen: list[str]) -> set[str]:
    return set(chosen) | graph.reachable(plan.requires, chosen)
