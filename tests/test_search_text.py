"""Highlighting text that normalisation changes: full-width digits, upper case, compatibility forms.

Highlights skip normalising a body when it cannot change where terms are found; these tests pin
that the shortcut and the full normalisation mark the same places, down to the byte.
"""

from __future__ import annotations

import random
import sys
import unicodedata

import pytest

from services.search import TextAnalyzer
from services.search.highlighting import (
    _STABLE_TEXT,
    _STABLE_VARIANTS,
    _marks,
    _normalize_for_marks,
    _normalize_with_offsets,
    _watched_variants,
    _windows,
)
from services.search.planning import QueryPlan
from services.search.segmentation import needs_folding, normalize

ANALYZER = TextAnalyzer()

PINNED = [
    ("２０２０年第三季度", "２０２０年第三季度，全镇完成扶贫台账整理。",
     ["<em>２０２０年第三季度</em>，全镇完成扶贫台账整理。"]),
    ("2020年9月", "截至２０２０年９月，ＰＤＦ版扶贫台账已报送。",
     ["截至<em>２０２０年９月</em>，ＰＤＦ版扶贫台账已报送。"]),
    ("pdf", "ＰＤＦ版与PDF版扶贫台账均已上传，pdf 文件另存。",
     ["<em>ＰＤＦ</em>版与<em>PDF</em>版扶贫台账均已上传，<em>pdf</em> 文件另存。"]),
    ("gdp", "全县GDP增长，Ｇｄｐ统计见附表。",
     ["全县<em>GDP</em>增长，<em>Ｇｄｐ</em>统计见附表。"]),
    ("株式会社", "㈱株式会社的合同……见附件ﬁle。",
     ["㈱<em>株式会社</em>的合同……见附件ﬁle。"]),
    ("file", "合同见附件ﬁle与FILE两份。",
     ["合同见附件<em>ﬁle</em>与<em>FILE</em>两份。"]),
    ("q3", "2021Q3与２０２１ｑ３的报表，Q3汇总。",
     ["2021<em>Q3</em>与２０２１<em>ｑ３</em>的报表，<em>Q3</em>汇总。"]),
    ("十月", "〸月完成验收，十月复查。",
     ["<em>〸月</em>完成验收，<em>十月</em>复查。"]),
    ("东风村", "东⻛村……⻓期跟踪，東風村复查。",
     ["<em>东⻛村</em>……⻓期跟踪，<em>東風村</em>复查。"]),
    ("长期", "⻓期跟踪、⻑期帮扶与长期监测",
     ["<em>⻓期</em>跟踪、<em>⻑期</em>帮扶与<em>长期</em>监测"]),
]  # fmt: skip


@pytest.mark.parametrize(("query", "body", "expected"), PINNED)
def test_highlights_mark_text_as_normalisation_reads_it(
    query: str, body: str, expected: list[str]
) -> None:
    assert ANALYZER.highlight(ANALYZER.plan(query), ["", body]) == expected


# Characters of every kind the shortcut has to tell apart: stable CJK and punctuation, full-width
# and upper-case forms of what queries contain, and characters NFKC lengthens or composes.
ALPHABET = (
    "扶贫台账年月日季度第三九十〸两二〇零号次期，。、：；（）《》“”—·　 \n"
    "0123456789０１２３４５６７８９-./－．／qQｑＱpdfPDFＰＤＦabcABC"
    "㈱ﬁ…‥½²ｶﾞe\u0301⻛风風⻓⻑长"
)
QUERIES = [
    "扶贫",
    "台账",
    "2020年第三季度",
    "三季度",
    "9月",
    "q3",
    "pdf",
    "十月",
    "e",
    "1.5",
    "a-b",
    "风",
    "长",
]


def test_the_shortcut_marks_exactly_what_full_normalisation_marks() -> None:
    rng = random.Random(20240601)
    plans = [ANALYZER.plan(query) for query in QUERIES]
    shortcuts = 0
    for _ in range(3000):
        body = "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 80)))
        if rng.random() < 0.5:  # half the bodies without the characters that force the slow path
            body = "".join(char for char in body if _STABLE_TEXT.fullmatch(char))
        for plan in plans:
            terms, numbers = plan.marked_terms, plan.numbers
            quick = _marks(
                *_normalize_for_marks(body, _watched_variants(terms, numbers)), terms, numbers
            )
            full = _marks(*_normalize_with_offsets(body), terms, numbers)
            assert quick == full, (body, plan)
            shortcuts += _normalize_for_marks(body, None)[0] is body
    assert shortcuts > 1000


def test_radicals_normalise_to_the_ideographs_unicode_says_they_stand_for() -> None:
    # CJK Radicals Supplement (NFKC leaves them) and Kangxi Radicals (NFKC folds them) alike.
    assert normalize("东⻛村⻓期⻔前⻋辆⻢匹") == "东风村长期门前车辆马匹"
    assert normalize("⾼⻛险") == "高风险"
    assert normalize("⻑") == "长"  # LONG ONE is 長, folded further to simplified
    assert normalize("⺀") == "⺀"  # CJK RADICAL REPEAT: no equivalent ideograph
    assert needs_folding("东⻛村")
    assert not needs_folding("东风村")
    # One character for one, so highlights stay aligned with the document's own characters.
    for code in range(0x2E80, 0x2F00):
        if unicodedata.category(chr(code)) != "Cn":
            assert len(normalize(chr(code))) == 1, hex(code)
    # Queries and documents fold alike: the same tokens, whichever was typed.
    assert ANALYZER.plan("东⻛村").marked_terms == ANALYZER.plan("东风村").marked_terms


