"""Did-you-mean corrections: one mistyped stretch replaced, never a word the query spelled right."""

from __future__ import annotations

from services.search.suggestions import corrections, probe

VOCABULARY = ["扶贫", "总结", "工作", "做法", "经验", "汇总", "脱贫", "攻坚"]


def test_a_stretch_that_sounds_like_a_known_word_is_corrected() -> None:
    assert corrections("扶贫工做总结", VOCABULARY)[0] == "扶贫工作总结"


def test_no_correction_cuts_into_a_word_spelled_right() -> None:
    # 做总 is no word and 做法 differs from it by one character, but replacing it breaks 总结.
    suggested = corrections("扶贫工做总结", VOCABULARY)

    assert "扶贫工做法结" not in suggested
    assert suggested == ["扶贫工作总结"]


def test_one_character_off_is_corrected() -> None:
    assert corrections("扶平", VOCABULARY) == ["扶贫"]
    assert corrections("脱贫攻艰", VOCABULARY)[0] == "脱贫攻坚"


def test_a_query_of_known_words_needs_no_correction() -> None:
    assert corrections("扶贫总结", VOCABULARY) == []


def test_the_probe_asks_only_for_what_can_correct_the_query() -> None:
    looked_up = probe("扶平")

    assert looked_up is not None
    assert set(looked_up.patterns) == {"?平", "扶?"}
    assert looked_up.pinyins == ("fuping",)
    assert probe("2024 Q3") is None  # no ideographs, nothing to correct
