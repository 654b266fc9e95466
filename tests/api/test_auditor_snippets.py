"""An auditor's search is metadata only: it finds every document, but quotes no document's text
(search snippets) unless an admin granted the auditor that document's download.
"""

from __future__ import annotations

from typing import Any

import pytest

from indexer.worker import IndexWorker
from services.backends import Backends
from tests.conftest import Api, grant_download

MINUTES = "东镇党委会议纪要：讨论低保对象复核，涉及农户收入与健康状况，暂不公开。"
WORD = "低保对象复核"


def _search(api: Api, user: str, q: str) -> dict[str, Any]:
    response = api.client.get("/api/v1/search", params={"q": q}, headers=api.headers(user))
    assert response.status_code == 200, response.text
    hits = response.json()["hits"]
    assert len(hits) == 1, hits
    hit: dict[str, Any] = hits[0]
    return hit


@pytest.fixture
def minutes(api: Api, backends: Backends) -> dict[str, str]:
    """The same minutes uploaded by east twice: private to the township, and shared."""
    ids = {}
    for visibility in ("private", "departments"):
        body = f"{MINUTES}（{visibility}）".encode()
        response = api.upload(
            "east", f"纪要-{visibility}.txt", body, "text/plain", visibility=visibility
        )
        assert response.status_code == 201, response.text
        ids[visibility] = response.json()["id"]
    IndexWorker(backends, backends.index).drain()
    return ids


def test_an_auditor_finds_a_private_document_by_its_body_but_reads_no_snippet(
    api: Api, minutes: dict[str, str]
) -> None:
    hit = _search(api, "auditor", f"{WORD} private")

    assert hit["document"]["id"] == minutes["private"]
    assert hit["highlights"] == []
    assert WORD not in str(hit)


def test_the_township_and_a_reader_still_read_snippets(api: Api, minutes: dict[str, str]) -> None:
    own = _search(api, "east", f"{WORD} private")
    assert own["document"]["id"] == minutes["private"]
    assert any(f"<em>{WORD}</em>" in snippet for snippet in own["highlights"])

    shared = _search(api, "poverty", WORD)
    assert shared["document"]["id"] == minutes["departments"]
    assert any(f"<em>{WORD}</em>" in snippet for snippet in shared["highlights"])
    # The auditor finds the shared copy too, and reads no more of it than of the private one.
    assert _search(api, "auditor", f"{WORD} departments")["highlights"] == []


def test_a_granted_download_lets_the_auditor_read_that_document_only(
    api: Api, backends: Backends, minutes: dict[str, str]
) -> None:
    grant_download(api, backends, username="auditor", document_id=minutes["private"])

    private = _search(api, "auditor", f"{WORD} private")
    assert any(f"<em>{WORD}</em>" in snippet for snippet in private["highlights"])
    assert _search(api, "auditor", f"{WORD} departments")["highlights"] == []
