"""A withdrawn material as people meet it: the township finds it under 已撤回 on its list, with
its page and receipt; a department that could read it is told in a page that the township
withdrew it (and when), and the log says so; the API answers as API.md fixes it, unchanged.

Also the page's download link: a refusal is the Chinese error page, never the API's JSON.
"""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select

from services.audit import AuditAction
from services.audit_words import details_in_words
from services.backends import Backends
from services.models import AuditEvent
from tests.conftest import POVERTY, Api, signed_in_browser
from tests.samples import pdf_bytes

NOT_FOUND_JSON = {"error": {"code": "document_not_found", "message": "文档不存在"}}


def _upload(api: Api, filename: str, **fields: str) -> str:
    response = api.upload("east", filename, pdf_bytes(filename), "application/pdf", **fields)
    assert response.status_code == 201, response.text
    document_id: str = response.json()["id"]
    return document_id


def _withdraw(api: Api, document_id: str) -> None:
    response = api.client.delete(f"/api/v1/documents/{document_id}", headers=api.headers("east"))
    assert response.status_code in (200, 204), response.text


def _denials(backends: Backends, *, document_id: str, actor: str) -> list[AuditEvent]:
    with backends.db.session() as session:
        return list(
            session.scalars(
                select(AuditEvent)
                .where(
                    AuditEvent.document_id == document_id,
                    AuditEvent.actor == actor,
                    AuditEvent.outcome == "denied",
                )
                .order_by(AuditEvent.id)
            )
        )


def _rows(page: str) -> list[str]:
    """The titles the materials table links to, in order."""
    body = page.split("<tbody>", 1)[1].split("</tbody>", 1)[0] if "<tbody>" in page else ""
    return [
        part.split("</a>", 1)[0].split(">")[-1] for part in body.split('<td data-label="标题">')[1:]
    ]


def test_the_township_finds_its_withdrawn_materials_with_their_receipts(
    api: Api, backends: Backends, client: TestClient
) -> None:
    kept = _upload(api, "东镇在用总结.pdf", title="东镇在用总结")
    gone = _upload(api, "东镇撤回总结.pdf", title="东镇撤回总结")
    _withdraw(api, gone)

    with signed_in_browser(client, "east") as browser:
        live = browser.get("/materials")
        assert live.status_code == 200
        assert _rows(live.text) == ["东镇在用总结"]
        assert 'href="/materials?view=withdrawn"' in live.text

        withdrawn = browser.get("/materials?view=withdrawn")
        assert withdrawn.status_code == 200
        assert _rows(withdrawn.text) == ["东镇撤回总结"]
        assert f'href="/documents/{gone}/receipt"' in withdrawn.text
        assert f'href="/documents/{kept}"' not in withdrawn.text
        assert "撤回时间" in withdrawn.text
        # Filters and sorting stay in the withdrawn list.
        assert _rows(browser.get("/materials?view=withdrawn&sort=title").text) == ["东镇撤回总结"]
        filtered = browser.get("/materials?view=withdrawn&period=2020")
        assert _rows(filtered.text) == []
        assert "没有符合筛选条件的材料" in filtered.text
        assert 'href="/materials?view=withdrawn"' in filtered.text

        # Its page and receipt still open for the township.
        assert "此材料已于" in browser.get(f"/documents/{gone}").text
        assert browser.get(f"/documents/{gone}/receipt").status_code == 200

    with signed_in_browser(client, "west") as browser:
        assert _rows(browser.get("/materials?view=withdrawn").text) == []
        assert "本乡镇没有撤回过材料" in browser.get("/materials?view=withdrawn").text

    with backends.db.session() as session:
        listed = session.scalars(
            select(AuditEvent).where(
                AuditEvent.action == AuditAction.list.value, AuditEvent.actor == "east"
            )
        ).all()
    # The log tells the two lists apart.
    assert "withdrawn" not in listed[0].details
    assert any(
        event.details.get("withdrawn") is True and event.details["document_ids"] == [gone]
        for event in listed
    )


