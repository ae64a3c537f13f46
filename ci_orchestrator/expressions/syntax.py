"""The syntax of GitHub Actions' `${{ }}` expressions: tokens, the tree, and a recursive-descent parser.

Parsing never evaluates anything; function names and argument counts are checked here because
GitHub rejects them before running anything too.
"""

from __future__ import annotations

import difflib
import functools
import math
import re
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any, TypeAlias

from ci_orchestrator.errors import ExpressionError

if TYPE_CHECKING:
    from collections.abc import Iterator

MAX_DEPTH = 100  # nesting past this is refused before Python's own recursion limit is near
MAX_LENGTH = 20_000  # characters in one expression
STATUS_FUNCTIONS = frozenset({"success", "failure", "always", "cancelled"})
# Canonical name -> (fewest, most) arguments.
ARITY: dict[str, tuple[int, int]] = {
    "contains": (2, 2),
    "startsWith": (2, 2),
    "endsWith": (2, 2),
    "format": (1, 1000),
    "join": (1, 2),
    "toJSON": (1, 1),
    "fromJSON": (1, 1),
    **dict.fromkeys(sorted(STATUS_FUNCTIONS), (0, 0)),
}
_FUNCTION_NAMES = {name.lower(): name for name in ARITY}  # GitHub ignores case in function names


# The syntax tree. Positions are 1-based columns within the expression text.


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
    """`a && b && c` (all=True) or `a || b || c`, kept flat so long chains stay shallow."""

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
            stack.extend(reversed(_children(node)))

    @property
    def uses_status(self) -> bool:
        return any(isinstance(node, Call) and node.name in STATUS_FUNCTIONS for node in self.nodes())


def _children(node: Node) -> tuple[Node, ...]:
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


# Parsing.

