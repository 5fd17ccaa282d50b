"""The expression language: values, operators, functions, errors and hostile input."""

from __future__ import annotations

from decimal import Decimal

import pytest

from callmesh.ivr.domain.expr import (
    MAX_DEPTH,
    MAX_SOURCE,
    EvalError,
    ExprError,
    compile_expr,
    to_text,
    truthy,
)
from callmesh.ivr.domain.template import render, template_names

VARS = {"caller.number": "+33612345678", "account": "00123", "amount": "12.50", "tier": "gold"}


def value(text: str, variables: dict[str, str] | None = None) -> str:
    return to_text(compile_expr(text).evaluate(VARS if variables is None else variables))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1 + 2 * 3", "7"),
        ("(1 + 2) * 3", "9"),
        ("10 / 4", "2.5"),
        ("10 % 4", "2"),
        ("-amount + 1", "-11.5"),
        ("amount * 2", "25"),
        ("account + 1", "124"),
        ("'a' & 'b' & 1", "ab1"),
        ("len(caller.number)", "12"),
        ("substr(caller.number, 0, 3)", "+33"),
        ("substr(caller.number, -4)", "5678"),
        ("replace(caller.number, '+33', '0')", "0612345678"),
        ("upper(tier) & lower('X')", "GOLDx"),
        ("trim('  x ')", "x"),
        ("contains(tier, 'ol')", "true"),
        ("starts_with(caller.number, '+33') and ends_with(tier, 'd')", "true"),
        ("matches(account, '[0-9]{5}')", "true"),
        ("number('007') + 0", "7"),
        ("round(2.345, 2)", "2.35"),
        ("abs(-3)", "3"),
        ("min(3, 1, 2) & max(3, 1, 2)", "13"),
        ("if(tier == 'gold', 'vip', 'std')", "vip"),
        ("coalesce(missing, '', 'x')", "x"),
        ("missing == ''", "true"),
        ("account == 123", "true"),  # numeric when both are numbers
        ("'abc' < 'abd'", "true"),
        ("not true or false", "false"),
        ("1 < 2 and 2 <= 2 and 3 > 2 and 3 >= 3 and 1 != 2", "true"),
        ('"say \\"hi\\""', 'say "hi"'),
    ],
)
def test_expressions_evaluate_as_documented(text: str, expected: str) -> None:
    assert value(text) == expected


def test_names_lists_the_variables_an_expression_reads() -> None:
    assert compile_expr("len(caller.number) > 3 and tier == x.y").names == {
        "caller.number",
        "tier",
        "x.y",
    }


def test_truthiness_and_text() -> None:
    assert [truthy(v) for v in ("", "0", "false", "FALSE", "x", "1")] == [
        False,
        False,
        False,
        False,
        True,
        True,
    ]
    assert truthy(Decimal(0)) is False
    assert to_text(Decimal("2.50")) == "2.5"
    assert to_text(Decimal("1E+2")) == "100"


def test_if_only_evaluates_the_branch_taken() -> None:
    assert value("if(true, 1, 1 / 0)") == "1"


@pytest.mark.parametrize(
    ("text", "message", "column"),
    [
        ("1 +", "unexpected 'the end'", 4),
        ("(1 + 2", "expected ')'", 7),
        ("foo(1)", "unknown function 'foo'", 1),
        ("len(1, 2)", "len() takes 1 arguments, got 2", 1),
        ("1 $ 2", "unexpected character '$'", 3),
        ("'abc", "unterminated string", 1),
        ("1 < 2 < 3", "comparisons cannot be chained", 7),
        ("__import__('os')", "unknown function '__import__'", 1),
        ("a.__class__", "is not a variable name", 1),
        ("", "empty expression", 1),
        ("'\\q'", "unknown escape", 1),
    ],
)
def test_bad_expressions_are_refused_naming_the_column(
    text: str, message: str, column: int
) -> None:
    with pytest.raises(ExprError) as err:
        compile_expr(text)
    assert message in err.value.message
    assert f"at column {column}" in str(err.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1 / 0", "division by zero"),
        ("tier + 1", "'gold' is not a number"),
        ("matches('aaaa', '(a+)+b')", "nested quantifiers"),
        ("matches('a', '[')", "bad pattern"),
        ("replace('a', '', 'b')", "empty"),
    ],
)
def test_evaluation_errors_are_eval_errors(text: str, message: str) -> None:
    with pytest.raises(EvalError, match=message):
        compile_expr(text).evaluate(VARS)


def test_hostile_input_is_refused_cheaply() -> None:
    with pytest.raises(ExprError, match="nested deeper"):
        compile_expr("(" * (MAX_DEPTH + 1) + "1" + ")" * (MAX_DEPTH + 1))
    with pytest.raises(ExprError, match="nested deeper"):
        compile_expr("-" * 200 + "1")
    with pytest.raises(ExprError, match="longer than"):
        compile_expr("1" + " " * MAX_SOURCE)
    with pytest.raises(ExprError, match="tokens"):
        compile_expr("+".join(["1"] * 300))
    with pytest.raises(ExprError, match="digits"):
        compile_expr("9" * 50)
    # Doubling a string grows it exponentially: the string limit stops it.
    big = "x"
    for _ in range(6):
        big = f"({big} & {big})"
    with pytest.raises(EvalError, match="string longer"):
        compile_expr(big).evaluate({"x": "y" * 500})
    # Multiplying huge numbers stops at the digit limit.
    with pytest.raises(EvalError, match="larger than"):
        compile_expr("a * a * a").evaluate({"a": "9" * 20})
    with pytest.raises(EvalError, match="longer than"):
        compile_expr("matches(a, 'a*')").evaluate({"a": "a" * 5000})


def test_templates_fill_variables_and_keep_double_braces() -> None:
    assert render("Hello {caller.number}, {{literal}} {missing}!", VARS) == (
        "Hello +33612345678, {literal} !"
    )
    assert template_names("{a} and {b.c}") == {"a", "b.c"}
    assert render("{a}", {"a": "x y"}, escape=lambda v: v.replace(" ", "%20")) == "x%20y"
    for bad, message in (("{a", "unclosed"), ("{A}", "not a variable"), ("a}", "without")):
        with pytest.raises(ExprError, match=message):
            template_names(bad)
