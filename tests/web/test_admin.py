"""The administrator's pages in the browser: organisations, categories, users (create, disable,
enable, reset a password) and download grants; the second person's confirmation of an admin
account (another admin), an auditor account (an auditor, on their page) and a grant (another
admin); other roles are refused."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
from playwright.sync_api import Locator, Page, expect
from sqlalchemy import func, select

from services import orgs
from services.models import Role, User
from tests.conftest import COUNTY, PASSWORD
from tests.samples import text_bytes
from tests.web.conftest import Site, Visitor, bearer, screenshot

NEW_PASSWORD = "chengguan-2026"
RESET_PASSWORD = "reset-by-admin-7"
CHOSEN_PASSWORD = "zhang-chose-2031"
# Chromium reports a page answered with an error status on the console; these are expected.


def _row(page: Page, username: str) -> Locator:
    return page.locator(f"table.admin-users tr[data-username='{username}']")


def _flash(page: Page) -> Locator:
    return page.locator(".flash")


def _second_admin(site: Site) -> str:
    """A second admin of the county, made on the server console (active at once)."""
    with site.backends.db.session() as session:
        orgs.create_user(
            session,
            passwords=site.backends.passwords,
            username="admin2",
            password=PASSWORD,
            org=COUNTY,
            role=Role.admin,
        )
    return "admin2"


def _refused_login(
    visitor: Visitor, username: str, password: str, message: str = "用户名或密码错误"
) -> None:
    page = visitor.go("/login")
    page.get_by_label("用户名").fill(username)
    page.get_by_label("密码").fill(password)
    page.get_by_role("button", name="登录").click()
    expect(page.get_by_role("alert")).to_have_text(message)
    visitor.problems.allow((401, "POST", "/login"))


def test_admin_creates_an_organisation_a_category_and_a_user(visitor: Visitor) -> None:
    page = visitor.login("admin")
    assert page.url == visitor.site.url + "/admin/users"

    page.get_by_role("link", name="组织机构").click()
    page.get_by_label("名称").fill("城关镇")
    page.get_by_label("类型").select_option(label="乡镇")
    page.get_by_role("button", name="创建单位").click()
    expect(_flash(page)).to_have_text("已创建单位 城关镇（乡镇）")
    townships = page.locator("section", has=page.get_by_role("heading", name="乡镇（3）"))
    expect(townships.get_by_role("cell", name="城关镇")).to_be_visible()

    page.get_by_role("link", name="材料类别").click()
    expect(page.get_by_text("尚未设定类别")).to_be_visible()
    page.get_by_label("类别名称").fill("扶贫")
    page.get_by_role("button", name="添加类别").click()
    expect(_flash(page)).to_have_text("已添加材料类别 扶贫")
    expect(page.locator("table.admin-categories").get_by_role("cell", name="扶贫")).to_be_visible()

    page.get_by_role("link", name="用户").click()
    page.get_by_label("用户名").fill("zhang")
    page.get_by_label("初始密码").fill(NEW_PASSWORD)
    page.get_by_label("角色").select_option(label="乡镇工作人员")
    page.get_by_label("单位").select_option(label="城关镇")
    page.get_by_role("button", name="创建用户").click()
    expect(_flash(page)).to_have_text("已创建用户 zhang（乡镇工作人员，城关镇）")
    row = _row(page, "zhang")
    expect(row.locator("td").nth(3)).to_have_text("启用")
    assert row.locator("td").all_inner_texts()[:3] == ["zhang", "乡镇工作人员", "城关镇"]
    expect(row.get_by_role("button", name="停用用户 zhang")).to_be_visible()
    screenshot(page, "admin-users")

    # The new organisation counts its user.
    page.get_by_role("link", name="组织机构").click()
    expect(page.locator("tr", has_text="城关镇").locator("td[data-label='用户数']")).to_have_text(
        "1"
    )
    visitor.problems.assert_none()


def test_invalid_user_is_refused_in_chinese_and_nothing_is_stored(
    visitor: Visitor, site: Site
) -> None:
    page = visitor.login("admin")
    page.get_by_label("用户名").fill("li")
    page.get_by_label("初始密码").fill("short")
    page.get_by_label("角色").select_option(label="乡镇工作人员")
    page.get_by_label("单位").select_option(label="东镇")
    page.get_by_role("button", name="创建用户").click()
    expect(page.get_by_role("alert")).to_have_text("密码至少 10 个字符")
    # The page opens at the error, not at its top with the message below the fold.
    expect(page.get_by_role("alert")).to_be_focused()
    expect(page.get_by_role("alert")).to_be_in_viewport()
    expect(_row(page, "li")).to_have_count(0)
    # The form keeps what was typed, but the password.
    expect(page.get_by_label("用户名")).to_have_value("li")
    expect(page.get_by_label("角色")).to_have_value("uploader")
    expect(page.get_by_label("单位").locator("option:checked")).to_have_text("东镇")
    expect(page.get_by_label("初始密码")).to_have_value("")

    # A role that does not fit the organisation is said in words, too.
    page.get_by_label("初始密码").fill(NEW_PASSWORD)
    page.get_by_label("角色").select_option(label="部门工作人员")
    page.get_by_role("button", name="创建用户").click()
    expect(page.get_by_role("alert")).to_contain_text("部门工作人员只能属于县直部门")
    expect(_row(page, "li")).to_have_count(0)
    visitor.problems.allow((422, "POST", "/admin/users"))

    with site.backends.db.session() as session:
        assert session.scalar(select(func.count()).where(User.username == "li")) == 0
    visitor.problems.assert_none()


def test_disabled_user_is_signed_out_and_cannot_sign_in_until_enabled(
    visitor: Visitor, phone: Visitor
) -> None:
    # zhang is signed in on a phone while the admin works at a desk.
    phone.login("zhang", NEW_PASSWORD)
    page = visitor.login("admin")
    page.once("dialog", lambda dialog: dialog.accept())
    _row(page, "zhang").get_by_role("button", name="停用用户 zhang").click()
    expect(_flash(page)).to_have_text("已停用用户 zhang：其登录已立即失效，不能再登录")
    expect(_row(page, "zhang").locator("td[data-label='状态']")).to_have_text("停用")

    # The live session has ended: the next page asks for a login, which is refused; with the
    # right password the person learns why.
    phone.go("/planned/requests")
    assert "/login" in phone.page.url
    _refused_login(phone, "zhang", NEW_PASSWORD, "此账号已停用，请联系系统管理员")

    _row(page, "zhang").get_by_role("button", name="启用用户 zhang").click()
    expect(_flash(page)).to_have_text("已启用用户 zhang")
    expect(_row(page, "zhang").locator("td[data-label='状态']")).to_have_text("启用")
    phone.login("zhang", NEW_PASSWORD)
    expect(phone.page.get_by_test_id("current-user")).to_have_text("zhang")
    visitor.problems.assert_none()
    phone.problems.assert_none()


def test_reset_password_ends_sessions_and_the_new_one_works(
    visitor: Visitor, phone: Visitor
) -> None:
    phone.login("zhang", NEW_PASSWORD)
    page = visitor.login("admin")
    row = _row(page, "zhang")
    row.get_by_text("重置密码").click()
    row.get_by_label("zhang 的新密码").fill(RESET_PASSWORD)
    row.get_by_role("button", name="确认重置").click()
    expect(_flash(page)).to_have_text(
        "已重置用户 zhang 的密码，请将新密码当面或电话告知本人；本人下次登录时须先改为自己的新密码"
    )
    expect(_row(page, "zhang").locator("td[data-label='状态']")).to_have_text("启用 待本人改密码")

    phone.go("/planned/requests")
    assert "/login" in phone.page.url
    _refused_login(phone, "zhang", NEW_PASSWORD)
    # The reset password opens only the page where zhang chooses one of their own.
    phone.login("zhang", RESET_PASSWORD)
    expect(phone.page.get_by_test_id("current-user")).to_have_text("zhang")
    assert phone.page.url == phone.site.url + "/account/password"
    phone.page.get_by_label("管理员告知的密码").fill(RESET_PASSWORD)
    phone.page.get_by_label("新密码", exact=True).fill(CHOSEN_PASSWORD)
    phone.page.get_by_label("再次输入新密码").fill(CHOSEN_PASSWORD)
    phone.page.get_by_role("button", name="保存新密码").click()
    expect(phone.page.get_by_role("status")).to_contain_text("密码已修改")
    page.reload()
    expect(_row(page, "zhang").locator("td[data-label='状态']")).to_have_text("启用")
    visitor.problems.assert_none()
    phone.problems.assert_none()


def test_admin_grants_an_auditor_one_download_a_second_admin_confirms(
    visitor: Visitor, phone: Visitor, site: Site
) -> None:
    with httpx.Client(base_url=site.url) as client:
        token = client.post(
            "/api/v1/auth/token", data={"username": "east", "password": PASSWORD}
        ).json()["access_token"]
        upload = client.post(
            "/api/v1/documents",
            headers={"Authorization": f"Bearer {token}"},
            files={"file": ("低保名册.txt", text_bytes("东镇低保名册。"), "text/plain")},
            data={"title": "低保名册", "category": "扶贫"},
        )
        assert upload.status_code == 201, upload.text
    document_id = upload.json()["id"]

    page = visitor.login("admin")
    page.get_by_role("link", name="下载授权").click()
    expect(page.get_by_text("尚无下载授权。")).to_be_visible()
    page.get_by_label("审计人员").select_option("auditor")
    page.get_by_label("材料编号").fill("no-such-document")
    page.get_by_role("button", name="授予权限").click()
    expect(page.get_by_role("alert")).to_have_text("文档不存在")

    last_day = (datetime.now(ZoneInfo("Asia/Shanghai")) + timedelta(days=7)).date()
    page.get_by_label("审计人员").select_option("auditor")
    page.get_by_label("材料编号").fill(document_id)
    page.get_by_label("有效期至（可不填）").fill(last_day.isoformat())
    page.get_by_role("button", name="授予权限").click()
    expect(_flash(page)).to_have_text(
        f"已授权 auditor 下载材料 {document_id}，有效期至 {last_day.isoformat()}"
        "；须由另一位系统管理员确认后生效"
    )
    grant = page.locator("table.admin-grants tbody tr")
    expect(grant).to_have_count(1)
    expect(grant.locator("td")).to_have_text(
        [
            "auditor",
            f"低保名册{document_id}",
            "admin",
            re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}$"),
            f"{last_day} 23:59",
            "待确认",
            "待另一位系统管理员确认",
        ]
    )

    def download() -> int:
        response = httpx.get(
            f"{site.url}/api/v1/documents/{document_id}/download",
            headers=bearer(site, "auditor"),
        )
        return response.status_code

    # Waiting: no download yet.
    assert download() == 403

    second = phone.login(_second_admin(site))
    second.get_by_role("link", name="下载授权").click()
    row = second.locator("table.admin-grants tbody tr")
    row.get_by_role("button", name=re.compile("^确认授权")).click()
    expect(_flash(second)).to_have_text(f"已确认下载授权：auditor 现在可以下载材料 {document_id}")
    expect(row.locator("td[data-label='状态']")).to_have_text("有效")
    expect(row.locator("td[data-label='确认']")).to_have_text(
        re.compile(r"^admin2 \d{4}-\d{2}-\d{2} \d{2}:\d{2}$")
    )

    assert download() == 200
    visitor.problems.assert_none()
    phone.problems.assert_none()


def test_a_new_admin_signs_in_once_another_admin_confirms(
    visitor: Visitor, phone: Visitor, site: Site
) -> None:
    page = visitor.login("admin")
    page.get_by_label("用户名").fill("guanli")
    page.get_by_label("初始密码").fill(NEW_PASSWORD)
    page.get_by_label("角色").select_option(label="系统管理员")
    page.get_by_label("单位").select_option(label=COUNTY)
    page.get_by_role("button", name="创建用户").click()
    expect(_flash(page)).to_have_text(
        f"已创建用户 guanli（系统管理员，{COUNTY}）；须由另一位系统管理员确认后才能登录"
    )
    status = _row(page, "guanli").locator("td[data-label='状态']")
    expect(status).to_contain_text("待另一位系统管理员确认")
    expect(status).to_contain_text("admin 于")
    # Its own request: the admin who asked has no button to confirm it.
    expect(_row(page, "guanli").get_by_role("button", name="确认用户 guanli")).to_have_count(0)

    _refused_login(
        phone, "guanli", NEW_PASSWORD, "此账号正等待另一位系统管理员确认，确认后才能登录"
    )

    second = phone.login(_second_admin(site))
    _row(second, "guanli").get_by_role("button", name="确认用户 guanli").click()
    expect(_flash(second)).to_have_text("已确认用户 guanli（系统管理员），该账号现在可以登录")
    expect(_row(second, "guanli").locator("td[data-label='状态']")).to_have_text("启用")
    phone.page.get_by_role("button", name="退出").click()

    phone.login("guanli", NEW_PASSWORD)
    expect(phone.page.get_by_test_id("current-user")).to_have_text("guanli")
    visitor.problems.assert_none()
    phone.problems.assert_none()


def test_an_auditor_confirms_a_new_auditor_and_reads_the_grants(
    visitor: Visitor, phone: Visitor, site: Site
) -> None:
    admin = bearer(site, "admin")
    created = httpx.post(
        f"{site.url}/api/v1/users",
        headers=admin,
        json={"username": "shenji", "password": NEW_PASSWORD, "org": COUNTY, "role": "auditor"},
    )
    assert created.status_code == 201, created.text
    _refused_login(phone, "shenji", NEW_PASSWORD, "此账号正等待另一位审计人员确认，确认后才能登录")

    page = visitor.login("auditor")
    page.locator("nav.mainnav").get_by_role("link", name="双人确认").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("双人确认")
    row = page.locator("table.pending-accounts tr[data-username='shenji']")
    expect(row.locator("td")).to_have_text(
        [
            "shenji",
            "审计人员",
            COUNTY,
            "admin",
            re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}$"),
            "确认",
        ]
    )
    # Every grant, with who granted and who confirmed it.
    grants = page.locator("table.grants tbody tr")
    expect(grants.first.locator("td[data-label='授权人']")).to_have_text("admin")
    expect(grants.first.locator("td[data-label='确认人']")).to_contain_text("admin2")

    row.get_by_role("button", name="确认用户 shenji").click()
    expect(_flash(page)).to_have_text("已确认用户 shenji（审计人员），该账号现在可以登录")
    expect(page.get_by_text("没有待确认的账号。")).to_be_visible()

    phone.login("shenji", NEW_PASSWORD)
    expect(phone.page.get_by_test_id("current-user")).to_have_text("shenji")
    visitor.problems.assert_none()
    phone.problems.assert_none()


def test_other_roles_get_the_refusal_page_and_no_data(visitor: Visitor, site: Site) -> None:
    page = visitor.login("poverty")
    for path in (
        "/admin/users",
        "/admin/orgs",
        "/admin/categories",
        "/admin/grants",
        "/confirmations",
    ):
        response = page.goto(visitor.site.url + path)
        assert response is not None
        assert response.status == 403, path
        expect(page.get_by_role("heading", level=1)).to_have_text("无权访问")
        assert "zhang" not in page.content()
        assert "城关镇" not in page.content()
        visitor.problems.allow((403, "GET", path))

    # A change posted with the reader's own valid form token is refused by the service too.
    token = page.locator("meta[name=csrf-token]").get_attribute("content")
    assert token
    refused = page.request.post(
        site.url + "/admin/users",
        form={
            "csrf_token": token,
            "username": "sneaky",
            "password": NEW_PASSWORD,
            "role": "uploader",
            "org": "东镇",
        },
        max_redirects=0,
    )
    assert refused.status == 403
    assert "无权访问" in refused.text()
    with site.backends.db.session() as session:
        assert session.scalar(select(func.count()).where(User.username == "sneaky")) == 0
    visitor.problems.assert_none()
