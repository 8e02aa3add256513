"""The hosted form in headless Chromium, in every language, with JavaScript on and off.

A patient makes mistakes, reads the errors in the page's language next to
the fields, chooses their country by name, types the budget as their language
writes it, corrects and sends, and reads their reference. axe-core (vendored
under quote_service/static/vendor/axe-core/) finds no serious or critical
problem on the page with errors, nor on the confirmation.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest
from flask import Flask

from quote_service.extensions import db
from quote_service.models import QuoteRequest
from tests.browser_fixtures import STEP_TIMEOUT_MS
from tests.test_hosted_form import BUDGETS, MISSING_AFTER_AT

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

COUNTRIES = {"en": "Belgium", "fr": "Belgique", "nl": "België", "de": "Belgien"}
DESTINATIONS = {
    "en": "Antigua and Barbuda",
    "fr": "Antigua-et-Barbuda",
    "nl": "Antigua en Barbuda",
    "de": "Antigua und Barbuda",
}
CONSENT_REQUIRED = {
    "en": "You must agree to the privacy notice to send a request.",
    "fr": "Vous devez accepter la politique de confidentialité pour envoyer une demande.",
    "nl": "U moet akkoord gaan met de privacyverklaring om een aanvraag te versturen.",
    "de": "Sie müssen der Datenschutzerklärung zustimmen, um eine Anfrage zu senden.",
}
SENT = {
    "en": "Your request has been sent",
    "fr": "Votre demande a été envoyée",
    "nl": "Uw aanvraag is verstuurd",
    "de": "Ihre Anfrage wurde gesendet",
}
AXE = "/static/vendor/axe-core/axe.min.js"


@pytest.fixture
def site(live_app: Callable[..., str]) -> str:
    return live_app()


@pytest.fixture
def page_factory(chromium: Browser) -> Iterator[Callable[[bool], Page]]:
    contexts = []

    def make(javascript: bool) -> Page:
        context = chromium.new_context(java_script_enabled=javascript)
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(STEP_TIMEOUT_MS)
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.script_errors = errors  # type: ignore[attr-defined]
        return page

    yield make
    for context in contexts:
        context.close()


def serious_violations(page: Page) -> list[dict[str, Any]]:
    page.add_script_tag(url=AXE)
    result = page.evaluate("async () => await axe.run(document)")
    return [
        {"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]]}
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
@pytest.mark.parametrize("language", ["en", "fr", "nl", "de"])
def test_a_patient_corrects_errors_and_gets_a_reference(
    page_factory: Callable[[bool], Page], site: str, app: Flask, language: str, javascript: bool
):
    from playwright.sync_api import expect

    page = page_factory(javascript)
    page.goto(f"{site}/form/{language}")
    if javascript:
        expect(page.locator("#quote-form[data-enhanced=true]")).to_be_attached()
    page.fill("#full_name", "Jan Peeters")
    page.fill("#email", "jan.peeters@")
    page.select_option("#country_of_residence", label=COUNTRIES[language])
    page.select_option("#destination", label=DESTINATIONS[language])
    page.select_option("#condition", "diabetes-type-2")
    page.fill("#budget_eur", BUDGETS[language])
    page.click("#submit")

    # The page's language, next to the fields, and in the summary, which has the focus.
    expect(page.locator("#email-error")).to_contain_text(MISSING_AFTER_AT[language])
    expect(page.locator("#consent_privacy-error")).to_contain_text(CONSENT_REQUIRED[language])
    expect(page.locator("#error-summary")).to_be_focused()
    expect(page.locator("#email")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#full_name")).to_have_value("Jan Peeters")
    expect(page.locator("#budget_eur")).to_have_value(BUDGETS[language])
    expect(page.locator("#country_of_residence")).to_have_value("BE")
    if javascript and language == "fr":
        # Scoped disclaimers follow the choice: Antigua's shows, Belgium's does not.
        expect(page.locator(".disclaimer[data-key=destination-ag]")).to_be_visible()
        expect(page.locator(".disclaimer[data-key=destination-be]")).to_be_hidden()
        assert serious_violations(page) == []

    page.fill("#email", "jan.peeters@example.org")
    page.check("#consent_privacy")
    page.click("#submit")
    expect(page.locator("h1")).to_have_text(SENT[language])
    reference = page.locator("#reference").inner_text()
    assert reference.startswith("QR-")
    expect(page.locator("main")).to_contain_text("jan.peeters@example.org")
    if javascript and language == "de":
        assert serious_violations(page) == []
    assert page.script_errors == []  # type: ignore[attr-defined]

    with app.app_context():
        request = db.session.execute(
            db.select(QuoteRequest).where(QuoteRequest.reference == reference)
        ).scalar_one()
        assert (request.country_of_residence, request.destination_code) == ("BE", "AG")
        assert request.budget_eur == 30000
        assert request.preferred_language == language
