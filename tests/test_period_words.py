"""去年, 上季度, 本月 … in a period field: the period the word names on the county's date, stored
in canonical form, by the same table the search box reads them with."""

from __future__ import annotations

from datetime import date

import pytest

from services.errors import InvalidField
from services.metadata import check_period, period_bounds
from services.period_words import RELATIVE_WORDS
from services.search.understanding import understood_query

MID_YEAR = date(2026, 8, 15)  # third quarter
NEW_YEAR = date(2026, 1, 3)  # first month and quarter: the previous ones are last year's

# typed → stored, on MID_YEAR and on NEW_YEAR
MEANT: list[tuple[str, str, str]] = [
    ("今年", "2026", "2026"),
    ("本年", "2026", "2026"),
    ("本年度", "2026", "2026"),
    ("去年", "2025", "2025"),
    ("上年度", "2025", "2025"),
    ("前年", "2024", "2024"),
    ("本季度", "2026-Q3", "2026-Q1"),
    ("这个季度", "2026-Q3", "2026-Q1"),
    ("上季度", "2026-Q2", "2025-Q4"),
    ("上个季度", "2026-Q2", "2025-Q4"),
    ("上一季度", "2026-Q2", "2025-Q4"),
    ("本月", "2026-08", "2026-01"),
    ("这个月", "2026-08", "2026-01"),
    ("上月", "2026-07", "2025-12"),
    ("上个月", "2026-07", "2025-12"),
]


@pytest.mark.parametrize(("typed", "mid_year", "new_year"), MEANT)
def test_a_relative_word_is_stored_as_the_period_it_names_that_day(
    typed: str, mid_year: str, new_year: str
) -> None:
    assert check_period(typed, today=MID_YEAR) == mid_year
    assert check_period(typed, today=NEW_YEAR) == new_year


def test_every_word_the_search_box_reads_a_period_field_takes() -> None:
    assert {typed for typed, _, _ in MEANT} == set(RELATIVE_WORDS)


@pytest.mark.parametrize(("typed", "mid_year", "_new_year"), MEANT)
def test_the_search_box_and_the_period_field_mean_the_same_period(
    typed: str, mid_year: str, _new_year: str
) -> None:
    searched, readings = understood_query(typed, today=MID_YEAR, townships=())
    assert [reading.typed for reading in readings] == [typed]
    assert check_period(searched) == mid_year  # 2026年第2季度 → 2026-Q2


@pytest.mark.parametrize("typed", [" 去年 ", "\u3000上季度\u3000", "上 月", "本\t月"])
def test_spaces_around_and_inside_a_word_are_ignored(typed: str) -> None:
    assert check_period(typed, today=MID_YEAR) in {"2025", "2026-Q2", "2026-07", "2026-08"}


def test_without_a_day_the_word_is_read_on_the_countys_date() -> None:
    from services.catalog import county_today

    today = county_today()
    assert check_period("去年") == str(today.year - 1)
    assert check_period("本月") == f"{today.year}-{today.month:02d}"
    # Filters take the words too: 去年 spans last year's days.
    assert period_bounds("去年") == (date(today.year - 1, 1, 1), date(today.year - 1, 12, 31))


@pytest.mark.parametrize(
    "typed", ["明年", "下个季度", "下月", "去年第三季度", "去年9月", "去年去年", "上上月", "年"]
)
def test_other_words_are_refused_saying_which_words_work(typed: str) -> None:
    with pytest.raises(InvalidField) as refused:
        check_period(typed, today=MID_YEAR)

    assert refused.value.error_code == "invalid_period"
    assert refused.value.field == "period"
    message = refused.value.message
    for example in ("2026-Q3", "2026年第三季度", "去年", "上季度", "上月"):
        assert example in message
