"""Signing in and out in the browser; error pages; CSRF refusals."""

from __future__ import annotations

import re

import httpx
from playwright.sync_api import expect

from tests.conftest import PASSWORD
from tests.web.conftest import Site, Visitor


def test_login_shows_user_role_and_organisation_then_logout(visitor: Visitor) -> None:
    page = visitor.login("east")
    expect(page.get_by_test_id("current-user")).to_have_text("east")
    expect(page.locator(".who-role")).to_contain_text("乡镇工作人员 · 东镇")
    cookie = next(c for c in visitor.context.cookies() if c["name"] == "materials_session")
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Strict"

    page.get_by_role("button", name="退出").click()
    expect(page.get_by_role("status")).to_have_text("已安全退出")
    assert page.url.endswith("/login")
    # The old cookie no longer opens anything.
    with httpx.Client(base_url=visitor.site.url) as client:
        client.cookies.set("materials_session", cookie["value"])
        assert client.get("/api/v1/me").status_code == 401
    visitor.problems.assert_none()


def test_wrong_password_is_said_in_chinese(visitor: Visitor) -> None:
    page = visitor.go("/login")
    page.get_by_label("用户名").fill("east")
    page.get_by_label("密码").fill("wrong-password")
    page.get_by_role("button", name="登录").click()
    expect(page.get_by_role("alert")).to_have_text("用户名或密码错误")
    expect(page.get_by_label("用户名")).to_have_value("east")


def test_a_page_needs_login_and_returns_there_afterwards(visitor: Visitor) -> None:
    page = visitor.go("/planned/requests")
    assert re.search(r"/login\?next=%2Fplanned%2Frequests$", page.url)
    page.get_by_label("用户名").fill("poverty")
    page.get_by_label("密码").fill(PASSWORD)
    page.get_by_role("button", name="登录").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("材料需求")


def test_unknown_page_is_a_chinese_404_without_internals(visitor: Visitor) -> None:
    visitor.login("poverty")
    response = visitor.page.goto(visitor.site.url + "/no/such/page")
    assert response is not None
    assert response.status == 404
    expect(visitor.page.get_by_role("heading", level=1)).to_have_text("页面不存在")
    assert "Traceback" not in visitor.page.content()


def test_form_post_without_csrf_token_is_refused(site: Site) -> None:
    with httpx.Client(base_url=site.url) as client:
        login_page = client.get("/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', login_page.text)
        assert token is not None
        signed_in = client.post(
            "/login",
            data={"username": "east", "password": PASSWORD, "csrf_token": token.group(1)},
        )
        assert signed_in.status_code == 303
        refused = client.post("/logout", data={})
        assert refused.status_code == 403
        assert "页面已过期" in refused.text
        # Still signed in: the forged post changed nothing.
        assert client.get("/api/v1/me").json()["username"] == "east"
        # The API refuses a cookie-authenticated change without the header, too.
        withdraw = client.delete("/api/v1/documents/whatever")
        assert withdraw.status_code == 403
        assert withdraw.json()["error"]["code"] == "csrf_failed"


def test_login_form_without_its_token_is_refused(site: Site) -> None:
    with httpx.Client(base_url=site.url) as client:
        response = client.post("/login", data={"username": "east", "password": PASSWORD})
        assert response.status_code == 400
        assert "materials_session" not in response.cookies


def test_api_docs_load_without_internet(visitor: Visitor) -> None:
    page = visitor.go("/api/docs")
    expect(page.locator(".swagger-ui .title").first).to_contain_text("县域材料共享库")
    visitor.problems.assert_none()
