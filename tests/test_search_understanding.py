"""Relative periods and near-miss township names in a query, read as the clerk means them."""

from __future__ import annotations

from datetime import date

import pytest

from services.search.understanding import Reading, understood_query

TOWNSHIPS = ("城关镇", "河口乡", "大河口镇")


@pytest.mark.parametrize(
    ("query", "today", "meant"),
    [
        ("去年的扶贫总结", date(2026, 3, 1), "2025年的扶贫总结"),
        ("今年 前年", date(2026, 3, 1), "2026年 2024年"),
        ("上季度 会议纪要", date(2026, 1, 15), "2025年第4季度 会议纪要"),
        ("本季度", date(2026, 8, 31), "2026年第3季度"),
        ("上个月的台账", date(2026, 1, 15), "2025年12月的台账"),
        ("上月 本月", date(2026, 12, 1), "2026年11月 2026年12月"),
        ("上一季度", date(2026, 4, 1), "2026年第1季度"),
    ],
)
def test_a_relative_period_is_the_period_it_names_on_the_day(
    query: str, today: date, meant: str
) -> None:
    assert understood_query(query, today=today, townships=TOWNSHIPS)[0] == meant


def test_each_change_is_said_once() -> None:
    meant, readings = understood_query(
        "河口镇 去年 去年", today=date(2026, 5, 1), townships=TOWNSHIPS
    )
    assert meant == "河口乡 2025年 2025年"
    assert readings == (Reading("去年", "2025年"), Reading("河口镇", "河口乡"))


def test_a_township_name_with_the_other_suffix_is_the_countys_own() -> None:
    assert understood_query("城关乡 扶贫", today=date(2026, 5, 1), townships=TOWNSHIPS)[0] == (
        "城关镇 扶贫"
    )


def test_a_real_name_holding_a_near_miss_is_left_whole() -> None:
    # 大河口镇 holds 河口镇, the near miss of 河口乡: it is a township of its own.
    meant, readings = understood_query("大河口镇 总结", today=date(2026, 5, 1), townships=TOWNSHIPS)
    assert (meant, readings) == ("大河口镇 总结", ())


def test_no_change_when_both_spellings_are_townships_or_the_stem_is_one_character() -> None:
    both = ("河口乡", "河口镇", "东镇")
    for query in ("河口镇 总结", "河口乡 总结", "东乡 总结"):
        assert understood_query(query, today=date(2026, 5, 1), townships=both) == (query, ())


def test_a_query_without_such_words_is_unchanged() -> None:
    query = "2024年第三季度 扶贫 工作总结"
    assert understood_query(query, today=date(2026, 5, 1), townships=TOWNSHIPS) == (query, ())