_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
    |(?P<string>'(?:[^']|'')*')
    |(?P<number>-?(?:0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|Infinity)|NaN)
    |(?P<name>[A-Za-z_][A-Za-z0-9_-]*)
    |(?P<op>==|!=|<=|>=|&&|\|\||[<>!()\[\].,*])
    """,
    re.VERBOSE,
)
_KEYWORDS: dict[str, Any] = {"true": True, "false": False, "null": None}
_COMPARISONS = {op.value: op for op in Operator}
_PRECEDENCE = {"||": 1, "&&": 2, "==": 3, "!=": 3, "<": 4, "<=": 4, ">": 4, ">=": 4}


@dataclass(frozen=True, slots=True, kw_only=True)
class _Token:
    kind: str  # string, number, name, op, end
    text: str
    position: int


def error_at(message: str, text: str, position: int) -> ExpressionError:
    shown = text if len(text) <= 80 else text[:77] + "..."
    return ExpressionError(f"{message} at position {position} in expression '{shown.strip()}'")


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            what = (
                "unterminated string" if text[position] == "'" else f"unexpected character {text[position]!r}"
            )
            raise error_at(what, text, position + 1)
        kind = match.lastgroup or ""
        if kind != "space":
            tokens.append(_Token(kind=kind, text=match.group(), position=position + 1))
        position = match.end()
    tokens.append(_Token(kind="end", text="", position=len(text) + 1))
    return tokens


_MAX_INT_BITS = 1023
"""Whole numbers up to this size stay exact ints; past it a number is the float GitHub's double
would be (infinity past the largest), which every later step can compare and print."""


def number_literal(literal: str) -> int | float:
    sign = -1 if literal.startswith("-") else 1
    digits = literal.lstrip("-")
    if digits.lower().startswith("0x"):
        value = int(digits, 16)  # any length: only decimal text has a digit limit
        return sign * value if value.bit_length() <= _MAX_INT_BITS else sign * math.inf
    if digits in ("Infinity", "NaN"):
        return sign * float(digits.replace("Infinity", "inf"))
    # Python refuses to read thousands of decimal digits as an int; a float reads any number.
    if any(char in digits for char in ".eE") or len(digits.lstrip("0")) > 300:
        return sign * float(digits)
    return sign * int(digits)


class _Parser:
    """Binary operators by precedence climbing (`||`, `&&`, `== !=`, `< <= > >=`), then `!`, then
    postfix property access, by recursive descent."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.index = 0
        self.depth = 0

    def peek(self) -> _Token:
        return self.tokens[self.index]

    def take(self) -> _Token:
        token = self.tokens[self.index]
        self.index += 1
        return token

    def accept(self, op: str) -> bool:
        if self.peek().kind == "op" and self.peek().text == op:
            self.index += 1
            return True
        return False

    def expect(self, op: str) -> None:
        if not self.accept(op):
            raise self.unexpected(f"expected '{op}'")

    def unexpected(self, hint: str = "") -> ExpressionError:
        token = self.peek()
        what = "unexpected end of expression" if token.kind == "end" else f"unexpected '{token.text}'"
        return error_at(f"{what}{', ' + hint if hint else ''}", self.text, token.position)

    def nested(self) -> None:
        """Enter one level of recursion; the levels are counted so that no input reaches Python's
        own recursion limit."""
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise error_at(f"nested deeper than {MAX_DEPTH} levels", self.text, self.peek().position)

    def parse(self) -> Node:
        if not self.text.strip():
            raise error_at("empty expression", self.text, 1)
        node = self.expression()
        if self.peek().kind != "end":
            raise self.unexpected()
        return node

    def expression(self, floor: int = 1) -> Node:
        """Precedence climbing over the binary operators, loosest first."""
        node = self.unary()
        while (token := self.peek()).kind == "op" and _PRECEDENCE.get(token.text, 0) >= floor:
            self.index += 1
            right = self.expression(_PRECEDENCE[token.text] + 1)
            if token.text in ("&&", "||"):
                all_ = token.text == "&&"
                if isinstance(node, Logical) and node.all is all_:
                    node = Logical(all=all_, operands=(*node.operands, right))  # flat: chains stay shallow
                else:
                    node = Logical(all=all_, operands=(node, right))
            else:
                node = Compare(operator=_COMPARISONS[token.text], left=node, right=right)
        return node

    def unary(self) -> Node:
        if self.accept("!"):
            self.nested()
            node = Not(operand=self.unary())
            self.depth -= 1
            return node
        return self.postfix()

    def postfix(self) -> Node:
        node = self.primary()
        while True:
            if self.accept("."):
                token = self.take()
                if token.kind == "op" and token.text == "*":
                    node = Star(target=node)
                elif token.kind == "name":
                    node = Index(target=node, key=Constant(value=token.text))
                else:
                    self.index -= 1
                    raise self.unexpected("expected a property name after '.'")
            elif self.accept("["):
                if self.accept("*"):
                    node = Star(target=node)
                else:
                    self.nested()
                    node = Index(target=node, key=self.expression())
                    self.depth -= 1
                self.expect("]")
            else:
                return node

    def primary(self) -> Node:
        token = self.take()
        if token.kind == "string":
            return Constant(value=token.text[1:-1].replace("''", "'"))
        if token.kind == "number":
            return Constant(value=number_literal(token.text))
        if token.kind == "name":
            if token.text in _KEYWORDS:
                return Constant(value=_KEYWORDS[token.text])
            if self.accept("("):
                return self.call(token)
            return ContextName(name=token.text, position=token.position)
        if token.kind == "op" and token.text == "(":
            self.nested()
            node = self.expression()
            self.expect(")")
            self.depth -= 1
            return node
        self.index -= 1
        raise self.unexpected()

    def call(self, token: _Token) -> Node:
        name = _FUNCTION_NAMES.get(token.text.lower())
        if name is None:
            close = difflib.get_close_matches(token.text.lower(), _FUNCTION_NAMES, n=1)
            hint = f" (did you mean '{_FUNCTION_NAMES[close[0]]}'?)" if close else ""
            raise error_at(f"unknown function '{token.text}'{hint}", self.text, token.position)
        self.nested()
        args: list[Node] = []
        if not self.accept(")"):
            args.append(self.expression())
            while self.accept(","):
                args.append(self.expression())
            self.expect(")")
        self.depth -= 1
        low, high = ARITY[name]
        if not low <= len(args) <= high:
            count = str(low) if low == high else f"{low} or more" if high > 99 else f"{low} to {high}"
            raise error_at(f"{name}() takes {count} argument(s), got {len(args)}", self.text, token.position)
        return Call(name=name, args=tuple(args), position=token.position)


@functools.lru_cache(maxsize=1024)
def parse(text: str) -> Expression:
    """Parse the text of one expression (without `${{ }}`); raise `ExpressionError` if invalid."""
    if len(text) > MAX_LENGTH:
        raise ExpressionError(f"expression longer than {MAX_LENGTH} characters")
    root = _Parser(text).parse()
    # Left-leaning chains (`a.b.c`, `a == b == c`) are built by loops, not recursion: their
    # depth is checked here, before evaluation recurses over the tree.
    stack = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise error_at(f"nested deeper than {MAX_DEPTH} levels", text, 1)
        stack.extend((child, depth + 1) for child in _children(node))
    return Expression(text=text, root=root)
