"""Every page of every role passes axe-core's WCAG 2 A/AA rules: labels, contrast, landmarks.

axe-core (tests/web/vendor) is injected into each page in a context that lets the test's own
script past the pages' Content-Security-Policy; the pages themselves are unchanged.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page

from tests.samples import pdf_bytes, png_bytes
from tests.web.conftest import Site, Visitor, bearer, open_visitor, upload_as, wait_indexed

AXE = Path(__file__).parent / "vendor" / "axe.min.js"
RULES = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
ROLES = ("east", "poverty", "coord", "auditor", "admin")


@pytest.fixture(params=[(1366, 768), (390, 844)], ids=["desktop", "phone"])
def checker(browser: Browser, site: Site, request: pytest.FixtureRequest) -> Iterator[Visitor]:
    width, height = request.param
    opened = open_visitor(
        browser, site, viewport={"width": width, "height": height}, bypass_csp=True
    )
    yield opened
    opened.context.close()


def violations(page: Page) -> list[str]:
    page.add_script_tag(path=str(AXE))
    found: list[dict[str, Any]] = page.evaluate(
        "rules => axe.run(document, {runOnly: {type: 'tag', values: rules}})"
        ".then(result => result.violations.map(v => ({id: v.id, impact: v.impact,"
        " nodes: v.nodes.map(n => n.target.join(' ')).slice(0, 3)})))",
        RULES,
    )
    return [f"{v['id']} ({v['impact']}): {v['nodes']}" for v in found]


@pytest.mark.parametrize("username", ROLES)
def test_every_page_of_the_menu_passes_wcag_aa(checker: Visitor, username: str) -> None:
    page = checker.login(username)
    paths = page.locator("nav.mainnav a").evaluate_all("links => links.map(a => a.pathname)")
    problems = {}
    for path in paths:
        checker.go(path)
        if found := violations(page):
            problems[path] = found
    assert problems == {}


def test_login_and_error_pages_pass_wcag_aa(checker: Visitor) -> None:
    page = checker.go("/login")
    assert violations(page) == []
    checker.login("poverty")
    checker.go("/no/such/page")
    assert violations(page) == []
    checker.go("/account/password")
    assert violations(page) == []


def test_the_check_finds_what_it_looks_for(checker: Visitor) -> None:
    page = checker.go("/login")
    page.evaluate(
        "() => { const field = document.createElement('input');"
        " document.querySelector('main').append(field);"
        " const faint = document.createElement('p'); faint.textContent = '浅色文字';"
        " faint.style.color = '#c8c8c8'; document.querySelector('main').append(faint); }"
    )
    found = " ".join(violations(page))
    assert "label" in found
    assert "color-contrast" in found


def test_pages_with_materials_pass_wcag_aa(checker: Visitor) -> None:
    pdf = upload_as(checker.site, "east", "城关镇会议纪要.pdf", pdf_bytes("Meeting minutes"))
    photo = upload_as(checker.site, "east", "入户走访.png", png_bytes(16, 16))
    wait_indexed(checker.site, "east", [pdf["id"], photo["id"]])
    page = checker.login("east")
    problems = {}
    for path in (
        f"/documents/{pdf['id']}",
        f"/documents/{photo['id']}",
        f"/documents/{pdf['id']}/receipt",
        "/materials?sort=title",
    ):
        checker.go(path)
        if found := violations(page):
            problems[path] = found
    checker.context.clear_cookies()
    checker.login("poverty")
    checker.go("/search?q=Meeting")
    if found := violations(page):
        problems["/search"] = found
    assert problems == {}


def test_ask_once_pages_with_data_pass_wcag_aa(checker: Visitor) -> None:
    """A draft showing a match, the approval page, the township's answer form, the catalog
    editor, the coverage grid, the reminders and the figures with their charts."""
    site = checker.site
    suffix = os.urandom(3).hex()
    item = httpx.post(
        f"{site.url}/api/v1/catalog",
        headers=bearer(site, "coord"),
        json={
            "name": f"季度台账{suffix}",
            "category": "台账",
            "cycle": "quarterly",
            "due_days": 10,
        },
    ).json()
    shared = upload_as(
        site,
        "east",
        f"台账{suffix}.pdf",
        pdf_bytes(f"ledger {suffix}"),
        title=f"东镇台账{suffix}",
        category="台账",
        period="2026-Q3",
    )
    wait_indexed(site, "east", [shared["id"]])
    poverty = bearer(site, "poverty")
    ask = {"township": "东镇", "category": "台账", "period": "2026-Q3", "due": "2099-01-01"}
    draft = httpx.post(
        f"{site.url}/api/v1/requests", headers=poverty, json={**ask, "title": f"东镇台账{suffix}"}
    ).json()
    assert draft["matches"], draft
    pending = httpx.post(
        f"{site.url}/api/v1/requests", headers=poverty, json={**ask, "title": f"另一份{suffix}"}
    ).json()
    httpx.post(
        f"{site.url}/api/v1/requests/{pending['id']}/send",
        headers=poverty,
        json={"reason": "已有材料不含明细"},
    )
    sent = httpx.post(
        f"{site.url}/api/v1/requests",
        headers=poverty,
        json={**ask, "title": f"目录台账{suffix}", "catalog_item": item["id"]},
    ).json()
    httpx.post(
        f"{site.url}/api/v1/requests/{sent['id']}/send",
        headers=poverty,
        json={"reason": "需要本期"},
    )
    pages = {
        "poverty": [f"/requests/{draft['id']}", "/requests/new", "/requests", "/notifications"],
        "coord": [
            f"/requests/{pending['id']}",
            "/catalog/new",
            f"/catalog/{item['id']}/edit",
            f"/coverage?item={item['id']}",
            "/figures?by=department",
        ],
        "east": [f"/requests/{sent['id']}", "/notifications", f"/upload?request={sent['id']}"],
    }
    problems = {}
    for username, paths in pages.items():
        checker.context.clear_cookies()
        page = checker.login(username)
        for path in paths:
            checker.go(path)
            if found := violations(page):
                problems[f"{username} {path}"] = found
    assert problems == {}
