"""Search that finds people: names without accents or case, phones in any format, a domain."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from flask import Flask
from flask.testing import FlaskClient
from flask_migrate import downgrade, upgrade

from quote_service.crypto import keyring
from quote_service.extensions import db
from quote_service.models import QuoteRequest
from quote_service.services import keys, queue
from tests.conftest import Caller, base_config
from tests.payloads import minimal_body
from tests.test_queue_api import URL, post, references


def search(client: FlaskClient, coordinator: Caller, q: str) -> list[str]:
    return references(client.get(URL, query_string={"q": q}, headers=coordinator.headers))


@pytest.mark.parametrize("typed", ["Muller", "muller", "MÜLLER", "ller", "jürgen m"])
def test_a_name_is_found_without_its_accents_or_case(
    client: FlaskClient, coordinator: Caller, typed: str
):
    wanted = post(client, full_name="Jürgen Müller")
    post(client, full_name="Ana Sousa")
    assert search(client, coordinator, typed) == [wanted]


@pytest.mark.parametrize(
    "typed",
    ["+32 470 12 34 56", "0032 470 12 34 56", "0470 12 34 56", "+32-470-123-456", "0470/123456"],
)
def test_a_phone_is_found_in_any_common_format(
    client: FlaskClient, coordinator: Caller, typed: str
):
    wanted = post(client, phone="+32 470 12 34 56", country_of_residence="BE")
    post(client, phone="+32 470 65 43 21", country_of_residence="BE")
    assert search(client, coordinator, typed) == [wanted]


def test_digits_that_are_no_phone_number_search_names(client: FlaskClient, coordinator: Caller):
    post(client, phone="+32 470 12 34 56", country_of_residence="BE")
    assert queue.phone_candidates("12") == set()
    assert search(client, coordinator, "999999") == []


def test_a_domain_finds_every_address_at_it(client: FlaskClient, coordinator: Caller):
    first = post(client, email="ana@clinic-mail.example")
    second = post(client, email="Rui.Costa+quotes@CLINIC-MAIL.example")
    post(client, email="ana@other.example")
    assert set(search(client, coordinator, "@clinic-mail.example")) == {first, second}
    assert set(search(client, coordinator, "@Clinic-Mail.Example")) == {first, second}
    assert search(client, coordinator, "@nowhere.example") == []


def test_an_erased_request_is_found_by_none_of_it(
    client: FlaskClient, app_context: None, admin: Caller, coordinator: Caller
):
    post(client, full_name="Zoë Peeters", email="zoe@erase.example", phone="+32 470 11 22 33")
    erased = client.post(
        "/api/v1/privacy/erasure", json={"email": "zoe@erase.example"}, headers=admin.headers
    )
    assert erased.status_code == 200, erased.get_json()
    for typed in ("zoe", "@erase.example", "+32 470 11 22 33"):
        assert search(client, coordinator, typed) == []


def test_the_migration_fills_in_the_rows_stored_before_it(sqlite_app: Flask):
    with sqlite_app.app_context():
        downgrade(revision="0022_export")  # a database as it was before the search columns
        keyring = sqlite_app.extensions["keyring"]
        db.session.execute(
            db.text(
                "INSERT INTO quote_request (reference, status, full_name, email,"
                " country_of_residence, preferred_language, destination_code,"
                " condition_slug, treatment_slug,"
                " consent_privacy, consent_marketing, consent_version, consent_language,"
                " consented_at, created_at, updated_at, version, urgent)"
                " VALUES ('QR-AAAA2222', 'received', 'Éloïse Dubois', :email, 'FR', 'fr',"
                " 'BE', 'stroke', 'msc', 1, 0, 1, 'fr', '2026-01-01', '2026-01-01',"
                " '2026-01-01', 1, 0)"
            ),
            {"email": keyring.encrypt("eloise@vieux.example")},
        )
        db.session.commit()
        upgrade()
        folded, domain_hash = db.session.execute(
            db.text("SELECT name_folded, email_domain_hash FROM quote_request")
        ).one()
        assert folded == "eloise dubois"
        assert domain_hash == keyring.lookup_hash("@vieux.example")


def test_a_key_rotation_rehashes_the_domain(postgres, app: Flask, make_app):
    old_key, new_key = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    old_app = make_app(base_config(postgres.url, DATA_ENCRYPTION_KEYS=[old_key]))
    made = old_app.test_client().post(URL, json=minimal_body(email="ana@rotated.example"))
    assert made.status_code == 201, made.get_json()
    rotating = make_app(base_config(postgres.url, DATA_ENCRYPTION_KEYS=[new_key, old_key]))
    with rotating.app_context():
        assert keys.rotate() >= 1
        db.session.remove()
    # The old key is gone: only a domain hash made with the new one can match.
    only_new = make_app(base_config(postgres.url, DATA_ENCRYPTION_KEYS=[new_key]))
    with only_new.app_context():
        found = db.session.execute(
            db.select(QuoteRequest.reference).where(
                QuoteRequest.email_domain_hash.in_(keyring().lookup_hashes("@rotated.example"))
            )
        ).scalars()
        assert list(found) == [made.get_json()["reference"]]
        db.session.remove()
