"""The console end to end in headless Chromium, against the real API, a real Celery
worker (with its outbox relay), PostgreSQL, Redis and an SMTP server.

One browser and one running stack serve the whole module; every wait is
bounded (STEP_TIMEOUT_MS, or a deadline), never a sleep.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import redis
from celery.contrib.testing.worker import start_worker
from flask import Flask
from werkzeug.serving import make_server

from quote_service import create_app
from quote_service.extensions import db
from quote_service.models import Event, QuoteRequest, RoutingDecision
from tests.conftest import base_config, smtp_config
from tests.console.support import PASSWORD, clinic_quote, person, providers_restored
from tests.payloads import minimal_body
from tests.support.servers import Server
from tests.support.smtp import SmtpSink
from worker.relay import OutboxRelayStep

try:
    from playwright.sync_api import expect, sync_playwright
except ImportError:  # only the browser tests need it; they skip without it
    sync_playwright = None

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page

CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
STEP_TIMEOUT_MS = 10_000
ROUTED_WITHIN = 30.0
# Short presence so the test sees a closed page drop out quickly (default 45 s).
PRESENCE_SECONDS = 2.0
PROJECT = Path(__file__).resolve().parents[2]
AXE = PROJECT / "quote_service" / "static" / "vendor" / "axe-core" / "axe.min.js"
# Screenshots for the README: written to docs/ when CONSOLE_SCREENSHOTS=1.
DOCS = PROJECT / "docs"
ANN = "ann@quote-service.example"
BOB = "bob@quote-service.example"
ADA = "ada.admin@quote-service.example"


@dataclass
class Stack:
    url: str
    app: Flask

    def post_request(self, **overrides: Any) -> str:
        body = minimal_body(destination="BE", condition="stroke", **overrides)
        response = self.app.test_client().post("/api/v1/quote-requests", json=body)
        assert response.status_code == 201, response.get_json()
        return response.get_json()["reference"]

    def row(self, reference: str) -> QuoteRequest:
        with self.app.app_context():
            request = db.session.execute(
                db.select(QuoteRequest).where(QuoteRequest.reference == reference)
            ).scalar_one()
            db.session.expunge(request)
            db.session.remove()
            return request

    def wait_until(self, condition: Callable[[], bool], what: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"no {what} within {timeout:g} s")
            time.sleep(0.05)

    def routed_request(self, **overrides: Any) -> str:
        """A request posted to the API and routed by the worker."""
        reference = self.post_request(**overrides)
        self.wait_until(lambda: self.row(reference).status == "routed", "routing", ROUTED_WITHIN)
        return reference


@pytest.fixture(scope="module")
def stack(
    postgres: Server, redis_server: Server, smtp_sink: SmtpSink, app: Flask
) -> Iterator[Stack]:
    """The API (with the console) on a port, and a worker consuming its broker."""
    with redis.Redis.from_url(redis_server.url) as client:
        client.flushdb()
    served = create_app(
        base_config(
            postgres.url,
            REDIS_URL=redis_server.url,
            CONSOLE_PRESENCE_SECONDS=PRESENCE_SECONDS,
            **smtp_config(smtp_sink),
        )
    )
    served.extensions["celery"].steps["worker"].add(OutboxRelayStep)
    server = make_server("127.0.0.1", 0, served, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        with start_worker(
            served.extensions["celery"],
            pool="solo",
            perform_ping_check=False,
            shutdown_timeout=30,
            loglevel="WARNING",
        ):
            yield Stack(f"http://127.0.0.1:{server.server_port}", served)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
        with served.app_context():
            db.engine.dispose()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if sync_playwright is None:
        pytest.skip("the playwright Python package is not installed (pip install -e '.[dev]')")
    expect.set_options(timeout=STEP_TIMEOUT_MS)
    if not CHROMIUM.exists():
        pytest.skip(f"no Chromium at {CHROMIUM}; these tests never download a browser")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def contexts(browser: Browser) -> Iterator[Callable[..., BrowserContext]]:
    """New browser contexts (separate cookie jars: separate people), closed after the test."""
    made: list[BrowserContext] = []

    def make(**options: Any) -> BrowserContext:
        context = browser.new_context(viewport={"width": 1280, "height": 900}, **options)
        context.set_default_timeout(STEP_TIMEOUT_MS)
        made.append(context)
        return context

    yield make
    for context in made:
        context.close()


def watched(page: Page) -> list[str]:
    """Collect the page's script errors and what its Content-Security-Policy refused.

    (Chromium logs a 401 or 409 answer as a failed load: that is the page
    working, not a problem.)
    """
    problems: list[str] = []

    def on_console(message: Any) -> None:
        if message.type == "error" and "Failed to load resource" not in message.text:
            problems.append(f"console: {message.text}")

    page.on("pageerror", lambda error: problems.append(f"error: {error}"))
    page.on("console", on_console)
    return problems


def shortcuts_ready(page: Page) -> None:
    expect(page.locator("html[data-shortcuts=on]")).to_be_attached()


def is_form_post(response: Any) -> bool:
    """A form's POST, not the page's own heartbeat."""
    return response.request.method == "POST" and not response.url.endswith("/presence")


def signed_in_page(
    contexts: Callable[..., BrowserContext], stack: Stack, email: str, **options: Any
) -> Page:
    page = contexts(**options).new_page()
    page.goto(f"{stack.url}/console/")
    expect(page).to_have_url(re.compile(r"/console/login"))
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Queue", exact=True)).to_be_visible()
    return page


def open_request(page: Page, stack: Stack, reference: str) -> None:
    page.goto(f"{stack.url}/console/requests/{reference}")
    expect(page.get_by_role("heading", level=1)).to_contain_text(reference)


def screenshot(page: Page, name: str, tmp_path: Path) -> None:
    target = DOCS if os.environ.get("CONSOLE_SCREENSHOTS") == "1" else tmp_path
    page.screenshot(path=target / name, full_page=True)


def test_sign_in_and_the_throttled_sixth_attempt(
    stack: Stack, app: Flask, contexts: Callable[..., BrowserContext]
):
    person(app, ANN)
    page = contexts().new_page()
    problems = watched(page)
    page.goto(f"{stack.url}/console/")
    expect(page).to_have_url(re.compile(r"/console/login\?next="))
    for attempt in range(5):
        page.get_by_label("Email").fill(ANN)
        page.get_by_label("Password").fill(f"wrong password {attempt}")
        with page.expect_response(is_form_post) as answer:
            page.get_by_role("button", name="Sign in").click()
        assert answer.value.status == 401
        expect(page.get_by_role("alert")).to_have_text(
            "This email and password do not match an account."
        )
    page.get_by_label("Email").fill(ANN)
    page.get_by_label("Password").fill(PASSWORD)
    with page.expect_response(is_form_post) as answer:
        page.get_by_role("button", name="Sign in").click()
    assert answer.value.status == 429
    expect(page.get_by_role("alert")).to_contain_text("Too many failed sign-ins")
    page.goto(f"{stack.url}/console/")
    expect(page).to_have_url(re.compile(r"/console/login"))

    # Someone else signs in and out.
    person(app, BOB)
    other = signed_in_page(contexts, stack, BOB)
    other.get_by_role("button", name="Sign out").click()
    expect(other.get_by_text("You are signed out.")).to_be_visible()
    other.goto(f"{stack.url}/console/")
    expect(other).to_have_url(re.compile(r"/console/login"))
    assert problems == []


def test_a_request_is_worked_from_routed_to_closed(
    stack: Stack, app: Flask, contexts: Callable[..., BrowserContext], tmp_path: Path
):
    person(app, ANN)
    person(app, BOB)
    reference = stack.routed_request(
        full_name="Jan Peeters", message="Stroke in March; left side weak."
    )
    for n in range(3):  # a queue with a few rows, for the picture
        stack.post_request(full_name=f"Sample Patient {n}", email=f"sample{n}@example.org")
    page = signed_in_page(contexts, stack, ANN)
    problems = watched(page)
    page.reload()
    row = page.locator(f"tr[data-reference={reference}]")
    expect(row).to_contain_text("routed")
    expect(row).to_contain_text("unassigned")
    expect(row.locator(".badge")).to_contain_text("left")
    screenshot(page, "console-queue.png", tmp_path)

    row.get_by_role("link", name=reference).click()
    expect(page.locator("#patient-message")).to_have_text("Stroke in March; left side weak.")
    page.get_by_role("button", name="Claim (assign to me)").click()
    expect(page.locator("#assignee-now")).to_have_text(ANN)

    # A reroute to the other clinic that treats stroke in Belgium.
    current = page.locator("#clinic-now").inner_text()
    choices = page.locator("#provider_id option")
    labels = [choices.nth(i).inner_text() for i in range(1, choices.count())]
    label = next(text for text in labels if not text.startswith(current))
    other_clinic = label.rsplit(" (", 1)[0]  # without "(n/m today)"
    page.locator("#provider_id").select_option(label=label)
    page.locator("#reroute-note").fill("The patient asked for this clinic.")
    page.get_by_role("button", name="Reroute").click()
    expect(page.locator("#clinic-now")).to_have_text(other_clinic)

    page.get_by_label("Add a note").fill("Called the patient; travel in May.")
    page.get_by_role("button", name="Add note").click()
    expect(page.locator("li[data-event=note]")).to_contain_text("Called the patient")

    for status in ("in_review", "quoted", "closed"):
        page.locator("#to").select_option(status)
        page.locator("#transition-note").fill(f"Now {status}.")
        if status == "closed":
            page.get_by_label("Outcome (when closing)").select_option("booked")
        page.get_by_role("button", name="Move").click()
        expect(page.get_by_role("heading", level=1)).to_contain_text(status)
        if status == "in_review":
            page.get_by_label("Assign to").select_option(label=BOB)
            page.get_by_role("button", name="Assign", exact=True).click()
            expect(page.locator("#assignee-now")).to_have_text(BOB)
            screenshot(page, "console-detail.png", tmp_path)
    expect(page.get_by_text("closed is final")).to_be_visible()

    final = stack.row(reference)
    assert final.status == "closed"
    with stack.app.app_context():
        events = [
            (e.type, e.actor)
            for e in db.session.execute(
                db.select(Event).where(Event.quote_request_id == final.id).order_by(Event.id)
            ).scalars()
        ]
        decisions = list(
            db.session.execute(
                db.select(RoutingDecision).where(RoutingDecision.quote_request_id == final.id)
            ).scalars()
        )
        db.session.remove()
    actor = f"user:{ANN}"
    assert [t for t, a in events if a == actor] == [
        "assigned",
        "rerouted",
        "note",
        "in_review",
        "assigned",
        "quoted",
        "closed",
    ]
    assert len(decisions) == 2 and decisions[-1].actor == actor
    assert problems == []


def test_the_second_of_two_editors_is_told_the_request_is_stale(
    stack: Stack, app: Flask, contexts: Callable[..., BrowserContext]
):
    person(app, ANN)
    person(app, BOB)
    reference = stack.routed_request()
    ann = signed_in_page(contexts, stack, ANN)
    bob = signed_in_page(contexts, stack, BOB)
    open_request(ann, stack, reference)
    open_request(bob, stack, reference)

    ann.locator("#to").select_option("in_review")
    ann.get_by_role("button", name="Move").click()
    expect(ann.get_by_role("heading", level=1)).to_contain_text("in_review")

    with bob.expect_response(is_form_post) as answer:
        bob.get_by_role("button", name="Claim (assign to me)").click()
    assert answer.value.status == 409
    stale = bob.locator("#stale")
    expect(stale).to_contain_text("Someone else changed")
    expect(stale).to_contain_text(f"user:{ANN} moved it to in_review")
    expect(bob.get_by_role("heading", level=1)).to_contain_text("in_review")  # the new state
    assert stack.row(reference).assignee_id is None


def test_presence_appears_and_expires_and_new_requests_are_announced(
    stack: Stack, app: Flask, contexts: Callable[..., BrowserContext]
):
    person(app, ANN)
    person(app, BOB)
    reference = stack.routed_request()
    ann = signed_in_page(contexts, stack, ANN)
    open_request(ann, stack, reference)

    bob = signed_in_page(contexts, stack, BOB)
    problems = watched(bob)
    bob.reload()
    expect(bob.locator(f"#viewers-{reference}")).to_have_text(f"Viewing: {ANN}")
    open_request(bob, stack, reference)
    expect(bob.locator("#presence [data-viewer]")).to_have_text([ANN])
    expect(ann.locator("#presence [data-viewer]")).to_have_text([BOB])  # ann's page polls

    # The JSON API names both.
    token = api_token(app)
    viewers = detail_viewers(stack, reference, token)
    assert sorted(v["user"] for v in viewers) == [ANN, BOB]

    bob.goto(f"{stack.url}/console/")
    expect(bob.locator(f"#viewers-{reference}")).to_have_text(f"Viewing: {ANN}")
    ann.close()  # the page closes: no more heartbeats
    expect(bob.locator(f"#viewers-{reference}")).to_have_text("", timeout=10 * 1000)
    stack.wait_until(
        lambda: detail_viewers(stack, reference, token) == [],
        "presence expiry in the API",
        PRESENCE_SECONDS * 5,
    )

    stack.post_request(email="newcomer@example.org")
    expect(bob.get_by_role("link", name=re.compile(r"1 new: refresh"))).to_be_visible()
    bob.get_by_role("link", name=re.compile(r"1 new: refresh")).click()
    expect(bob.locator("tr[data-queue-row]")).to_have_count(2)
    assert problems == []


def api_token(app: Flask) -> str:
    from tests.conftest import make_user

    return make_user(app, "api.reader@quote-service.example", "coordinator").token


def detail_viewers(stack: Stack, reference: str, token: str) -> list[dict[str, Any]]:
    response = stack.app.test_client().get(
        f"/api/v1/quote-requests/{reference}", headers={"Authorization": f"Bearer {token}"}
    )
    return response.get_json()["viewers"]


def test_a_keyboard_only_pass_through_the_queue(
    stack: Stack, app: Flask, contexts: Callable[..., BrowserContext]
):
    person(app, ANN)
    older = stack.routed_request(email="older@example.org")
    newer = stack.routed_request(email="newer@example.org")
    page = contexts().new_page()
    problems = watched(page)
    page.goto(f"{stack.url}/console/login")
    page.keyboard.press("Tab")  # the skip link first
    expect(page.locator(".skip")).to_be_focused()
    page.locator("#email").focus()
    page.keyboard.type(ANN)
    page.keyboard.press("Tab")
    expect(page.locator("#password")).to_be_focused()
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Queue", exact=True)).to_be_visible()
    shortcuts_ready(page)

    page.keyboard.press("j")
    expect(page.locator("tr.selected")).to_have_attribute("data-reference", newer)
    page.keyboard.press("j")
    expect(page.locator("tr.selected")).to_have_attribute("data-reference", older)
    page.keyboard.press("k")
    expect(page.locator("tr.selected")).to_have_attribute("data-reference", newer)
    focused = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert focused == "solid"  # focus is visible

    page.keyboard.press("/")
    expect(page.locator("#q")).to_be_focused()
    page.keyboard.press("Escape")
    page.locator("body").focus()
    page.evaluate("document.activeElement.blur()")
    page.keyboard.press("?")
    expect(page.locator("#shortcuts")).to_be_visible()
    page.keyboard.press("Escape")
    expect(page.locator("#shortcuts")).to_be_hidden()

    page.keyboard.press("k")  # back to the first row (the selection stayed on it)
    expect(page.locator("tr.selected")).to_have_attribute("data-reference", newer)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_contain_text(newer)
    shortcuts_ready(page)
    page.keyboard.press("a")
    expect(page.locator("#assignee-now")).to_have_text(ANN)
    shortcuts_ready(page)
    page.keyboard.press("n")
    expect(page.locator("#note")).to_be_focused()
    page.keyboard.type("Typed without a mouse.")
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Add note")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("li[data-event=note]")).to_contain_text("Typed without a mouse.")
    assert stack.row(newer).assignee_id is not None
    assert problems == []


def test_a_form_without_its_csrf_token_is_refused_and_changes_nothing(
    stack: Stack, app: Flask, contexts: Callable[..., BrowserContext]
):
    person(app, ANN)
    reference = stack.routed_request()
    page = signed_in_page(contexts, stack, ANN)
    open_request(page, stack, reference)
    page.evaluate("document.querySelector('#claim-form input[name=csrf_token]').remove()")
    with page.expect_response(is_form_post) as answer:
        page.get_by_role("button", name="Claim (assign to me)").click()
    assert answer.value.status == 400
    expect(page.get_by_role("heading", level=1)).to_have_text("This form cannot be accepted")
    after = stack.row(reference)
    assert after.assignee_id is None and after.version == 1


def axe_violations(page: Page) -> list[str]:
    page.add_script_tag(content=AXE.read_text(encoding="utf-8"))
    result = page.evaluate(
        """async () => {
            const r = await axe.run(document, {runOnly: {type: 'tag',
                values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice']}});
            return r.violations.map(v => ({id: v.id, impact: v.impact,
                nodes: v.nodes.map(n => n.target.join(' ')).slice(0, 3)}));
        }"""
    )
    return [
        f"{v['id']} ({v['impact']}): {v['nodes']}"
        for v in result
        if v["impact"] in ("serious", "critical")
    ]


def test_axe_finds_no_serious_or_critical_violation_on_any_page(
    stack: Stack, app: Flask, contexts: Callable[..., BrowserContext]
):
    person(app, ADA, "admin")
    reference = stack.routed_request()
    # A detail with every section: an urgent flag, an invitation and a quote to send.
    flagged = stack.routed_request(
        email="urgent.axe@example.org",
        message="My father's face is drooping since this morning and he cannot speak",
    )
    clinic_quote(app, flagged)
    with app.app_context():
        from quote_service.models import Provider

        clinic = db.session.execute(db.select(Provider.id)).scalars().first()
    # axe is injected as a script, which the pages' own policy would refuse.
    page = contexts(bypass_csp=True).new_page()
    page.goto(f"{stack.url}/console/login")
    found = {"login": axe_violations(page)}
    page.get_by_label("Email").fill(ADA)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Queue", exact=True)).to_be_visible()
    pages = {
        "queue": "/console/",
        "queue with errors": "/console/?status=nonsense",
        "detail": f"/console/requests/{reference}",
        "detail with quote and urgent flag": f"/console/requests/{flagged}",
        "statistics": "/console/statistics",
        "clinics": "/console/clinics",
        "clinic": f"/console/clinics/{clinic}",
        "access log": "/console/access-log",
        "not found": "/console/requests/QR-AAAAAAAA",
    }
    for name, path in pages.items():
        page.goto(f"{stack.url}{path}")
        found[name] = axe_violations(page)
    # A page after a refused action, and the shortcuts dialog.
    page.goto(f"{stack.url}/console/requests/{reference}")
    page.get_by_role("button", name="Add note").click()
    found["detail with errors"] = axe_violations(page)
    page.keyboard.press("?")
    found["shortcuts"] = axe_violations(page)
    with providers_restored(app):
        page.goto(f"{stack.url}/console/clinics/{clinic}")
        page.locator("#weight").fill("0")
        page.get_by_role("button", name="Save").click()
        found["clinic with errors"] = axe_violations(page)
    assert {name: v for name, v in found.items() if v} == {}
