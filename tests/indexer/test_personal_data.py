"""Masking mainland ID card, bank card and mobile numbers: what counts, and what is left alone."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pytest

from services.personal_data import mask_indexed, mask_personal_data
from services.search import IndexedDocument

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def id_number(first17: str) -> str:
    """The 18-character number with its GB 11643 check character."""
    total = sum(int(digit) * weight for digit, weight in zip(first17, _WEIGHTS, strict=True))
    return first17 + "10X98765432"[total % 11]


def card_number(first_digits: str) -> str:
    """The digits followed by their Luhn check digit."""
    total = 0
    for place, digit in enumerate(reversed(first_digits)):
        value = int(digit) * (1 if place % 2 else 2)
        total += value - 9 if value > 9 else value
    return first_digits + str(-total % 10)


def grouped(number: str, separator: str) -> str:
    return separator.join(number[i : i + 4] for i in range(0, len(number), 4))


ID = id_number("41010219900307123")
CARD16 = card_number("622202123456789")
CARD19 = card_number("621700123456789012")


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


def test_ids_grouped_six_eight_four_are_masked() -> None:
    text = f"身份证 {ID[:6]} {ID[6:14]} {ID[14:]}"
    assert mask_personal_data(text) == (f"身份证 410*** ******** {ID[-4:]}", True)


def test_full_width_digits_are_masked_and_keep_their_width() -> None:
    wide = ID.translate({code: code + 0xFEE0 for code in range(0x30, 0x3A)})
    masked, found = mask_personal_data(f"身份证：{wide}，手机：１３８－１２３４－５６７８")
    assert found
    assert masked == f"身份证：{wide[:3]}{'*' * 11}{wide[-4:]}，手机：１３８－****－５６７８"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"卡号{CARD16}。", f"卡号{CARD16[:4]}********{CARD16[-4:]}。"),
        (f"卡号{CARD19}", f"卡号{CARD19[:4]}***********{CARD19[-4:]}"),
        (grouped(CARD16, " "), f"{CARD16[:4]} **** **** {CARD16[-4:]}"),
        (grouped(CARD16, "-"), f"{CARD16[:4]}-****-****-{CARD16[-4:]}"),
        (grouped(CARD19, " "), f"{CARD19[:4]} **** **** ***{CARD19[-4]} {CARD19[-3:]}"),
    ],
    ids=["16 digits", "19 digits", "groups of four", "hyphens", "19 in groups"],
)
def test_bank_card_numbers_are_masked(text: str, expected: str) -> None:
    assert mask_personal_data(text) == (expected, True)


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(CARD16[:-1] + str((int(CARD16[-1]) + 1) % 10), id="wrong Luhn digit"),
        pytest.param(card_number("202403150012345"), id="serial starting with a year"),
        pytest.param(card_number("1234567890123456789"), id="twenty digits"),
        pytest.param("7" + CARD16, id="inside a longer digit run"),
        pytest.param(f"{CARD16[:8]} {CARD16[8:]}", id="not in groups of four"),
        pytest.param(f"金额{CARD16}.00元", id="an amount"),
        pytest.param("发票号码 24442000000012345678", id="an electronic invoice number"),
    ],
)
def test_numbers_that_are_not_bank_cards_are_left(text: str) -> None:
    assert mask_personal_data(text) == (text, False)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("电话138-1234-5678", "电话138-****-5678"),
        ("电话 138 1234 5678。", "电话 138 **** 5678。"),
        ("+86 138 1234 5678", "+86 138 **** 5678"),
        ("+86-138-1234-5678", "+86-138-****-5678"),
        ("(+86)13812345678", "(+86)138****5678"),
        ("（+86）138 1234 5678", "（+86）138 **** 5678"),
        ("0086 13812345678", "0086 138****5678"),
        ("138\u20131234\u20135678", "138\u2013****\u20135678"),
    ],
    ids=[
        "hyphens",
        "spaces",
        "+86 spaces",
        "+86 hyphens",
        "(+86)",
        "full-width (+86)",
        "0086",
        "dash",
    ],
)
def test_mobile_numbers_in_groups_are_masked(text: str, expected: str) -> None:
    assert mask_personal_data(text) == (expected, True)


@pytest.mark.parametrize(
    "text",
    [
        "2024-03-15",
        "2024年3月15日 13:12",
        "会议于2024-03-13 12:34:56召开",
        "138-1234 5678",  # two different separators: not one number
        "13 812 345 678",
        "138 12345 678",
        "总金额13812345678.50元",
        "比例0.13812345678",
        "城政发〔2024〕138号",
        "合同编号 HT-2024-0315-1381",
    ],
)
def test_dates_amounts_and_document_numbers_are_left(text: str) -> None:
    assert mask_personal_data(text) == (text, False)


def test_a_table_row_of_numbers_is_masked_cell_by_cell() -> None:
    text = f"张三 {ID} 13812345678 {CARD16} 2024-03-15 1200.00"
    masked, found = mask_personal_data(text)
    assert found
    assert masked == (
        f"张三 410***********{ID[-4:]} 138****5678 {CARD16[:4]}********{CARD16[-4:]} "
        "2024-03-15 1200.00"
    )


def test_every_free_text_field_of_an_index_entry_is_masked() -> None:
    document = IndexedDocument(
        id="doc-13812345678",
        title=f"王某{ID}申请",
        filename="张三13812345678.docx",
        category="困难救助 139 1234 5678",
        tags=("低保", grouped(CARD16, " ")),
        description=f"联系人身份证{ID}",
        body="电话138-1234-5678",
        township_name="东镇",
        township_id=1,
        visibility="departments",
        department_ids=(),
        period=None,
        period_start=None,
        period_end=None,
        created_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        content_type="text/plain",
    )
    masked, found = mask_indexed(document)
    assert found
    assert masked == replace(
        document,
        title=f"王某410***********{ID[-4:]}申请",
        filename="张三138****5678.docx",
        category="困难救助 139 **** 5678",
        tags=("低保", f"{CARD16[:4]} **** **** {CARD16[-4:]}"),
        description=f"联系人身份证410***********{ID[-4:]}",
        body="电话138-****-5678",
    )


def test_an_index_entry_without_personal_data_is_unchanged() -> None:
    document = IndexedDocument(
        id="d",
        title="2026年第三季度工作总结",
        filename="总结.docx",
        category="工作总结",
        tags=("扶贫",),
        description="",
        body="走访贫困户126户",
        township_name="东镇",
        township_id=1,
        visibility="departments",
        department_ids=(),
        period="2026-Q3",
        period_start=None,
        period_end=None,
        created_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        content_type="text/plain",
    )
    assert mask_indexed(document) == (document, False)
