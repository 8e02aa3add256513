"""The patient's link: what the patient reads, and what they may post there."""

from __future__ import annotations

import marshmallow as ma
from flask_babel import lazy_gettext as _l

from quote_service.models import PRIVACY_REQUEST_KINDS, PrivacyRequestStatus, RequestStatus
from quote_service.schemas.base import FormSchema, StrictSchema, Text, WholeNumber

KIND_CHOICE = _l("Choose copy or erasure.")


class QuoteItemSchema(ma.Schema):
    slug = ma.fields.String()
    name = ma.fields.String(metadata={"description": "In the patient's language."})


class PatientQuoteSchema(ma.Schema):
    """A quote sent to the patient, with what the quote email shows."""

    id = ma.fields.Integer()
    clinic = ma.fields.String()
    price_min = ma.fields.Decimal(as_string=True)
    price_max = ma.fields.Decimal(as_string=True, allow_none=True)
    currency = ma.fields.String()
    includes = ma.fields.List(ma.fields.Nested(QuoteItemSchema))
    excludes = ma.fields.List(ma.fields.Nested(QuoteItemSchema))
    valid_until = ma.fields.Date()
    earliest_start = ma.fields.Date(allow_none=True)
    doctor = ma.fields.String(allow_none=True)
    evidence = ma.fields.String(metadata={"enum": ["approved", "clinical-trial", "experimental"]})
    trial_id = ma.fields.String(allow_none=True)
    notes = ma.fields.String(allow_none=True)
    sent_at = ma.fields.DateTime()
    interested = ma.fields.Boolean(
        metadata={"description": "Whether the patient said this quote interests them."}
    )


class ConsentSchema(ma.Schema):
    given_at = ma.fields.DateTime()
    version = ma.fields.Integer()
    withdrawn_at = ma.fields.DateTime(allow_none=True)


class PatientViewSchema(ma.Schema):
    reference = ma.fields.String()
    status = ma.fields.String(metadata={"enum": [str(s) for s in RequestStatus]})
    created_at = ma.fields.DateTime()
    condition = ma.fields.String()
    destination = ma.fields.String()
    clinics = ma.fields.List(
        ma.fields.String(), metadata={"description": "The clinics asked to quote."}
    )
    quotes = ma.fields.List(ma.fields.Nested(PatientQuoteSchema))
    consent = ma.fields.Nested(ConsentSchema)


class InterestInSchema(FormSchema):
    quote_id = WholeNumber(
        required=True,
        validate=ma.validate.Range(min=1, max=2**31 - 1, error=_l("This value is not valid.")),
        metadata={"description": "One of the quotes sent to you."},
    )


class InterestOutSchema(ma.Schema):
    reference = ma.fields.String()
    quote_id = ma.fields.Integer()
    interested = ma.fields.Boolean()


class WithdrawalInSchema(FormSchema):
    """No fields: the link's token says whose request it is."""


class WithdrawalOutSchema(ma.Schema):
    reference = ma.fields.String()
    status = ma.fields.String(metadata={"enum": [str(s) for s in RequestStatus]})
    consent = ma.fields.Nested(ConsentSchema)


class PrivacyRequestInSchema(FormSchema):
    kind = Text(
        required=True,
        validate=ma.validate.OneOf(PRIVACY_REQUEST_KINDS, error=KIND_CHOICE),
        metadata={"enum": list(PRIVACY_REQUEST_KINDS)},
    )


class PrivacyRequestOutSchema(ma.Schema):
    id = ma.fields.Integer()
    kind = ma.fields.String(metadata={"enum": list(PRIVACY_REQUEST_KINDS)})
    status = ma.fields.String(metadata={"enum": [str(s) for s in PrivacyRequestStatus]})
    requested_at = ma.fields.DateTime()
    due_at = ma.fields.DateTime(metadata={"description": "One calendar month after asking."})


class PrivacyRequestsQuerySchema(StrictSchema):
    status = ma.fields.String(validate=ma.validate.OneOf(list(PrivacyRequestStatus)))
    limit = ma.fields.Integer(load_default=100, validate=ma.validate.Range(min=1, max=500))


class PrivacyRequestEntrySchema(PrivacyRequestOutSchema):
    reference = ma.fields.String()
    overdue = ma.fields.Boolean(metadata={"description": "Open and past its due date."})
    fulfilled_at = ma.fields.DateTime(allow_none=True)
    fulfilled_by = ma.fields.String(allow_none=True)


class PrivacyRequestPageSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(PrivacyRequestEntrySchema))
