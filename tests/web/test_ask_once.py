"""Ask once in the browser: the coordinators keep the catalog and approve requests; a department
finds what the repository holds before asking, joins or sends; the township answers from its
inbox; everyone is told, and the figures and the coverage grid say what happened.

Tests share one site (module scope) and run in file order, each building on the last.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from services.models import COUNTY_TIME
from tests.conftest import PASSWORD
from tests.samples import pdf_bytes, text_bytes
from tests.web.conftest import (
    Site,
    Visitor,
    bearer,
    open_visitor,
    screenshot,
    upload_as,
    wait_indexed,
)

LOOKUP_MISS = (404, "GET", "/api/v1/documents/lookup")
MATCH_TITLE = "东镇2026年第三季度低保复核情况"


@dataclass(frozen=True)
class Seeded:
    catalog_item: int
    match: str


@pytest.fixture(scope="module")
def seeded(site: Site) -> Seeded:
    """A catalog item every township owes quarterly, and one material 东镇 already shared."""
    response = httpx.post(
        f"{site.url}/api/v1/catalog",
        headers=bearer(site, "coord"),
        json={
            "name": "低保对象季度台账",
            "category": "社会救助",
            "cycle": "quarterly",
            "due_days": 15,
            # Owed from the third quarter: the second is nobody's to report.
            "owed_from": "2026-07-01",
            "townships": "all",
            "departments": ["扶贫办"],
            "sharing": "unconditional",
        },
    )
    assert response.status_code == 201, response.text
    match = upload_as(
        site,
        "east",
        "低保复核.pdf",
        pdf_bytes("Subsistence allowance review third quarter"),
        "application/pdf",
        title=MATCH_TITLE,
        category="社会救助",
        period="2026-Q3",
    )["id"]
    wait_indexed(site, "east", [match])
    return Seeded(catalog_item=response.json()["id"], match=match)


def login_to(visitor: Visitor, username: str, path: str) -> Page:
    page = visitor.go(f"/login?next={path}")
    page.get_by_label("用户名").fill(username)
    page.get_by_label("密码").fill(PASSWORD)
    page.get_by_role("button", name="登录").click()
    page.wait_for_selector("[data-testid=current-user]")
    return page


def flash(page: Page) -> Locator:
    return page.locator(".flash").first


def draft(page: Page, *, township: str, title: str, category: str, period: str = "") -> None:
    """From the menu, fill and save the new-request form."""
    page.locator("nav.mainnav").get_by_role("link", name="材料需求").click()
    page.get_by_role("link", name="提出新需求").first.click()
    expect(page.get_by_role("heading", level=1)).to_have_text("提出材料需求")
    page.get_by_label("乡镇").select_option(township)
    page.get_by_label("需求名称").fill(title)
    page.get_by_label("类别").fill(category)
    if period:
        page.get_by_label("所属期间").fill(period)
    page.get_by_role("button", name="保存草稿并查找已有材料").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(title)


# ---- The coordinators (减负办) -------------------------------------------------------------


def test_coordinator_starts_at_the_approval_queue_and_keeps_the_catalog(
    visitor: Visitor, seeded: Seeded
) -> None:
    page = visitor.login("coord")
    expect(page.get_by_role("heading", level=1)).to_have_text("需求审核")
    menu = page.locator("nav.mainnav a")
    expect(menu).to_have_text(["审核", "材料目录", "报送情况", "减负成效"])
    # The status filter offers only what the approval queue can hold.
    expect(page.get_by_label("状态").locator("option")).to_have_text(
        ["全部状态", "待减负办审核", "已发送乡镇", "未予准入", "乡镇已答复"]
    )

    page.get_by_role("link", name="材料目录").click()
    expect(page.get_by_role("cell", name="低保对象季度台账", exact=True)).to_be_visible()
    page.get_by_role("link", name="新增目录材料").click()
    page.get_by_label("材料名称").fill("村级防汛物资清单")
    page.get_by_label("类别").fill("防汛")
    page.get_by_label("报送周期").select_option("yearly")
    page.get_by_label("报送期限（天）").fill("30")
    owed_from = page.get_by_label("起始日期")
    expect(owed_from).to_have_value(re.compile(r"^\d{4}-\d{2}-\d{2}$"))
    expect(page.get_by_text("此日期之前结束的期间不计入应报")).to_be_visible()
    owed_from.fill("2026-01-01")
    page.get_by_label("指定乡镇：").check()
    page.get_by_label("西乡").check()
    page.get_by_label("统计局").check()
    page.get_by_label("有条件共享").check()
    page.get_by_role("button", name="保存").click()
    expect(flash(page)).to_have_text("已将“村级防汛物资清单”加入材料目录")
    row = page.locator("tr", has_text="村级防汛物资清单")
    expect(row.locator("td[data-label='报送周期']")).to_have_text("每年")
    expect(row.locator("td[data-label='报送乡镇']")).to_have_text("西乡")
    expect(row.locator("td[data-label='共享属性']")).to_have_text("有条件共享")

    # A mistake brings the form back as typed, with the reason in words.
    row.get_by_role("link", name="编辑").click()
    page.get_by_label("材料名称").fill("低保对象季度台账")
    page.get_by_role("button", name="保存").click()
    expect(page.get_by_role("alert")).to_have_text("材料名称：目录中已有同名材料")
    expect(page.get_by_label("材料名称")).to_have_value("低保对象季度台账")
    page.get_by_label("材料名称").fill("村级防汛物资清单")
    expect(page.get_by_label("起始日期")).to_have_value("2026-01-01")
    page.get_by_label("报送期限（天）").fill("20")
    page.get_by_role("button", name="保存").click()
    expect(flash(page)).to_have_text("已保存“村级防汛物资清单”")
    expect(row.locator("td[data-label='报送期限']")).to_have_text("期满后 20 天内")

    page.once("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name="停用").click()
    expect(row.locator("td[data-label='状态']")).to_have_text("已停用")
    row.get_by_role("button", name="恢复").click()
    expect(row.locator("td[data-label='状态']")).to_have_text("在用")
    screenshot(page, "coordinator-catalog")
    visitor.problems.allow((422, "POST", "/catalog/"))
    visitor.problems.assert_none()


# ---- A department asks, after the repository was searched ---------------------------------


def test_department_finds_the_material_already_shared_and_takes_it(
    visitor: Visitor, seeded: Seeded
) -> None:
    page = login_to(visitor, "poverty", "/requests")
    expect(page.get_by_role("heading", level=1)).to_have_text("材料需求")
    draft(page, township="东镇", title="东镇低保复核情况", category="社会救助", period="2026-Q3")
    expect(page.get_by_text("需求已保存为草稿")).to_be_visible()
    matches = page.locator(".match")
    expect(matches.first).to_contain_text(MATCH_TITLE)
    expect(matches.first.get_by_role("link", name=MATCH_TITLE)).to_have_attribute(
        "href", f"/documents/{seeded.match}"
    )
    # Matches were shown: sending needs the reason they do not answer it.
    expect(page.get_by_label("理由（必填）")).to_have_attribute("required", "")
    screenshot(page, "request-draft-matches")

    matches.first.get_by_role("button", name=re.compile("采用此材料")).click()
    expect(flash(page)).to_have_text("已采用共享库中的材料，无需再向乡镇索要。")
    expect(page.locator(".request-head .badge").first).to_have_text("已从共享库获取")
    expect(page.get_by_role("heading", name="采用的共享库材料")).to_be_visible()
    page.get_by_role("link", name=MATCH_TITLE).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(MATCH_TITLE)
    visitor.problems.assert_none()


def test_departments_send_join_and_the_coordinator_approves_or_refuses(
    browser_visitors: tuple[Visitor, Visitor, Visitor],
) -> None:
    stats, poverty, coord = browser_visitors
    page = login_to(stats, "stats", "/requests")
    draft(page, township="东镇", title="东镇防汛物资储备清单", category="防汛")
    expect(page.get_by_text("共享库中没有找到东镇符合这项需求的材料")).to_be_visible()
    expect(page.get_by_label("理由（可不填）")).not_to_have_attribute("required", "")
    page.get_by_role("button", name="仍需发送").click()
    expect(flash(page)).to_have_text("已提交减负办审核，准入后将发送给乡镇。")
    expect(page.locator(".request-head .badge").first).to_have_text("待减负办审核")

    draft(page, township="西乡", title="西乡人口普查汇总表", category="统计报表")
    page.get_by_label("理由（可不填）").fill("年度统计需要")
    page.get_by_role("button", name="仍需发送").click()
    page.get_by_role("link", name="← 返回材料需求").click()
    rows = page.locator("table.requests-table tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.locator("td[data-label='状态']")).to_have_text(["待减负办审核"] * 2)

    # Another department needs the same: it joins instead of asking again.
    page = login_to(poverty, "poverty", "/requests")
    draft(page, township="东镇", title="防汛物资", category="防汛")
    other = page.locator(".match", has_text="东镇防汛物资储备清单")
    expect(other).to_contain_text("统计局")
    other.get_by_role("button", name=re.compile("并入此需求")).click()
    expect(flash(page)).to_have_text("已并入同类需求，乡镇答复后将同时送达本部门。")
    expect(page.locator(".request-head .badge").first).to_have_text("已并入同类需求")
    # The request joined is named by its title.
    joined = page.locator("dd", has_text="乡镇答复后同时送达本部门")
    expect(joined.get_by_role("link", name="东镇防汛物资储备清单")).to_be_visible()

    # Asking again for the same: the department is already in that request and cannot join it
    # twice; the draft it no longer needs is deleted.
    draft(page, township="东镇", title="防汛物资（再次）", category="防汛")
    again = page.locator(".match", has_text="东镇防汛物资储备清单")
    expect(again).to_contain_text("本部门已在此需求中")
    expect(again.get_by_role("button", name=re.compile("并入此需求"))).to_have_count(0)
    asked: list[str] = []
    page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.accept()))
    page.get_by_role("button", name="删除草稿").click()
    expect(flash(page)).to_have_text("草稿已删除，没有发送给任何人。")
    assert asked == ["确定删除草稿“防汛物资（再次）”吗？删除后不能恢复。"]
    expect(page.get_by_role("heading", level=1)).to_have_text("材料需求")
    expect(page.get_by_role("link", name="防汛物资（再次）")).to_have_count(0)

    # The coordinator lets one through and refuses the other, with a reason.
    page = coord.login("coord")
    queue = page.locator("table.requests-table tbody tr")
    expect(queue).to_have_count(2)
    queue.filter(has_text="东镇防汛物资储备清单").get_by_role("link", name="审核").click()
    expect(page.get_by_text("统计局、扶贫办")).to_be_visible()
    page.get_by_role("button", name="准入并发送给乡镇").click()
    expect(flash(page)).to_have_text("已准入“东镇防汛物资储备清单”，已通知东镇。")
    queue.filter(has_text="西乡人口普查汇总表").get_by_role("link", name="审核").click()
    screenshot(page, "coordinator-approval")
    page.get_by_role("button", name="退回").click()  # the reason is required
    expect(page.get_by_label("退回理由（必填）")).to_be_focused()
    page.get_by_label("退回理由（必填）").fill("统计局已有普查数据，无需乡镇报送")
    page.get_by_role("button", name="退回").click()
    expect(flash(page)).to_have_text("已退回“西乡人口普查汇总表”，提出需求的部门已收到理由。")
    expect(
        queue.filter(has_text="西乡人口普查汇总表").locator("td[data-label='状态']")
    ).to_have_text("未予准入")
    for visitor in browser_visitors:
        visitor.problems.assert_none()


# ---- The township answers -------------------------------------------------------------------


def test_township_sees_its_inbox_and_reminder_and_answers_by_picking_a_document(
    visitor: Visitor, seeded: Seeded
) -> None:
    page = visitor.login("east")
    badge = page.get_by_test_id("unread-count")
    expect(badge).to_have_text("1条未读")
    page.get_by_role("link", name=re.compile("^提醒")).click()
    note = page.locator(".notification").first
    expect(note).to_contain_text("新需求")
    expect(note).to_contain_text("统计局请报送：东镇防汛物资储备清单")
    expect(note.locator(".badge")).to_have_text("未读")

    page.get_by_role("link", name="待办需求").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("待办需求")
    # A township's words: waiting for its answer, or answered; nothing it never sees.
    expect(page.get_by_label("状态").locator("option")).to_have_text(
        ["全部状态", "待答复", "已答复"]
    )
    row = page.locator("table.requests-table tbody tr", has_text="东镇防汛物资储备清单")
    expect(row.locator("td[data-label='状态']")).to_have_text("待答复")
    expect(row.locator("td[data-label='提出部门']")).to_have_text("统计局、扶贫办")
    expect(row.locator("td[data-label='截止日期']")).to_contain_text("还剩")
    screenshot(page, "township-inbox")
    row.get_by_role("link", name="答复").click()
    answer = page.locator("#answer")
    answer.get_by_label(re.compile(MATCH_TITLE)).check()
    answer.get_by_role("button", name="提交答复").click()
    expect(flash(page)).to_have_text("已答复“东镇防汛物资储备清单”，统计局、扶贫办已收到通知。")
    expect(row.locator("td[data-label='状态']")).to_have_text(
        re.compile(r"^\s*已答复\s+重复索要\s*$")
    )

    # Answering settled the reminder of that request: nothing is left unread.
    expect(page.get_by_test_id("unread-count")).to_have_count(0)
    page.get_by_role("link", name=re.compile("^提醒")).click()
    expect(page.locator(".notification").first.locator(".badge")).to_have_text("已读")
    visitor.problems.assert_none()


def test_both_departments_are_told_of_the_answer_and_the_refusal(
    visitor: Visitor, seeded: Seeded
) -> None:
    page = login_to(visitor, "stats", "/notifications")
    expect(page.get_by_test_id("unread-count")).to_have_text("3条未读")
    notes = page.locator(".notification")
    expect(notes.filter(has_text="扶贫办也需要“东镇防汛物资储备清单”")).to_contain_text(
        "有部门并入"
    )
    expect(notes.filter(has_text="东镇已答复“东镇防汛物资储备清单”（1 份材料）")).to_have_count(1)
    refused = notes.filter(has_text="减负办未准入需求“西乡人口普查汇总表”")
    expect(refused).to_contain_text("统计局已有普查数据")
    screenshot(page, "notifications")
    refused.get_by_role("button", name=re.compile("标为已读")).click()
    expect(flash(page)).to_have_text("已标为已读")
    expect(page.get_by_test_id("unread-count")).to_have_text("2条未读")
    notes.filter(has_text="东镇已答复").get_by_role("link", name=re.compile("查看需求")).click()
    expect(page.get_by_role("heading", name="乡镇答复的材料")).to_be_visible()
    expect(page.get_by_role("link", name=MATCH_TITLE)).to_be_visible()

    visitor.context.clear_cookies()
    page = login_to(visitor, "poverty", "/notifications")
    expect(page.locator(".notification").first).to_contain_text("东镇已答复")
    visitor.problems.assert_none()


def test_township_uploads_a_new_file_for_a_catalog_request_and_answers_with_it(
    visitor: Visitor, seeded: Seeded, tmp_path: Path
) -> None:
    # A request for a catalog item goes to the township at once.
    page = login_to(visitor, "poverty", "/requests")
    page.get_by_role("link", name="提出新需求").first.click()
    page.get_by_label("乡镇").select_option("西乡")
    page.get_by_label("需求名称").fill("西乡第三季度低保台账")
    page.get_by_label("所属期间").fill("2026-Q3")
    page.get_by_label("目录材料").select_option(label="低保对象季度台账")
    page.get_by_role("button", name="保存草稿并查找已有材料").click()
    page.get_by_role("button", name="仍需发送").click()
    expect(flash(page)).to_have_text("已发送给西乡。")

    visitor.context.clear_cookies()
    page = login_to(visitor, "west", "/requests")
    page.get_by_role("link", name="答复").click()
    page.locator("#answer").get_by_role("link", name="上传新材料").click()
    expect(page.get_by_test_id("answering")).to_contain_text("西乡第三季度低保台账")
    page.wait_for_load_state()
    catalog = page.get_by_label("目录材料")
    expect(catalog.locator("option:checked")).to_have_text("低保对象季度台账（每季度）")
    expect(page.locator("#catalog-hint")).to_contain_text("期间填写如 2026年第三季度")
    expect(page.locator("#catalog-hint")).to_contain_text("本次需求所属期间：2026年第三季度。")
    # One due date on the page: the request's, said to be its 答复截止.
    expect(page.locator("#catalog-hint")).not_to_contain_text("截止")
    expect(page.get_by_test_id("answering")).to_contain_text("答复截止")
    expect(page.get_by_label("所属期间")).to_have_value("2026年第三季度")  # as people write it
    expect(page.get_by_label("类别")).to_have_value("社会救助")
    expect(page.get_by_label("标题")).to_have_value("")  # the file's name, as for any upload
    # Every department may read an item shared with all: no warning until 仅本乡镇 is chosen.
    expect(page.locator("input[name=visibility]:checked")).to_have_value("departments")
    warning = page.get_by_test_id("visibility-warning")
    expect(warning).to_be_hidden()
    page.get_by_label("仅本乡镇").check()
    expect(warning).to_contain_text("看不到这份材料，就不能用它答复需求")
    page.get_by_label("所有县直部门").check()
    expect(warning).to_be_hidden()
    file = tmp_path / "西乡低保台账.txt"
    file.write_bytes(text_bytes("西乡低保对象台账 第三季度"))
    page.get_by_label("点击选择文件").set_input_files(str(file))
    page.get_by_role("button", name="开始上传").click()
    # Filed as the catalog item's slot, the file answered the request with it.
    expect(page.get_by_test_id("answering")).to_contain_text("需求即自动答复")
    expect(page.locator(".upload-item .upload-status")).to_have_text("上传成功，已用此材料答复需求")
    page.get_by_role("link", name="查看需求").click()
    answered = page.locator("#answer-docs-title").locator("xpath=..")
    expect(answered).to_contain_text("西乡低保台账")
    visitor.problems.allow(LOOKUP_MISS)
    visitor.problems.assert_none()


def test_uploading_for_a_request_lets_exactly_the_requesting_departments_read_it(
    visitor: Visitor, site: Site, seeded: Seeded
) -> None:
    # 扶贫办 asks 西乡 for an item shared only with the departments that use it (统计局).
    page = login_to(visitor, "poverty", "/requests/new")
    page.get_by_label("乡镇").select_option("西乡")
    page.get_by_label("需求名称").fill("西乡2026年防汛物资清单")
    page.get_by_label("所属期间").fill("2026")
    page.get_by_label("目录材料").select_option(label="村级防汛物资清单")
    page.get_by_role("button", name="保存草稿并查找已有材料").click()
    page.get_by_role("button", name="仍需发送").click()
    expect(flash(page)).to_have_text("已发送给西乡。")
    request_id = page.url.rstrip("/").rsplit("/", 1)[-1]
    upload_as(
        site,
        "west",
        "防汛内部清单.txt",
        text_bytes("西乡防汛物资内部清单"),
        title="西乡防汛物资内部清单",
        category="防汛",
        visibility="private",
    )

    visitor.context.clear_cookies()
    page = login_to(visitor, "west", f"/upload?request={request_id}")
    page.wait_for_load_state()
    # 指定部门, with the one department asking ticked: not the item's 统计局, not 仅本乡镇.
    expect(page.locator("input[name=visibility]:checked")).to_have_value("restricted")
    expect(page.locator("#department-choices")).to_be_visible()
    expect(page.locator("input[name=department]:checked")).to_have_count(1)
    expect(page.get_by_label("扶贫办")).to_be_checked()
    # Readers that include the requester need no warning; leaving 扶贫办 out brings it up.
    warning = page.get_by_test_id("visibility-warning")
    expect(warning).to_be_hidden()
    page.get_by_label("扶贫办").uncheck()
    expect(warning).to_contain_text("勾选扶贫办")
    page.get_by_label("扶贫办").check()
    expect(warning).to_be_hidden()

    # Answering with a material only the township sees says what to do instead.
    page.get_by_role("link", name="西乡2026年防汛物资清单").click()
    answer = page.locator("#answer")
    answer.get_by_label(re.compile("西乡防汛物资内部清单")).check()
    answer.get_by_role("button", name="提交答复").click()
    expect(flash(page)).to_contain_text("公开范围不含提出需求的扶贫办")
    expect(flash(page)).to_contain_text("请先撤回这份材料，再以“所有县直部门”")
    visitor.problems.assert_none()


# ---- What came of it --------------------------------------------------------------------------


def test_coverage_grid_says_who_submitted_in_words(visitor: Visitor, seeded: Seeded) -> None:
    page = login_to(visitor, "coord", "/coverage")
    expect(page.get_by_label("目录材料").locator("option:checked")).to_have_text("低保对象季度台账")
    page.get_by_label("开始期间").fill("2026-Q2")
    page.get_by_label("结束期间").fill("2026-Q4")
    page.get_by_role("button", name="查看").click()
    grid = page.locator("table.coverage-grid")
    expect(grid.locator("thead th")).to_have_text(
        ["乡镇", "2026年第二季度", "2026年第三季度", "2026年第四季度"]
    )
    west = grid.locator("tr", has=page.get_by_role("rowheader", name="西乡"))
    east = grid.locator("tr", has=page.get_by_role("rowheader", name="东镇"))
    # Before the item was owed: nobody's to report, said in words (and grey).
    expect(east.locator("td").first).to_have_text("– 无需报送")
    expect(east.locator("td").first).to_have_class(re.compile("cell-not_owed"))
    expect(west.locator("td").nth(1)).to_have_text("✓ 已报送")
    expect(east.locator("td").nth(1)).to_contain_text("逾期未报")
    expect(east.locator("td").last).to_contain_text("未到期")
    expect(page.locator(".legend")).to_contain_text("已报送")
    expect(page.locator(".legend .cell-not_owed")).to_have_text("– 无需报送")
    screenshot(page, "coverage")
    visitor.problems.assert_none()


def test_coverage_grid_on_a_phone_reads_without_scrolling_sideways(
    phone: Visitor, seeded: Seeded
) -> None:
    wanted = f"/coverage?item={seeded.catalog_item}&period_from=2025-Q1&period_to=2026-Q4"
    page = login_to(phone, "coord", quote(wanted, safe="/"))
    page.wait_for_load_state("load")
    # Each township is a card of its periods, each cell naming its own period.
    east = page.locator("table.coverage-grid tr", has=page.get_by_role("rowheader", name="东镇"))
    expect(east.locator("td")).to_have_count(8)
    expect(east.locator("td").first).to_have_attribute("data-label", "2025年第一季度")
    expect(east.locator("td").last).to_have_attribute("data-label", "2026年第四季度")
    expect(east.locator("td").last).to_contain_text("未到期")
    for cell in page.locator("table.coverage-grid tbody").locator("th, td").all():
        box = cell.bounding_box()
        assert box is not None
        assert box["x"] >= 0
        assert box["x"] + box["width"] <= 390
    # Nothing scrolls sideways: neither the grid nor the page.
    assert page.locator(".coverage-wrap").evaluate("wrap => wrap.scrollWidth <= wrap.clientWidth")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    phone.problems.assert_none()


def test_departments_read_the_catalog_and_coverage(visitor: Visitor, seeded: Seeded) -> None:
    page = login_to(visitor, "stats", "/search")
    menu = page.locator("nav.mainnav a")
    expect(menu).to_have_text(
        ["检索材料", "材料需求", "材料目录", "报送情况", re.compile("^提醒"), "减负成效"]
    )
    menu.filter(has_text="材料目录").click()
    expect(page.get_by_role("cell", name="低保对象季度台账", exact=True)).to_be_visible()
    # Read only: nothing to add, change or retire.
    expect(page.get_by_role("link", name="新增目录材料")).to_have_count(0)
    expect(page.get_by_role("link", name=re.compile("^编辑"))).to_have_count(0)
    expect(page.get_by_role("button", name=re.compile("^停用"))).to_have_count(0)
    menu.filter(has_text="报送情况").click()
    expect(page.get_by_label("目录材料").locator("option:checked")).to_have_text("低保对象季度台账")
    expect(page.get_by_role("rowheader", name="西乡")).to_be_visible()

    # An item that does not exist is the 404 page, not another item's grid.
    for missing in ("99999", "abc"):
        response = page.goto(f"{visitor.site.url}/coverage?item={missing}")
        assert response is not None
        assert response.status == 404
        expect(page.get_by_role("heading", level=1)).to_have_text("页面不存在")
        expect(page.locator("table.coverage-grid")).to_have_count(0)
    visitor.problems.allow((404, "GET", "/coverage"))
    visitor.problems.assert_none()


def test_figures_page_draws_its_charts_and_offers_the_csv(visitor: Visitor, seeded: Seeded) -> None:
    page = login_to(visitor, "coord", "/figures")
    expect(page.get_by_role("heading", level=1)).to_have_text("减负成效")
    table = page.locator("table.figures-table")
    expect(table.locator("thead th").first).to_have_text("单位")
    east = table.locator("tbody tr", has=page.get_by_role("rowheader", name="东镇"))
    # 扶贫办 took one from the repository and joined another: 2 × 2 hours.
    expect(east.locator("td").last).to_have_text("4")
    chart = page.locator("svg#chart-rows")
    expect(chart).to_have_attribute("role", "img")
    expect(chart.locator("title")).to_have_text("节省工时（小时），按乡镇")
    expect(chart.locator("desc")).to_contain_text("东镇 4 小时")
    # Counted in the month the seeding happened, in the county's time (UTC+8).
    now = datetime.now(COUNTY_TIME)
    this_month = f"{now.year}年{now.month}月 4 小时"
    expect(page.locator("svg#chart-months desc")).to_contain_text(this_month)
    screenshot(page, "figures")
    href = page.get_by_role("link", name="下载表格（CSV）").get_attribute("href")
    assert href is not None
    answer = page.request.get(visitor.site.url + href)
    assert answer.status == 200
    assert answer.body().startswith("\ufeff单位,上传材料".encode())

    # A township sees its own line.
    visitor.context.clear_cookies()
    page = login_to(visitor, "east", "/figures")
    expect(page.locator("table.figures-table tbody tr")).to_have_count(1)
    expect(page.get_by_label("分组", exact=True)).to_have_count(0)
    visitor.problems.assert_none()


# ---- Fixtures of this module ------------------------------------------------------------------


@pytest.fixture
def browser_visitors(
    visitor: Visitor, phone: Visitor, browser: Browser, site: Site
) -> Iterator[tuple[Visitor, Visitor, Visitor]]:
    """Three people at once: a department clerk at a desk, another on a phone, the
    coordinator."""
    third = open_visitor(browser, site, viewport={"width": 1366, "height": 768})
    yield visitor, phone, third
    third.context.close()
