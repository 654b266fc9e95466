"""Periods as people type them: every accepted form is stored in one canonical form.

A year, a quarter, a month or a day; the Chinese and full-width forms mean the same.
"""

from __future__ import annotations

from datetime import date

import pytest

from services.errors import InvalidField
from services.metadata import check_period, period_bounds

# typed → stored
ACCEPTED: list[tuple[str, str]] = [
    ("2026", "2026"),
    ("2026-Q3", "2026-Q3"),
    ("2026-09", "2026-09"),
    ("2026-09-15", "2026-09-15"),
    ("2026年", "2026"),
    ("2026年第三季度", "2026-Q3"),
    ("2026年三季度", "2026-Q3"),
    ("2026年第3季度", "2026-Q3"),
    ("2026年Q3", "2026-Q3"),
    ("2026年第一季度", "2026-Q1"),
    ("2026年四季度", "2026-Q4"),
    ("2026年9月", "2026-09"),
    ("2026年09月", "2026-09"),
    ("2026年12月", "2026-12"),
    ("2026年9月15日", "2026-09-15"),
    ("2026年09月05日", "2026-09-05"),
    ("2026.9", "2026-09"),
    ("2026.09.15", "2026-09-15"),
    ("2026/9", "2026-09"),
    ("2026/09/15", "2026-09-15"),
    ("2026/9/5", "2026-09-05"),
    ("2026-9", "2026-09"),
    ("2026-9-5", "2026-09-05"),
    ("2026-q3", "2026-Q3"),
    ("  2026年第三季度 ", "2026-Q3"),
    ("\t2026/09/15\n", "2026-09-15"),
    ("２０２６年９月", "2026-09"),
    ("２０２６－ｑ３", "2026-Q3"),
    ("２０２６年Ｑ３", "2026-Q3"),
    ("\u30002026年9月15日\u3000", "2026-09-15"),
]

REFUSED = [
    "",
    "26",
    "20260",
    "二〇二六年",
    "2026-Q5",
    "2026-Q0",
    "2026年第五季度",
    "2026年Q5",
    "2026-13",
    "2026年13月",
    "2026年0月",
    "2026-00",
    "2026年9月0日",
    "2026/02/30",
    "2026年2月30日",
    "2026年9",
    "2026年9月15",
    "2026/09-15",
    "2026-09-15T00:00",
    "2026年9月15日下午",
    "1948",
    "2101年",
    "Q3",
    "2026 Q3 2027",
]


@pytest.mark.parametrize(("typed", "stored"), ACCEPTED)
def test_a_typed_period_is_stored_in_canonical_form(typed: str, stored: str) -> None:
    assert check_period(typed) == stored
    assert check_period(stored) == stored


@pytest.mark.parametrize("typed", REFUSED)
def test_anything_else_is_an_invalid_period(typed: str) -> None:
    with pytest.raises(InvalidField) as refused:
        check_period(typed)

    assert refused.value.error_code == "invalid_period"
    assert refused.value.field == "period"


def test_the_refusal_shows_examples_in_both_forms() -> None:
    with pytest.raises(InvalidField) as refused:
        check_period("下个季度")

    message = refused.value.message
    for example in ("2026-Q3", "2026-09-15", "2026年第三季度", "2026年9月", "2026年9月15日"):
        assert example in message


@pytest.mark.parametrize(
    ("period", "first", "last"),
    [
        ("2026", date(2026, 1, 1), date(2026, 12, 31)),
        ("2026年", date(2026, 1, 1), date(2026, 12, 31)),
        ("2026-Q1", date(2026, 1, 1), date(2026, 3, 31)),
        ("2026年第三季度", date(2026, 7, 1), date(2026, 9, 30)),
        ("2026年四季度", date(2026, 10, 1), date(2026, 12, 31)),
        ("2028年2月", date(2028, 2, 1), date(2028, 2, 29)),
        ("2026/12", date(2026, 12, 1), date(2026, 12, 31)),
        ("2026年9月15日", date(2026, 9, 15), date(2026, 9, 15)),
    ],
)
def test_a_period_covers_its_days(period: str, first: date, last: date) -> None:
    assert period_bounds(period) == (first, last)
    assert period_bounds(check_period(period)) == (first, last)


def test_bounds_refuse_what_check_period_refuses() -> None:
    with pytest.raises(InvalidField):
        period_bounds("2026年第五季度")
