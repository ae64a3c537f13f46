"""`${{ matrix.KEY }}` checked against the keys a matrix gives, as actionlint checks a workflow,
and the `${{ vars.NAME }}` read noted with their places.

A step's matrix has the keys of its axes and of its `include` entries (a key that an entry adds
to some combinations only is still a key: the others read it as null). `--matrix` restricts an
axis or replaces its values, and never adds a key. On GitHub a key no combination has reads as
null, so a misspelt axis would silently be an empty string: here it is an error, located at the
value that reads it. The playbook's `env` and `defaults` are evaluated for every step, so they
may read the key of any step's matrix.

A variable is declared under `vars:` or given with `--var`, so the names read are checked when a
command knows its `--var` (by the matrix module, which evaluates them): the reads are kept in
`Checker.variable_reads`. On GitHub an unknown variable is an empty string; here it is an error.

Not checked: a matrix written as one `${{ }}` (its keys are known only once it is evaluated),
and reads that name no key (`toJSON(matrix)`, `matrix[format(...)]`, `matrix.*`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ci_orchestrator.errors import ExpressionError, did_you_mean
from ci_orchestrator.playbook.model import VariableRead
from ci_orchestrator.playbook.nodes import Mapping, Scalar, Sequence

if TYPE_CHECKING:
    from collections import abc
    from collections.abc import Iterator

    from ci_orchestrator.playbook.checks import Checker
    from ci_orchestrator.playbook.model import MatrixSpec, Step
    from ci_orchestrator.playbook.nodes import Node

# The keys of a step entry whose text is evaluated for each of its instances.
STEP_KEYS = (
    "name", "run", "command", "args", "env", "if", "working-directory", "timeout",
    "continue-on-error", "inputs", "outputs", "junit",
)  # fmt: skip
# The keys of `defaults:` whose text is evaluated for each instance of every step.
DEFAULTS_KEYS = ("env", "working-directory", "timeout")


def keys_of(spec: MatrixSpec | None) -> tuple[str, ...] | None:
    """The keys of a matrix (none without one); None when it is one `${{ }}`."""
    if spec is None:
        return ()
    if spec.expression is not None:
        return None
    return tuple(dict.fromkeys([*spec.axes, *(str(key) for entry in spec.include for key in entry)]))


def check_step(checker: Checker, values: abc.Mapping[str, Node], path: str, spec: MatrixSpec | None) -> None:
    """Report each `matrix.KEY` of a step entry's texts that its matrix does not have, and note
    each `vars.NAME` they read. A `matrix:` that could not be read (`spec` None although
    written) was reported already: its keys are not checked."""
    keys = None if "matrix" in values and spec is None else keys_of(spec)
    scope = "" if keys else ": the step has no matrix"
    for key in STEP_KEYS:
        if key in values:
            node, where = values[key], f"{path}.{key}"
            _check(
                checker, node, where, keys, scope=scope, step=path, argv=key == "args", condition=key == "if"
            )
    if "matrix" in values:  # its values may read variables (a matrix never reads itself)
        _check(checker, values["matrix"], f"{path}.matrix", None, scope="", step=path)


def check_shared(checker: Checker, values: abc.Mapping[str, Node], steps: abc.Sequence[Step]) -> None:
    """Report each `matrix.KEY` of the playbook's `env` and `defaults` that no step's matrix
    has, and note each `vars.NAME` they read."""
    found_keys: tuple[str, ...] | None = None
    if all(_keys_known(step) for step in steps):
        found_keys = tuple(dict.fromkeys(key for step in steps for key in keys_of(step.matrix) or ()))
    scope = " in any step" if found_keys else ": no step has a matrix"
    if "env" in values:
        _check(checker, values["env"], "env", found_keys, scope=scope)
    defaults = values.get("defaults")
    if isinstance(defaults, Mapping):
        for key_node, value in defaults.entries:
            if isinstance(key_node, Scalar) and key_node.text in DEFAULTS_KEYS:
                _check(checker, value, f"defaults.{key_node.text}", found_keys, scope=scope)


def _keys_known(step: Step) -> bool:
    """Whether a step's matrix keys are known: not for one `${{ }}`, nor one that could not be read."""
    return keys_of(step.matrix) is not None and not (step.matrix is None and "matrix" in step.key_locations)


def _check(
    checker: Checker,
    node: Node,
    path: str,
    keys: tuple[str, ...] | None,
    *,
    scope: str,
    step: str | None = None,
    argv: bool = False,
    condition: bool = False,
) -> None:
    """Report the matrix keys that `keys` lacks (None: any key may be there) in the texts of
    `node`, and note the variables they read (by the step at `step`, None for every step);
    `condition` for an `if:`, which is an expression with or without `${{ }}`."""
    known = {key.casefold() for key in keys or ()}
    for where, scalar in _scalars(node, path, argv=argv):
        text = scalar.text
        if not (condition or "${{" in text):
            continue
        lowered = text.lower()
        reads_matrix, reads_vars = keys is not None and "matrix" in lowered, "vars" in lowered
        if not (reads_matrix or reads_vars):
            continue
        from ci_orchestrator.expressions import evaluation  # lazily: most texts read neither

        try:
            matrix_keys = evaluation.keys_named(text, "matrix", condition=condition) if reads_matrix else []
            variables = evaluation.keys_named(text, "vars", condition=condition) if reads_vars else []
        except ExpressionError:
            continue  # not an expression: the matrix module reports it where it is
        for name in dict.fromkeys(matrix_keys):
            if name.casefold() not in known:
                checker.problem(scalar, where, _message(name, keys or (), scope))
        for name in {name.casefold(): name for name in variables}.values():
            read = VariableRead(name=name, location=checker.at(scalar), path=where, step=step)
            checker.variable_reads.append(read)


def _message(name: str, keys: tuple[str, ...], scope: str) -> str:
    if not keys:
        return f"matrix has no key {name!r}{scope}"
    hint = did_you_mean(name, keys) or f" (its keys: {', '.join(keys)})"
    return f"matrix has no key {name!r}{scope}{hint}"


def _scalars(node: Node, path: str, *, argv: bool) -> Iterator[tuple[str, Scalar]]:
    """The scalars of a value with their paths; with `argv`, a mapping's keys too (`args:`
    written as a mapping makes `--KEY` arguments of them)."""
    if isinstance(node, Scalar):
        yield path, node
    elif isinstance(node, Sequence):
        for index, item in enumerate(node.items):
            yield from _scalars(item, f"{path}[{index}]", argv=argv)
    elif isinstance(node, Mapping):
        for key, value in node.entries:
            name = key.text if isinstance(key, Scalar) else "?"
            if argv and isinstance(key, Scalar):
                yield f"{path}.{name}", key
            yield from _scalars(value, f"{path}.{name}", argv=argv)
