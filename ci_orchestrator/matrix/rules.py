"""GitHub's matrix rules: the combinations of a matrix (product, `exclude`, `include`) and the
names of its instances.

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

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from ci_orchestrator.playbook.model import MatrixSpec

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
    if names and not base:
        raise PlaybookError("matrix `exclude` removes every combination")
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
