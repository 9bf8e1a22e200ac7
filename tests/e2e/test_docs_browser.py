"""The API docs in a real browser with no network: headless Chromium (Debian's `chromium`,
driven by Playwright through its own `executable_path`; never a browser Playwright downloads).

Every request the page makes to another host is refused and recorded, so a page that needs a
CDN or a web font fails here as it would on an offline school network. The test opens /docs,
finds every operation, runs "Try it out" on POST /auth/login with the documented example,
signs in with Authorize using the returned token, and runs "Try it out" on POST /content
(201). /redoc must render too.

Without Chromium or Playwright the tests skip with a loud reason; with EDU_REQUIRE_SERVICES=1
(CI, which installs both) they fail instead.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.conftest import services_required
from tests.e2e.served import Served, serve
from tests.e2e.stack import memory_core

CHROMIUM = os.environ.get("EDU_CHROMIUM", "/usr/bin/chromium")
#: The flags this machine's Chromium needs as root with no network (see README).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(os.environ.get("EDU_SCREENSHOT_DIR", ".pytest-screenshots"))
TIMEOUT_MS = 30_000


def _unavailable(reason: str) -> None:
    if services_required():
        pytest.fail(f"EDU_REQUIRE_SERVICES=1 but {reason}", pytrace=False)
    pytest.skip(f"SKIPPED LOUDLY: {reason} (`.ci/run` installs it; see README)")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the Python package playwright is not installed")
    if not (shutil.which(CHROMIUM) or Path(CHROMIUM).exists()):
        _unavailable(f"Chromium is not installed at {CHROMIUM} (Debian package chromium)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    with serve(memory_core) as running:
        yield running


class OfflinePage:
    """A page whose requests to any host but the served app are refused and recorded."""

    def __init__(self, browser: Any, served: Served) -> None:
        self.context = browser.new_context(viewport={"width": 1280, "height": 2000})
        self.page = self.context.new_page()
        self.page.set_default_timeout(TIMEOUT_MS)
        self.refused: list[str] = []
        self.loaded: list[str] = []
        self.console: list[str] = []
        self.page.on("console", lambda message: self.console.append(message.text))
        own = urlsplit(served.base_url).netloc
        self.context.route("**/*", lambda route: self._filter(route, own))

    def _filter(self, route: Any, own: str) -> None:
        url = route.request.url
        if url.startswith(("data:", "blob:")) or urlsplit(url).netloc == own:
            self.loaded.append(url)
            route.continue_()
        else:
            self.refused.append(url)
            route.abort("internetdisconnected")

    def shot(self, name: str) -> None:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=False)

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def offline(browser: Any, served: Served) -> Iterator[OfflinePage]:
    page = OfflinePage(browser, served)
    try:
        yield page
    finally:
        page.close()


def _operations(served: Served) -> list[tuple[str, str, str]]:
    spec = httpx.get(f"{served.base_url}/openapi.json").json()
    return [
        (op["tags"][0], op["operationId"], method)
        for path in spec["paths"].values()
        for method, op in path.items()
    ]


def _try_it_out(page: Any, block_id: str) -> tuple[str, str]:
    """Expand the operation, press "Try it out" and "Execute"; the status and body shown."""
    block = page.locator(f"#{block_id}")
    block.locator(".opblock-summary").first.click()
    block.get_by_role("button", name="Try it out").click()
    block.get_by_role("button", name="Execute").click()
    status = block.locator(".live-responses-table .response .response-col_status").first
    status.wait_for()
    status.scroll_into_view_if_needed()
    body = block.locator(".live-responses-table .response-col_description pre").first
    return status.inner_text().strip(), body.inner_text()


def test_swagger_ui_works_offline_sign_in_and_try_it_out(
    offline: OfflinePage, served: Served
) -> None:
    page = offline.page
    page.goto(f"{served.base_url}/docs")
    page.locator(".opblock").first.wait_for()
    operations = _operations(served)
    assert page.locator(".opblock").count() == len(operations) >= 30
    for tag, operation_id, _ in operations:
        assert page.locator(f"#operations-{tag}-{operation_id}").count() == 1, operation_id
    offline.shot("docs-loaded")

    status, body = _try_it_out(page, "operations-auth-login_auth_login_post")
    assert status == "200", body
    token = json.loads(body)["token"]

    page.locator(".auth-wrapper .authorize").first.click()
    scheme = page.locator(".dialog-ux .auth-container", has_text="SessionToken")
    scheme.locator("input").first.fill(token)
    scheme.locator("button.authorize").click()
    scheme.get_by_text("Authorized").first.wait_for()
    offline.shot("docs-authorized")
    page.locator(".dialog-ux button.btn-done").first.click()

    status, body = _try_it_out(page, "operations-content-create_draft_content_post")
    offline.shot("docs-try-it-out")
    assert status == "201", body
    created = json.loads(body)
    assert created["title"] == "Fractions for beginners" and created["status"] == "draft"
    assert offline.refused == [], offline.refused
    assert any(url.endswith("/docs-static/swagger-ui-bundle.js") for url in offline.loaded)


def test_redoc_renders_offline(offline: OfflinePage, served: Served) -> None:
    page = offline.page
    page.goto(f"{served.base_url}/redoc")
    page.locator("h2", has_text="Create a draft authored by the caller").wait_for()
    assert page.locator("h1", has_text="edu-core example service").is_visible()
    assert page.locator("h2").count() >= 31  # an operation heading each, besides the tags
    offline.shot("redoc")
    assert offline.refused == [], offline.refused
    # ReDoc's bundle asks for its logo on a CDN: the page's CSP stops it in the browser.
    blocked = [m for m in offline.console if "Content Security Policy" in m]
    assert all("cdn.redoc.ly" in m for m in blocked), blocked
