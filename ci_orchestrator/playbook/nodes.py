"""YAML or JSON text -> a tree of located nodes, composed from PyYAML's event stream.

Every node keeps its 1-based line and column so that later checks can point at the exact key or
value. Composition is bounded: aliases may not expand the document by more than
`MAX_ALIAS_NODES` nodes (billion laughs), a document may not exceed `MAX_NODES`, and nesting
deeper than `MAX_DEPTH` is refused. Plain scalars are resolved lazily by YAML 1.2's core schema,
as GitHub's workflow parser reads them: `yes`, `on`, `NO` stay text and `010` is ten (PyYAML's
YAML 1.1 rules would give booleans and an octal number); timestamps stay text.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeAlias

import yaml
from yaml import events

if TYPE_CHECKING:
    from collections.abc import Callable

MAX_DEPTH = 100
MAX_NODES = 1_000_000
MAX_ALIAS_NODES = 100_000

_YAML = "tag:yaml.org,2002:"
_STR, _INT, _FLOAT, _BOOL, _NULL = (f"{_YAML}{name}" for name in ("str", "int", "float", "bool", "null"))
_KNOWN_TAGS = frozenset({_STR, _INT, _FLOAT, _BOOL, _NULL})

try:  # libyaml is several times faster; the pure-Python parser gives the same events
    _Parser: type[Any] = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - PyYAML built without libyaml
    _Parser = yaml.SafeLoader

_CONSTRUCTOR = yaml.constructor.SafeConstructor()
_CONSTRUCT: dict[str, Callable[[yaml.ScalarNode], Any]] = {
    _INT: _CONSTRUCTOR.construct_yaml_int,
    _FLOAT: _CONSTRUCTOR.construct_yaml_float,
    _BOOL: _CONSTRUCTOR.construct_yaml_bool,
}


_NULLS = frozenset({"", "~", "null", "Null", "NULL"})
_BOOLEANS = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}
_INFINITIES = frozenset({".inf", ".Inf", ".INF"})
_NANS = frozenset({".nan", ".NaN", ".NAN"})
_CORE_INT = re.compile(r"[-+]?[0-9]+")
_CORE_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")
_OCTAL_DIGITS = frozenset("01234567")


def core_value(text: str) -> Any:
    """The value of a plain scalar by YAML 1.2's core schema (None, bool, int, float or the text).

    Raises ValueError for a number too long to read.
    """
    if text in _NULLS:
        return None
    if text in _BOOLEANS:
        return _BOOLEANS[text]
    if _CORE_INT.fullmatch(text):
        return int(text)
    if len(text) > 2 and text[0] == "0":
        digits = text[2:]
        if text[1] == "x" and _HEX_DIGITS.issuperset(digits):
            return int(digits, 16)
        if text[1] == "o" and _OCTAL_DIGITS.issuperset(digits):
            return int(digits, 8)
    if _CORE_FLOAT.fullmatch(text):
        return float(text)
    unsigned = text[1:] if text[:1] in ("-", "+") else text
    if unsigned in _INFINITIES:
        return -math.inf if text[0] == "-" else math.inf
    if text in _NANS:
        return math.nan
    return text


class ComposeError(Exception):
    """The text is not a usable document; carries the 1-based place when known."""

    def __init__(self, message: str, *, line: int = 0, column: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.column = column


@dataclass(frozen=True, slots=True, kw_only=True)
class Scalar:
    """A scalar as written. `plain` scalars (unquoted, untagged) get their type from their text."""

    text: str
    line: int
    column: int
    plain: bool = False
    tag: str | None = None

    @property
    def value(self) -> Any:
        """The Python value: a plain scalar's by YAML 1.2's core schema, a tagged one's by its tag.

        Raises ValueError when the text cannot be converted (a number too long to read).
        """
        if self.tag is None:
            return core_value(self.text) if self.plain else self.text
        if self.tag == _NULL:
            return None
        construct = _CONSTRUCT.get(self.tag)
        if construct is None:
            return self.text
        return construct(yaml.ScalarNode(self.tag, self.text))


@dataclass(frozen=True, slots=True, kw_only=True)
class Sequence:
    items: tuple[Node, ...]
    line: int
    column: int
    size: int = 1  # nodes in this subtree, aliases expanded


@dataclass(frozen=True, slots=True, kw_only=True)
class Mapping:
    """Entries in written order (merge keys `<<` applied); duplicate keys are reported by `compose`."""

    entries: tuple[tuple[Node, Node], ...]
    line: int
    column: int
    size: int = 1


Node: TypeAlias = Scalar | Sequence | Mapping


def size_of(node: Node) -> int:
    return 1 if isinstance(node, Scalar) else node.size


def unreadable(node: Node) -> Scalar | None:
    """The first scalar in `node` whose value cannot be read (a number too long), or None."""
    if not isinstance(node, Scalar):
        parts = node.items if isinstance(node, Sequence) else [kv for entry in node.entries for kv in entry]
        return next((found for part in parts if (found := unreadable(part)) is not None), None)
    try:
        node.value  # noqa: B018  read for its error
    except ValueError:
        return node
    return None


def to_python(node: Node) -> Any:
    """Plain Python data (dicts, lists, scalars) for values the model keeps as they are."""
    if isinstance(node, Scalar):
        return node.value
    if isinstance(node, Sequence):
        return [to_python(item) for item in node.items]
    return {_hashable(to_python(key)): to_python(value) for key, value in node.entries}


def _hashable(value: Any) -> Any:
    return value if isinstance(value, str | int | float | bool | None) else repr(value)


@dataclass(frozen=True, slots=True, kw_only=True)
class Duplicate:
    """A key written twice in one mapping: where the second one is, and where the first was."""

    key: str
    path: str
    line: int
    column: int
    first_line: int


@dataclass(slots=True)
class _Frame:
    start: events.CollectionStartEvent
    label: str | int | None
    items: list[Node]
    size: int = 1


def compose(text: str) -> tuple[Node, list[Duplicate]]:
    """The single document in `text` and the duplicate keys found in it.

    Raises ComposeError for syntax errors, an empty text, several documents, and documents that
    are too deep or too big.
    """
    parser = _Parser(text)
    try:
        return _Composer(parser).run()
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        context, started = error.context, error.context_mark
        if context and started is not None and mark is not None and started.line != mark.line:
            # An unclosed quote or bracket is found lines later: say where it was opened.
            context += f" started at line {started.line + 1}, column {started.column + 1},"
        message = " ".join(part for part in (context, error.problem) if part) or "invalid YAML"
        if mark is None:
            raise ComposeError(message) from None
        if _char_at(text, mark.line, mark.column) == "\t":
            message += " (a tab: YAML indents with spaces only)"
        raise ComposeError(message, line=mark.line + 1, column=mark.column + 1) from None
    except (yaml.YAMLError, ValueError) as error:  # surrogates, bad bytes: no place to point at
        raise ComposeError(f"invalid YAML: {error}") from None
    finally:
        parser.dispose()


# A UTF-16 surrogate pair escaped in JSON (`\ud83d\ude00`, as `json.dumps` writes an emoji), not
# preceded by an escaped backslash: PyYAML reads `\U0001f600` but not the pair.
_SURROGATE_PAIR = re.compile(r"(?<!\\)((?:\\\\)*)\\u(d[89ab][0-9a-f]{2})\\u(d[c-f][0-9a-f]{2})", re.I)


def compose_json(text: str) -> tuple[Node, list[Duplicate]]:
    """As `compose`, for text that must be strict JSON: what `json` refuses (a trailing comma, a
    comment, single quotes) is a ComposeError at its place. An escaped surrogate pair shifts the
    columns after it on its line by two."""
    import json

    try:
        json.loads(text, parse_constant=_not_json)
    except json.JSONDecodeError as error:
        raise ComposeError(f"invalid JSON: {error.msg}", line=error.lineno, column=error.colno) from None
    except _NotJsonError as error:
        raise ComposeError(f"invalid JSON: {error.args[0]} is not a JSON value") from None
    except RecursionError:
        raise ComposeError(f"nested more than {MAX_DEPTH} levels deep") from None
    return compose(_SURROGATE_PAIR.sub(_joined_pair, text))


class _NotJsonError(Exception):
    """`NaN`, `Infinity` or `-Infinity`: Python's `json` reads them, JSON has no such values."""


