"""The flows' expression language: a small, safe calculator over the call's variables.

No ``eval``: text is tokenized, parsed into a tree (precedence climbing) and the tree is walked.
Values are strings, decimals and booleans; every IVR variable is a string, and a string that
reads as a number is a number to arithmetic and comparisons. Grammar, loosest first::

    or  ->  and ("or" and)*          and -> not ("and" not)*       not -> "not" not | cmp
    cmp ->  cat (("=="|"!="|"<"|"<="|">"|">=") cat)?
    cat ->  sum ("&" sum)*           sum -> prod (("+"|"-") prod)*
    prod -> unary (("*"|"/"|"%") unary)*                           unary -> "-" unary | atom
    atom -> number | string | true | false | name | name "(" args ")" | "(" or ")"

Names are dotted variable names (``caller.number``); a name followed by ``(`` is a function of
``FUNCTIONS`` — nothing else can be called, and nothing can reach Python attributes. Limits keep
hostile input cheap: source length, token count, nesting depth, string size, number size.
"""

from __future__ import annotations

import decimal
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal

__all__ = [
    "FUNCTIONS",
    "MAX_DEPTH",
    "MAX_SOURCE",
    "MAX_STRING",
    "MAX_TOKENS",
    "EvalError",
    "Expr",
    "ExprError",
    "Value",
    "compile_expr",
    "to_number",
    "to_text",
    "truthy",
]

MAX_SOURCE = 2000
MAX_TOKENS = 500
MAX_DEPTH = 50
MAX_STRING = 10_000
MAX_DIGITS = 40
MAX_REGEX = 200
MAX_MATCH_INPUT = 1000

Value = str | Decimal | bool

_CONTEXT = decimal.Context(prec=MAX_DIGITS, Emax=MAX_DIGITS, Emin=-MAX_DIGITS, traps=[])
_NUMBER_TEXT = re.compile(r"^\s*-?(\d+(\.\d*)?|\.\d+)\s*$")


class ExprError(ValueError):
    """An expression that cannot be compiled (or, as ``EvalError``, evaluated)."""

    def __init__(self, message: str, position: int = 0) -> None:
        super().__init__(f"{message} at column {position + 1}")
        self.message = message
        self.position = position


class EvalError(ExprError):
    """The expression failed on these values (division by zero, a number too large, …)."""


# ---------------------------------------------------------------------------------------------
# Values


def truthy(value: Value) -> bool:
    """False for False, zero, "", "0" and "false" (any case); true otherwise."""
    if isinstance(value, bool):
        return value
    if isinstance(value, Decimal):
        return value != 0
    text = value.strip().lower()
    return text not in ("", "0", "false")


def to_number(value: Value, position: int = 0) -> Decimal:
    """The number a value stands for; EvalError when it is not one."""
    if isinstance(value, bool):
        return Decimal(int(value))
    if isinstance(value, Decimal):
        return value
    if len(value) <= MAX_DIGITS + 4 and _NUMBER_TEXT.match(value):
        return Decimal(value.strip())
    shown = value if len(value) <= 20 else value[:20] + "…"
    raise EvalError(f"{shown!r} is not a number", position)


def _is_number(value: Value) -> bool:
    if isinstance(value, Decimal):
        return True
    return (
        isinstance(value, str) and len(value) <= MAX_DIGITS + 4 and bool(_NUMBER_TEXT.match(value))
    )


