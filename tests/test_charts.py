"""The app's own SVG charts: accessible, escaped, proportional, and saying every value in text."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from api.web.charts import Bar, bar_chart, number

SVG = "{http://www.w3.org/2000/svg}"


def _parse(markup: str) -> ET.Element:
    return ET.fromstring(markup)  # noqa: S314 (our own output)


def test_a_chart_is_an_image_with_a_title_and_a_description_of_every_value() -> None:
    svg = _parse(
        bar_chart(
            chart_id="c",
            title="节省工时",
            unit="小时",
            bars=[Bar("东镇", 4), Bar("西乡", 2.5)],
        )
    )
    assert svg.get("role") == "img"
    assert svg.get("aria-labelledby") == "c-title c-desc"
    assert svg.findtext(f"{SVG}title") == "节省工时"
    assert svg.findtext(f"{SVG}desc") == "东镇 4 小时；西乡 2.5 小时"
    labels = [t.text for t in svg.iter(f"{SVG}text") if t.get("class") == "chart-label"]
    values = [t.text for t in svg.iter(f"{SVG}text") if t.get("class") == "chart-value"]
    assert labels == ["东镇", "西乡"]
    assert values == ["4", "2.5"]


def test_bars_are_proportional_and_the_largest_fills_the_space() -> None:
    svg = _parse(bar_chart(chart_id="c", title="t", unit="项", bars=[Bar("a", 8), Bar("b", 2)]))
    widths = [float(r.get("width", "0")) for r in svg.iter(f"{SVG}rect")]
    assert widths[0] == 320.0
    assert widths[1] == 80.0


def test_an_empty_or_all_zero_chart_says_so() -> None:
    empty = _parse(bar_chart(chart_id="e", title="t", unit="项", bars=[]))
    assert empty.findtext(f"{SVG}desc") == "暂无数据"
    zeros = _parse(bar_chart(chart_id="z", title="t", unit="项", bars=[Bar("a", 0)]))
    assert [r.get("width") for r in zeros.iter(f"{SVG}rect")] == ["0.0"]


def test_labels_are_escaped_and_long_ones_shortened() -> None:
    markup = bar_chart(
        chart_id="x", title="<b>", unit="项", bars=[Bar("<script>很长很长很长很长的乡镇名称", 1)]
    )
    assert "<script>" not in markup
    assert "<b>" not in markup
    svg = _parse(markup)
    label = next(t.text for t in svg.iter(f"{SVG}text") if t.get("class") == "chart-label")
    assert label is not None
    assert label.endswith("…")
    assert len(label) == 10
    # The description keeps the whole name.
    assert re.search("很长的乡镇名称 1 项", svg.findtext(f"{SVG}desc") or "")


def test_numbers_read_without_trailing_zeros() -> None:
    assert [number(4.0), number(2.5), number(0.25), number(1.125)] == ["4", "2.5", "0.25", "1.12"]
