"""Masking mainland ID card and mobile numbers before text is indexed."""

from __future__ import annotations

import pytest

from indexer.personal_data import mask_personal_data

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def id_number(first17: str) -> str:
    """The 18-character number with its GB 11643 check character."""
    total = sum(int(digit) * weight for digit, weight in zip(first17, _WEIGHTS, strict=True))
    return first17 + "10X98765432"[total % 11]


def test_the_standards_own_example_is_masked() -> None:
    masked, found = mask_personal_data("身份证号：11010519491231002X。")
    assert (masked, found) == ("身份证号：110***********002X。", True)


def test_id_number_keeps_first_three_and_last_four() -> None:
    number = id_number("41010219900307123")
    masked, found = mask_personal_data(f"申请人王某，{number}，城关镇人")
    assert masked == f"申请人王某，410***********{number[-4:]}，城关镇人"
    assert found


def test_lowercase_check_character() -> None:
    assert mask_personal_data("11010519491231002x")[0] == "110***********002x"


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("110105194912310021", id="wrong check digit"),
        pytest.param(id_number("41010219901307123"), id="month 13"),
        pytest.param(id_number("41010221990307123"), id="born in the future"),
        pytest.param(id_number("41010218500307123"), id="born before 1900"),
        pytest.param(id_number("99010219900307123"), id="no such province"),
        pytest.param("7" + id_number("41010219900307123"), id="inside a longer digit run"),
        pytest.param(id_number("41010219900307123") + "5", id="followed by a digit"),
    ],
)
def test_numbers_that_are_not_id_cards_are_left(text: str) -> None:
    assert mask_personal_data(text) == (text, False)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("联系电话13812345678。", "联系电话138****5678。"),
        ("手机：19987654321", "手机：199****4321"),
        ("+8613812345678", "+86138****5678"),
        ("+86 13812345678", "+86 138****5678"),
        ("8613812345678", "86138****5678"),
        ("tel:15012345678,15112345678", "tel:150****5678,151****5678"),
    ],
)
def test_mobile_numbers_are_masked(text: str, expected: str) -> None:
    assert mask_personal_data(text) == (expected, True)


@pytest.mark.parametrize(
    "text",
    [
        "12812345678",  # no mobile network starts 12
        "238123456789",  # inside a longer digit run
        "138123456789",  # twelve digits
        "文号 20240313812345678",
        "0371-12345678",  # a landline
    ],
)
def test_numbers_that_are_not_mobiles_are_left(text: str) -> None:
    assert mask_personal_data(text) == (text, False)


def test_both_kinds_in_one_text() -> None:
    number = id_number("41010219900307123")
    text = f"王某（身份证{number}，电话13812345678）"
    masked, found = mask_personal_data(text)
    assert masked == f"王某（身份证410***********{number[-4:]}，电话138****5678）"
    assert found


def test_text_without_personal_data_is_unchanged() -> None:
    text = "2024年全县粮食播种面积12.5万亩，同比增长3%。"
    assert mask_personal_data(text) == (text, False)
