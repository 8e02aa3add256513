"""The Idempotency-Key header of a POST (IETF draft "The Idempotency-Key HTTP Header Field").

One entry, `idempotent(blp)`: a view decorated with it runs once per key, and
a retry with the same key gets the first answer back. The keys themselves
(claims, stored answers, expiry) are services/idempotency.py's.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast

from flask import Response, jsonify, request

from quote_service.api.parsing import Blueprint
from quote_service.extensions import db
from quote_service.services import idempotency

View = TypeVar("View", bound=Callable[..., Any])

IDEMPOTENCY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
IDEMPOTENCY_KEY_PARAMETER = {
    "name": IDEMPOTENCY_HEADER,
    "in": "header",
    "required": False,
    "description": "Any unique value, 1-255 printable ASCII characters, e.g. a UUID "
    '(IETF draft "The Idempotency-Key HTTP Header Field"). Sending the same request '
    "again with the same key returns the first response (with `Idempotent-Replayed: "
    "true`) instead of a second request. Keys are kept 24 hours; a request refused "
    "for its fields frees its key for a corrected retry.",
    "schema": {"type": "string", "minLength": 1, "maxLength": idempotency.MAX_KEY_LENGTH},
}


def idempotent(blp: Blueprint) -> Callable[[View], View]:
    """Run the view once per Idempotency-Key; a retry gets the first answer back.

    Put it above the body's parsing (`blp.arguments`): a replay must not
    depend on the body still passing today's checks, and a body refused for
    its fields must free the key. Below the rate limits, so a refused attempt
    claims nothing.

    Without the header the view runs as it is. With it, the view is called
    with `claim=` (an `idempotency.Claim`), held by the transaction the claim
    opened, and must store its answer on the claim (`idempotency.record`) in
    that transaction, the one doing its work; any exception it raises releases
    the claim. A key still in flight is a 409
    `idempotency_key_in_flight`; one used with another body a 422
    `idempotency_key_reused` (the view documents its own 422). Documents the
    header and the 409.
    """

    def decorator(view: View) -> View:
        @wraps(view)
        def once_per_key(*args: Any, **kwargs: Any) -> Any:
            header = request.headers.get(IDEMPOTENCY_HEADER)
            if header is None:
                return view(*args, **kwargs)
            key = idempotency.check_key(header)
            # Read (and cache) the raw body first: form parsing would consume it.
            body = request.get_data(cache=True)
            outcome = idempotency.claim(
                key, idempotency.fingerprint(request.content_type or "", body)
            )
            if isinstance(outcome, idempotency.StoredResponse):
                # Nothing else is done in the transaction the claim's read opened.
                db.session.rollback()
                return replay(outcome)
            try:
                return view(*args, claim=outcome, **kwargs)
            except Exception:
                idempotency.release(outcome)
                raise

        documented = cast(View, once_per_key)
        for document in (
            blp.doc(parameters=[IDEMPOTENCY_KEY_PARAMETER]),
            blp.alt_response(
                409,
                description="A request with this Idempotency-Key is still being processed "
                "(`idempotency_key_in_flight`).",
            ),
        ):
            documented = document(documented)
        return documented

    return decorator


def replay(stored: idempotency.StoredResponse) -> Response:
    """The stored answer again, marked `Idempotent-Replayed: true`."""
    response = jsonify(stored.body) if stored.body is not None else Response()
    response.status_code = stored.status
    response.headers.update(stored.headers)
    response.headers[REPLAYED_HEADER] = "true"
    return response
