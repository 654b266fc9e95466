"""Every page works with the network cable pulled: nothing is fetched from another host.

Each role's menu is followed page by page (and the API documentation opened) with every request
to another origin blocked; no request may fail and no script may report an error.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.web.conftest import Visitor

ROLES = ("east", "poverty", "coord", "auditor", "admin")


@pytest.mark.parametrize("username", ROLES)
def test_every_page_of_the_menu_loads_from_the_app_alone(visitor: Visitor, username: str) -> None:
    page = visitor.login(username)
    links = page.locator("nav.mainnav a").evaluate_all("links => links.map(a => a.pathname)")
    assert links, "every role has a menu"
    for path in links:
        response = page.goto(visitor.site.url + path)
        assert response is not None, path
        assert response.status == 200, path
        expect(page.get_by_role("heading", level=1)).to_be_visible()
        # Styles came from the app: the header is painted in the brand colour.
        colour = page.locator("header.topbar").evaluate("e => getComputedStyle(e).backgroundColor")
        assert colour == "rgb(29, 78, 137)", path
    visitor.problems.assert_none()


def test_api_documentation_and_login_page_load_offline(visitor: Visitor) -> None:
    page = visitor.go("/login")
    expect(page.get_by_role("button", name="登录")).to_be_visible()
    visitor.go("/api/docs")
    expect(page.locator(".swagger-ui .title").first).to_contain_text("县域材料共享库")
    # The upload operation offers a file field.
    page.locator("#operations-documents-upload_document_api_v1_documents_post").click()
    page.get_by_role("button", name="Try it out").click()
    expect(page.locator("input[type=file]").first).to_be_attached()
    visitor.problems.assert_none()
