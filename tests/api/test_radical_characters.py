"""A PDF whose text layer gives radicals for ideographs (东⻛村 for the 东风村 on the page, as some
CJK fonts' glyphs map): the kept text and the snippets say 东风村, and searching 东风村 finds it.
"""

from __future__ import annotations

from indexer.worker import IndexWorker
from services.backends import Backends
from services.models import DocumentText
from tests.conftest import Api
from tests.samples import pdf_with_unicode_text

MINUTES = "城关镇党政联席会议纪要。东⻛村监测户回访，⻓期跟踪。"


def test_a_pdf_with_radicals_is_kept_found_and_quoted_as_the_ideographs(
    api: Api, backends: Backends
) -> None:
    response = api.upload(
        "east",
        "城关镇党政联席会议纪要（9月）.pdf",
        pdf_with_unicode_text(MINUTES),
        "application/pdf",
    )
    assert response.status_code == 201, response.text
    document_id = response.json()["id"]
    IndexWorker(backends, backends.index).drain()

    with backends.db.session() as session:
        kept = session.get(DocumentText, document_id)
    assert kept is not None
    assert "东风村监测户回访" in kept.body
    assert "长期跟踪" in kept.body
    assert "⻛" not in kept.body
    assert "⻓" not in kept.body

    for query in ("东风村", "东⻛村"):
        found = api.client.get(
            "/api/v1/search", params={"q": query}, headers=api.headers("poverty")
        )
        assert found.status_code == 200, found.text
        (hit,) = found.json()["hits"]
        assert hit["document"]["id"] == document_id
        assert any("<em>东风村</em>" in snippet for snippet in hit["highlights"]), hit
