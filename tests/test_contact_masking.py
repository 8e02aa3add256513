"""Email addresses and phone numbers typed into the message never reach a clinic."""

from __future__ import annotations

import pytest

from quote_service.services.masking import EMAIL_MASK, PHONE_MASK, mask_contacts


@pytest.mark.parametrize(
    ("text", "regions", "secrets"),
    [
        (
            "My phone: +212 600 000 000, write to jan.peeters@example.be",
            ["BE"],
            ["600 000 000", "jan.peeters@example.be"],
        ),
        (
            "Mon téléphone : 06 12 34 56 78, mail marie@exemple.fr",
            ["FR"],
            ["06 12 34 56 78", "marie@exemple.fr"],
        ),
        (
            "Mijn nummer is 0470 12 34 56 of +32 470 12 34 56.",
            ["BE"],
            ["0470 12 34 56", "+32 470 12 34 56"],
        ),
        (
            "Meine Nummer: 030 12345678, Handy +49 151 23456789",
            ["DE"],
            ["030 12345678", "151 23456789"],
        ),
        ("Call me at (268) 464-1234 in Antigua", ["FR", "AG"], ["464-1234"]),
    ],
)
def test_contacts_are_masked_in_four_languages(text, regions, secrets):
    masked = mask_contacts(text, regions)
    for secret in secrets:
        assert secret not in masked
    assert PHONE_MASK in masked or EMAIL_MASK in masked


def test_dates_and_ages_stay():
    text = "Stroke in 2021, I am 64, travel 2027-05-01."
    assert mask_contacts(text, ["BE"]) == text


MESSAGE = (
    "Mon téléphone: +212 600 000 000, ou 06 12 34 56 78; écrivez à ana.sousa@example.org. "
    "AVC l'an dernier."
)


def test_the_clinics_email_page_and_json_are_masked_coordinators_see_all(
    client, portugal, coordinator
):
    from quote_service.extensions import db
    from quote_service.models import QuoteRequest
    from quote_service.services import pipeline
    from tests.routing_fixtures import received_row, submit
    from tests.test_clinic_quotes import invited, notifications_of, text_of, token_of

    portugal("a")
    submitted = submit(email="ana.sousa@example.org", message=MESSAGE, country_of_residence="FR")
    pipeline.process_received(received_row(submitted).id)
    request = db.session.get_one(QuoteRequest, submitted.id)
    invitation = invited(request)[0]
    texts = [
        text_of(notifications_of(request, "provider")[0]),
        client.get(f"/api/v1/clinic/invitations/{token_of(invitation)}").get_json()["message"],
        client.get(f"/clinic/invitations/{token_of(invitation)}").get_data(as_text=True),
    ]
    for text in texts:
        for secret in ("600 000 000", "06 12 34 56 78", "ana.sousa@example.org"):
            assert secret not in text
        assert "an dernier." in text
    detail = client.get(
        f"/api/v1/quote-requests/{request.reference}", headers=coordinator.headers
    ).get_json()
    assert detail["message"] == MESSAGE
