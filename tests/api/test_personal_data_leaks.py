"""Personal data never leaves through the search index, lists, search results or the logs.

Townships upload materials with ID, bank card and mobile numbers, in several spellings, in the
body, title, description, tags and file name; after indexing, the whole index (every column of
the SQLite index, every stored field and indexed term in Elasticsearch), the API's answers and the
logs are searched for any of them. The checks below find numbers by their own rules (checksum,
Luhn, shape), independently of the masking code.
"""

from __future__ import annotations

import json
import logging
import re
import sqlite3
import unicodedata
from collections.abc import Iterator

import pytest
from elasticsearch import Elasticsearch

from indexer.worker import IndexWorker
from services.backends import Backends
from services.config import Settings
from tests.conftest import Api
from tests.samples import docx_bytes

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def _id_check(first17: str) -> str:
    total = sum(int(digit) * weight for digit, weight in zip(first17, _WEIGHTS, strict=True))
    return "10X98765432"[total % 11]


def _luhn_valid(digits: str) -> bool:
    total = 0
    for place, digit in enumerate(reversed(digits)):
        value = int(digit) * (2 if place % 2 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


def _luhn(first_digits: str) -> str:
    return next(first_digits + d for d in "0123456789" if _luhn_valid(first_digits + d))


def _wide(text: str) -> str:
    return text.translate({code: code + 0xFEE0 for code in range(0x21, 0x7F)})


def _groups(number: str, sizes: tuple[int, ...], separator: str) -> str:
    parts, start = [], 0
    for size in sizes:
        parts.append(number[start : start + size])
        start += size
    return separator.join(parts)


ID_A = "41010219900307123" + _id_check("41010219900307123")
ID_B = "11010519491231002X"  # GB 11643's own example
ID_C = "51012219851103467" + _id_check("51012219851103467")
CARD_16 = _luhn("622202190731556")
CARD_19 = _luhn("621700209384756102")
MOBILE_A, MOBILE_B, MOBILE_C = "13907315568", "18629467031", "15866021947"
PLANTED = (ID_A, ID_B, ID_C, CARD_16, CARD_19, MOBILE_A, MOBILE_B, MOBILE_C)

BODY = "\n".join(
    [
        "城关镇2026年低保复核名单（入户核查）",
        f"张某 身份证{ID_A} 电话{MOBILE_A} 银行卡{CARD_16}",
        f"李某 身份证 {ID_B.lower()} 手机 {_groups(MOBILE_B, (3, 4, 4), '-')}",
        f"王某 身份证 {_groups(ID_C, (6, 8, 4), ' ')} 手机 +86 {_groups(MOBILE_C, (3, 4, 4), ' ')}",
        f"赵某 卡号 {_groups(CARD_19, (4, 4, 4, 4, 3), ' ')} 联系 (+86){MOBILE_A}",
        f"钱某 卡号 {_groups(CARD_16, (4, 4, 4, 4), '-')} 全角 {_wide(MOBILE_B)} {_wide(ID_A)}",
        f"孙某 {ID_C} {MOBILE_C} {CARD_19} 2026-03-15 补助1200.00元",
        "核查于2026年3月15日完成，共12户。",
    ]
)
# The metadata a township types in: every field holds a number the index must never keep.
UPLOADS: dict[str, dict[str, str]] = {
    "list": {
        "filename": f"低保名单_{ID_B}_{MOBILE_A}.txt",
        "title": f"低保户{ID_A}复核",
        "description": f"联系人手机{_groups(MOBILE_B, (3, 4, 4), ' ')}，卡号{CARD_16}",
        "tags": f"低保,{_groups(CARD_19, (4, 4, 4, 4, 3), '-')},{MOBILE_C}",
    },
    "form": {
        "filename": f"申请表 {_groups(MOBILE_C, (3, 4, 4), '-')}.docx",
        "title": f"救助申请 {ID_C} {_groups(CARD_16, (4, 4, 4, 4), ' ')}",
        "description": f"申请人身份证{_wide(ID_B)}，电话+86-{_groups(MOBILE_A, (3, 4, 4), '-')}",
        "tags": f"救助,{ID_A},{_wide(MOBILE_B)}",
    },
}
SEARCHES = ("", "低保", "入户核查", "救助申请", "复核", "身份证", "卡号")


def personal_numbers(text: str) -> set[str]:
    """Every ID number with a valid check character, Luhn-valid card number and mobile number in
    the text, and every planted number, however spelled (full-width, grouped by spaces or
    hyphens)."""
    normal = unicodedata.normalize("NFKC", text)
    compact = re.sub(r"[\s\-\u2010-\u2015]+", "", normal)
    found = {number for number in PLANTED if number.lower() in compact.lower()}
    for haystack in (normal, compact, re.sub(r"(?<=\d)[ -](?=\d)", "", normal)):
        runs = re.finditer(r"(?<![0-9A-Za-z])[0-9]+[Xx]?(?![0-9A-Za-z])", haystack)
        found.update(run.group().upper() for run in runs if _is_personal(run.group().upper()))
    return found


def _is_personal(digits: str) -> bool:
    if len(digits) == 18 and _id_check(digits[:17]) == digits[17]:
        return True
    if digits.isdigit() and 16 <= len(digits) <= 19 and _luhn_valid(digits):
        return True
    return re.fullmatch(r"(?:86)?1[3-9][0-9]{9}", digits) is not None


def _sqlite_index_texts(settings: Settings) -> Iterator[str]:
    """Every value of every table of the embedded index, its FTS vocabulary, and its raw bytes."""
    path = settings.data_dir / "search.sqlite3"
    assert path.exists()
    with sqlite3.connect(path) as conn:
        tables = conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'table'").fetchall()
        assert tables
        for name, sql in tables:
            for row in conn.execute(f'SELECT * FROM "{name}"'):
                for value in row:
                    if isinstance(value, bytes):
                        yield value.decode("latin-1")
                    elif value is not None:
                        yield str(value)
            if sql and "using fts5" in sql.lower():
                # The terms as the inverted index holds them (its pages store them compressed).
                conn.execute(
                    f'CREATE VIRTUAL TABLE temp."{name}_terms" USING fts5vocab(main, "{name}", row)'
                )
                yield " ".join(term for (term,) in conn.execute(f'SELECT term FROM "{name}_terms"'))
    for file in settings.data_dir.glob("search.sqlite3*"):
        yield file.read_bytes().decode("latin-1")


def _elasticsearch_index_texts(settings: Settings) -> Iterator[str]:
    """Every document's _source and fields, and every term of every indexed field."""
    assert settings.elasticsearch_url
    with Elasticsearch(settings.elasticsearch_url) as client:
        alias = settings.elasticsearch_index
        client.indices.refresh(index=alias)
        response = client.search(
            index=alias, query={"match_all": {}}, size=1000, fields=["*"], version=True
        )
        hits = response.body["hits"]["hits"]
        assert hits
        for hit in hits:
            yield json.dumps(hit, ensure_ascii=False)
            vectors = client.termvectors(
                index=hit["_index"], id=hit["_id"], fields=["*"], positions=False, offsets=False
            ).body
            assert vectors["term_vectors"]
            for field in vectors["term_vectors"].values():
                yield " ".join(field["terms"])


def _index_texts(settings: Settings) -> list[str]:
    if settings.elasticsearch_url:
        return list(_elasticsearch_index_texts(settings))
    return list(_sqlite_index_texts(settings))


@pytest.fixture
def uploaded(api: Api, backends: Backends, caplog: pytest.LogCaptureFixture) -> dict[str, str]:
    """The two materials, uploaded by east for every department and indexed."""
    caplog.set_level(logging.DEBUG)
    ids = {}
    contents = {"list": BODY.encode(), "form": docx_bytes(BODY.replace("\n", "。"))}
    for name, fields in UPLOADS.items():
        upload_fields = {key: value for key, value in fields.items() if key != "filename"}
        response = api.upload("east", fields["filename"], contents[name], **upload_fields)
        assert response.status_code == 201, response.text
        # The uploader gets back what they typed.
        assert response.json()["title"] == fields["title"]
        ids[name] = response.json()["id"]
    IndexWorker(backends, backends.index).drain()
    return ids


def test_index_api_answers_and_logs_hold_no_personal_numbers(
    api: Api,
    settings: Settings,
    uploaded: dict[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The planted numbers are what the checks look for, in every spelling used above.
    assert personal_numbers(BODY) >= set(PLANTED)
    assert personal_numbers(json.dumps(UPLOADS, ensure_ascii=False)) >= set(PLANTED)

    leaks: dict[str, set[str]] = {}
    for text in _index_texts(settings):
        leaks.setdefault("index", set()).update(personal_numbers(text))

    answers = []
    for user in ("poverty", "stats", "auditor"):
        listing = api.client.get("/api/v1/documents", headers=api.headers(user))
        assert listing.status_code == 200, listing.text
        answers.append(listing.text)
        if user != "auditor":  # readers see both; auditors list but search nothing
            assert {d["id"] for d in listing.json()["documents"]} == set(uploaded.values())
    for query in SEARCHES:
        found = api.client.get("/api/v1/search", params={"q": query}, headers=api.headers("stats"))
        assert found.status_code == 200, found.text
        answers.append(found.text)
        if query:
            assert found.json()["hits"], query
    leaks["api"] = set().union(*(personal_numbers(answer) for answer in answers))

    logged = []
    for record in caplog.records:
        logged.append(record.getMessage())
        if record.exc_text:
            logged.append(record.exc_text)
    assert logged  # the worker and the app did log, at DEBUG
    leaks["logs"] = set().union(*(personal_numbers(line) for line in logged))

    assert leaks == {"index": set(), "api": set(), "logs": set()}


def test_lists_and_results_show_metadata_masked(api: Api, uploaded: dict[str, str]) -> None:
    listing = api.client.get("/api/v1/documents", headers=api.headers("poverty")).json()
    shown = {document["id"]: document for document in listing["documents"]}
    form = shown[uploaded["form"]]
    assert form["title"] == f"救助申请 510***********{ID_C[-4:]} 6222 **** **** {CARD_16[-4:]}"
    assert form["filename"] == f"申请表 158-****-{MOBILE_C[-4:]}.docx"
    assert form["tags"][0] == "救助"
    assert form["contains_personal_data"] is True
    assert shown[uploaded["list"]]["contains_personal_data"] is True


@pytest.mark.parametrize(
    ("user", "reveal"),
    [
        ("east", True),  # the uploading township
        ("poverty", True),  # a department that may download the file, which holds the same
        ("auditor", False),  # sees every document's metadata, downloads nothing ungranted
    ],
)
def test_one_documents_page_shows_metadata_as_typed_only_to_who_may_download(
    api: Api, uploaded: dict[str, str], user: str, reveal: bool
) -> None:
    response = api.client.get(f"/api/v1/documents/{uploaded['form']}", headers=api.headers(user))
    assert response.status_code == 200, response.text
    document = response.json()
    typed = UPLOADS["form"]
    shown = (document["title"], document["filename"], document["description"])
    assert (shown == (typed["title"], typed["filename"], typed["description"])) is reveal
    assert bool(personal_numbers(response.text)) is reveal


def test_searching_a_full_number_finds_nothing(api: Api, uploaded: dict[str, str]) -> None:
    # Written in groups (138 1234 5678) a query is several words, and the groups a mask keeps
    # (138, 5678) may match; the number as one word never does.
    for number in (*PLANTED, ID_B.lower()):
        found = api.client.get(
            "/api/v1/search", params={"q": number}, headers=api.headers("poverty")
        )
        assert found.status_code == 200, found.text
        assert found.json()["hits"] == [], (number, found.json())
