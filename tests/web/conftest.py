"""Browser tests: the app under a real uvicorn on loopback, driven in Debian's headless Chromium.

Playwright (from PyPI) launches the system browser (``/usr/bin/chromium``); it never downloads
one. Every page is opened with the network blocked except the app's own origin, and a request
that fails or a script error fails the test.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, Route, sync_playwright

from api.app import create_app
from indexer.worker import BackgroundWorker, IndexWorker
from services.backends import Backends, open_backends
from services.config import Settings
from tests.conftest import PASSWORD, make_settings, seed_county
from tests.live_server import serving

CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DOCS = Path(__file__).parents[2] / "docs"


def chromium_path() -> str:
    found = os.environ.get("MATERIALS_CHROMIUM") or shutil.which("chromium")
    if not found:
        pytest.fail(
            "Chromium is missing: ./deploy/test.sh installs Debian's chromium and fonts-noto-cjk "
            "(as root); otherwise apt-get install chromium fonts-noto-cjk"
        )
    return found


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    launched = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
    yield launched
    launched.close()


@dataclass
class Site:
    """The app on a loopback port, with the sample county and an index worker running."""

    url: str
    settings: Settings
    backends: Backends
    # Other origins the browser may reach (the object store, for presigned downloads).
    other_origins: tuple[str, ...] = ()


@contextmanager
def serve_site(settings: Settings, *, other_origins: tuple[str, ...] = ()) -> Iterator[Site]:
    """The app on the given settings with the sample county, an index worker and uvicorn."""
    backends = open_backends(settings)
    seed_county(backends)
    worker = BackgroundWorker(IndexWorker(backends, backends.index, poll_seconds=0.1))
    worker.start()
    app = create_app(settings, backends=backends)
    try:
        with serving(app, buffer=None) as port:
            yield Site(
                url=f"http://127.0.0.1:{port}",
                settings=settings,
                backends=backends,
                other_origins=other_origins,
            )
    finally:
        worker.stop()
        backends.close()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    with serve_site(make_settings(tmp_path_factory.mktemp("web") / "data")) as started:
        yield started


def bearer(site: Site, username: str) -> dict[str, str]:
    """Authorization headers for a user of the sample county, for API calls beside the browser."""
    response = httpx.post(
        f"{site.url}/api/v1/auth/token", data={"username": username, "password": PASSWORD}
    )
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def upload_as(
    site: Site,
    username: str,
    filename: str,
    content: bytes,
    content_type: str | None = None,
    **fields: str,
) -> dict[str, Any]:
    """A document uploaded through the API (new or duplicate), as the API answered it; without
    a content type, the one its name suggests."""
    response = httpx.post(
        f"{site.url}/api/v1/documents",
        headers=bearer(site, username),
        files={"file": (filename, content, content_type)},
        data=fields,
    )
    assert response.status_code in (200, 201), response.text
    document: dict[str, Any] = response.json()
    return document


def wait_indexed(site: Site, username: str, document_ids: list[str]) -> None:
    """Until the index worker has handled these documents (indexed or failed)."""
    headers = bearer(site, username)
    deadline = time.monotonic() + 60
    waiting = set(document_ids)
    while waiting and time.monotonic() < deadline:
        for document_id in list(waiting):
            response = httpx.get(f"{site.url}/api/v1/documents/{document_id}", headers=headers)
            if response.json()["index_status"] != "pending":
                waiting.discard(document_id)
        time.sleep(0.1)
    assert not waiting, f"not indexed in time: {waiting}"


# Chromium logs every 4xx/5xx answer on the console too; those are checked as answers instead.
_ANSWER_LOGGED = "Failed to load resource: the server responded with a status of"

# An error answer the test asks for: (status, method, path prefix).
Answer = tuple[int, str, str]


@dataclass
class Problems:
    """What went wrong in the browser: failed requests, requests to other hosts, script errors,
    and error answers (4xx/5xx) that the test did not ``allow``."""

    origin: str
    failed: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    answers: list[Answer] = field(default_factory=list)
    allowed: set[Answer] = field(default_factory=set)

    def allow(self, *answers: Answer) -> None:
        """Error answers that are this test's point (a refused page, a lookup that misses)."""
        self.allowed.update(answers)

    def unexpected_answers(self) -> list[str]:
        return [
            f"{status} {method} {path}"
            for status, method, path in self.answers
            if not any(
                status == s and method == m and path.startswith(p) for s, m, p in self.allowed
            )
        ]

    def assert_none(self) -> None:
        assert self.blocked == [], f"requests to other hosts: {self.blocked}"
        assert self.failed == [], f"failed requests: {self.failed}"
        assert self.unexpected_answers() == [], "unexpected error answers"
        assert self.errors == [], f"script errors: {self.errors}"


@dataclass
class Visitor:
    """A browser context (its own cookies) on the site, with the network cut off elsewhere."""

    site: Site
    context: BrowserContext
    page: Page
    problems: Problems

    def go(self, path: str) -> Page:
        self.page.goto(self.site.url + path)
        return self.page

    def login(self, username: str, password: str = PASSWORD) -> Page:
        self.go("/login")
        self.page.get_by_label("用户名").fill(username)
        self.page.get_by_label("密码").fill(password)
        self.page.get_by_role("button", name="登录").click()
        self.page.wait_for_selector("[data-testid=current-user]")
        return self.page


def open_visitor(browser: Browser, site: Site, **context_options: object) -> Visitor:
    context = browser.new_context(
        locale="zh-CN", timezone_id="Asia/Shanghai", accept_downloads=True, **context_options
    )
    context.set_default_timeout(15_000)
    problems = Problems(origin=site.url)

    def only_own_origin(route: Route) -> None:
        allowed = (site.url + "/", *(origin + "/" for origin in site.other_origins))
        if route.request.url.startswith((*allowed, "data:", "blob:")):
            route.continue_()
        else:
            problems.blocked.append(route.request.url)
            route.abort("blockedbyclient")

    context.route("**/*", only_own_origin)
    page = context.new_page()
    page.on(
        "requestfailed",
        lambda request: (
            None
            if request.url in problems.blocked
            # A download or a navigation away cancels the request that started it.
            or (request.failure or "").endswith("ERR_ABORTED")
            else problems.failed.append(f"{request.url}: {request.failure}")
        ),
    )
    page.on("pageerror", lambda error: problems.errors.append(str(error)))
    page.on(
        "console",
        lambda message: (
            problems.errors.append(message.text)
            if message.type == "error" and not message.text.startswith(_ANSWER_LOGGED)
            else None
        ),
    )
    page.on(
        "response",
        lambda response: (
            problems.answers.append(
                (
                    response.status,
                    response.request.method,
                    response.url.removeprefix(site.url),
                )
            )
            if response.status >= 400
            else None
        ),
    )
    return Visitor(site=site, context=context, page=page, problems=problems)


@pytest.fixture
def visitor(browser: Browser, site: Site) -> Iterator[Visitor]:
    opened = open_visitor(browser, site, viewport={"width": 1366, "height": 768})
    yield opened
    opened.context.close()


@pytest.fixture
def phone(browser: Browser, site: Site) -> Iterator[Visitor]:
    opened = open_visitor(
        browser,
        site,
        viewport={"width": 390, "height": 844},
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
    )
    yield opened
    opened.context.close()


def screenshot(page: Page, name: str) -> None:
    """Keep a screenshot for the README (docs/screenshots/NAME.png)."""
    target = DOCS / "screenshots"
    target.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(target / f"{name}.png"), full_page=False)


ScreenshotFn = Callable[[Page, str], None]
