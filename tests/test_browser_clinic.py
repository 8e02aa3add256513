"""The clinic's invitation page in headless Chromium, with JavaScript on and off."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from decimal import Decimal

import pytest

from quote_service.extensions import db
from quote_service.models import ClinicQuote, Invitation
from quote_service.services import invitations, pipeline
from tests.browser_fixtures import STEP_TIMEOUT_MS
from tests.routing_fixtures import received_row, submit

try:
    from playwright.sync_api import expect
except ImportError:  # the browser fixture skips without it
    expect = None


@pytest.fixture
def site(live_app: Callable[..., str]) -> str:
    return live_app()


@pytest.fixture
def invitation(portugal) -> Invitation:
    portugal("alfa")
    request = submit(message="Stroke in 2023. Call me on +351 912 345 678.")
    pipeline.process_received(received_row(request).id)
    [row] = invitations.invitations_of(request.id)
    return row


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
def test_a_clinic_sends_a_quote_from_its_page_after_fixing_an_error(
    chromium,
    site: str,
    invitation: Invitation,
    javascript: bool,
):
    context = chromium.new_context(java_script_enabled=javascript)
    page = context.new_page()
    page.set_default_timeout(STEP_TIMEOUT_MS)
    token = invitations.link_token(invitation)
    page.goto(f"{site}/clinic/invitations/{token}")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Invitation to quote")
    expect(page.locator(".summary")).to_contain_text("Stroke")

    page.get_by_label("Price, or the lowest price of a range").fill("12 500")
    page.get_by_label("Currency").fill("EUR")
    page.locator("#includes-treatment").check()
    page.locator("#excludes-flights").check()
    page.get_by_label("Valid until").fill((date.today() + timedelta(days=90)).isoformat())
    page.get_by_label("Within a registered clinical trial").check()
    page.get_by_label("Trial registration number").fill("NCT01234567")
    page.get_by_role("button", name="Send the quote").click()

    # A price with a space is refused next to its field; what was typed stays.
    expect(page.locator("#price_min-error")).to_contain_text("Enter an amount")
    expect(page.locator(".error-summary a[href='#price_min']")).to_be_visible()
    expect(page.get_by_label("Trial registration number")).to_have_value("NCT01234567")
    expect(page.locator("#includes-treatment")).to_be_checked()
    assert db.session.execute(db.select(db.func.count(ClinicQuote.id))).scalar() == 0

    page.get_by_label("Price, or the lowest price of a range").fill("12500")
    page.get_by_role("button", name="Send the quote").click()
    expect(page.get_by_role("status")).to_contain_text("your quote was received")
    expect(page.get_by_role("button", name="Replace the quote")).to_be_visible()

    db.session.expire_all()
    quote = db.session.execute(db.select(ClinicQuote)).scalar_one()
    assert (quote.price_min, quote.currency, quote.evidence, quote.trial_id) == (
        Decimal("12500.00"),
        "EUR",
        "clinical-trial",
        "NCT01234567",
    )
    assert (quote.includes, quote.excludes) == (["treatment"], ["flights"])
    context.close()


def test_a_clinic_declines_from_its_page(
    chromium,
    site: str,
    invitation: Invitation,
):
    context = chromium.new_context(java_script_enabled=False)
    page = context.new_page()
    page.set_default_timeout(STEP_TIMEOUT_MS)
    response = page.goto(f"{site}/clinic/invitations/{invitations.link_token(invitation)}")
    assert response is not None
    assert "no-referrer" in response.headers["referrer-policy"]
    assert "'unsafe-inline'" not in response.headers["content-security-policy"]
    page.get_by_label("Reason").select_option("needs-records")
    page.get_by_role("button", name="Decline the invitation").click()
    expect(page.get_by_role("status")).to_contain_text("you declined")
    db.session.expire_all()
    assert db.session.get_one(Invitation, invitation.id).status == "declined"
    context.close()
