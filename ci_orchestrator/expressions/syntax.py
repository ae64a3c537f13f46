"""The syntax of GitHub Actions' `${{ }}` expressions: tokens, the tree, and the parser.

Tokens and grammar follow GitHub's own parsers: a token runs to the next boundary character
(`( ) [ ] , . ! < > = & |` or white space), so `1.5.2`, `=2` or `0xFZ` are one bad token; a
number is what GitHub reads as one (`+1`, `.5`, `1e-3`, `0x1F`, `0o17`, `Infinity`, but not
`-0xFF` or `1e309`); `.prop` and `[index]` follow only a context, a call or a parenthesis.
Parsing never evaluates anything; function names and argument counts are checked here because
GitHub refuses them before running anything too, and so is too deep a nesting (both of GitHub's
measures of depth are applied: the parser's and the tree's).
"""

from __future__ import annotations

import difflib
import functools
import re
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any, NamedTuple, TypeAlias

from ci_orchestrator.errors import ExpressionError
from ci_orchestrator.expressions.numbers import WHITESPACE, literal_number

if TYPE_CHECKING:
    from collections.abc import Iterator

MAX_DEPTH = 50  # GitHub's limit on nesting
MAX_LENGTH = 21_000  # GitHub's limit on the characters of one expression
STATUS_FUNCTIONS = frozenset({"success", "failure", "always", "cancelled"})
_MAX_ARGUMENTS = 255
# Canonical name -> (fewest, most) arguments, as GitHub declares them.
ARITY: dict[str, tuple[int, int]] = {
    "case": (3, _MAX_ARGUMENTS),
    "contains": (2, 2),
    "startsWith": (2, 2),
    "endsWith": (2, 2),
    "format": (1, _MAX_ARGUMENTS),
    "join": (1, 2),
    "toJSON": (1, 1),
    "fromJSON": (1, 1),
    "hashFiles": (1, _MAX_ARGUMENTS),
    **dict.fromkeys(sorted(STATUS_FUNCTIONS), (0, 0)),
}
_FUNCTION_NAMES = {name.lower(): name for name in ARITY}  # GitHub ignores case in function names


# The syntax tree. Positions are 1-based offsets within the expression text.


@dataclass(frozen=True, slots=True, kw_only=True)
class Constant:
    value: Any


@dataclass(frozen=True, slots=True, kw_only=True)
class ContextName:
    name: str
    position: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Index:
    """`a.b`, `a['b']` and `a[0]`."""

    target: Node
    key: Node


@dataclass(frozen=True, slots=True, kw_only=True)
class Star:
    """`a.*` or `a[*]`: the values of an object or the items of an array, as a filtered array."""

    target: Node


@dataclass(frozen=True, slots=True, kw_only=True)
class Not:
    operand: Node


class Operator(Enum):
    EQ = "=="
    NE = "!="
    LT = "<"
    LE = "<="
    GT = ">"
    GE = ">="


@dataclass(frozen=True, slots=True, kw_only=True)
class Compare:
    operator: Operator
    left: Node
    right: Node