def to_text(value: Value) -> str:
    """The string of a value: numbers without exponent or trailing zeros, "true"/"false"."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        if value == value.to_integral_value():
            return str(value.quantize(Decimal(1), context=_CONTEXT))
        return format(value.normalize(_CONTEXT), "f")
    return value


def _checked(number: Decimal, position: int) -> Decimal:
    if not number.is_finite() or number.adjusted() >= MAX_DIGITS:
        raise EvalError(f"number larger than {MAX_DIGITS} digits", position)
    return number


def _string(text: str, position: int) -> str:
    if len(text) > MAX_STRING:
        raise EvalError(f"string longer than {MAX_STRING} characters", position)
    return text


# ---------------------------------------------------------------------------------------------
# Tokens

_TOKEN = re.compile(
    r"""(?P<space>\s+)
      | (?P<number>\d+(?:\.\d+)?|\.\d+)
      | (?P<string>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
      | (?P<name>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
      | (?P<op>==|!=|<=|>=|[-+*/%&<>(),])
    """,
    re.VERBOSE,
)
_ESCAPES = {"n": "\n", "t": "\t", "\\": "\\", "'": "'", '"': '"'}
_KEYWORDS = frozenset({"and", "or", "not", "true", "false"})


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # number, string, name, op, keyword, end
    text: str
    position: int


def _unescape(body: str, position: int) -> str:
    out: list[str] = []
    chars = iter(body)
    for char in chars:
        if char == "\\":
            nxt = next(chars, "")
            if nxt not in _ESCAPES:
                raise ExprError(f"unknown escape \\{nxt}", position)
            out.append(_ESCAPES[nxt])
        else:
            out.append(char)
    return "".join(out)


def _tokens(source: str) -> list[_Token]:
    tokens: list[_Token] = []
    at = 0
    while at < len(source):
        match = _TOKEN.match(source, at)
        if match is None:
            char = source[at]
            if char in "'\"":
                raise ExprError("unterminated string", at)
            raise ExprError(f"unexpected character {char!r}", at)
        kind = match.lastgroup or ""
        text = match.group()
        if kind == "name" and text in _KEYWORDS:
            kind = "keyword"
        if kind != "space":
            tokens.append(_Token(kind, text, at))
            if len(tokens) > MAX_TOKENS:
                raise ExprError(f"more than {MAX_TOKENS} tokens", at)
        at = match.end()
    tokens.append(_Token("end", "", len(source)))
    return tokens


# ---------------------------------------------------------------------------------------------
# The tree

Variables = Mapping[str, str]


class _Node:
    __slots__ = ("position",)

    def __init__(self, position: int) -> None:
        self.position = position

    def eval(self, env: Variables) -> Value:  # pragma: no cover - every node overrides
        raise NotImplementedError


class _Const(_Node):
    __slots__ = ("value",)

    def __init__(self, value: Value, position: int) -> None:
        super().__init__(position)
        self.value = value

    def eval(self, env: Variables) -> Value:
        return self.value


class _Var(_Node):
    __slots__ = ("name",)

    def __init__(self, name: str, position: int) -> None:
        super().__init__(position)
        self.name = name

    def eval(self, env: Variables) -> Value:
        return env.get(self.name, "")


class _Unary(_Node):
    __slots__ = ("op", "operand")

    def __init__(self, op: str, operand: _Node, position: int) -> None:
        super().__init__(position)
        self.op, self.operand = op, operand

    def eval(self, env: Variables) -> Value:
        value = self.operand.eval(env)
        if self.op == "not":
            return not truthy(value)
        return _checked(-to_number(value, self.position), self.position)


def _compare(op: str, left: Value, right: Value) -> bool:
    a: Decimal | str
    b: Decimal | str
    if _is_number(left) and _is_number(right):
        a, b = to_number(left), to_number(right)
    else:
        a, b = to_text(left), to_text(right)
    if op == "==":
        return a == b
    if op == "!=":
        return a != b
    if op == "<":
        return a < b  # type: ignore[operator]  # both Decimal or both str
    if op == "<=":
        return a <= b  # type: ignore[operator]
    if op == ">":
        return a > b  # type: ignore[operator]
    return a >= b  # type: ignore[operator]


class _Binary(_Node):
    __slots__ = ("left", "op", "right")

    def __init__(self, op: str, left: _Node, right: _Node, position: int) -> None:
        super().__init__(position)
        self.op, self.left, self.right = op, left, right

    def eval(self, env: Variables) -> Value:
        op = self.op
        if op == "and":
            return truthy(self.left.eval(env)) and truthy(self.right.eval(env))
        if op == "or":
            return truthy(self.left.eval(env)) or truthy(self.right.eval(env))
        left, right = self.left.eval(env), self.right.eval(env)
        if op == "&":
            return _string(to_text(left) + to_text(right), self.position)
        if op in ("==", "!=", "<", "<=", ">", ">="):
            return _compare(op, left, right)
        a, b = to_number(left, self.left.position), to_number(right, self.right.position)
        try:
            if op == "+":
                result = _CONTEXT.add(a, b)
            elif op == "-":
                result = _CONTEXT.subtract(a, b)
            elif op == "*":
                result = _CONTEXT.multiply(a, b)
            else:
                if b == 0:
                    raise EvalError("division by zero", self.position)
                result = _CONTEXT.divide(a, b) if op == "/" else _CONTEXT.remainder(a, b)
        except decimal.DecimalException as err:
            raise EvalError(f"arithmetic failed: {type(err).__name__}", self.position) from err
        return _checked(result, self.position)


class _Call(_Node):
    __slots__ = ("args", "function", "name")

    def __init__(self, name: str, args: list[_Node], position: int) -> None:
        super().__init__(position)
        self.name, self.args = name, args
        self.function = FUNCTIONS[name]

    def eval(self, env: Variables) -> Value:
        if self.name == "if":  # lazy: only the branch taken is evaluated
            cond, yes, no = self.args
            return yes.eval(env) if truthy(cond.eval(env)) else no.eval(env)
        values = [arg.eval(env) for arg in self.args]
        return self.function.call(values, self.position)


# ---------------------------------------------------------------------------------------------
# Functions


@dataclass(frozen=True, slots=True)
class _Function:
    min_args: int
    max_args: int  # -1: any number
    call: Callable[[list[Value], int], Value]


def _text_fn(fn: Callable[[str], str]) -> Callable[[list[Value], int], Value]:
    return lambda args, pos: _string(fn(to_text(args[0])), pos)


def _substr(args: list[Value], pos: int) -> Value:
    text = to_text(args[0])
    start = int(to_number(args[1], pos))
    if start < 0:
        start = max(0, len(text) + start)
    if len(args) > 2:
        length = int(to_number(args[2], pos))
        return text[start : start + max(0, length)]
    return text[start:]


def _replace(args: list[Value], pos: int) -> Value:
    text, old, new = (to_text(a) for a in args)
    if not old:
        raise EvalError("replace: the text to replace is empty", pos)
    count = text.count(old)
    if len(text) + count * (len(new) - len(old)) > MAX_STRING:
        raise EvalError(f"string longer than {MAX_STRING} characters", pos)
    return text.replace(old, new)


def _matches(args: list[Value], pos: int) -> Value:
    text, pattern = to_text(args[0]), to_text(args[1])
    if len(pattern) > MAX_REGEX:
        raise EvalError(f"matches: pattern longer than {MAX_REGEX} characters", pos)
    if len(text) > MAX_MATCH_INPUT:
        raise EvalError(f"matches: text longer than {MAX_MATCH_INPUT} characters", pos)
    if re.search(r"\([^)]*[+*][^)]*\)[+*{]", pattern):
        # Nested quantifiers ((a+)+, (a*)*, …) backtrack exponentially: refused outright.
        raise EvalError("matches: nested quantifiers are not allowed", pos)
    try:
        return re.fullmatch(pattern, text) is not None
    except re.error as err:
        raise EvalError(f"matches: bad pattern: {err}", pos) from err


def _round(args: list[Value], pos: int) -> Value:
    number = to_number(args[0], pos)
    places = int(to_number(args[1], pos)) if len(args) > 1 else 0
    if not 0 <= places <= 10:
        raise EvalError("round: places must be 0..10", pos)
    return _checked(
        number.quantize(
            Decimal(1).scaleb(-places), rounding=decimal.ROUND_HALF_UP, context=_CONTEXT
        ),
        pos,
    )


def _extreme(pick: Callable[..., Decimal]) -> Callable[[list[Value], int], Value]:
    return lambda args, pos: pick(to_number(a, pos) for a in args)


def _coalesce(args: list[Value], pos: int) -> Value:
    for value in args:
        if to_text(value) != "":
            return value
    return ""


FUNCTIONS: Mapping[str, _Function] = {
    "len": _Function(1, 1, lambda a, p: Decimal(len(to_text(a[0])))),
    "upper": _Function(1, 1, _text_fn(str.upper)),
    "lower": _Function(1, 1, _text_fn(str.lower)),
    "trim": _Function(1, 1, _text_fn(str.strip)),
    "substr": _Function(2, 3, _substr),
    "replace": _Function(3, 3, _replace),
    "contains": _Function(2, 2, lambda a, p: to_text(a[1]) in to_text(a[0])),
    "starts_with": _Function(2, 2, lambda a, p: to_text(a[0]).startswith(to_text(a[1]))),
    "ends_with": _Function(2, 2, lambda a, p: to_text(a[0]).endswith(to_text(a[1]))),
    "matches": _Function(2, 2, _matches),
    "number": _Function(1, 1, lambda a, p: to_number(a[0], p)),
    "text": _Function(1, 1, lambda a, p: to_text(a[0])),
    "round": _Function(1, 2, _round),
    "abs": _Function(1, 1, lambda a, p: abs(to_number(a[0], p))),
    "min": _Function(1, -1, _extreme(min)),
    "max": _Function(1, -1, _extreme(max)),
    "if": _Function(3, 3, lambda a, p: a[1] if truthy(a[0]) else a[2]),
    "coalesce": _Function(1, -1, _coalesce),
}


# ---------------------------------------------------------------------------------------------
# The parser

_COMPARE = frozenset({"==", "!=", "<", "<=", ">", ">="})


class _Parser:
    def __init__(self, tokens: list[_Token]) -> None:
        self.tokens = tokens
        self.at = 0
        self.depth = 0
        self.names: set[str] = set()

    def peek(self) -> _Token:
        return self.tokens[self.at]

    def take(self) -> _Token:
        token = self.tokens[self.at]
        self.at += 1
        return token

    def expect(self, text: str) -> _Token:
        token = self.take()
        if token.text != text or token.kind not in ("op", "keyword"):
            shown = token.text or "the end"
            raise ExprError(f"expected {text!r}, found {shown!r}", token.position)
        return token

    def enter(self, position: int) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ExprError(f"nested deeper than {MAX_DEPTH}", position)

    def parse(self) -> _Node:
        node = self.or_()
        token = self.peek()
        if token.kind != "end":
            raise ExprError(f"unexpected {token.text!r}", token.position)
        return node

    def _binary(self, ops: frozenset[str], sub: Callable[[], _Node]) -> _Node:
        node = sub()
        while (token := self.peek()).text in ops and token.kind in ("op", "keyword"):
            self.take()
            node = _Binary(token.text, node, sub(), token.position)
        return node

    def or_(self) -> _Node:
        return self._binary(frozenset({"or"}), self.and_)

    def and_(self) -> _Node:
        return self._binary(frozenset({"and"}), self.not_)

    def not_(self) -> _Node:
        token = self.peek()
        if token.kind == "keyword" and token.text == "not":
            self.take()
            self.enter(token.position)
            node = _Unary("not", self.not_(), token.position)
            self.depth -= 1
            return node
        return self.cmp()

    def cmp(self) -> _Node:
        node = self.cat()
        token = self.peek()
        if token.kind == "op" and token.text in _COMPARE:
            self.take()
            node = _Binary(token.text, node, self.cat(), token.position)
            nxt = self.peek()
            if nxt.kind == "op" and nxt.text in _COMPARE:
                raise ExprError("comparisons cannot be chained; use and", nxt.position)
        return node

    def cat(self) -> _Node:
        return self._binary(frozenset({"&"}), self.sum)

    def sum(self) -> _Node:
        return self._binary(frozenset({"+", "-"}), self.prod)

    def prod(self) -> _Node:
        return self._binary(frozenset({"*", "/", "%"}), self.unary)

    def unary(self) -> _Node:
        token = self.peek()
        if token.kind == "op" and token.text == "-":
            self.take()
            self.enter(token.position)
            node = _Unary("-", self.unary(), token.position)
            self.depth -= 1
            return node
        return self.atom()

    def atom(self) -> _Node:
        token = self.take()
        if token.kind == "number":
            digits = token.text.replace(".", "").lstrip("0")
            if len(digits) > MAX_DIGITS:
                raise ExprError(f"number longer than {MAX_DIGITS} digits", token.position)
            return _Const(Decimal(token.text), token.position)
        if token.kind == "string":
            text = _unescape(token.text[1:-1], token.position)
            if len(text) > MAX_STRING:
                raise ExprError(f"string longer than {MAX_STRING} characters", token.position)
            return _Const(text, token.position)
        if token.kind == "keyword" and token.text in ("true", "false"):
            return _Const(token.text == "true", token.position)
        if token.kind == "name":
            if self.peek().text == "(" and self.peek().kind == "op":
                return self.call(token)
            if any(part.startswith("__") for part in token.text.split(".")):
                raise ExprError(f"{token.text!r} is not a variable name", token.position)
            self.names.add(token.text)
            return _Var(token.text, token.position)
        if token.kind == "op" and token.text == "(":
            self.enter(token.position)
            node = self.or_()
            self.expect(")")
            self.depth -= 1
            return node
        shown = token.text or "the end"
        raise ExprError(f"unexpected {shown!r}", token.position)

    def call(self, name: _Token) -> _Node:
        function = FUNCTIONS.get(name.text)
        if function is None:
            known = ", ".join(sorted(FUNCTIONS))
            raise ExprError(f"unknown function {name.text!r} (known: {known})", name.position)
        self.expect("(")
        self.enter(name.position)
        args: list[_Node] = []
        if self.peek().text != ")":
            args.append(self.or_())
            while self.peek().text == "," and self.peek().kind == "op":
                self.take()
                args.append(self.or_())
        self.expect(")")
        self.depth -= 1
        if len(args) < function.min_args or (0 <= function.max_args < len(args)):
            wanted = (
                str(function.min_args)
                if function.min_args == function.max_args
                else f"{function.min_args}+"
                if function.max_args < 0
                else f"{function.min_args}-{function.max_args}"
            )
            raise ExprError(
                f"{name.text}() takes {wanted} arguments, got {len(args)}", name.position
            )
        return _Call(name.text, args, name.position)


# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Expr:
    """A compiled expression."""

    source: str
    names: frozenset[str]
    _tree: _Node = field(repr=False, compare=False)

    def evaluate(self, variables: Mapping[str, str]) -> Value:
        """The value with these variables (an unknown variable is ""); EvalError on failure."""
        try:
            return self._tree.eval(variables)
        except RecursionError as err:  # pragma: no cover - depth is bounded at compile time
            raise EvalError("too deeply nested", 0) from err


def compile_expr(text: str) -> Expr:
    """Parse ``text``; ExprError names the column of what is wrong."""
    if not isinstance(text, str):
        raise ExprError("an expression must be text", 0)
    if len(text) > MAX_SOURCE:
        raise ExprError(f"longer than {MAX_SOURCE} characters", MAX_SOURCE)
    if not text.strip():
        raise ExprError("empty expression", 0)
    parser = _Parser(_tokens(text))
    tree = parser.parse()
    return Expr(text, frozenset(parser.names), tree)
