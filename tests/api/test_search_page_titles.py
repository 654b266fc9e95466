"""The search page marks the query's words in a hit's title instead of repeating the title as the
first snippet under it."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from indexer.worker import IndexWorker
from services.backends import Backends
from tests.conftest import Api, signed_in_browser

RESULT = re.compile(
    r'<li class="result">\s*<h3 class="result-title"><a href="/documents/([^"]+)">(.*?)</a></h3>'
    r"(.*?)</li>",
    re.S,
)


def _results(page: str) -> dict[str, tuple[str, list[str]]]:
    """Each hit's title link content and its snippet paragraphs, by document id."""
    return {
        document_id: (title, re.findall(r'<p class="snippet">(.*?)</p>', rest, re.S))
        for document_id, title, rest in RESULT.findall(page)
    }


def test_the_title_is_marked_and_not_repeated_as_a_snippet(
    api: Api, backends: Backends, client: TestClient
) -> None:
    both = api.upload(
        "east",
        "both.txt",
        "本季度低保户动态调整已完成，新增低保户3户。".encode(),
        title="东镇低保户动态调整台账",
        category="台账",
    ).json()["id"]
    title_only = api.upload(
        "east",
        "title.txt",
        "入户核查情况见附表。".encode(),
        title="东镇低保复核",
        description="第三季度复核记录",
        category="台账",
    ).json()["id"]
    markup = api.upload(
        "east", "markup.txt", "无关正文".encode(), title="<b>低保</b> & 名单", category="台账"
    ).json()["id"]
    IndexWorker(backends, backends.index).drain()

    with signed_in_browser(client, "poverty") as browser:
        page = browser.get("/search", params={"q": "低保"})
    assert page.status_code == 200, page.text
    results = _results(page.text)

    title, snippets = results[both]
    assert title == "东镇<em>低保</em>户动态调整台账"
    assert snippets
    assert "东镇低保户动态调整台账" not in re.sub("</?em>", "", snippets[0])
    assert "<em>低保</em>户3户" in snippets[0]

    # Only the title matched: the description says what the document is, as with no snippet.
    title, snippets = results[title_only]
    assert title == "东镇<em>低保</em>复核"
    assert snippets == ["第三季度复核记录"]

    # A title's own markup stays text in the marked title too.
    title, _ = results[markup]
    assert title == "&lt;b&gt;<em>低保</em>&lt;/b&gt; &amp; 名单"


def test_snippets_far_apart_are_joined_by_one_ellipsis(
    api: Api, backends: Backends, client: TestClient
) -> None:
    filler = "本村按程序开展入户核查并张榜公示。" * 12
    text = f"开头说明。{filler}第一处低保户名单。{filler}第二处低保金发放。{filler}结尾。"
    document = api.upload(
        "east", "far.txt", text.encode(), title="东镇年度核查", category="台账"
    ).json()["id"]
    IndexWorker(backends, backends.index).drain()

    with signed_in_browser(client, "poverty") as browser:
        page = browser.get("/search", params={"q": "低保"})
    assert page.status_code == 200, page.text
    _, (snippet,) = _results(page.text)[document]

    assert snippet.count("<em>低保</em>") == 2
    assert "… …" not in snippet
    assert "……" not in snippet
    between = snippet.split("<em>低保</em>")[1]
    assert between.count("…") == 1  # the two places, one ellipsis between them
