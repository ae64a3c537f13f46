"""GitHub's matrix rules: a matrix's expressions evaluated into its values, its combinations
(product, `exclude`, `include`) and the names of its instances.

Instance ids follow GitHub's job names: `STEP (v1, v2)`, the combination's values in key order.
Null and empty values are left out, and an object or array value shows its scalar leaves in order.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ci_orchestrator.errors import PlaybookError
from ci_orchestrator.playbook.model import MatrixSpec

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

MAX_COMBINATIONS = 256  # GitHub's limit of jobs per matrix
_PRODUCT_LIMIT = 65_536  # combinations walked before `exclude`: refuse runaway products early


def combinations(spec: MatrixSpec) -> list[dict[str, Any]]:
    """The combinations of a matrix, in GitHub's order: the product (first key outermost) less
    `exclude` (partial matches), then each `include` entry merged into every original combination
    whose axis values it does not change, or else appended as a combination of its own."""
    for axis, values in spec.axes.items():
        if not values:
            raise PlaybookError(f"matrix axis '{axis}' has no values")
    for entry in spec.exclude:
        for key in entry:
            if key not in spec.axes:
                raise PlaybookError(f"exclude key '{key}' is not a matrix axis (axes: {listed(spec.axes)})")
    size = math.prod(len(values) for values in spec.axes.values()) if spec.axes else 0
    if size > _PRODUCT_LIMIT:
        raise PlaybookError(f"matrix has {size} combinations; at most {MAX_COMBINATIONS} are allowed")
    names = list(spec.axes)
    base: list[dict[str, Any]] = []
    for values in itertools.product(*spec.axes.values()) if names else ():
        combination = dict(zip(names, values, strict=True))
        if not any(_contains(combination, entry) for entry in spec.exclude):
            base.append(combination)
    extra: list[dict[str, Any]] = []
    for entry in spec.include:
        matched = False
        for combination in base:
            # Only original axes block a merge: values added by an earlier include may be replaced.
            if all(_same(combination[key], value) for key, value in entry.items() if key in spec.axes):
                combination.update(entry)
                matched = True
        if not matched:
            extra.append(dict(entry))
    result = base + extra
    if names and not result:  # as on GitHub, `include` entries may take the place of all of them
        raise PlaybookError("matrix `exclude` removes every combination")
    if len(result) > MAX_COMBINATIONS:
        raise PlaybookError(f"matrix has {len(result)} combinations; at most {MAX_COMBINATIONS} are allowed")
    return result


def _contains(combination: Mapping[str, Any], entry: Mapping[str, Any]) -> bool:
    return all(key in combination and _same(combination[key], value) for key, value in entry.items())


def _same(a: Any, b: Any) -> bool:
    """Equal as data: `true` is not `1`, `'1'` is not `1`, objects compare key by key."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, Mapping) or isinstance(b, Mapping):
        return (
            isinstance(a, Mapping)
            and isinstance(b, Mapping)
            and a.keys() == b.keys()
            and all(_same(a[key], b[key]) for key in a)
        )
    if isinstance(a, list | tuple) or isinstance(b, list | tuple):
        return (
            isinstance(a, list | tuple)
            and isinstance(b, list | tuple)
            and len(a) == len(b)
            and all(_same(x, y) for x, y in zip(a, b, strict=True))
        )
    return bool(type(a) is type(b) or {type(a), type(b)} <= {int, float}) and bool(a == b)


def _labels(value: Any) -> Iterator[str]:
    if isinstance(value, Mapping):
        for item in value.values():
            yield from _labels(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _labels(item)
    elif value is not None and value != "":
        # Imported here: a step without a matrix is named without the expression modules.
        from ci_orchestrator.expressions.values import to_string

        yield to_string(value)


def instance_id(step_id: str, combination: Mapping[str, Any]) -> str:
    """`STEP (v1, v2)` as GitHub names matrix jobs; the step id alone without a matrix."""
    labels = [label for value in combination.values() for label in _labels(value)]
    return f"{step_id} ({', '.join(labels)})" if labels else step_id


def env_name(key: str) -> str:
    """`MATRIX_<KEY>`: upper case, with anything a shell name cannot hold turned into `_`."""
    return "MATRIX_" + re.sub(r"[^A-Za-z0-9_]", "_", key).upper()


def listed(values: Iterator[str] | Sequence[str] | Mapping[str, Any]) -> str:
    """Values for a message: `a, b, c`, or `none`."""
    return ", ".join(values) or "none"


def resolved(spec: MatrixSpec, contexts: Mapping[str, Any]) -> MatrixSpec:
    """The matrix with its expressions evaluated: a whole-matrix `${{ fromJSON(...) }}`, or values
    (an axis written as one expression may give the whole list)."""
    from ci_orchestrator.expressions import evaluation  # lazily: most matrices hold no expression

    if spec.expression is not None:
        return _spec_from(evaluation.evaluate_template(spec.expression, contexts))

    def value(item: Any) -> Any:
        is_template = isinstance(item, str) and evaluation.has_expression(item)
        return evaluation.evaluate_template(item, contexts) if is_template else item

    axes: dict[str, tuple[Any, ...]] = {}
    for axis, values in spec.axes.items():
        given = [value(item) for item in values]
        single = len(values) == 1 and isinstance(values[0], str) and isinstance(given[0], list)
        axes[axis] = tuple(given[0]) if single else tuple(given)
    return MatrixSpec(
        axes=axes,
        include=tuple({key: value(item) for key, item in entry.items()} for entry in spec.include),
        exclude=tuple({key: value(item) for key, item in entry.items()} for entry in spec.exclude),
    )


def _spec_from(value: Any) -> MatrixSpec:
    """A matrix given as data (from `fromJSON`)."""
    from ci_orchestrator.expressions import evaluation  # lazily: most matrices hold no expression

    if not isinstance(value, Mapping):
        raise PlaybookError(f"matrix expression must give an object, got {evaluation.as_text(value)!r}")
    axes: dict[str, tuple[Any, ...]] = {}
    lists: dict[str, tuple[Mapping[str, Any], ...]] = {"include": (), "exclude": ()}
    for key, values in value.items():
        if not isinstance(values, list):
            raise PlaybookError(f"matrix '{key}' must be a list, got {evaluation.as_text(values)!r}")
        if key in lists:
            if not all(isinstance(entry, Mapping) for entry in values):
                raise PlaybookError(f"matrix '{key}' must be a list of objects")
            lists[key] = tuple(values)
        else:
            axes[key] = tuple(values)
    return MatrixSpec(axes=axes, include=lists["include"], exclude=lists["exclude"])
