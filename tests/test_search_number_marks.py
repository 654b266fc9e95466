"""Highlighting looks only for the query's number tokens: it marks exactly what a full scan would.

``number_matches`` with ``wanted`` passes over matches of other units, and digits of other values,
unread; these tests hold it to the full scan filtered afterwards, on dates, quarters and counted
numbers written every way.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from services.search.numbers import number_matches, number_tokens
from services.search.segmentation import normalize

PIECES = [
    "2020年", "第三季度", "三季度", "3季度", "q3", "2021-q2", "2020-09-15", "2019.7.1", "9月份",
    "十二月", "15号", "第2期", "二〇二〇年", "年度", "第十届", "2023年度", "扶贫", " ", "，", "q",
    "7", "季", "月", "日", "2022年", "12022年", "二〇二二年", "1850年", "02", "2019-6", "第2021",
]  # fmt: skip


def full_scan(normalized: str, wanted: frozenset[str]) -> list[tuple[str, int, int]]:
    return [item for item in number_matches(normalized) if item[0] in wanted]


@settings(max_examples=1000, deadline=None)
@given(
    st.lists(st.sampled_from(PIECES), max_size=12),
    st.lists(st.sampled_from(PIECES), min_size=1, max_size=3),
)
def test_wanted_numbers_are_those_of_the_full_scan(pieces: list[str], query: list[str]) -> None:
    text = normalize("".join(pieces))
    wanted = frozenset(token for piece in query for token, _, _ in number_tokens(normalize(piece)))
    assert number_matches(text, wanted) == full_scan(text, wanted)


def test_a_quarter_query_marks_every_way_of_writing_it() -> None:
    text = normalize("2020年第三季度、2020-Q3 与 3季度；9月份不算")
    wanted = frozenset({"2020年", "3季度"})
    marked = [text[start:end] for _, start, end in number_matches(text, wanted)]
    assert marked == ["2020年", "第三季度", "3季度", "2020", "q3"]
    assert number_matches(text, wanted) == full_scan(text, wanted)
