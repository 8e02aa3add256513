"""The example website form (examples/form/) in headless Chromium against the running API.

The form is served from one origin and the API from another, as on a real
website, so these tests also prove the CORS allowlist: the listed origin can
read the API's answers, any other cannot.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from socketserver import BaseServer
from typing import TYPE_CHECKING, Any

import pytest
from flask import Flask
from werkzeug.serving import make_server

from quote_service.extensions import db
from quote_service.models import Disclaimer, QuoteRequest
from tests.conftest import base_config
from tests.payloads import minimal_body
from tests.support.servers import Server

try:
    from playwright.sync_api import expect, sync_playwright
except ImportError:  # only the browser tests need it; they skip without it
    sync_playwright = None

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

FORM_DIR = Path(__file__).resolve().parent.parent / "examples" / "form"
CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# Bounds every wait of a browser step: a broken page fails in seconds, not at pytest's timeout.
STEP_TIMEOUT_MS = 10_000
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
REFERENCE = re.compile(r"^QR-[0-9A-Z]{8}$")
INTAKE = "/api/v1/quote-requests"
CATALOG = "/api/v1/catalog"


class StaticFiles(SimpleHTTPRequestHandler):
    """Serves examples/form/ quietly (no access log on stderr)."""

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def serve() -> Iterator[Callable[[BaseServer], str]]:
    """Run servers in threads for one test; return their base URL; stop them all afterwards."""
    running: list[tuple[BaseServer, threading.Thread]] = []

    def start(server: BaseServer) -> str:
        thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        thread.start()
        running.append((server, thread))
        host, port = server.server_address[:2]  # type: ignore[misc]
        return f"http://{host}:{port}"

    yield start
    for server, thread in reversed(running):
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
        assert not thread.is_alive(), f"{server!r} did not stop"


def static_site() -> ThreadingHTTPServer:
    return ThreadingHTTPServer(("127.0.0.1", 0), partial(StaticFiles, directory=str(FORM_DIR)))


@pytest.fixture
def form_origin(serve: Callable[[BaseServer], str]) -> str:
    """The website that embeds the form, the one origin the API lets in."""
    return serve(static_site())


@pytest.fixture
def foreign_origin(serve: Callable[[BaseServer], str]) -> str:
    """Another website with the same page, not in CORS_ORIGINS."""
    return serve(static_site())


@pytest.fixture
def start_api(
    serve: Callable[[BaseServer], str],
    make_app: Callable[[dict[str, Any]], Flask],
    postgres: Server,
    app: Flask,  # migrates and seeds the database, and empties it after the test
) -> Callable[..., str]:
    def start(cors_origins: list[str], **overrides: Any) -> str:
        api_app = make_app(base_config(postgres.url, CORS_ORIGINS=cors_origins, **overrides))
        return serve(make_server("127.0.0.1", 0, api_app, threaded=True))

    return start


@pytest.fixture
def browser() -> Iterator[Browser]:
    if sync_playwright is None:
        pytest.skip("the playwright Python package is not installed (pip install -e '.[dev]')")
    if not CHROMIUM.exists():
        pytest.skip(
            f"no Chromium at {CHROMIUM}: `sudo apt-get install chromium` enables these tests "
            "(they never download a browser); CI (.ci/run) installs it"
        )
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def markup_disclaimer(app: Flask) -> Iterator[str]:
    """A disclaimer whose text looks like HTML; the catalog is shared, so it is removed after."""
    text = '<img id="injected" src="x" onerror="window.injected = true"> Read <b>this</b>.'
    with app.app_context():
        row = Disclaimer(
            key="browser-test-markup",
            version=1,
            language="en",
            required=False,
            position=10_000,
            text=text,
        )
        db.session.add(row)
        db.session.commit()
        row_id = row.id
    try:
        yield text
    finally:
        with app.app_context():
            db.session.execute(db.delete(Disclaimer).where(Disclaimer.id == row_id))
            db.session.commit()


def new_page(browser: Browser) -> tuple[Page, list[str]]:
    """A page with bounded waits, and a list collecting its uncaught script errors."""
    page = browser.new_page()
    page.set_default_timeout(STEP_TIMEOUT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    return page, errors


def open_form(browser: Browser, site: str, api: str) -> tuple[Page, list[str]]:
    """The form served by `site`, pointed at the API at `api`."""
    page, errors = new_page(browser)
    page.goto(f"{site}/index.html?api={api}")
    return page, errors


def wait_until_ready(page: Page) -> None:
    expect(page.locator("#quote-form[data-ready=true]")).to_be_attached()


def field_error(page: Page, name: str) -> str:
    return page.locator(f"#error-{name}").inner_text()


def describes(page: Page, name: str) -> list[str]:
    return (page.locator(f"#{name}").get_attribute("aria-describedby") or "").split()


def test_the_form_renders_the_catalog_of_the_page_language(
    browser: Browser, form_origin: str, start_api: Callable[..., str], markup_disclaimer: str
):
    api = start_api([form_origin])
    page, page_errors = new_page(browser)
    with page.expect_response(lambda r: CATALOG in r.url) as catalog_response:
        page.goto(f"{form_origin}/index.html?api={api}")
    assert catalog_response.value.url == f"{api}{CATALOG}?lang=en"
    wait_until_ready(page)

    destinations = page.locator("#destination option")
    expect(destinations).to_have_text(["Choose a destination", "Belgium", "Antigua and Barbuda"])
    expect(page.locator("#treatment option")).to_have_count(4)
    expect(page.locator("#treatment")).to_have_value("unsure")
    expect(page.locator("#preferred_language option")).to_have_count(4)
    expect(page.locator("#preferred_language")).to_have_value("en")

    consent = page.locator("label[for=consent_privacy]")
    expect(consent).to_contain_text("I agree that this service stores and processes")
    assert page.locator("#consent_privacy").get_attribute("required") is not None

    # Antigua does not offer type 1 diabetes; Belgium does.
    page.select_option("#destination", "AG")
    options = page.locator("#condition option")
    expect(options).to_have_count(4)
    assert "diabetes-type-1" not in [
        options.nth(i).get_attribute("value") for i in range(options.count())
    ]
    page.select_option("#destination", "BE")
    expect(page.locator("#condition option[value=diabetes-type-1]")).to_be_attached()

    # Global disclaimers always; scoped ones only for the destination/condition chosen.
    expect(page.locator(".disclaimer[data-key=not-medical-advice]")).to_contain_text(
        "not medical advice"
    )
    expect(page.locator(".disclaimer[data-key=destination-be]")).to_be_attached()
    expect(page.locator(".disclaimer[data-key=destination-ag]")).to_have_count(0)
    expect(page.locator(".disclaimer[data-key=stroke-emergency]")).to_have_count(0)
    page.select_option("#condition", "stroke")
    expect(page.locator(".disclaimer[data-key=stroke-emergency]")).to_be_attached()

    # Catalog texts are text: markup in one shows as characters and never runs.
    markup = page.locator(".disclaimer[data-key=browser-test-markup]")
    expect(markup).to_have_text(markup_disclaimer)
    expect(page.locator("#injected")).to_have_count(0)
    assert page.evaluate("window.injected") is None

    honeypot = page.locator("#website")
    assert honeypot.get_attribute("tabindex") == "-1"
    assert honeypot.get_attribute("autocomplete") == "off"
    assert page.locator(".hp").get_attribute("aria-hidden") == "true"
    box = honeypot.bounding_box()
    assert box is not None and box["x"] + box["width"] < 0, "the honeypot is on screen"
    assert page_errors == []
    page.close()


def test_a_patient_corrects_field_errors_and_gets_a_reference(
    browser: Browser, form_origin: str, start_api: Callable[..., str], app: Flask, tmp_path: Path
):
    api = start_api([form_origin])
    page, page_errors = open_form(browser, form_origin, api)
    posts: list[dict[str, str]] = []
    page.on("request", lambda r: posts.append(r.headers) if r.method == "POST" else None)
    wait_until_ready(page)
    travel_from = date.today() + timedelta(days=60)
    travel_to = travel_from + timedelta(days=14)

    page.fill("#full_name", "Jan Peeters")
    page.fill("#email", "jan.peeters@example")
    page.fill("#phone", "+32 470 12 34 56")
    page.select_option("#country_of_residence", label="Belgium")
    page.select_option("#preferred_language", "nl")
    page.fill("#patient_age", "64")
    page.select_option("#destination", "BE")
    page.select_option("#condition", "stroke")
    page.select_option("#treatment", "msc")
    page.fill("#travel_from", travel_from.isoformat())
    page.fill("#travel_to", travel_to.isoformat())
    page.fill("#budget_eur", "25000")
    page.fill("#message", "Stroke in March, left side weakness.\nAsking about MSC.")
    page.click("#submit")

    # The service's messages, next to their fields and tied to them for screen readers.
    expect(page.locator("#error-email")).to_be_visible()
    expect(page.locator("#error-consent_privacy")).to_be_visible()
    # In the language the patient chose for their emails (preferred_language: nl).
    assert "geldig e-mailadres" in field_error(page, "email")
    assert "privacyverklaring" in field_error(page, "consent_privacy")
    for name in ("email", "consent_privacy"):
        assert page.locator(f"#{name}").get_attribute("aria-invalid") == "true"
        assert f"error-{name}" in describes(page, name)
    assert page.locator("#full_name").get_attribute("aria-invalid") is None
    expect(page.locator("#form-status")).to_contain_text("need your attention")
    page.screenshot(path=tmp_path / "form-errors.png", full_page=True)

    page.fill("#email", "jan.peeters@example.org")
    page.check("#consent_privacy")
    page.click("#submit")

    reference = page.locator("#reference")
    expect(reference).to_have_text(REFERENCE)
    expect(page.locator("#quote-form")).to_be_hidden()
    page.screenshot(path=tmp_path / "form-sent.png", full_page=True)
    assert page_errors == []

    keys = [headers.get("idempotency-key", "") for headers in posts]
    assert len(keys) == 2 and all(UUID.match(key) for key in keys)
    # The corrected body is another request: it needs its own key.
    assert keys[0] != keys[1]

    with app.app_context():
        stored = db.session.execute(
            db.select(QuoteRequest).where(QuoteRequest.reference == reference.inner_text())
        ).scalar_one()
        assert stored.status == "received"  # not spam: people never fill the honeypot
        assert (stored.full_name, stored.email, stored.phone) == (
            "Jan Peeters",
            "jan.peeters@example.org",
            "+32470123456",
        )
        assert (stored.country_of_residence, stored.preferred_language) == ("BE", "nl")
        assert (stored.destination_code, stored.condition_slug, stored.treatment_slug) == (
            "BE",
            "stroke",
            "msc",
        )
        assert (stored.patient_age, stored.budget_eur) == (64, 25000)
        assert (stored.travel_from, stored.travel_to) == (travel_from, travel_to)
        assert stored.message == "Stroke in March, left side weakness.\nAsking about MSC."
        assert stored.consent_privacy is True and stored.consent_marketing is False
        count = db.session.execute(db.select(db.func.count()).select_from(QuoteRequest))
        assert count.scalar_one() == 1
    page.close()


def test_a_double_click_sends_one_request(
    browser: Browser, form_origin: str, start_api: Callable[..., str], app: Flask
):
    api = start_api([form_origin])
    page, page_errors = open_form(browser, form_origin, api)
    wait_until_ready(page)
    page.fill("#full_name", "Marie Dubois")
    page.fill("#email", "marie.dubois@example.org")
    page.select_option("#country_of_residence", "FR")
    page.select_option("#destination", "AG")
    page.select_option("#condition", "diabetes-type-2")
    page.check("#consent_privacy")
    page.dblclick("#submit")

    expect(page.locator("#reference")).to_have_text(REFERENCE)
    assert page_errors == []
    with app.app_context():
        count = db.session.execute(db.select(db.func.count()).select_from(QuoteRequest))
        assert count.scalar_one() == 1
    page.close()


def test_too_many_requests_ask_the_patient_to_try_again_later(
    browser: Browser, form_origin: str, start_api: Callable[..., str]
):
    # Refused bodies count only against the attempts cap.
    api = start_api([form_origin], RATE_LIMIT_INTAKE_ATTEMPTS="1/minute")
    page, page_errors = open_form(browser, form_origin, api)
    wait_until_ready(page)
    page.fill("#email", "not-an-address")
    page.click("#submit")
    expect(page.locator("#error-email")).to_be_visible()

    page.fill("#email", "still-not-an-address")  # another body: a fresh Idempotency-Key
    page.click("#submit")
    status = page.locator("#form-status")
    expect(status).to_contain_text("try again later")
    # The field errors of the earlier answer are gone: they may no longer be true.
    expect(page.locator("#error-email")).to_be_hidden()
    assert page.locator("#email").get_attribute("aria-invalid") is None
    assert page_errors == []
    page.close()


def test_a_page_from_an_origin_not_allowed_cannot_read_the_api(
    browser: Browser, form_origin: str, foreign_origin: str, start_api: Callable[..., str]
):
    api = start_api([form_origin])
    read_catalog = """async (url) => {
        try { const r = await fetch(url); return `read ${r.status}`; }
        catch (error) { return error.name; }
    }"""
    post_request = """async ([url, body]) => {
        try {
            const r = await fetch(url, {method: "POST", body: JSON.stringify(body),
                                        headers: {"Content-Type": "application/json"}});
            return `read ${r.status}`;
        } catch (error) { return error.name; }
    }"""

    allowed, _ = open_form(browser, form_origin, api)
    wait_until_ready(allowed)
    assert allowed.evaluate(read_catalog, f"{api}{CATALOG}") == "read 200"
    assert allowed.evaluate(post_request, [f"{api}{INTAKE}", {}]) == "read 422"

    foreign, page_errors = open_form(browser, foreign_origin, api)
    # The service answered; the browser kept it from the page: the page says so.
    status = foreign.locator("#form-status")
    expect(status).to_contain_text("could not be loaded")
    expect(status).to_contain_text(f"does not let pages of {foreign_origin} read its answers")
    expect(status).to_contain_text("CORS_ORIGINS")
    expect(foreign.locator("#submit")).to_be_disabled()
    assert foreign.evaluate(read_catalog, f"{api}{CATALOG}") == "TypeError"
    assert foreign.evaluate(post_request, [f"{api}{INTAKE}", minimal_body()]) == "TypeError"
    assert page_errors == []
    allowed.close()
    foreign.close()


ALLOWED = "https://clinic-website.example"


@pytest.mark.parametrize(
    "origin",
    [
        "https://evil.example",
        "http://clinic-website.example",  # another scheme is another origin
        "https://clinic-website.example:8443",
        "https://clinic-website.example.evil.example",
        "https://www.clinic-website.example",
        "null",
    ],
)
def test_cors_lets_no_other_origin_in(
    make_app: Callable[[dict[str, Any]], Flask], postgres: Server, app: Flask, origin: str
):
    client = make_app(base_config(postgres.url, CORS_ORIGINS=[ALLOWED])).test_client()
    response = client.get(CATALOG, headers={"Origin": origin})
    assert response.status_code == 200
    assert "Access-Control-Allow-Origin" not in response.headers
    preflight = client.options(
        INTAKE,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type, idempotency-key",
        },
    )
    assert "Access-Control-Allow-Origin" not in preflight.headers


def test_cors_lets_the_listed_origin_post_and_read_the_headers_it_needs(
    make_app: Callable[[dict[str, Any]], Flask], postgres: Server, app: Flask
):
    client = make_app(base_config(postgres.url, CORS_ORIGINS=[ALLOWED])).test_client()
    preflight = client.options(
        INTAKE,
        headers={
            "Origin": ALLOWED,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type, idempotency-key",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["Access-Control-Allow-Origin"] == ALLOWED
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
    allowed_headers = preflight.headers["Access-Control-Allow-Headers"].lower()
    assert "idempotency-key" in allowed_headers and "content-type" in allowed_headers
    # No cookies or auth travel cross-origin: the intake needs none.
    assert "Access-Control-Allow-Credentials" not in preflight.headers

    created = client.post(INTAKE, json=minimal_body(), headers={"Origin": ALLOWED})
    assert created.status_code == 201
    assert created.headers["Access-Control-Allow-Origin"] == ALLOWED
    exposed = {
        h.strip().lower() for h in created.headers["Access-Control-Expose-Headers"].split(",")
    }
    assert {"location", "idempotent-replayed", "retry-after"} <= exposed


def test_without_cors_origins_no_origin_is_let_in(
    make_app: Callable[[dict[str, Any]], Flask], postgres: Server, app: Flask
):
    client = make_app(base_config(postgres.url, CORS_ORIGINS=[])).test_client()
    response = client.get(CATALOG, headers={"Origin": ALLOWED})
    assert response.status_code == 200
    assert "Access-Control-Allow-Origin" not in response.headers


I18N_DIR = FORM_DIR / "i18n"


def test_every_language_file_has_every_text_of_the_page():
    english = json.loads((I18N_DIR / "en.json").read_text())
    used = set(re.findall(r'data-i18n="(\w+)"', (FORM_DIR / "index.html").read_text()))
    used |= set(re.findall(r'\bt\("(\w+)"', (FORM_DIR / "form.js").read_text()))
    assert used <= set(english), f"texts without an English entry: {used - set(english)}"
    for language in ("fr", "nl", "de"):
        texts = json.loads((I18N_DIR / f"{language}.json").read_text())
        assert set(texts) == set(english), language
        assert all(isinstance(v, str) and v.strip() for v in texts.values()), language
        same = [k for k in english if texts[k] == english[k]]
        assert same == [], f"{language}: still in English: {same}"
        for key, text in english.items():
            assert set(re.findall(r"\{\w+\}", texts[key])) == set(re.findall(r"\{\w+\}", text))


def test_a_french_page_in_french_with_countries_by_name_and_a_french_budget(
    browser: Browser, form_origin: str, start_api: Callable[..., str], app: Flask
):
    api = start_api([form_origin])
    page, page_errors = new_page(browser)
    page.goto(f"{form_origin}/index.html?api={api}&lang=fr")
    wait_until_ready(page)
    expect(page.locator("h1")).to_have_text("Demander un devis gratuit")
    assert page.evaluate("document.documentElement.lang") == "fr"
    expect(page.locator("#destination option").first).to_have_text("Choisissez une destination")
    page.fill("#full_name", "Marie Dubois")
    page.fill("#email", "marie.dubois@example.org")
    page.select_option("#country_of_residence", label="Belgique")
    page.select_option("#destination", "BE")
    page.select_option("#condition", "stroke")
    page.fill("#budget_eur", "30 000")
    page.click("#submit")
    # The patient's language for emails defaults to the page's: the errors are French too.
    expect(page.locator("#error-consent_privacy")).to_contain_text("Vous devez accepter")
    page.check("#consent_privacy")
    page.click("#submit")
    expect(page.locator("#reference")).to_have_text(REFERENCE)
    success = page.locator("#success")
    expect(success).to_contain_text(
        "Nous avons envoyé une confirmation à marie.dubois@example.org."
    )
    expect(success).to_contain_text("spam")
    expect(success).to_contain_text("sous 24 heures")
    assert page_errors == []
    with app.app_context():
        stored = db.session.execute(db.select(QuoteRequest)).scalar_one()
        assert (stored.country_of_residence, stored.budget_eur) == ("BE", 30000)
        assert stored.preferred_language == "fr"
    page.close()


# --- Urgent symptoms: the advice and the number come first ---


def fill_urgent_form(page: Page, message: str) -> None:
    page.fill("#full_name", "Marie Dubois")
    page.fill("#email", "marie.dubois@example.org")
    page.select_option("#country_of_residence", "US")
    page.select_option("#preferred_language", "fr")
    page.select_option("#destination", "BE")
    page.select_option("#condition", "stroke")
    page.fill("#message", message)
    page.check("#consent_privacy")


def test_an_urgent_answer_puts_the_advice_and_number_first(
    browser: Browser, form_origin: str, start_api: Callable[..., str], app: Flask
):
    api = start_api([form_origin])
    page, page_errors = open_form(browser, form_origin, api)
    wait_until_ready(page)
    fill_urgent_form(page, "Ma mère a la bouche de travers depuis ce matin et ne peut plus parler")
    page.click("#submit")

    notice = page.locator("#urgent")
    expect(notice).to_be_visible()
    expect(page.locator("#urgent-advice")).to_contain_text("Il peut s'agir d'une urgence")
    expect(page.locator("#urgent-call")).to_contain_text("911")
    expect(notice).to_be_focused()
    expect(page.locator("#reference")).to_have_text(REFERENCE)
    # The notice comes before the thank-you in the page.
    order = page.evaluate(
        "document.getElementById('urgent').compareDocumentPosition("
        "document.getElementById('success')) & Node.DOCUMENT_POSITION_FOLLOWING"
    )
    assert order
    assert page_errors == []
    page.close()


def test_a_calm_answer_shows_no_notice(
    browser: Browser, form_origin: str, start_api: Callable[..., str], app: Flask
):
    api = start_api([form_origin])
    page, page_errors = open_form(browser, form_origin, api)
    wait_until_ready(page)
    fill_urgent_form(page, "AVC en mars 2023, faiblesse du côté gauche.")
    page.click("#submit")

    expect(page.locator("#reference")).to_have_text(REFERENCE)
    expect(page.locator("#urgent")).to_be_hidden()
    assert page_errors == []
    page.close()


def test_the_form_says_who_we_are_from_the_services_settings(
    browser: Browser, form_origin: str, start_api: Callable[..., str]
):
    api = start_api(
        [form_origin],
        ORGANISATION_NAME="Zeeland Care Travel BV",
        ORGANISATION_ADDRESS="Markt 7, 4331 LK Middelburg, Netherlands",
        CONTACT_EMAIL="hello@zeeland-care.example",
        PRIVACY_POLICY_URL="https://zeeland-care.example/privacy",
    )
    page, page_errors = new_page(browser)
    page.goto(f"{form_origin}/index.html?api={api}&lang=nl")
    wait_until_ready(page)
    footer = page.locator("#organisation")
    expect(footer).to_be_visible()
    expect(footer.locator("h2")).to_have_text("Wie wij zijn")
    expect(page.locator("#organisation-name")).to_have_text("Zeeland Care Travel BV")
    expect(page.locator("#organisation-address")).to_have_text(
        "Markt 7, 4331 LK Middelburg, Netherlands"
    )
    contact = page.locator("#organisation-contact")
    expect(contact).to_have_text("hello@zeeland-care.example")
    expect(contact).to_have_attribute("href", "mailto:hello@zeeland-care.example")
    privacy = page.locator("#organisation-privacy")
    expect(privacy).to_have_attribute("href", "https://zeeland-care.example/privacy")
    expect(privacy).to_have_text("Hoe wij uw gegevens gebruiken (privacybeleid)")
    assert page_errors == []
