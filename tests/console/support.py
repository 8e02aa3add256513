"""Helpers for the console's tests: users with passwords, signing in, CSRF tokens."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

from flask import Flask
from flask.testing import FlaskClient

from quote_service.services.passwords import set_password
from tests.conftest import Caller, make_user

PASSWORD = "correct horse battery staple"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def person(app: Flask, email: str, role: str = "coordinator") -> Caller:
    """A user who can sign in to the console with PASSWORD."""
    caller = make_user(app, email, role)
    with app.app_context():
        set_password(email, PASSWORD)
    return caller


def csrf_token(client: FlaskClient, path: str = "/console/login") -> str:
    match = CSRF.search(client.get(path).get_data(as_text=True))
    assert match, f"no CSRF token on {path}"
    return match.group(1)


def sign_in(client: FlaskClient, email: str, password: str = PASSWORD, **extra: str):
    token = csrf_token(client)
    return client.post(
        "/console/login",
        data={"email": email, "password": password, "csrf_token": token, **extra},
    )


def page_token(html: str) -> str:
    match = CSRF.search(html)
    assert match, "no CSRF token on the page"
    return match.group(1)


def routed(app: Flask, client: FlaskClient, **overrides) -> str:
    """A request posted through the API and routed by the pipeline, as the worker would.

    The app context is entered only around the database work: the console's
    requests must each get their own (Flask-Login and CSRF keep state in `g`).
    """
    from quote_service.extensions import db
    from quote_service.services import pipeline
    from tests.payloads import minimal_body
    from tests.routing_fixtures import received_row
    from tests.test_workflow_api import stored

    body = minimal_body(destination="BE", condition="stroke", **overrides)
    response = client.post("/api/v1/quote-requests", json=body)
    assert response.status_code == 201, response.get_json()
    reference = response.get_json()["reference"]
    with app.app_context():
        pipeline.process_received(received_row(stored(reference)).id)
        db.session.remove()
    return reference


@contextmanager
def providers_restored(app: Flask) -> Iterator[None]:
    """The catalog is shared by the whole session: put the clinics back as they were."""
    from quote_service.extensions import db
    from quote_service.models import Provider

    fields = ("daily_capacity", "weight", "languages", "active")
    with app.app_context():
        saved = {
            p.id: {name: getattr(p, name) for name in fields}
            for p in db.session.execute(db.select(Provider)).scalars()
        }
        db.session.remove()
    try:
        yield
    finally:
        with app.app_context():
            for provider_id, values in saved.items():
                provider = db.session.get(Provider, provider_id)
                for name, value in values.items():
                    setattr(provider, name, value)
            db.session.commit()
            db.session.remove()


def clinic_quote(app: Flask, reference: str) -> int:
    """The request's first invited clinic answers with a quote, on its link: the quote's id."""
    from datetime import date, timedelta

    from quote_service.extensions import db
    from quote_service.models import QuoteRequest
    from quote_service.services import invitations

    with app.app_context():
        request = db.session.execute(
            db.select(QuoteRequest).where(QuoteRequest.reference == reference)
        ).scalar_one()
        token = invitations.link_token(invitations.invitations_of(request.id)[0])
        db.session.remove()
    body = {
        "price_min": 9000,
        "price_max": 11000,
        "currency": "EUR",
        "includes": ["treatment"],
        "excludes": ["flights"],
        "valid_until": (date.today() + timedelta(days=30)).isoformat(),
        "evidence": "experimental",
        "doctor": "Dr. L. Janssens",
    }
    response = app.test_client().post(f"/api/v1/clinic/invitations/{token}/quote", json=body)
    assert response.status_code == 201, response.get_json()
    return response.get_json()["quote_id"]