def _not_json(constant: str) -> None:
    raise _NotJsonError(constant)


def _joined_pair(match: re.Match[str]) -> str:
    high, low = int(match[2], 16), int(match[3], 16)
    return f"{match[1]}\\U{0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00):08x}"


def _char_at(text: str, line: int, column: int) -> str:
    """The character at a 0-based place, or "" past the end."""
    lines = text.split("\n", line + 1)
    return lines[line][column : column + 1] if line < len(lines) else ""


class _Composer:
    def __init__(self, parser: Any) -> None:
        self.parser = parser
        self.anchors: dict[str, Node] = {}
        self.open_anchors: set[str] = set()
        self.duplicates: list[Duplicate] = []
        self.written = 0  # nodes as written
        self.expanded = 0  # nodes added by aliases, each alias counting its whole subtree

    def run(self) -> tuple[Node, list[Duplicate]]:
        get_event = self.parser.get_event
        get_event()  # StreamStart
        if isinstance(self.parser.peek_event(), events.StreamEndEvent):
            raise ComposeError("the file is empty")
        get_event()  # DocumentStart
        root = self.document(get_event)
        get_event()  # DocumentEnd
        extra = get_event()
        if not isinstance(extra, events.StreamEndEvent):
            raise _error("a playbook is a single document; found another one", extra)
        return root, self.duplicates

    def document(self, get_event: Callable[[], events.Event]) -> Node:
        stack: list[_Frame] = []
        scalar_event, alias_event = events.ScalarEvent, events.AliasEvent
        start_events = (events.SequenceStartEvent, events.MappingStartEvent)
        make_scalar = Scalar
        while True:
            event: Any = get_event()
            kind = type(event)
            node: Node
            if kind is scalar_event:
                self.written += 1
                if event.tag is None and event.anchor is None:  # the common case, kept short
                    mark = event.start_mark
                    node = make_scalar(
                        text=event.value,
                        line=mark.line + 1,
                        column=mark.column + 1,
                        plain=event.implicit[0] and not event.style,
                    )
                else:
                    node = self.scalar(event)
            elif kind is alias_event:
                node = self.alias(event)
                self.expanded += size_of(node)
                self.check_size(event)
            elif kind in start_events:
                if len(stack) >= MAX_DEPTH:
                    raise _error(f"nested more than {MAX_DEPTH} levels deep", event)
                if event.anchor is not None:
                    self.open_anchors.add(event.anchor)
                stack.append(_Frame(event, _label(stack[-1]) if stack else None, []))
                continue
            else:  # the end of the innermost collection
                node = self.close(stack.pop(), stack)
                self.written += 1
                self.check_size(event)
            if not stack:
                return node
            parent = stack[-1]
            parent.items.append(node)
            parent.size += 1 if type(node) is make_scalar else node.size  # type: ignore[union-attr]

    def scalar(self, event: events.ScalarEvent) -> Scalar:
        tag = None if event.tag in (None, "!") else event.tag
        if tag is not None and tag not in _KNOWN_TAGS:
            raise _error(f"unsupported tag {tag!r}", event)
        line, column = _place(event)
        node = Scalar(
            text=event.value,
            line=line,
            column=column,
            plain=tag is None and event.implicit[0] and not event.style,
            tag=tag,
        )
        if event.anchor is not None:
            self.anchors[event.anchor] = node
        return node

    def alias(self, event: events.AliasEvent) -> Node:
        anchor = event.anchor or ""
        if anchor in self.open_anchors:
            raise _error(f"alias *{anchor} refers to a node that contains it", event)
        try:
            return self.anchors[anchor]
        except KeyError:
            raise _error(f"unknown alias *{anchor}", event) from None

    def check_size(self, event: events.Event) -> None:
        """Refuses a document whose aliases expand it too far; `expanded` counts alias subtrees."""
        if self.expanded > MAX_ALIAS_NODES or self.written + self.expanded > MAX_NODES:
            raise _error(
                f"aliases expand the document past its limits ({MAX_ALIAS_NODES:,} nodes added by aliases, "
                f"{MAX_NODES:,} in all); refusing to read it",
                event,
            )

    def close(self, frame: _Frame, stack: list[_Frame]) -> Node:
        start = frame.start
        line, column = _place(start)
        tag = None if start.tag in (None, "!") else start.tag
        if start.anchor is not None:
            self.open_anchors.discard(start.anchor)
        node: Node
        if isinstance(start, events.SequenceStartEvent):
            if tag not in (None, f"{_YAML}seq"):
                raise ComposeError(f"unsupported tag {tag!r}", line=line, column=column)
            node = Sequence(items=tuple(frame.items), line=line, column=column, size=frame.size)
        else:
            if tag not in (None, f"{_YAML}map"):
                raise ComposeError(f"unsupported tag {tag!r}", line=line, column=column)
            entries = self.entries(frame, stack)
            node = Mapping(entries=entries, line=line, column=column, size=frame.size)
        if start.anchor is not None:
            self.anchors[start.anchor] = node
        return node

    def entries(self, frame: _Frame, stack: list[_Frame]) -> tuple[tuple[Node, Node], ...]:
        items = frame.items
        explicit = list(zip(items[::2], items[1::2], strict=True))
        merged: list[tuple[Node, Node]] = []
        seen: dict[str, Scalar] = {}
        for key, value in explicit:
            if type(key) is not Scalar:
                continue
            if key.plain and key.text == "<<":
                merged.extend(_merge_entries(value))
                continue
            first = seen.get(key.text)
            if first is None:
                seen[key.text] = key
                continue
            path = _path([*stack, frame], key.text)
            self.duplicates.append(
                Duplicate(key=key.text, path=path, line=key.line, column=key.column, first_line=first.line)
            )
        if not merged:
            return tuple(explicit)
        # Explicit keys override merged ones; earlier merged mappings override later ones.
        result: dict[Any, tuple[Node, Node]] = {}
        for key, value in merged:
            result.setdefault(_key_identity(key), (key, value))
        for key, value in explicit:
            if not _is_merge_key(key):
                result[_key_identity(key)] = (key, value)
        frame.size += sum(size_of(key) + size_of(value) for key, value in merged)
        return tuple(result.values())