def test_stable_characters_normalise_one_to_one_and_never_compose() -> None:
    stable = [chr(code) for code in range(0x30000) if _STABLE_TEXT.fullmatch(chr(code))]
    assert {"扶", "，", "Ａ", "a"} <= set(stable)
    images = set()
    for char in stable:
        image = normalize(char)
        assert len(image) == 1, char
        assert unicodedata.combining(char) == 0 == unicodedata.combining(image), char
        images.add(image)
        if image != char and not needs_folding(char):  # else a traditional character
            assert char in _STABLE_VARIANTS[image], char
    # NFKC recomposes only a pair in some canonical decomposition; none is made of these images.
    for code in range(sys.maxunicode + 1):
        decomposition = unicodedata.decomposition(chr(code)).split()
        if len(decomposition) == 2 and not decomposition[0].startswith("<"):
            first, second = (chr(int(part, 16)) for part in decomposition)
            assert not (first in images and second in images), hex(code)


def _highlight_normalising_everything(
    plan: QueryPlan, texts: list[str], *, limit: int = 3, width: int = 60
) -> list[str]:
    snippets: list[str] = []
    for body in texts:
        if len(snippets) < limit:
            spans = _marks(*_normalize_with_offsets(body), plan.marked_terms, plan.numbers)
            snippets.extend(_windows(body, spans, width=width, limit=limit - len(snippets))[0])
    return snippets


def test_long_bodies_are_searched_only_as_far_as_their_snippets_need() -> None:
    rng = random.Random(7)
    words = ["扶贫", "台账", "2020年第三季度", "2021年9月", "二〇二〇年", "Q3", "ＰＤＦ", "。"]
    filler = "县里组织干部走访群众核实情况整改问题建立制度"
    plans = [ANALYZER.plan(query) for query in QUERIES]
    for _ in range(25):
        pieces = []
        for _ in range(rng.randint(1, 40)):
            pieces.append("".join(rng.choices(filler, k=rng.choice([5, 50, 500, 5000]))))
            pieces.append(rng.choice(words))
        body = "".join(pieces)
        for plan in plans:
            expected = _highlight_normalising_everything(plan, ["标题", body])
            assert ANALYZER.highlight(plan, ["标题", body]) == expected, plan


def test_marks_at_the_edge_of_the_part_searched_first_are_not_missed() -> None:
    plan = ANALYZER.plan("扶贫 2020年")
    for first in range(3980, 4120, 3):
        for gap in (1, 20, 45, 70):
            body = "核" * first + "扶贫" + "实" * gap + "2020年" + "查" * 9000
            for limit in (1, 2, 3):
                expected = _highlight_normalising_everything(plan, [body], limit=limit)
                assert ANALYZER.highlight(plan, [body], limit=limit) == expected, (first, gap)


def test_a_text_full_of_one_term_marks_the_same_occurrences_either_way() -> None:
    plan = ANALYZER.plan("扶贫 台账")
    filler = "核实" * 3000
    for body in (
        ("扶贫，" * 1200) + "台账" + filler,
        filler + ("扶贫，" * 1200) + "台账",
        "台账" + ("扶贫。" * 999) + filler + "扶贫台账" + filler,
    ):
        expected = _highlight_normalising_everything(plan, [body])
        assert ANALYZER.highlight(plan, [body]) == expected


def test_a_character_jieba_left_alone_is_marked_only_inside_the_word_typed() -> None:
    # 网格员 is 网格 + 员 to jieba: the 员 of 党员 and 人员 is not what the clerk looked for.
    plan = ANALYZER.plan("网格员")
    body = "组织党员和网格员入户走访，参加人员30人。"
    assert ANALYZER.highlight(plan, [body]) == ["组织党员和<em>网格员</em>入户走访，参加人员30人。"]
    assert ANALYZER.highlight(plan, ["全镇党员名单"]) == []
    # Typed alone, the character is the whole query and is marked wherever it stands.
    assert ANALYZER.highlight(ANALYZER.plan("员"), ["党员"]) == ["党<em>员</em>"]


def test_snippets_show_the_documents_own_punctuation() -> None:
    # Terms are found in normalised text (，：（ read as ,:( there); the snippet shows the file's.
    body = "时间：2026年11月20日，各村（社区）报送２０２５年台账。"
    assert ANALYZER.highlight(ANALYZER.plan("社区 2025年"), [body]) == [
        "时间：2026年11月20日，各村（<em>社区</em>）报送<em>２０２５年</em>台账。"
    ]


def test_snippets_never_repeat_what_the_one_before_showed() -> None:
    # The second mark lies just past the first snippet: its snippet starts where the first one
    # ends instead of reaching back over the first one's words.
    body = "前" * 100 + "扶贫" + "中" * 45 + "台账" + "后" * 100
    first, second = ANALYZER.highlight(ANALYZER.plan("扶贫 台账"), [body])
    assert first == "…" + "前" * 20 + "<em>扶贫</em>" + "中" * 38 + "…"
    assert second == "…" + "中" * 7 + "<em>台账</em>" + "后" * 51 + "…"