def test_a_department_is_told_the_township_withdrew_it(
    api: Api, backends: Backends, client: TestClient
) -> None:
    document_id = _upload(api, "东镇扶贫总结.pdf", title="东镇扶贫总结")
    with signed_in_browser(client, "poverty") as browser:
        page = browser.get(f"/documents/{document_id}")
        assert f'href="/documents/{document_id}/download"' in page.text
        assert "/api/v1/" not in page.text.split("<main", 1)[-1]
    _withdraw(api, document_id)

    with signed_in_browser(client, "poverty") as browser:
        for path in (f"/documents/{document_id}", f"/documents/{document_id}/download"):
            page = browser.get(path)
            assert page.status_code == 404
            assert page.headers["content-type"].startswith("text/html")
            assert "该材料已由报送单位撤回" in page.text
            assert "撤回，不能再查看或下载" in page.text
            assert "页面不存在" not in page.text
            assert "文档不存在" not in page.text

    # The API answers exactly as before: nothing about the withdrawal.
    for path in (f"/api/v1/documents/{document_id}", f"/api/v1/documents/{document_id}/download"):
        answer = api.client.get(path, headers=api.headers("poverty"))
        assert answer.status_code == 404
        assert answer.headers["content-type"].startswith("application/json")
        assert answer.json() == NOT_FOUND_JSON

    denials = _denials(backends, document_id=document_id, actor="poverty")
    assert [event.details for event in denials] == [{"reason": "withdrawn"}] * 4
    assert details_in_words(denials[0].details) == "原因: 材料已由报送单位撤回"


def test_who_could_never_read_it_learns_nothing_of_the_withdrawal(
    api: Api, backends: Backends, client: TestClient
) -> None:
    private = _upload(api, "东镇内部台账.pdf", title="东镇内部台账", visibility="private")
    _withdraw(api, private)

    for user in ("poverty", "west", "coord"):
        with signed_in_browser(client, user) as browser:
            page = browser.get(f"/documents/{private}")
            assert page.status_code == 404
            assert "页面不存在" in page.text
            assert "撤回" not in page.text.split("<main", 1)[-1]
        [event] = _denials(backends, document_id=private, actor=user)
        assert event.details == {"reason": "not_visible"}


def test_the_pages_download_link_refuses_with_a_page_and_the_api_with_json(
    api: Api, backends: Backends, client: TestClient
) -> None:
    content = pdf_bytes("只给扶贫办")
    response = api.upload(
        "east",
        "东镇台账.pdf",
        content,
        "application/pdf",
        visibility="restricted",
        departments=POVERTY,
    )
    assert response.status_code == 201, response.text
    document_id = response.json()["id"]
    web_url = f"/documents/{document_id}/download"
    api_url = f"/api/v1/documents/{document_id}/download"

    with signed_in_browser(client, "poverty") as browser:
        allowed = browser.get(web_url, follow_redirects=True)
        assert allowed.status_code == 200
        assert allowed.content == content
        assert allowed.headers["content-disposition"].startswith("attachment;")

    # STATS may not read it: a page in Chinese, not {"error": …}.
    with signed_in_browser(client, "stats") as browser:
        refused = browser.get(web_url)
        assert refused.status_code == 404
        assert refused.headers["content-type"].startswith("text/html")
        assert "页面不存在" in refused.text
        assert '"error"' not in refused.text
        # The API keeps its contract for scripts, whatever cookie or Accept they send.
        scripted = browser.get(api_url, headers={"Accept": "text/html"})
        assert scripted.status_code == 404
        assert scripted.json() == NOT_FOUND_JSON
    assert api.client.get(api_url, headers=api.headers("stats")).json() == NOT_FOUND_JSON

    # Without a session the link leads to the login page, as every page does.
    with TestClient(client.app) as anonymous:
        signed_out = anonymous.get(web_url, follow_redirects=False)
        assert signed_out.status_code in (302, 303)
        assert "/login" in signed_out.headers["location"]