def _place(event: events.Event) -> tuple[int, int]:
    mark = event.start_mark
    return (mark.line + 1, mark.column + 1) if mark is not None else (0, 0)


def _error(message: str, event: events.Event) -> ComposeError:
    line, column = _place(event)
    return ComposeError(message, line=line, column=column)


def _label(parent: _Frame) -> str | int | None:
    """How the collection about to start is named in its parent: a key, or an index."""
    items = parent.items
    if isinstance(parent.start, events.SequenceStartEvent):
        return len(items)
    if len(items) % 2 == 1 and isinstance(items[-1], Scalar):
        return items[-1].text
    return None


def _path(frames: list[_Frame], key: str) -> str:
    parts = ""
    for frame in frames[1:]:
        label = frame.label
        parts += f"[{label}]" if isinstance(label, int) else f".{label}" if parts else str(label)
    return f"{parts}.{key}" if parts else key


def _key_identity(key: Node) -> Any:
    # Keys are compared as written: playbook keys are plain words, and `1` and `01` stay apart.
    return key.text if isinstance(key, Scalar) else id(key)


def _is_merge_key(key: Node) -> bool:
    return isinstance(key, Scalar) and key.plain and key.text == "<<"


def _merge_entries(value: Node) -> list[tuple[Node, Node]]:
    if isinstance(value, Mapping):
        return list(value.entries)
    if isinstance(value, Sequence) and all(isinstance(item, Mapping) for item in value.items):
        return [entry for item in value.items if isinstance(item, Mapping) for entry in item.entries]
    raise ComposeError(
        "a merge key '<<' takes a mapping or a list of mappings", line=value.line, column=value.column
    )