@dataclass(frozen=True, slots=True, kw_only=True)
class Logical:
    """`a && b && c` (all=True) or `a || b || c`, kept flat as GitHub keeps them (also when
    written `a && (b && c)`)."""

    all: bool
    operands: tuple[Node, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Call:
    name: str  # canonical spelling
    args: tuple[Node, ...]
    position: int


Node: TypeAlias = Constant | ContextName | Index | Star | Not | Compare | Logical | Call


@dataclass(frozen=True, slots=True, kw_only=True)
class Expression:
    """One parsed expression (the text between `${{` and `}}`)."""

    text: str
    root: Node

    def nodes(self) -> Iterator[Node]:
        stack: list[Node] = [self.root]
        while stack:
            node = stack.pop()
            yield node
            stack.extend(reversed(children(node)))

    @property
    def uses_status(self) -> bool:
        return any(isinstance(node, Call) and node.name in STATUS_FUNCTIONS for node in self.nodes())


def children(node: Node) -> tuple[Node, ...]:
    match node:
        case Index(target=target, key=key):
            return (target, key)
        case Star(target=target):
            return (target,)
        case Not(operand=operand):
            return (operand,)
        case Compare(left=left, right=right):
            return (left, right)
        case Logical(operands=operands):
            return operands
        case Call(args=args):
            return args
    return ()


# Tokens.

_BOUNDARY = re.escape("()[],.!<>=&|" + WHITESPACE)
_SCAN = re.compile(
    rf"(?P<space>[{re.escape(WHITESPACE)}]+)"
    r"|(?P<op>==|!=|<=|>=|&&|\|\||[()\[\],*!<>])"
    r"|(?P<string>')"
    r"|(?P<number>[-+.0-9])"
    r"|(?P<word>.)",
    re.DOTALL,
)
# A token runs to the next boundary character; a number also takes in dots (`1.5.2` is one token).
_WORD_REST = re.compile(rf"[^{_BOUNDARY}]*")
_NUMBER_REST = re.compile(rf"(?:[^{_BOUNDARY}]|\.)*")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_KEYWORDS: dict[str, tuple[str, Any]] = {
    "true": ("constant", True),
    "false": ("constant", False),
    "null": ("constant", None),
    "NaN": ("constant", float("nan")),
    "Infinity": ("constant", float("inf")),
}


class _Token(NamedTuple):  # a tuple: made by the thousand, and quicker to make than a dataclass
    kind: str  # op, constant, name, end
    text: str
    position: int
    value: Any = None
    op: str = ""  # the operator, for an op

    def is_op(self, *texts: str) -> bool:
        return self.op in texts


def error_at(message: str, text: str, position: int) -> ExpressionError:
    shown = text if len(text) <= 80 else text[:77] + "..."
    return ExpressionError(f"{message} at position {position} in expression '{shown.strip()}'")


def _string(text: str, start: int) -> tuple[str, int]:
    """A quoted string from `start` (`''` is a quote inside it) and the offset after it."""
    out: list[str] = []
    position = start + 1
    while (end := text.find("'", position)) != -1:
        out.append(text[position:end])
        if not text.startswith("''", end):
            return "".join(out), end + 1
        out.append("'")
        position = end + 2
    raise error_at("unterminated string", text, start + 1)


def _tokenize(text: str) -> list[_Token]:
    if len(text) > MAX_LENGTH:
        raise ExpressionError(f"expression longer than {MAX_LENGTH} characters (GitHub's limit)")
    tokens: list[_Token] = []
    position = 0
    while position < len(text):
        found = _SCAN.match(text, position)
        assert found is not None  # `word` takes any character
        start, what = position, found.lastgroup
        previous = tokens[-1] if tokens else None
        if what == "number" and text[start] == "." and previous is not None:
            # A dot after a name, `)`, `]` or `*` reads a property; anywhere else it starts a number.
            what = "op" if previous.kind == "name" or previous.op in (")", "]", "*") else what
        if what == "space":
            position = found.end()
        elif what == "op":
            position = found.end() if text[start] != "." else start + 1
            op = text[start:position]
            tokens.append(_Token(kind="op", text=op, position=start + 1, op=op))
        elif what == "string":
            string, position = _string(text, start)
            tokens.append(
                _Token(kind="constant", text=text[start:position], position=start + 1, value=string)
            )
        elif what == "number":
            position = _NUMBER_REST.match(text, start + 1).end()  # type: ignore[union-attr]
            number = literal_number(text[start:position])
            if number is None:
                raise error_at(f"'{text[start:position]}' is not a number", text, start + 1)
            tokens.append(
                _Token(kind="constant", text=text[start:position], position=start + 1, value=number)
            )
        else:
            position = _WORD_REST.match(text, start + 1).end()  # type: ignore[union-attr]
            word = text[start:position]
            if not _IDENTIFIER.fullmatch(word):
                raise error_at(f"unexpected '{word}'", text, start + 1)
            is_property = previous is not None and previous.op == "."
            kind, keyword = ("name", None) if is_property else _KEYWORDS.get(word, ("name", None))
            tokens.append(_Token(kind=kind, text=word, position=start + 1, value=keyword))
    tokens.append(_Token(kind="end", text="", position=len(text) + 1))
    return tokens


# Parsing.


class _Parser:
    """Recursive descent in GitHub's order of precedence (`||`, `&&`, `== !=`, `< <= > >=`, `!`,
    then `.`/`[]` after a context, call or parenthesis), counting depth where GitHub's parser
    counts it: each (sub)expression, each `&&`/`||` chain, each `!`, each `.`/`[]` of a chain."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.index = 0
        self.depth = 0
        self.deepest = 0  # the greatest depth reached
        self.comparisons = 0  # how many `==`, `<`... were read

    def peek(self) -> _Token:
        return self.tokens[self.index]

    def take(self) -> _Token:
        token = self.tokens[self.index]
        if token.kind != "end":
            self.index += 1
        return token

    def accept(self, *ops: str) -> _Token | None:
        token = self.tokens[self.index]
        if token.op in ops:  # "" (not an operator) is in none of them
            self.index += 1
            return token
        return None

    def expect(self, op: str, hint: str) -> None:
        if not self.accept(op):
            raise self.unexpected(hint)

    def unexpected(self, hint: str = "") -> ExpressionError:
        token = self.peek()
        what = "unexpected end of expression" if token.kind == "end" else f"unexpected '{token.text}'"
        return error_at(f"{what}{', ' + hint if hint else ''}", self.text, token.position)

    def deeper(self, levels: int = 1) -> None:
        self.depth += levels
        self.deepest = max(self.deepest, self.depth)
        if self.depth > MAX_DEPTH:
            raise error_at(f"nested deeper than {MAX_DEPTH} levels", self.text, self.peek().position)

    def parse(self) -> Node:
        if self.peek().kind == "end":
            return Constant(value=None)  # an empty expression is null, as on GitHub
        node = self.expression()
        if self.peek().kind != "end":
            raise self.unexpected()
        return node

    def expression(self) -> Node:
        self.deeper()
        node = self.logical("||")
        self.depth -= 1
        return node

    def logical(self, op: str) -> Node:
        operand = self.logical("&&") if op == "||" else self.equality()
        if not self.peek().is_op(op):
            return operand
        self.deeper()
        operands = [operand]
        while self.accept(op):
            operands.append(self.logical("&&") if op == "||" else self.equality())
        self.depth -= 1
        all_ = op == "&&"
        flat = (inner for node in operands for inner in _operands(node, all_))
        return Logical(all=all_, operands=tuple(flat))

    def equality(self) -> Node:
        node = self.comparison()
        while token := self.accept("==", "!="):
            self.comparisons += 1
            node = Compare(operator=Operator(token.text), left=node, right=self.comparison())
        return node

    def comparison(self) -> Node:
        node = self.unary()
        while token := self.accept("<", "<=", ">", ">="):
            self.comparisons += 1
            node = Compare(operator=Operator(token.text), left=node, right=self.unary())
        return node

    def unary(self) -> Node:
        if self.accept("!"):
            self.deeper()
            node = Not(operand=self.unary())
            self.depth -= 1
            return node
        return self.postfix()

    def postfix(self) -> Node:
        node, indexable = self.primary()
        levels = 0
        while indexable and (token := self.accept("[", ".")):
            key: Node | None
            if token.text == "[":
                key = None if self.accept("*") else self.expression()
                self.expect("]", "expected ']'")
                self.deeper()
            else:
                self.deeper()
                name = self.take()
                if name.kind == "name":
                    key = Constant(value=name.text)
                elif name.is_op("*"):
                    key = None
                else:
                    self.index -= name.kind != "end"
                    raise self.unexpected("expected a property name after '.'")
            levels += 1
            node = Star(target=node) if key is None else Index(target=node, key=key)
        self.depth -= levels
        return node

    def primary(self) -> tuple[Node, bool]:
        """A leaf or a parenthesis, and whether `.`/`[]` may follow it."""
        token = self.take()
        if token.kind == "constant":
            return Constant(value=token.value), False
        if token.kind == "name":
            if self.accept("("):
                return self.call(token), True
            return ContextName(name=token.text, position=token.position), True
        if token.is_op("("):
            node = self.expression()
            self.expect(")", "expected ')'")
            return node, True
        if token.kind != "end":
            self.index -= 1
        raise self.unexpected()

    def call(self, token: _Token) -> Node:
        name = _FUNCTION_NAMES.get(token.text.lower())
        if name is None:
            close = difflib.get_close_matches(token.text.lower(), _FUNCTION_NAMES, n=1)
            hint = f" (did you mean '{_FUNCTION_NAMES[close[0]]}'?)" if close else ""
            raise error_at(f"unknown function '{token.text}'{hint}", self.text, token.position)
        args: list[Node] = []
        if not self.accept(")"):
            args.append(self.expression())
            while not self.accept(")"):
                self.expect(",", "expected ',' or ')'")
                args.append(self.expression())
        low, high = ARITY[name]
        if not low <= len(args) <= high:
            count = str(low) if low == high else f"{low} to {high}"
            raise error_at(f"{name}() takes {count} argument(s), got {len(args)}", self.text, token.position)
        if name == "case" and len(args) % 2 == 0:
            raise error_at(
                f"case() takes pairs of a condition and its value, then a default: an odd number of "
                f"arguments, got {len(args)}",
                self.text,
                token.position,
            )
        return Call(name=name, args=tuple(args), position=token.position)


def _operands(node: Node, all_: bool) -> tuple[Node, ...]:
    """A chain's operands, with a parenthesised chain of the same operator spliced in."""
    return node.operands if isinstance(node, Logical) and node.all is all_ else (node,)


def _check_depth(root: Node, text: str) -> None:
    """GitHub's other measure: the depth of the tree itself (`a == b == c` is three deep)."""
    stack = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise error_at(f"nested deeper than {MAX_DEPTH} levels", text, 1)
        stack.extend((child, depth + 1) for child in children(node))
        if isinstance(node, Star):
            stack.append((Constant(value="*"), depth + 1))  # GitHub's tree holds the `*`


@functools.lru_cache(maxsize=1024)
def parse(text: str) -> Expression:
    """Parse the text of one expression (without `${{ }}`); raise `ExpressionError` if invalid.
    Empty text is the null expression."""
    parser = _Parser(text)
    root = parser.parse()
    # The tree is deeper than the parser's count only by comparisons (which the parser does not
    # count, and which nest: `a == b == c`): the walk is needed only when they could matter.
    if parser.deepest + parser.comparisons > MAX_DEPTH:
        _check_depth(root, text)
    return Expression(text=text, root=root)
