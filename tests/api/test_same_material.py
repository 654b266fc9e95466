"""Two uploads of one material: near-identical text is listed under 相似材料 on both documents
once indexed, and a second upload under a title and period the township already used is named
on the upload's answer and on both documents' pages, whatever its bytes.

Runs on the embedded stack (SQLite, FTS5) and on the real one (PostgreSQL, Elasticsearch).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient

from indexer.worker import IndexWorker
from services.backends import Backends
from services.models import COUNTY_TIME, Document
from tests.conftest import Api, signed_in_browser
from tests.samples import docx_bytes

TITLE = "东镇2026年第三季度扶贫工作总结"
SUMMARY = (
    "东镇2026年第三季度扶贫工作总结。本季度共走访脱贫户和监测对象132户，覆盖全部行政村；"
    "新识别监测对象5户，消除返贫风险8户。落实四个不摘要求，镇村干部结对帮扶61户。"
    "发放产业奖补资金30万元，组织务工培训3场。"
)
FIELDS = {"title": TITLE, "category": "工作总结", "period": "2026-Q3"}


def _index(backends: Backends) -> None:
    IndexWorker(backends, backends.index).drain()


def _get(api: Api, user: str, document_id: str) -> Any:
    response = api.client.get(f"/api/v1/documents/{document_id}", headers=api.headers(user))
    assert response.status_code == 200, response.text
    return response.json()


def test_a_near_identical_second_upload_is_similar_on_both_pages(
    api: Api, backends: Backends, client: TestClient
) -> None:
    first = api.upload("east", "总结.docx", docx_bytes(SUMMARY), **FIELDS).json()["id"]
    second = api.upload("east", "总结2.docx", docx_bytes(SUMMARY + "特此报告。"), **FIELDS)
    assert second.status_code == 201, second.text
    second_id = second.json()["id"]
    _index(backends)

    for user in ("east", "poverty"):  # the township, and a department that reads both
        for document_id, other in ((first, second_id), (second_id, first)):
            [similar] = _get(api, user, document_id)["similar_to"]
            assert (similar["id"], similar["title"]) == (other, TITLE)
            assert similar["similarity"] >= 0.8
    with signed_in_browser(client, "poverty") as browser:
        page = browser.get(f"/documents/{first}").text
    assert "没有发现相似的材料" not in page
    assert f'<a href="/documents/{second_id}">{TITLE}</a>' in page


def test_a_second_upload_with_the_same_title_and_period_is_flagged(
    api: Api, backends: Backends, client: TestClient
) -> None:
    first = api.upload("east", "总结.docx", docx_bytes(SUMMARY), **FIELDS)
    assert first.status_code == 201, first.text
    assert first.json()["same_title_and_period"] == []
    first_id = first.json()["id"]
    # Other words altogether (not a near-duplicate); the title differs only in width and spaces.
    other_text = docx_bytes(
        "本季度扶贫工作：完成入户核查，组织培训两场，详见附表。下一步开展回头看。"
    )
    second = api.upload(
        "east2",
        "另一份.docx",
        other_text,
        **{**FIELDS, "title": " 东镇２０２６年第三季度扶贫工作总结"},
    )
    assert second.status_code == 201, second.text
    [named] = second.json()["same_title_and_period"]
    assert (named["id"], named["title"], named["period"]) == (first_id, TITLE, "2026-Q3")
    created = datetime.fromisoformat(named["created_at"])
    assert created == datetime.fromisoformat(first.json()["created_at"])
    second_id = second.json()["id"]
    _index(backends)

    # The first one's page names the second, and the second's the first.
    assert [d["id"] for d in _get(api, "east", first_id)["same_title_and_period"]] == [second_id]
    assert [d["id"] for d in _get(api, "east", second_id)["same_title_and_period"]] == [first_id]
    assert _get(api, "east", second_id)["similar_to"] == []  # the texts differ

    uploaded_at = created.astimezone(COUNTY_TIME).strftime("%Y-%m-%d %H:%M")
    with signed_in_browser(client, "east") as browser:
        page = browser.get(f"/documents/{second_id}").text
    assert (
        f'本乡镇已有同名同期材料<a href="/documents/{first_id}">《{TITLE}》</a>'
        f"（上传于 {uploaded_at}）"
    ) in page
    assert "请撤回其中一份" in page
    # The receipt the clerk prints or keeps says so too.
    with signed_in_browser(client, "east2") as browser:
        receipt = browser.get(f"/documents/{second_id}/receipt")
    assert receipt.status_code == 200
    assert f"《{TITLE}》" in receipt.text

    # Once one is withdrawn, the other stands alone.
    withdrawn = api.client.delete(f"/api/v1/documents/{first_id}", headers=api.headers("east"))
    assert withdrawn.status_code == 200, withdrawn.text
    assert _get(api, "east", second_id)["same_title_and_period"] == []
    with signed_in_browser(client, "east") as browser:
        assert "同名同期" not in browser.get(f"/documents/{second_id}").text


def test_another_period_township_or_title_is_not_flagged(api: Api) -> None:
    first = api.upload("east", "总结.docx", docx_bytes(SUMMARY), **FIELDS)
    assert first.status_code == 201, first.text
    for user, name, fields in (
        ("east", "二季度.docx", {**FIELDS, "period": "2026-Q2"}),
        ("east", "九月.docx", {**FIELDS, "period": "2026-09"}),
        ("east", "党建.docx", {**FIELDS, "title": "东镇2026年第三季度党建工作总结"}),
        ("west", "西乡.docx", FIELDS),
    ):
        response = api.upload(user, name, docx_bytes(f"{name} {SUMMARY}"), **fields)
        assert response.status_code == 201, response.text
        assert response.json()["same_title_and_period"] == [], name


def test_the_same_bytes_again_are_a_duplicate_not_a_namesake(api: Api) -> None:
    body = docx_bytes(SUMMARY)
    first = api.upload("east", "总结.docx", body, **FIELDS)
    again = api.upload("east", "总结.docx", body, **FIELDS)
    assert again.status_code == 200, again.text
    assert again.json()["duplicate"] is True
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["same_title_and_period"] == []


def test_a_namesake_the_caller_may_not_see_is_not_named(api: Api) -> None:
    private = api.upload(
        "east", "内部.docx", docx_bytes(SUMMARY), **{**FIELDS, "visibility": "private"}
    )
    shared = api.upload("east", "报送.docx", docx_bytes("另一份 " + SUMMARY), **FIELDS)
    assert private.status_code == shared.status_code == 201
    assert [d["id"] for d in _get(api, "east", shared.json()["id"])["same_title_and_period"]] == [
        private.json()["id"]
    ]
    assert _get(api, "poverty", shared.json()["id"])["same_title_and_period"] == []


def test_a_department_reads_the_township_name_and_no_advice(api: Api, client: TestClient) -> None:
    first = api.upload("east", "总结.docx", docx_bytes(SUMMARY), **FIELDS).json()["id"]
    second = api.upload("east", "另一份.docx", docx_bytes("另一份 " + SUMMARY), **FIELDS)
    with signed_in_browser(client, "poverty") as browser:
        page = browser.get(f"/documents/{second.json()['id']}").text
    assert f'东镇已有同名同期材料<a href="/documents/{first}">《{TITLE}》</a>' in page
    assert "本乡镇" not in page
    assert "请撤回其中一份" not in page


def test_the_page_of_a_material_not_yet_indexed_says_similar_ones_come_later(
    api: Api, client: TestClient
) -> None:
    document_id = api.upload("east", "总结.docx", docx_bytes(SUMMARY), **FIELDS).json()["id"]
    with signed_in_browser(client, "east") as browser:
        page = browser.get(f"/documents/{document_id}").text
    assert "正文索引完成后，这里列出同一乡镇正文几乎相同的材料" in page
    assert "没有发现相似的材料" not in page


def _similar_items(page: str) -> list[str]:
    listed = re.search(r'<ul class="similar-list">(.*?)</ul>', page, re.S)
    assert listed is not None, "no similar materials listed"
    return [
        " ".join(re.sub(r"<[^>]+>", " ", item).split())
        for item in re.findall(r"<li>(.*?)</li>", listed.group(1), re.S)
    ]


def test_a_withdrawn_copy_among_similar_ones_says_so_and_namesakes_differ(
    api: Api, backends: Backends, client: TestClient
) -> None:
    """A township withdrew a wrong copy and uploaded it again: its 相似材料 tell the two apart."""
    wrong = "东镇11月台账（错传）"
    current = api.upload("east", "总结.docx", docx_bytes(SUMMARY), **FIELDS).json()["id"]
    copies = []
    for name, ending in (("错传.docx", "特此报告。"), ("重传.docx", "以上报告。")):
        response = api.upload(
            "east", name, docx_bytes(SUMMARY + ending), **{**FIELDS, "title": wrong}
        )
        assert response.status_code == 201, response.text
        copies.append(response.json()["id"])
    first, again = copies
    _index(backends)
    with backends.db.session() as session:  # the wrong copy went up an hour earlier
        copy = session.get(Document, first)
        assert copy is not None
        copy.created_at -= timedelta(hours=1)
    withdrawn = api.client.delete(f"/api/v1/documents/{first}", headers=api.headers("east"))
    assert withdrawn.status_code == 200, withdrawn.text

    with signed_in_browser(client, "east") as browser:
        items = _similar_items(browser.get(f"/documents/{current}").text)
    assert len(items) == 2, items
    times = {}
    for document_id in copies:
        created = _get(api, "east", document_id)["created_at"]
        at = datetime.fromisoformat(created).astimezone(COUNTY_TIME)
        times[document_id] = at.strftime("%Y-%m-%d %H:%M:%S")  # the same title: to the second
    [gone] = [item for item in items if "已撤回" in item]
    [live] = [item for item in items if "已撤回" not in item]
    assert gone.startswith(f"{wrong} 已撤回 相似度")
    assert gone.endswith(f"上传于 {times[first]}")
    assert live.startswith(f"{wrong} 相似度")
    assert live.endswith(f"上传于 {times[again]}")

    # A department never sees the withdrawn copy (as elsewhere), only the one uploaded again:
    # its title shown once, its upload time to the minute.
    with signed_in_browser(client, "poverty") as browser:
        [seen] = _similar_items(browser.get(f"/documents/{current}").text)
    assert seen.startswith(f"{wrong} 相似度")
    assert seen.endswith(f"上传于 {times[again][:16]}")
