"""The patient's link `<PUBLIC_BASE_URL>/p/<token>`: one secret token per request.

Made as the clinics' invitation links are (quote_service.crypto): the token
is HMAC(key, purpose, salt), 256 bits; the request stores the salt and the
token's SHA-256 only, so a database dump opens no link, while the emails to
the patient (the acknowledgement, the quotes) re-derive the same token when
they are rendered. It never travels in a task's arguments: tasks take the
request's id and the email is built from the row. The link lasts as long as
the request; an erased request has none.
"""

from __future__ import annotations

from flask import current_app
from flask_babel import lazy_gettext as _l

from quote_service.crypto import LINK_TOKEN_PATTERN, new_link_token, stored_link_token, token_hash
from quote_service.errors import NotFound
from quote_service.extensions import db
from quote_service.models import QuoteRequest

TOKEN_PURPOSE = "patient-link"


def issue(request: QuoteRequest) -> None:
    """Give a request its link (at intake). The caller commits."""
    request.patient_token_salt, request.patient_token_hash = new_link_token(TOKEN_PURPOSE)


def link_token(request: QuoteRequest) -> str:
    """The token of the request's link, re-derived; one is issued if it has none yet."""
    if request.patient_token_salt is None or request.patient_token_hash is None:
        # A request made before the link existed gets one with its next email.
        issue(request)
    try:
        return stored_link_token(
            TOKEN_PURPOSE, request.patient_token_salt, request.patient_token_hash
        )
    except LookupError:
        # Its key was retired from DATA_ENCRYPTION_KEYS, which ended the old link:
        # the email being built carries a new one rather than failing.
        issue(request)
        return stored_link_token(
            TOKEN_PURPOSE, request.patient_token_salt, request.patient_token_hash
        )


def link(request: QuoteRequest) -> str:
    return f"{current_app.config['PUBLIC_BASE_URL']}/p/{link_token(request)}"


def find(token: str, *, lock: bool = False) -> QuoteRequest:
    """The request of a link's token; 404 for anything unknown, altered or erased."""
    if not LINK_TOKEN_PATTERN.fullmatch(token):
        raise NotFound(_l("There is no request at this address."))
    statement = db.select(QuoteRequest).where(QuoteRequest.patient_token_hash == token_hash(token))
    if lock:
        statement = statement.with_for_update()
    request = db.session.execute(statement).scalar_one_or_none()
    if request is None or request.erased_at is not None:
        raise NotFound(_l("There is no request at this address."))
    return request
