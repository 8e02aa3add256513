"""`name+1@`, `name+2@`... are one inbox: the duplicate check and the daily cap of
acknowledgements count on it, while each email still goes to the address given."""

from __future__ import annotations

from cryptography.fernet import Fernet
from flask import Flask
from flask.testing import FlaskClient

from quote_service.addresses import mailbox
from quote_service.extensions import db
from quote_service.models import Notification, OutboxMessage, QuoteRequest
from quote_service.services import keys, notifications, pipeline
from tests.conftest import base_config, smtp_config
from tests.payloads import valid_body
from tests.routing_fixtures import received_row, submit

URL = "/api/v1/quote-requests"


def test_the_inbox_of_an_address_drops_its_tag_and_case():
    assert mailbox("Jan.Peeters+quote1@Example.ORG") == "jan.peeters@example.org"
    assert mailbox("jan+a+b@example.org") == "jan@example.org"
    assert mailbox("jan@example.org") == "jan@example.org"
    assert mailbox("+only@example.org") == "+only@example.org"


def stored(reference: str) -> QuoteRequest:
    return db.session.execute(
        db.select(QuoteRequest).where(QuoteRequest.reference == reference)
    ).scalar_one()


def test_a_tagged_resubmission_is_held_beside_the_open_request(client: FlaskClient, app_context):
    first = client.post(URL, json=valid_body(email="jan.peeters+1@example.org"))
    again = client.post(URL, json=valid_body(email="Jan.Peeters+2@example.org"))
    assert first.status_code == again.status_code == 201
    assert again.get_json()["reference"] != first.get_json()["reference"]
    held = stored(again.get_json()["reference"])
    assert held.possible_duplicate_of_id == stored(first.get_json()["reference"]).id


def test_the_daily_cap_counts_per_inbox_and_sends_to_the_address_given(
    app: Flask, make_app, postgres, smtp
):
    capped = make_app(
        base_config(postgres.url, ACKNOWLEDGEMENTS_PER_RECIPIENT_PER_DAY=2, **smtp_config(smtp))
    )
    with capped.app_context():
        pairs = [("BE", "stroke"), ("BE", "diabetes-type-1"), ("AG", "diabetes-type-2")]
        requests = [
            submit(email=f"victim+{n}@example.org", destination=destination, condition=condition)
            for n, (destination, condition) in enumerate(pairs)
        ]
        for request in requests:
            pipeline.process_received(received_row(request).id)
        acks = list(
            db.session.execute(
                db.select(Notification)
                .where(Notification.kind == "acknowledgement")
                .order_by(Notification.id)
            ).scalars()
        )
        assert [a.status for a in acks] == ["pending", "pending", "suppressed"]

        row = db.session.execute(
            db.select(OutboxMessage).where(
                OutboxMessage.payload["notification_id"].as_integer() == acks[0].id
            )
        ).scalar_one()
        assert notifications.deliver(row.id) == "sent"
        [received] = smtp.received
        assert received.recipients == ["victim+0@example.org"]
        db.session.remove()


def test_a_key_rotation_rehashes_the_inbox(postgres, app, make_app):
    old_key, new_key = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    old_app = make_app(base_config(postgres.url, DATA_ENCRYPTION_KEYS=[old_key]))
    first = old_app.test_client().post(URL, json=valid_body(email="jan+old@example.org"))
    assert first.status_code == 201

    rotating = make_app(base_config(postgres.url, DATA_ENCRYPTION_KEYS=[new_key, old_key]))
    with rotating.app_context():
        assert keys.rotate() >= 1
        db.session.remove()

    # The old key is gone: only hashes made with the new one can match.
    only_new = make_app(base_config(postgres.url, DATA_ENCRYPTION_KEYS=[new_key]))
    again = only_new.test_client().post(URL, json=valid_body(email="jan+new@example.org"))
    with only_new.app_context():
        held = stored(again.get_json()["reference"])
        assert held.possible_duplicate_of_id == stored(first.get_json()["reference"]).id
        db.session.remove()
