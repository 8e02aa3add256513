"""The patient's page in headless Chromium, with JavaScript on and off."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask.testing import FlaskClient

from quote_service.extensions import db
from quote_service.models import QuoteRequest
from tests.browser_fixtures import STEP_TIMEOUT_MS
from tests.patient_fixtures import events_of, fan_out, token, with_quotes
from tests.test_browser_hosted_form import serious_violations

try:
    from playwright.sync_api import expect
except ImportError:  # the browser fixture skips without it
    expect = None


fan_out_to_two = fan_out(2)


@pytest.fixture
def site(live_app: Callable[..., str]) -> str:
    return live_app()


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
def test_a_patient_picks_a_quote_then_withdraws_from_their_page(
    chromium,
    site: str,
    client: FlaskClient,
    coordinator,
    portugal,
    javascript: bool,
):
    request, sent, _ = with_quotes(client, coordinator, portugal)
    context = chromium.new_context(java_script_enabled=javascript)
    page = context.new_page()
    page.set_default_timeout(STEP_TIMEOUT_MS)
    page.goto(f"{site}/p/{token(request)}")
    expect(page.get_by_role("heading", level=1)).to_contain_text(request.reference)
    expect(page.locator("#quotes-heading")).to_have_text("Quotes sent to you")
    # Only the quote sent to the patient can be chosen.
    expect(page.get_by_role("button", name="This quote interests me")).to_have_count(1)

    page.get_by_role("button", name="This quote interests me").click()
    expect(page.get_by_role("status")).to_contain_text("our coordinators know which quote")
    [interest] = events_of(request, "patient_interest")
    assert interest.data["quote_id"] == sent

    # Withdrawing asks for the box first, and keeps the patient on the page.
    page.get_by_role("button", name="Withdraw my request").click()
    expect(page.locator("#confirm-error")).to_contain_text("Tick the box")
    db.session.expire_all()
    assert db.session.get_one(QuoteRequest, request.id).status == "quoted"

    page.get_by_label("I want to withdraw my request").check()
    page.get_by_role("button", name="Withdraw my request").click()
    expect(page.get_by_role("status")).to_contain_text("Your request is withdrawn")
    db.session.expire_all()
    withdrawn = db.session.get_one(QuoteRequest, request.id)
    assert withdrawn.status == "withdrawn" and withdrawn.consent_withdrawn_at is not None
    # Once withdrawn, nothing is offered to choose any more.
    expect(page.get_by_role("button", name="This quote interests me")).to_have_count(0)
    context.close()


def test_the_patient_page_has_no_serious_accessibility_violation(
    chromium, site: str, client: FlaskClient, coordinator, portugal
):
    request, _, _ = with_quotes(client, coordinator, portugal)
    # The page's CSP allows no script at all: axe is added around it.
    context = chromium.new_context(bypass_csp=True)
    page = context.new_page()
    page.set_default_timeout(STEP_TIMEOUT_MS)
    page.goto(f"{site}/p/{token(request)}")
    assert serious_violations(page) == []
    page.get_by_role("button", name="Withdraw my request").click()  # with its error shown
    expect(page.locator("#confirm-error")).to_be_visible()
    assert serious_violations(page) == []
    context.close()
