"""Arithmetic a model may ask for, evaluated from the syntax tree: never ``eval``.

The expression is parsed with ``ast.parse(mode="eval")`` and walked; only these nodes are
evaluated: int and float literals, ``+ - * / // % **``, unary ``+``/``-`` and (implicitly)
parentheses. Everything else, names, calls, attributes, subscripts, strings,
comprehensions, is refused by name, so ``__import__('os')`` is a "function call", not a
way in.

Size guards, because ``9**9**9`` is short and would run for hours: the expression is at
most ``MAX_LENGTH`` characters, every integer (literal, operand, result) at most
``MAX_INT_BITS`` bits, and a power is refused before it is computed when its result would
be larger. Float overflow, division by zero and complex results (``(-8) ** 0.5``) are
errors, not numbers, at every step of the evaluation.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable
from typing import Final

from llmcli.tools.tool import ToolError

MAX_LENGTH: Final = 500
MAX_INT_BITS: Final = 10_000  # about 3,000 decimal digits
Number = int | float

_BINARY: Final[dict[type[ast.operator], Callable[[Number, Number], Number]]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY: Final[dict[type[ast.unaryop], Callable[[Number], Number]]] = {
    ast.UAdd: operator.pos,
    ast.USub: operator.neg,
}
_ALLOWED: Final = "only numbers, + - * / // % ** and parentheses"
# What to call a refused node, so the model learns what it did wrong.
_REFUSED: Final[dict[type[ast.AST], str]] = {
    ast.Name: "names",
    ast.Call: "function calls",
    ast.Attribute: "attribute access",
    ast.Subscript: "subscripts",
    ast.Lambda: "lambdas",
    ast.Compare: "comparisons",
    ast.BoolOp: "boolean operators",
    ast.IfExp: "conditional expressions",
}


class CalculatorError(ToolError):
    """An expression the calculator will not or cannot evaluate."""


def evaluate(expression: str) -> Number:
    """The value of an arithmetic expression; raises :class:`CalculatorError`."""
    text = expression.strip()
    if not text:
        raise CalculatorError("empty expression")
    if len(text) > MAX_LENGTH:
        raise CalculatorError(f"expression too long: at most {MAX_LENGTH} characters")
    try:
        tree = ast.parse(text, mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as error:
        reason = error.msg if isinstance(error, SyntaxError) else type(error).__name__
        raise CalculatorError(f"not an arithmetic expression: {reason}") from None
    try:
        value = _eval(tree.body)
    except ZeroDivisionError:
        raise CalculatorError("division by zero") from None
    except OverflowError:
        raise CalculatorError("result too large") from None
    except RecursionError:
        raise CalculatorError("expression nested too deeply") from None
    return value


def format_number(value: Number) -> str:
    """How a result reads: integers whole, floats in their shortest exact form."""
    return str(value) if isinstance(value, int) else repr(value)


def _eval(node: ast.AST) -> Number:
    if isinstance(node, ast.Constant):
        return _literal(node.value)
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _eval(node.left), _eval(node.right)
        if isinstance(node.op, ast.Pow):
            _check_power(left, right)
        return _checked(_BINARY[type(node.op)](left, right))
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _checked(_UNARY[type(node.op)](_eval(node.operand)))
    if isinstance(node, ast.BinOp):
        raise CalculatorError(f"not allowed: operator {type(node.op).__name__}; {_ALLOWED}")
    what = _REFUSED.get(type(node), type(node).__name__)
    raise CalculatorError(f"not allowed: {what}; {_ALLOWED}")


def _literal(value: object) -> Number:
    # bool is an int subclass and complex a number: neither is arithmetic here.
    if isinstance(value, bool) or not isinstance(value, int | float):
        kind = "complex numbers" if isinstance(value, complex) else f"{type(value).__name__} values"
        raise CalculatorError(f"not allowed: {kind}; {_ALLOWED}")
    return _checked(value)


def _checked(value: object) -> Number:
    if isinstance(value, complex):
        raise CalculatorError("the result is not a real number")
    if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
        raise CalculatorError(f"result too large (over {MAX_INT_BITS} bits)")
    if isinstance(value, float) and not math.isfinite(value):
        # Checked at every step: 1 / (1e308 * 10) must not quietly become 0.0.
        raise CalculatorError("result is not a finite number")
    assert isinstance(value, int | float)
    return value


def _check_power(base: Number, exponent: Number) -> None:
    """Refuse an integer power whose result would be too large, before computing it."""
    if not (isinstance(base, int) and isinstance(exponent, int)) or exponent <= 1:
        return  # float powers overflow quickly and cheaply; negative ones shrink
    if abs(base) <= 1:
        return
    if (abs(base).bit_length() - 1) * exponent > MAX_INT_BITS:
        raise CalculatorError(f"result too large (over {MAX_INT_BITS} bits)")
