"""All models, imported here so that Alembic and the app see one complete metadata."""

from quote_service.models.access_log import AccessLog
from quote_service.models.base import MAX_ID, Base, EncryptedText, UTCDateTime, utcnow
from quote_service.models.catalog import (
    Condition,
    ConsentText,
    Destination,
    Disclaimer,
    Language,
    QuoteItem,
    Treatment,
    catalog_version,
    destination_condition,
)
from quote_service.models.clinic_quote import (
    DECLINE_REASONS,
    EVIDENCE_LEVELS,
    ClinicQuote,
    Invitation,
)
from quote_service.models.console import Presence, SignInFailure
from quote_service.models.idempotency import IdempotencyKey
from quote_service.models.notification import (
    NOTIFICATION_KINDS,
    Notification,
)
from quote_service.models.outbox import OutboxMessage
from quote_service.models.privacy_request import (
    PRIVACY_REQUEST_KINDS,
    PrivacyRequest,
)
from quote_service.models.provider import Provider, provider_condition
from quote_service.models.quote_request import (
    DUPLICATE_DECISIONS,
    SAFETY_VERDICTS,
    Event,
    QuoteRequest,
)
from quote_service.models.routing import RoutingDecision
from quote_service.models.user import ROLES, User
from quote_service.models.vocabulary import (
    Actor,
    EventType,
    InvitationStatus,
    NotificationStatus,
    Outcome,
    PrivacyRequestStatus,
    QuoteStatus,
    RequestStatus,
)

#: The tables `flask seed` fills from the catalog file; every other table holds
#: what requests, clinics and people wrote (emptied between tests and bench runs).
CATALOG_TABLES = frozenset(
    {
        "catalog_version",
        "condition",
        "consent_text",
        "destination",
        "destination_condition",
        "disclaimer",
        "language",
        "provider",
        "provider_condition",
        "quote_item",
        "treatment",
    }
)


def activity_tables() -> tuple[str, ...]:
    """Every table that is not the catalog's, from the models (a new model is in it)."""
    return tuple(sorted(set(Base.metadata.tables) - CATALOG_TABLES))


__all__ = [
    "MAX_ID",
    "CATALOG_TABLES",
    "activity_tables",
    "DECLINE_REASONS",
    "EVIDENCE_LEVELS",
    "Outcome",
    "ClinicQuote",
    "Invitation",
    "QuoteItem",
    "NOTIFICATION_KINDS",
    "ROLES",
    "DUPLICATE_DECISIONS",
    "SAFETY_VERDICTS",
    "Actor",
    "EventType",
    "InvitationStatus",
    "NotificationStatus",
    "PrivacyRequestStatus",
    "QuoteStatus",
    "RequestStatus",
    "AccessLog",
    "Base",
    "Condition",
    "ConsentText",
    "Destination",
    "Disclaimer",
    "EncryptedText",
    "Event",
    "IdempotencyKey",
    "Language",
    "Notification",
    "OutboxMessage",
    "PRIVACY_REQUEST_KINDS",
    "PrivacyRequest",
    "Presence",
    "Provider",
    "QuoteRequest",
    "RoutingDecision",
    "SignInFailure",
    "Treatment",
    "UTCDateTime",
    "User",
    "catalog_version",
    "destination_condition",
    "provider_condition",
    "utcnow",
]
