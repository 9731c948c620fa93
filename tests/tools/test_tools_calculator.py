"""The calculator: arithmetic from the syntax tree, and everything else refused by name."""

from __future__ import annotations

import pytest

from llmcli.tools.calculator import (
    MAX_LENGTH,
    CalculatorError,
    evaluate,
    format_number,
)


@pytest.mark.parametrize(
    ("expression", "value"),
    [
        ("17*23", 391),
        ("17 * 23", 391),
        ("2 ** 10", 1024),
        ("-3 + +4", 1),
        ("--3", 3),
        ("(1 + 2) * 3", 9),
        ("((((7))))", 7),
        ("7 // 2", 3),
        ("-7 // 2", -4),
        ("7 % 3", 1),
        ("7 / 2", 3.5),
        ("2 ** -1", 0.5),
        ("1e3 * 2", 2000.0),
        ("0.1 + 0.2", 0.30000000000000004),
        ("2 ** 3 ** 2", 512),  # right-associative, as in Python
        ("(-2) ** 3", -8),
        ("1_000 + 1", 1001),
        ("0x10 + 0o10 + 0b10", 26),
        ("2.5 % 1", 0.5),
        ("(-1) ** 100001", -1),
        ("2 ** 9999", 2**9999),  # just inside the cap
        ("  42  ", 42),
    ],
)
def test_arithmetic(expression: str, value: float) -> None:
    result = evaluate(expression)
    assert result == value and type(result) is type(value)


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        ("__import__('os')", "not allowed: function calls"),
        ("__import__('os').system('true')", "not allowed: function calls"),
        ("open('/etc/passwd').read()", "not allowed: function calls"),
        ("().__class__.__bases__", "not allowed: attribute access"),
        ("(1).real", "not allowed: attribute access"),
        ("x + 1", "not allowed: names"),
        ("__builtins__", "not allowed: names"),
        ("'a' * 10", "not allowed: str values"),
        ("b'a'", "not allowed: bytes values"),
        ("[1, 2][0]", "not allowed: subscripts"),
        ("[1, 2]", "not allowed: List"),
        ("lambda: 1", "not allowed: lambdas"),
        ("1 if 1 else 2", "not allowed: conditional expressions"),
        ("1 < 2", "not allowed: comparisons"),
        ("1 and 2", "not allowed: boolean operators"),
        ("True + 1", "not allowed: bool values"),
        ("None", "not allowed: NoneType values"),
        ("1j * 1j", "not allowed: complex numbers"),
        ("~1", "not allowed: UnaryOp"),
        ("not 1", "not allowed: UnaryOp"),
        ("1 << 10000", "not allowed: operator LShift"),
        ("1 | 2", "not allowed: operator BitOr"),
        ("[x for x in ()]", "not allowed: ListComp"),
        ("(x := 1)", "not allowed: NamedExpr"),
        ("f'{1}'", "not allowed: JoinedStr"),
        ("9**9**9", "result too large"),
        ("2 ** 100000", "result too large"),
        ("10 ** 10 ** 10", "result too large"),
        ("(2 ** 9999) * (2 ** 9999)", "result too large"),
        ("2.0 ** 100000", "result too large"),
        ("1e308 * 10", "not a finite number"),
        ("1 / (1e308 * 10)", "not a finite number"),
        ("1e309", "not a finite number"),
        ("1e308 // 1e-308", "not a finite number"),
        ("1 / 0", "division by zero"),
        ("1 // 0", "division by zero"),
        ("1 % 0", "division by zero"),
        ("1.5 / 0.0", "division by zero"),
        ("0 ** -1", "division by zero"),
        ("(-8) ** 0.5", "not a real number"),
        ("", "empty expression"),
        ("   ", "empty expression"),
        ("1 +", "not an arithmetic expression"),
        ("import os", "not an arithmetic expression"),
        ("1; 2", "not an arithmetic expression"),
        ("\x00", "not an arithmetic expression"),
        ("(" * 300 + "1" + ")" * 300, "too long"),
        ("1+" * 300 + "1", "too long"),
    ],
)
def test_refused(expression: str, reason: str) -> None:
    with pytest.raises(CalculatorError) as info:
        evaluate(expression)
    assert reason in info.value.message


def test_deep_nesting_within_the_length_limit_is_an_error_not_a_crash() -> None:
    depth = (MAX_LENGTH - 1) // 2
    with pytest.raises(CalculatorError):
        evaluate("(" * depth + "1" + ")" * depth)
    # and a long but flat expression is fine
    assert evaluate("+".join(["1"] * ((MAX_LENGTH + 1) // 2))) == (MAX_LENGTH + 1) // 2


def test_large_operands_within_the_length_limit_are_refused_before_computing() -> None:
    with pytest.raises(CalculatorError, match="too large"):
        evaluate("9" * 400 + " ** 9")
    with pytest.raises(CalculatorError, match="too large"):
        evaluate("(" + "9" * 200 + ") ** (" + "9" * 200 + ")")


@pytest.mark.parametrize(
    ("value", "text"),
    [(391, "391"), (3.5, "3.5"), (0.1 + 0.2, "0.30000000000000004"), (-0.0, "-0.0")],
)
def test_format_number(value: float, text: str) -> None:
    assert format_number(value) == text
