"""All models, imported here so that Alembic and the app see one complete metadata."""

from quote_service.models.base import Base, UTCDateTime, utcnow
from quote_service.models.catalog import (
    Condition,
    ConsentText,
    Destination,
    Disclaimer,
    Language,
    Treatment,
    destination_condition,
)
from quote_service.models.outbox import OutboxMessage
from quote_service.models.provider import Provider, provider_condition
from quote_service.models.quote_request import STATUSES, Event, QuoteRequest

__all__ = [
    "STATUSES",
    "Base",
    "Condition",
    "ConsentText",
    "Destination",
    "Disclaimer",
    "Event",
    "Language",
    "OutboxMessage",
    "Provider",
    "QuoteRequest",
    "Treatment",
    "UTCDateTime",
    "destination_condition",
    "provider_condition",
    "utcnow",
]
