"""The admin's 词库 page in the browser: add village names one a line, see who added them and
when, remove one; a department's search then marks the village whole. Other roles are refused,
and the coordinator only reads."""

from __future__ import annotations

import re

from playwright.sync_api import Locator, Page, expect
from sqlalchemy import select

from services.models import DictionaryWord
from tests.samples import text_bytes
from tests.web.conftest import Site, Visitor, upload_as, wait_indexed

MINUTES = "柳树湾村党支部召开会议，研究马家湾村与柳树湾村之间道路硬化的资金安排。"


def _row(page: Page, word: str) -> Locator:
    return page.locator(f"table.admin-dictionary tr[data-word='{word}']")


def _stored(site: Site) -> list[str]:
    with site.backends.db.session() as session:
        return list(session.scalars(select(DictionaryWord.word).order_by(DictionaryWord.word)))


def test_admin_adds_villages_and_search_marks_them_whole(
    visitor: Visitor, site: Site, phone: Visitor
) -> None:
    document = upload_as(
        site, "east", "会议记录.txt", text_bytes(MINUTES), title="柳树湾村党支部会议记录"
    )
    wait_indexed(site, "east", [document["id"]])

    page = visitor.login("admin")
    page.get_by_role("link", name="词库").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("词库")
    expect(page.get_by_text("村名、项目名等加入后，搜索和高亮会把它当作一个词")).to_be_visible()
    expect(page.get_by_text("词库中还没有管理员添加的词。")).to_be_visible()
    # Organisation names count without being added.
    expect(page.locator(".tag", has_text="东镇")).to_be_visible()

    page.get_by_label("词语（每行一个）").fill("柳树湾村\n\n杨柳村\n")
    page.get_by_role("button", name="添加到词库").click()
    expect(page.locator(".flash")).to_have_text(
        "已添加 2 个词：柳树湾村、杨柳村；提到这些词的 1 份材料将在后台重新索引"
    )
    for word in ("柳树湾村", "杨柳村"):
        expect(_row(page, word).locator("td[data-label='添加人']")).to_have_text("admin")
        expect(_row(page, word).locator("td[data-label='添加时间']")).to_have_text(
            re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}$")
        )

    # One bad line refuses the whole batch, said in Chinese; nothing is stored.
    page.get_by_label("词语（每行一个）").fill("马家湾村\n村")
    page.get_by_role("button", name="添加到词库").click()
    expect(page.get_by_role("alert")).to_contain_text("词语须为 2 到 20 个字")
    expect(_row(page, "马家湾村")).to_have_count(0)
    assert _stored(site) == ["杨柳村", "柳树湾村"]

    page.once("dialog", lambda dialog: dialog.accept())
    _row(page, "杨柳村").get_by_role("button", name="删除 杨柳村").click()
    expect(page.locator(".flash")).to_have_text("已从词库删除“杨柳村”")
    expect(_row(page, "杨柳村")).to_have_count(0)
    assert _stored(site) == ["柳树湾村"]
    visitor.problems.assert_none()

    # A department clerk, on a phone, finds the minutes with the village marked whole.
    found = phone.login("poverty")
    found.get_by_label("检索词").fill("柳树湾村")
    found.get_by_label("检索词").press("Enter")
    snippet = found.locator(".snippet").first
    expect(snippet.locator("em").first).to_have_text("柳树湾村")
    assert set(snippet.locator("em").all_inner_texts()) == {"柳树湾村"}
    phone.problems.assert_none()


def test_the_coordinator_reads_and_others_are_refused(visitor: Visitor, site: Site) -> None:
    page = visitor.login("coord")
    response = page.goto(site.url + "/admin/dictionary")
    assert response is not None
    assert response.status == 200
    expect(page.get_by_role("heading", level=1)).to_have_text("词库")
    expect(page.get_by_role("button", name="添加到词库")).to_have_count(0)
    expect(page.locator("textarea")).to_have_count(0)
    visitor.problems.assert_none()

    visitor.context.clear_cookies()
    page = visitor.login("poverty")
    refused = page.goto(site.url + "/admin/dictionary")
    assert refused is not None
    assert refused.status == 403
    expect(page.get_by_role("heading", level=1)).to_have_text("无权访问")
    visitor.problems.allow((403, "GET", "/admin/dictionary"))

    # A word posted with the reader's own valid form token is refused by the service too.
    token = page.locator("meta[name=csrf-token]").get_attribute("content")
    assert token
    posted = page.request.post(
        site.url + "/admin/dictionary",
        form={"csrf_token": token, "words": "北岭村"},
        max_redirects=0,
    )
    assert posted.status == 403
    assert "北岭村" not in _stored(site)
    visitor.problems.assert_none()
