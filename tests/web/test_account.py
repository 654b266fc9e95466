"""One's own password in the browser: the page linked from the header, and the change an admin's
reset demands before anything else."""

from __future__ import annotations

import httpx
from playwright.sync_api import Page, expect

from tests.conftest import PASSWORD
from tests.web.conftest import Site, Visitor, bearer

OWN_PASSWORD = "lantern-river-2031"
RESET_PASSWORD = "reset-by-admin-7"


def _fill(page: Page, old: str, new: str, again: str | None = None) -> None:
    page.get_by_label("原密码", exact=True).or_(
        page.get_by_label("管理员告知的密码", exact=True)
    ).fill(old)
    page.get_by_label("新密码", exact=True).fill(new)
    page.get_by_label("再次输入新密码", exact=True).fill(new if again is None else again)
    page.get_by_role("button", name="保存新密码").click()


def test_a_user_changes_their_password_and_other_sessions_end(
    visitor: Visitor, phone: Visitor
) -> None:
    phone.login("east2")
    page = visitor.login("east2")

    page.get_by_role("link", name="修改密码").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("修改密码")
    expect(page.get_by_text("至少 10 个字符")).to_be_visible()

    _fill(page, "not-my-password-1", OWN_PASSWORD)
    expect(page.get_by_role("alert")).to_have_text("原密码不正确")
    _fill(page, PASSWORD, OWN_PASSWORD, "lantern-river-2032")
    expect(page.get_by_role("alert")).to_have_text("两次输入的新密码不一致")
    _fill(page, PASSWORD, "aaaaaaaaaa")
    expect(page.get_by_role("alert")).to_contain_text("同一类字符")
    _fill(page, PASSWORD, "Password@2026")
    expect(page.get_by_role("alert")).to_contain_text("常见")
    visitor.problems.allow((422, "POST", "/account/password"))

    _fill(page, PASSWORD, OWN_PASSWORD)
    expect(page.get_by_role("status")).to_have_text(
        "密码已修改。此前在其他设备或程序上的登录已全部失效。"
    )
    # This browser goes on signed in; the phone's session has ended.
    assert page.url == visitor.site.url + "/materials"
    expect(page.get_by_test_id("current-user")).to_have_text("east2")
    phone.go("/materials")
    assert "/login" in phone.page.url
    with httpx.Client(base_url=visitor.site.url) as client:
        old = client.post("/api/v1/auth/token", data={"username": "east2", "password": PASSWORD})
        assert old.status_code == 401
    phone.login("east2", OWN_PASSWORD)
    expect(phone.page.get_by_test_id("current-user")).to_have_text("east2")
    visitor.problems.assert_none()
    phone.problems.assert_none()


def test_after_a_reset_the_login_leads_to_the_password_page_first(
    visitor: Visitor, site: Site
) -> None:
    with httpx.Client(base_url=site.url) as client:
        reset = client.post(
            "/api/v1/users/west/password",
            json={"new_password": RESET_PASSWORD},
            headers=bearer(site, "admin"),
        )
        assert reset.status_code == 204, reset.text

    page = visitor.login("west", RESET_PASSWORD)

    assert page.url == site.url + "/account/password"
    expect(page.get_by_role("note")).to_contain_text("管理员已重置您的密码")
    expect(page.locator("nav.mainnav")).to_have_count(0)
    # Every other page leads back here until the password is changed.
    visitor.go("/materials")
    assert page.url == site.url + "/account/password"
    cookie = next(c for c in visitor.context.cookies() if c["name"] == "materials_session")
    with httpx.Client(base_url=site.url, cookies={"materials_session": cookie["value"]}) as api:
        refused = api.get("/api/v1/documents")
        assert refused.status_code == 403
        assert refused.json()["error"]["code"] == "password_change_required"
        assert api.get("/api/v1/me").json()["must_change_password"] is True

    _fill(page, RESET_PASSWORD, OWN_PASSWORD)

    expect(page.get_by_role("status")).to_contain_text("密码已修改")
    assert page.url == site.url + "/materials"
    expect(page.locator("nav.mainnav")).to_be_visible()
    page.get_by_role("button", name="退出").click()
    expect(page.get_by_role("status")).to_have_text("已安全退出")
    visitor.login("west", OWN_PASSWORD)
    assert page.url == site.url + "/materials"
    visitor.problems.assert_none()


def test_a_user_waiting_for_a_new_password_may_log_out(visitor: Visitor, site: Site) -> None:
    with httpx.Client(base_url=site.url) as client:
        reset = client.post(
            "/api/v1/users/stats/password",
            json={"new_password": RESET_PASSWORD},
            headers=bearer(site, "admin"),
        )
        assert reset.status_code == 204, reset.text
    page = visitor.login("stats", RESET_PASSWORD)

    page.get_by_role("button", name="退出").click()

    expect(page.get_by_role("status")).to_have_text("已安全退出")
    assert page.url.endswith("/login")
    visitor.problems.assert_none()
