"""Previews: the bytes of a PDF or an image shown inside the page, for exactly those who may
download them, with headers that keep the file from acting as a page of this site."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest
from sqlalchemy import select

from services.audit import AuditAction
from services.backends import Backends
from services.models import AuditEvent
from tests.conftest import POVERTY, USERS, Api, grant_download
from tests.samples import docx_bytes, pdf_bytes, png_bytes, text_bytes


def _preview(api: Api, username: str | None, document_id: str) -> Any:
    headers = api.headers(username) if username else {}
    return api.client.get(f"/documents/{document_id}/preview", headers=headers)


def _events(backends: Backends, *, document_id: str, actor: str) -> list[AuditEvent]:
    with backends.db.session() as session:
        return list(
            session.scalars(
                select(AuditEvent)
                .where(
                    AuditEvent.action == AuditAction.preview.value,
                    AuditEvent.document_id == document_id,
                    AuditEvent.actor == actor,
                )
                .order_by(AuditEvent.id)
            )
        )


@pytest.mark.parametrize(
    ("filename", "content", "content_type"),
    [
        ("东镇2026年第三季度工作总结.pdf", pdf_bytes(), "application/pdf"),
        ("村部照片.png", png_bytes(), "image/png"),
    ],
)
def test_preview_is_inline_sandboxed_and_never_sniffed(
    api: Api, backends: Backends, filename: str, content: bytes, content_type: str
) -> None:
    document = api.upload("east", filename, content, content_type).json()

    shown = _preview(api, "poverty", document["id"])

    assert shown.status_code == 200
    assert shown.content == content
    assert shown.headers["content-type"] == content_type
    disposition = shown.headers["content-disposition"]
    assert disposition.startswith("inline; ")
    assert "attachment" not in disposition
    # The Chinese name survives as RFC 6266 filename*, as in a download.
    assert f"filename*=UTF-8''{quote(filename, safe='')}" in disposition
    assert shown.headers["content-security-policy"] == "sandbox"
    assert shown.headers["x-content-type-options"] == "nosniff"
    assert shown.headers["cache-control"] == "private, no-store"
    [event] = _events(backends, document_id=document["id"], actor="poverty")
    assert event.outcome == "allowed"
    assert event.role == "reader"
    assert event.org == POVERTY


@pytest.mark.parametrize(
    ("filename", "content", "content_type"),
    [
        ("总结.docx", docx_bytes(), "application/octet-stream"),
        ("纪要.txt", text_bytes(), "text/plain"),
    ],
)
def test_other_types_are_refused_and_audited(
    api: Api, backends: Backends, filename: str, content: bytes, content_type: str
) -> None:
    document = api.upload("east", filename, content, content_type).json()

    refused = _preview(api, "poverty", document["id"])

    assert refused.status_code == 415
    assert content not in refused.content
    # The same person may still download it.
    download = api.client.get(
        f"/api/v1/documents/{document['id']}/download",
        headers=api.headers("poverty"),
        follow_redirects=False,
    )
    assert download.status_code in (200, 302)
    [event] = _events(backends, document_id=document["id"], actor="poverty")
    assert event.outcome == "denied"
    assert event.details["reason"] == "unsupported_type"


def test_hidden_document_answers_404_like_a_missing_one_and_is_audited(
    api: Api, backends: Backends
) -> None:
    private = api.upload("east", "内部.pdf", pdf_bytes(), "application/pdf", visibility="private")
    document_id = private.json()["id"]

    hidden = _preview(api, "poverty", document_id)
    missing = _preview(api, "poverty", "00000000-0000-0000-0000-000000000000")

    assert hidden.status_code == missing.status_code == 404
    assert pdf_bytes() not in hidden.content
    [event] = _events(backends, document_id=document_id, actor="poverty")
    assert event.outcome == "denied"
    assert event.details["reason"] == "not_visible"


def test_auditor_without_grant_is_refused_like_download_and_with_one_allowed(
    api: Api, backends: Backends
) -> None:
    document_id = api.upload("east", "总结.pdf", pdf_bytes(), "application/pdf").json()["id"]
    download_url = f"/api/v1/documents/{document_id}/download"

    download = api.client.get(download_url, headers=api.headers("auditor"))
    refused = _preview(api, "auditor", document_id)

    assert refused.status_code == download.status_code == 403
    [event] = _events(backends, document_id=document_id, actor="auditor")
    assert (event.outcome, event.details["reason"]) == ("denied", "no_download_right")

    grant_download(api, backends, username="auditor", document_id=document_id)
    allowed = _preview(api, "auditor", document_id)
    assert allowed.status_code == 200
    assert allowed.content == pdf_bytes()


def test_preview_allows_exactly_what_download_allows(api: Api) -> None:
    """Every user × every kind of document: the preview answers as the download does."""
    documents = {
        "departments": api.upload("east", "a.pdf", pdf_bytes("a"), "application/pdf"),
        "restricted": api.upload(
            "east",
            "b.pdf",
            pdf_bytes("b"),
            "application/pdf",
            visibility="restricted",
            departments=POVERTY,
        ),
        "private": api.upload(
            "east", "c.pdf", pdf_bytes("c"), "application/pdf", visibility="private"
        ),
        "west": api.upload("west", "d.pdf", pdf_bytes("d"), "application/pdf"),
        "withdrawn": api.upload("east", "e.pdf", pdf_bytes("e"), "application/pdf"),
    }
    ids = {name: response.json()["id"] for name, response in documents.items()}
    withdrawn = api.client.delete(
        f"/api/v1/documents/{ids['withdrawn']}", headers=api.headers("east")
    )
    assert withdrawn.status_code == 200

    answers: dict[tuple[str, str], tuple[int, int]] = {}
    for username in USERS:
        for name, document_id in ids.items():
            download = api.client.get(
                f"/api/v1/documents/{document_id}/download",
                headers=api.headers(username),
                follow_redirects=False,
            ).status_code
            # A presigned redirect (object store) is an allowed download.
            download = 200 if download == 302 else download
            answers[username, name] = (download, _preview(api, username, document_id).status_code)

    assert {cell: pair for cell, pair in answers.items() if pair[0] != pair[1]} == {}
    # And the table is not trivial: someone is allowed, someone refused, someone told 404.
    assert {download for download, _ in answers.values()} == {200, 403, 404}


def test_preview_needs_a_signed_in_caller(api: Api) -> None:
    document_id = api.upload("east", "总结.pdf", pdf_bytes(), "application/pdf").json()["id"]
    response = _preview(api, None, document_id)
    assert response.status_code == 401
    assert pdf_bytes() not in response.content
