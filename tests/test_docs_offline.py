"""/docs works without the internet: Swagger UI comes from the package's own files."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from flask.testing import FlaskClient

from tests.browser_fixtures import STEP_TIMEOUT_MS

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Route

VENDOR = Path(__file__).resolve().parent.parent / "quote_service" / "static" / "vendor"


def test_docs_load_swagger_ui_with_everything_but_loopback_blocked(
    chromium: Browser, live_app: Callable[..., str]
):
    from playwright.sync_api import expect

    base = live_app()
    blocked: list[str] = []

    def only_loopback(route: Route) -> None:
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    page = chromium.new_page()
    page.set_default_timeout(STEP_TIMEOUT_MS)
    page.route("**/*", only_loopback)
    page.goto(f"{base}/docs")
    # Operations are listed by path, each in its own block.
    expect(page.locator(".opblock-summary-path[data-path='/api/v1/quote-requests']")).to_have_count(
        2
    )
    expect(page.locator(".opblock-summary-path[data-path='/api/v1/catalog']")).to_have_count(1)
    assert page.locator(".opblock").count() > 10
    assert blocked == [], f"the docs asked the internet for {blocked}"
    page.close()


def test_the_docs_page_names_no_other_server(client: FlaskClient):
    page = client.get("/docs").get_data(as_text=True)
    assert "/static/vendor/swagger-ui/swagger-ui-bundle.js" in page
    assert "https://" not in page and "http://" not in page


def test_swagger_ui_is_vendored_with_its_licence(client: FlaskClient):
    folder = VENDOR / "swagger-ui"
    assert "Apache License" in (folder / "LICENSE").read_text()
    response = client.get("/static/vendor/swagger-ui/swagger-ui-bundle.js")
    assert response.status_code == 200
    response.close()
