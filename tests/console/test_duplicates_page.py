"""The console shows a possible duplicate beside the request it resembles: merge or keep apart."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient

from quote_service.extensions import db
from quote_service.models import OutboxMessage, QuoteRequest
from tests.console.support import page_token, person, sign_in
from tests.payloads import valid_body

COORDINATOR = "cora@quote-service.example"
URL = "/api/v1/quote-requests"


def pair(client: FlaskClient) -> tuple[str, str]:
    first = client.post(URL, json=valid_body()).get_json()["reference"]
    second = client.post(URL, json=valid_body(message="Sent again with my new number")).get_json()
    return first, second["reference"]


def row(app: Flask, reference: str) -> tuple[str, str | None, int]:
    with app.app_context():
        request = db.session.execute(
            db.select(QuoteRequest).where(QuoteRequest.reference == reference)
        ).scalar_one()
        rows = db.session.execute(
            db.select(db.func.count(OutboxMessage.id)).where(
                OutboxMessage.topic == "quote_request.received",
                OutboxMessage.payload["quote_request_id"].as_integer() == request.id,
            )
        ).scalar_one()
        db.session.remove()
        return request.status, request.duplicate_decision, rows


def post(client: FlaskClient, reference: str, action: str, **data: str):
    page = client.get(f"/console/requests/{reference}").text
    version = page.split('name="version" value="', 1)[1].split('"', 1)[0]
    return client.post(
        f"/console/requests/{reference}/{action}",
        data={"csrf_token": page_token(page), "version": version, **data},
    )


def test_each_page_links_the_other_and_offers_the_two_decisions(app: Flask, client: FlaskClient):
    first, second = pair(client)
    person(app, COORDINATOR)
    assert sign_in(client, COORDINATOR).status_code == 303

    newer = client.get(f"/console/requests/{second}").text
    assert f'href="/console/requests/{first}"' in newer
    assert 'id="merge-form"' in newer and 'id="keep-apart-form"' in newer
    assert 'id="reroute-form"' not in newer  # decide first
    assert "Sent again with my new number" in newer
    older = client.get(f"/console/requests/{first}").text
    assert f'href="/console/requests/{second}"' in older
    assert 'id="merge-form"' not in older


def test_merge_from_the_page(app: Flask, client: FlaskClient):
    first, second = pair(client)
    person(app, COORDINATOR)
    sign_in(client, COORDINATOR)
    response = post(client, second, "merge", into=first)
    assert response.status_code == 303
    assert row(app, second) == ("closed", "merged", 0)
    assert "Merged into" in client.get(f"/console/requests/{second}").text


def test_keep_apart_from_the_page(app: Flask, client: FlaskClient):
    first, second = pair(client)
    person(app, COORDINATOR)
    sign_in(client, COORDINATOR)
    assert post(client, second, "keep-apart").status_code == 303
    assert row(app, second) == ("received", "kept_apart", 1)
    # A second decision is refused with the reason, on the page.
    refused = post(client, second, "keep-apart")
    assert refused.status_code == 409
    assert "not a possible duplicate" in refused.text
