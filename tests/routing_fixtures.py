"""A destination of the tests' own (PT) with providers each test sets up."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import delete

from quote_service.extensions import db
from quote_service.models import (
    Condition,
    Destination,
    OutboxMessage,
    Provider,
    QuoteRequest,
    destination_condition,
    provider_condition,
)
from quote_service.services import intake
from tests.conftest import empty_activity_tables
from tests.payloads import minimal_body

AddProvider = Callable[..., Provider]


@pytest.fixture
def portugal(app: Flask, app_context) -> Iterator[AddProvider]:
    """Destination PT (stroke, diabetes-type-2) with no provider; yields a provider factory."""
    destination = Destination(code="PT", names={"en": "Portugal", "fr": "Portugal"}, position=9)
    destination.conditions = [
        db.session.get_one(Condition, "stroke"),
        db.session.get_one(Condition, "diabetes-type-2"),
    ]
    db.session.add(destination)
    db.session.commit()

    def add_provider(
        slug: str,
        *,
        languages: tuple[str, ...] = ("en",),
        capacity: int = 10,
        weight: int = 1,
        conditions: tuple[str, ...] = ("stroke", "diabetes-type-2"),
        active: bool = True,
    ) -> Provider:
        provider = Provider(
            slug=slug,
            name=f"{slug} clinic",
            destination_code="PT",
            languages=list(languages),
            contact_email=f"{slug}@clinic.test.example",
            daily_capacity=capacity,
            weight=weight,
            active=active,
        )
        provider.conditions = [db.session.get_one(Condition, c) for c in conditions]
        db.session.add(provider)
        db.session.commit()
        return provider

    yield add_provider

    db.session.rollback()
    empty_activity_tables(db.session)
    ids = db.select(Provider.id).where(Provider.destination_code == "PT")
    db.session.execute(delete(provider_condition).where(provider_condition.c.provider_id.in_(ids)))
    db.session.execute(delete(Provider).where(Provider.destination_code == "PT"))
    db.session.execute(
        delete(destination_condition).where(destination_condition.c.destination_code == "PT")
    )
    db.session.execute(delete(Destination).where(Destination.code == "PT"))
    db.session.commit()


def submit(**overrides: Any) -> QuoteRequest:
    """Store a request through the intake service, as the API does."""
    body = {
        "preferred_language": "en",
        "treatment": "unsure",
        "consent_marketing": False,
        **minimal_body(destination="PT", condition="stroke"),
        **overrides,
    }
    return intake.submit_quote_request(body)


def received_row(request: QuoteRequest) -> OutboxMessage:
    return db.session.execute(
        db.select(OutboxMessage).where(
            OutboxMessage.topic == "quote_request.received",
            OutboxMessage.payload["quote_request_id"].as_integer() == request.id,
        )
    ).scalar_one()
